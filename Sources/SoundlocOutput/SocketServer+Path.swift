import Foundation

/// Why the socket server could not start.
public enum SocketServerError: Error, CustomStringConvertible, Equatable {
    case pathTooLong(path: String, limit: Int)
    case directoryMissing(path: String)
    case notASocket(path: String)
    case alreadyServing(path: String)
    case noSuchGroup(String)
    case system(operation: String, path: String, errno: Int32)
    case bindFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .pathTooLong(path, limit):
            return "socket path \(path) is \(path.utf8.count) bytes; UNIX socket paths are limited to \(limit)"
        case let .directoryMissing(path):
            return "cannot create socket \(path): its directory does not exist"
        case let .notASocket(path):
            return "\(path) exists and is not a socket; refusing to delete it (remove it or choose another path)"
        case let .alreadyServing(path):
            return "another soundloc is serving \(path)"
        case let .noSuchGroup(group):
            return "group \"\(group)\" does not exist"
        case let .system(operation, path, code):
            return "\(operation) \(path): \(String(cString: strerror(code)))"
        case let .bindFailed(path, reason):
            return "cannot listen on \(path): \(reason)"
        }
    }
}

extension SocketServer {
    /// What would stop `start(configuration:)` now (an unknown group, a missing folder, a file in the way, a live
    /// server at the path), found without changing anything; nil when nothing would. For `soundloc check`.
    public static func preflight(_ configuration: Configuration) -> SocketServerError? {
        do {
            _ = try configuration.group.map(SocketPath.resolveGroup)
            try SocketPath.prepare(configuration.path, removeStale: false)
            return nil
        } catch let error as SocketServerError {
            return error
        } catch {
            return .bindFailed(path: configuration.path, reason: "\(error)")
        }
    }
}

/// Filesystem side of the socket: stale-socket probing, permissions, safe removal.
enum SocketPath {
    /// sun_path holds 108 bytes on Linux (104 on macOS) including the terminating NUL.
    static let maxLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// Identity of the file we bound, so shutdown never removes a socket another process put there since.
    struct FileIdentity: Equatable {
        var device: UInt64
        var inode: UInt64
    }

    enum Probe { case live, stale, absent }

    /// Makes `path` ready for bind (true when a stale socket was, or with `removeStale` false would be, removed).
    /// Never removes anything but a dead socket.
    @discardableResult
    static func prepare(_ path: String, removeStale: Bool = true) throws -> Bool {
        guard path.utf8.count <= maxLength else { throw SocketServerError.pathTooLong(path: path, limit: maxLength) }
        var info = stat()
        guard lstat(path, &info) == 0 else {
            let code = errno
            guard code == ENOENT else { throw SocketServerError.system(operation: "cannot inspect", path: path, errno: code) }
            let directory = (path as NSString).deletingLastPathComponent
            var dirInfo = stat()
            if !directory.isEmpty, stat(directory, &dirInfo) != 0 || (dirInfo.st_mode & S_IFMT) != S_IFDIR {
                throw SocketServerError.directoryMissing(path: path)
            }
            return false
        }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else { throw SocketServerError.notASocket(path: path) }
        switch try probe(path) {
        case .live:
            throw SocketServerError.alreadyServing(path: path)
        case .absent:
            return false
        case .stale:
            guard removeStale else { return true }
            guard unlink(path) == 0 || errno == ENOENT else {
                throw SocketServerError.system(operation: "cannot remove stale socket", path: path, errno: errno)
            }
            return true
        }
    }

    /// Connects to an existing socket file: a listener answering means a live server.
    static func probe(_ path: String) throws -> Probe {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SocketServerError.system(operation: "cannot create probe socket for", path: path, errno: errno) }
        defer { close(fd) }
        var address = try socketAddress(path)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if result == 0 { return .live }
        switch errno {
        case ECONNREFUSED: return .stale  // the file outlived its listener (crashed run)
        case EAGAIN, EINPROGRESS: return .live  // a listener with a full backlog is still alive
        case ENOENT: return .absent
        case let code: throw SocketServerError.system(operation: "cannot probe existing socket", path: path, errno: code)
        }
    }

    /// Creates the socket file. The caller sets its permissions before anyone can connect: until NIO calls
    /// listen() on the descriptor, connection attempts are refused.
    static func bind(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketServerError.system(operation: "cannot create socket for", path: path, errno: errno) }
        var address = try socketAddress(path)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            // Someone created the path between our check and our bind.
            if code == EADDRINUSE { throw SocketServerError.alreadyServing(path: path) }
            throw SocketServerError.system(operation: "cannot bind", path: path, errno: code)
        }
        return fd
    }

    static func socketAddress(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count <= maxLength else { throw SocketServerError.pathTooLong(path: path, limit: maxLength) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// A group given by name or by number.
    static func resolveGroup(_ group: String) throws -> gid_t {
        if let number = UInt32(group) { return gid_t(number) }
        var entry = group_t()
        var result: UnsafeMutablePointer<group_t>?
        var buffer = [CChar](repeating: 0, count: 1024)
        while true {
            let code = getgrnam_r(group, &entry, &buffer, buffer.count, &result)
            if code == ERANGE, buffer.count < 1 << 20 {
                buffer = [CChar](repeating: 0, count: buffer.count * 4)
                continue
            }
            guard code == 0, let found = result else { throw SocketServerError.noSuchGroup(group) }
            return found.pointee.gr_gid
        }
    }

    /// Applies the configured mode and group to the freshly bound socket file.
    /// `groupName` is only for the error message.
    static func applyPermissions(_ path: String, mode: mode_t, group: gid_t?, groupName: String?) throws {
        if let group, chown(path, uid_t.max, group) != 0 {  // uid_t.max is (uid_t)-1: leave the owner as is
            let name = groupName.map { $0 == String(group) ? "gid \(group)" : "group \($0) (gid \(group))" } ?? "gid \(group)"
            throw SocketServerError.system(operation: "cannot set \(name) on", path: path, errno: errno)
        }
        guard chmod(path, mode) == 0 else {
            throw SocketServerError.system(operation: "cannot set mode \(String(mode, radix: 8)) on", path: path, errno: errno)
        }
    }

    static func identity(_ path: String) -> FileIdentity? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Removes the socket file only if it is still the one we created. Call after our listener is closed:
    /// inode numbers get reused, so a socket that still answers belongs to another server and stays.
    @discardableResult
    static func remove(_ path: String, ifStill identity: FileIdentity?) -> Bool {
        guard let identity, self.identity(path) == identity, (try? probe(path)) != .live else { return false }
        return unlink(path) == 0
    }
}

private typealias group_t = group
