import Foundation
import SoundlocCapture
@testable import SoundlocPipeline
import SoundlocTestSupport
import XCTest

/// YUV4MPEG2 input through `FileVideoSource`: good streams decode, crafted headers are refused with a message.
final class Y4MInputTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-y4m-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: directory) }

    /// Writes a stream with `header` and `frames` mid-grey frames of width×height (4:2:0).
    func y4m(_ header: String, width: Int = 4, height: Int = 2, frames: Int = 1) throws -> String {
        var bytes = Array((header + "\n").utf8)
        let size = width * height + 2 * ((width + 1) / 2) * ((height + 1) / 2)
        for _ in 0..<frames { bytes += Array("FRAME\n".utf8) + [UInt8](repeating: 128, count: size) }
        let path = directory.appendingPathComponent("v\(UUID().uuidString).y4m").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func open(_ path: String) throws -> FileVideoSource {
        try FileVideoSource(path: path, fps: 25, clock: PlaybackClock(realTime: false))
    }

    func testGoodStreamDecodes() throws {
        let source = try open(try y4m("YUV4MPEG2 W5 H3 F30000:1001 Ip A1:1 C420jpeg", width: 5, height: 3, frames: 3))
        XCTAssertEqual(source.frameSize.width, 5)
        XCTAssertEqual(source.frameSize.height, 3)
        XCTAssertEqual(source.fps, 30000.0 / 1001, accuracy: 1e-9)
        var count = 0
        while let frame = try source.nextFrame(timeout: 1) {
            XCTAssertEqual(frame.pixels.count, 5 * 3 * 3)
            count += 1
        }
        XCTAssertEqual(count, 3)
        // Without an F field the caller's rate applies.
        XCTAssertEqual(try open(try y4m("YUV4MPEG2 W4 H2 Cmono", frames: 1)).fps, 25)
    }

    func testCraftedHeadersAreRefusedWithAMessage() throws {
        let cases: [(String, String)] = [
            ("YUV4MPEG2 W0 H2", "frame width '0' is not a whole number in 1...16384"),
            ("YUV4MPEG2 W4 H0", "frame height '0' is not a whole number in 1...16384"),
            ("YUV4MPEG2 W-640 H480", "frame width '-640'"),
            ("YUV4MPEG2 W640 H-1", "frame height '-1'"),
            ("YUV4MPEG2 W16385 H2", "frame width '16385'"),
            ("YUV4MPEG2 W99999999999999999999 H2", "frame width '99999999999999999999'"),
            ("YUV4MPEG2 W4611686018427387904 H4", "frame width '4611686018427387904'"),  // 2^62 × 4 overflows Int
            ("YUV4MPEG2 W16384 H16384", "frame size 16384x16384 is more than 67108864 pixels"),
            ("YUV4MPEG2 Wabc H2", "frame width 'abc'"),
            ("YUV4MPEG2 H2", "no frame size"),
            ("YUV4MPEG2 W4 H2 F30:0", "frame rate 'F30:0' is not two positive whole numbers"),
            ("YUV4MPEG2 W4 H2 F0:1", "frame rate 'F0:1'"),
            ("YUV4MPEG2 W4 H2 F-30:1", "frame rate 'F-30:1'"),
            ("YUV4MPEG2 W4 H2 F30:-1", "frame rate 'F30:-1'"),
            ("YUV4MPEG2 W4 H2 Fnan:1", "frame rate 'Fnan:1'"),
            ("YUV4MPEG2 W4 H2 Finf:1", "frame rate 'Finf:1'"),
            ("YUV4MPEG2 W4 H2 F1e308:1", "frame rate 'F1e308:1'"),
            ("YUV4MPEG2 W4 H2 F30", "frame rate 'F30'"),
            ("YUV4MPEG2 W4 H2 F9223372036854775807:1", "is 9.22337e+18 fps, outside 0.01...240"),
            ("YUV4MPEG2 W4 H2 F1:9223372036854775807", "outside 0.01...240"),
            ("YUV4MPEG2 W4 H2 C420p10", "colour space C420p10"),
            ("YUV4MPEG2 W4 H2 C444", "colour space C444"),
            ("NOTY4M W4 H2", "not a YUV4MPEG2 stream"),
        ]
        for (header, phrase) in cases {
            let path = try y4m(header)
            XCTAssertThrowsError(try open(path), header) { error in
                guard case let .formatUnavailable(errorPath, reason)? = error as? VideoSourceError else {
                    return XCTFail("\(header): \(error)")
                }
                XCTAssertEqual(errorPath, path)
                XCTAssertTrue(reason.contains(phrase), "\(header): \(reason)")
            }
        }
    }

    func testPlaybackStampsNeverTrap() {
        let clock = PlaybackClock(realTime: false, startNanos: 5)
        XCTAssertEqual(clock.stamp(.nan), 5)
        XCTAssertEqual(clock.stamp(-.infinity), 5)
        XCTAssertEqual(clock.stamp(.infinity), 5)
        XCTAssertEqual(clock.stamp(1e300), 5 + 1_000_000_000 * 1_000_000_000)
        XCTAssertEqual(clock.stamp(1.5), 1_500_000_005)
    }

    func testFIFOIsRefusedNotWaitedOn() throws {
        let fifo = directory.appendingPathComponent("camera.y4m").path
        try makeFIFO(fifo)
        let outcome = runWithHangGuard(unblock: { unblockFIFO(fifo) }) {
            _ = try FileVideoSource(path: fifo, fps: 25, clock: PlaybackClock(realTime: false))
        }
        XCTAssertEqual(outcome.error.map { "\($0)" }, "cannot read \(fifo): is a FIFO (named pipe), not a regular file", "\(outcome)")
    }
}
