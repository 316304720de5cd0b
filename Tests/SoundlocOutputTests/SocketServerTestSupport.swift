import Foundation
import Logging
import SoundlocOutput
import XCTest

/// A deliberately plain POSIX client (connected by `UnixSocket.connect`, as `ProtocolClient` is), so the tests do not
/// share code paths with the server's NIO stack.
final class RawClient: @unchecked Sendable {  // unchecked: used by one thread at a time (a test hands it to a reader thread and leaves it alone)
    struct Timeout: Error {}
    let fd: Int32
    private var buffer: [UInt8] = []

    init(path: String) throws {
        fd = try UnixSocket.connect(path: path)
    }

    private var isClosed = false
    deinit { close() }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        Glibc.close(fd)
    }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// The next line without its newline; nil at end of stream (or a reset, which is how UNIX sockets may end).
    func readLine(timeout: TimeInterval = SocketTest.hangGuard) throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw Timeout() }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, Int32(min(remaining, 1) * 1000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    func readMessage(timeout: TimeInterval = SocketTest.hangGuard) throws -> ServerMessage? {
        guard let line = try readLine(timeout: timeout) else { return nil }
        return try ServerMessage.decode(Array(line.utf8))
    }

    /// Reads until a FRAME arrives, returning it and whatever else came first.
    func readFrame(timeout: TimeInterval = SocketTest.hangGuard) throws -> (FrameMessage?, skipped: [ServerMessage]) {
        var skipped: [ServerMessage] = []
        while let message = try readMessage(timeout: timeout) {
            if case let .frame(frame) = message { return (frame, skipped) }
            skipped.append(message)
        }
        return (nil, skipped)
    }

    /// Reads everything the server has queued so far, without blocking for more than `quiet`.
    func drain(quiet: TimeInterval = 0.05) -> Int {
        var total = 0
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, Int32(quiet * 1000)) > 0 else { return total }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return total }
            buffer.append(contentsOf: chunk[..<n])
            total += n
        }
    }

    func expectBanner(file: StaticString = #filePath, line: UInt = #line) throws -> VersionMessage {
        guard case let .version(banner)? = try readMessage() else {
            XCTFail("expected a VERSION banner first", file: file, line: line)
            throw Timeout()
        }
        return banner
    }

    /// Sends a WATCH and waits for the server's echo of the resulting settings.
    func watch(enable: Bool? = nil, maps: Bool? = nil) throws -> WatchMessage {
        var fields = ["\"class\":\"WATCH\""]
        if let enable { fields.append("\"enable\":\(enable)") }
        if let maps { fields.append("\"maps\":\(maps)") }
        send("{\(fields.joined(separator: ","))}\n")
        while let message = try readMessage() {
            if case let .watch(echo) = message { return echo }
        }
        throw Timeout()
    }
}

enum SocketTest {
    static let classes = ["accordion", "cello", "violin"]

    static var logger: Logger {
        var logger = Logger(label: "socket-test")
        logger.logLevel = .error
        return logger
    }

    static func banner(classes: [String] = classes) -> VersionMessage {
        VersionMessage(release: "0.0-test", model: ModelIdentity(name: "test-model", checksum: "sha256:abc"),
                       classes: classes, imageWidth: 640, imageHeight: 480)
    }

    /// A short private directory: sun_path holds only 108 bytes.
    static func directory() throws -> String {
        var template = Array("/tmp/slsock.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        return String(cString: made)
    }

    static func removeDirectory(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    static func report(_ seq: UInt64, classes: Int = classes.count, maps: Bool = false) -> FrameReport {
        let cells = SoundlocProtocol.mapCells
        return FrameReport(
            sequence: seq, captureNanos: monotonicNanos() - 30_000_000,
            latencies: [.init("audio", milliseconds: 5.25), .init("vision", milliseconds: 21.5)],
            audioDistribution: (0..<classes).map { $0 == 0 ? 0.7 : 0.3 / Float(max(classes - 1, 1)) },
            sounding: [.init(classIndex: 0, score: 0.875, peak: (0.25, 0.5), box: (0.125, 0.375, 0.25, 0.25))],
            silentVisible: [1], silence: false, droppedFrames: 2, overruns: 1,
            maps: maps ? .init(classMaps: (0..<(classes * cells)).map { Float($0 % 997) / 997 },
                               soundingArea: (0..<cells).map { Float($0) / Float(cells) }) : nil)
    }

    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// How long a test waits for something that must happen before calling it a hang: generous, so a busy
    /// machine never fails a test, while a real hang still ends in a failure instead of a stuck suite.
    static let hangGuard: TimeInterval = 60

    /// Polls `condition` every millisecond until it holds or `timeout` (a hang guard) passes.
    static func waitUntil(timeout: TimeInterval = hangGuard, _ what: String, file: StaticString = #filePath, line: UInt = #line,
                          _ condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            if Date() > deadline { return XCTFail("timed out waiting for \(what)", file: file, line: line) }
            usleep(1000)
        }
    }

    /// Resident memory of this process in bytes.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
