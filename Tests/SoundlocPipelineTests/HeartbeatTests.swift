import Foundation
import Logging
import SoundlocCapture
import SoundlocDSOL
@testable import SoundlocPipeline
import XCTest

/// A model whose forward pass can be held, standing in for a pipeline that wedges mid-frame.
final class GatedLocalizer: Localizer, @unchecked Sendable {  // unchecked: holding is guarded by `lock`; the semaphores are thread-safe
    let inner: DSOLModel
    let entered = DispatchSemaphore(value: 0)
    private let gate = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var holding = true
    init(_ inner: DSOLModel) { self.inner = inner }
    var metadata: ModelMetadata { inner.metadata }
    func release() {
        lock.withLock { holding = false }
        gate.signal()
    }
    func forward(image: UnsafeBufferPointer<Float>, audio: UnsafeBufferPointer<Float>) -> DSOLOutput {
        if lock.withLock({ holding }) {
            entered.signal()
            gate.wait()
        }
        return inner.forward(image: image, audio: audio)
    }
}

/// The heartbeat systemd's watchdog hangs on: it beats while the pipeline runs, with or without frames, and
/// stops while the inference thread is stuck.
final class HeartbeatTests: XCTestCase {
    final class Counter: @unchecked Sendable {  // unchecked: count is guarded by `lock`
        private let lock = NSLock()
        private var count = 0
        var value: Int { lock.withLock { count } }
        func increment() { lock.withLock { count += 1 } }
    }

    func testHeartbeatStopsWhileAForwardPassIsStuckAndResumesAfter() throws {
        let demo = PipelineRunTests.repository.appendingPathComponent("Models/demo")
        let wav = demo.appendingPathComponent("clip.wav").path, image = demo.appendingPathComponent("scene.png").path
        let clock = PlaybackClock(realTime: true)
        let audio = PacedAudioSource(try WAVFileSource(path: wav), clock: clock)
        let video = try FileVideoSource(path: image, fps: 10, clock: clock, stillSeconds: 4)
        let model = GatedLocalizer(try DSOLModel(path: PipelineRunTests.tinyModel, threads: 1))
        let beats = Counter()
        let pipeline = try Pipeline(audio: audio, video: video, model: model, options: PipelineOptions(),
                                    onHeartbeat: { beats.increment() }, logger: Logger(label: "test"))
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? pipeline.run()
            finished.signal()
        }
        // The first frame with a full second of audio reaches the model and is held there.
        XCTAssertEqual(model.entered.wait(timeout: .now() + 60), .success, "no forward pass started")
        let whileStuck = beats.value
        XCTAssertGreaterThan(whileStuck, 0, "the loop beat before the first forward pass (warm-up frames and waits)")
        // Frames keep arriving from the capture side, but a stuck inference thread never beats.
        Thread.sleep(forTimeInterval: 1.2)
        XCTAssertEqual(beats.value, whileStuck)
        model.release()
        XCTAssertEqual(finished.wait(timeout: .now() + 60), .success, "the pipeline did not finish after the model was released")
        XCTAssertGreaterThan(beats.value, whileStuck)
        audio.close()
        video.close()
    }
}
