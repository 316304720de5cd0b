/// Relates audio sample indices to CLOCK_MONOTONIC time, so a video frame can be paired with the audio
/// window that ends at the frame's capture time.
public struct AudioTimeline: Sendable {
    public let sampleRate: Int
    private var anchorIndex: Int64?
    private var anchorTime: UInt64 = 0

    public init(sampleRate: Int) { self.sampleRate = sampleRate }

    /// Records that sample `index` was captured at `nanos`; the newest anchor wins (drift-free over long runs).
    public mutating func anchor(sampleIndex index: Int64, capturedAt nanos: UInt64) {
        anchorIndex = index
        anchorTime = nanos
    }

    /// Forgets the anchor, e.g. when the stream restarts after a gap.
    public mutating func reset() { anchorIndex = nil }

    /// The sample index captured at `nanos`, extrapolated from the newest anchor at the nominal rate.
    public func sampleIndex(at nanos: UInt64) -> Int64? {
        guard let anchorIndex else { return nil }
        let delta = Int64(bitPattern: nanos &- anchorTime)
        return anchorIndex + delta * Int64(sampleRate) / 1_000_000_000
    }

    /// The capture time of sample `index`, by the same extrapolation.
    public func captureTime(ofSample index: Int64) -> UInt64? {
        guard let anchorIndex else { return nil }
        let delta = (index - anchorIndex) * 1_000_000_000 / Int64(sampleRate)
        return UInt64(bitPattern: Int64(bitPattern: anchorTime) + delta)
    }
}
