/// Where layers read their parameters at load: a model file, or arrays (tests, tools).
public protocol WeightSource {
    /// Calls `body` with tensor `name`'s values (F32, finite); throws `ModelFileError` otherwise.
    /// The buffer is valid only inside `body`.
    func withFloats<R>(_ name: String, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R
}

extension WeightSource {
    /// A copy of tensor `name`.
    public func array(_ name: String) throws -> [Float] {
        try withFloats(name) { Array($0) }
    }
}

/// Weights held in arrays, keyed by tensor name.
public struct ArrayWeights: WeightSource {
    public var tensors: [String: [Float]]

    public init(_ tensors: [String: [Float]]) { self.tensors = tensors }

    public func withFloats<R>(_ name: String, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        guard let values = tensors[name] else { throw ModelFileError.missingTensor(name) }
        return try values.withUnsafeBufferPointer(body)
    }
}

/// Weights produced on demand by a closure returning each tensor's values.
public struct ClosureWeights: WeightSource {
    public let lookup: (String) throws -> [Float]

    public init(_ lookup: @escaping (String) throws -> [Float]) { self.lookup = lookup }

    public func withFloats<R>(_ name: String, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        try lookup(name).withUnsafeBufferPointer(body)
    }
}
