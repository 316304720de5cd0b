/// The audio feature definition the network was trained on (SPEC §3): librosa's
/// `power_to_db(melspectrogram(S=|stft|, sr, n_mels, fmax), ref=1, top_db)` on one window.
public struct LogMelConfig: Sendable, Equatable {
    public var sampleRate = 16000
    public var fftSize = 160
    public var hop = 80
    public var melBands = 64
    public var minFrequency = 0.0
    public var maxFrequency = 8000.0
    /// Each window is clipped to (its maximum − topDB).
    public var topDB: Float = 80
    /// Floor applied before the logarithm.
    public var amin = 1e-10
    /// Samples per window (1 s).
    public var windowSamples = 16000

    public init() {}

    /// The configuration DSOL models use.
    public static let dsol = LogMelConfig()

    /// Frequency bins of the real FFT.
    public var bins: Int { fftSize / 2 + 1 }
    /// STFT frames per window with centred, zero-padded framing.
    public var framesPerWindow: Int { 1 + windowSamples / hop }
    /// Floats in one window, laid out time-major (frames × mel bands).
    public var windowValueCount: Int { framesPerWindow * melBands }

    /// Throws `LogMelError.badConfiguration` when the fields cannot describe a centred STFT front end.
    public func validate() throws {
        guard fftSize > 0, fftSize % 2 == 0, hop > 0, fftSize == 2 * hop, windowSamples % hop == 0,
              melBands > 0, sampleRate > 0, maxFrequency > minFrequency, maxFrequency <= Double(sampleRate) / 2
        else {
            throw LogMelError.badConfiguration("need even fftSize == 2·hop, window a multiple of hop, 0 ≤ fmin < fmax ≤ sr/2")
        }
    }
}

/// Errors from the log-mel front end.
public enum LogMelError: Error, CustomStringConvertible, Equatable {
    case badConfiguration(String)
    case windowUnavailable(String)

    public var description: String {
        switch self {
        case let .badConfiguration(why): return "log-mel configuration: \(why)"
        case let .windowUnavailable(why): return "log-mel window unavailable: \(why)"
        }
    }
}
