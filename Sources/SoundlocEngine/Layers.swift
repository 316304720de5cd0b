import COpenBLAS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Max pooling over NHWC as PyTorch's `MaxPool2d(kernel, stride, padding)`: padding is -inf
/// (never chosen), output size floor((H + 2p - k) / s) + 1.
public struct MaxPool2D {
    public let kernel: Int
    public let stride: Int
    public let padding: Int

    public init(kernel: Int, stride: Int, padding: Int) {
        precondition(kernel >= 1 && stride >= 1 && padding >= 0 && 2 * padding <= kernel, "PyTorch requires pad <= kernel/2")
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernel) / stride + 1, (width + 2 * padding - kernel) / stride + 1)
    }

    /// Pools output rows `rows` (all when nil); disjoint row ranges may run concurrently.
    public func callAsFunction(_ input: Tensor, into output: Tensor, rows: Range<Int>? = nil) {
        let (oh, ow) = outputSize(height: input.height, width: input.width)
        precondition(output.height == oh && output.width == ow && output.channels == input.channels, "maxpool shape")
        pool(input.data, height: input.height, width: input.width, channels: input.channels, into: output.data,
             rows: rows ?? 0..<oh, lowest: -.infinity)
    }

    /// Max pooling on uint8 codes (monotone, so it keeps their quantisation).
    func callAsFunction(_ input: QTensor, into output: QTensor, rows: Range<Int>? = nil) {
        let (oh, ow) = outputSize(height: input.height, width: input.width)
        precondition(output.height == oh && output.width == ow && output.channels == input.channels, "maxpool shape")
        pool(input.data, height: input.height, width: input.width, channels: input.channels, into: output.data,
             rows: rows ?? 0..<oh, lowest: 0)
    }

    /// The loop both precisions share; `lowest` starts each window, which always holds a real tap.
    private func pool<T: Comparable>(_ x: UnsafePointer<T>, height: Int, width: Int, channels c: Int,
                                     into y: UnsafeMutablePointer<T>, rows: Range<Int>, lowest: T) {
        let ow = outputSize(height: height, width: width).width
        for oy in rows {
            let y0 = max(0, oy * stride - padding), y1 = min(height, oy * stride - padding + kernel)
            for ox in 0..<ow {
                let x0 = max(0, ox * stride - padding), x1 = min(width, ox * stride - padding + kernel)
                let dst = y + (oy * ow + ox) * c
                dst.update(repeating: lowest, count: c)
                for yy in y0..<y1 {
                    for xx in x0..<x1 {
                        let src = x + (yy * width + xx) * c
                        for j in 0..<c { dst[j] = max(dst[j], src[j]) }
                    }
                }
            }
        }
    }
}

/// Fully connected layer y = W·x + b with W stored [out, in] (PyTorch `Linear`); applied to
/// `rows` independent input vectors at once (a 1×1 convolution over H·W pixels is rows = H·W).
public final class Linear {
    public let inFeatures: Int
    public let outFeatures: Int
    private let weight: FloatBuffer
    private let bias: FloatBuffer

    public init(weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>, outFeatures: Int, inFeatures: Int) {
        precondition(weight.count == outFeatures * inFeatures && bias.count == outFeatures, "linear weight size")
        BLASThreads.pinnedToOne
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.weight = FloatBuffer(count: weight.count)
        self.weight.pointer.update(from: weight.baseAddress!, count: weight.count)
        self.bias = FloatBuffer(count: bias.count)
        self.bias.pointer.update(from: bias.baseAddress!, count: bias.count)
    }

    /// Convenience for arrays.
    public convenience init(weight: [Float], bias: [Float], outFeatures: Int, inFeatures: Int) {
        let w = FloatBuffer(weight), b = FloatBuffer(bias)
        self.init(weight: UnsafeBufferPointer(w.buffer), bias: UnsafeBufferPointer(b.buffer), outFeatures: outFeatures, inFeatures: inFeatures)
    }

    /// `input` is rows × inFeatures, `output` rows × outFeatures (row-major). `scale` multiplies
    /// W·x before the bias is added.
    public func callAsFunction(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>,
                               relu: Bool = false, scale: Float = 1) {
        if rows == 1 {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(outFeatures), Int32(inFeatures), scale,
                        weight.pointer, Int32(inFeatures), input, 1, 0, output, 1)
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outFeatures), Int32(inFeatures),
                        scale, input, Int32(inFeatures), weight.pointer, Int32(inFeatures), 0, output, Int32(outFeatures))
        }
        addBias(output, rows: rows, columns: outFeatures, bias: bias.pointer, relu: relu)
    }
}

/// Parameter-free operations on row-major float matrices.
public enum Ops {
    /// out[c] = max over pixels of x[p, c] (x is pixels × channels).
    public static func globalMaxPool(_ x: Tensor, into out: UnsafeMutablePointer<Float>) {
        let c = x.channels
        out.update(repeating: -.infinity, count: c)
        for p in 0..<x.pixels {
            let row = x.data + p * c
            for j in 0..<c { out[j] = max(out[j], row[j]) }
        }
    }

    /// out[c] = mean over pixels of x[p, c].
    public static func globalAveragePool(_ x: Tensor, into out: UnsafeMutablePointer<Float>) {
        let c = x.channels
        out.update(repeating: 0, count: c)
        for p in 0..<x.pixels {
            let row = x.data + p * c
            for j in 0..<c { out[j] += row[j] }
        }
        let inv = Float(x.pixels)
        for j in 0..<c { out[j] /= inv }
    }

    /// Scales each of `rows` rows to unit L2 norm as `F.normalize`: x / max(‖x‖, eps).
    public static func l2Normalize(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, eps: Float = 1e-12) {
        for r in 0..<rows {
            let row = x + r * columns
            var sum: Float = 0
            for j in 0..<columns { sum += row[j] * row[j] }
            let norm = max(sum.squareRoot(), eps)
            for j in 0..<columns { row[j] /= norm }
        }
    }

    /// out[r] = dot(x[r, :], v) for each of `rows` rows (cosine when both are unit length).
    public static func rowDot(_ x: UnsafePointer<Float>, rows: Int, columns: Int, vector v: UnsafePointer<Float>,
                              into out: UnsafeMutablePointer<Float>) {
        BLASThreads.pinnedToOne
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(rows), Int32(columns), 1, x, Int32(columns), v, 1, 0, out, 1)
    }

    /// x = 1 / (1 + exp(-scale·x)), in place.
    public static func sigmoid(_ x: UnsafeMutablePointer<Float>, count: Int, scale: Float = 1) {
        for i in 0..<count { x[i] = 1 / (1 + expf(-scale * x[i])) }
    }

    /// Numerically stable softmax of `count` values spaced `stride` apart, in place, of scale·x.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int, stride: Int = 1, scale: Float = 1) {
        var m = -Float.infinity
        for i in 0..<count { m = max(m, scale * x[i * stride]) }
        var sum: Float = 0
        for i in 0..<count {
            let e = expf(scale * x[i * stride] - m)
            x[i * stride] = e
            sum += e
        }
        for i in 0..<count { x[i * stride] /= sum }
    }

    /// dst[c, p] = src[p, c]: NHWC (pixels × channels) to CHW.
    public static func transpose(_ src: UnsafePointer<Float>, rows: Int, columns: Int, into dst: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            for c in 0..<columns { dst[c * rows + r] = src[r * columns + c] }
        }
    }
}
