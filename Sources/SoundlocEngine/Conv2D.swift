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
        BLASThreads.pinnedToOne
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
        run(input, into: output, workspace: workspace, relu: relu, accumulate: accumulate, phase: 0, part: 0, of: 1)
    }

    /// Whether `parts` pieces split the output's rows (pixels or Winograd tiles: each piece builds and multiplies
    /// its own patches, one phase) rather than its channels (each piece reads a slice of the weights, after a phase
    /// that builds all patches). Rows when there are many: splitting few rows leaves each GEMM too short and
    /// makes every piece pack the whole weight matrix.
    private func splitsRows(_ input: Tensor, parts: Int) -> Bool {
        let (oh, ow) = outputSize(height: input.height, width: input.width)
        let rows = winograd == nil ? oh * ow : Winograd3x3.tiles(height: input.height, width: input.width)
        return rows >= Self.rowsPerChannelForRowSplit * outChannels || outChannels < 16 * parts
    }

    /// Output rows per output channel from which the work is split by rows (full width, 2 threads on the EPYC: 1, 2
    /// and 4 within noise of each other, all rows or all channels 5-10 % slower).
    static let rowsPerChannelForRowSplit = 2

    /// Phases `run` takes with `parts` pieces each (the pieces of one phase may run concurrently; phases in order).
    public func phaseCount(_ input: Tensor, parts: Int) -> Int {
        if parts == 1 || splitsRows(input, parts: parts) || (winograd == nil && isPointwise) { return 1 }
        return 2
    }

    /// Piece `part` of `parts` of phase `phase` (see `phaseCount`), on one workspace shared by the pieces.
    /// Each piece calls a single-threaded sgemm; the pieces are the engine's parallelism.
    public func run(_ input: Tensor, into output: Tensor, workspace: UnsafeMutablePointer<Float>?, relu: Bool,
                    accumulate: Bool, phase: Int, part: Int, of parts: Int) {
        precondition(input.channels == inChannels && output.channels == outChannels, "conv channel mismatch")
        let (oh, ow) = outputSize(height: input.height, width: input.width)
        precondition(output.height == oh && output.width == ow, "conv output shape mismatch")
        let byRows = parts == 1 || splitsRows(input, parts: parts)
        let allColumns = 0..<outChannels
        if let winograd {
            guard let workspace else { preconditionFailure("Winograd needs a workspace") }
            let tiles = Winograd3x3.tiles(height: input.height, width: input.width)
            if byRows {
                let mine = WorkerPool.share(tiles, part: part, of: parts, quantum: 4)
                winograd.transformInput(input, workspace: workspace, tiles: mine)
                winograd.finish(into: output, bias: bias.pointer, workspace: workspace, tiles: mine, columns: allColumns,
                                relu: relu, accumulate: accumulate)
            } else if phase == 0 {
                winograd.transformInput(input, workspace: workspace, tiles: WorkerPool.share(tiles, part: part, of: parts))
            } else {
                winograd.finish(into: output, bias: bias.pointer, workspace: workspace, tiles: 0..<tiles,
                                columns: WorkerPool.share(outChannels, part: part, of: parts, quantum: 16), relu: relu, accumulate: accumulate)
            }
            return
        }
        let m = oh * ow
        let rows = byRows ? WorkerPool.share(m, part: part, of: parts, quantum: 4) : 0..<m
        let patches: UnsafePointer<Float>
        if isPointwise {
            patches = UnsafePointer(input.data)
        } else {
            guard let workspace else { preconditionFailure("conv needs an im2col workspace") }
            if byRows || phase == 0 {
                im2col(input, into: workspace, outWidth: ow, rows: byRows ? rows : WorkerPool.share(m, part: part, of: parts))
                if !byRows { return }
            }
            patches = UnsafePointer(workspace)
        }
        let columns = byRows ? allColumns : WorkerPool.share(outChannels, part: part, of: parts, quantum: 16)
        multiply(patches, into: output.data, rows: rows, columns: columns, relu: relu, accumulate: accumulate)
    }

    /// output[rows, columns] (+)= patches[rows] · weight[:, columns] + bias, then ReLU.
    private func multiply(_ patches: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Range<Int>,
                          columns: Range<Int>, relu: Bool, accumulate: Bool) {
        guard !rows.isEmpty, !columns.isEmpty else { return }
        let k = kernelHeight * kernelWidth * inChannels, n = outChannels
        let c = y + rows.lowerBound * n + columns.lowerBound
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows.count), Int32(columns.count), Int32(k),
                    1, patches + rows.lowerBound * k, Int32(k), weight!.pointer + columns.lowerBound, Int32(n),
                    accumulate ? 1 : 0, c, Int32(n))
        addBias(c, rows: rows.count, columns: columns.count, stride: n, bias: bias.pointer + columns.lowerBound, relu: relu)
    }

    /// Patch rows `rows` (output pixels in raster order): for ky, kx, then channels; out-of-image taps are zero.
    private func im2col(_ input: Tensor, into ws: UnsafeMutablePointer<Float>, outWidth: Int, rows: Range<Int>) {
        let cin = inChannels, kw = kernelWidth, kh = kernelHeight
        let rowLength = kh * kw * cin
        let w = input.width, h = input.height
        for row in rows {
            let oy = row / outWidth, ox = row % outWidth
            let iy0 = oy * stride - padding, ix0 = ox * stride - padding
            var dst = ws + row * rowLength
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

/// rows × columns matrix (rows `stride` apart; default: packed) += bias per column, optionally followed by ReLU.
@inline(__always)
func addBias(_ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int? = nil, bias: UnsafePointer<Float>, relu: Bool) {
    var row = y
    let step = stride ?? columns
    if relu {
        for _ in 0..<rows {
            for j in 0..<columns { row[j] = max(row[j] + bias[j], 0) }
            row += step
        }
    } else {
        for _ in 0..<rows {
            for j in 0..<columns { row[j] += bias[j] }
            row += step
        }
    }
}
