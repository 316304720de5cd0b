import Foundation
import Logging
@testable import soundloc
import SoundlocTestSupport
import XCTest

/// Text from files and peers reaches the terminal with its control characters escaped: a model's metadata
/// in `inspect`, error messages, log lines and what `soundloc watch` shows of the socket.
final class TerminalOutputTests: XCTestCase {
    var directory: URL!
    let model = CLI.repositoryRoot.appendingPathComponent("Tests/SoundlocEngineTests/Fixtures/tiny/model.safetensors").path
    /// Retitles the terminal window, then clears the screen.
    static let evil = "\u{1b}]0;owned\u{07}\u{1b}[2J"

    override func setUpWithError() throws { directory = try CLI.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    static func controls(_ text: String) -> [Unicode.Scalar] {
        text.unicodeScalars.filter { ($0.value < 0x20 && $0 != "\n") || (0x7f...0x9f).contains($0.value) }
    }

    /// The fixture model with some metadata values replaced (the checksum covers the data section only).
    func model(withMetadata changes: [String: String]) throws -> String {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: model)))
        let n = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        var header = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any])
        var metadata = try XCTUnwrap(header["__metadata__"] as? [String: String])
        metadata.merge(changes) { $1 }
        header["__metadata__"] = metadata
        var json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(0x20) }
        let length = UInt64(json.count)
        let out = (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + json + bytes[(8 + n)...]
        let path = directory.appendingPathComponent("evil.safetensors").path
        try Data(out).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testInspectEscapesMetadataFromTheFile() throws {
        var classes = (0..<11).map { "class\($0)" }
        classes[3] = "violin\(Self.evil)"
        let classesJSON = String(decoding: try JSONSerialization.data(withJSONObject: classes), as: UTF8.self)
        let path = try model(withMetadata: ["source": "trained by \(Self.evil)", "classes": classesJSON])
        let r = try CLI.run(["inspect", path, "--no-tensors"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertEqual(Self.controls(r.stdout), [], r.stdout)
        XCTAssertTrue(r.stdout.contains("source: trained by \\u{1b}]0;owned\\u{7}\\u{1b}[2J"), r.stdout)
        XCTAssertTrue(r.stdout.contains("violin\\u{1b}]0;owned"), r.stdout)
        // And when the metadata is refused, the error quoting it is escaped too.
        let bad = try model(withMetadata: ["precision": Self.evil])
        let refused = try CLI.run(["inspect", bad, "--no-tensors"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertEqual(Self.controls(refused.stdout + refused.stderr), [], refused.stdout + refused.stderr)
        XCTAssertTrue(refused.stdout.contains("\\u{1b}]0;owned"), refused.stdout)
    }

    func testErrorMessagesAreEscaped() throws {
        // A WAV whose second chunk id is ESC [ 2 J and runs past the end of the file.
        var wav = Array("RIFF".utf8) + [36, 0, 0, 0] + Array("WAVE".utf8)
        wav += [0x1b, 0x5b, 0x32, 0x4a, 0xff, 0xff, 0, 0]
        let path = directory.appendingPathComponent("evil.wav").path
        try Data(wav).write(to: URL(fileURLWithPath: path))
        let r = try CLI.run(["features", path, "--out", directory.appendingPathComponent("w.npy").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(Self.controls(r.stdout + r.stderr), [], r.stderr)
        XCTAssertTrue(r.stderr.contains("'\\u{1b}[2J' chunk declares"), r.stderr)
        // A file name is quoted the same way.
        let named = directory.appendingPathComponent("clip\(Self.evil).wav").path
        let missing = try CLI.run(["features", named])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertEqual(Self.controls(missing.stderr), [], missing.stderr)
        XCTAssertTrue(missing.stderr.contains("clip\\u{1b}]0;owned"), missing.stderr)
    }

    func testLogLinesAreEscaped() {
        let sink = CapturingLogHandler.Store()
        var logger = Logger(label: "test") { _ in TerminalSafeLogHandler(CapturingLogHandler(store: sink)) }
        logger.logLevel = .info
        logger[metadataKey: "socket"] = "/tmp/\(Self.evil).sock"
        logger.warning("client said \(Self.evil)", metadata: ["line": .string(Self.evil), "list": .array([.string("\u{9b}")])])
        let entries = sink.entries
        XCTAssertEqual(entries.count, 1)
        let text = entries.joined()
        XCTAssertEqual(Self.controls(text), [], text)
        XCTAssertTrue(text.contains("client said \\u{1b}]0;owned"), text)
        XCTAssertTrue(text.contains("/tmp/\\u{1b}]0;owned"), text)
        XCTAssertTrue(text.contains("\\u{9b}"), text)
    }

    func testWatchEscapesWhatTheServerSends() throws {
        let socket = directory.appendingPathComponent("s.sock").path
        let classes = ["violin\(Self.evil)", "cello"]
        func json(_ object: Any) -> String { String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self) }
        let lines = [
            json(["class": "VERSION", "protocol": "1", "server": "soundloc", "release": "0.1\(Self.evil)",
                  "model": ["name": "m\(Self.evil)", "checksum": "sha256:00"], "classes": classes,
                  "map_size": [14, 14], "image_size": [640, 480]] as [String: Any]),
            json(["class": "STATUS", "device": "audio", "state": "failed", "message": "gone \(Self.evil)",
                  "time": "2026-01-01T00:00:00.000Z"]),
            json(["class": "ERROR", "message": "bad \(Self.evil)"]),
            "not json \u{1b}[31m red",
            json(["class": "NEW\(Self.evil)"]),
            json(["class": "FRAME", "seq": 1, "capture_ns": 1, "publish_ns": 2, "time": "2026-01-01T00:00:00.000Z",
                  "latency_ms": ["vision\(Self.evil)": 1.5], "audio": [classes[0]: 0.9, "cello": 0.1],
                  "sounding": [["class": classes[0], "score": 0.9, "peak": [0.5, 0.5], "box": [0.1, 0.1, 0.2, 0.2]]],
                  "silent_visible": ["cello\u{9b}"], "silence": false, "dropped_frames": 0, "overruns": 0,
                  "dropped_messages": 0] as [String: Any]),
        ]
        let server = try OneShotServer(path: socket, lines: lines)
        defer { server.close() }
        let r = try CLI.run(["watch", "--socket", socket, "--plain", "--frames", "1"], hangGuard: 60)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertEqual(Self.controls(r.stdout), [], r.stdout)
        for phrase in ["model m\\u{1b}]0;owned", "server says: bad \\u{1b}]0;owned", "unreadable line: not json \\u{1b}[31m red",
                       "gone \\u{1b}]0;owned", "violin\\u{1b}]0;owned\\u{7}\\u{1b}[2J 0.90", "silent: cello\\u{9b}"] {
            XCTAssertTrue(r.stdout.contains(phrase), "missing '\(phrase)' in:\n\(r.stdout)")
        }
    }
}

/// Keeps what a logger would have written.
struct CapturingLogHandler: LogHandler {
    final class Store: @unchecked Sendable {  // unchecked: stored is guarded by `lock`
        private let lock = NSLock()
        private var stored: [String] = []
        var entries: [String] { lock.withLock { stored } }
        func add(_ entry: String) { lock.withLock { stored.append(entry) } }
    }
    let store: Store
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        store.add("\(event.message) \(all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
    }
}

/// A UNIX socket that serves `lines` to the first client, then keeps the connection open until closed.
final class OneShotServer: @unchecked Sendable {  // unchecked: client is guarded by `lock`
    private let listener: Int32
    private var client: Int32 = -1
    private let lock = NSLock()

    init(path: String, lines: [String]) throws {
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 4) == 0 else { throw POSIXError(.EADDRINUSE) }
        let payload = Array((lines.joined(separator: "\n") + "\n").utf8)
        Thread.detachNewThread { [self] in
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            lock.withLock { client = fd }
            _ = payload.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }

    func close() {
        lock.withLock { if client >= 0 { Glibc.close(client) } }
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
    }
}
