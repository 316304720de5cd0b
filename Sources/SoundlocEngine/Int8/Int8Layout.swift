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
