import Foundation
import XCTest

/// `soundloc demo` end to end: the bundled clip through the real pipeline, the socket and the overlay picture
/// (with the engine's width-8 fixture model, so the test checks the plumbing, not what a trained model finds).
final class DemoCommandTests: XCTestCase {
    var directory: URL!
    let model = CLI.repositoryRoot.appendingPathComponent("Tests/SoundlocEngineTests/Fixtures/tiny/model.safetensors").path
    let clip = CLI.repositoryRoot.appendingPathComponent("Models/demo").path

    override func setUpWithError() throws { directory = try CLI.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func testDemoPlaysTheBundledClipThroughPipelineAndSocket() throws {
        let out = directory.appendingPathComponent("demo").path
        let r = try CLI.run(["demo", "--model", model, "--clip", clip, "--out", out, "--fast", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        for phrase in ["scene: violin, trumpet, acoustic_guitar, flute", "0.0- 3.0 s  heard: violin + flute",
                       "per part of the track", "heard silence → reported: nothing; silence gate 100%",
                       "wrote \(out)/overlay.png"] {
            XCTAssertTrue(r.stdout.contains(phrase), "missing '\(phrase)' in:\n\(r.stdout)")
        }
        // 10 s at 25 fps, every frame in --fast mode, minus the first second (no full audio window yet).
        XCTAssertTrue(r.stdout.contains("frames: 250 captured, 225 processed, 0 dropped, 25 before the first second"), r.stdout)
        // The demo's own socket client saw every processed frame, and kept each FRAME line.
        XCTAssertTrue(r.stdout.contains("socket: a client received 225 FRAME messages (of 225 processed)"), r.stdout)
        let lines = try String(contentsOfFile: "\(out)/frames.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 225)
        let sequences = try lines.map { line -> Int in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            XCTAssertEqual(object?["class"] as? String, "FRAME")
            return try XCTUnwrap(object?["seq"] as? Int)
        }
        XCTAssertEqual(sequences, sequences.sorted(), "frames arrive in order")
        XCTAssertEqual(Set(sequences).count, 225, "no frame twice")
        // The last second is silence: every frame there says so.
        let tail = try lines.suffix(20).map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertTrue(tail.allSatisfy { ($0?["silence"] as? Bool) == true && (($0?["sounding"] as? [Any])?.isEmpty ?? false) })

        let png = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(out)/overlay.png")))
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }, height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
        XCTAssertEqual(width, 6 + 12 * (112 + 6), "one column for the sounding area and one per class (11)")
        XCTAssertEqual(height, 15 + 4 * (22 + 112 + 6) + 6, "one row per part of the track (4)")
    }

    func testDemoStopsCleanlyOnSignalsAndRemovesItsSocket() throws {
        for (number, name) in [(SIGTERM, "TERM"), (SIGINT, "INT"), (SIGHUP, "HUP")] {
            let out = directory.appendingPathComponent("demo-\(name)").path
            let socket = "\(out)/soundloc.sock"
            let child = try CLI.start(["demo", "--model", model, "--clip", clip, "--out", out, "--fast", "--threads", "1"])
            // Signal mid-run: once the socket exists and the demo's own client has logged a frame through it.
            let log = "\(out)/frames.jsonl"
            var midRun = false
            for _ in 0..<1200 where child.process.isRunning {
                if FileManager.default.fileExists(atPath: socket),
                   let text = try? String(contentsOfFile: log, encoding: .utf8), text.contains("\n") {
                    midRun = true
                    break
                }
                usleep(50_000)
            }
            XCTAssertTrue(midRun, "SIG\(name): the demo never got going")
            kill(child.process.processIdentifier, number)
            let r = child.finish(hangGuard: 120)
            XCTAssertEqual(child.process.terminationReason, .exit, "SIG\(name) killed the demo instead of stopping it")
            XCTAssertEqual(r.status, 0, "SIG\(name):\n" + r.stdout + r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: socket), "SIG\(name) left \(socket) behind")
            // It stopped early (the clip has 250 frames) and still reported what it did.
            let captured = r.stdout.range(of: #"frames: (\d+) captured"#, options: .regularExpression)
                .flatMap { Int(r.stdout[$0].split(separator: " ")[1]) }
            XCTAssertLessThan(try XCTUnwrap(captured, r.stdout), 250, "SIG\(name) did not stop the run")
        }
    }

    func testDemoNamesWhatIsMissing() throws {
        let noModel = try CLI.run(["demo", "--model", "/nonexistent/model.safetensors", "--out", directory.path])
        XCTAssertNotEqual(noModel.status, 0)
        XCTAssertTrue(noModel.stderr.contains("model file /nonexistent/model.safetensors not found"), noModel.stderr)

        let noClip = try CLI.run(["demo", "--model", model, "--clip", directory.path, "--out", directory.path])
        XCTAssertNotEqual(noClip.status, 0)
        XCTAssertTrue(noClip.stderr.contains("\(directory.path)/scene.png not found"), noClip.stderr)
    }
}
