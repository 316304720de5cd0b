#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Float storage allocated once (64-byte aligned, zeroed) and freed with its owner.
public final class FloatBuffer {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        precondition(count >= 0)
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("out of memory allocating \(bytes) bytes") }
        memset(raw, 0, bytes)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
    }

    /// Copies `values` into a new buffer.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { free(pointer) }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

/// A batch-1 NHWC view: element (y, x, c) at `data[(y * width + x) * channels + c]`.
/// It does not own its storage; the layer plan that made it keeps the buffer alive.
public struct Tensor {
    public let data: UnsafeMutablePointer<Float>
    public let height: Int
    public let width: Int
    public let channels: Int

    public init(data: UnsafeMutablePointer<Float>, height: Int, width: Int, channels: Int) {
        self.data = data
        self.height = height
        self.width = width
        self.channels = channels
    }

    public var count: Int { height * width * channels }
    /// Number of spatial positions (rows of the H·W × C matrix this tensor is).
    public var pixels: Int { height * width }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    public var readOnly: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: data, count: count) }
}
