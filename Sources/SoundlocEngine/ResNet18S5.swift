import Dispatch

/// ResNet-18-S5 trunk (SPEC §2): torchvision ResNet-18 with BasicBlocks [2, 2, 2, 2], conv1 7×7/2
/// pad 3, max-pool 3/2/1, layer strides 1, 2, 2, 1; BatchNorm folded into conv biases; no pooling.
///
/// Every activation buffer and the im2col workspace are allocated at init, and the whole forward
/// pass is a precomputed schedule over them, so `forward` allocates nothing. An instance is not
/// safe to run from two threads at once; separate instances are independent.
public final class ResNet18S5: BackboneTrunk {
    public static let layerStrides = [1, 2, 2, 1]
    /// 3×3 stride-1 convolutions whose output has at least this many 2×2 tiles use Winograd.
    public static let winogradMinimumTiles = 8

    public let inChannels: Int
    public let width: Int
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
    public let prefix: String

    /// One scheduled layer.
    private struct Step {
        var name = ""
        var conv: Conv2D?
        var pool: MaxPool2D?
        var from: Tensor
        var to: Tensor
        var relu = false
        var accumulate = false

        static func conv(_ c: Conv2D, from: Tensor, to: Tensor, relu: Bool, accumulate: Bool) -> Step {
            Step(conv: c, pool: nil, from: from, to: to, relu: relu, accumulate: accumulate)
        }

        static func maxPool(_ p: MaxPool2D, from: Tensor, to: Tensor) -> Step {
            Step(conv: nil, pool: p, from: from, to: to)
        }
    }

    private let steps: [Step]
    private let storage: [FloatBuffer]
    private let workspace: FloatBuffer

    /// The tensors this trunk reads from a model file, with FORMAT.md's shapes.
    public static func tensorSpecs(prefix: String, inChannels: Int, width: Int) -> [TensorSpec] {
        var specs = [TensorSpec("\(prefix).conv1.weight", [width, inChannels, 7, 7]), TensorSpec("\(prefix).conv1.bias", [width])]
        var cin = width
        for (l, stride) in layerStrides.enumerated() {
            let cout = width << l
            for b in 0..<2 {
                let name = "\(prefix).layer\(l + 1).\(b)"
                let blockIn = b == 0 ? cin : cout
                specs.append(TensorSpec("\(name).conv1.weight", [cout, blockIn, 3, 3]))
                specs.append(TensorSpec("\(name).conv1.bias", [cout]))
                specs.append(TensorSpec("\(name).conv2.weight", [cout, cout, 3, 3]))
                specs.append(TensorSpec("\(name).conv2.bias", [cout]))
                if b == 0 && (stride != 1 || blockIn != cout) {
                    specs.append(TensorSpec("\(name).downsample.weight", [cout, blockIn, 1, 1]))
                    specs.append(TensorSpec("\(name).downsample.bias", [cout]))
                }
            }
            cin = cout
        }
        return specs
    }

    /// Builds the trunk for `inputHeight` × `inputWidth` inputs, reading tensors by file name (OIHW
    /// for convolutions). Shapes are trusted: validate the file against `tensorSpecs` first.
    public init(prefix: String, inChannels: Int, width: Int, inputHeight: Int, inputWidth: Int,
                weights: WeightSource) throws {
        self.prefix = prefix
        self.inChannels = inChannels
        self.width = width
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth

        func conv(_ name: String, cin: Int, cout: Int, k: Int, stride: Int, input: (h: Int, w: Int)) throws -> Conv2D {
            // Winograd's 16 GEMMs have one row per 2x2 tile; with very few rows OpenBLAS runs them
            // too inefficiently for the 2.25x saving to pay (measured: the audio trunk's 13x4 maps,
            // 14 tiles, still gain 10-35 %).
            let winograd = Conv2D.winogradApplies(kernelHeight: k, kernelWidth: k, stride: stride, padding: k / 2)
                && Winograd3x3.tiles(height: input.h, width: input.w) >= Self.winogradMinimumTiles
            return try weights.withFloats("\(name).weight") { w in
                try weights.withFloats("\(name).bias") { b in
                    Conv2D(weightOIHW: w, bias: b, outChannels: cout, inChannels: cin, kernelHeight: k, kernelWidth: k,
                           stride: stride, padding: k / 2, algorithm: winograd ? .winograd : .im2col)
                }
            }
        }

        // Shape pass: build layers and record (layer, input shape) to size the buffers.
        struct Shape { var h: Int, w: Int, c: Int }
        enum Planned { case conv(Conv2D, Shape, relu: Bool, role: Role, name: String), pool(MaxPool2D, Shape) }
        enum Role { case stem, blockConv1, downsample, blockConv2 }
        var plan = [Planned]()
        var shape = Shape(h: inputHeight, w: inputWidth, c: inChannels)
        var maxActivation = 0
        var maxWorkspace = 0
        func record(_ c: Conv2D, _ s: Shape) -> Shape {
            let (oh, ow) = c.outputSize(height: s.h, width: s.w)
            precondition(oh >= 1 && ow >= 1, "input \(inputHeight)x\(inputWidth) too small for ResNet-18-S5")
            maxWorkspace = max(maxWorkspace, c.workspaceCount(height: s.h, width: s.w))
            maxActivation = max(maxActivation, oh * ow * c.outChannels)
            return Shape(h: oh, w: ow, c: c.outChannels)
        }
        let stem = try conv("\(prefix).conv1", cin: inChannels, cout: width, k: 7, stride: 2, input: (shape.h, shape.w))
        plan.append(.conv(stem, shape, relu: true, role: .stem, name: "\(prefix).conv1"))
        shape = record(stem, shape)
        let pool = MaxPool2D(kernel: 3, stride: 2, padding: 1)
        plan.append(.pool(pool, shape))
        let (ph, pw) = pool.outputSize(height: shape.h, width: shape.w)
        shape = Shape(h: ph, w: pw, c: shape.c)
        maxActivation = max(maxActivation, ph * pw * shape.c)
        for (l, stride) in Self.layerStrides.enumerated() {
            let cout = width << l
            for b in 0..<2 {
                let name = "\(prefix).layer\(l + 1).\(b)"
                let s = b == 0 ? stride : 1
                let blockIn = shape
                let c1 = try conv("\(name).conv1", cin: blockIn.c, cout: cout, k: 3, stride: s, input: (blockIn.h, blockIn.w))
                plan.append(.conv(c1, blockIn, relu: true, role: .blockConv1, name: "\(name).conv1"))
                let mid = record(c1, blockIn)
                if b == 0 && (stride != 1 || blockIn.c != cout) {
                    let ds = try conv("\(name).downsample", cin: blockIn.c, cout: cout, k: 1, stride: s, input: (blockIn.h, blockIn.w))
                    plan.append(.conv(ds, blockIn, relu: false, role: .downsample, name: "\(name).downsample"))
                    _ = record(ds, blockIn)
                }
                let c2 = try conv("\(name).conv2", cin: cout, cout: cout, k: 3, stride: 1, input: (mid.h, mid.w))
                plan.append(.conv(c2, mid, relu: true, role: .blockConv2, name: "\(name).conv2"))
                shape = record(c2, mid)
            }
        }

        // Buffer pass: three rotating activation buffers suffice (block input, mid, shortcut).
        let inputStorage = FloatBuffer(count: inputHeight * inputWidth * inChannels)
        let bufs = (0..<3).map { _ in FloatBuffer(count: maxActivation) }
        storage = [inputStorage] + bufs
        workspace = FloatBuffer(count: maxWorkspace)
        input = Tensor(data: inputStorage.pointer, height: inputHeight, width: inputWidth, channels: inChannels)

        func tensor(_ i: Int, _ s: Shape) -> Tensor { Tensor(data: bufs[i].pointer, height: s.h, width: s.w, channels: s.c) }
        func outShape(_ c: Conv2D, _ s: Shape) -> Shape {
            let (h, w) = c.outputSize(height: s.h, width: s.w)
            return Shape(h: h, w: w, c: c.outChannels)
        }
        var steps = [Step]()
        var current = input       // block input X
        var currentIndex = -1     // which of bufs holds X (-1: the input buffer)
        var midIndex = 0, shortcutIndex = 0
        var mid: Tensor? = nil, shortcut: Tensor? = nil
        func free(_ taken: Int...) -> Int { (0..<3).first { !taken.contains($0) }! }
        for p in plan {
            switch p {
            case .conv(let c, let s, let relu, let role, let stepName):
                defer { steps[steps.count - 1].name = stepName }
                let o = outShape(c, s)
                switch role {
                case .stem:
                    let out = tensor(0, o)
                    steps.append(.conv(c, from: current, to: out, relu: relu, accumulate: false))
                    current = out; currentIndex = 0
                case .blockConv1:
                    midIndex = free(currentIndex)
                    let out = tensor(midIndex, o)
                    steps.append(.conv(c, from: current, to: out, relu: true, accumulate: false))
                    mid = out; shortcut = nil
                case .downsample:
                    shortcutIndex = free(currentIndex, midIndex)
                    let out = tensor(shortcutIndex, o)
                    steps.append(.conv(c, from: current, to: out, relu: false, accumulate: false))
                    shortcut = out
                case .blockConv2:
                    // The result accumulates onto the shortcut (projection, or the block input itself).
                    let targetIndex = shortcut == nil ? currentIndex : shortcutIndex
                    let out = tensor(targetIndex, o)
                    steps.append(.conv(c, from: mid!, to: out, relu: true, accumulate: true))
                    current = out; currentIndex = targetIndex
                }
            case .pool(let mp, let s):
                let (h, w) = mp.outputSize(height: s.h, width: s.w)
                let outIndex = free(currentIndex)
                let out = tensor(outIndex, Shape(h: h, w: w, c: s.c))
                steps.append(.maxPool(mp, from: current, to: out))
                steps[steps.count - 1].name = "\(prefix).maxpool"
                current = out; currentIndex = outIndex
            }
        }
        self.steps = steps
        output = current
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
        let ws = workspace.pointer
        if let observer { observer("\(prefix).input", input) }
        // Indexing a buffer pointer, not iterating the array: unspecialised (debug) iteration
        // allocates a coroutine frame per element.
        steps.withUnsafeBufferPointer { steps in
            for i in 0..<steps.count {
                let step = steps[i]
                if let c = step.conv {
                    c(step.from, into: step.to, workspace: ws, relu: step.relu, accumulate: step.accumulate)
                } else if let p = step.pool {
                    p(step.from, into: step.to)
                }
                if let observer { observer(step.name, step.to) }
            }
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
        var out = [(layer: String, seconds: Double)]()
        let ws = workspace.pointer
        for step in steps {
            let start = DispatchTime.now().uptimeNanoseconds
            let name: String
            if let c = step.conv {
                c(step.from, into: step.to, workspace: ws, relu: step.relu, accumulate: step.accumulate)
                name = "conv \(c.kernelHeight)x\(c.kernelWidth)/\(c.stride) \(c.algorithm) "
                    + "\(step.from.height)x\(step.from.width)x\(c.inChannels) -> \(step.to.height)x\(step.to.width)x\(c.outChannels)"
            } else if let p = step.pool {
                p(step.from, into: step.to)
                name = "maxpool \(p.kernel)/\(p.stride) \(step.from.height)x\(step.from.width)x\(step.from.channels)"
            } else {
                name = "?"
            }
            out.append((name, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
        }
        return out
    }

    /// Pointers to every buffer the trunk owns (tests check they never change).
    public var bufferAddresses: [UnsafeMutableRawPointer] {
        (storage + [workspace]).map { UnsafeMutableRawPointer($0.pointer) }
    }
}
