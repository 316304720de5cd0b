import COpenBLAS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// 2-D convolution over NHWC tensors with a bias (BatchNorm folded in), as PyTorch's `Conv2d`
/// with zero padding and floor output size. By default one GEMM per call,
/// output[H'W' × Cout] = patches[H'W' × kh·kw·Cin] · weight[kh·kw·Cin × Cout], with the patches built
/// by im2col into a caller workspace (a 1×1 stride-1 convolution reads its input as the patch matrix
/// directly); 3×3 stride-1 pad-1 convolutions use Winograd F(2×2, 3×3) unless told otherwise.
public final class Conv2D {
    /// How the convolution is computed.
    public enum Algorithm: Sendable {
        /// Patches (im2col) times the weight matrix: one GEMM, any kernel.
        case im2col
        /// Winograd F(2×2, 3×3): 16 smaller GEMMs, 2.25× fewer multiplies (3×3, stride 1, pad 1 only).
        case winograd
    }

    public let inChannels: Int
    public let outChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    public let padding: Int
    public let algorithm: Algorithm
    /// Weights repacked once from OIHW to [kh][kw][Cin][Cout]: rows in NHWC patch order, and
    /// Cout contiguous because OpenBLAS runs NoTrans·NoTrans fastest for these shapes (up to 25 %
    /// at the small M of late layers). Nil for Winograd, which keeps only its transformed weights.
    private let weight: FloatBuffer?
    private let bias: FloatBuffer
    private let winograd: Winograd3x3?

    /// Whether Winograd F(2×2, 3×3) can compute this shape.
    public static func winogradApplies(kernelHeight: Int, kernelWidth: Int, stride: Int, padding: Int) -> Bool {
        kernelHeight == 3 && kernelWidth == 3 && stride == 1 && padding == 1
    }

    /// `weightOIHW` is PyTorch's layout [outChannels, inChannels, kernelHeight, kernelWidth].
    /// `algorithm` nil picks Winograd where it applies, im2col elsewhere.
    public init(weightOIHW: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>,
                outChannels: Int, inChannels: Int, kernelHeight: Int, kernelWidth: Int,
                stride: Int = 1, padding: Int = 0, algorithm: Algorithm? = nil) {
        precondition(weightOIHW.count == outChannels * inChannels * kernelHeight * kernelWidth, "conv weight size")
        precondition(bias.count == outChannels, "conv bias size")
        precondition(stride >= 1 && padding >= 0)
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.stride = stride
        self.padding = padding
        let winogradApplies = Self.winogradApplies(kernelHeight: kernelHeight, kernelWidth: kernelWidth, stride: stride, padding: padding)
        precondition(algorithm != .winograd || winogradApplies, "Winograd needs a 3x3 stride-1 pad-1 convolution")
        self.algorithm = algorithm ?? (winogradApplies ? .winograd : .im2col)
        if self.algorithm == .winograd {
            winograd = Winograd3x3(weightOIHW: weightOIHW, inChannels: inChannels, outChannels: outChannels)
            weight = nil
        } else {
            let k = inChannels * kernelHeight * kernelWidth
            let packed = FloatBuffer(count: outChannels * k)
            for o in 0..<outChannels {
                for i in 0..<inChannels {
                    for ky in 0..<kernelHeight {
                        for kx in 0..<kernelWidth {
                            packed.pointer[((ky * kernelWidth + kx) * inChannels + i) * outChannels + o] =
                                weightOIHW[((o * inChannels + i) * kernelHeight + ky) * kernelWidth + kx]
                        }
                    }
                }
            }
            winograd = nil
            weight = packed
        }
        self.bias = FloatBuffer(count: outChannels)
        self.bias.pointer.update(from: bias.baseAddress!, count: outChannels)
    }

    /// Convenience for arrays (tests, tools).
    public convenience init(weightOIHW: [Float], bias: [Float], outChannels: Int, inChannels: Int,
                            kernelHeight: Int, kernelWidth: Int, stride: Int = 1, padding: Int = 0, algorithm: Algorithm? = nil) {
        // Copies keep the pointers valid for the delegated init (an array's own pointer may not escape).
        let w = FloatBuffer(weightOIHW), b = FloatBuffer(bias)
        self.init(weightOIHW: UnsafeBufferPointer(w.buffer), bias: UnsafeBufferPointer(b.buffer),
                  outChannels: outChannels, inChannels: inChannels, kernelHeight: kernelHeight,
                  kernelWidth: kernelWidth, stride: stride, padding: padding, algorithm: algorithm)
    }

    /// Output spatial size for an input of `height` × `width`.
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernelHeight) / stride + 1, (width + 2 * padding - kernelWidth) / stride + 1)
    }

    /// Whether the input already is the patch matrix (no im2col).
    public var isPointwise: Bool { kernelHeight == 1 && kernelWidth == 1 && stride == 1 && padding == 0 }

    /// Floats of workspace `callAsFunction` needs for this input size.
    public func workspaceCount(height: Int, width: Int) -> Int {
        if let winograd { return winograd.workspaceCount(height: height, width: width) }
        if isPointwise { return 0 }
        let (oh, ow) = outputSize(height: height, width: width)
        return oh * ow * kernelHeight * kernelWidth * inChannels
    }

    /// Runs the convolution. With `accumulate`, `output` must hold the residual, which the result
    /// is added to (so a block's shortcut costs no separate pass). `relu` clamps after the bias.
    public func callAsFunction(_ input: Tensor, into output: Tensor, workspace: UnsafeMutablePointer<Float>?,
                               relu: Bool, accumulate: Bool = false) {
        precondition(input.channels == inChannels && output.channels == outChannels, "conv channel mismatch")
        let (oh, ow) = outputSize(height: input.height, width: input.width)
        precondition(output.height == oh && output.width == ow, "conv output shape mismatch")
        if let winograd {
            guard let workspace else { preconditionFailure("Winograd needs a workspace") }
            winograd.run(input, into: output, bias: bias.pointer, workspace: workspace, relu: relu, accumulate: accumulate)
            return
        }
        let m = oh * ow
        let k = kernelHeight * kernelWidth * inChannels
        let patches: UnsafePointer<Float>
        if isPointwise {
            patches = UnsafePointer(input.data)
        } else {
            guard let workspace else { preconditionFailure("conv needs an im2col workspace") }
            im2col(input, into: workspace, outHeight: oh, outWidth: ow)
            patches = UnsafePointer(workspace)
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(outChannels), Int32(k),
                    1, patches, Int32(k), weight!.pointer, Int32(outChannels), accumulate ? 1 : 0, output.data, Int32(outChannels))
        addBias(output.data, rows: m, columns: outChannels, bias: bias.pointer, relu: relu)
    }

    /// Patch row for output (oy, ox): for ky, kx, then channels; out-of-image taps are zero.
    private func im2col(_ input: Tensor, into ws: UnsafeMutablePointer<Float>, outHeight: Int, outWidth: Int) {
        let cin = inChannels, kw = kernelWidth, kh = kernelHeight
        let rowLength = kh * kw * cin
        let w = input.width, h = input.height
        for oy in 0..<outHeight {
            let iy0 = oy * stride - padding
            for ox in 0..<outWidth {
                let ix0 = ox * stride - padding
                var dst = ws + (oy * outWidth + ox) * rowLength
                // Taps kx in [kxBegin, kxEnd) fall inside the image; they are contiguous in NHWC.
                let kxBegin = max(0, -ix0)
                let kxEnd = min(kw, w - ix0)
                for ky in 0..<kh {
                    let iy = iy0 + ky
                    if iy < 0 || iy >= h || kxEnd <= kxBegin {
                        dst.update(repeating: 0, count: kw * cin)
                    } else {
                        if kxBegin > 0 { dst.update(repeating: 0, count: kxBegin * cin) }
                        (dst + kxBegin * cin).update(from: input.data + (iy * w + ix0 + kxBegin) * cin,
                                                     count: (kxEnd - kxBegin) * cin)
                        if kxEnd < kw { (dst + kxEnd * cin).update(repeating: 0, count: (kw - kxEnd) * cin) }
                    }
                    dst += kw * cin
                }
            }
        }
    }
}

/// rows × columns matrix += bias per column, optionally followed by ReLU.
@inline(__always)
func addBias(_ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>, relu: Bool) {
    var row = y
    if relu {
        for _ in 0..<rows {
            for j in 0..<columns { row[j] = max(row[j] + bias[j], 0) }
            row += columns
        }
    } else {
        for _ in 0..<rows {
            for j in 0..<columns { row[j] += bias[j] }
            row += columns
        }
    }
}
