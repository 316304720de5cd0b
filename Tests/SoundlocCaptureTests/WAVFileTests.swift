import Foundation
import SoundlocCapture
import SoundlocTestSupport
import XCTest

/// WAV decoding: the formats soundloc reads, and one clear error for each kind of bad file.
final class WAVFileTests: XCTestCase {
    /// Builds a WAV file image with the given header fields and raw data bytes.
    static func wav(format: Int = 1, channels: Int = 1, rate: Int = 16000, bits: Int = 16, data: [UInt8],
                    declaredDataSize: Int? = nil, extensible: Bool = false) -> [UInt8] {
        var out = [UInt8]()
        func put32(_ v: Int) { for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> s)) } }
        func put16(_ v: Int) { out.append(UInt8(truncatingIfNeeded: v)); out.append(UInt8(truncatingIfNeeded: v >> 8)) }
        let blockAlign = channels * bits / 8
        let fmtSize = extensible ? 40 : 16
        out += Array("RIFF".utf8); put32(4 + 8 + fmtSize + 8 + data.count); out += Array("WAVE".utf8)
        out += Array("fmt ".utf8); put32(fmtSize)
        put16(extensible ? 0xFFFE : format); put16(channels); put32(rate); put32(rate * blockAlign); put16(blockAlign); put16(bits)
        if extensible {
            put16(22); put16(bits); put32(0)
            put16(format); out += [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]
        }
        out += Array("data".utf8); put32(declaredDataSize ?? data.count); out += data
        return out
    }

    static func pcm16(_ values: [Int16]) -> [UInt8] { values.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] } }
    static func float32(_ values: [Float]) -> [UInt8] { values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> ($0 * 8)) } } }

    func parse(_ bytes: [UInt8]) throws -> WAVFile { try WAVFile.parse(bytes, path: "x.wav") }

    func assertRejects(_ bytes: [UInt8], mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(bytes), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertFalse(message.contains("\n"), "one line: \(message)", file: file, line: line)
            XCTAssertTrue(message.hasPrefix("x.wav: "), message, file: file, line: line)
            for word in words { XCTAssertTrue(message.contains(word), "'\(word)' missing from: \(message)", file: file, line: line) }
        }
    }

    func testReadsMono16BitPCM() throws {
        let file = try parse(Self.wav(data: Self.pcm16([0, 16384, -32768, 32767])))
        XCTAssertEqual(file.samples, [0, 0.5, -1, 32767.0 / 32768])
        XCTAssertEqual(file.sampleRate, 16000)
        XCTAssertEqual(file.encoding, "16-bit PCM")
    }

    func testDownmixesStereoByAveraging() throws {
        let file = try parse(Self.wav(channels: 2, data: Self.pcm16([16384, 0, -16384, -16384])))
        XCTAssertEqual(file.samples, [0.25, -0.5])
        XCTAssertEqual(file.channels, 2)
    }

    func testReadsFloatAndExtensibleHeaders() throws {
        XCTAssertEqual(try parse(Self.wav(format: 3, bits: 32, data: Self.float32([0.25, -0.75]))).samples, [0.25, -0.75])
        XCTAssertEqual(try parse(Self.wav(format: 3, bits: 32, data: Self.float32([0.5]), extensible: true)).samples, [0.5])
        XCTAssertEqual(try parse(Self.wav(channels: 4, data: Self.pcm16([4096, 4096, 4096, 4096]), extensible: true)).samples, [0.125])
    }

    func testSkipsUnknownChunksAndOddPadding() throws {
        var bytes = Self.wav(data: Self.pcm16([100]))
        // Insert an odd-sized LIST chunk (with its pad byte) between fmt and data.
        let dataAt = bytes.count - 8 - 2
        bytes.insert(contentsOf: Array("LIST".utf8) + [3, 0, 0, 0, 1, 2, 3, 0], at: dataAt)
        XCTAssertEqual(try parse(bytes).samples, [100.0 / 32768])
    }

    func testRejectsTruncatedHeader() {
        assertRejects(Array(Self.wav(data: Self.pcm16([1, 2])).prefix(8)), mentioning: ["too short"])
        assertRejects(Array(Self.wav(data: Self.pcm16([1, 2])).prefix(30)), mentioning: ["'fmt '", "truncated"])
        assertRejects(Array(Self.wav(data: Self.pcm16([1, 2])).prefix(36)), mentioning: ["'data'"])
    }

    func testRejectsDataChunkLongerThanFile() {
        assertRejects(Self.wav(data: Self.pcm16([1, 2, 3]), declaredDataSize: 64000), mentioning: ["64000", "truncated"])
    }

    func testRejectsUnsupportedSampleWidths() {
        assertRejects(Self.wav(bits: 8, data: [1, 2, 3, 4]), mentioning: ["8-bit PCM", "sox"])
        assertRejects(Self.wav(bits: 24, data: [1, 2, 3, 4, 5, 6]), mentioning: ["24-bit PCM"])
        assertRejects(Self.wav(format: 0x55, bits: 16, data: [1, 2]), mentioning: ["format tag 0x55"])
    }

    func testRejectsZeroSamples() {
        assertRejects(Self.wav(data: []), mentioning: ["no samples"])
    }

    func testRejectsTextFile() {
        assertRejects(Array("This is not audio at all, just words.\n".utf8), mentioning: ["RIFF"])
    }

    func testRejectsAbsurdChannelCounts() {
        assertRejects(Self.wav(channels: 0, data: Self.pcm16([1, 2])), mentioning: ["0 channels"])
        assertRejects(Self.wav(channels: 4000, data: Self.pcm16([1, 2])), mentioning: ["4000 channels"])
    }

    func testRequiredRateNamesTheConversion() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-44k-\(getpid()).wav").path
        try Data(Self.wav(rate: 44100, data: Self.pcm16([1, 2]))).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try WAVFile.read(path: path, requiring: 16000)) { error in
            XCTAssertTrue("\(error)".contains("44100 Hz"))
            XCTAssertTrue("\(error)".contains("-r 16000"))
        }
        XCTAssertThrowsError(try WAVFile.read(path: "/nonexistent/soundloc.wav")) { XCTAssertTrue("\($0)".contains("no such file")) }
    }

    func testFIFOAndDirectoryAreRefusedNotWaitedOn() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-fifo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let fifo = directory.appendingPathComponent("clip.wav").path
        try makeFIFO(fifo)
        // Opening a FIFO nobody writes to blocks forever; the guard turns that hang into a failure.
        let outcome = runWithHangGuard(unblock: { unblockFIFO(fifo) }) { _ = try WAVFileSource(path: fifo) }
        XCTAssertEqual(outcome.error as? AudioSourceError,
                       .invalidFile(path: fifo, reason: "is a FIFO (named pipe), not a regular file"), "\(outcome)")
        XCTAssertThrowsError(try WAVFile.read(path: directory.path)) {
            XCTAssertEqual($0 as? AudioSourceError, .invalidFile(path: directory.path, reason: "is a directory"))
        }
    }

    func testFloatSamplesMustBeFiniteAndNearFullScale() throws {
        // Overs of a few dB are real audio and pass.
        XCTAssertEqual(try parse(Self.wav(format: 3, bits: 32, data: Self.float32([0.5, 1.5, -4]))).samples, [0.5, 1.5, -4])
        let cases: [(Float, String)] = [(.nan, "is NaN"), (.infinity, "is +infinity"), (-.infinity, "is -infinity"),
                                        (1e20, "is 1e+20, beyond ±32 (+30 dBFS)"), (-33, "is -33, beyond ±32")]
        for (bad, phrase) in cases {
            let samples: [Float] = [0.1, 0.2, 0.3, bad, 0.5]
            XCTAssertThrowsError(try parse(Self.wav(format: 3, bits: 32, data: Self.float32(samples)))) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("x.wav: not a usable WAV file: sample 3 (0.000 s) \(phrase)"), message)
                XCTAssertTrue(message.contains("32-bit float WAV must hold finite samples"), message)
            }
        }
        // 64-bit float, and a bad value in the second channel of a stereo file (no downmix hides it).
        let doubles = [0.25, Double.nan].flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v.bitPattern >> ($0 * 8)) } }
        XCTAssertThrowsError(try parse(Self.wav(format: 3, bits: 64, data: doubles))) {
            XCTAssertTrue("\($0)".contains("sample 1 (0.000 s) is NaN; a 64-bit float WAV"), "\($0)")
        }
        let stereo = Self.float32([0.1, 0.1, 0.2, .infinity] + [Float](repeating: 0, count: 32000))
        XCTAssertThrowsError(try parse(Self.wav(format: 3, channels: 2, bits: 32, data: stereo))) {
            XCTAssertTrue("\($0)".contains("sample 1 channel 1 (0.000 s) is +infinity"), "\($0)")
        }
        let late = Self.float32([Float](repeating: 0, count: 24000) + [.nan])
        XCTAssertThrowsError(try parse(Self.wav(format: 3, bits: 32, data: late))) {
            XCTAssertTrue("\($0)".contains("sample 24000 (1.500 s) is NaN"), "\($0)")
        }
    }

    func testChunkIdsAreQuotedWithoutTheirControlCharacters() throws {
        // A chunk whose id is ESC [ 2 J (clear screen) and whose size runs past the end of the file.
        var bytes = Self.wav(data: Self.pcm16([1, 2]))
        let evil: [UInt8] = [0x1b, 0x5b, 0x32, 0x4a]
        bytes.insert(contentsOf: evil + [0xff, 0xff, 0, 0], at: 12)
        XCTAssertThrowsError(try parse(bytes)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("'\\u{1b}[2J' chunk declares 65535 bytes"), message)
            XCTAssertFalse(message.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) }, message)
        }
    }

    func testEncodeThenParseRoundTrips() throws {
        let samples: [Float] = [0, 0.5, -0.5, 0.999, -1]
        let back = try parse(WAVFile.encodePCM16(samples, sampleRate: 16000))
        for (a, b) in zip(samples, back.samples) { XCTAssertEqual(a, b, accuracy: 1 / 32768) }
    }

    func testFileSourceDeliversContiguousBlocks() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-src-\(getpid()).wav").path
        try Data(WAVFile.encodePCM16((0..<1000).map { Float($0) / 2000 }, sampleRate: 16000)).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let source = try WAVFileSource(path: path)
        var next: Int64 = 0
        while let block = try source.read(maxFrames: 300) {
            XCTAssertEqual(block.firstSampleIndex, next)
            XCTAssertNil(block.captureTimeNanos)
            next += Int64(block.samples.count)
        }
        XCTAssertEqual(next, 1000)
        source.close()
        XCTAssertThrowsError(try source.read(maxFrames: 1))
    }
}
