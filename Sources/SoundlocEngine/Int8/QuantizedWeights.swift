import Foundation

/// Where the int8 engine reads its parameters: F32 tensors as any `WeightSource`, plus I8 and I32 ones.
public protocol QuantizedWeightSource: WeightSource {
    func int8s(_ name: String) throws -> [Int8]
    func int32s(_ name: String) throws -> [Int32]
}

extension SafeTensorsFile: QuantizedWeightSource {
    public func int8s(_ name: String) throws -> [Int8] { try copy(name, .i8) }
    public func int32s(_ name: String) throws -> [Int32] { try copy(name, .i32) }

    /// Copies out an integer tensor (copying also sidesteps the misalignment an I8 tensor can cause).
    private func copy<T: FixedWidthInteger>(_ name: String, _ dtype: DType) throws -> [T] {
        guard let t = info(name) else { throw ModelFileError.missingTensor(name) }
        guard t.dtype == dtype else { throw ModelFileError.wrongDType(tensor: name, expected: dtype.rawValue, found: t.dtype.rawValue) }
        let raw = bytes(of: t)
        var out = [T](repeating: 0, count: t.elementCount)
        out.withUnsafeMutableBytes { $0.copyMemory(from: raw) }
        return out.map { T(littleEndian: $0) }
    }
}

/// Integer and float tensors held in arrays (tests, tools).
public struct ArrayQuantizedWeights: QuantizedWeightSource {
    public var floats: [String: [Float]]
    public var i8: [String: [Int8]]
    public var i32: [String: [Int32]]

    public init(floats: [String: [Float]], i8: [String: [Int8]], i32: [String: [Int32]]) {
        self.floats = floats
        self.i8 = i8
        self.i32 = i32
    }

    public func withFloats<R>(_ name: String, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        guard let v = floats[name] else { throw ModelFileError.missingTensor(name) }
        return try v.withUnsafeBufferPointer(body)
    }
    public func int8s(_ name: String) throws -> [Int8] {
        guard let v = i8[name] else { throw ModelFileError.missingTensor(name) }
        return v
    }
    public func int32s(_ name: String) throws -> [Int32] {
        guard let v = i32[name] else { throw ModelFileError.missingTensor(name) }
        return v
    }
}
