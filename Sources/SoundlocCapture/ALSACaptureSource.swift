#if os(Linux)
import CALSA
import CSoundlocShims
import Glibc
import Logging

/// Live mono capture from an ALSA PCM (e.g. `plughw:1,0`) as S16 at a fixed rate.
///
/// Not thread-safe, like every `AudioSource`: one thread reads, and the same thread closes or
/// reopens (a blocking `read` returns within about one period, so a capture loop can poll a stop flag).
public final class ALSACaptureSource: AudioSource {
    /// The PCM name this source was opened with, reused by `reopen()`.
    public let pcmName: String
    public let sampleRate: Int
    /// Period size the device granted (frames); the requested size is only a hint to ALSA.
    public private(set) var periodFrames: Int
    /// Ring-buffer size the device granted (frames); one `read` returns at most this many.
    public private(set) var bufferFrames: Int
    /// Number of over-runs (samples lost because reads fell behind) since creation.
    public private(set) var overruns: Int = 0

    private let requestedPeriodFrames: Int
    private var logger: Logger
    private var pcm: OpaquePointer?
    private var isClosed = false
    private var nextSampleIndex: Int64 = 0
    private var pendingGap = false
    private var lastCaptureTime: UInt64?
    private var scratch: [Int16] = []

    /// Buffer this many periods: capture latency is set by the period, so a deep buffer only adds
    /// headroom against a stalled reader.
    private static let periodsPerBuffer = 16
    /// Upper bound on recover-and-retry rounds inside one `read`, so a wedged device cannot spin forever.
    private static let maxRecoveriesPerRead = 16

    /// Opens `pcmName` for blocking capture and starts the stream.
    /// - Throws: `AudioSourceError.deviceUnavailable` when the PCM does not exist, is busy, or cannot
    ///   deliver S16 mono at `sampleRate`.
    public init(pcmName: String, sampleRate: Int = 16000, periodFrames: Int = 320, logger: Logger) throws {
        precondition(sampleRate > 0 && periodFrames > 0, "sample rate and period must be positive")
        self.pcmName = pcmName
        self.sampleRate = sampleRate
        self.requestedPeriodFrames = periodFrames
        self.periodFrames = periodFrames
        self.bufferFrames = periodFrames * Self.periodsPerBuffer
        self.logger = logger
        self.logger[metadataKey: "pcm"] = "\(pcmName)"
        try openDevice()
    }

    deinit {
        close()
    }

    public func read(maxFrames: Int) throws -> AudioBlock? {
        precondition(maxFrames > 0, "maxFrames must be positive")
        if isClosed { throw AudioSourceError.closed }
        // alsa's file plugin cannot serve a read larger than its buffer; real devices would only block longer.
        let wanted = min(maxFrames, bufferFrames)
        if scratch.count < wanted { scratch = [Int16](repeating: 0, count: wanted) }

        var recoveries = 0
        while true {
            guard let pcm else {
                throw AudioSourceError.deviceFailed(name: pcmName, reason: "device is not open (it failed earlier); call reopen()")
            }
            let got: Int = scratch.withUnsafeMutableBufferPointer { buffer in
                // Zeroed so that a plugin that leaves frames untouched (the file plugin past its input) yields silence.
                UnsafeMutableBufferPointer(rebasing: buffer[0..<wanted]).update(repeating: 0)
                return snd_pcm_readi(pcm, buffer.baseAddress, snd_pcm_uframes_t(wanted))
            }
            let returnedAt = monotonicNanos()
            if got > 0 {
                return makeBlock(frames: got, returnedAt: returnedAt, pcm: pcm)
            }
            recoveries += 1
            if recoveries > Self.maxRecoveriesPerRead {
                let reason = "capture keeps failing (last result: \(got == 0 ? "no data" : alsaMessage(Int32(got))))"
                releaseDevice()
                throw AudioSourceError.deviceFailed(name: pcmName, reason: reason)
            }
            if got == 0 {
                // A blocking read only returns nothing when the stream is not running.
                try restartStream(pcm, cause: "the stream stopped")
                continue
            }
            try recover(fromReadError: Int32(got))
        }
    }

    /// Closes the PCM and opens it again with the same settings, e.g. after a USB microphone came back.
    /// Sample indices keep counting; the next block is marked `followsGap`.
    public func reopen() throws {
        if isClosed { throw AudioSourceError.closed }
        releaseDevice()
        try openDevice()
        pendingGap = true
        logger.info("ALSA capture reopened")
    }

    public func close() {
        releaseDevice()
        isClosed = true
    }

    /// Names of PCMs that alsa's hints say can capture (IOID "Input" or unspecified), for device listings.
    public static func capturePCMNames() -> [String] { capturePCMHints().map(\.name) }

    /// The PCMs alsa's hints (its configuration's `hint` sections and the cards' PCM definitions) say can capture.
    public static func capturePCMHints() -> [PCMHint] {
        var hints: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
        guard snd_device_name_hint(-1, "pcm", &hints) == 0, let hints else { return [] }
        defer { snd_device_name_free_hint(hints) }
        func field(_ hint: UnsafeMutableRawPointer, _ name: String) -> String? {
            guard let pointer = snd_device_name_get_hint(hint, name) else { return nil }
            defer { free(pointer) }
            return String(cString: pointer)
        }
        var raw: [PCMHint.Raw] = []
        var index = 0
        while let hint = hints[index] {
            index += 1
            raw.append(PCMHint.Raw(name: field(hint, "NAME"), description: field(hint, "DESC"), ioid: field(hint, "IOID")))
        }
        return PCMHint.capture(raw)
    }

    // MARK: - Internals

    /// Turns a negative result of `snd_pcm_readi` into a running stream again, or throws.
    /// Internal so that tests can drive the recovery paths, which a replayed file never takes.
    func recover(fromReadError code: Int32) throws {
        guard let pcm else {
            throw AudioSourceError.deviceFailed(name: pcmName, reason: "device is not open; call reopen()")
        }
        switch -code {
        case EPIPE:
            overruns += 1
            logger.warning("ALSA capture over-run: samples were lost, restarting the stream", metadata: ["overruns": "\(overruns)"])
            try restartStream(pcm, cause: "over-run")
        case ESTRPIPE:
            logger.warning("ALSA capture suspended by the system; resuming")
            var result = snd_pcm_resume(pcm)
            var waits = 0
            while result == -EAGAIN && waits < 20 {  // the driver is still resuming; give it up to about 2 s
                usleep(100_000)
                waits += 1
                result = snd_pcm_resume(pcm)
            }
            if result < 0 || snd_pcm_state(pcm) != SND_PCM_STATE_RUNNING {
                // Many drivers cannot resume in place; a fresh start is the documented fallback.
                try restartStream(pcm, cause: "resume after suspend")
            }
            pendingGap = true
        case EINTR, EAGAIN:
            return  // interrupted by a signal: nothing lost, read again
        default:
            let reason = "capture failed: \(alsaMessage(code)); the device may have been unplugged, call reopen()"
            // Release the card now: while its file stays open a returning USB device may get another card number.
            releaseDevice()
            logger.error("ALSA capture failed", metadata: ["reason": "\(reason)"])
            throw AudioSourceError.deviceFailed(name: pcmName, reason: reason)
        }
    }

    private func restartStream(_ pcm: OpaquePointer, cause: String) throws {
        clearAlsaDiagnostic()
        var result = snd_pcm_prepare(pcm)
        // Capture does not start by itself on real drivers until a read asks for the start threshold.
        if result == 0 { result = snd_pcm_start(pcm) }
        if result < 0 {
            let reason = "cannot restart the stream after \(cause): \(alsaMessage(result))"
            releaseDevice()
            throw AudioSourceError.deviceFailed(name: pcmName, reason: reason)
        }
        pendingGap = true
    }

    private func makeBlock(frames: Int, returnedAt: UInt64, pcm: OpaquePointer) -> AudioBlock {
        // Frames still queued were captured after this block; both push its first sample further back.
        var avail: snd_pcm_sframes_t = 0
        var delay: snd_pcm_sframes_t = 0
        var queued = 0
        if snd_pcm_avail_delay(pcm, &avail, &delay) == 0 {
            // delay also counts converter/FIFO latency on real hardware; some plugins report only one of the two.
            queued = max(0, max(avail, delay))
        }
        let back = UInt64(frames + queued) * 1_000_000_000 / UInt64(sampleRate)
        var captureTime = returnedAt > back ? returnedAt - back : 0
        // Scheduling jitter must not make later samples appear older than earlier ones.
        if let last = lastCaptureTime, captureTime < last { captureTime = last }
        lastCaptureTime = captureTime

        var samples = [Float](repeating: 0, count: frames)
        for i in 0..<frames { samples[i] = Float(scratch[i]) / 32768 }
        let block = AudioBlock(samples: samples, firstSampleIndex: nextSampleIndex,
                               captureTimeNanos: captureTime, followsGap: pendingGap)
        nextSampleIndex += Int64(frames)
        pendingGap = false
        return block
    }

    private func releaseDevice() {
        if let pcm {
            snd_pcm_close(pcm)
            self.pcm = nil
        }
    }

    private func openDevice() throws {
        _ = Self.installErrorCapture
        clearAlsaDiagnostic()
        var handle: OpaquePointer?
        // Opened non-blocking: a blocking open of a card another program holds waits until it is free, which
        // would hang `soundloc run` and `soundloc check` instead of saying "busy". Reads block, as before.
        let openResult = snd_pcm_open(&handle, pcmName, SND_PCM_STREAM_CAPTURE, SND_PCM_NONBLOCK)
        guard openResult == 0, let handle else {
            throw AudioSourceError.deviceUnavailable(name: pcmName, reason: alsaMessage(openResult))
        }
        do {
            let blocking = snd_pcm_nonblock(handle, 0)
            if blocking < 0 {
                throw AudioSourceError.deviceUnavailable(name: pcmName, reason: "cannot make reads blocking: \(alsaMessage(blocking))")
            }
            try configure(handle)
        } catch {
            snd_pcm_close(handle)
            throw error
        }
        pcm = handle
        logger.info("ALSA capture started", metadata: [
            "rate": "\(sampleRate)", "period": "\(periodFrames)", "buffer": "\(bufferFrames)",
        ])
    }

    private func configure(_ pcm: OpaquePointer) throws {
        let plugHint = pcmName.hasPrefix("hw:") ? "; try 'plug\(pcmName)' so ALSA converts" : "; try a 'plughw:' PCM so ALSA converts"
        func check(_ result: Int32, _ what: String, hint: String = "") throws {
            if result < 0 {
                throw AudioSourceError.deviceUnavailable(name: pcmName, reason: "\(what): \(alsaMessage(result))\(hint)")
            }
        }

        var hw: OpaquePointer?
        try check(snd_pcm_hw_params_malloc(&hw), "cannot allocate hardware parameters")
        defer { snd_pcm_hw_params_free(hw) }
        try check(snd_pcm_hw_params_any(pcm, hw), "cannot read the device's capabilities")
        try check(snd_pcm_hw_params_set_access(pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED), "no interleaved read access", hint: plugHint)
        try check(snd_pcm_hw_params_set_format(pcm, hw, SND_PCM_FORMAT_S16_LE), "cannot capture S16_LE", hint: plugHint)
        try check(snd_pcm_hw_params_set_channels(pcm, hw, 1), "cannot capture mono", hint: plugHint)
        _ = snd_pcm_hw_params_set_rate_resample(pcm, hw, 1)  // plug's default; a failure here just means no resampler

        var rate = UInt32(sampleRate)
        var rateDirection: Int32 = 0
        try check(snd_pcm_hw_params_set_rate_near(pcm, hw, &rate, &rateDirection), "cannot set a sample rate", hint: plugHint)
        guard rate == UInt32(sampleRate), rateDirection == 0 else {
            throw AudioSourceError.deviceUnavailable(
                name: pcmName, reason: "device cannot capture at exactly \(sampleRate) Hz (nearest: \(rate) Hz)\(plugHint)")
        }

        var period = snd_pcm_uframes_t(requestedPeriodFrames)
        var periodDirection: Int32 = 0
        try check(snd_pcm_hw_params_set_period_size_near(pcm, hw, &period, &periodDirection), "cannot set a period size")
        var buffer = period * snd_pcm_uframes_t(Self.periodsPerBuffer)
        try check(snd_pcm_hw_params_set_buffer_size_near(pcm, hw, &buffer), "cannot set a buffer size")
        try check(snd_pcm_hw_params(pcm, hw), "device rejected the hardware parameters")

        try check(snd_pcm_hw_params_get_period_size(hw, &period, &periodDirection), "cannot read back the period size")
        try check(snd_pcm_hw_params_get_buffer_size(hw, &buffer), "cannot read back the buffer size")
        periodFrames = Int(period)
        bufferFrames = Int(buffer)

        var sw: OpaquePointer?
        try check(snd_pcm_sw_params_malloc(&sw), "cannot allocate software parameters")
        defer { snd_pcm_sw_params_free(sw) }
        try check(snd_pcm_sw_params_current(pcm, sw), "cannot read the software parameters")
        // We start explicitly; a threshold of one frame only guarantees a read can never wait for a start that never comes.
        try check(snd_pcm_sw_params_set_start_threshold(pcm, sw, 1), "cannot set the start threshold")
        try check(snd_pcm_sw_params_set_avail_min(pcm, sw, period), "cannot set the wake-up size")
        try check(snd_pcm_sw_params(pcm, sw), "device rejected the software parameters")

        try check(snd_pcm_prepare(pcm), "cannot prepare the stream")
        try check(snd_pcm_start(pcm), "cannot start the stream")
    }

    /// alsa-lib prints its diagnostics to stderr unless a handler takes them; install ours once per process.
    private static let installErrorCapture: Void = soundloc_alsa_capture_errors()
}

/// alsa's error text for `code`, with alsa-lib's own diagnostic when it left one on this thread.
private func alsaMessage(_ code: Int32) -> String {
    var message = String(cString: snd_strerror(code))
    let diagnostic = String(cString: soundloc_alsa_last_error())
    if !diagnostic.isEmpty { message += " (\(diagnostic))" }
    return message
}

/// Forgets the last diagnostic so that a stale one is never blamed on a later call.
private func clearAlsaDiagnostic() {
    soundloc_alsa_clear_error()
}
#endif
