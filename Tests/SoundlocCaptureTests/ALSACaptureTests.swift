#if os(Linux)
import Foundation
import Logging
import XCTest
@testable import SoundlocCapture

/// Drives the real alsa-lib capture path with a private configuration: a `file` PCM whose `infile`
/// is a raw S16_LE mono file, over a `null` slave (no sound card needed).
final class ALSACaptureTests: XCTestCase {
    static let sampleCount = 24_000  // 1.5 s at 16 kHz
    // Written once by the class setUp before any test runs, only read afterwards.
    nonisolated(unsafe) static var expected: [Int16] = []
    nonisolated(unsafe) static var directory: URL!

    override class func setUp() {
        super.setUp()
        var samples = [Int16](repeating: 0, count: sampleCount)
        var state: UInt32 = 0x1234_5678
        for i in 0..<sampleCount {
            state = state &* 1_664_525 &+ 1_013_904_223  // deterministic LCG, upper bits as the sample
            samples[i] = Int16(truncatingIfNeeded: state >> 16)
        }
        samples[0] = .min  // both extremes, so the scale (1/32768) is pinned at the edges
        samples[1] = .max
        samples[2] = 0
        expected = samples

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-alsa-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        directory = dir
        let raw = dir.appendingPathComponent("replay.raw")
        let bytes = samples.withUnsafeBufferPointer { Data(buffer: $0) }  // x86-64 and ARM64 Linux are little-endian
        try! bytes.write(to: raw)

        // A private ALSA_CONFIG_PATH replaces alsa.conf entirely, so only these PCMs exist in this process.
        let config = """
            pcm.nullslave { type null }
            pcm.replay {
                type file
                slave.pcm "nullslave"
                file "/dev/null"
                infile "\(raw.path)"
                format "raw"
                hint { show on; description "soundloc test replay" }
            }
            """
        let configURL = dir.appendingPathComponent("asound.conf")
        try! config.write(to: configURL, atomically: true, encoding: .utf8)
        // alsa-lib rereads its configuration when the path list changes, so this holds even after earlier alsa use.
        setenv("ALSA_CONFIG_PATH", configURL.path, 1)
    }

    override class func tearDown() {
        if let directory { try? FileManager.default.removeItem(at: directory) }
        super.tearDown()
    }

    private func makeSource() throws -> ALSACaptureSource {
        try ALSACaptureSource(pcmName: "replay", logger: Logger(label: "test.alsa"))
    }

    /// Reads exactly `count` samples in blocks of at most `block`.
    private func readSamples(_ source: ALSACaptureSource, count: Int, block: Int = 320) throws -> [AudioBlock] {
        var blocks: [AudioBlock] = []
        var total = 0
        while total < count {
            guard let next = try source.read(maxFrames: min(block, count - total)) else {
                XCTFail("live source ended")
                break
            }
            XCTAssertFalse(next.samples.isEmpty)
            total += next.samples.count
            blocks.append(next)
        }
        return blocks
    }

    func testReplaysFileBitExactlyWithContiguousIndicesAndMonotonicTimes() throws {
        let openedAt = monotonicNanos()
        let source = try makeSource()
        defer { source.close() }
        XCTAssertEqual(source.sampleRate, 16000)
        XCTAssertEqual(source.periodFrames, 320)
        XCTAssertGreaterThanOrEqual(source.bufferFrames, 2 * source.periodFrames)

        let blocks = try readSamples(source, count: Self.sampleCount)
        let samples = blocks.flatMap(\.samples)
        XCTAssertEqual(samples.count, Self.sampleCount)
        XCTAssertEqual(samples, Self.expected.map { Float($0) / 32768 })
        XCTAssertEqual(samples[0], -1)
        XCTAssertEqual(samples[1], 32767 / 32768)

        var nextIndex: Int64 = 0
        var lastTime: UInt64 = 0
        let now = monotonicNanos()
        for block in blocks {
            XCTAssertEqual(block.firstSampleIndex, nextIndex)
            nextIndex += Int64(block.samples.count)
            XCTAssertFalse(block.followsGap)
            let time = try XCTUnwrap(block.captureTimeNanos)
            XCTAssertGreaterThanOrEqual(time, lastTime)
            lastTime = time
            // The file PCM is not paced, so samples are "captured" within the reading time, less at most a buffer.
            XCTAssertLessThanOrEqual(time, now)
            XCTAssertGreaterThan(time, openedAt - 1_000_000_000)
        }
        XCTAssertEqual(source.overruns, 0)

        // Past the end of infile the file plugin leaves the caller's buffer untouched; we zero it, so it reads as silence.
        let after = try XCTUnwrap(source.read(maxFrames: 320))
        XCTAssertEqual(after.firstSampleIndex, Int64(Self.sampleCount))
        XCTAssertEqual(after.samples, [Float](repeating: 0, count: 320))
    }

    func testReadLargerThanBufferIsClampedAndStillExact() throws {
        let source = try makeSource()
        defer { source.close() }
        let first = try XCTUnwrap(source.read(maxFrames: 100_000))
        XCTAssertEqual(first.samples.count, source.bufferFrames)
        XCTAssertEqual(first.samples, Self.expected[0..<source.bufferFrames].map { Float($0) / 32768 })
    }

    func testOverrunRecoveryRestartsStreamAndMarksGap() throws {
        let source = try makeSource()
        defer { source.close() }
        let before = try readSamples(source, count: 640)
        try source.recover(fromReadError: -EPIPE)
        XCTAssertEqual(source.overruns, 1)
        let after = try XCTUnwrap(source.read(maxFrames: 320))
        XCTAssertTrue(after.followsGap)
        XCTAssertEqual(after.firstSampleIndex, 640)
        // prepare/start do not rewind the file plugin's input, so the data simply continues.
        XCTAssertEqual(after.samples, Self.expected[640..<960].map { Float($0) / 32768 })
        XCTAssertGreaterThanOrEqual(after.captureTimeNanos!, before.last!.captureTimeNanos!)
        let next = try XCTUnwrap(source.read(maxFrames: 320))
        XCTAssertFalse(next.followsGap)
    }

    func testSuspendRecoveryMarksGap() throws {
        let source = try makeSource()
        defer { source.close() }
        _ = try readSamples(source, count: 320)
        try source.recover(fromReadError: -ESTRPIPE)
        let after = try XCTUnwrap(source.read(maxFrames: 320))
        XCTAssertTrue(after.followsGap)
        XCTAssertEqual(after.firstSampleIndex, 320)
        XCTAssertEqual(source.overruns, 0)
    }

    func testDeviceLossThrowsDeviceFailedUntilReopened() throws {
        let source = try makeSource()
        defer { source.close() }
        _ = try readSamples(source, count: 960)
        XCTAssertThrowsError(try source.recover(fromReadError: -ENODEV)) { error in
            guard case let .deviceFailed(name, reason)? = error as? AudioSourceError else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertEqual(name, "replay")
            XCTAssertTrue(reason.contains("No such device"), reason)
        }
        XCTAssertThrowsError(try source.read(maxFrames: 320)) { error in
            guard case .deviceFailed? = error as? AudioSourceError else { return XCTFail("unexpected error \(error)") }
        }

        try source.reopen()
        let block = try XCTUnwrap(source.read(maxFrames: 320))
        XCTAssertTrue(block.followsGap)
        XCTAssertEqual(block.firstSampleIndex, 960)  // delivered samples keep counting across the restart
        // A fresh open of the file PCM starts its infile from the beginning.
        XCTAssertEqual(block.samples, Self.expected[0..<320].map { Float($0) / 32768 })
    }

    func testMissingPCMThrowsDeviceUnavailableNamingIt() {
        let name = "soundloc_no_such_pcm"
        XCTAssertThrowsError(try ALSACaptureSource(pcmName: name, logger: Logger(label: "test.alsa"))) { error in
            guard case let .deviceUnavailable(errorName, reason)? = error as? AudioSourceError else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertEqual(errorName, name)
            XCTAssertTrue(reason.contains("No such file or directory"), reason)  // snd_strerror(-ENOENT)
            XCTAssertTrue(reason.contains("Unknown PCM \(name)"), reason)  // alsa-lib's diagnostic via the shim
            XCTAssertTrue("\(error)".contains(name))
        }
    }

    func testCloseIsIdempotentAndReadAfterCloseThrows() throws {
        let source = try makeSource()
        _ = try source.read(maxFrames: 320)
        source.close()
        source.close()
        XCTAssertThrowsError(try source.read(maxFrames: 320)) { error in
            XCTAssertEqual(error as? AudioSourceError, .closed)
        }
        XCTAssertThrowsError(try source.reopen()) { error in
            XCTAssertEqual(error as? AudioSourceError, .closed)
        }
    }

    func testCapturePCMNamesListsConfiguredCapturePCM() {
        XCTAssertTrue(ALSACaptureSource.capturePCMNames().contains("replay"))
    }
}
#endif
