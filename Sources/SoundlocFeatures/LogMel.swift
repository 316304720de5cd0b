/// Clip-wise log-mel: one 1-second window at a time. The reference the streaming front end must equal.
public final class LogMel {
    public let config: LogMelConfig
    private let analyzer: FrameAnalyzer
    private let padded: UnsafeMutablePointer<Float>

    public init(config: LogMelConfig = .dsol) throws {
        try config.validate()
        self.config = config
        analyzer = FrameAnalyzer(config: config)
        padded = .allocate(capacity: config.windowSamples + config.fftSize)
        padded.initialize(repeating: 0, count: config.windowSamples + config.fftSize)
    }

    deinit { padded.deallocate() }

    /// Computes the window of exactly `windowSamples` samples into `output` (frames × mel bands, time-major).
    public func compute(_ samples: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>) {
        precondition(samples.count == config.windowSamples && output.count == config.windowValueCount)
        // Centred framing: hop zeros on both ends, as librosa's stft(center=True, pad_mode="constant").
        let pad = config.fftSize / 2
        (padded + pad).update(from: samples.baseAddress!, count: samples.count)
        for frame in 0..<config.framesPerWindow {
            analyzer.analyze(padded + frame * config.hop, into: output.baseAddress! + frame * config.melBands)
        }
        applyFloor(output, topDB: config.topDB)
    }

    /// The window of `samples`: shorter clips are zero-padded at the end, longer ones use their first second.
    public func window(_ samples: [Float]) -> [Float] {
        var clip = Array(samples.prefix(config.windowSamples))
        clip += [Float](repeating: 0, count: config.windowSamples - clip.count)
        var output = [Float](repeating: 0, count: config.windowValueCount)
        clip.withUnsafeBufferPointer { input in output.withUnsafeMutableBufferPointer { compute(input, into: $0) } }
        return output
    }
}

/// Clips a window to (its maximum − topDB), librosa's `top_db`.
func applyFloor(_ values: UnsafeMutableBufferPointer<Float>, topDB: Float) {
    guard let peak = values.max() else { return }
    let floor = peak - topDB
    for i in values.indices where values[i] < floor { values[i] = floor }
}
