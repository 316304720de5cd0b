import Foundation
@testable import SoundlocOutput
import XCTest

/// Socket activation (LISTEN_FDS/LISTEN_PID) and sd_notify (READY=1, WATCHDOG=1), against sockets the tests make
/// the way systemd would.
final class SystemdTests: XCTestCase {
    var directory: String!

    override func setUpWithError() throws { directory = try SocketTest.directory() }
    override func tearDown() { SocketTest.removeDirectory(directory) }

    /// A UNIX socket bound at `path`, listening unless `listen` is false.
    func unixSocket(_ path: String, type: Int32 = Int32(SOCK_STREAM.rawValue), listen: Bool = true) throws -> Int32 {
        let fd = socket(AF_UNIX, type, 0)
        var address = try SocketPath.socketAddress(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        if listen { XCTAssertEqual(Glibc.listen(fd, 8), 0) }
        return fd
    }

    // MARK: socket activation

    func testPassedDescriptorsFollowTheEnvironmentProtocol() throws {
        XCTAssertEqual(try SocketActivation.passedDescriptors(environment: [:], pid: 42), [])
        XCTAssertEqual(try SocketActivation.passedDescriptors(environment: ["LISTEN_FDS": "1", "LISTEN_PID": "42"], pid: 42), [3])
        XCTAssertEqual(try SocketActivation.passedDescriptors(environment: ["LISTEN_FDS": "2", "LISTEN_PID": "42"], pid: 42), [3, 4])
        // Meant for another process (we inherited the environment): not ours to take.
        XCTAssertEqual(try SocketActivation.passedDescriptors(environment: ["LISTEN_FDS": "1", "LISTEN_PID": "41"], pid: 42), [])
        for broken in [["LISTEN_FDS": "1"], ["LISTEN_FDS": "one", "LISTEN_PID": "42"], ["LISTEN_FDS": "1", "LISTEN_PID": "x"],
                       ["LISTEN_FDS": "-1", "LISTEN_PID": "42"]] {
            XCTAssertThrowsError(try SocketActivation.passedDescriptors(environment: broken, pid: 42), "\(broken)") {
                XCTAssertTrue("\($0)".contains("malformed"), "\($0)")
            }
        }
    }

    func testOnlyAListeningUnixStreamSocketIsAccepted() throws {
        let listening = try unixSocket(directory + "/a.sock")
        defer { close(listening) }
        XCTAssertNoThrow(try SocketActivation.checkListeningUnixStream(listening))
        XCTAssertEqual(SocketActivation.boundPath(listening), directory + "/a.sock")

        let bound = try unixSocket(directory + "/b.sock", listen: false)
        let datagram = try unixSocket(directory + "/c.sock", type: Int32(SOCK_DGRAM.rawValue), listen: false)
        var pipeEnds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&pipeEnds), 0)
        defer { [bound, datagram, pipeEnds[0], pipeEnds[1]].forEach { close($0) } }
        for fd in [bound, datagram, pipeEnds[0]] {
            XCTAssertThrowsError(try SocketActivation.checkListeningUnixStream(fd)) {
                XCTAssertEqual($0 as? SocketActivationError, .notAListeningUnixSocket(fd))
            }
        }
    }

    func testServerServesAPassedSocketAndLeavesItsFileToSystemd() throws {
        let path = directory + "/passed.sock"
        let fd = try unixSocket(path)
        // The configured path differs: the passed socket wins, and nothing is created at the configured one.
        let configured = directory + "/configured.sock"
        let server = try SocketServer.start(configuration: .init(path: configured), banner: SocketTest.banner(),
                                            logger: SocketTest.logger, listening: fd)
        let client = try RawClient(path: path)
        XCTAssertEqual(try client.expectBanner().classes, SocketTest.classes)
        _ = try client.watch()
        server.publish(SocketTest.report(2))
        XCTAssertEqual(try client.readFrame().0?.seq, 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: configured))
        server.shutdown()
        // systemd made the file and removes it (RemoveOnStop=): a shutdown that unlinked it would break the next start.
        var info = stat()
        XCTAssertEqual(lstat(path, &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFSOCK)
    }

    // MARK: sd_notify

    /// A datagram socket standing in for systemd's notification socket.
    final class NotifySocket {
        let fd: Int32
        init(path: String) throws {
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            var address = try SocketPath.socketAddress(path)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            XCTAssertEqual(bound, 0)
        }
        /// Abstract name (no file), as systemd uses for user managers.
        init(abstract name: String) {
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = [0] + Array(name.utf8)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
            let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)! + bytes.count)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            XCTAssertEqual(bound, 0)
        }
        deinit { close(fd) }
        /// Every datagram waiting, each as its lines.
        func received() -> [[String]] {
            var messages: [[String]] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = recv(fd, &buffer, buffer.count, 0)
                guard n > 0 else { return messages }
                messages.append(String(decoding: buffer[..<n], as: UTF8.self).split(separator: "\n").map(String.init))
            }
        }
    }

    final class FakeClock: @unchecked Sendable {  // unchecked: the test advances it between beats on the thread that calls heartbeat()
        var nanos: UInt64 = 1_000_000_000
    }

    func testFirstBeatSaysReadyAndLaterBeatsFeedTheWatchdogAtAQuarterOfItsInterval() throws {
        let systemd = try NotifySocket(path: directory + "/notify")
        let clock = FakeClock()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": directory + "/notify", "WATCHDOG_USEC": "8000000"],
                                       pid: 42, clock: { clock.nanos })
        XCTAssertTrue(notifier.isActive)
        XCTAssertEqual(notifier.watchdogInterval, 2_000_000_000)
        notifier.heartbeat()
        XCTAssertEqual(systemd.received(), [["READY=1", "STATUS=running", "WATCHDOG=1"]])
        // Beats come every frame; pings only when a quarter of WatchdogSec has passed since the last.
        for step in 1...19 {
            clock.nanos += 100_000_000
            notifier.heartbeat()
            XCTAssertEqual(systemd.received(), [], "after \(step * 100) ms")
        }
        clock.nanos += 100_000_000
        notifier.heartbeat()
        XCTAssertEqual(systemd.received(), [["WATCHDOG=1"]])
        // No beats (a wedged pipeline), no pings, however much time passes.
        clock.nanos += 60_000_000_000
        XCTAssertEqual(systemd.received(), [])
        notifier.stopping()
        XCTAssertEqual(systemd.received(), [["STOPPING=1"]])
    }

    func testWatchdogMeantForAnotherProcessOrAbsentSendsOnlyReadiness() throws {
        let systemd = try NotifySocket(path: directory + "/notify")
        for environment in [["NOTIFY_SOCKET": directory + "/notify", "WATCHDOG_USEC": "8000000", "WATCHDOG_PID": "41"],
                            ["NOTIFY_SOCKET": directory + "/notify"]] {
            let notifier = SystemdNotifier(environment: environment, pid: 42)
            XCTAssertNil(notifier.watchdogInterval)
            notifier.heartbeat()
            notifier.heartbeat()
            XCTAssertEqual(systemd.received(), [["READY=1", "STATUS=running"]])
        }
    }

    func testAbstractNotifySocketAndNoSocketAtAll() throws {
        let name = "soundloc-test-\(UUID().uuidString)"
        let systemd = NotifySocket(abstract: name)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": "@" + name], pid: 42)
        notifier.heartbeat()
        XCTAssertEqual(systemd.received(), [["READY=1", "STATUS=running"]])

        let outside = SystemdNotifier(environment: [:], pid: 42)
        XCTAssertFalse(outside.isActive)
        outside.heartbeat()  // nothing to do, nothing to fail
        XCTAssertFalse(outside.send(["READY=1"]))
        XCTAssertFalse(SystemdNotifier(environment: ["NOTIFY_SOCKET": "relative/path"], pid: 42).isActive)
    }
}
