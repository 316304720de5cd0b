#if os(Linux)
import Foundation
import Logging
import XCTest
@testable import SoundlocCapture

/// What can be checked without a camera: the errors a user sees for wrong paths, and the listing.
/// Capture itself runs against vivid in a VM (Tests/SoundlocCLITests/VividCaptureIntegrationTests.swift).
final class V4L2CaptureTests: XCTestCase {
    private let logger = Logger(label: "test.v4l2")

    private func openError(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> VideoSourceError? {
        do {
            let source = try V4L2CaptureSource(devicePath: path, logger: logger)
            source.close()
            XCTFail("\(path) opened as a camera", file: file, line: line)
            return nil
        } catch let error as VideoSourceError {
            return error
        } catch {
            XCTFail("unexpected error type: \(error)", file: file, line: line)
            return nil
        }
    }

    func testMissingDeviceSaysNotFound() {
        let error = openError("/dev/video99")
        XCTAssertEqual(error, .deviceNotFound(path: "/dev/video99"))
        XCTAssertEqual(error?.description,
                       "camera '/dev/video99' not found: no such device (is it plugged in? `soundloc devices` lists cameras)")
    }

    func testNonVideoDeviceIsNotACaptureDevice() {
        let error = openError("/dev/null")
        guard case let .notACaptureDevice(path, reason)? = error else {
            return XCTFail("expected notACaptureDevice, got \(String(describing: error))")
        }
        XCTAssertEqual(path, "/dev/null")
        XCTAssertTrue(reason.contains("VIDIOC_QUERYCAP"), reason)
        XCTAssertTrue(error!.description.hasPrefix("'/dev/null' is not a V4L2 capture device"), error!.description)
    }

    func testRegularFileIsNotACaptureDevice() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-not-a-camera-\(getpid())")
        try Data("not a camera".utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        guard case .notACaptureDevice? = openError(url.path) else { return XCTFail("expected notACaptureDevice") }
    }

    func testDirectoryCannotBeOpened() {
        guard case let .deviceUnavailable(_, reason)? = openError("/tmp") else { return XCTFail("expected deviceUnavailable") }
        XCTAssertFalse(reason.isEmpty)
    }

    func testDescribeAndSetControlReportTheSameErrors() {
        XCTAssertThrowsError(try V4L2CaptureSource.describeDevice(path: "/dev/video99")) {
            XCTAssertEqual($0 as? VideoSourceError, .deviceNotFound(path: "/dev/video99"))
        }
        XCTAssertThrowsError(try V4L2CaptureSource.describeDevice(path: "/dev/null")) {
            guard case .notACaptureDevice? = $0 as? VideoSourceError else { return XCTFail("got \($0)") }
        }
        XCTAssertThrowsError(try V4L2CaptureSource.setControl(path: "/dev/video99", id: 0x0098_0900, value: 0)) {
            XCTAssertEqual($0 as? VideoSourceError, .deviceNotFound(path: "/dev/video99"))
        }
    }

    func testListingFindsVideoNodesInNumericOrderAndKeepsTheirErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-dev-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["video10", "video2", "videoX", "vbi0", "media0"] {
            try Data().write(to: dir.appendingPathComponent(name))
        }
        let cameras = V4L2CaptureSource.listDevices(directory: dir.path)
        XCTAssertEqual(cameras.map(\.path), ["\(dir.path)/video2", "\(dir.path)/video10"])
        for camera in cameras {
            XCTAssertFalse(camera.isCapture)
            XCTAssertTrue(camera.error?.contains("is not a V4L2 capture device") ?? false, camera.error ?? "no error")
        }
        XCTAssertEqual(V4L2CaptureSource.listDevices(directory: "/nonexistent-soundloc").count, 0)
    }

    func testLibV4L2IsLoadedAtRunTime() {
        // Tools/setup.sh installs libv4l-dev, whose libv4l-0 provides libv4l2.so.0.
        XCTAssertTrue(V4L2CaptureSource.convertsFormats, "libv4l2.so.0 could not be loaded (install libv4l-0)")
    }

    func testFourCCText() {
        XCTAssertEqual(fourccText(0x5659_5559), "YUYV")
        XCTAssertEqual(fourccText(0x4750_4A4D), "MJPG")
        XCTAssertEqual(fourccText(0x2036_3159), "Y16")  // trailing space dropped
        XCTAssertEqual(fourccText(0x2036_3159 | 1 << 31), "Y16-BE")
    }

    func testErrorMessagesAreOneLine() {
        let errors: [VideoSourceError] = [
            .deviceNotFound(path: "/dev/video0"), .deviceBusy(path: "/dev/video0"),
            .notACaptureDevice(path: "/dev/video1", reason: "it is a metadata capture node"),
            .formatUnavailable(path: "/dev/video0", reason: "x"), .deviceUnavailable(path: "/dev/video0", reason: "x"),
            .deviceFailed(path: "/dev/video0", reason: "x"), .timedOut(path: "/dev/video0", seconds: 2), .closed,
        ]
        for error in errors {
            XCTAssertFalse(error.description.contains("\n"))
            XCTAssertFalse(error.description.isEmpty)
        }
    }
}
#endif
