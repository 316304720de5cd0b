import Foundation
@testable import SoundlocOutput
import XCTest

/// The client end of the socket (`soundloc watch`, the demo's recorder) against a hand-written peer.
final class ProtocolClientTests: XCTestCase {
    /// A listening UNIX socket whose one accepted connection gets `bytes`, then (unless `hold`) is closed.
    private func peer(sending bytes: [UInt8], hold: Bool = false) throws -> (path: String, done: DispatchSemaphore, release: DispatchSemaphore) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pc-\(UUID().uuidString.prefix(8)).sock").path
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(listener, 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let p = Array(path.utf8)
            raw.copyBytes(from: p)
            raw[p.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        XCTAssertEqual(listen(listener, 1), 0)
        let done = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let connection = accept(listener, nil, nil)
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { break }
                sent += n
            }
            if hold { release.wait() }
            close(connection)
            close(listener)
            unlink(path)
            done.signal()
        }
        return (path, done, release)
    }

    func testLinesThenEndOfStream() throws {
        let (path, done, _) = try peer(sending: Array("{\"class\":\"VERSION\"}\nsecond\n".utf8))
        let client = try ProtocolClient(path: path)
        XCTAssertEqual(try client.readLine(shouldStop: { false }).map { String(decoding: $0, as: UTF8.self) }, "{\"class\":\"VERSION\"}")
        XCTAssertEqual(try client.readLine(shouldStop: { false }).map { String(decoding: $0, as: UTF8.self) }, "second")
        XCTAssertNil(try client.readLine(shouldStop: { false }), "the peer closed: end of stream")
        done.wait()
    }

    func testAPeerThatNeverEndsItsLineIsCutOffAtTheLimit() throws {
        // A hostile or broken server streaming bytes without a newline must not grow the client without bound.
        let (path, done, release) = try peer(sending: Array("ok\n".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 300_000), hold: true)
        do {
            let client = try ProtocolClient(path: path, maxLineLength: 100_000)
            XCTAssertEqual(try client.readLine(shouldStop: { false }), Array("ok".utf8))
            XCTAssertThrowsError(try client.readLine(shouldStop: { false })) { error in
                XCTAssertEqual(error as? ProtocolClient.Failure, .lineTooLong(limit: 100_000))
            }
        }  // the client closes here, which ends the peer's blocked send
        release.signal()
        done.wait()
    }

    func testAQuietServerDoesNotHoldAStopRequest() throws {
        let (path, done, release) = try peer(sending: [], hold: true)
        do {
            let client = try ProtocolClient(path: path)
            var asked = 0
            XCTAssertNil(try client.readLine(shouldStop: { asked += 1; return asked > 2 }))
            XCTAssertEqual(asked, 3)
        }
        release.signal()
        done.wait()
    }

    func testNoServerIsAConnectFailureNamingThePath() {
        XCTAssertThrowsError(try ProtocolClient(path: "/nonexistent/soundloc.sock")) { error in
            XCTAssertTrue("\(error)".contains("cannot connect to /nonexistent/soundloc.sock"), "\(error)")
        }
    }
}
