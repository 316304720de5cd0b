import Foundation

/// Builds a safetensors file deterministically: tensors in the order added (callers sort), the JSON
/// header with sorted keys padded with spaces to a multiple of 8, and metadata `checksum` set to the
/// SHA-256 of the data section.
public struct SafeTensorsWriter {
    private var entries = [(name: String, dtype: DType, shape: [Int], range: Range<Int>)]()
    private var data = [UInt8]()
    public var metadata: [String: String]

    public init(metadata: [String: String]) { self.metadata = metadata }

    /// Appends raw little-endian bytes for a tensor.
    public mutating func add(_ name: String, dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer) {
        precondition(shape.reduce(1, *) * dtype.size == bytes.count, "\(name): byte count does not match shape")
        precondition(!entries.contains { $0.name == name }, "\(name) added twice")
        let begin = data.count
        data.append(contentsOf: bytes)
        entries.append((name, dtype, shape, begin..<data.count))
    }

    public mutating func add(_ name: String, shape: [Int], floats: [Float]) {
        floats.map { $0.bitPattern.littleEndian }.withUnsafeBytes { add(name, dtype: .f32, shape: shape, bytes: $0) }
    }

    public mutating func add(_ name: String, shape: [Int], int8s: [Int8]) {
        int8s.withUnsafeBytes { add(name, dtype: .i8, shape: shape, bytes: $0) }
    }

    public mutating func add(_ name: String, shape: [Int], int32s: [Int32]) {
        int32s.map { $0.littleEndian }.withUnsafeBytes { add(name, dtype: .i32, shape: shape, bytes: $0) }
    }

    /// SHA-256 (hex) of the data section so far.
    public var checksum: String { SHA256.hex(data) }

    /// The whole file.
    public func bytes() throws -> [UInt8] {
        var header: [String: Any] = [:]
        var meta = metadata
        meta["checksum"] = "sha256:" + checksum
        header["__metadata__"] = meta
        for e in entries {
            header[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [e.range.lowerBound, e.range.upperBound]]
        }
        var json = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(0x20) }
        var out = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
        out.reserveCapacity(8 + json.count + data.count)
        out += json
        out += data
        return out
    }

    /// Writes the file atomically (a temporary beside `path`, then rename).
    public func write(to path: String) throws {
        try Data(try bytes()).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
