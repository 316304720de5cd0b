import Foundation
import SoundlocOutput
import XCTest

final class SocketServerTests: XCTestCase {
    var directory = ""
    var path: String { directory + "/s.sock" }

    override func setUpWithError() throws {
        directory = try SocketTest.directory()
    }

    override func tearDown() {
        SocketTest.removeDirectory(directory)
    }

    func startServer(_ configure: (inout SocketServer.Configuration) -> Void = { _ in },
                             classes: [String] = SocketTest.classes) throws -> SocketServer {
        var configuration = SocketServer.Configuration(path: path)
        configure(&configuration)
        return try SocketServer.start(configuration: configuration, banner: SocketTest.banner(classes: classes),
                                      logger: SocketTest.logger)
    }

    /// A client of the server at `path` that has read its banner.
    func connectedClient() throws -> RawClient {
        let client = try RawClient(path: path)
        _ = try client.expectBanner()
        return client
    }

    // MARK: Connecting and receiving

    func testBannerOnConnect() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let client = try RawClient(path: path)
        let line = try XCTUnwrap(client.readLine())
        XCTAssertTrue(line.hasPrefix("{\"class\":\"VERSION\",\"protocol\":\"1\""), line)
        guard case let .version(banner) = try ServerMessage.decode(Array(line.utf8)) else { return XCTFail(line) }
        XCTAssertEqual(banner, SocketTest.banner())
        XCTAssertEqual(banner.mapSize, [14, 14])
        XCTAssertEqual(banner.imageSize, [640, 480])
        SocketTest.waitUntil("registration") { server.connectedClients == 1 }
    }

    func testSeveralClientsReceiveEveryFrame() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let clients = try (0..<3).map { _ in try RawClient(path: path) }
        for client in clients { _ = try client.expectBanner() }
        for seq in 0..<100 { server.publish(SocketTest.report(UInt64(seq))) }
        for client in clients {
            for seq in 0..<100 {
                let (frame, skipped) = try client.readFrame()
                let f = try XCTUnwrap(frame)
                XCTAssertTrue(skipped.isEmpty)
                XCTAssertEqual(f.seq, UInt64(seq))
                XCTAssertEqual(f.droppedMessages, 0)
                XCTAssertNil(f.maps)
            }
        }
        XCTAssertEqual(server.clientStatistics().map(\.framesSent), [100, 100, 100])
    }

    func testFrameContent() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let client = try connectedClient()
        let before = Date()
        let report = SocketTest.report(42)
        server.publish(report)
        let f = try XCTUnwrap(client.readFrame().0)
        XCTAssertEqual(f.kind, .frame)
        XCTAssertEqual(f.seq, 42)
        XCTAssertEqual(f.captureNs, report.captureNanos)
        XCTAssertGreaterThanOrEqual(f.publishNs, f.captureNs + 30_000_000)
        XCTAssertLessThan(f.publishNs, SocketTest.monotonicNanos())
        XCTAssertEqual(f.latencyMs, ["audio": 5.25, "vision": 21.5])
        XCTAssertEqual(f.audio, ["accordion": 0.7, "cello": 0.15, "violin": 0.15])
        XCTAssertEqual(f.sounding, [.init(className: "accordion", score: 0.875, peak: [0.25, 0.5], box: [0.125, 0.375, 0.25, 0.25])])
        XCTAssertEqual(f.silentVisible, ["cello"])
        XCTAssertFalse(f.silence)
        XCTAssertEqual(f.droppedFrames, 2)
        XCTAssertEqual(f.overruns, 1)
        // Wall-clock capture time: ISO 8601 UTC with milliseconds, 30 ms (the report's capture age) before the
        // wall-clock time of the publish, which lies between `before` and `after` (ordering only, no duration limit).
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let time = try XCTUnwrap(formatter.date(from: f.time), f.time)
        let after = Date()
        XCTAssertGreaterThanOrEqual(time.timeIntervalSince(before), -0.03 - 0.002, f.time)
        XCTAssertLessThanOrEqual(time.timeIntervalSince(after), -0.03 + 0.002, f.time)
        XCTAssertTrue(f.time.hasSuffix("Z") && f.time.count == 24, f.time)
    }

    // MARK: Slow and stuck clients

    func testStuckClientNeverSlowsPublisherOrOthers() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let stuck = try connectedClient()
        XCTAssertEqual(try stuck.watch(maps: true), WatchMessage(enable: true, maps: true))
        let readers = try (0..<2).map { _ in try RawClient(path: path) }
        for reader in readers { _ = try reader.expectBanner() }

        let count = 400
        let received = Received()
        let readersDone = DispatchGroup()
        for (i, reader) in readers.enumerated() {
            DispatchQueue.global().async(group: readersDone) {
                while let frame = try? reader.readFrame().0 {
                    received.append(frame.seq, to: i)
                    if frame.seq == UInt64(count - 1) { break }
                }
            }
        }
        // Publishing must not wait for clients: it would hang on the stuck one (the guard fails only on a hang).
        let published = DispatchGroup()
        DispatchQueue.global().async(group: published) {
            for seq in 0..<count { server.publish(SocketTest.report(UInt64(seq), maps: true)) }
        }
        XCTAssertEqual(published.wait(timeout: .now() + SocketTest.hangGuard), .success, "publish() blocked on the stuck client")
        XCTAssertEqual(readersDone.wait(timeout: .now() + SocketTest.hangGuard), .success)
        for got in received.sequences { XCTAssertEqual(got, (0..<UInt64(count)).map { $0 }) }

        let stats = try XCTUnwrap(server.clientStatistics().first)  // the stuck one connected first
        XCTAssertTrue(stats.maps)
        XCTAssertGreaterThan(stats.droppedMessages, 0)
        XCTAssertLessThanOrEqual(stats.queuedBytes, server.configuration.highWaterMark + 64 * 1024)
        XCTAssertEqual(UInt64(count), stats.droppedMessages + stats.framesSent)

        // Once it reads again, FRAMEs resume and the next one carries the count of those it missed.
        SocketTest.waitUntil("the stuck client's queue to drain") {
            _ = stuck.drain(quiet: 0.001)
            return server.clientStatistics().first?.queuedBytes == 0
        }
        let dropped = try XCTUnwrap(server.clientStatistics().first?.droppedMessages)
        server.publish(SocketTest.report(UInt64(count), maps: true))
        var last: FrameMessage?
        while let frame = try stuck.readFrame().0 {
            last = frame
            if frame.seq == UInt64(count) { break }
        }
        XCTAssertEqual(last?.seq, UInt64(count))
        XCTAssertEqual(last?.droppedMessages, dropped)
        XCTAssertNotNil(last?.maps)
    }

    func testBurstOfPublishesStaysFastAndBounded() throws {
        let classes = ["accordion", "acoustic_guitar", "cello", "clarinet", "erhu", "flute", "saxophone", "trumpet",
                       "tuba", "violin", "xylophone"]
        let server = try startServer(classes: classes)
        defer { server.shutdown() }
        let stuck = try (0..<2).map { _ in try RawClient(path: path) }
        for client in stuck {
            _ = try client.expectBanner()
            _ = try client.watch(maps: true)
        }
        let reports = (0..<8).map { SocketTest.report(UInt64($0), classes: classes.count, maps: true) }
        server.publish(reports[0])  // warm up
        let residentBefore = SocketTest.residentBytes()
        let start = Date()
        for seq in 1...5000 {
            var report = reports[seq % reports.count]
            report.sequence = UInt64(seq)
            server.publish(report)
        }
        let elapsed = Date().timeIntervalSince(start)
        let residentGrowth = SocketTest.residentBytes() - residentBefore
        // Each FRAME with 11 maps is about 16 KB: 5000 of them queued would be 80 MB.
        XCTAssertLessThan(residentGrowth, 32 << 20, "resident memory grew by \(residentGrowth >> 20) MiB")
        for stats in server.clientStatistics() {
            XCTAssertGreaterThan(stats.droppedMessages, 4000)
            XCTAssertLessThanOrEqual(stats.queuedBytes, server.configuration.highWaterMark + 32 * 1024)
        }
        print(String(format: "5000 publishes with 11 maps to 2 stuck clients: %.1f µs each", elapsed / 5000 * 1e6))
    }

    // MARK: Clients going away

    func testClientDisconnectingMidLineIsCleanedUp() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let client = try connectedClient()
        client.send("{\"class\":\"WAT")
        client.close()
        SocketTest.waitUntil("cleanup") { server.connectedClients == 0 }
        server.publish(SocketTest.report(1))
        let next = try connectedClient()
        next.send("{\"class\":\"POLL\"}\n")
        XCTAssertEqual(try next.readFrame().0?.seq, 1)
    }

    func testClientDisconnectingWhileServerWritesIsCleanedUp() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let leaving = try connectedClient()
        _ = try leaving.watch(maps: true)
        let staying = try connectedClient()
        // Fill the leaving client's socket so the server has bytes in flight for it when it goes.
        var seq: UInt64 = 0
        SocketTest.waitUntil("a backlog for the leaving client") {
            server.publish(SocketTest.report(seq, maps: true))
            seq += 1
            return (server.clientStatistics().first?.queuedBytes ?? 0) > 0
        }
        leaving.close()
        SocketTest.waitUntil("cleanup") {
            server.publish(SocketTest.report(seq, maps: true))
            seq += 1
            return server.connectedClients == 1
        }
        server.publish(SocketTest.report(seq))
        var expected: UInt64 = 0
        while let frame = try staying.readFrame().0 {
            XCTAssertEqual(frame.seq, expected, "the staying client misses nothing")
            expected += 1
            if frame.seq == seq { break }
        }
        XCTAssertEqual(expected, seq + 1)
    }

    // MARK: Bad input

    func testGarbageGetsErrorsAndServerKeepsServing() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let bad = try connectedClient()
        let good = try connectedClient()
        let garbage = ["hello", "{\"class\":\"NOPE\"}", "{\"class\":\"WATCH\",\"maps\":\"yes\"}", "[1,2]", "{\"maps\":true}",
                       "{\"class\":42}", "\u{1}\u{2}\u{ff}"]
        for line in garbage { bad.send(line + "\n") }
        bad.send("\n   \r\n")  // blank lines are ignored, not errors
        var errors: [String] = []
        for _ in garbage {
            guard case let .error(e)? = try bad.readMessage() else { return XCTFail("expected ERROR") }
            errors.append(e.message)
        }
        XCTAssertTrue(errors[1].contains("unknown command class \"NOPE\""), errors[1])
        XCTAssertTrue(errors[2].contains("\"maps\" must be true or false"), errors[2])
        XCTAssertTrue(errors[4].contains("missing field \"class\""), errors[4])
        // The connection still works, and so does everyone else's.
        XCTAssertEqual(try bad.watch(maps: false), WatchMessage(enable: true, maps: false))
        server.publish(SocketTest.report(5))
        XCTAssertEqual(try bad.readFrame().0?.seq, 5)
        XCTAssertEqual(try good.readFrame().0?.seq, 5)
        XCTAssertEqual(server.connectedClients, 2)
    }

    func testOverlongLineGetsErrorAndHangUp() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let bad = try connectedClient()
        let good = try connectedClient()
        bad.send(String(repeating: "x", count: SoundlocProtocol.maxLineLength + 100))
        guard case let .error(e)? = try bad.readMessage() else { return XCTFail("expected ERROR") }
        XCTAssertTrue(e.message.contains("longer than 4096"), e.message)
        XCTAssertNil(try bad.readLine(), "the server hangs up after an over-long line")
        SocketTest.waitUntil("cleanup") { server.connectedClients == 1 }
        server.publish(SocketTest.report(9))
        XCTAssertEqual(try good.readFrame().0?.seq, 9)
    }

    func testLineOfExactlyTheLimitIsAccepted() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let client = try connectedClient()
        let command = "{\"class\":\"WATCH\",\"maps\":true}"
        client.send(command + String(repeating: " ", count: SoundlocProtocol.maxLineLength - command.utf8.count) + "\n")
        guard case let .watch(echo)? = try client.readMessage() else { return XCTFail("expected WATCH") }
        XCTAssertEqual(echo.maps, true)
    }

    // MARK: Subscriptions

    func testMapsOnlyForClientsThatAsk() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let withMaps = try connectedClient()
        let without = try connectedClient()
        XCTAssertEqual(try withMaps.watch(maps: true), WatchMessage(enable: true, maps: true))
        let report = SocketTest.report(1, maps: true)
        server.publish(report)
        let mapped = try XCTUnwrap(withMaps.readFrame().0)
        let plain = try XCTUnwrap(without.readFrame().0)
        XCTAssertNil(plain.maps)
        let maps = try XCTUnwrap(mapped.maps)
        XCTAssertEqual(Set(maps.classes.keys), Set(SocketTest.classes))
        let cells = SoundlocProtocol.mapCells
        for (k, name) in SocketTest.classes.enumerated() {
            let expected = report.maps!.classMaps[(k * cells)..<((k + 1) * cells)].map { (Double($0) * 1000).rounded() / 1000 }
            XCTAssertEqual(maps.classes[name], expected)
        }
        XCTAssertEqual(maps.soundingArea.count, cells)
        XCTAssertEqual(maps.soundingArea[98], 0.5)
        // Apart from the maps, both clients got the same frame.
        var stripped = mapped
        stripped.maps = nil
        XCTAssertEqual(stripped, plain)

        XCTAssertEqual(try withMaps.watch(maps: false), WatchMessage(enable: true, maps: false))
        server.publish(SocketTest.report(2, maps: true))
        XCTAssertNil(try withMaps.readFrame().0?.maps)
    }

    func testWatchDisablePausesFrames() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let client = try connectedClient()
        XCTAssertEqual(try client.watch(enable: false), WatchMessage(enable: false, maps: false))
        server.publish(SocketTest.report(1))
        // Everything before the next echo must be free of FRAMEs.
        client.send("{\"class\":\"WATCH\",\"enable\":true}\n")
        while let message = try client.readMessage() {
            if case .frame = message { return XCTFail("a paused client got a FRAME") }
            if case let .watch(echo) = message {
                XCTAssertEqual(echo, WatchMessage(enable: true, maps: false))
                break
            }
        }
        server.publish(SocketTest.report(2))
        XCTAssertEqual(try client.readFrame().0?.seq, 2)
    }

    func testPoll() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let client = try connectedClient()
        client.send("{\"class\":\"POLL\"}\n")
        guard case let .error(e)? = try client.readMessage() else { return XCTFail("expected ERROR before any frame") }
        XCTAssertTrue(e.message.contains("no frame"))
        _ = try client.watch(enable: false)
        server.publish(SocketTest.report(7, maps: true))
        server.publish(SocketTest.report(8, maps: true))
        // Nobody wanted maps when frame 8 went out; POLL with maps on encodes them on demand.
        _ = try client.watch(maps: true)
        client.send("{\"class\":\"POLL\"}\n")
        let polled = try XCTUnwrap(client.readFrame().0)
        XCTAssertEqual(polled.seq, 8)
        XCTAssertEqual(polled.maps?.classes.count, SocketTest.classes.count)
        _ = try client.watch(maps: false)
        client.send("{\"class\":\"POLL\"}\n")
        let plain = try XCTUnwrap(client.readFrame().0)
        XCTAssertEqual(plain.seq, 8)
        XCTAssertNil(plain.maps)
    }

    func testStatusGoesToEveryClient() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let watching = try connectedClient()
        let paused = try connectedClient()
        _ = try paused.watch(enable: false)
        server.publish(status: StatusMessage(device: .audio, state: .failed, message: "plughw:1,0: No such device"))
        for client in [watching, paused] {
            guard case let .status(status)? = try client.readMessage() else { return XCTFail("expected STATUS") }
            XCTAssertEqual(status.device, .audio)
            XCTAssertEqual(status.state, .failed)
            XCTAssertEqual(status.message, "plughw:1,0: No such device")
            XCTAssertFalse(status.time.isEmpty)
        }
    }

    // MARK: The socket file

    func testModeAndGroupApplied() throws {
        let isRoot = getuid() == 0
        let group = isRoot ? (getgrnam("audio") != nil ? "audio" : "0") : nil
        let server = try startServer { $0.mode = 0o640; $0.group = group }
        defer { server.shutdown() }
        var info = stat()
        XCTAssertEqual(lstat(path, &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFSOCK)
        XCTAssertEqual(info.st_mode & 0o777, 0o640)
        if let group {
            let gid = UInt32(group) ?? getgrnam(group)!.pointee.gr_gid
            XCTAssertEqual(info.st_gid, gid)
        }
    }

    func testUnknownGroupIsAClearErrorAndLeavesNoFile() throws {
        XCTAssertThrowsError(try startServer { $0.group = "no-such-group-soundloc" }) { error in
            XCTAssertEqual(error as? SocketServerError, .noSuchGroup("no-such-group-soundloc"))
            XCTAssertEqual("\(error)", "group \"no-such-group-soundloc\" does not exist")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }

    func testStaleSocketIsReplaced() throws {
        // A socket file nobody listens on: what a crashed run leaves behind.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        close(fd)
        XCTAssertThrowsError(try RawClient(path: path), "nobody should answer a stale socket")

        let server = try startServer()
        defer { server.shutdown() }
        _ = try connectedClient()
    }

    func testLiveServerIsNotReplaced() throws {
        let first = try startServer()
        defer { first.shutdown() }
        XCTAssertThrowsError(try startServer()) { error in
            XCTAssertEqual(error as? SocketServerError, .alreadyServing(path: path))
            XCTAssertEqual("\(error)", "another soundloc is serving \(path)")
        }
        _ = try connectedClient()
    }

    func testPathThatIsNotASocketIsNeverDeleted() throws {
        try "precious".write(toFile: path, atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try startServer()) { error in
            XCTAssertEqual(error as? SocketServerError, .notASocket(path: path))
            XCTAssertTrue("\(error)".contains("is not a socket; refusing to delete it"))
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "precious")

        try FileManager.default.createDirectory(atPath: directory + "/d", withIntermediateDirectories: false)
        XCTAssertThrowsError(try SocketServer.start(configuration: .init(path: directory + "/d"), banner: SocketTest.banner(),
                                                    logger: SocketTest.logger))
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/d", isDirectory: &isDirectory) && isDirectory.boolValue)
    }

    func testBadPathsAreClearErrors() throws {
        let long = "/tmp/" + String(repeating: "x", count: 120)
        XCTAssertThrowsError(try SocketServer.start(configuration: .init(path: long), banner: SocketTest.banner(),
                                                    logger: SocketTest.logger)) { error in
            guard case .pathTooLong = error as? SocketServerError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try SocketServer.start(configuration: .init(path: directory + "/missing/s.sock"),
                                                    banner: SocketTest.banner(), logger: SocketTest.logger)) { error in
            XCTAssertEqual(error as? SocketServerError, .directoryMissing(path: directory + "/missing/s.sock"))
        }
    }

    func testShutdownSaysGoodbyeAndRemovesTheSocket() throws {
        let server = try startServer()
        let client = try connectedClient()
        SocketTest.waitUntil("registration") { server.connectedClients == 1 }
        server.shutdown()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        guard case let .status(status)? = try client.readMessage() else { return XCTFail("expected STATUS") }
        XCTAssertEqual(status.device, .server)
        XCTAssertEqual(status.state, .stopped)
        XCTAssertNil(try client.readLine())
        server.shutdown()  // a second call is harmless
        server.publish(SocketTest.report(1))  // and so is publishing after shutdown
    }

    func testShutdownLeavesAReplacementSocketAlone() throws {
        let server = try startServer()
        // Someone else took the path over (e.g. an operator removed ours and started another instance).
        unlink(path)
        let other = try startServer()
        server.shutdown()
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        other.shutdown()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }

    // MARK: Wire format

    func testNumberFormatting() {
        let cases: [(Double, String)] = [(0, "0"), (1, "1"), (0.5, "0.5"), (0.05, "0.05"), (0.0504, "0.05"), (-0.0004, "0"),
                                         (-1.25, "-1.25"), (123.4567, "123.457"), (0.9996, "1"), (.nan, "0"), (.infinity, "0"),
                                         (1e20, "1e+20")]
        for (value, expected) in cases {
            let line = String(decoding: ProtocolWriter.frameLine(
                FrameReport(sequence: 0, captureNanos: 0, latencies: [.init("x", milliseconds: value)], audioDistribution: []),
                classes: [], publishNanos: 0, time: "t", maps: false), as: UTF8.self)
            XCTAssertTrue(line.contains("\"latency_ms\":{\"x\":\(expected)}"), "\(value) → \(line)")
        }
    }

    func testLinesRoundTripThroughTheCodableTypes() throws {
        let tricky = VersionMessage(release: "1.0 \"beta\"\n", model: ModelIdentity(name: "dsol\\int8\t", checksum: "sha256:00"),
                                    classes: ["é", "\u{1}"], imageWidth: 1, imageHeight: 2)
        let line = ProtocolWriter.line(tricky)
        XCTAssertEqual(line.last, UInt8(ascii: "\n"))
        XCTAssertEqual(line.filter { $0 == UInt8(ascii: "\n") }.count, 1, "one line per message")
        XCTAssertEqual(try ServerMessage.decode(line), .version(tricky))
        let status = StatusMessage(device: .video, state: .recovered, message: "/dev/video0 is back", time: "2025-01-01T00:00:00.000Z")
        XCTAssertEqual(try ServerMessage.decode(ProtocolWriter.line(status)), .status(status))
        let error = ErrorMessage(message: "bad")
        XCTAssertEqual(try ServerMessage.decode(ProtocolWriter.line(error)), .error(error))
        XCTAssertEqual(try ServerMessage.decode(ProtocolWriter.line(WatchMessage(enable: true, maps: false))),
                       .watch(WatchMessage(enable: true, maps: false)))
        XCTAssertEqual(try ServerMessage.decode(Array("{\"class\":\"SKY\",\"x\":1}".utf8)),
                       .unknown(className: "SKY", line: "{\"class\":\"SKY\",\"x\":1}"))
        XCTAssertEqual(ProtocolWriter.isoTime(unixNanos: 1_700_000_000_123_456_789), "2023-11-14T22:13:20.123Z")
    }

    func testClientCommandParsing() throws {
        func parse(_ s: String) throws -> ClientCommand { try ClientCommand.parse(Array(s.utf8)) }
        XCTAssertEqual(try parse("{\"class\":\"WATCH\",\"maps\":true}"), .watch(enable: nil, maps: true))
        XCTAssertEqual(try parse("{\"class\":\"WATCH\",\"enable\":false,\"future\":[1]}"), .watch(enable: false, maps: nil))
        XCTAssertEqual(try parse("{\"class\":\"POLL\"}"), .poll)
        for bad in ["", "{", "null", "\"WATCH\"", "{\"class\":\"FRAME\"}", "{\"class\":\"WATCH\",\"maps\":1}"] {
            XCTAssertThrowsError(try parse(bad), bad)
        }
    }
}

/// A count several threads add to.
private final class Tally: @unchecked Sendable {  // unchecked: count is guarded by `lock`
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func add() { lock.withLock { count += 1 } }
}

/// Sequence numbers seen by concurrent reader threads.
private final class Received: @unchecked Sendable {  // unchecked: storage is guarded by `lock`
    private let lock = NSLock()
    private var storage: [[UInt64]] = [[], []]
    var sequences: [[UInt64]] { lock.withLock { storage } }
    func append(_ seq: UInt64, to reader: Int) { lock.withLock { storage[reader].append(seq) } }
}

extension SocketServerTests {
    /// Map arrays take a fast path; it must print exactly what the general number writer prints.
    func testMapValuesAreRoundedLikeEveryOtherNumber() throws {
        let classes = ["a"]
        var values: [Float] = [0, 1, -1, 0.5, 0.0005, 0.0004999, -0.0004, -0.0006, 0.1, 0.12, 0.123, 0.1234, 0.9995, 999.99, -999.99,
                               12.5, 100.25]
        var rng = SystemRandomNumberGenerator()
        while values.count < SoundlocProtocol.mapCells { values.append(Float.random(in: -3...3, using: &rng)) }
        let report = FrameReport(sequence: 0, captureNanos: 0,
                                 latencies: values.enumerated().map { .init("v\($0.offset)", milliseconds: Double($0.element)) },
                                 audioDistribution: [0], maps: .init(classMaps: values, soundingArea: values))
        let line = ProtocolWriter.frameLine(report, classes: classes, publishNanos: 0, time: "t", maps: true)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
        let text = String(decoding: line, as: UTF8.self)
        let mapText = try XCTUnwrap(text.range(of: "\"sounding_area\":[").map { text[$0.upperBound...].prefix { $0 != "]" } })
        let latencyText = (object["latency_ms"] as? [String: Any]).map { _ in
            values.indices.map { i -> String in
                let key = "\"v\(i)\":"
                let start = text.range(of: key)!.upperBound
                return String(text[start...].prefix { $0 != "," && $0 != "}" })
            }.joined(separator: ",")
        }
        XCTAssertEqual(String(mapText), latencyText)
        // And the slow path (a value out of the fast path's range) still writes valid numbers.
        var huge = report
        huge.maps?.soundingArea[0] = .nan
        huge.maps?.soundingArea[1] = 1e6
        let hugeLine = ProtocolWriter.frameLine(huge, classes: classes, publishNanos: 0, time: "t", maps: true)
        let decoded = try JSONDecoder().decode(FrameMessage.self, from: Data(hugeLine))
        XCTAssertEqual(decoded.maps?.soundingArea[0], 0)
        XCTAssertEqual(decoded.maps?.soundingArea[1], 1e6)
    }
}

extension SocketServerTests {
    func testShutdownWhilePublishingAndClientsConnect() throws {
        let server = try startServer()
        let path = self.path
        let clients = try (0..<3).map { _ in try RawClient(path: path) }
        for client in clients { _ = try client.expectBanner() }
        let publishing = DispatchGroup()
        DispatchQueue.global().async(group: publishing) {
            for seq in 0..<2000 { server.publish(SocketTest.report(UInt64(seq), maps: seq % 2 == 0)) }
        }
        DispatchQueue.global().async(group: publishing) {
            for _ in 0..<50 { _ = try? RawClient(path: path) }
        }
        usleep(2000)
        server.shutdown()
        XCTAssertEqual(publishing.wait(timeout: .now() + SocketTest.hangGuard), .success)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        for client in clients {
            // Whatever came before, the stream ends with the goodbye (or is cut if the client was behind).
            var last: ServerMessage?
            while let message = try client.readMessage() { last = message }
            if case let .status(status)? = last { XCTAssertEqual(status.state, .stopped) }
        }
    }
}

extension SocketServerTests {
    /// Opens a connection and closes it at once without reading: what a churning client does. False when
    /// the connection could not even be made.
    @discardableResult
    private static func connectAndHangUp(_ path: String) -> Bool {
        guard let client = try? RawClient(path: path) else { return false }
        client.close()
        return true
    }

    func testConnectionChurnLeavesNoClientBehind() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let reader = try connectedClient()
        // Four threads connect and hang up at once, 2000 times in all, while frames are being published.
        let churn = DispatchGroup()
        let made = Tally()
        let path = self.path
        for _ in 0..<4 {
            DispatchQueue.global().async(group: churn) { for _ in 0..<500 where Self.connectAndHangUp(path) { made.add() } }
        }
        var seq: UInt64 = 0
        while churn.wait(timeout: .now() + 0.005) == .timedOut {
            server.publish(SocketTest.report(seq))
            seq += 1
        }
        // Once the server has taken every connection from its backlog, every churned client is gone from the
        // table and from memory: only the reader is left.
        SocketTest.waitUntil("the churned clients to be released") {
            let seen = server.connectionCounts
            return seen.admitted + seen.refused == 1 + made.value && server.connectedClients == 1 && server.retainedClientObjects == 1
        }
        XCTAssertEqual(server.connectedClients, 1)
        XCTAssertEqual(server.retainedClientObjects, 1)
        // The reader missed nothing and the server still accepts and serves.
        server.publish(SocketTest.report(seq))
        var expected: UInt64 = 0
        while let frame = try reader.readFrame().0 {
            XCTAssertEqual(frame.seq, expected)
            expected += 1
            if frame.seq == seq { break }
        }
        XCTAssertEqual(expected, seq + 1)
        let late = try connectedClient()
        reader.close()
        late.close()
        SocketTest.waitUntil("the last clients to be released") { server.retainedClientObjects == 0 }
        XCTAssertEqual(server.connectedClients, 0)
    }

    func testClientsOverTheCapGetAnErrorAndAreClosed() throws {
        let server = try startServer { $0.maxClients = 3 }
        defer { server.shutdown() }
        let admitted = try (0..<3).map { _ in try RawClient(path: path) }
        for client in admitted { _ = try client.expectBanner() }
        let extra = try RawClient(path: path)
        guard case let .error(error)? = try extra.readMessage() else { return XCTFail("expected ERROR instead of the banner") }
        XCTAssertEqual(error.message, "too many clients (3 connected); try again later")
        XCTAssertNil(try extra.readLine(), "the server hangs up on a client over the cap")
        XCTAssertEqual(server.connectedClients, 3)
        // Churn over the cap is refused without leaking either.
        let made = (0..<200).filter { _ in Self.connectAndHangUp(path) }.count
        SocketTest.waitUntil("the churned connections to be refused") { server.connectionCounts.refused == 1 + made }
        XCTAssertEqual(server.connectionCounts.admitted, 3)
        XCTAssertEqual(server.retainedClientObjects, 3)
        XCTAssertEqual(server.connectedClients, 3)
        // A slot frees when a client leaves, and the admitted ones keep getting frames.
        admitted[0].close()
        SocketTest.waitUntil("the slot to free") { server.connectedClients == 2 }
        let next = try connectedClient()
        server.publish(SocketTest.report(7))
        for client in [admitted[1], admitted[2], next] { XCTAssertEqual(try client.readFrame().0?.seq, 7) }
    }
}
