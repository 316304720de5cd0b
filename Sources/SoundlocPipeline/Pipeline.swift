import Foundation
import Histogram
import Logging
import SoundlocCapture
import SoundlocDSOL
import SoundlocFeatures
import SoundlocOutput

/// What the pipeline needs from a model: the DSOL forward pass on one image and one log-mel window.
public protocol Localizer: AnyObject {
    var metadata: ModelMetadata { get }
    func forward(image: UnsafeBufferPointer<Float>, audio: UnsafeBufferPointer<Float>) -> DSOLOutput
}

extension DSOLModel: Localizer {}

/// Where results go (the socket server; tests use a recorder). Called from the processing thread and, for STATUS,
/// from the capture threads too: a sink must be safe to call from several threads.
public protocol ReportSink: AnyObject, Sendable {
    func publish(_ report: FrameReport)
    func publish(status: StatusMessage)
}

extension SocketServer: ReportSink {}
extension NDJSONRecorder: ReportSink {}

/// A live device that can be closed and opened again after it vanished.
public protocol Reopenable: AnyObject {
    func reopen() throws
}

extension ALSACaptureSource: Reopenable {}
extension V4L2CaptureSource: Reopenable {}

public struct PipelineOptions: Sendable {
    /// At most this many frames per second are processed; faster frames are dropped (counted).
    public var maxFps = 25.0
    /// Windows quieter than this (RMS, dBFS) are silence.
    public var silenceDBFS = -55.0
    public var minSoundingPeak = 0.5
    /// Process every frame in order as fast as possible, pulling audio as needed (file inputs; no drops).
    public var lockstep = false
    /// Stop after this many processed frames.
    public var frameLimit: Int?
    /// How long a frame may wait for the audio that ends at its capture time to arrive.
    public var audioWaitSeconds = 0.1
    /// Delays between attempts to reopen a failed device.
    public var reopenBackoffSeconds: [Double] = [0.5, 1, 2, 5]

    public init() {}
}

/// Latency of each stage (capture → publish) and counts, for logs and `soundloc bench --pipeline`.
public struct PipelineStatistics: Sendable {
    public var framesCaptured = 0
    public var framesProcessed = 0
    /// Frames overwritten while inference was busy, or skipped to respect maxFps.
    public var framesDropped = 0
    /// Frames skipped before the first second of audio had arrived.
    public var framesWarmingUp = 0
    public var audioOverruns = 0
    public var deviceFailures = 0
    public var stages: [String: Histogram<UInt64>] = [:]

    public static let stageNames = ["queue", "features", "preprocess", "inference", "interpret", "publish", "capture_to_publish"]

    /// Median and 99th percentile of a stage, in milliseconds.
    public func percentiles(_ stage: String) -> (p50: Double, p99: Double)? {
        guard let h = stages[stage], h.totalCount > 0 else { return nil }
        return (Double(h.valueAtPercentile(50)) / 1e6, Double(h.valueAtPercentile(99)) / 1e6)
    }

    mutating func record(_ stage: String, nanos: UInt64) {
        if stages[stage] == nil {
            stages[stage] = Histogram<UInt64>(highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three)
        }
        _ = stages[stage]!.record(nanos)
    }
}

/// One processed frame, as handed to observers (the demo draws overlays from it).
public struct ProcessedFrame {
    public var report: FrameReport
    public var interpretation: FrameInterpretation
    public var frame: VideoFrame
    public var output: DSOLOutput
}

/// Captures audio and video on their own threads, pairs each processed frame with the 1-s audio window
/// ending at its capture time, runs the model, interprets the maps and publishes a report.
/// When inference falls behind, frames are dropped and counted; nothing queues without bound.
///
/// Threads (docs/THREADING.md): `run()` starts an audio and a video capture thread and runs the inference loop on
/// the calling thread (in lockstep mode it does everything itself); it returns once both capture threads have
/// ended. The wiring (sinks, observers) is fixed at construction, so nothing the threads read changes under them.
public final class Pipeline: @unchecked Sendable {  // unchecked: mutable state guarded by audioLock/stateLock or confined to the processing thread, as marked below
    public let options: PipelineOptions
    /// Where reports and device STATUS go; called on the processing thread (STATUS also on capture threads).
    public let sinks: [ReportSink]
    /// Called on the processing thread after each processed frame.
    public let onFrame: (@Sendable (ProcessedFrame) -> Void)?
    /// The pipeline's heartbeat: called on the processing thread every time round its loop, at least every half
    /// second while it runs (with or without frames), never while it is stuck. systemd's watchdog hangs on it.
    public let onHeartbeat: (@Sendable () -> Void)?

    private let audio: AudioSource
    private let video: VideoSource
    private let model: Localizer
    private let logger: Logger
    private let interpreter: SoundingInterpreter

    private let audioLock = NSCondition()  // guards stream, timeline, streamOffset, audioEnded
    private let stream: StreamingLogMel
    private var timeline: AudioTimeline
    private var streamOffset: Int64?
    private var audioEnded = false

    private let frames = LatestSlot<VideoFrame>()
    private let stateLock = NSCondition()  // guards statistics and stopping; broadcast by stop() to end reopen back-offs
    private var statistics = PipelineStatistics()
    private var stopping = false

    // Processing thread only (the inference loop, or run()'s thread in lockstep): the buffers, the preprocessor, the sequence.
    private let window: UnsafeMutableBufferPointer<Float>
    private var image: UnsafeMutableBufferPointer<Float>
    private var preprocessor: ImagePreprocessor?
    private var sequence: UInt64 = 0

    /// `sinks` get every report and STATUS; `onFrame` every processed frame; `onHeartbeat` every turn of the loop.
    public init(audio: AudioSource, video: VideoSource, model: Localizer, options: PipelineOptions = PipelineOptions(),
                sinks: [ReportSink] = [], onFrame: (@Sendable (ProcessedFrame) -> Void)? = nil,
                onHeartbeat: (@Sendable () -> Void)? = nil, logger: Logger) throws {
        let features = try model.metadata.logMelConfig()
        guard audio.sampleRate == features.sampleRate else {
            throw PipelineError.mismatch("audio source runs at \(audio.sampleRate) Hz, the model expects \(features.sampleRate) Hz")
        }
        self.audio = audio
        self.video = video
        self.model = model
        self.options = options
        self.sinks = sinks
        self.onFrame = onFrame
        self.onHeartbeat = onHeartbeat
        self.logger = logger
        stream = try StreamingLogMel(config: features, history: 1.0)
        timeline = AudioTimeline(sampleRate: features.sampleRate)
        interpreter = SoundingInterpreter(minSoundingPeak: options.minSoundingPeak)
        window = .allocate(capacity: features.windowValueCount)
        window.initialize(repeating: 0)
        let side = model.metadata.imageSize
        image = .allocate(capacity: 3 * side * side)
        image.initialize(repeating: 0)
    }

    deinit {
        window.deallocate()
        image.deallocate()
    }

    /// A snapshot of the counters and latency histograms.
    public var currentStatistics: PipelineStatistics {
        var snapshot = stateLock.withLock { statistics }
        snapshot.framesDropped += frames.droppedCount
        return snapshot
    }

    /// Asks the pipeline to finish; `run()` returns soon after. Safe from any thread or a signal handler queue.
    public func stop() {
        stateLock.withLock { stopping = true; stateLock.broadcast() }
        frames.close()
        audioLock.lock(); audioLock.broadcast(); audioLock.unlock()
    }

    private var isStopping: Bool { stateLock.withLock { stopping } }

    /// Runs until `stop()`, the frame limit, or the end of finite sources; returns the final statistics.
    @discardableResult
    public func run() throws -> PipelineStatistics {
        // Each device's first state: what the socket tells a client that connects before anything else happens.
        announce(.audio, .started, Self.origin(of: audio))
        announce(.video, .started, Self.origin(of: video))
        if options.lockstep {
            try runLockstep()
        } else {
            let captureThreads = DispatchGroup()
            Self.startThread("soundloc-audio", in: captureThreads) { [self] in audioLoop() }
            Self.startThread("soundloc-video", in: captureThreads) { [self] in videoLoop() }
            inferenceLoop()
            stop()
            // Capture threads notice `stopping` within one read timeout; join them so sources are not closed under them.
            captureThreads.wait()
        }
        return currentStatistics
    }

    // MARK: capture threads

    /// Starts a named thread running `body`; `group` is left when it returns, so `group.wait()` joins it.
    private static func startThread(_ name: String, in group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
        group.enter()
        let thread = Thread {
            body()
            group.leave()
        }
        thread.name = name
        thread.start()
    }

    /// Marks the audio as over (the source ended or failed for good) and wakes a frame waiting for its window.
    private func markAudioEnded() {
        audioLock.withLock {
            audioEnded = true
            audioLock.broadcast()
        }
    }

    private var isAudioEnded: Bool { audioLock.withLock { audioEnded } }

    private func audioLoop() {
        let period = max(1, audio.sampleRate / 50)
        var attempt = 0
        while !isStopping {
            do {
                guard let block = try audio.read(maxFrames: period) else {
                    markAudioEnded()
                    return
                }
                if attempt > 0 { attempt = 0; announce(.audio, .recovered, "audio capture recovered") }
                ingest(block)
            } catch {
                guard !isStopping else { return }
                // One failure per outage: while reopening, the source throws "not open" again, which only logs.
                if attempt == 0 {
                    stateLock.withLock { statistics.deviceFailures += 1 }
                    announce(.audio, .failed, "\(error)")
                }
                guard let device = audio as? Reopenable else {
                    markAudioEnded()
                    return
                }
                attempt = reopen(device, attempt: attempt, what: "audio")
            }
        }
    }

    private func videoLoop() {
        var attempt = 0
        while !isStopping {
            do {
                guard var frame = try video.nextFrame(timeout: 0.5) else {
                    frames.close()
                    return
                }
                if attempt > 0 { attempt = 0; announce(.video, .recovered, "video capture recovered") }
                if frame.captureTimeNanos == nil { frame.captureTimeNanos = monotonicNanos() }
                stateLock.withLock { statistics.framesCaptured += 1 }
                frames.put(frame)
            } catch VideoSourceError.timedOut {
                continue
            } catch {
                guard !isStopping else { return }
                if attempt == 0 {
                    stateLock.withLock { statistics.deviceFailures += 1 }
                    announce(.video, .failed, "\(error)")
                }
                guard let device = video as? Reopenable else { frames.close(); return }
                attempt = reopen(device, attempt: attempt, what: "video")
            }
        }
    }

    /// Sleeps per the backoff schedule, tries once, and returns the next attempt number.
    private func reopen(_ device: Reopenable, attempt: Int, what: String) -> Int {
        let delays = options.reopenBackoffSeconds
        let delay = delays.isEmpty ? 1 : delays[min(attempt, delays.count - 1)]
        let deadline = Date(timeIntervalSinceNow: delay)
        let stopped: Bool = stateLock.withLock {
            while !stopping && stateLock.wait(until: deadline) {}  // stop() broadcasts
            return stopping
        }
        guard !stopped else { return attempt + 1 }
        do {
            try device.reopen()
            logger.info("\(what) device reopened", metadata: ["attempt": "\(attempt + 1)"])
        } catch {
            logger.warning("\(what) device still unavailable", metadata: ["error": "\(error)", "attempt": "\(attempt + 1)"])
        }
        return attempt + 1
    }

    private func ingest(_ block: AudioBlock) {
        audioLock.lock()
        defer { audioLock.unlock() }
        if block.followsGap || streamOffset == nil {
            if block.followsGap { stateLock.withLock { statistics.audioOverruns += 1 } }
            stream.reset()
            timeline.reset()
            streamOffset = block.firstSampleIndex
        }
        let index = block.firstSampleIndex - streamOffset!
        timeline.anchor(sampleIndex: index, capturedAt: block.captureTimeNanos ?? monotonicNanos())
        block.samples.withUnsafeBufferPointer { stream.append($0) }
        audioLock.broadcast()
    }

    /// Where a source's data comes from, for STATUS messages.
    private static func origin(of source: AnyObject) -> String {
        if let microphone = source as? ALSACaptureSource { return "capturing from \(microphone.pcmName)" }
        if let camera = source as? V4L2CaptureSource { return "capturing from \(camera.devicePath)" }
        return "replaying a file"
    }

    private func announce(_ device: StatusMessage.Device, _ state: StatusMessage.State, _ message: String) {
        let metadata: Logger.Metadata = ["device": "\(device.rawValue)"]
        if state == .failed { logger.error("\(message)", metadata: metadata) } else { logger.notice("\(message)", metadata: metadata) }
        for sink in sinks { sink.publish(status: StatusMessage(device: device, state: state, message: message)) }
    }

    // MARK: inference

    private func inferenceLoop() {
        var schedule = FrameSchedule(maxFps: options.maxFps)
        while !isStopping {
            onHeartbeat?()
            guard let frame = frames.take(timeout: 0.5) else {
                if frames.isClosedAndEmpty { return }
                continue
            }
            let captured = frame.captureTimeNanos ?? monotonicNanos()
            guard schedule.admits(captured) else {
                stateLock.withLock { statistics.framesDropped += 1 }
                continue
            }
            if process(frame, capturedAt: captured, waitForAudio: true) { schedule.processed(captured) }
            if let limit = options.frameLimit, currentStatistics.framesProcessed >= limit { return }
        }
    }

    private func runLockstep() throws {
        while !isStopping {
            onHeartbeat?()
            guard var frame = try video.nextFrame(timeout: 5) else { return }
            if frame.captureTimeNanos == nil { frame.captureTimeNanos = monotonicNanos() }
            stateLock.withLock { statistics.framesCaptured += 1 }
            let captured = frame.captureTimeNanos!
            // Pull audio until the window ending at this frame is complete (or the audio ends).
            while !isAudioEnded {
                let (needed, have) = audioLock.withLock { () -> (Int64?, Int64?) in
                    (timeline.sampleIndex(at: captured), stream.latestWindowEnd)
                }
                if let needed, let have, have >= needed { break }
                guard let block = try audio.read(maxFrames: 1600) else { markAudioEnded(); break }
                ingest(block)
            }
            // Frames past the end of the audio have no window of their own: the replay is over.
            let beyondAudio = audioLock.withLock { () -> Bool in
                guard audioEnded, let needed = timeline.sampleIndex(at: captured), let have = stream.latestWindowEnd else { return false }
                return needed >= have + Int64(stream.config.hop)
            }
            if beyondAudio { return }
            _ = process(frame, capturedAt: captured, waitForAudio: false)
            if let limit = options.frameLimit, currentStatistics.framesProcessed >= limit { return }
        }
    }

    /// Pairs the frame with its audio window and runs one forward pass; false when no window exists yet.
    private func process(_ frame: VideoFrame, capturedAt captured: UInt64, waitForAudio: Bool) -> Bool {
        let started = monotonicNanos()
        var stageNanos: [(String, UInt64)] = [("queue", started &- captured)]
        var mark = started
        func lap(_ stage: String) {
            let now = monotonicNanos()
            stageNanos.append((stage, now &- mark))
            mark = now
        }

        // Audio window ending at the capture time, rounded down to the hop.
        audioLock.lock()
        let hop = Int64(stream.config.hop)
        var end = timeline.sampleIndex(at: captured).map { $0 / hop * hop }
        if waitForAudio, let wanted = end {
            let deadline = Date(timeIntervalSinceNow: options.audioWaitSeconds)
            while (stream.latestWindowEnd ?? 0) < wanted && !audioEnded && !isStopping {
                if !audioLock.wait(until: deadline) { break }
            }
        }
        guard let latest = stream.latestWindowEnd, (end ?? latest) >= Int64(stream.config.windowSamples) else {
            audioLock.unlock()
            stateLock.withLock { statistics.framesWarmingUp += 1 }
            return false
        }
        end = min(max(end ?? latest, stream.earliestWindowEnd), latest)
        let level: Double
        do {
            try stream.window(endingAt: end!, into: window)
            level = try stream.levelDBFS(endingAt: end!)
        } catch {
            audioLock.unlock()
            logger.warning("no audio window for frame", metadata: ["error": "\(error)"])
            return false
        }
        audioLock.unlock()
        lap("features")

        if preprocessor?.inputWidth != frame.width || preprocessor?.inputHeight != frame.height {
            preprocessor = ImagePreprocessor(inputWidth: frame.width, inputHeight: frame.height,
                                             outputSize: model.metadata.imageSize,
                                             mean: model.metadata.imageMean, std: model.metadata.imageStd)
        }
        frame.pixels.withUnsafeBufferPointer { preprocessor!.process(rgb: $0, into: image) }
        lap("preprocess")

        let output = model.forward(image: UnsafeBufferPointer(image), audio: UnsafeBufferPointer(window))
        lap("inference")

        let silence = level < options.silenceDBFS
        let interpretation = interpreter.interpret(
            classes: output.classes, height: output.mapHeight, width: output.mapWidth, s: output.s, l: output.l,
            classMaps: output.classMaps, audioProbabilities: output.pA, silence: silence)
        sequence += 1
        let counters = currentStatistics
        var report = FrameReport(
            sequence: sequence, captureNanos: captured, audioDistribution: Array(output.pA),
            sounding: interpretation.sounding.map {
                FrameReport.Sounding(classIndex: $0.classIndex, score: Float($0.score), peak: (Float($0.peak.x), Float($0.peak.y)),
                                     box: (Float($0.box.x), Float($0.box.y), Float($0.box.width), Float($0.box.height)))
            },
            silentVisible: interpretation.silentVisible.compactMap { output.classes.firstIndex(of: $0) },
            silence: silence,
            unlocated: interpretation.unlocated.map {
                FrameReport.Unlocated(classIndex: $0.classIndex, reason: $0.reason, value: Float($0.value), threshold: Float($0.threshold))
            },
            droppedFrames: UInt64(counters.framesDropped),
            overruns: UInt64(counters.audioOverruns),
            maps: FrameReport.Maps(classMaps: Array(output.classMaps), soundingArea: Array(output.l)))
        lap("interpret")
        report.latencies = stageNanos.map { FrameReport.StageLatency($0.0, milliseconds: Double($0.1) / 1e6) }
        for sink in sinks { sink.publish(report) }
        lap("publish")
        let published = monotonicNanos()
        stageNanos.append(("capture_to_publish", published &- captured))
        stateLock.withLock {
            statistics.framesProcessed += 1
            for (stage, nanos) in stageNanos { statistics.record(stage, nanos: nanos) }
        }
        onFrame?(ProcessedFrame(report: report, interpretation: interpretation, frame: frame, output: output))
        return true
    }
}

/// Caps the processed frame rate: one frame per interval, where a frame up to half an interval early
/// still takes its slot — so a 30 fps camera under a 25 fps cap yields 25 fps, not every other frame.
public struct FrameSchedule: Sendable {
    public let interval: UInt64
    private var nextDue: UInt64 = 0

    public init(maxFps: Double) { interval = UInt64(1e9 / maxFps) }

    /// Whether a frame captured at `captured` (ns) may be processed.
    public func admits(_ captured: UInt64) -> Bool { captured + interval / 2 >= nextDue }

    /// Records that the frame captured at `captured` was processed.
    public mutating func processed(_ captured: UInt64) {
        // Keep the schedule while on time; restart it from this frame after falling behind.
        let base = nextDue > 0 && captured < nextDue + interval / 2 ? nextDue : captured
        nextDue = base + interval
    }
}

/// Errors that stop the pipeline from starting.
public enum PipelineError: Error, CustomStringConvertible {
    case mismatch(String)

    public var description: String {
        switch self {
        case let .mismatch(why): return "pipeline cannot start: \(why)"
        }
    }
}
