import Foundation
@testable import soundloc
import SoundlocOutput
import XCTest

/// `soundloc run --record`: the socket's messages for logging pipelines; `soundloc watch`: why a heard class is not placed.
final class RunRecordAndWatchTests: XCTestCase {
    var directory: URL!
    let model = CLI.repositoryRoot.appendingPathComponent("Tests/SoundlocEngineTests/Fixtures/tiny/model.safetensors").path
    let clip = CLI.repositoryRoot.appendingPathComponent("Models/demo").path

    override func setUpWithError() throws { directory = try CLI.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func replay(_ extra: [String]) throws -> CLIResult {
        try CLI.run(["run", "--model", model, "--audio", "\(clip)/clip.wav", "--video", "\(clip)/scene.png", "--fast",
                     "--threads", "1", "--frames", "6"] + extra, hangGuard: 300)
    }

    static func objects(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { line in
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
        }
    }

    func testRecordToAFileHoldsBannerStatesFramesAndTheEnd() throws {
        let record = directory.appendingPathComponent("run.ndjson").path
        let socket = directory.appendingPathComponent("s.sock").path
        let r = try replay(["--record", record, "--socket", socket])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("frames: "), "the summary stays on standard output: \(r.stdout)")
        let objects = try Self.objects(try String(contentsOfFile: record, encoding: .utf8))
        XCTAssertEqual(objects.map { $0["class"] as? String }, ["VERSION", "STATUS", "STATUS"] + Array(repeating: "FRAME", count: 6) + ["STATUS"])
        XCTAssertEqual(objects[0]["classes"] as? [String], ["accordion", "acoustic_guitar", "cello", "clarinet", "erhu", "flute",
                                                           "saxophone", "trumpet", "tuba", "violin", "xylophone"])
        XCTAssertEqual(objects[1...2].map { "\($0["device"]!) \($0["state"]!) \($0["message"]!)" },
                       ["audio started replaying a file", "video started replaying a file"])
        let frames = objects[3...8]
        XCTAssertEqual(frames.map { $0["seq"] as? Int }, [1, 2, 3, 4, 5, 6])
        XCTAssertTrue(frames.allSatisfy { $0["maps"] == nil && $0["unlocated"] is [Any] && $0["dropped_messages"] as? Int == 0 })
        XCTAssertEqual("\(objects[9]["device"]!) \(objects[9]["state"]!)", "server stopped")
        XCTAssertFalse(FileManager.default.fileExists(atPath: socket), "the socket is gone after the run")
    }

    func testRecordToStandardOutputIsPureNDJSONWithMapsWhenAsked() throws {
        let r = try replay(["--record", "-", "--record-maps", "--socket", "none", "--verbose"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let objects = try Self.objects(r.stdout)  // every line of standard output is one JSON object
        XCTAssertEqual(objects.count, 10)
        let frames = objects.filter { $0["class"] as? String == "FRAME" }
        XCTAssertEqual(frames.count, 6)
        XCTAssertTrue(frames.allSatisfy { (($0["maps"] as? [String: Any])?["sounding_area"] as? [Any])?.count == 196 })
        // What is meant for a person went to standard error: the per-frame lines and the summary.
        XCTAssertTrue(r.stderr.contains("#1 "), r.stderr)
        XCTAssertTrue(r.stderr.contains("frames: "), r.stderr)
    }

    func testRecordOptionsAreChecked() throws {
        let maps = try replay(["--record-maps"])
        XCTAssertNotEqual(maps.status, 0)
        XCTAssertTrue(maps.stderr.contains("--record-maps goes with --record"), maps.stderr)
        let nowhere = try replay(["--record", directory.appendingPathComponent("missing/run.ndjson").path, "--socket", "none"])
        XCTAssertNotEqual(nowhere.status, 0)
        XCTAssertTrue(nowhere.stderr.contains("cannot write the record"), nowhere.stderr)
    }

    // MARK: watch

    static let frame: FrameMessage = {
        let line = """
            {"class":"FRAME","seq":5,"capture_ns":1,"publish_ns":2,"time":"2026-01-01T00:00:00.000Z","latency_ms":{},\
            "audio":{"violin":0.6,"tuba":0.3,"cello":0.1},"sounding":[],"silent_visible":["cello"],"silence":false,\
            "unlocated":[{"class":"violin","reason":"no_sounding_area","value":0.31,"threshold":0.5},\
            {"class":"tuba","reason":"not_in_view","value":0.02,"threshold":0.5},\
            {"class":"cello","reason":"quiet_where_seen","value":0.4,"threshold":0.5},\
            {"class":"erhu","reason":"weak_class_map","value":0.3,"threshold":0.5},\
            {"class":"flute","reason":"from_the_future","value":0.1,"threshold":0.2}],\
            "dropped_frames":0,"overruns":0,"dropped_messages":0}
            """
        guard case let .frame(frame) = try! ServerMessage.decode(Array(line.utf8)) else { fatalError() }
        return frame
    }()

    static let expectedReasons = "heard, not located: violin (l peak 0.31 < 0.5), tuba (not in view: visibility 0.02 < 0.5), "
        + "cello (in view, but l 0.40 < 0.5 where it is), erhu (class map 0.30 < 0.5 where it sounds), flute (from_the_future 0.10 < 0.2)"

    func testWatchSaysWhyAHeardClassIsNotPlaced() {
        XCTAssertTrue(WatchView.line(Self.frame).contains(" | \(Self.expectedReasons) | audio: "), WatchView.line(Self.frame))
        XCTAssertTrue(WatchView.block(Self.frame, status: nil, maps: false).contains(Self.expectedReasons))
        var quiet = Self.frame
        quiet.unlocated = []
        XCTAssertFalse(WatchView.line(quiet).contains("heard, not located"))
        quiet.unlocated = nil  // an older server
        XCTAssertFalse(WatchView.line(quiet).contains("heard, not located"))
    }

    func testWatchShowsTheReasonsFromTheSocket() throws {
        let socket = directory.appendingPathComponent("s.sock").path
        let banner = String(decoding: ProtocolWriter.line(VersionMessage(
            release: "t", model: ModelIdentity(name: "m", checksum: "sha256:00"), classes: ["violin", "tuba", "cello"],
            imageWidth: 640, imageHeight: 480)), as: UTF8.self)
        let frame = String(decoding: try JSONEncoder().encode(Self.frame), as: UTF8.self)
        let server = try OneShotServer(path: socket, lines: [banner.trimmingCharacters(in: .newlines), frame])
        defer { server.close() }
        let r = try CLI.run(["watch", "--socket", socket, "--plain", "--frames", "1"], hangGuard: 60)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains(Self.expectedReasons), r.stdout)
    }
}
