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

    func testFIFOIsRefusedNotWaitedOn() throws {
        let fifo = directory.appendingPathComponent("camera.y4m").path
        try makeFIFO(fifo)
        let outcome = runWithHangGuard(unblock: { unblockFIFO(fifo) }) {
            _ = try FileVideoSource(path: fifo, fps: 25, clock: PlaybackClock(realTime: false))
        }
        XCTAssertEqual(outcome.error.map { "\($0)" }, "cannot read \(fifo): is a FIFO (named pipe), not a regular file", "\(outcome)")
    }
}
