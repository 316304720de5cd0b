import Foundation
import SoundlocPipeline
import XCTest

final class PipelinePartsTests: XCTestCase {
    // MARK: latest-item slot

    func testSlotKeepsOnlyTheNewestAndCountsDrops() {
        let slot = LatestSlot<Int>()
        slot.put(1); slot.put(2); slot.put(3)
        XCTAssertEqual(slot.take(timeout: 0), 3)
        XCTAssertEqual(slot.droppedCount, 2)
        XCTAssertNil(slot.take(timeout: 0.01))
    }

    func testSlotWakesAWaitingConsumerAndCloses() {
        let slot = LatestSlot<String>()
        let got = expectation(description: "consumer got the item")
        DispatchQueue.global().async {
            XCTAssertEqual(slot.take(timeout: 5), "frame")
            XCTAssertNil(slot.take(timeout: 5))  // returns promptly once closed
            got.fulfill()
        }
        Thread.sleep(forTimeInterval: 0.05)
        slot.put("frame")
        Thread.sleep(forTimeInterval: 0.05)
        slot.close()
        wait(for: [got], timeout: 60)  // a hang guard: fails only if the consumer never wakes
    }

    // MARK: audio timeline

    func testTimelineMapsTimesToSamples() {
        var timeline = AudioTimeline(sampleRate: 16000)
        XCTAssertNil(timeline.sampleIndex(at: 5))
        timeline.anchor(sampleIndex: 32000, capturedAt: 10_000_000_000)
        XCTAssertEqual(timeline.sampleIndex(at: 10_000_000_000), 32000)
        XCTAssertEqual(timeline.sampleIndex(at: 10_500_000_000), 40000)
        XCTAssertEqual(timeline.sampleIndex(at: 9_000_000_000), 16000)
        XCTAssertEqual(timeline.captureTime(ofSample: 48000), 11_000_000_000)
        timeline.reset()
        XCTAssertNil(timeline.captureTime(ofSample: 1))
    }

    // MARK: interpretation of the heads' maps

    /// Two classes on a 2×2 map; class 0 fills the left column, class 1 the right.
    func interpret(l: [Float], pA: [Float], silence: Bool = false) -> FrameInterpretation {
        let classes = ["violin", "flute"]
        // m: strong for class 0 on the left, for class 1 on the right.
        let m: [Float] = [4, -4, 4, -4, /* class 1 */ -4, 4, -4, 4]
        let s = (0..<8).map { m[$0] * l[$0 % 4] }
        var maps = [Float](repeating: 0, count: 8)
        for cell in 0..<4 {
            let e0 = exp(3 * s[cell]), e1 = exp(3 * s[4 + cell])
            maps[cell] = e0 / (e0 + e1); maps[4 + cell] = e1 / (e0 + e1)
        }
        return s.withUnsafeBufferPointer { s in l.withUnsafeBufferPointer { l in maps.withUnsafeBufferPointer { maps in
            pA.withUnsafeBufferPointer { pA in
                SoundingInterpreter().interpret(classes: classes, height: 2, width: 2, s: s, l: l, classMaps: maps,
                                                audioProbabilities: pA, silence: silence)
            } } } }
    }

    func testSoundingClassGetsItsPeakAndBoxAndTheOtherIsSilentButVisible() {
        let result = interpret(l: [0.9, 0.1, 0.8, 0.1], pA: [0.9, 0.1])
        XCTAssertEqual(result.sounding.map(\.className), ["violin"])
        let violin = result.sounding[0]
        XCTAssertEqual(violin.peak.x, 0.25); XCTAssertEqual(violin.peak.y, 0.25)
        XCTAssertEqual(violin.box.x, 0); XCTAssertEqual(violin.box.width, 0.5); XCTAssertEqual(violin.box.height, 1)
        XCTAssertGreaterThan(violin.score, 0.8)
        XCTAssertEqual(result.silentVisible, ["flute"])
        XCTAssertEqual(result.soundingAreaPeak, 0.9, accuracy: 1e-6)
    }

    func testSilenceGateAndDarkSoundingAreaReportNothingSounding() {
        let gated = interpret(l: [0.9, 0.1, 0.8, 0.1], pA: [0.9, 0.1], silence: true)
        XCTAssertTrue(gated.sounding.isEmpty)
        XCTAssertTrue(gated.silence)
        XCTAssertEqual(gated.silentVisible, ["violin", "flute"])
        let dark = interpret(l: [0.2, 0.1, 0.2, 0.1], pA: [0.9, 0.1])
        XCTAssertTrue(dark.sounding.isEmpty)
    }

    func testAudioThatDoesNotHearAClassDoesNotReportIt() {
        let result = interpret(l: [0.9, 0.1, 0.8, 0.1], pA: [0.05, 0.95])
        XCTAssertTrue(result.sounding.isEmpty, "flute's map is not where l is bright; violin is not heard")
    }
}

final class FrameScheduleTests: XCTestCase {
    /// Feeds `seconds` of a camera at `cameraFps` to a schedule capped at `maxFps`; returns frames processed.
    func processed(cameraFps: Double, maxFps: Double, seconds: Double = 10) -> Int {
        var schedule = FrameSchedule(maxFps: maxFps)
        var count = 0
        for n in 0..<Int(cameraFps * seconds) {
            let captured = 1_000_000_000 + UInt64(Double(n) * 1e9 / cameraFps)
            if schedule.admits(captured) { schedule.processed(captured); count += 1 }
        }
        return count
    }

    func testCapIsReachedWhenTheCameraIsFaster() {
        XCTAssertEqual(processed(cameraFps: 30, maxFps: 25), 250, accuracy: 2)
        XCTAssertEqual(processed(cameraFps: 30, maxFps: 20), 200, accuracy: 2)
        XCTAssertEqual(processed(cameraFps: 60, maxFps: 25), 250, accuracy: 2)
        XCTAssertEqual(processed(cameraFps: 30, maxFps: 10), 100, accuracy: 1)
    }

    func testEveryFrameIsKeptWhenTheCameraIsSlower() {
        XCTAssertEqual(processed(cameraFps: 15, maxFps: 25), 150)
    }

    func testScheduleRestartsAfterFallingBehind() {
        var schedule = FrameSchedule(maxFps: 25)
        schedule.processed(1_000_000_000)
        // Busy for a second: the next frame is processed, and the one 33 ms later too (still on the new schedule).
        XCTAssertTrue(schedule.admits(2_000_000_000))
        schedule.processed(2_000_000_000)
        XCTAssertTrue(schedule.admits(2_033_000_000))
        XCTAssertFalse(schedule.admits(2_010_000_000))
    }
}
