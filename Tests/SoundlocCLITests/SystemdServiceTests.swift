import Foundation
import XCTest

/// `soundloc run` under the shipped units' protocols, without systemd as PID 1: systemd's own
/// systemd-socket-activate passes the listening socket (LISTEN_FDS/LISTEN_PID), the socket file gets the mode and
/// group Firmware-Configs/soundloc.socket gives it, and a test datagram socket plays NOTIFY_SOCKET. Then a member of
/// the socket's group connects and gets the banner; another user is refused by the kernel.
final class SystemdServiceTests: XCTestCase {
    /// `Key=value` settings of a unit file's section (the last one wins, as systemd reads them).
    static func unitSettings(_ name: String) throws -> [String: String] {
        let text = try String(contentsOf: CLI.repositoryRoot.appendingPathComponent("Firmware-Configs/\(name)"), encoding: .utf8)
        var settings: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { settings[String(parts[0])] = String(parts[1]) }
        }
        return settings
    }

    /// Connects to `path` from a child process running as `uid` (group `uid`) with only the supplementary `groups`:
    /// the first line the server sends, or "refused: <errno name>". The child only makes system calls on memory
    /// prepared before fork(), as a child of a threaded process must.
    func connectAs(uid: uid_t, groups: [gid_t], path: String) throws -> String {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        var ends: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&ends), 0)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        let groupList = UnsafeMutablePointer<gid_t>.allocate(capacity: max(groups.count, 1))
        defer { groupList.deallocate() }
        for (index, group) in groups.enumerated() { groupList[index] = group }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        let child = fork()
        if child == 0 {
            close(ends[0])
            var status: Int32 = 0  // 0: connected, the line follows; otherwise the errno of connect (or 255: could not switch user)
            if setgroups(groups.count, groupList) != 0 || setgid(gid_t(uid)) != 0 || setuid(uid) != 0 {
                status = 255
            } else {
                let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
                status = connected == 0 ? 0 : errno
                _ = write(ends[1], &status, 4)
                if connected == 0 {
                    var total = 0
                    while total < 4096 {
                        let n = read(fd, buffer + total, 4096 - total)
                        guard n > 0 else { break }
                        if memchr(buffer + total, 0x0A, n) != nil { total += n; break }
                        total += n
                    }
                    _ = write(ends[1], buffer, total)
                }
                _exit(0)
            }
            _ = write(ends[1], &status, 4)
            _exit(0)
        }
        close(ends[1])
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(ends[0], &chunk, chunk.count)
            guard n > 0 else { break }
            bytes += chunk[..<n]
        }
        close(ends[0])
        var childStatus: Int32 = 0
        waitpid(child, &childStatus, 0)
        guard bytes.count >= 4 else { throw POSIXError(.EIO) }
        let code = bytes[0..<4].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
        if code == 255 { return "could not switch to uid \(uid)" }
        if code != 0 { return "refused: " + (code == EACCES ? "EACCES" : String(cString: strerror(code))) }
        let text = String(decoding: bytes[4...], as: UTF8.self)
        return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
    }

    func testActivatedRunServesTheUnitsSocketToItsGroupOnlyAndNotifiesSystemd() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root: the test connects as other users (setpriv)") }
        let activate = "/usr/bin/systemd-socket-activate"
        guard FileManager.default.isExecutableFile(atPath: activate) else {
            return XCTFail("\(activate) missing: install the test tools with Tools/setup.sh --test (package systemd)")
        }
        let socketUnit = try Self.unitSettings("soundloc.socket")
        let service = try Self.unitSettings("soundloc.service")
        XCTAssertEqual(service["Type"], "notify")
        let mode = try XCTUnwrap(socketUnit["SocketMode"].flatMap { mode_t($0, radix: 8) })
        let groupName = try XCTUnwrap(socketUnit["SocketGroup"])
        let group = try XCTUnwrap(getgrnam(groupName), "group \(groupName) missing").pointee.gr_gid
        let watchdogSeconds = try XCTUnwrap(service["WatchdogSec"].flatMap(Int.init))

        let directory = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        chmod(directory.path, 0o755)
        let path = directory.appendingPathComponent("soundloc.sock").path
        let notifyPath = directory.appendingPathComponent("notify").path
        let notify = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(notify) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(notifyPath.utf8) + [0]) }
        XCTAssertEqual(withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(notify, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }, 0)
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(notify, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        let repo = CLI.repositoryRoot.path
        let child = Process()
        child.executableURL = URL(fileURLWithPath: activate)
        child.arguments = ["--listen=\(path)", "-E", "NOTIFY_SOCKET=\(notifyPath)", "-E", "WATCHDOG_USEC=\(watchdogSeconds * 1_000_000)",
                           "-E", "SOUNDLOC_LOG_LEVEL=info",
                           CLI.executable.path, "run", "--model", "\(repo)/Models/dsol-music-int8.safetensors",
                           "--audio", "\(repo)/Models/demo/clip.wav", "--video", "\(repo)/Models/demo/scene.png",
                           "--socket", "none", "--threads", "1"]
        child.standardInput = FileHandle.nullDevice
        let output = Pipe()
        child.standardOutput = output
        child.standardError = output
        let log = PipeReader(output)
        let exited = DispatchSemaphore(value: 0)
        child.terminationHandler = { _ in exited.signal() }
        try child.run()
        var reaped = false
        defer {
            // A failure above may leave systemd-socket-activate waiting for a connection that never comes.
            if !reaped {
                kill(child.processIdentifier, SIGKILL)
                exited.wait()
            }
        }
        // systemd-socket-activate binds and listens at once; soundloc starts on the first connection.
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: path) && Date() < deadline { usleep(20_000) }
        // As systemd does for SocketMode=/SocketGroup= right after bind.
        XCTAssertEqual(chown(path, 0, group), 0)
        XCTAssertEqual(chmod(path, mode), 0)

        XCTAssertEqual(try connectAs(uid: 4243, groups: [], path: path), "refused: EACCES")
        XCTAssertEqual(try connectAs(uid: 4244, groups: [4244], path: path), "refused: EACCES")
        let banner = try connectAs(uid: 4242, groups: [group], path: path)
        XCTAssertTrue(banner.hasPrefix("{\"class\":\"VERSION\""), banner)

        // READY=1 once the pipeline runs, then watchdog pings from its heartbeat.
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        /// Reads datagrams until `enough` holds (or none comes for a minute: the run is gone).
        func receive(until enough: () -> Bool) {
            while !enough() {
                let n = recv(notify, &buffer, buffer.count, 0)
                guard n > 0 else { return }
                messages += String(decoding: buffer[..<n], as: UTF8.self).split(separator: "\n").map(String.init)
            }
        }
        receive { messages.filter { $0 == "WATCHDOG=1" }.count >= 2 }
        XCTAssertEqual(messages.first, "READY=1", "\(messages)")
        XCTAssertEqual(messages.filter { $0 == "WATCHDOG=1" }.count, 2, "\(messages)")

        kill(child.processIdentifier, SIGTERM)
        guard exited.wait(timeout: .now() + 60) == .success else { return XCTFail("soundloc run did not stop on SIGTERM") }
        reaped = true
        XCTAssertEqual(child.terminationStatus, 0, log.text())
        receive { messages.contains("STOPPING=1") }
        XCTAssertEqual(messages.last, "STOPPING=1", "\(messages)")
        // The file is the socket unit's: soundloc leaves it (systemd removes it with RemoveOnStop=).
        XCTAssertTrue(log.text().contains("serving the socket systemd passed"), log.text())
    }
}
