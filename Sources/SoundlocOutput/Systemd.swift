import Foundation

/// systemd's socket activation, from its documented environment protocol: a service started for a `.socket`
/// unit finds the listening sockets at descriptors 3, 4, ... and `LISTEN_FDS` (how many) and `LISTEN_PID`
/// (for whom: a child that inherited the environment must not take them) in its environment.
public enum SocketActivation {
    /// The first passed descriptor (SD_LISTEN_FDS_START).
    public static let firstDescriptor: Int32 = 3

    /// The descriptors passed to process `pid` according to `environment`; empty when none were (no
    /// `LISTEN_FDS`, or `LISTEN_PID` names another process). A variable that is present but not a number is
    /// an error: it means a misconfigured unit, which silently binding a socket of our own would hide.
    public static func passedDescriptors(environment: [String: String], pid: pid_t) throws -> [Int32] {
        guard let countText = environment["LISTEN_FDS"] else { return [] }
        guard let pidText = environment["LISTEN_PID"] else {
            throw SocketActivationError.malformed("LISTEN_FDS is set but LISTEN_PID is not")
        }
        guard let owner = pid_t(pidText), owner > 0 else { throw SocketActivationError.malformed("LISTEN_PID=\(pidText)") }
        guard owner == pid else { return [] }
        guard let count = Int32(countText), count >= 0, count < 1024 else {
            throw SocketActivationError.malformed("LISTEN_FDS=\(countText)")
        }
        return (0..<count).map { firstDescriptor + $0 }
    }

    /// The one listening UNIX stream socket systemd passed to this process, or nil when it passed none. Takes it
    /// for good: the variables are removed (children do not see them) and the descriptor is closed on exec.
    public static func takeListeningSocket() throws -> Int32? {
        let descriptors = try passedDescriptors(environment: ProcessInfo.processInfo.environment, pid: getpid())
        for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] { unsetenv(name) }
        guard !descriptors.isEmpty else { return nil }
        guard descriptors.count == 1 else { throw SocketActivationError.notOne(descriptors.count) }
        let fd = descriptors[0]
        try checkListeningUnixStream(fd)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    /// Throws unless `fd` is a listening AF_UNIX stream socket (the only kind the server speaks on).
    public static func checkListeningUnixStream(_ fd: Int32) throws {
        func option(_ name: Int32) -> Int32? {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            return getsockopt(fd, SOL_SOCKET, name, &value, &length) == 0 ? value : nil
        }
        guard let domain = option(SO_DOMAIN), let type = option(SO_TYPE), let listening = option(SO_ACCEPTCONN),
              domain == AF_UNIX, type == Int32(SOCK_STREAM.rawValue), listening != 0 else {
            throw SocketActivationError.notAListeningUnixSocket(fd)
        }
    }

    /// The file system path a UNIX socket is bound to (empty for an abstract or unnamed one).
    public static func boundPath(_ fd: Int32) -> String {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return "" }
        return withUnsafeBytes(of: address.sun_path) { raw in
            guard raw.first != 0 else { return "" }
            return String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}

public enum SocketActivationError: Error, CustomStringConvertible, Equatable {
    case malformed(String)
    case notOne(Int)
    case notAListeningUnixSocket(Int32)

    public var description: String {
        switch self {
        case let .malformed(what): return "socket activation: malformed environment (\(what))"
        case let .notOne(count): return "socket activation: \(count) sockets passed; soundloc serves exactly one (one ListenStream= in the .socket unit)"
        case let .notAListeningUnixSocket(fd): return "socket activation: descriptor \(fd) is not a listening UNIX stream socket (ListenStream= must be a path)"
        }
    }
}

/// systemd's readiness and watchdog notifications (`sd_notify`), from the documented wire format: one datagram
/// of newline-separated `KEY=VALUE` lines sent to the AF_UNIX socket named in `NOTIFY_SOCKET` (a path, or an
/// abstract name written with a leading `@`). Without `NOTIFY_SOCKET` every call does nothing.
///
/// Readiness and the watchdog both come from the pipeline's heartbeat: the first `heartbeat()` sends `READY=1`, later
/// ones `WATCHDOG=1` at most every `WATCHDOG_USEC / 4`, so systemd restarts a service whose pipeline stops beating
/// for `WatchdogSec=`.
public final class SystemdNotifier: @unchecked Sendable {  // unchecked: lastPing and announcedReady are guarded by `lock`; the rest is immutable
    private let address: sockaddr_un?
    private let addressLength: socklen_t
    private let fd: Int32
    /// Minimum nanoseconds between two WATCHDOG=1 datagrams; nil when systemd watches nothing.
    public let watchdogInterval: UInt64?
    private let lock = NSLock()
    private var lastPing: UInt64?
    private var announcedReady = false
    private let clock: @Sendable () -> UInt64

    /// `environment` and `pid` as in the process (tests pass their own); `clock` gives monotonic nanoseconds.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, pid: pid_t = getpid(),
                clock: @escaping @Sendable () -> UInt64 = SystemdNotifier.monotonicNanos) {
        self.clock = clock
        var address: sockaddr_un?
        var length = socklen_t(0)
        if let name = environment["NOTIFY_SOCKET"], !name.isEmpty,
           (name.hasPrefix("/") || name.hasPrefix("@")), name.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) {
            var target = sockaddr_un()
            target.sun_family = sa_family_t(AF_UNIX)
            var bytes = Array(name.utf8)
            if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract namespace: no terminating NUL counted
            withUnsafeMutableBytes(of: &target.sun_path) { $0.copyBytes(from: bytes) }
            let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
            length = socklen_t(pathOffset + bytes.count + (bytes[0] == 0 ? 0 : 1))
            address = target
        }
        self.address = address
        addressLength = length
        fd = address == nil ? -1 : socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        // WATCHDOG_PID, when present, must be ours (as LISTEN_PID for sockets).
        let watchdogOwner = environment["WATCHDOG_PID"].flatMap { pid_t($0) }
        if let usec = environment["WATCHDOG_USEC"].flatMap({ UInt64($0) }), usec > 0, watchdogOwner == nil || watchdogOwner == pid {
            watchdogInterval = usec * 1000 / 4
        } else {
            watchdogInterval = nil
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Whether systemd listens (NOTIFY_SOCKET is set and usable).
    public var isActive: Bool { fd >= 0 }

    /// Sends `STOPPING=1`.
    public func stopping() { send(["STOPPING=1"]) }

    /// One beat of the pipeline. The first says `READY=1` (the pipeline runs: devices open, socket served); then a
    /// `WATCHDOG=1` goes out when the watchdog is on and the last one is a quarter interval old.
    public func heartbeat() {
        guard fd >= 0 else { return }
        let now = clock()
        let lines: [String] = lock.withLock {
            var lines: [String] = []
            if !announcedReady {
                announcedReady = true
                lines = ["READY=1", "STATUS=running"]
            }
            if let interval = watchdogInterval, lastPing.map({ now &- $0 >= interval }) ?? true {
                lastPing = now
                lines.append("WATCHDOG=1")
            }
            return lines
        }
        if !lines.isEmpty { send(lines) }
    }

    /// Sends one datagram of `lines`; false when there is no socket or the send failed (systemd gone: ignored).
    @discardableResult
    public func send(_ lines: [String]) -> Bool {
        guard fd >= 0, var target = address else { return false }
        let payload = Array(lines.joined(separator: "\n").utf8)
        let sent = payload.withUnsafeBytes { bytes in
            withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), $0, addressLength)
                }
            }
        }
        return sent == payload.count
    }

    public static func monotonicNanos() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
