import Foundation
import SoundlocOutput
import XCTest

/// gpsd's `?WATCH={...};` form beside the JSON commands, the devices' state told to each client after the banner,
/// and the `unlocated` field of FRAME messages.
extension SocketServerTests {
    // MARK: gpsd's command form

    func testGpsdCommandsAreParsed() throws {
        func parse(_ s: String) throws -> ClientCommand { try ClientCommand.parse(Array(s.utf8)) }
        let cases: [(String, ClientCommand)] = [
            ("?WATCH={\"enable\":true,\"json\":true};", .watch(enable: true, maps: nil)),
            ("?WATCH={\"enable\":false};", .watch(enable: false, maps: nil)),
            ("?WATCH={\"json\":true}", .watch(enable: true, maps: nil)),  // as in gpsd, enable defaults to true
            ("?WATCH={};", .watch(enable: true, maps: nil)),
            ("?WATCH={\"enable\":true,\"json\":false};", .watch(enable: false, maps: nil)),  // no JSON: nothing to send
            ("?WATCH={\"raw\":1};", .watch(enable: true, maps: true)),
            ("?WATCH={\"raw\":0,\"nmea\":true,\"scaled\":true,\"device\":\"/dev/ttyUSB0\"};", .watch(enable: true, maps: false)),
            ("?WATCH={\"raw\":2,\"maps\":false};", .watch(enable: true, maps: false)),  // our own field wins
            ("?WATCH={\"class\":\"WATCH\",\"maps\":true,\"enable\":false};", .watch(enable: false, maps: true)),
            ("?WATCH;", .watch(enable: nil, maps: nil)),
            ("?WATCH", .watch(enable: nil, maps: nil)),
            ("?POLL;", .poll),
            ("?WATCH={\"enable\":null};", .watch(enable: true, maps: nil)),  // null is no value, as in the JSON form
        ]
        for (line, expected) in cases { XCTAssertEqual(try parse(line), expected, line) }
        let refusals: [(String, String)] = [
            ("?WATCH={\"enable\":1};", "\"enable\" must be true or false"),
            ("?WATCH={\"raw\":\"yes\"};", "\"raw\" must be 0, 1, 2, true or false"),
            ("?WATCH={\"class\":\"POLL\"};", "?WATCH= takes a WATCH object, not \"POLL\""),
            ("?WATCH={\"enable\":true};?POLL;", "?WATCH= takes one JSON object and an optional ';', one command per line"),
            ("?WATCH=[1];", "?WATCH= takes one JSON object"),
            ("?DEVICES;", "unknown command ?DEVICES (expected ?WATCH or ?POLL"),
            ("?", "unknown command ? (expected"),
        ]
        for (line, message) in refusals {
            XCTAssertThrowsError(try parse(line), line) { XCTAssertTrue("\($0)".hasPrefix(message), "\(line) → \($0)") }
        }
    }

    func testGpsdWatchDrivesTheConnection() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let client = try connectedClient()
        client.send("?WATCH={\"enable\":false};\n")
        XCTAssertEqual(try client.readMessage(), .watch(WatchMessage(enable: false, maps: false)))
        SocketTest.waitUntil("the pause to take effect") { server.clientStatistics().first?.watching == false }
        server.publish(SocketTest.report(1, maps: true))
        client.send("?POLL;\n")  // the answer comes after any FRAME, so a FRAME 1 sent while paused would show first
        guard case let .frame(polled)? = try client.readMessage() else { return XCTFail("expected the polled FRAME") }
        XCTAssertEqual(polled.seq, 1)
        XCTAssertNil(polled.maps)
        client.send("?WATCH={\"enable\":true,\"json\":true,\"raw\":1};\n")
        XCTAssertEqual(try client.readMessage(), .watch(WatchMessage(enable: true, maps: true)))
        server.publish(SocketTest.report(2, maps: true))
        let frame = try XCTUnwrap(client.readFrame().0)
        XCTAssertEqual(frame.seq, 2)
        XCTAssertNotNil(frame.maps)
        client.send("?WATCH;\n")
        XCTAssertEqual(try client.readMessage(), .watch(WatchMessage(enable: true, maps: true)))
        client.send("?WATCH={\"enable\":\"no\"};\n")
        XCTAssertEqual(try client.readMessage(), .error(ErrorMessage(message: "\"enable\" must be true or false")))
        // The JSON form still works on the same connection.
        XCTAssertEqual(try client.watch(maps: false), WatchMessage(enable: true, maps: false))
    }

    // MARK: Devices' state on connect

    func testNewClientsLearnTheDevicesStateAfterTheBanner() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let early = try connectedClient()
        server.publish(status: StatusMessage(device: .audio, state: .started, message: "capturing from plughw:CARD=Device,DEV=0"))
        server.publish(status: StatusMessage(device: .video, state: .started, message: "capturing from /dev/video0"))
        server.publish(status: StatusMessage(device: .audio, state: .failed, message: "plughw:CARD=Device,DEV=0: No such device"))
        for _ in 0..<3 { guard case .status? = try early.readMessage() else { return XCTFail("expected STATUS") } }

        // A client connecting during the outage hears of it first thing: audio failed, video started.
        let late = try connectedClient()
        guard case let .status(audio)? = try late.readMessage(), case let .status(video)? = try late.readMessage() else {
            return XCTFail("expected a STATUS per device after the banner")
        }
        XCTAssertEqual([audio.device, video.device], [.audio, .video])
        XCTAssertEqual([audio.state, video.state], [.failed, .started])
        XCTAssertEqual(audio.message, "plughw:CARD=Device,DEV=0: No such device")
        XCTAssertFalse(audio.time.isEmpty)
        // Then the stream as usual: the recovery, then frames.
        server.publish(status: StatusMessage(device: .audio, state: .recovered, message: "audio capture recovered"))
        server.publish(SocketTest.report(7))
        guard case let .status(recovered)? = try late.readMessage() else { return XCTFail("expected STATUS recovered") }
        XCTAssertEqual(recovered.state, .recovered)
        XCTAssertEqual(try late.readFrame().0?.seq, 7)
        // The server's own goodbye is not a device state.
        server.publish(status: StatusMessage(device: .server, state: .stopped, message: "test"))
        let third = try connectedClient()
        let states = try (0..<2).map { _ -> StatusMessage in
            guard case let .status(status)? = try third.readMessage() else { throw RawClient.Timeout() }
            return status
        }
        XCTAssertEqual(states.map(\.state), [.recovered, .started])
        server.publish(SocketTest.report(8))
        XCTAssertEqual(try third.readFrame().skipped, [], "no third STATUS")
    }

    func testClientWithoutDeviceStatesGetsOnlyTheBanner() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let client = try connectedClient()
        server.publish(SocketTest.report(1))
        let (frame, skipped) = try client.readFrame()
        XCTAssertEqual(frame?.seq, 1)
        XCTAssertEqual(skipped, [])
    }

    /// Clients connecting while the state changes see each change exactly once: the state at connect time after the
    /// banner, then every later change in order, none missed and none repeated.
    func testStateChangesRacingWithConnectsAreSeenOnceInOrder() throws {
        let server = try startServer()
        defer { server.shutdown() }
        let changes = 300
        let published = DispatchGroup()
        DispatchQueue.global().async(group: published) {
            for n in 1...changes {
                server.publish(status: StatusMessage(device: .audio, state: n % 2 == 0 ? .recovered : .failed, message: "\(n)"))
                if n % 3 == 0 { usleep(200) }
            }
        }
        var clients: [RawClient] = []
        for _ in 0..<20 {
            clients.append(try RawClient(path: path))
            usleep(300)
        }
        XCTAssertEqual(published.wait(timeout: .now() + SocketTest.hangGuard), .success)
        for client in clients {
            _ = try client.expectBanner()
            var seen: [Int] = []
            while seen.last != changes {
                guard case let .status(status)? = try client.readMessage() else { return XCTFail("expected STATUS") }
                seen.append(try XCTUnwrap(Int(status.message)))
            }
            let first = try XCTUnwrap(seen.first)
            XCTAssertTrue(seen == Array(first...changes), "a client saw \(seen.prefix(6))…, not each change from \(first) once in order")
        }
    }

    // MARK: FRAME's unlocated field

    func testUnlocatedTravelsWithFramesAndOldLinesStillDecode() throws {
        var report = SocketTest.report(3)
        report.unlocated = [.init(classIndex: 2, reason: .noSoundingArea, value: 0.3125, threshold: 0.5),
                            .init(classIndex: 1, reason: .notInView, value: 0.0004, threshold: 0.5)]
        let line = ProtocolWriter.frameLine(report, classes: SocketTest.classes, publishNanos: 9, time: "t", maps: false)
        let text = String(decoding: line, as: UTF8.self)
        XCTAssertTrue(text.contains(",\"silence\":false,\"unlocated\":[{\"class\":\"violin\",\"reason\":\"no_sounding_area\","
                                    + "\"value\":0.313,\"threshold\":0.5},{\"class\":\"cello\",\"reason\":\"not_in_view\","
                                    + "\"value\":0,\"threshold\":0.5}],\"dropped_frames\":2,"), text)
        guard case let .frame(frame) = try ServerMessage.decode(line) else { return XCTFail(text) }
        XCTAssertEqual(frame.unlocated, [.init(className: "violin", reason: "no_sounding_area", value: 0.313, threshold: 0.5),
                                         .init(className: "cello", reason: "not_in_view", value: 0, threshold: 0.5)])
        // Nothing unlocated: an empty list. A line from a server before the field: nil, everything else as before.
        let plain = ProtocolWriter.frameLine(SocketTest.report(4), classes: SocketTest.classes, publishNanos: 9, time: "t", maps: false)
        XCTAssertTrue(String(decoding: plain, as: UTF8.self).contains("\"unlocated\":[]"))
        let old = String(decoding: plain, as: UTF8.self).replacingOccurrences(of: ",\"unlocated\":[]", with: "")
        guard case let .frame(oldFrame) = try ServerMessage.decode(Array(old.utf8)) else { return XCTFail(old) }
        XCTAssertNil(oldFrame.unlocated)
        XCTAssertEqual(oldFrame.sounding.map(\.className), ["accordion"])
    }
}
