import Foundation
import XCTest

/// `soundloc inspect` and `soundloc infer` end to end on the engine's width-8 fixture model.
final class ModelCommandsTests: CLIDirectoryTestCase {
    let model = CLI.repositoryRoot.appendingPathComponent("Tests/SoundlocEngineTests/Fixtures/tiny/model.safetensors").path

    /// 16-bit mono WAV at 16 kHz: a 440 Hz tone with a little noise.
    func wav(seconds: Double) -> [UInt8] {
        let n = Int(seconds * 16000)
        var out = [UInt8]()
        func put32(_ v: Int) { for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> s)) } }
        func put16(_ v: Int) { out.append(UInt8(truncatingIfNeeded: v)); out.append(UInt8(truncatingIfNeeded: v >> 8)) }
        out += Array("RIFF".utf8); put32(36 + 2 * n); out += Array("WAVEfmt ".utf8); put32(16)
        put16(1); put16(1); put32(16000); put32(32000); put16(2); put16(16)
        out += Array("data".utf8); put32(2 * n)
        for i in 0..<n { put16(Int(8000 * sin(2 * Double.pi * 440 * Double(i) / 16000)) + (i * 7919 % 200) - 100) }
        return out
    }

    func ppm(width: Int, height: Int) -> [UInt8] {
        var px = [UInt8]()
        for y in 0..<height { for x in 0..<width { px += [UInt8(x * 255 / width), UInt8(y * 255 / height), 128] } }
        return Array("P6\n\(width) \(height)\n255\n".utf8) + px
    }

    func testEveryThreadsOptionTakesTheBoardConfigsRange() throws {
        // One range for --threads everywhere (the board config's engine.threads, 1...64), refused before any work.
        let missing = "/nonexistent/soundloc-test"
        for command in [["infer", "--model", model, "--image", missing, "--audio", missing], ["eval", "--model", model, "--data", missing],
                        ["quantize", "--model", model, "--calibration", missing, "--out", missing], ["demo"], ["bench", "pipeline"]] {
            for bad in ["0", "65"] {
                let r = try CLI.run(command + ["--threads", bad])
                XCTAssertNotEqual(r.status, 0, "\(command) --threads \(bad)")
                XCTAssertTrue(r.stderr.contains("--threads must be in 1...64, got \(bad)"), "\(command): \(r.stderr)")
            }
        }
        let list = try CLI.run(["bench", "engine", "--model", model, "--threads", "1,65"])
        XCTAssertTrue(list.stderr.contains("counts in 1...64"), list.stderr)
    }

    func testInspectReportsAnIntactModel() throws {
        let r = try CLI.run(["inspect", model])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        for phrase in ["classes (11): accordion, acoustic_guitar", "checksum: ok (sha256:", "tensors: ok", "parameters: 403241",
                       "width 8 (feature size D = 64)", "vision.layer4.1.conv2.weight", "[64, 64, 3, 3]"] {
            XCTAssertTrue(r.stdout.contains(phrase), "missing '\(phrase)' in:\n\(r.stdout)")
        }
    }

    func testInspectFlagsACorruptModel() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: model)))
        bytes[bytes.count - 5] ^= 0x40
        let path = try write("corrupt.safetensors", bytes)
        let r = try CLI.run(["inspect", path, "--no-tensors"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stdout.contains("checksum: FAILED"), r.stdout)
        XCTAssertTrue(r.stdout.contains("INVALID"), r.stdout)
        let truncated = try write("truncated.safetensors", Array(bytes.prefix(1000)))
        let t = try CLI.run(["inspect", truncated])
        XCTAssertNotEqual(t.status, 0)
        XCTAssertTrue(t.stdout.contains("INVALID"), t.stdout)
    }

    func testInferWritesMapsAndOverlay() throws {
        let image = try write("scene.ppm", ppm(width: 64, height: 48))
        let audio = try write("tone.wav", wav(seconds: 1.5))
        let maps = directory.appendingPathComponent("maps.npy").path
        let overlay = directory.appendingPathComponent("overlay.png").path
        let r = try CLI.run(["infer", "--model", model, "--image", image, "--audio", audio, "--maps-out", maps,
                             "--overlay", overlay, "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        for phrase in ["audio class distribution p_a:", "visual sounding distribution p_v:", "match score", "image: \(image) (64x48)",
                       "1.00 s used of 1.50 s"] {
            XCTAssertTrue(r.stdout.contains(phrase), "missing '\(phrase)' in:\n\(r.stdout)")
        }
        let npy = [UInt8](try Data(contentsOf: URL(fileURLWithPath: maps)))
        XCTAssertTrue(String(decoding: npy.prefix(128), as: UTF8.self).contains("(12, 14, 14)"))
        XCTAssertEqual(npy.count - (Int(npy[8]) | Int(npy[9]) << 8) - 10, 12 * 14 * 14 * 4)
        let png = [UInt8](try Data(contentsOf: URL(fileURLWithPath: overlay)))
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(Array(png[16..<24]), [0, 0, 0, 64, 0, 0, 0, 48], "overlay has the input's size")
    }

    func testInferRejectsBadInputsWithOneLine() throws {
        let audio = try write("tone.wav", wav(seconds: 1))
        let text = try write("notes.txt", Array("hello".utf8))
        var r = try CLI.run(["infer", "--model", model, "--image", text, "--audio", audio])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("not a PNG or binary PPM"), r.stderr)
        let image = try write("scene.ppm", ppm(width: 8, height: 8))
        r = try CLI.run(["infer", "--model", directory.appendingPathComponent("none.safetensors").path, "--image", image, "--audio", audio])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("cannot open model file"), r.stderr)
    }
}
