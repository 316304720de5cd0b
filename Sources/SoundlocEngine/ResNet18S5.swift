/// ResNet-18-S5 trunk (SPEC §2), or any other `TrunkLayout`, in fp32: torchvision ResNet-18 with BasicBlocks
/// [2, 2, 2, 2], conv1 7×7/2 pad 3, max-pool 3/2/1, layer strides 1, 2, 2, 1; BatchNorm folded into conv biases;
/// no pooling.
///
/// Every activation buffer and the im2col workspace are allocated at init, and the whole forward
/// pass is a precomputed schedule over them, so `forward` allocates nothing. Each layer is split over
/// `threads` (a `WorkerPool`), every piece calling single-threaded OpenBLAS. An instance is not
/// safe to run from two threads at once; separate instances are independent.
public final class ResNet18S5: BackboneTrunk {
    /// 3×3 stride-1 convolutions whose output has at least this many 2×2 tiles use Winograd.
    public static let winogradMinimumTiles = 8

    public let layout: TrunkLayout
    public var prefix: String { layout.prefix }
    public let inChannels: Int
    public var width: Int { layout.width }
    public let inputHeight: Int
    public let inputWidth: Int
    /// f: outputHeight × outputWidth × 8·width, NHWC, in a buffer owned by this object.
    public let output: Tensor
    /// Fill this (HWC) and call `forward()`, or use `forward(chw:)`.
    public let input: Tensor

    /// Called with each activation as it is produced (calibration); nil costs nothing. Names: `P.input`,
    /// then each layer's output under its tensor name (`P.conv1` after ReLU, `P.maxpool`,
    /// `P.layerL.B.conv1`, `P.layerL.B.downsample`, `P.layerL.B.conv2` after the residual and ReLU).
    public var observer: ((String, Tensor) -> Void)?

    /// One scheduled layer.
    private struct Step {
        var name: String
        var conv: Conv2D?
        var pool: MaxPool2D?
        var from: Tensor
        var to: Tensor
        var relu = false
        /// `to` holds the shortcut, which the convolution adds onto.
        var accumulate = false
    }

    private let steps: [Step]
    private let storage: [FloatBuffer]
    private let workspace: FloatBuffer
    /// Runs the steps over the worker pool; made at the end of init (it calls back into `runStep`).
    private var scheduler: StepScheduler!

    /// The tensors this trunk reads from a model file, with FORMAT.md's shapes.
    public static func tensorSpecs(prefix: String, inChannels: Int, width: Int) -> [TensorSpec] {
        TrunkLayout(prefix: prefix, inChannels: inChannels, width: width).fp32TensorSpecs
    }

    /// Builds ResNet-18-S5 for `inputHeight` × `inputWidth` inputs, reading tensors by file name (OIHW
    /// for convolutions). Shapes are trusted: validate the file against `tensorSpecs` first.
    public convenience init(prefix: String, inChannels: Int, width: Int, inputHeight: Int, inputWidth: Int,
                            weights: WeightSource) throws {
        try self.init(TrunkLayout(prefix: prefix, inChannels: inChannels, width: width), inputHeight: inputHeight,
                      inputWidth: inputWidth, weights: weights)
    }

    /// Builds `layout` for `inputHeight` × `inputWidth` inputs (tensors as `layout.fp32TensorSpecs`, trusted).
    public init(_ layout: TrunkLayout, inputHeight: Int, inputWidth: Int, weights: WeightSource) throws {
        self.layout = layout
        inChannels = layout.inChannels
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth

        // The GEMM adds onto its output, so a block's second conv writes over the shortcut it adds.
        let plan = TrunkLayout.BufferPlan(layout, inputHeight: inputHeight, inputWidth: inputWidth, residualInPlace: true)
        let inputStorage = FloatBuffer(count: plan.shapes[layout.input]!.count)
        let bufs = plan.slotSizes.map { FloatBuffer(count: $0) }
        storage = [inputStorage] + bufs
        func view(_ name: String) -> Tensor {
            let s = plan.shapes[name]!
            return Tensor(data: plan.slots[name].map { bufs[$0].pointer } ?? inputStorage.pointer, height: s.h, width: s.w, channels: s.c)
        }

        var steps = [Step]()
        var maxWorkspace = 0
        for op in layout.ops {
            switch op {
            case .conv(let c):
                let x = plan.shapes[c.input]!
                // Winograd's 16 GEMMs have one row per 2x2 tile; with very few rows OpenBLAS runs them
                // too inefficiently for the 2.25x saving to pay (measured: the audio trunk's 13x4 maps,
                // 14 tiles, still gain 10-35 %).
                let winograd = Conv2D.winogradApplies(kernelHeight: c.kernel, kernelWidth: c.kernel, stride: c.stride, padding: c.padding)
                    && Winograd3x3.tiles(height: x.h, width: x.w) >= Self.winogradMinimumTiles
                let conv = try weights.withFloats("\(c.name).weight") { w in
                    try weights.withFloats("\(c.name).bias") { b in
                        Conv2D(weightOIHW: w, bias: b, outChannels: c.outChannels, inChannels: c.inChannels, kernelHeight: c.kernel,
                               kernelWidth: c.kernel, stride: c.stride, padding: c.padding, algorithm: winograd ? .winograd : .im2col)
                    }
                }
                let to = view(c.output)
                precondition(conv.outputSize(height: x.h, width: x.w) == (to.height, to.width), "\(c.name): plan and layer disagree on the shape")
                precondition(c.residual.map { view($0).data == to.data } ?? true, "\(c.name) must write over its shortcut")
                maxWorkspace = max(maxWorkspace, conv.workspaceCount(height: x.h, width: x.w))
                steps.append(Step(name: c.output, conv: conv, from: view(c.input), to: to, relu: c.relu, accumulate: c.residual != nil))
            case .maxPool(let p):
                steps.append(Step(name: p.output, pool: MaxPool2D(kernel: p.kernel, stride: p.stride, padding: p.padding),
                                  from: view(p.input), to: view(p.output)))
            }
        }
        self.steps = steps
        workspace = FloatBuffer(count: maxWorkspace)
        input = view(layout.input)
        output = view(layout.output)
        scheduler = StepScheduler { [unowned self] step, phase, part, parts in self.runStep(step, phase: phase, part: part, of: parts) }
    }

    /// Threads the work is split over (the caller's plus the pool's workers); each runs single-threaded sgemms.
    public var threads: Int { scheduler.threads }

    /// Replaces the worker threads with a pool of this trunk's own (not per frame: this starts threads).
    public func setThreads(_ n: Int) { scheduler.setThreads(n) }

    /// Splits the work over `pool` (shared with other networks; nil: this thread only). Not while running.
    public func use(pool: WorkerPool?) { scheduler.use(pool: pool) }

    /// Piece `part` of `parts` of step `i`'s phase `phase`.
    private func runStep(_ i: Int, phase: Int, part: Int, of parts: Int) {
        let ws = workspace.pointer
        steps.withUnsafeBufferPointer { steps in
            let step = steps[i]
            if let c = step.conv {
                c.run(step.from, into: step.to, workspace: ws, relu: step.relu, accumulate: step.accumulate,
                      phase: phase, part: part, of: parts)
            } else if let p = step.pool {
                p(step.from, into: step.to, rows: WorkerPool.share(step.to.height, part: part, of: parts))
            }
        }
    }

    /// Step `i`, each phase split over the pool.
    @inline(__always)
    private func runStepOnPool(_ i: Int) {
        let phases = steps.withUnsafeBufferPointer { s in s[i].conv?.phaseCount(s[i].from, parts: scheduler.threads) ?? 1 }
        scheduler.run(step: i, phases: phases)
    }

    /// Convenience: `weights` returns a tensor's values by name.
    public convenience init(prefix: String, inChannels: Int, width: Int, inputHeight: Int, inputWidth: Int,
                            weights: @escaping (String) throws -> [Float]) throws {
        try self.init(prefix: prefix, inChannels: inChannels, width: width, inputHeight: inputHeight,
                      inputWidth: inputWidth, weights: ClosureWeights(weights))
    }

    /// Spatial size and channels of `output`.
    public var outputShape: (height: Int, width: Int, channels: Int) { (output.height, output.width, output.channels) }

    /// Runs the trunk on `input`; returns `output`.
    @discardableResult
    public func forward() -> Tensor {
        if let observer { observer(layout.input, input) }
        for i in 0..<steps.count {
            runStepOnPool(i)
            // Indexing a buffer pointer, not the array: unspecialised (debug) access allocates a coroutine frame.
            if let observer { steps.withUnsafeBufferPointer { observer($0[i].name, $0[i].to) } }
        }
        return output
    }

    /// Copies a CHW input (channels × inputHeight × inputWidth, PyTorch's layout) into `input` and runs.
    @discardableResult
    public func forward(chw: UnsafeBufferPointer<Float>) -> Tensor {
        precondition(chw.count == input.count, "expected \(inChannels)x\(inputHeight)x\(inputWidth) floats, got \(chw.count)")
        Ops.transpose(chw.baseAddress!, rows: inChannels, columns: inputHeight * inputWidth, into: input.data)
        return forward()
    }

    public func run(chw: UnsafeBufferPointer<Float>) { forward(chw: chw) }

    /// Runs like `forward()` and returns each scheduled layer with its wall time (allocates: for benchmarks).
    public func profile() -> [(layer: String, seconds: Double)] {
        profileSteps(steps.count, run: { i in runStepOnPool(i) }, label: { i in
            let step = steps[i]
            if let c = step.conv {
                return "conv \(c.kernelHeight)x\(c.kernelWidth)/\(c.stride) \(c.algorithm) "
                    + "\(step.from.height)x\(step.from.width)x\(c.inChannels) -> \(step.to.height)x\(step.to.width)x\(c.outChannels)"
            }
            return "maxpool \(step.pool!.kernel)/\(step.pool!.stride) \(step.from.height)x\(step.from.width)x\(step.from.channels)"
        })
    }

    /// Pointers to every buffer the trunk owns (tests check they never change).
    public var bufferAddresses: [UnsafeMutableRawPointer] {
        (storage + [workspace]).map { UnsafeMutableRawPointer($0.pointer) }
    }
}
