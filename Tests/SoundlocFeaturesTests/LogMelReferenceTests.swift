import Foundation
import SoundlocCapture
import SoundlocFeatures
import SoundlocOutput
import XCTest

/// The clip-wise front end against librosa's definition (fixtures from Tools/make_logmel_fixtures.py).
final class LogMelReferenceTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/logmel")

    func worstDifference(clip name: String) throws -> Float {
        let wav = try WAVFile.read(path: Self.fixtures.appendingPathComponent("\(name).wav").path, requiring: 16000)
        let reference = try NPY.read(path: Self.fixtures.appendingPathComponent("\(name).npy").path)
        XCTAssertEqual(reference.shape, [201, 64])
        let actual = try LogMel().window(wav.samples)
        XCTAssertEqual(actual.count, reference.values.count)
        return zip(actual, reference.values).map { abs($0 - $1) }.max() ?? .infinity
    }

    func testMatchesLibrosaOnEveryFixture() throws {
        for name in ["white_noise", "chirp", "violin", "silence", "clipping", "half_second"] {
            let worst = try worstDifference(clip: name)
            XCTAssertLessThanOrEqual(worst, 0.01, "\(name): worst cell differs from librosa by \(worst) dB")
        }
    }

    func testHalfSecondClipIsPaddedWithSilence() throws {
        let wav = try WAVFile.read(path: Self.fixtures.appendingPathComponent("half_second.wav").path)
        XCTAssertEqual(wav.samples.count, 8000)
        let window = try LogMel().window(wav.samples)
        // Frames wholly inside the padded half are silent, so they sit on the window's floor.
        let floor = window.min()!
        for frame in 102..<201 {
            for band in 0..<64 { XCTAssertEqual(window[frame * 64 + band], floor, "frame \(frame) band \(band)") }
        }
        XCTAssertEqual(window.max()! - floor, 80, accuracy: 1e-4)
    }

    func testSilenceIsTheAminFloorEverywhere() throws {
        let window = try LogMel().window([Float](repeating: 0, count: 16000))
        XCTAssertTrue(window.allSatisfy { abs($0 - -100) < 1e-4 })
    }

    func testTwoMelBandsAreEmptyAsInLibrosa() throws {
        // With 100 Hz bins, two low bands fall between bins; a loud noise leaves them on the floor.
        var rng = SystemRandomNumberGenerator()
        let noise = (0..<16000).map { _ in Float.random(in: -0.5...0.5, using: &rng) }
        let window = try LogMel().window(noise)
        let floor = window.min()!
        let emptyBands = (0..<64).filter { band in (0..<201).allSatisfy { window[$0 * 64 + band] == floor } }
        XCTAssertEqual(emptyBands.count, 2, "empty bands: \(emptyBands)")
    }

    func testRejectsInconsistentConfiguration() {
        var config = LogMelConfig.dsol
        config.hop = 70
        XCTAssertThrowsError(try LogMel(config: config))
    }
}
