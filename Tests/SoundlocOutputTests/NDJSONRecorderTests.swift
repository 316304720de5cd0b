import Foundation
import SoundlocOutput
import SoundlocTestSupport
import XCTest

/// `soundloc run --record`: the socket's messages in a file, one per line, and a slow or vanished reader of a pipe
/// never holding up the publisher.
final class NDJSONRecorderTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws { directory = try SocketTest.directory() }
    override func tearDown() { SocketTest.removeDirectory(directory) }

    /// Decoded lines with the per-delivery fields (`publish_ns`, `time`, `dropped_messages`) blanked.
    static func normalised(_ lines: [String]) throws -> [ServerMessage] {
        try lines.map { line in
            var message = try ServerMessage.decode(Array(line.utf8))
            if case var .frame(frame) = message {
                frame.publishNs = 0
                frame.time = ""
                message = .frame(frame)
            }
            if case var .status(status) = message {
                status.time = ""
                message = .status(status)
            }
            return message
        }
    }

    static func lines(of path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    func testRecordHoldsWhatASocketClientGets() throws {
        let path = directory + "/s.sock", record = directory + "/run.ndjson"
        let server = try SocketServer.start(configuration: .init(path: path), banner: SocketTest.banner(), logger: SocketTest.logger)
        defer { server.shutdown() }
        let client = try RawClient(path: path)
        _ = try client.expectBanner()
        SocketTest.waitUntil("registration") { server.connectedClients == 1 }
        let recorder = try NDJSONRecorder(path: record, banner: SocketTest.banner(), logger: SocketTest.logger)
        let statuses = [StatusMessage(device: .audio, state: .started, message: "capturing from plughw:CARD=Device,DEV=0"),
                        StatusMessage(device: .video, state: .started, message: "capturing from /dev/video0")]
        var reports = (1...20).map { SocketTest.report(UInt64($0), maps: true) }
        reports[4].unlocated = [.init(classIndex: 2, reason: .noSoundingArea, value: 0.25, threshold: 0.5)]
        for status in statuses {
            server.publish(status: status)
            recorder.publish(status: status)
        }
        for report in reports {
            server.publish(report)
            recorder.publish(report)
        }
        XCTAssertNil(recorder.close())
        recorder.publish(SocketTest.report(99))  // after close: ignored
        XCTAssertNil(recorder.close(), "a second close does nothing")

        let recorded = try Self.lines(of: record)
        XCTAssertEqual(recorded.count, 1 + 2 + 20 + 1)
        XCTAssertTrue(recorded.allSatisfy { !$0.contains("\"maps\"") }, "no maps unless asked")
        let fromSocket = try (0..<22).map { _ in try XCTUnwrap(client.readLine()) }
        XCTAssertEqual(try Self.normalised(Array(recorded[1...22])), try Self.normalised(fromSocket))
        XCTAssertEqual(try ServerMessage.decode(Array(recorded[0].utf8)), .version(SocketTest.banner()))
        guard case let .status(goodbye) = try ServerMessage.decode(Array(recorded[23].utf8)) else { return XCTFail(recorded[23]) }
        XCTAssertEqual([goodbye.device.rawValue, goodbye.state.rawValue, goodbye.message], ["server", "stopped", "recording ends"])
        XCTAssertTrue(recorded[7].contains("\"unlocated\":[{\"class\":\"violin\",\"reason\":\"no_sounding_area\""), recorded[7])
    }

    func testMapsOnlyWhenAsked() throws {
        let record = directory + "/maps.ndjson"
        let recorder = try NDJSONRecorder(path: record, banner: SocketTest.banner(), maps: true, logger: SocketTest.logger)
        recorder.publish(SocketTest.report(1, maps: true))
        XCTAssertNil(recorder.close())
        guard case let .frame(frame) = try ServerMessage.decode(Array(try Self.lines(of: record)[1].utf8)) else { return XCTFail() }
        XCTAssertEqual(frame.maps?.soundingArea.count, SoundlocProtocol.mapCells)
    }

    func testUnwritablePathIsAClearError() {
        XCTAssertThrowsError(try NDJSONRecorder(path: directory + "/missing/run.ndjson", banner: SocketTest.banner(),
                                                logger: SocketTest.logger)) {
            XCTAssertEqual("\($0)", "cannot write the record \(directory)/missing/run.ndjson: No such file or directory")
        }
    }

    /// A reader of a pipe that does not read: publishing goes on at full speed, FRAMEs beyond the queue's limit are
    /// dropped and counted in the next recorded FRAME, and once the reader reads, everything else arrives.
    func testSlowReaderNeverHoldsUpThePublisherAndDropsAreCounted() throws {
        let fifo = directory + "/pipe"
        try makeFIFO(fifo)
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)
        XCTAssertGreaterThanOrEqual(reader, 0)
        defer { close(reader) }
        let recorder = try NDJSONRecorder(path: fifo, banner: SocketTest.banner(), highWaterMark: 32 * 1024, logger: SocketTest.logger)
        let count = 2000
        let outcome = runWithHangGuard(seconds: SocketTest.hangGuard) {
            for seq in 1...count { recorder.publish(SocketTest.report(UInt64(seq), maps: true)) }
            recorder.publish(status: StatusMessage(device: .audio, state: .failed, message: "never dropped"))
        }
        guard case .returned = outcome else { return XCTFail("publish blocked on the pipe: \(outcome)") }
        XCTAssertGreaterThan(recorder.droppedMessages, 0, "a 64 KiB pipe and a 32 KiB queue cannot hold 2000 frames")

        // Now read everything while the recorder finishes.
        let text = ByteCollector()
        let drained = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                var pfd = pollfd(fd: reader, events: Int16(POLLIN), revents: 0)
                guard poll(&pfd, 1, 1000) >= 0 else { break }
                let n = chunk.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                if n == 0 { break }  // the recorder closed its end
                if n > 0 { text.append(chunk[..<n]) }
            }
            drained.signal()
        }
        XCTAssertNil(recorder.close())
        XCTAssertEqual(drained.wait(timeout: .now() + SocketTest.hangGuard), .success)
        let messages = try String(decoding: text.bytes, as: UTF8.self).split(separator: "\n").map { try ServerMessage.decode(Array($0.utf8)) }
        let frames = messages.compactMap { message -> FrameMessage? in if case let .frame(f) = message { return f } else { return nil } }
        // Every missing seq is accounted for: dropped_messages grows by the size of each gap before the frame.
        var previousSeq: UInt64 = 0, previousDropped: UInt64 = 0
        for frame in frames {
            XCTAssertEqual(frame.seq - previousSeq - 1, frame.droppedMessages - previousDropped, "gap before \(frame.seq)")
            (previousSeq, previousDropped) = (frame.seq, frame.droppedMessages)
        }
        XCTAssertEqual(UInt64(frames.count) + recorder.droppedMessages, UInt64(count), "each frame recorded or counted as dropped")
        XCTAssertTrue(messages.contains(.status(StatusMessage(device: .audio, state: .failed, message: "never dropped",
                                                              time: statusTime(messages)))))
        guard case .status(let last)? = messages.last else { return XCTFail("no goodbye") }
        XCTAssertEqual(last.device, .server)
    }

    private func statusTime(_ messages: [ServerMessage]) -> String {
        for case let .status(status) in messages where status.message == "never dropped" { return status.time }
        return ""
    }

    /// The reader goes away: the recording stops with the reason, the process lives on (no SIGPIPE), publishing too.
    func testVanishedReaderStopsTheRecordingNotTheProcess() throws {
        let fifo = directory + "/pipe"
        try makeFIFO(fifo)
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)
        let recorder = try NDJSONRecorder(path: fifo, banner: SocketTest.banner(), logger: SocketTest.logger)
        close(reader)
        let outcome = runWithHangGuard(seconds: SocketTest.hangGuard) {
            for seq in 1...200 { recorder.publish(SocketTest.report(UInt64(seq))) }
        }
        guard case .returned = outcome else { return XCTFail("publish blocked: \(outcome)") }
        XCTAssertEqual(recorder.close(), "cannot write \(fifo): Broken pipe")
    }
}

/// Bytes a reader thread collects.
private final class ByteCollector: @unchecked Sendable {  // unchecked: storage is guarded by `lock`
    private let lock = NSLock()
    private var storage: [UInt8] = []
    var bytes: [UInt8] { lock.withLock { storage } }
    func append(_ chunk: ArraySlice<UInt8>) { lock.withLock { storage.append(contentsOf: chunk) } }
}
