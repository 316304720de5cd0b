import Dispatch

/// A ResNet trunk of BasicBlocks written out once, as the ordered operations both engines run: conv1 7×7/2 pad 3
/// with ReLU, max-pool 3/2/1, then stages of blocks (conv 3×3 + ReLU, optional 1×1 projection, conv 3×3 + shortcut
/// + ReLU); BatchNorm folded into conv biases; no pooling at the end. The fp32 and int8 tensor lists, the
/// calibration names, the buffer plan and both forward passes derive from `ops`, so a variant is one change here.
///
/// Activations are named by the layer that produces them (`P.input`, `P.conv1`, `P.maxpool`, `P.layerL.B.conv1`,
/// `P.layerL.B.downsample`, `P.layerL.B.conv2`): model files and calibration depend on these names.
public struct TrunkLayout: Sendable, Equatable {
    /// A convolution: tensors `name.weight` and `name.bias`, zero padding kernel/2 (the int8 kernels assume it).
    public struct Conv: Sendable, Equatable {
        public let name: String
        public let inChannels: Int
        public let outChannels: Int
        public let kernel: Int
        public let stride: Int
        public var padding: Int { kernel / 2 }
        /// Activation read.
        public let input: String
        /// Activation written.
        public let output: String
        /// Activation added before the ReLU (a block's shortcut).
        public let residual: String?
        public let relu: Bool
    }

    /// Max pooling as PyTorch's `MaxPool2d(kernel, stride, padding)`.
    public struct Pool: Sendable, Equatable {
        public let kernel: Int
        public let stride: Int
        public let padding: Int
        public let input: String
        public let output: String
    }

    public enum Op: Sendable, Equatable {
        case conv(Conv)
        case maxPool(Pool)

        /// The activation read (a conv's residual aside).
        public var input: String {
            switch self {
            case .conv(let c): return c.input
            case .maxPool(let p): return p.input
            }
        }

        /// The activation written.
        public var output: String {
            switch self {
            case .conv(let c): return c.output
            case .maxPool(let p): return p.output
            }
        }
    }

    public let prefix: String
    public let inChannels: Int
    public let width: Int
    /// BasicBlocks per stage; stage s has `width << s` channels.
    public let blocks: [Int]
    /// Stride of each stage's first block.
    public let strides: [Int]
    /// Every operation in execution order.
    public let ops: [Op]

    /// ResNet-18-S5 by default (SPEC §2: blocks [2, 2, 2, 2], stage strides 1, 2, 2, 1).
    public init(prefix: String, inChannels: Int, width: Int, blocks: [Int] = [2, 2, 2, 2], strides: [Int] = [1, 2, 2, 1]) {
        precondition(blocks.count == strides.count && blocks.allSatisfy { $0 >= 1 } && inChannels >= 1 && width >= 1)
        self.prefix = prefix
        self.inChannels = inChannels
        self.width = width
        self.blocks = blocks
        self.strides = strides
        // A conv's output activation takes the conv's name.
        func conv(_ name: String, _ cin: Int, _ cout: Int, k: Int, s: Int, _ input: String, residual: String? = nil,
                  relu: Bool = true) -> Op {
            .conv(Conv(name: name, inChannels: cin, outChannels: cout, kernel: k, stride: s, input: input, output: name,
                       residual: residual, relu: relu))
        }
        var ops = [conv("\(prefix).conv1", inChannels, width, k: 7, s: 2, "\(prefix).input"),
                   .maxPool(Pool(kernel: 3, stride: 2, padding: 1, input: "\(prefix).conv1", output: "\(prefix).maxpool"))]
        var x = "\(prefix).maxpool", cin = width
        for (l, (count, stride)) in zip(blocks, strides).enumerated() {
            let cout = width << l
            for b in 0..<count {
                let name = "\(prefix).layer\(l + 1).\(b)", s = b == 0 ? stride : 1
                ops.append(conv("\(name).conv1", cin, cout, k: 3, s: s, x))
                var shortcut = x
                if s != 1 || cin != cout {
                    ops.append(conv("\(name).downsample", cin, cout, k: 1, s: s, x, relu: false))
                    shortcut = "\(name).downsample"
                }
                ops.append(conv("\(name).conv2", cout, cout, k: 3, s: 1, "\(name).conv1", residual: shortcut))
                x = "\(name).conv2"
                cin = cout
            }
        }
        self.ops = ops
    }

    /// The activation the trunk reads.
    public var input: String { "\(prefix).input" }
    /// The activation the trunk ends with.
    public var output: String { ops.last!.output }

    /// The convolutions in execution order.
    public var convs: [Conv] {
        ops.compactMap { if case .conv(let c) = $0 { return c } else { return nil } }
    }

    /// The fp32 file's tensors (OIHW weights), in execution order.
    public var fp32TensorSpecs: [TensorSpec] {
        convs.flatMap { c in
            [TensorSpec("\(c.name).weight", [c.outChannels, c.inChannels, c.kernel, c.kernel]), TensorSpec("\(c.name).bias", [c.outChannels])]
        }
    }

    /// The int8 file's tensors (Models/FORMAT.md, "int8 files"), in execution order.
    public var int8TensorSpecs: [TensorSpec] {
        convs.flatMap { c in
            [
                TensorSpec("\(c.name).weight", [c.outChannels, c.kernel, c.kernel, c.inChannels], dtype: .i8),
                TensorSpec("\(c.name).weight_scale", [c.outChannels]),
                TensorSpec("\(c.name).bias", [c.outChannels], dtype: .i32),
                TensorSpec("\(c.name).input_quant", [2]),
                TensorSpec("\(c.name).output_quant", [2]),
            ]
        }
    }

    /// The activation whose calibrated range quantises `activation` in int8: a max pool's input takes its
    /// output's, since max-pooling codes keeps their quantisation and the pooled values are what the next layer reads.
    public func calibrationName(_ activation: String) -> String {
        for case .maxPool(let p) in ops where p.input == activation { return calibrationName(p.output) }
        return activation
    }
}

extension TrunkLayout {
    /// Where every activation lives for one input size, for either precision: its shape and a reused slot (a
    /// buffer), handed to the next activation once its last reader has run. The input keeps a buffer of its own,
    /// the caller's to fill.
    struct BufferPlan {
        struct Shape {
            var h: Int, w: Int, c: Int
            var count: Int { h * w * c }
        }
        /// Every activation's shape, the input's included.
        private(set) var shapes: [String: Shape]
        /// Every activation's slot but the input's.
        private(set) var slots = [String: Int]()
        /// Elements each slot holds: its largest activation.
        private(set) var slotSizes = [Int]()

        /// `residualInPlace`: a conv with a residual writes over its shortcut (the fp32 GEMM accumulates onto it);
        /// otherwise the output gets a slot of its own.
        init(_ net: TrunkLayout, inputHeight: Int, inputWidth: Int, residualInPlace: Bool) {
            shapes = [net.input: Shape(h: inputHeight, w: inputWidth, c: net.inChannels)]
            var lastRead = [String: Int]()
            for (i, op) in net.ops.enumerated() {
                lastRead[op.input] = i
                if case .conv(let c) = op, let r = c.residual { lastRead[r] = i }
            }
            var occupant = [String?]()
            for (i, op) in net.ops.enumerated() {
                let x = shapes[op.input]!
                let (k, s, p, c) = switch op {
                case .conv(let c): (c.kernel, c.stride, c.padding, c.outChannels)
                case .maxPool(let m): (m.kernel, m.stride, m.padding, x.c)
                }
                let out = Shape(h: (x.h + 2 * p - k) / s + 1, w: (x.w + 2 * p - k) / s + 1, c: c)
                precondition(out.h >= 1 && out.w >= 1, "input \(inputHeight)x\(inputWidth) too small for the trunk at \(op.output)")
                shapes[op.output] = out
                let slot: Int
                if residualInPlace, case .conv(let c) = op, let r = c.residual {
                    precondition(lastRead[r] == i && r != net.input, "\(r) is read after \(c.name) writes over it")
                    slot = slots[r]!
                } else if let free = occupant.indices.first(where: { slot in
                    occupant[slot].map { a in lastRead[a, default: .max] < i } ?? true  // never-read: the trunk's output
                }) {
                    slot = free
                } else {
                    slot = occupant.count
                    occupant.append(nil)
                    slotSizes.append(0)
                }
                occupant[slot] = op.output
                slots[op.output] = slot
                slotSizes[slot] = max(slotSizes[slot], out.count)
            }
        }
    }
}

/// Runs `count` scheduled steps one by one through `run`, timing each; `label` names step i (allocates: for benchmarks).
func profileSteps(_ count: Int, run: (Int) -> Void, label: (Int) -> String) -> [(layer: String, seconds: Double)] {
    (0..<count).map { i in
        let start = DispatchTime.now().uptimeNanoseconds
        run(i)
        return (label(i), Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}
