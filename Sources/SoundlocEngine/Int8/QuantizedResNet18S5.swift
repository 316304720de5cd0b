import Foundation

/// ResNet-18-S5 (or any other `TrunkLayout`) in int8, the twin of `ResNet18S5`: uint8 NHWC activations with
/// per-tensor affine parameters, every convolution through the int8 kernels with ReLU and the block's residual
/// addition fused into requantisation, max-pooling on the codes. Buffers and the schedule are made at init;
/// `forward` allocates nothing. GEMM rows are split over `threads` persistent workers.
public final class QuantizedResNet18S5: BackboneTrunk {
    public let layout: TrunkLayout
    public var prefix: String { layout.prefix }
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
    /// Runs the steps over the worker pool; made at the end of init (it calls back into `runStep`).
    private var scheduler: StepScheduler!

    /// The trunk's tensor list in an int8 file.
    public static func tensorSpecs(prefix: String, inChannels: Int, width: Int) -> [TensorSpec] {
        TrunkLayout(prefix: prefix, inChannels: inChannels, width: width).int8TensorSpecs
    }

    /// Builds ResNet-18-S5 from an int8 file's tensors (validate shapes first). Throws `ModelFileError` when a
    /// layer's `input_quant` disagrees with the quantisation of the activation it reads.
    public convenience init(prefix: String, inChannels: Int, width: Int, inputHeight: Int, inputWidth: Int,
                            weights: QuantizedWeightSource, threads: Int = 1) throws {
        try self.init(TrunkLayout(prefix: prefix, inChannels: inChannels, width: width), inputHeight: inputHeight,
                      inputWidth: inputWidth, weights: weights, threads: threads)
    }

    /// Builds `layout` from its int8 tensors (`layout.int8TensorSpecs`; validate shapes first).
    public init(_ layout: TrunkLayout, inputHeight: Int, inputWidth: Int, weights: QuantizedWeightSource, threads: Int = 1) throws {
        self.layout = layout
        inChannels = layout.inChannels
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        func quant(_ name: String) throws -> ActivationQuantization {
            try ActivationQuantization(stored: try weights.array(name), tensor: name)
        }
        // The input is quantised as the first convolution reads it; every other activation as its producer writes it.
        let first = layout.convs.first { $0.input == layout.input }!
        var acts = [layout.input: try quant("\(first.name).input_quant")]
        var layers = [QuantizedConv2D?]()
        for op in layout.ops {
            guard case .conv(let s) = op else {
                acts[op.output] = acts[op.input]  // max-pooling codes keeps their quantisation
                layers.append(nil)
                continue
            }
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
                layers.append(try QuantizedConv2D(weightOHWI: codes, weightScale: scales, bias: bias, inChannels: s.inChannels,
                                                  outChannels: s.outChannels, kernel: s.kernel, stride: s.stride, input: inQ,
                                                  output: outQ, relu: s.relu, residual: residualQ))
            } catch let e as KernelError {
                throw ModelFileError.malformedEntry(tensor: "\(s.name).weight", reason: e.description)
            }
        }
        inputQuant = acts[layout.input]!
        outputQuant = acts[layout.output]!

        // The kernels take the residual as an input of its own, not promised to be read before the output is
        // written, so no output shares a buffer with what its convolution reads.
        let plan = TrunkLayout.BufferPlan(layout, inputHeight: inputHeight, inputWidth: inputWidth, residualInPlace: false)
        let inputStorage = ByteBuffer(count: plan.shapes[layout.input]!.count)
        let bufs = plan.slotSizes.map { ByteBuffer(count: $0) }
        func view(_ name: String) -> QTensor {
            let s = plan.shapes[name]!
            return QTensor(data: plan.slots[name].map { bufs[$0].pointer } ?? inputStorage.pointer, height: s.h, width: s.w, channels: s.c)
        }
        var steps = [Step]()
        var maxWorkspace = 0
        for (op, layer) in zip(layout.ops, layers) {
            switch op {
            case .conv(let s):
                let x = plan.shapes[s.input]!, y = plan.shapes[s.output]!
                precondition(layer!.outputSize(height: x.h, width: x.w) == (y.h, y.w), "\(s.name): plan and kernels disagree on the shape")
                maxWorkspace = max(maxWorkspace, layer!.workspaceCount(height: x.h, width: x.w))
                steps.append(Step(name: s.name, conv: layer, pool: nil, from: view(s.input), to: view(s.output),
                                  residual: s.residual.map { UnsafePointer(view($0).data) }))
            case .maxPool(let p):
                steps.append(Step(name: p.output, conv: nil, pool: MaxPool2D(kernel: p.kernel, stride: p.stride, padding: p.padding),
                                  from: view(p.input), to: view(p.output), residual: nil))
            }
        }
        self.steps = steps
        storage = [inputStorage] + bufs
        workspace = ByteBuffer(count: maxWorkspace)
        input = view(layout.input)
        output = view(layout.output)
        scheduler = StepScheduler { [unowned self] step, phase, part, parts in self.runStep(step, phase: phase, part: part, of: parts) }
        scheduler.setThreads(threads)
    }

    /// Threads the work is split over (the caller's plus the pool's workers).
    public var threads: Int { scheduler.threads }

    /// Replaces the worker threads with a pool of this trunk's own (not per frame: this starts threads).
    public func setThreads(_ n: Int) { scheduler.setThreads(n) }

    /// Splits the work over `pool` (shared with other networks; nil: this thread only). Not while running.
    public func use(pool: WorkerPool?) { scheduler.use(pool: pool) }

    public var outputShape: (height: Int, width: Int, channels: Int) { (output.height, output.width, output.channels) }

    private func runStep(_ i: Int, phase: Int, part: Int, of parts: Int) {
        steps.withUnsafeBufferPointer { steps in
            let s = steps[i]
            if let c = s.conv {
                c.run(s.from, into: s.to, residual: s.residual, workspace: workspace.pointer, phase: phase, part: part, of: parts)
            } else if let p = s.pool {
                p(s.from, into: s.to, rows: WorkerPool.share(s.to.height, part: part, of: parts))
            }
        }
    }

    /// Step `i`, each phase split over the pool.
    @inline(__always)
    private func runStepOnPool(_ i: Int) {
        let phases = steps.withUnsafeBufferPointer { $0[i].conv?.phaseCount(parts: scheduler.threads) ?? 1 }
        scheduler.run(step: i, phases: phases)
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

    /// Runs like `forward()` and returns each scheduled layer with its wall time (allocates: for benchmarks).
    public func profile() -> [(layer: String, seconds: Double)] {
        profileSteps(steps.count, run: { i in runStepOnPool(i) }, label: { i in
            let s = steps[i]
            let what: String
            if let c = s.conv {
                what = "q8 conv \(c.kernel)x\(c.kernel)/\(c.stride)\(s.residual != nil ? "+res" : "") "
                    + "\(s.from.height)x\(s.from.width)x\(c.inChannels) -> \(s.to.height)x\(s.to.width)x\(c.outChannels)"
            } else {
                what = "maxpool u8 \(s.from.height)x\(s.from.width)x\(s.from.channels)"
            }
            return "\(what)  [\(s.name)]"
        })
    }

    public var bufferAddresses: [UnsafeMutableRawPointer] {
        (storage + [workspace]).map { UnsafeMutableRawPointer($0.pointer) }
    }
}
