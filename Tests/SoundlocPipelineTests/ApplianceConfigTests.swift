import Foundation
import SoundlocDSOL
import SoundlocEngine
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
        XCTAssertEqual(pi5.audio.pcm, "plughw:CARD=Device,DEV=0")
        let pi4 = try ApplianceConfig.load(path: Self.configs.appendingPathComponent("raspberry-pi-4.yaml").path)
        XCTAssertEqual(pi4.audio.pcm, "plughw:CARD=Device,DEV=0", "stable card names, not numbers")
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

    /// The message a config text is refused with.
    private func refusal(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try ApplianceConfig.parse(text, file: "board.yaml")
            XCTFail("accepted", file: file, line: line)
            return ""
        } catch {
            return String("\(error)".prefix(300))
        }
    }

    func testDeepNestingIsRefusedBeforeParsing() {
        // 30000 levels in 60 KB: enough to overflow the stack of a recursive node builder.
        let flow = "audio: " + String(repeating: "[", count: 30000) + String(repeating: "]", count: 30000) + "\n"
        XCTAssertEqual(refusal(flow), "board.yaml: refused: nested deeper than 32 levels (line 1); a board config needs 2")
        let block = String(repeating: "- ", count: 30000) + "x\n"
        XCTAssertEqual(refusal(block), "board.yaml: refused: nested deeper than 32 levels (line 1); a board config needs 2")
        let mappings = (0..<40).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n") + " 1\n"
        XCTAssertTrue(refusal(mappings).contains("nested deeper than 32 levels"), refusal(mappings))
        // Nesting within the limit gets the ordinary answer (here: an unknown key).
        let shallow = "audio: " + String(repeating: "[", count: 31) + String(repeating: "]", count: 31) + "\n"
        XCTAssertTrue(refusal(shallow).contains("audio: expected a mapping"), refusal(shallow))
    }

    func testAliasBombIsRefusedBeforeExpanding() {
        // Each level lists the previous one twice: 20 levels and 40 aliases expand to over a million values.
        var bomb = "l0: &l0 [lol, lol]\n"
        for level in 1...20 { bomb += "l\(level): &l\(level) [*l\(level - 1), *l\(level - 1)]\n" }
        XCTAssertEqual(refusal(bomb), "board.yaml: refused: its aliases expand to more than 10000 values (line 12); a board config holds a few dozen")
        // The classic one: nine levels of nine aliases.
        var laughs = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for (previous, name) in zip("abcdefgh", "bcdefghi") {
            laughs += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ", ") + "]\n"
        }
        XCTAssertTrue(refusal(laughs).contains("refused: its aliases expand to more than 10000 values"), refusal(laughs))
        // Many aliases of one scalar expand to little, but are still more than a config has a use for.
        let many = "board: &b pi\nx: [" + Array(repeating: "*b", count: 65).joined(separator: ", ") + "]\n"
        XCTAssertEqual(refusal(many), "board.yaml: refused: more than 64 aliases (*name) (line 2)")
        // A few aliases are fine.
        XCTAssertEqual(try ApplianceConfig.parse("board: &b pi\nmodel:\n  path: *b\n", file: "b.yaml").model.path, "pi")
    }

    func testOversizedConfigIsRefusedUnread() throws {
        let text = "board: x\n" + String(repeating: "# padding\n", count: 7000)
        XCTAssertEqual(refusal(text), "board.yaml: larger than 65536 bytes; a board config is a page of YAML")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        defer { unlink(path) }
        XCTAssertThrowsError(try ApplianceConfig.load(path: path)) {
            XCTAssertEqual("\($0)", "\(path): cannot read the file: larger than the 65536 bytes allowed for this kind of file")
        }
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

extension ApplianceConfigTests {
    func testMaxClients() throws {
        XCTAssertEqual(ApplianceConfig().output.maxClients, 64)
        XCTAssertEqual(try ApplianceConfig.parse("output:\n  max_clients: 5\n", file: "b.yaml").output.maxClients, 5)
        XCTAssertThrowsError(try ApplianceConfig.parse("output:\n  max_clients: 0\n", file: "b.yaml")) {
            XCTAssertEqual(($0 as? ConfigError)?.key, "output.max_clients")
        }
    }
}

extension ApplianceConfigTests {
    func testCheckReportsEveryProblemAtOnce() {
        let text = """
            board: pi
            log_level: loud
            colour: blue
            audio:
              pcm: plughw:CARD=Device,DEV=0
              period_ms: 2
              rate: 44100
            video:
              device: /dev/video0
              fsp: 30
              width: wide
            engine: 3
            pipeline:
              silence_dbfs: 3
            output:
              socket_mode: 660
              max_clients: 0
            """
        let report = ApplianceConfig.check(text, file: "board.yaml")
        XCTAssertTrue(report.readable)
        XCTAssertEqual(report.problems.map { $0.key ?? "-" }, [
            "log_level", "audio.period_ms", "audio.rate", "video.width", "video.fsp", "engine", "pipeline.silence_dbfs",
            "output.socket_mode", "output.max_clients", "colour",
        ])
        let lines = report.problems.map(\.description)
        XCTAssertEqual(lines[1], "board.yaml: audio.period_ms: expected an integer in 5…200, got 2")
        XCTAssertEqual(lines[4], "board.yaml: video.fsp: unknown key (did you mean fps?); allowed here: device, width, height, fps")
        XCTAssertEqual(lines[5], "board.yaml: engine: expected a mapping of keys to values, got 3")
        XCTAssertTrue(lines.allSatisfy { !$0.contains("\n") })
        // What was valid is kept; what was not keeps its default.
        XCTAssertEqual(report.config.board, "pi")
        XCTAssertEqual(report.config.audio.pcm, "plughw:CARD=Device,DEV=0")
        XCTAssertEqual(report.config.audio.periodMilliseconds, 20)
        XCTAssertEqual(report.config.output.maxClients, 64)
        XCTAssertTrue(report.hasProblem("video.width") && !report.hasProblem("video.device"))
        XCTAssertTrue(report.keysSet.contains("video.fsp") && report.keysSet.contains("colour"))
        // parse() still stops at the first problem, the same one.
        XCTAssertThrowsError(try ApplianceConfig.parse(text, file: "board.yaml")) {
            XCTAssertEqual($0 as? ConfigError, report.problems.first)
        }
    }

    func testUnreadableTextIsOneProblemWithoutAKey() {
        for text in ["audio: [unclosed\n", "audio: " + String(repeating: "[", count: 40) + String(repeating: "]", count: 40)] {
            let report = ApplianceConfig.check(text, file: "b.yaml")
            XCTAssertFalse(report.readable)
            XCTAssertEqual(report.problems.count, 1)
            XCTAssertNil(report.problems.first?.key)
        }
        let missing = ApplianceConfig.check(path: "/nonexistent/board.yaml")
        XCTAssertFalse(missing.readable)
        XCTAssertEqual(missing.problems.map(\.description), ["/nonexistent/board.yaml: cannot read the file: no such file"])
    }

    func testTyposGetASuggestionAndStrangersDoNot() {
        let report = ApplianceConfig.check("audio:\n  pcn: x\n  period: 20\nvidoe: {}\npipeline:\n  gate: 1\n", file: "b.yaml")
        XCTAssertEqual(report.problems.map(\.description), [
            "b.yaml: audio.pcn: unknown key (did you mean pcm?); allowed here: pcm, period_ms",
            "b.yaml: audio.period: unknown key; allowed here: pcm, period_ms",
            "b.yaml: pipeline.gate: unknown key; allowed here: max_fps, silence_dbfs, min_sounding_peak",
            "b.yaml: vidoe: unknown key (did you mean video?); allowed here: board, log_level, audio, video, model, engine, pipeline, output",
        ])
    }

    func testAcceptedKeysComeFromTheLoader() {
        XCTAssertEqual(ApplianceConfig.acceptedKeys, [
            "board", "log_level", "audio.pcm", "audio.period_ms", "video.device", "video.width", "video.height", "video.fps",
            "model.path", "engine.threads", "engine.kernels", "pipeline.max_fps", "pipeline.silence_dbfs",
            "pipeline.min_sounding_peak", "output.socket", "output.socket_mode", "output.socket_group", "output.max_clients",
        ])
    }

    func testKernelChoiceIsCheckedAgainstThisCPU() {
        var config = ApplianceConfig()
        XCTAssertNil(config.kernelProblem)
        config.engine.kernels = "reference"
        XCTAssertNil(config.kernelProblem)
        #if arch(x86_64)
        config.engine.kernels = "neondot"
        #else
        config.engine.kernels = "avx2"
        #endif
        XCTAssertTrue(config.kernelProblem?.contains("is not supported by this CPU (it runs: ") ?? false, "\(config.kernelProblem ?? "nil")")
        XCTAssertTrue(config.kernelProblem?.contains("reference") ?? false)
        #if arch(x86_64)
        XCTAssertTrue(config.kernelProblem?.contains("avx2") ?? false, "names the CPU's features: \(config.kernelProblem ?? "nil")")
        #endif
        XCTAssertThrowsError(try config.applyKernelChoice(file: "board.yaml")) { error in
            XCTAssertTrue("\(error)".contains("board.yaml: engine.kernels: "), "\(error)")
        }
    }

    /// engine.kernels decides the kernels a model then loads with, unless SOUNDLOC_KERNELS overrides it.
    func testKernelChoiceChangesTheKernelsUsed() throws {
        try XCTSkipIf(!(ProcessInfo.processInfo.environment["SOUNDLOC_KERNELS"] ?? "").isEmpty, "SOUNDLOC_KERNELS is set and wins")
        defer { try? Int8Kernels.setDefault(nil); _ = try? Int8Kernels.activate() }
        let best = Int8Kernels.supportedNames[0]
        var config = ApplianceConfig()
        config.engine.kernels = "reference"
        try config.applyKernelChoice(file: "board.yaml")
        XCTAssertEqual(try Int8Kernels.activate(), "reference")
        let shipped = Self.configs.deletingLastPathComponent().appendingPathComponent("Models/dsol-music-int8.safetensors").path
        let model = try DSOLModel(path: shipped, threads: 1)
        XCTAssertEqual(model.int8Kernel, "reference")
        config.engine.kernels = "auto"
        try config.applyKernelChoice(file: "board.yaml")
        XCTAssertEqual(try Int8Kernels.activate(), best)
        XCTAssertEqual(ApplianceConfig.kernelChoices, ["auto"] + Int8Kernels.names)
    }
}
