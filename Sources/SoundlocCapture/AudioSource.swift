#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One contiguous run of mono samples from an audio source.
public struct AudioBlock: Sendable {
    /// Mono samples in [-1, 1), at the source's sample rate.
    public var samples: [Float]
    /// Index of `samples[0]` in the source's stream, counted from the first sample ever delivered.
    public var firstSampleIndex: Int64
    /// CLOCK_MONOTONIC time (ns) at which `samples[0]` was captured; nil for sources without a clock (files).
    public var captureTimeNanos: UInt64?
    /// True when samples were lost just before this block (an over-run or a device restart).
    public var followsGap: Bool

    public init(samples: [Float], firstSampleIndex: Int64, captureTimeNanos: UInt64?, followsGap: Bool = false) {
        self.samples = samples
        self.firstSampleIndex = firstSampleIndex
        self.captureTimeNanos = captureTimeNanos
        self.followsGap = followsGap
    }
}

/// A producer of mono audio at a fixed rate: a live device or a file.
public protocol AudioSource: AnyObject {
    /// Samples per second of every block.
    var sampleRate: Int { get }
    /// Blocks until up to `maxFrames` samples are available; nil at the end of a finite source.
    func read(maxFrames: Int) throws -> AudioBlock?
    /// Releases the device or file; further reads fail.
    func close()
}

/// What can go wrong reading audio, each case with a message fit for one line on a terminal.
public enum AudioSourceError: Error, CustomStringConvertible, Equatable {
    case invalidFile(path: String, reason: String)
    case unsupportedFormat(path: String, reason: String)
    case deviceUnavailable(name: String, reason: String)
    case deviceFailed(name: String, reason: String)
    case closed

    public var description: String {
        switch self {
        case let .invalidFile(path, reason): return "\(path): not a usable WAV file: \(reason)"
        case let .unsupportedFormat(path, reason): return "\(path): unsupported audio format: \(reason)"
        case let .deviceUnavailable(name, reason): return "audio device '\(name)' cannot be opened: \(reason)"
        case let .deviceFailed(name, reason): return "audio device '\(name)' failed: \(reason)"
        case .closed: return "audio source is closed"
        }
    }
}

/// Reads the monotonic clock in nanoseconds; the time base of every capture timestamp.
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
