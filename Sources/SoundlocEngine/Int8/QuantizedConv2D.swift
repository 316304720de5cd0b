import CSoundlocKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A batch-1 NHWC uint8 view (element (y, x, c) at `data[(y·width + x)·channels + c]`); not owning.
public struct QTensor {
    public let data: UnsafeMutablePointer<UInt8>
    public let height: Int
    public let width: Int
    public let channels: Int
    public init(data: UnsafeMutablePointer<UInt8>, height: Int, width: Int, channels: Int) {
        self.data = data
        self.height = height
        self.width = width
        self.channels = channels
    }
    public var pixels: Int { height * width }
    public var count: Int { height * width * channels }
}

/// uint8 storage allocated once (64-byte aligned, zeroed) and freed with its owner.
public final class ByteBuffer {
    public let pointer: UnsafeMutablePointer<UInt8>
    public let count: Int
    public init(count: Int) {
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1)
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("out of memory allocating \(bytes) bytes") }
        memset(raw, 0, bytes)
        pointer = raw.bindMemory(to: UInt8.self, capacity: bytes)
        self.count = count
    }
    deinit { free(pointer) }
}

/// Why the int8 kernels refused a layer (bad weights, unsupported implementation).
public struct KernelError: Error, CustomStringConvertible {
    public let description: String
}

/// The int8 kernel implementations: which exist, which this CPU runs, and which one is in use.
public enum Int8Kernels {
    /// Selects the implementation in use and returns its name: $SOUNDLOC_KERNELS if set, else the configured
    /// default (`setDefault`), else the best this CPU supports. Throws if the forced choice is unusable.
    public static func activate() throws -> String {
        if soundloc_kernels_select(nil) != SOUNDLOC_KERNELS_OK {
            throw KernelError(description: "int8 kernels: " + String(cString: soundloc_kernels_error()))
        }
        return String(cString: soundloc_kernels_active_name())
    }
    /// Makes `name` (nil: automatic) what `activate` picks when $SOUNDLOC_KERNELS is unset, e.g. a board
    /// config's `engine.kernels`. Throws, keeping the previous default, for a name this CPU cannot run.
    public static func setDefault(_ name: String?) throws {
        if soundloc_kernels_set_default(name) != SOUNDLOC_KERNELS_OK {
            throw KernelError(description: String(cString: soundloc_kernels_error()))
        }
    }
    public static var activeName: String { String(cString: soundloc_kernels_active_name()) }
    /// Every implementation name `SOUNDLOC_KERNELS` and `engine.kernels` take, best first (from the C target's list).
    public static let names: [String] = {
        var out = [String]()
        while let name = soundloc_kernels_name(out.count) { out.append(String(cString: name)) }
        return out
    }()
    /// Whether `name` is built for this architecture and supported by this CPU.
    public static func isSupported(_ name: String) -> Bool { soundloc_kernels_supported(name) != 0 }
    /// This CPU's SIMD features that decide which implementations it runs ("avx2 fma no avx512vnni ...").
    public static var cpuFeatures: String { String(cString: soundloc_kernels_cpu_features()) }
    /// The implementations this CPU runs, best first (always ends with the reference).
    public static var supportedNames: [String] { names.filter(isSupported) }
    /// Register tile rows of the active implementation (row splits are multiples of it).
    static var tileRows: Int { Int(soundloc_kernels_active().pointee.mr) }
}

/// A quantised convolution: u8 NHWC input (per-tensor zero point) × s8 per-channel weights → u8 output,
/// requantised with an optional ReLU and an optional residual added before it, as one GEMM
/// (im2col for every shape but 1×1 stride 1, which reads the input directly), or, for 3×3 stride-1 layers where
/// the kernels prefer it (AVX2 without VNNI), as an exact Winograd F(2×2,3×3) with the same output bit for bit.
public final class QuantizedConv2D {
    public let inChannels, outChannels, kernel, stride, padding: Int
    public let input: ActivationQuantization
    public let output: ActivationQuantization
    public let relu: Bool
    public let residual: ActivationQuantization?
    /// Whether this layer runs as Winograd F(2×2,3×3) instead of a GEMM.
    public let isWinograd: Bool
    private let packed: UnsafeMutableRawPointer
    private let scales: FloatBuffer

    /// `weightOHWI` codes in [−127, 127]; `bias` in units of input scale × weight scale. `winograd`: nil takes the
    /// Winograd path where the kernels prefer it, false never does, true does for every 3×3 stride-1 layer.
    public init(weightOHWI: [Int8], weightScale: [Float], bias: [Int32], inChannels: Int, outChannels: Int,
                kernel: Int, stride: Int, input: ActivationQuantization, output: ActivationQuantization,
                relu: Bool, residual: ActivationQuantization? = nil, winograd: Bool? = nil) throws {
        let k = kernel * kernel * inChannels
        precondition(weightOHWI.count == outChannels * k && weightScale.count == outChannels && bias.count == outChannels)
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        padding = kernel / 2
        self.input = input
        self.output = output
        self.relu = relu
        self.residual = residual
        isWinograd = kernel == 3 && stride == 1 && (winograd ?? (soundloc_q8_wino_preferred() != 0))
        var raw: UnsafeMutableRawPointer?
        let size = isWinograd ? soundloc_q8_wino_packed_size(outChannels, inChannels) : soundloc_q8_gemm_packed_size(outChannels, k)
        guard posix_memalign(&raw, 64, max(size, 64)) == 0, let raw else { fatalError("out of memory packing weights") }
        packed = raw
        let winograd = isWinograd
        let rc = weightOHWI.withUnsafeBufferPointer { w in
            bias.withUnsafeBufferPointer { b in
                winograd ? soundloc_q8_wino_pack_weights(outChannels, inChannels, w.baseAddress, b.baseAddress, raw)
                    : soundloc_q8_gemm_pack_weights(outChannels, k, w.baseAddress, b.baseAddress, UInt8(input.zeroPoint), raw)
            }
        }
        guard rc == SOUNDLOC_KERNELS_OK else {
            free(raw)
            throw KernelError(description: "packing weights failed (code \(rc)): codes must lie in [-127, 127]")
        }
        scales = FloatBuffer(count: outChannels)
        for n in 0..<outChannels { scales.pointer[n] = input.scale * weightScale[n] / output.scale }
    }

    deinit { free(packed) }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        (soundloc_conv_out_size(height, kernel, stride, padding, padding), soundloc_conv_out_size(width, kernel, stride, padding, padding))
    }

    public var isPointwise: Bool { kernel == 1 && stride == 1 }

    /// Bytes of workspace (im2col, or the Winograd transforms) for this input size.
    public func workspaceCount(height: Int, width: Int) -> Int {
        if isWinograd { return soundloc_q8_wino_workspace_size(height, width, inChannels, outChannels) }
        if isPointwise { return 0 }
        let (oh, ow) = outputSize(height: height, width: width)
        return oh * ow * kernel * kernel * inChannels
    }

    /// How many phases a run split in `parts` pieces takes; the pieces of one phase may run concurrently, and each
    /// phase must be finished before the next starts. A Winograd layer split for threads first transforms its input
    /// by tile rows, then computes its output by columns, so each thread reads only its share of the weights.
    public func phaseCount(parts: Int) -> Int { isWinograd && parts > 1 ? 2 : 1 }

    /// Piece `part` of `parts` of phase `phase` (in whole register tiles, Winograd tile rows or 16-column panels),
    /// on one workspace shared by the pieces. `residual` must be laid out like the output and quantised with
    /// `self.residual`.
    public func run(_ x: QTensor, into y: QTensor, residual r: UnsafePointer<UInt8>?, workspace: UnsafeMutablePointer<UInt8>?,
                    phase: Int = 0, part: Int, of parts: Int) {
        func share(_ count: Int, quantum: Int) -> Range<Int> { WorkerPool.share(count, part: part, of: parts, quantum: quantum) }
        guard isWinograd else {
            let rows = share(y.pixels, quantum: max(1, Int8Kernels.tileRows))
            run(x, into: y, residual: r, workspace: workspace, rows: rows.lowerBound, rows.upperBound)
            return
        }
        guard let workspace else { preconditionFailure("a Winograd conv needs its workspace") }
        let zp = UInt8(input.zeroPoint), flavor = Int32(SOUNDLOC_WINO_BEST)
        let rc: Int32
        if parts == 1 {
            var rq = requantisation(residual: r)
            rc = soundloc_q8_wino_conv(flavor, packed, x.data, x.height, x.width, x.channels, zp, 0, (y.height + 1) / 2, &rq, y.data, workspace)
        } else if phase == 0 {
            let tileRows = share((y.height + 1) / 2, quantum: 1)
            rc = soundloc_q8_wino_transform(flavor, packed, x.data, x.height, x.width, x.channels, zp, tileRows.lowerBound,
                                            tileRows.upperBound, workspace)
        } else {
            var rq = requantisation(residual: r)
            let panel = share(outChannels, quantum: 16)
            rc = soundloc_q8_wino_finish(flavor, packed, y.height, y.width, panel.lowerBound, panel.upperBound, &rq, y.data, workspace)
        }
        precondition(rc == SOUNDLOC_KERNELS_OK, "q8 Winograd conv failed with code \(rc)")
    }

    private func requantisation(residual r: UnsafePointer<UInt8>?) -> soundloc_q8_requant {
        var rq = soundloc_q8_requant()
        rq.scale = UnsafePointer(scales.pointer)
        rq.out_zp = output.zeroPoint
        rq.qmin = relu ? UInt8(output.zeroPoint) : 0
        rq.qmax = 255
        if let r, let res = residual {
            rq.residual = r
            rq.residual_stride = outChannels
            rq.residual_zp = res.zeroPoint
            rq.residual_mult = res.scale / output.scale
        }
        return rq
    }

    /// Output rows (pixels) [m0, m1) of the GEMM path: im2col of those rows, then their GEMM. Disjoint ranges may
    /// run concurrently.
    public func run(_ x: QTensor, into y: QTensor, residual r: UnsafePointer<UInt8>?, workspace: UnsafeMutablePointer<UInt8>?,
                    rows m0: Int, _ m1: Int) {
        precondition(!isWinograd, "a Winograd conv runs by parts")
        guard m1 > m0 else { return }
        let k = kernel * kernel * inChannels
        let a: UnsafePointer<UInt8>
        if isPointwise {
            a = UnsafePointer(x.data)
        } else {
            guard let workspace else { preconditionFailure("int8 conv needs an im2col workspace") }
            soundloc_u8_im2col_nhwc(x.data, x.height, x.width, x.channels, kernel, kernel, stride, stride, padding, padding,
                                    y.width, UInt8(input.zeroPoint), m0, m1, workspace, k)
            a = UnsafePointer(workspace)
        }
        var rq = requantisation(residual: r)
        let rc = soundloc_q8_gemm(packed, m0, m1, 0, outChannels, a, k, &rq, y.data, outChannels)
        precondition(rc == SOUNDLOC_KERNELS_OK, "q8 gemm failed with code \(rc)")
    }
}
