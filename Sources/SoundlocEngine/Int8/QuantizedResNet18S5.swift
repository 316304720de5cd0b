import Dispatch
import Foundation

/// ResNet-18-S5 in int8 (the twin of `ResNet18S5`): uint8 NHWC activations with per-tensor affine
/// parameters, every convolution through the int8 kernels with ReLU and the block's residual addition
/// fused into requantisation, max-pooling on the codes. Buffers and the schedule are made at init;
/// `forward` allocates nothing. GEMM rows are split over `threads` persistent workers.
public final class QuantizedResNet18S5: BackboneTrunk {
    public let prefix: String
    public let inChannels: Int
    public let inputHeight: Int
    public let inputWidth: Int
    /// Quantisation of the input (from the stem's `input_quant`) and of `output`.
    public let inputQuant: ActivationQuantization
    public let outputQuant: ActivationQuantization
    public let input: QTensor
    /// f as uint8 codes, H×W×8·width.
    public let output: QTensor

    private struct Step {
        var name: String
        var conv: QuantizedConv2D?
        var pool: MaxPool2D?
        var from: QTensor
        var to: QTensor
        var residual: UnsafePointer<UInt8>?
    }
    private let steps: [Step]
    private let storage: [ByteBuffer]
    private let workspace: ByteBuffer
    private var pool: WorkerPool?
    private var current = 0, currentPhase = 0

    /// The trunk's tensor list in an int8 file.
    public static func tensorSpecs(prefix: String, inChannels: Int, width: Int) -> [TensorSpec] {
        Int8ConvSpec.tensorSpecs(prefix: prefix, inChannels: inChannels, width: width)
    }

    /// Builds from an int8 file's tensors (validate shapes first). Throws `ModelFileError` when a layer's
    /// `input_quant` disagrees with the quantisation of the activation it reads.
    public init(prefix: String, inChannels: Int, width: Int, inputHeight: Int, inputWidth: Int,
                weights: QuantizedWeightSource, threads: Int = 1) throws {
        self.prefix = prefix
        self.inChannels = inChannels
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        let specs = Int8ConvSpec.trunk(prefix: prefix, inChannels: inChannels, width: width)
        func quant(_ name: String) throws -> ActivationQuantization {
            try ActivationQuantization(stored: try weights.array(name), tensor: name)
        }
        var acts = ["\(prefix).input": try quant("\(specs[0].name).input_quant")]
        var convs = [QuantizedConv2D]()
        for s in specs {
            let inQ = try quant("\(s.name).input_quant"), outQ = try quant("\(s.name).output_quant")
            guard acts[s.input] == inQ else {
                throw ModelFileError.malformedEntry(tensor: "\(s.name).input_quant",
                                                    reason: "\(inQ.stored) differs from the quantisation of \(s.input), which it reads")
            }
            if s.relu, outQ.zeroPoint != 0 {
                throw ModelFileError.malformedEntry(tensor: "\(s.name).output_quant", reason: "a ReLU output needs zero point 0")
            }
            acts[s.output] = outQ
            let scales = try weights.array("\(s.name).weight_scale")
            guard scales.allSatisfy({ $0 >= Float.leastNormalMagnitude }) else {
                throw ModelFileError.malformedEntry(tensor: "\(s.name).weight_scale", reason: "scales must be positive normal floats")
            }
            // The requantisation multipliers the kernels turn into integers must be finite.
            let residualQ = s.residual.map { acts[$0]! }
            if let bad = scales.firstIndex(where: { !(inQ.scale * $0 / outQ.scale).isFinite }) {
                throw ModelFileError.malformedEntry(tensor: "\(s.name).weight_scale",
                                                    reason: "element \(bad) makes the output multiplier overflow (\(inQ.scale) · \(scales[bad]) / \(outQ.scale))")
            }
            if let residualQ, !(residualQ.scale / outQ.scale).isFinite {
                throw ModelFileError.malformedEntry(tensor: "\(s.name).output_quant", reason: "the residual multiplier overflows")
            }
            let codes = try weights.int8s("\(s.name).weight")
            if let bad = codes.firstIndex(of: -128) {
                throw ModelFileError.malformedEntry(tensor: "\(s.name).weight", reason: "code -128 at element \(bad) (int8 weights lie in [-127, 127])")
            }
            let bias = try weights.int32s("\(s.name).bias")
            if let bad = bias.firstIndex(where: { abs(Int64($0)) > 1 << 30 }) {
                throw ModelFileError.malformedEntry(tensor: "\(s.name).bias", reason: "element \(bad) exceeds 2^30")
            }
            do {
                convs.append(try QuantizedConv2D(weightOHWI: codes, weightScale: scales, bias: bias, inChannels: s.inChannels,
                                                 outChannels: s.outChannels, kernel: s.kernel, stride: s.stride, input: inQ,
                                                 output: outQ, relu: s.relu, residual: residualQ))
            } catch let e as KernelError {
                throw ModelFileError.malformedEntry(tensor: "\(s.name).weight", reason: e.description)
            }
        }
        inputQuant = acts["\(prefix).input"]!
        outputQuant = acts[specs.last!.output]!

        // Shapes, then buffers: one per activation is simplest and at most a few MB.
        struct Shape { var h: Int, w: Int, c: Int }
        var shapes = ["\(prefix).input": Shape(h: inputHeight, w: inputWidth, c: inChannels)]
        var maxWorkspace = 0
        let maxPool = MaxPool2D(kernel: 3, stride: 2, padding: 1)
        var stemShape = Shape(h: 0, w: 0, c: 0)
        for (s, c) in zip(specs, convs) {
            let x = s.name == specs[0].name ? shapes["\(prefix).input"]! : shapes[s.input]!
            let (oh, ow) = c.outputSize(height: x.h, width: x.w)
            precondition(oh >= 1 && ow >= 1, "input \(inputHeight)x\(inputWidth) too small for ResNet-18-S5")
            maxWorkspace = max(maxWorkspace, c.workspaceCount(height: x.h, width: x.w))
            if s.name == specs[0].name {
                stemShape = Shape(h: oh, w: ow, c: s.outChannels)
                let (ph, pw) = maxPool.outputSize(height: oh, width: ow)
                shapes[s.output] = Shape(h: ph, w: pw, c: s.outChannels)
            } else {
                shapes[s.output] = Shape(h: oh, w: ow, c: s.outChannels)
            }
        }
        var buffers = [String: ByteBuffer]()
        for (name, sh) in shapes { buffers[name] = ByteBuffer(count: sh.h * sh.w * sh.c) }
        let stemOut = ByteBuffer(count: stemShape.h * stemShape.w * stemShape.c)
        func view(_ name: String) -> QTensor {
            let sh = shapes[name]!
            return QTensor(data: buffers[name]!.pointer, height: sh.h, width: sh.w, channels: sh.c)
        }
        let stemView = QTensor(data: stemOut.pointer, height: stemShape.h, width: stemShape.w, channels: stemShape.c)
        var steps = [Step]()
        for (s, c) in zip(specs, convs) {
            if s.name == specs[0].name {
                steps.append(Step(name: s.name, conv: c, pool: nil, from: view(s.input), to: stemView, residual: nil))
                steps.append(Step(name: "\(prefix).maxpool", conv: nil, pool: maxPool, from: stemView, to: view(s.output), residual: nil))
            } else {
                steps.append(Step(name: s.name, conv: c, pool: nil, from: view(s.input), to: view(s.output),
                                  residual: s.residual.map { UnsafePointer(buffers[$0]!.pointer) }))
            }
        }
        self.steps = steps
        storage = buffers.keys.sorted().map { buffers[$0]! } + [stemOut]
        workspace = ByteBuffer(count: maxWorkspace)
        input = view("\(prefix).input")
        output = view(specs.last!.output)
        setThreads(threads)
    }

    deinit { pool?.shutdown() }

    /// Threads the GEMMs' rows are split over (the caller's plus `threads − 1` workers).
    public private(set) var threads = 1

    /// Replaces the worker threads (not per frame: this starts threads).
    public func setThreads(_ n: Int) {
        threads = max(1, n)
        pool?.shutdown()
        pool = nil
        if threads > 1 {
            let p = WorkerPool(parts: threads), parts = threads
            p.setWork { [unowned self] part in self.runStep(self.current, phase: self.currentPhase, part: part, of: parts) }
            pool = p
        }
    }

    public var outputShape: (height: Int, width: Int, channels: Int) { (output.height, output.width, output.channels) }

    private func runStep(_ i: Int, phase: Int, part: Int, of parts: Int) {
        steps.withUnsafeBufferPointer { steps in
            let s = steps[i]
            if let c = s.conv {
                c.run(s.from, into: s.to, residual: s.residual, workspace: workspace.pointer, phase: phase, part: part, of: parts)
            } else if let p = s.pool, part == 0 {
                Self.maxPool(p, s.from, into: s.to)
            }
        }
    }

    /// Step `i`: a convolution's phases each split over the pool, anything else on this thread.
    @inline(__always)
    private func runStepOnPool(_ i: Int) {
        let conv = steps.withUnsafeBufferPointer { $0[i].conv }
        guard let pool, let conv else { return runStep(i, phase: 0, part: 0, of: 1) }
        current = i
        for phase in 0..<conv.phaseCount(parts: pool.parts) {
            currentPhase = phase
            pool.run()
        }
    }

    /// Runs the trunk on `input`; returns `output`.
    @discardableResult
    public func forward() -> QTensor {
        for i in 0..<steps.count { runStepOnPool(i) }
        return output
    }

    /// Quantises a CHW float input into `input` (NHWC codes) and runs.
    @discardableResult
    public func forward(chw: UnsafeBufferPointer<Float>) -> QTensor {
        precondition(chw.count == input.count, "expected \(inChannels)x\(inputHeight)x\(inputWidth) floats, got \(chw.count)")
        let hw = inputHeight * inputWidth, c = inChannels
        let inv = 1 / inputQuant.scale, zp = Float(inputQuant.zeroPoint)
        let dst = input.data
        for ch in 0..<c {
            let src = chw.baseAddress! + ch * hw
            for p in 0..<hw {
                dst[p * c + ch] = UInt8(max(0, min(255, (src[p] * inv).rounded(.toNearestOrEven) + zp)))
            }
        }
        return forward()
    }

    public func run(chw: UnsafeBufferPointer<Float>) { forward(chw: chw) }

    /// `output` as floats, (q − zp)·scale, into `out` (H·W·C).
    public func dequantizeOutput(into out: UnsafeMutablePointer<Float>) {
        let s = outputQuant.scale, zp = outputQuant.zeroPoint
        for i in 0..<output.count { out[i] = Float(Int32(output.data[i]) - zp) * s }
    }

    /// Global max pool of `output` on the codes (monotone, so it commutes with dequantisation), dequantised into `out` (C).
    public func globalMaxPoolDequantized(into out: UnsafeMutablePointer<Float>) {
        let c = output.channels
        let s = outputQuant.scale, zp = outputQuant.zeroPoint
        for j in 0..<c {
            var m: UInt8 = 0
            for p in 0..<output.pixels { m = max(m, output.data[p * c + j]) }
            out[j] = Float(Int32(m) - zp) * s
        }
    }

    /// Max pooling on codes; padding is never chosen (every window holds a real tap).
    static func maxPool(_ p: MaxPool2D, _ x: QTensor, into y: QTensor) {
        let c = x.channels
        for oy in 0..<y.height {
            let y0 = max(0, oy * p.stride - p.padding), y1 = min(x.height, oy * p.stride - p.padding + p.kernel)
            for ox in 0..<y.width {
                let x0 = max(0, ox * p.stride - p.padding), x1 = min(x.width, ox * p.stride - p.padding + p.kernel)
                let dst = y.data + (oy * y.width + ox) * c
                dst.update(repeating: 0, count: c)
                for yy in y0..<y1 {
                    for xx in x0..<x1 {
                        let src = x.data + (yy * x.width + xx) * c
                        for j in 0..<c { dst[j] = max(dst[j], src[j]) }
                    }
                }
            }
        }
    }

    public func profile() -> [(layer: String, seconds: Double)] {
        var out = [(layer: String, seconds: Double)]()
        for (i, s) in steps.enumerated() {
            let start = DispatchTime.now().uptimeNanoseconds
            runStepOnPool(i)
            let what: String
            if let c = s.conv {
                what = "q8 conv \(c.kernel)x\(c.kernel)/\(c.stride)\(s.residual != nil ? "+res" : "") "
                    + "\(s.from.height)x\(s.from.width)x\(c.inChannels) -> \(s.to.height)x\(s.to.width)x\(c.outChannels)"
            } else {
                what = "maxpool u8 \(s.from.height)x\(s.from.width)x\(s.from.channels)"
            }
            out.append(("\(what)  [\(s.name)]", Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
        }
        return out
    }

    public var bufferAddresses: [UnsafeMutableRawPointer] {
        (storage + [workspace]).map { UnsafeMutableRawPointer($0.pointer) }
    }
}
