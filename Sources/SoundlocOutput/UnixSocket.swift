import Foundation

/// The client's side of a UNIX stream socket, shared by `ProtocolClient` and the tests' plain clients.
public enum UnixSocket {
    public enum ConnectError: Error, CustomStringConvertible, Equatable {
        case pathTooLong
        case system(errno: Int32)

        public var description: String {
            switch self {
            case .pathTooLong: return "socket path too long"
            case let .system(code): return String(cString: strerror(code))
            }
        }
    }

    /// A blocking, close-on-exec socket connected to the listener at `path`; the caller closes it.
    public static func connect(path: String) throws(ConnectError) -> Int32 {
        var address = sockaddr_un()
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw .pathTooLong }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(errno: errno) }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw .system(errno: code)
        }
        return fd
    }
}
