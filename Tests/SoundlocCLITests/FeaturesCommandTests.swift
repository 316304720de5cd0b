import Foundation
import XCTest

/// `soundloc features` end to end: good input gives windows and a picture; bad input one error line and a failure code.
final class FeaturesCommandTests: CLIDirectoryTestCase {

    func header(channels: Int = 1, bits: Int = 16, dataSize: Int) -> [UInt8] {
        var out = [UInt8]()
        func put32(_ v: Int) { for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> s)) } }
        func put16(_ v: Int) { out.append(UInt8(truncatingIfNeeded: v)); out.append(UInt8(truncatingIfNeeded: v >> 8)) }
        out += Array("RIFF".utf8); put32(36 + dataSize); out += Array("WAVEfmt ".utf8); put32(16)
        put16(1); put16(channels); put32(16000); put32(16000 * channels * bits / 8); put16(channels * bits / 8); put16(bits)
        out += Array("data".utf8); put32(dataSize)
        return out
    }

    func testBadInputsGiveOneErrorLineAndFailure() throws {
        let cases: [(String, [UInt8], String)] = [
            ("truncated.wav", Array(header(dataSize: 4).prefix(20)), "truncated"),
            ("long-data.wav", header(dataSize: 32000) + [0, 0, 1, 0], "truncated?"),
            ("eight-bit.wav", header(bits: 8, dataSize: 4) + [1, 2, 3, 4], "8-bit PCM"),
            ("24-bit.wav", header(bits: 24, dataSize: 6) + [1, 2, 3, 4, 5, 6], "24-bit PCM"),
            ("empty.wav", header(dataSize: 0), "no samples"),
            ("text.wav", Array("hello, I am a text file\n".utf8), "RIFF"),
            ("channels.wav", header(channels: 300, dataSize: 600) + [UInt8](repeating: 0, count: 600), "300 channels"),
        ]
        for (name, bytes, phrase) in cases {
            let path = try write(name, bytes)
            let result = try CLI.run(["features", path, "--out", directory.appendingPathComponent("x.npy").path])
            XCTAssertNotEqual(result.status, 0, name)
            let lines = result.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(path) && result.stderr.contains(phrase), "\(name): \(result.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("x.npy").path))
        }
    }

    func testMissingFileIsAClearError() throws {
        let result = try CLI.run(["features", "/nonexistent/clip.wav"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("no such file"), result.stderr)
    }

    func testWritesWindowsAndPicture() throws {
        // 2.5 s of a tone: windows end at 1.0, 1.5, 2.0 and 2.5 s with a 0.5 s stride.
        let samples = (0..<40000).map { i -> Int16 in Int16(8000 * sin(Double(i) * 2 * .pi * 440 / 16000)) }
        let data = samples.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        let path = try write("tone.wav", header(dataSize: data.count) + data)
        let npy = directory.appendingPathComponent("w.npy").path, png = directory.appendingPathComponent("w.png").path
        let result = try CLI.run(["features", path, "--stride", "0.5", "--out", npy, "--png", png])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("4 window(s)"), result.stdout)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: npy)))
        XCTAssertEqual(bytes.count, 128 + 4 * 201 * 64 * 4)
        XCTAssertTrue(String(decoding: bytes[10..<128], as: UTF8.self).contains("'shape': (4, 201, 64)"))
        let picture = [UInt8](try Data(contentsOf: URL(fileURLWithPath: png)))
        XCTAssertEqual(Array(picture.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
    }
}
