import Foundation
import Logging
import SoundlocCapture
import SoundlocDSOL
import SoundlocOutput
@testable import SoundlocPipeline
import XCTest

/// Collects what the pipeline publishes.
final class RecordingSink: ReportSink, @unchecked Sendable {
    private let lock = NSLock()
    private var storedReports: [FrameReport] = []
    private var storedStatuses: [StatusMessage] = []
    var reports: [FrameReport] { lock.withLock { storedReports } }
    var statuses: [StatusMessage] { lock.withLock { storedStatuses } }
    func publish(_ report: FrameReport) { lock.withLock { storedReports.append(report) } }
    func publish(status: StatusMessage) { lock.withLock { storedStatuses.append(status) } }
}

/// Delays every forward pass, to make the pipeline fall behind on purpose.
final class SlowLocalizer: Localizer {
    let inner: DSOLModel
    let delay: TimeInterval
    init(_ inner: DSOLModel, delay: TimeInterval) { self.inner = inner; self.delay = delay }
    var metadata: ModelMetadata { inner.metadata }
    func forward(image: UnsafeBufferPointer<Float>, audio: UnsafeBufferPointer<Float>) -> DSOLOutput {
        Thread.sleep(forTimeInterval: delay)
        return inner.forward(image: image, audio: audio)
    }
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
                      options: PipelineOptions = PipelineOptions()) throws -> (Pipeline, RecordingSink) {
        let files = try inputs(seconds: seconds, amplitude: amplitude)
        let clock = PlaybackClock(realTime: realTime)
        let audio = PacedAudioSource(try WAVFileSource(path: files.wav), clock: clock)
        let video = try FileVideoSource(path: files.image, fps: fps, clock: clock, stillSeconds: seconds)
        let model = try DSOLModel(path: Self.tinyModel, threads: 1)
        var options = options
        options.lockstep = !realTime
        let pipeline = try Pipeline(audio: audio, video: video, model: delay > 0 ? SlowLocalizer(model, delay: delay) : model,
                                    options: options, logger: Logger(label: "test"))
        let sink = RecordingSink()
        pipeline.sinks = [sink]
        return (pipeline, sink)
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
        // 25 fps for 2.5 s of real time against a model that takes 150 ms: at most ~7 frames per second fit.
        var options = PipelineOptions()
        options.maxFps = 100
        let (pipeline, sink) = try makePipeline(seconds: 2.5, fps: 25, realTime: true, delay: 0.15, options: options)
        let started = Date()
        let stats = try pipeline.run()
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertLessThan(elapsed, 4.0, "the run must end with its sources, not work through a backlog")
        XCTAssertGreaterThan(stats.framesDropped + stats.framesWarmingUp, 20)
        XCTAssertGreaterThan(stats.framesProcessed, 3)
        XCTAssertLessThanOrEqual(stats.framesProcessed, 12)
        XCTAssertGreaterThan(sink.reports.last!.droppedFrames, 0)
        // Each processed frame waited at most about one inference in the slot.
        XCTAssertLessThan(stats.percentiles("queue")!.p99, 400)
    }

    func testStopEndsALiveRunPromptly() throws {
        let (pipeline, _) = try makePipeline(seconds: 30, fps: 25, realTime: true)
        DispatchQueue.global().asyncAfter(deadline: .now() + 1.5) { pipeline.stop() }
        let started = Date()
        try pipeline.run()
        XCTAssertLessThan(Date().timeIntervalSince(started), 3.5)
    }
}
