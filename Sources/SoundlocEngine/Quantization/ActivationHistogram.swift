import Foundation

/// How a calibration histogram becomes an activation range.
public enum CalibrationMethod: String, CaseIterable, Sendable {
    /// The observed minimum and maximum.
    case minmax
    /// Clip the top (and, for signed tensors, bottom) 0.01 % of values.
    case percentile
    /// The range that minimises the expected squared quantisation error, clipping included.
    case mse
    /// The range whose quantised distribution is closest to the observed one (KL divergence).
    case entropy
}

/// Affine uint8 quantisation of one tensor: real = scale · (q − zeroPoint).
public struct ActivationQuantization: Equatable, Sendable, Codable {
    public var scale: Float
    public var zeroPoint: Int32

    /// Parameters covering `range`, which is widened to contain 0 so zero stays exactly representable.
    public init(range: ClosedRange<Float>) {
        let lower = min(range.lowerBound, 0), upper = max(range.upperBound, 0)
        scale = max(upper - lower, 1e-8) / 255
        let zero = (-lower / scale).rounded()
        zeroPoint = zero.isNaN ? 0 : Int32(max(0, min(255, zero)))  // checked before the conversion, NaN included
    }
}

/// A histogram of one activation tensor's values over a fixed range, filled during calibration.
///
/// Calibration runs twice over the inputs: once to find each tensor's extremes, then to fill histograms
/// over exactly that range — simpler and more deterministic than re-binning a histogram as it grows.
public struct ActivationHistogram: Sendable {
    public let lower: Float
    public let upper: Float
    public private(set) var counts: [Double]
    public private(set) var total: Double = 0

    public init(lower: Float, upper: Float, bins: Int = 2048) {
        precondition(bins >= 256 && upper >= lower)
        self.lower = lower
        self.upper = upper > lower ? upper : lower + 1e-6
        counts = [Double](repeating: 0, count: bins)
    }

    var binWidth: Float { (upper - lower) / Float(counts.count) }

    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        let scale = Float(counts.count) / (upper - lower)
        let last = counts.count - 1
        for value in values {
            // Clamped as a Float before it becomes an Int: an infinite or NaN activation must not trap.
            let bin = (value - lower) * scale
            counts[bin.isNaN ? 0 : Int(max(0, min(Float(last), bin)))] += 1
        }
        total += Double(values.count)
    }

    /// The range `method` picks; never wider than the observed one.
    public func range(_ method: CalibrationMethod) -> ClosedRange<Float> {
        switch method {
        case .minmax: return lower...upper
        case .percentile: return percentileRange(0.9999)
        case .mse: return mseRange()
        case .entropy: return entropyRange()
        }
    }

    func edge(_ bin: Int) -> Float { lower + Float(bin) * binWidth }

    private func percentileRange(_ keep: Double) -> ClosedRange<Float> {
        let signed = lower < 0
        let tail = total * (1 - keep) / (signed ? 2 : 1)
        var high = counts.count, seen = 0.0
        while high > 1, seen + counts[high - 1] <= tail { seen += counts[high - 1]; high -= 1 }
        var low = 0
        if signed {
            seen = 0
            while low < high - 1, seen + counts[low] <= tail { seen += counts[low]; low += 1 }
        }
        return edge(low)...edge(high)
    }

    /// Expected squared error of 256-level uniform quantisation of this histogram over `range`.
    public func quantizationError(_ range: ClosedRange<Float>) -> Double {
        let q = ActivationQuantization(range: range)
        let scale = Double(q.scale), zero = Double(q.zeroPoint)
        var error = 0.0
        for (bin, count) in counts.enumerated() where count > 0 {
            let x = Double(edge(bin)) + Double(binWidth) / 2
            let level = max(0, min(255, (x / scale).rounded(.toNearestOrEven) + zero))
            let d = x - (level - zero) * scale
            error += count * d * d
        }
        return error
    }

    private func mseRange() -> ClosedRange<Float> {
        // Candidates shrink the observed range towards zero on each side in 1/128 steps.
        let steps = 128
        var best = (error: Double.infinity, range: lower...upper)
        for i in stride(from: steps, through: steps / 8, by: -1) {
            let fraction = Float(i) / Float(steps)
            let candidate = (lower < 0 ? lower * fraction : lower)...(upper > 0 ? upper * fraction : upper)
            let error = quantizationError(candidate)
            if error < best.error { best = (error, candidate) }
        }
        return best.range
    }

    private func entropyRange() -> ClosedRange<Float> {
        // KL calibration applies to one-sided (post-ReLU) distributions; signed tensors fall back to MSE.
        guard lower >= 0 else { return mseRange() }
        let levels = 256
        var best = (divergence: Double.infinity, bins: counts.count)
        for clip in stride(from: levels, through: counts.count, by: 16) {
            var reference = Array(counts[0..<clip])
            reference[clip - 1] += counts[clip...].reduce(0, +)  // clipped values land in the last bin
            // Merge the clip bins into `levels` groups, then spread each group's mass over its non-empty bins;
            // the clipped tail is left out of the candidate, which is what penalises clipping too hard.
            var candidate = [Double](repeating: 0, count: clip)
            for level in 0..<levels {
                let start = level * clip / levels, end = (level + 1) * clip / levels
                let mass = counts[start..<end].reduce(0, +)
                let occupied = (start..<end).filter { counts[$0] > 0 }.count
                guard occupied > 0 else { continue }
                for bin in start..<end where counts[bin] > 0 { candidate[bin] = mass / Double(occupied) }
            }
            let divergence = klDivergence(reference, candidate)
            if divergence < best.divergence { best = (divergence, clip) }
        }
        return lower...edge(best.bins)
    }

    private func klDivergence(_ p: [Double], _ q: [Double]) -> Double {
        let pTotal = p.reduce(0, +), qTotal = q.reduce(0, +)
        guard pTotal > 0, qTotal > 0 else { return 0 }
        var sum = 0.0
        for i in p.indices where p[i] > 0 {
            let pi = p[i] / pTotal
            let qi = max(q[i] / qTotal, 1e-12)
            sum += pi * log(pi / qi)
        }
        return sum
    }
}
