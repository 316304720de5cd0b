import Foundation

/// Log-mel windows from a continuous sample stream, each interior STFT frame computed once.
///
/// A window of `windowSamples` samples starting at a hop-aligned sample index s has 201 frames: frames
/// 1…199 lie wholly inside it and are the stream's own frames, shared by every window that contains them;
/// frames 0 and 200 overhang the window's edges, where the clip-wise definition pads with zeros, so they
/// are recomputed per window. For any hop-aligned window the result equals `LogMel` on the same samples.
/// Not thread-safe: one producer appends and reads windows (the pipeline serialises access).
public final class StreamingLogMel {
    public let config: LogMelConfig
    /// Samples appended since creation or the last `reset()`; sample indices count from there.
    public private(set) var samplesReceived: Int64 = 0
    /// Samples kept for windows that end before the newest sample.
    public let historySamples: Int

    private let analyzer: FrameAnalyzer
    private let samples: UnsafeMutablePointer<Float>
    private let sampleCapacity: Int
    private let frames: UnsafeMutablePointer<Float>
    private let frameCapacity: Int
    private var framesComputed: Int64 = 0
    private let scratch: UnsafeMutablePointer<Float>

    /// `history` is how far back (in seconds beyond one window) windows may still be requested.
    public init(config: LogMelConfig = .dsol, history: Double = 1.0) throws {
        try config.validate()
        self.config = config
        analyzer = FrameAnalyzer(config: config)
        let extra = max(0, Int((history * Double(config.sampleRate)).rounded(.up)))
        historySamples = config.windowSamples + (extra + config.hop - 1) / config.hop * config.hop
        sampleCapacity = historySamples + config.fftSize
        samples = .allocate(capacity: sampleCapacity)
        samples.initialize(repeating: 0, count: sampleCapacity)
        frameCapacity = historySamples / config.hop + 2
        frames = .allocate(capacity: frameCapacity * config.melBands)
        frames.initialize(repeating: 0, count: frameCapacity * config.melBands)
        scratch = .allocate(capacity: config.fftSize)
        scratch.initialize(repeating: 0, count: config.fftSize)
    }

    deinit {
        samples.deallocate(); frames.deallocate(); scratch.deallocate()
    }

    /// Forgets all samples, e.g. after a capture gap; indices start again at 0.
    public func reset() {
        samplesReceived = 0
        framesComputed = 0
    }

    /// Appends samples and computes every stream frame they complete.
    public func append(_ newSamples: UnsafeBufferPointer<Float>) {
        for sample in newSamples {
            samples[Int(samplesReceived % Int64(sampleCapacity))] = sample
            samplesReceived += 1
        }
        let hop = Int64(config.hop), size = Int64(config.fftSize)
        while framesComputed * hop + size <= samplesReceived {
            copySamples(from: framesComputed * hop, count: config.fftSize, to: scratch)
            analyzer.analyze(scratch, into: frameRow(framesComputed))
            framesComputed += 1
        }
    }

    /// Convenience for `append(_:)` with an array.
    public func append(_ newSamples: [Float]) {
        newSamples.withUnsafeBufferPointer { append($0) }
    }

    /// The newest hop-aligned sample index at which a complete window ends, or nil before one second arrived.
    public var latestWindowEnd: Int64? {
        let end = samplesReceived / Int64(config.hop) * Int64(config.hop)
        return end >= Int64(config.windowSamples) ? end : nil
    }

    /// The oldest window end still available from the history.
    public var earliestWindowEnd: Int64 {
        max(Int64(config.windowSamples), latestWindowEnd.map { $0 - Int64(historySamples - config.windowSamples) } ?? 0)
    }

    /// Writes the window of samples [end − windowSamples, end) into `output` (frames × mel bands).
    public func window(endingAt end: Int64, into output: UnsafeMutableBufferPointer<Float>) throws {
        guard output.count == config.windowValueCount else {
            throw LogMelError.windowUnavailable("output holds \(output.count) values, a window needs \(config.windowValueCount)")
        }
        guard end % Int64(config.hop) == 0 else {
            throw LogMelError.windowUnavailable("end \(end) is not a multiple of the hop (\(config.hop))")
        }
        guard let latest = latestWindowEnd, end <= latest else {
            throw LogMelError.windowUnavailable("end \(end) is beyond the \(samplesReceived) samples received")
        }
        guard end >= earliestWindowEnd else {
            throw LogMelError.windowUnavailable("end \(end) is older than the kept history (earliest \(earliestWindowEnd))")
        }
        let start = end - Int64(config.windowSamples)
        let bands = config.melBands, half = config.fftSize / 2
        let firstStreamFrame = start / Int64(config.hop)
        let out = output.baseAddress!
        for row in 1..<(config.framesPerWindow - 1) {
            (out + row * bands).update(from: frameRow(firstStreamFrame + Int64(row - 1)), count: bands)
        }
        // Edge frames: half zeros, half window samples.
        scratch.initialize(repeating: 0, count: half)
        copySamples(from: start, count: half, to: scratch + half)
        analyzer.analyze(scratch, into: out)
        copySamples(from: end - Int64(half), count: half, to: scratch)
        (scratch + half).initialize(repeating: 0, count: config.fftSize - half)
        analyzer.analyze(scratch, into: out + (config.framesPerWindow - 1) * bands)
        applyFloor(output, topDB: config.topDB)
    }

    /// Loudness of the window of samples [end − windowSamples, end) in dB relative to full scale (RMS);
    /// −inf for digital silence. The appliance's silence gate, since the maps do not go dark by themselves.
    public func levelDBFS(endingAt end: Int64) throws -> Double {
        guard let latest = latestWindowEnd, end <= latest, end >= earliestWindowEnd else {
            throw LogMelError.windowUnavailable("no samples for a window ending at \(end)")
        }
        var sum = 0.0
        for index in (end - Int64(config.windowSamples))..<end {
            let sample = Double(samples[Int(index % Int64(sampleCapacity))])
            sum += sample * sample
        }
        return 10 * log10(sum / Double(config.windowSamples))
    }

    private func frameRow(_ frame: Int64) -> UnsafeMutablePointer<Float> {
        frames + Int(frame % Int64(frameCapacity)) * config.melBands
    }

    private func copySamples(from index: Int64, count: Int, to destination: UnsafeMutablePointer<Float>) {
        for i in 0..<count { destination[i] = samples[Int((index + Int64(i)) % Int64(sampleCapacity))] }
    }
}
