import Foundation

/// A client's end of the appliance's socket: connect, send a command, read lines. Blocking, for one thread;
/// reads wake up every 200 ms to ask `shouldStop`, so Ctrl-C is noticed while the server is quiet.
public final class ProtocolClient {
    /// Longest server line a client keeps in memory (a FRAME with every map is about 30 KB): a peer that sends
    /// bytes without ever ending the line is cut off instead of filling the client's memory.
    public static let maxLineLength = 1 << 20

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case connect(path: String, reason: String)
        case lineTooLong(limit: Int)

        public var description: String {
            switch self {
            case let .connect(path, reason): return "cannot connect to \(path): \(reason)"
            case let .lineTooLong(limit): return "the server sent a line longer than \(limit) bytes; dropped the connection"
            }
        }
    }

    private let fd: Int32
    private var buffer: [UInt8] = []
    private let maxLineLength: Int

    public init(path: String, maxLineLength: Int = ProtocolClient.maxLineLength) throws {
        self.maxLineLength = maxLineLength
        do {
            fd = try UnixSocket.connect(path: path)
        } catch {
            throw Failure.connect(path: path, reason: "\(error)")
        }
    }

    deinit { close(fd) }

    /// Sends `bytes` (a command line with its newline); a closed peer is noticed by the next read.
    public func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// The next line without its newline; nil when the server closed the connection or `shouldStop` said so.
    /// - Throws: `Failure.lineTooLong` when the server sends more than the limit without a newline.
    public func readLine(shouldStop: () -> Bool) throws -> [UInt8]? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                guard newline <= maxLineLength else { throw Failure.lineTooLong(limit: maxLineLength) }
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                return line
            }
            guard buffer.count <= maxLineLength else { throw Failure.lineTooLong(limit: maxLineLength) }
            if shouldStop() { return nil }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 200)
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { continue }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return nil }
            buffer.append(contentsOf: chunk[..<n])
        }
    }
}
