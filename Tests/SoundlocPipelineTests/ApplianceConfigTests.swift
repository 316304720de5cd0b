import Foundation
import SoundlocPipeline
import SoundlocTestSupport
import XCTest

final class ApplianceConfigTests: XCTestCase {
    static let configs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Firmware-Configs")

    func testEveryShippedConfigLoadsAndValidates() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.configs.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(files, ["raspberry-pi-4.yaml", "raspberry-pi-5.yaml", "x86-64-dev.yaml"])
        for name in files {
            let config = try ApplianceConfig.load(path: Self.configs.appendingPathComponent(name).path)
            XCTAssertEqual(config.board + ".yaml", name)
            XCTAssertEqual(config.output.socketMode, 0o660)
            XCTAssertGreaterThanOrEqual(config.engine.threads, 1)
        }
        let pi5 = try ApplianceConfig.load(path: Self.configs.appendingPathComponent("raspberry-pi-5.yaml").path)
        XCTAssertEqual(pi5.engine.kernels, "neondot")
        XCTAssertEqual(pi5.audio.pcm, "plughw:1,0")
        XCTAssertEqual(pi5.output.socketGroup, "audio")
    }

    func testEmptyFileGivesDefaults() throws {
        XCTAssertEqual(try ApplianceConfig.parse("", file: "empty.yaml"), ApplianceConfig())
    }

    func assertError(_ yaml: String, key: String?, mentions words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ApplianceConfig.parse(yaml, file: "board.yaml"), file: file, line: line) { error in
            guard let error = error as? ConfigError else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertEqual(error.key, key, "\(error)", file: file, line: line)
            for word in words { XCTAssertTrue(error.description.contains(word), error.description, file: file, line: line) }
            XCTAssertTrue(error.description.hasPrefix("board.yaml: "), file: file, line: line)
        }
    }

    func testMistakesNameTheKeyAndTheAllowedValues() {
        assertError("engine:\n  kernels: sse4\n", key: "engine.kernels", mentions: ["avx2", "neondot", "'sse4'"])
        assertError("engine:\n  threads: 0\n", key: "engine.threads", mentions: ["1…64"])
        assertError("video:\n  width: wide\n", key: "video.width", mentions: ["integer", "'wide'"])
        assertError("audio:\n  pcm: plughw:1,0\n  rate: 44100\n", key: "audio.rate", mentions: ["unknown key", "pcm", "period_ms"])
        assertError("colour: blue\n", key: "colour", mentions: ["unknown key", "engine"])
        assertError("output:\n  socket_mode: 660\n", key: "output.socket_mode", mentions: ["octal"])
        assertError("output:\n  socket_mode: \"0999\"\n", key: "output.socket_mode", mentions: ["octal"])
        assertError("pipeline:\n  silence_dbfs: 3\n", key: "pipeline.silence_dbfs", mentions: ["-120"])
        assertError("log_level: loud\n", key: "log_level", mentions: ["debug", "warning"])
        assertError("video: 3\n", key: "video", mentions: ["mapping"])
        assertError("output:\n  socket: /\(String(repeating: "s", count: 120))\n", key: "output.socket", mentions: ["107"])
        assertError("audio: [unclosed\n", key: nil, mentions: ["not valid YAML"])
    }

    func testFIFOIsRefusedNotWaitedOn() throws {
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-\(UUID().uuidString).yaml").path
        try makeFIFO(fifo)
        defer { unlink(fifo) }
        let outcome = runWithHangGuard(unblock: { unblockFIFO(fifo) }) { _ = try ApplianceConfig.load(path: fifo) }
        XCTAssertEqual(outcome.error.map { "\($0)" }, "\(fifo): cannot read the file: is a FIFO (named pipe), not a regular file")
    }

    func testMissingFileIsAClearError() {
        XCTAssertThrowsError(try ApplianceConfig.load(path: "/nonexistent/board.yaml")) {
            XCTAssertEqual("\($0)", "/nonexistent/board.yaml: cannot read the file: no such file")
        }
    }
}
