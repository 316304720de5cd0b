import Foundation
import Logging
import SoundlocCapture
import SoundlocDSOL
import SoundlocOutput
@testable import SoundlocPipeline
import XCTest

/// Collects what the pipeline publishes.
final class RecordingSink: ReportSink, @unchecked Sendable {  // unchecked: the stored reports and statuses are guarded by `lock`
    private let lock = NSLock()
    private var storedReports: [FrameReport] = []
    private var storedStatuses: [StatusMessage] = []
    var reports: [FrameReport] { lock.withLock { storedReports } }
    var statuses: [StatusMessage] { lock.withLock { storedStatuses } }
    func publish(_ report: FrameReport) { lock.withLock { storedReports.append(report) } }
    func publish(status: StatusMessage) { lock.withLock { storedStatuses.append(status) } }
}

/// Delays every forward pass, to make the pipeline fall behind on purpose, and counts the passes that
/// started after the video source had ended (a pipeline that queued frames would work through a backlog then).
final class SlowLocalizer: Localizer, @unchecked Sendable {  // unchecked: the counters and flag are guarded by `lock`; the rest is immutable
    let inner: DSOLModel
    let delay: TimeInterval
    private let lock = NSLock()
    private var sourceEnded = false
    private var passes = 0
    private var passesAfterEnd = 0
    init(_ inner: DSOLModel, delay: TimeInterval) { self.inner = inner; self.delay = delay }
    var metadata: ModelMetadata { inner.metadata }
    var forwardPasses: Int { lock.withLock { passes } }
    var forwardPassesAfterSourceEnded: Int { lock.withLock { passesAfterEnd } }
    func videoEnded() { lock.withLock { sourceEnded = true } }
    func forward(image: UnsafeBufferPointer<Float>, audio: UnsafeBufferPointer<Float>) -> DSOLOutput {
        lock.withLock {
            passes += 1
            if sourceEnded { passesAfterEnd += 1 }
        }
        Thread.sleep(forTimeInterval: delay)
        return inner.forward(image: image, audio: audio)
    }
}

/// Passes frames through and tells `onEnd` when the source has none left.
final class ObservedVideoSource: VideoSource {
    let inner: VideoSource
    let onEnd: () -> Void
    init(_ inner: VideoSource, onEnd: @escaping () -> Void) { self.inner = inner; self.onEnd = onEnd }
    func nextFrame(timeout: Double) throws -> VideoFrame? {
        let frame = try inner.nextFrame(timeout: timeout)
        if frame == nil { onEnd() }
        return frame
    }
    func close() { inner.close() }
}

/// A camera that is unplugged after `failAt` frames: reads then fail until `reopen()` has been called
/// `refusals + 1` times (the first `refusals` calls find no device), as a V4L2 source behaves.
final class UnpluggedVideoSource: VideoSource, Reopenable {
    let inner: VideoSource
    let failAt: Int
    private(set) var refusals: Int
    private(set) var reopenCalls = 0
    private var delivered = 0
    private var open = true
    init(_ inner: VideoSource, failAt: Int, refusals: Int) { self.inner = inner; self.failAt = failAt; self.refusals = refusals }
    func nextFrame(timeout: Double) throws -> VideoFrame? {
        guard open else { throw VideoSourceError.deviceFailed(path: "/dev/video9", reason: "device is not open; call reopen()") }
        if delivered == failAt {
            delivered += 1
            open = false
            throw VideoSourceError.deviceFailed(path: "/dev/video9", reason: "cannot dequeue a frame: No such device")
        }
        delivered += 1
        return try inner.nextFrame(timeout: timeout)
    }
    func reopen() throws {
        reopenCalls += 1
        if refusals > 0 { refusals -= 1; throw VideoSourceError.deviceNotFound(path: "/dev/video9") }
        open = true
    }
    func close() { inner.close() }
}

final class PipelineRunTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let tinyModel = repository.appendingPathComponent("Tests/SoundlocEngineTests/Fixtures/tiny/model.safetensors").path
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-pipeline-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    /// A WAV of `seconds` of a 440 Hz tone (or silence) and a 64×48 PPM still image.
    func inputs(seconds: Double, amplitude: Float) throws -> (wav: String, image: String) {
        let samples = (0..<Int(seconds * 16000)).map { amplitude * sin(2 * Float.pi * 440 * Float($0) / 16000) }
        let wav = directory.appendingPathComponent("clip.wav").path
        try Data(WAVFile.encodePCM16(samples, sampleRate: 16000)).write(to: URL(fileURLWithPath: wav))
        var ppm = Array("P6\n64 48\n255\n".utf8)
        for y in 0..<48 { for x in 0..<64 { ppm += [UInt8(x * 4), UInt8(y * 5), 128] } }
        let image = directory.appendingPathComponent("still.ppm").path
        try Data(ppm).write(to: URL(fileURLWithPath: image))
        return (wav, image)
    }

    func makePipeline(seconds: Double, amplitude: Float = 0.5, fps: Double, realTime: Bool, delay: TimeInterval = 0,
                      options: PipelineOptions = PipelineOptions(),
                      onFrame: (@Sendable (ProcessedFrame) -> Void)? = nil) throws -> (Pipeline, RecordingSink) {
        let (pipeline, sink, _) = try makeObservedPipeline(seconds: seconds, amplitude: amplitude, fps: fps, realTime: realTime,
                                                           delay: delay, options: options, onFrame: onFrame)
        return (pipeline, sink)
    }

    /// The pipeline, its sink, and (with a `delay`) the slow model that also watches the video source end.
    func makeObservedPipeline(seconds: Double, amplitude: Float = 0.5, fps: Double, realTime: Bool, delay: TimeInterval = 0,
                              options: PipelineOptions = PipelineOptions(),
                              onFrame: (@Sendable (ProcessedFrame) -> Void)? = nil) throws -> (Pipeline, RecordingSink, SlowLocalizer?) {
        let files = try inputs(seconds: seconds, amplitude: amplitude)
        let clock = PlaybackClock(realTime: realTime)
        let audio = PacedAudioSource(try WAVFileSource(path: files.wav), clock: clock)
        let model = try DSOLModel(path: Self.tinyModel, threads: 1)
        let slow = delay > 0 ? SlowLocalizer(model, delay: delay) : nil
        let still = try FileVideoSource(path: files.image, fps: fps, clock: clock, stillSeconds: seconds)
        let video = ObservedVideoSource(still) { slow?.videoEnded() }
        var options = options
        options.lockstep = !realTime
        let sink = RecordingSink()
        let pipeline = try Pipeline(audio: audio, video: video, model: slow ?? model, options: options, sinks: [sink],
                                    onFrame: onFrame, logger: Logger(label: "test"))
        return (pipeline, sink, slow)
    }

    func testLockstepProcessesEveryFrameOnceAudioCoversIt() throws {
        let (pipeline, sink) = try makePipeline(seconds: 3, fps: 10, realTime: false)
        let stats = try pipeline.run()
        XCTAssertEqual(stats.framesCaptured, 30)
        // Frames before the first full second of audio have no window yet.
        XCTAssertEqual(stats.framesWarmingUp + stats.framesProcessed, 30)
        XCTAssertGreaterThanOrEqual(stats.framesProcessed, 20)
        XCTAssertEqual(stats.framesDropped, 0)
        let reports = sink.reports
        XCTAssertEqual(reports.map(\.sequence), (1...UInt64(reports.count)).map { $0 })
        XCTAssertTrue(reports.allSatisfy { $0.audioDistribution.count == 11 && abs($0.audioDistribution.reduce(0, +) - 1) < 1e-3 })
        XCTAssertTrue(reports.allSatisfy { !$0.silence })
        XCTAssertEqual(reports.first?.maps?.classMaps.count, 11 * 196)
        XCTAssertNotNil(stats.percentiles("inference"))
    }

    func testSilenceIsNeverReportedAsSounding() throws {
        let (pipeline, sink) = try makePipeline(seconds: 2, amplitude: 0, fps: 10, realTime: false)
        try pipeline.run()
        XCTAssertFalse(sink.reports.isEmpty)
        XCTAssertTrue(sink.reports.allSatisfy { $0.silence && $0.sounding.isEmpty })
    }

    func testFallingBehindDropsFramesInsteadOfQueueing() throws {
        // 25 fps for 2.5 s of real time against a model that takes at least 150 ms per frame: it cannot keep up,
        // however fast or busy the machine. What must hold is behaviour, never how long anything took.
        var options = PipelineOptions()
        options.maxFps = 100
        let (pipeline, sink, slow) = try makeObservedPipeline(seconds: 2.5, fps: 25, realTime: true, delay: 0.15, options: options)
        let model = try XCTUnwrap(slow)
        let stats = try pipeline.run()
        // Every captured frame is accounted for exactly once: processed, dropped (counted) or before the audio.
        XCTAssertEqual(stats.framesCaptured, 63)
        XCTAssertEqual(stats.framesProcessed + stats.framesDropped + stats.framesWarmingUp, stats.framesCaptured)
        XCTAssertGreaterThan(stats.framesDropped, 0)
        XCTAssertGreaterThan(stats.framesProcessed, 0)
        XCTAssertEqual(model.forwardPasses, stats.framesProcessed, "one forward pass per processed frame")
        // Nothing queued: once the source has ended at most two forward passes start, where a queue would hold a
        // backlog of dozens: the frame left in the one-frame slot, and the frame the inference thread had already
        // taken but whose pass had not begun yet (it waits up to audioWaitSeconds for its audio, which on a busy
        // machine can outlast the source's last frame).
        XCTAssertLessThanOrEqual(model.forwardPassesAfterSourceEnded, 2)
        // The reports say how many frames were dropped so far, never decreasing.
        let dropped = sink.reports.map(\.droppedFrames)
        XCTAssertEqual(dropped, dropped.sorted())
        XCTAssertGreaterThan(dropped.last ?? 0, 0)
        XCTAssertEqual(sink.reports.map(\.sequence), (1...UInt64(sink.reports.count)).map { $0 })
    }

    func testStopEndsALiveRunBeforeItsSourcesDo() throws {
        // 30 s of real-time input; stop() from another thread once the first frame is out. Had stop() no effect,
        // the run would play all 750 frames; so the count, not a stopwatch, proves it stopped early.
        let firstFrame = DispatchSemaphore(value: 0)
        let (pipeline, sink) = try makePipeline(seconds: 30, fps: 25, realTime: true, onFrame: { _ in firstFrame.signal() })
        DispatchQueue.global().async { [weak pipeline] in
            if firstFrame.wait(timeout: .now() + 60) == .success { pipeline?.stop() }
        }
        let stats = try pipeline.run()
        XCTAssertGreaterThanOrEqual(stats.framesProcessed, 1)
        XCTAssertLessThan(stats.framesCaptured, 750, "the run ended with stop(), not with its sources")
        XCTAssertEqual(sink.reports.count, stats.framesProcessed)
    }

    func testAnUnpluggedCameraIsOneFailureAndOneRecoveryForClients() throws {
        // The camera vanishes after 10 frames and is back on the fourth attempt. Clients must hear of the outage once
        // and of its end once, however many retries it took, and frames must flow again afterwards.
        let files = try inputs(seconds: 3, amplitude: 0.5)
        let clock = PlaybackClock(realTime: true)
        let audio = PacedAudioSource(try WAVFileSource(path: files.wav), clock: clock)
        let still = try FileVideoSource(path: files.image, fps: 20, clock: clock, stillSeconds: 3)
        let camera = UnpluggedVideoSource(still, failAt: 10, refusals: 3)
        var options = PipelineOptions()
        options.reopenBackoffSeconds = [0.01, 0.02]
        let sink = RecordingSink()
        let pipeline = try Pipeline(audio: audio, video: camera, model: try DSOLModel(path: Self.tinyModel, threads: 1),
                                    options: options, sinks: [sink], logger: Logger(label: "test"))
        let stats = try pipeline.run()
        let video = sink.statuses.filter { $0.device == .video }
        XCTAssertEqual(video.filter { $0.state == .failed }.count, 1, "\(video)")
        XCTAssertEqual(video.filter { $0.state == .recovered }.count, 1, "\(video)")
        XCTAssertTrue(video.first { $0.state == .failed }?.message.contains("No such device") ?? false, "\(video)")
        XCTAssertEqual(camera.reopenCalls, 4)
        XCTAssertEqual(stats.deviceFailures, 1)
        // Frames after the outage: more captured than the 10 before it.
        XCTAssertGreaterThan(stats.framesCaptured, 10)
    }
}
