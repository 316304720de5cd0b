/// The convolutions of one ResNet-18-S5 trunk as the int8 engine and the quantiser see them, with the
/// activation each one reads, writes and (second conv of a block) adds. Activations are named by the
/// layer that produces them, as `ResNet18S5.observer` reports them; the stem's output is quantised with
/// the max-pool's parameters because max-pooling uint8 values keeps the scale.
public struct Int8ConvSpec: Sendable, Equatable {
    public let name: String
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Int
    public let stride: Int
    public var padding: Int { kernel / 2 }
    /// Activation read.
    public let input: String
    /// Activation written (its quantisation is the output's).
    public let output: String
    /// Activation added before the ReLU (the shortcut), for the second conv of each block.
    public let residual: String?
    public let relu: Bool

    /// Every conv of the trunk in execution order.
    public static func trunk(prefix: String, inChannels: Int, width: Int) -> [Int8ConvSpec] {
        var out = [Int8ConvSpec(name: "\(prefix).conv1", inChannels: inChannels, outChannels: width, kernel: 7, stride: 2,
                                input: "\(prefix).input", output: "\(prefix).maxpool", residual: nil, relu: true)]
        var x = "\(prefix).maxpool", cin = width
        for (l, stride) in ResNet18S5.layerStrides.enumerated() {
            let cout = width << l
            for b in 0..<2 {
                let name = "\(prefix).layer\(l + 1).\(b)"
                let s = b == 0 ? stride : 1
                let blockIn = b == 0 ? cin : cout
                out.append(Int8ConvSpec(name: "\(name).conv1", inChannels: blockIn, outChannels: cout, kernel: 3, stride: s,
                                        input: x, output: "\(name).conv1", residual: nil, relu: true))
                var shortcut = x
                if b == 0 && (stride != 1 || blockIn != cout) {
                    out.append(Int8ConvSpec(name: "\(name).downsample", inChannels: blockIn, outChannels: cout, kernel: 1,
                                            stride: s, input: x, output: "\(name).downsample", residual: nil, relu: false))
                    shortcut = "\(name).downsample"
                }
                out.append(Int8ConvSpec(name: "\(name).conv2", inChannels: cout, outChannels: cout, kernel: 3, stride: 1,
                                        input: "\(name).conv1", output: "\(name).conv2", residual: shortcut, relu: true))
                x = "\(name).conv2"
            }
            cin = cout
        }
        return out
    }

    /// The int8 file's tensors for this conv (Models/FORMAT.md, "int8 files").
    public var tensorSpecs: [TensorSpec] {
        [
            TensorSpec("\(name).weight", [outChannels, kernel, kernel, inChannels], dtype: .i8),
            TensorSpec("\(name).weight_scale", [outChannels]),
            TensorSpec("\(name).bias", [outChannels], dtype: .i32),
            TensorSpec("\(name).input_quant", [2]),
            TensorSpec("\(name).output_quant", [2]),
        ]
    }

    public static func tensorSpecs(prefix: String, inChannels: Int, width: Int) -> [TensorSpec] {
        trunk(prefix: prefix, inChannels: inChannels, width: width).flatMap(\.tensorSpecs)
    }
}

extension ActivationQuantization {
    /// Reads `[scale, zero point]` as stored in int8 files; `tensor` names it in errors.
    public init(stored v: [Float], tensor: String) throws {
        // A normal scale keeps every ratio the requantisation computes from it finite.
        guard v.count == 2, v[0].isFinite, v[0] >= Float.leastNormalMagnitude, v[1] == v[1].rounded(), (0...255).contains(v[1]) else {
            throw ModelFileError.malformedEntry(tensor: tensor, reason: "quantisation parameters must be [scale > 0 (a normal float), zero point in 0...255], got \(v)")
        }
        self.init(scale: v[0], zeroPoint: Int32(v[1]))
    }

    public init(scale: Float, zeroPoint: Int32) {
        self.init(range: 0...1)
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    public var stored: [Float] { [scale, Float(zeroPoint)] }

    /// uint8 code of `x`: clamp(round(x / scale) + zero point).
    @inline(__always)
    public func quantize(_ x: Float) -> UInt8 {
        UInt8(max(0, min(255, (x / scale).rounded(.toNearestOrEven) + Float(zeroPoint))))
    }
}

/// Per-output-channel symmetric int8 weights: scale = max|w| / 127, codes in [−127, 127].
public enum WeightQuantizer {
    /// Quantises OIHW fp32 weights to OHWI (the kernels' (ky, kx, c) order for K) with one scale per output channel.
    /// `minScales` raises a channel's scale where its bias needs it (`minimumScales`).
    public static func quantize(oihw w: UnsafeBufferPointer<Float>, out o: Int, in i: Int, kh: Int, kw: Int,
                                minScales: [Float]? = nil) -> (codes: [Int8], scales: [Float]) {
        precondition(w.count == o * i * kh * kw)
        precondition(minScales == nil || minScales!.count == o)
        let k = i * kh * kw
        var codes = [Int8](repeating: 0, count: w.count)
        var scales = [Float](repeating: 1, count: o)
        for oc in 0..<o {
            var m: Float = 0
            for j in 0..<k { m = max(m, abs(w[oc * k + j])) }
            // A channel of zeros, or of weights so small (trained-out channels) that m / 127 is no normal float, keeps
            // scale 1: its codes round to 0, and the engine's requantisation needs a positive, normal scale.
            let s = max(m / 127, minScales?[oc] ?? 0)
            scales[oc] = s >= Float.leastNormalMagnitude && s.isFinite ? s : 1
            for c in 0..<i {
                for y in 0..<kh {
                    for x in 0..<kw {
                        let v = w[((oc * i + c) * kh + y) * kw + x] / scales[oc]
                        codes[((oc * kh + y) * kw + x) * i + c] = Int8(max(-127, min(127, v.rounded(.toNearestOrEven))))
                    }
                }
            }
        }
        return (codes, scales)
    }

    /// The least weight scale per channel at which its bias still fits the int32 bias range (±2^30 accumulator
    /// units): without it a channel of tiny weights but a real bias would have its bias clamped away.
    public static func minimumScales(bias b: UnsafeBufferPointer<Float>, inputScale: Float) -> [Float] {
        b.map { Float(Double(abs($0)) / (Double(inputScale) * Double(1 << 30))) }
    }

    /// int32 bias in accumulator units (input scale × weight scale), clamped to ±2^30 so the kernels stay exact.
    public static func quantizeBias(_ b: UnsafeBufferPointer<Float>, inputScale: Float, weightScales: [Float]) -> [Int32] {
        (0..<b.count).map { n in
            let v = (Double(b[n]) / (Double(inputScale) * Double(weightScales[n]))).rounded(.toNearestOrEven)
            return Int32(max(-Double(1 << 30), min(Double(1 << 30), v)))
        }
    }
}
