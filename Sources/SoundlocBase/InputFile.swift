import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why an input file was refused before (or while) reading it. `reason` reads on its own after the path:
/// "no such file", "is a FIFO (named pipe), not a regular file", ...
public struct InputFileError: Error, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "cannot read \(TerminalText.escaped(path)): \(reason)" }
}

/// The one way soundloc opens a file it reads (models, WAV, images, y4m, configs, manifests, arrays).
///
/// Only regular files are accepted, and that is decided with `stat()` *before* `open()`: opening a FIFO for
/// reading blocks until some writer appears (forever, for a FIFO nobody writes), and opening a device can
/// have side effects (a watchdog starts, a tape rewinds). The open itself is non-blocking and the descriptor
/// is checked again with `fstat()`, so a FIFO swapped in between the two calls is refused too, not waited on.
public enum InputFile {
    /// What a file type is called in messages; nil for a regular file.
    public static func kindName(mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "directory"
        case S_IFIFO: return "FIFO (named pipe)"
        case S_IFCHR: return "character device"
        case S_IFBLK: return "block device"
        case S_IFSOCK: return "socket"
        default: return "special file"
        }
    }

    /// Fails unless `path` (after symbolic links) is a regular file; never opens it. Returns its size.
    @discardableResult
    public static func checkRegular(_ path: String) throws -> Int {
        Int(try regularStatus(path).st_size)
    }

    /// Opens a regular file for reading and returns a blocking, close-on-exec descriptor (the caller closes
    /// it) and the file's size at open time.
    public static func openForReading(_ path: String) throws -> (descriptor: Int32, size: Int) {
        let before = try regularStatus(path)
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw failure(path, errno: errno) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw failure(path, errno: code)
        }
        if let kind = kindName(mode: info.st_mode) {
            close(fd)
            throw refusal(path, kind: kind)
        }
        guard info.st_dev == before.st_dev, info.st_ino == before.st_ino else {
            close(fd)
            throw InputFileError(path: path, reason: "was replaced while being opened")
        }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return (fd, Int(info.st_size))
    }

    /// The whole file, refused when it holds more than `limit` bytes (before reading any, and again if it
    /// grows while being read), so a huge or endless input cannot take all memory.
    public static func read(_ path: String, limit: Int) throws -> [UInt8] {
        let (fd, size) = try openForReading(path)
        defer { close(fd) }
        guard size <= limit else { throw tooLarge(path, limit: limit) }
        var bytes = [UInt8](repeating: 0, count: size + 1)  // one spare byte notices growth without a second pass
        var count = 0
        while true {
            if count == bytes.count {
                guard count <= limit else { throw tooLarge(path, limit: limit) }
                bytes += [UInt8](repeating: 0, count: min(max(count, 4096), limit + 1 - count))
            }
            let n = bytes.withUnsafeMutableBytes { raw in systemRead(fd, raw.baseAddress! + count, raw.count - count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(path, errno: errno)
            }
            if n == 0 { break }
            count += n
        }
        guard count <= limit else { throw tooLarge(path, limit: limit) }
        bytes.removeSubrange(count...)
        return bytes
    }

    /// `read(_:limit:)` as `Data`, for decoders that take it.
    public static func data(_ path: String, limit: Int) throws -> Data {
        Data(try read(path, limit: limit))
    }

    private static func regularStatus(_ path: String) throws -> stat {
        var info = stat()
        guard stat(path, &info) == 0 else { throw failure(path, errno: errno) }
        if let kind = kindName(mode: info.st_mode) { throw refusal(path, kind: kind) }
        return info
    }

    private static func refusal(_ path: String, kind: String) -> InputFileError {
        InputFileError(path: path, reason: kind == "directory" ? "is a directory" : "is a \(kind), not a regular file")
    }

    private static func tooLarge(_ path: String, limit: Int) -> InputFileError {
        InputFileError(path: path, reason: "larger than the \(limit) bytes allowed for this kind of file")
    }

    private static func failure(_ path: String, errno code: Int32) -> InputFileError {
        switch code {
        case ENOENT: return InputFileError(path: path, reason: "no such file")
        case ENOTDIR: return InputFileError(path: path, reason: "no such file (a component of the path is not a directory)")
        default: return InputFileError(path: path, reason: String(cString: strerror(code)))
        }
    }
}

/// read(2); the enum's own `read` hides the C function inside it.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}
