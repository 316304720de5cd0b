import Foundation
import SoundlocTestSupport
import XCTest
@testable import SoundlocDSOL
@testable import SoundlocEngine

/// Each defect is made from the tiny fixture's bytes; loading must fail with an error naming the tensor.
final class ModelFileTests: XCTestCase {
    private var dir: URL!
    private var pristine: EditableSafeTensors!
    private let victim = "vision.layer2.0.conv1.weight"

    override func setUpWithError() throws {
        let fixture = try tinyFixtureDirectory().appendingPathComponent("model.safetensors")
        pristine = try EditableSafeTensors(contentsOf: fixture)
        dir = try scratchDirectory(name)
    }

    override func tearDown() {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    /// Loads `bytes` as a model and returns the error it must raise.
    private func loadError(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> ModelFileError? {
        let url = dir.appendingPathComponent("m\(UInt32.random(in: 0...UInt32.max)).safetensors")
        XCTAssertNoThrow(try Data(bytes).write(to: url), file: file, line: line)
        do {
            _ = try DSOLModel(path: url.path)
            XCTFail("defective file loaded", file: file, line: line)
            return nil
        } catch let e as ModelFileError {
            XCTAssertFalse(e.description.contains("\n"), "one-line description", file: file, line: line)
            return e
        } catch {
            XCTFail("unexpected error type \(error)", file: file, line: line)
            return nil
        }
    }

    private func assertNames(_ e: ModelFileError?, _ tensor: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(e?.tensor, tensor, "\(e.map(String.init(describing:)) ?? "no error")", file: file, line: line)
        XCTAssertTrue(e?.description.contains("'\(tensor)'") ?? false, "description names the tensor", file: file, line: line)
    }

    func testPristineFixtureLoads() throws {
        // Re-serialising must not change validity (the editor itself is sound).
        let url = dir.appendingPathComponent("ok.safetensors")
        try pristine.write(to: url)
        let model = try DSOLModel(path: url.path)
        XCTAssertEqual(model.classes.count, 11)
        XCTAssertEqual(model.metadata.width, 8)
    }

    func testTruncatedFile() throws {
        let bytes = try pristine.bytes()
        let last = pristine.namesByOffset.last!
        let e = loadError(Array(bytes.dropLast(100)))
        guard case .offsetsOutOfRange = e else { return XCTFail("\(String(describing: e))") }
        assertNames(e, last)
        // Cut inside the header: the length field no longer fits.
        guard case .badHeaderLength = loadError(Array(bytes.prefix(200))) else { return XCTFail() }
        guard case .tooSmall = loadError(Array(bytes.prefix(5))) else { return XCTFail() }
    }

    func testWrongHeaderLength() throws {
        var bytes = try pristine.bytes()
        let n = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        func withLength(_ v: UInt64) -> [UInt8] {
            withUnsafeBytes(of: v.littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
            return bytes
        }
        guard case .badHeaderLength = loadError(withLength(UInt64(bytes.count))) else { return XCTFail() }
        guard case .badHeaderLength = loadError(withLength(UInt64.max)) else { return XCTFail() }
        guard case .malformedHeader = loadError(withLength(n - 9)) else { return XCTFail("short length cuts the JSON") }
        guard case .malformedHeader = loadError(withLength(n + 16)) else { return XCTFail("long length swallows data") }
    }

    func testOffsetsOutOfRange() throws {
        var f = pristine!
        let (b, e) = f.offsets(victim)
        f.set(victim, "data_offsets", [b + f.data.count, e + f.data.count])
        let err = loadError(try f.bytes())
        guard case .offsetsOutOfRange = err else { return XCTFail("\(String(describing: err))") }
        assertNames(err, victim)
    }

    func testOverlappingOffsets() throws {
        var f = pristine!
        let (b, e) = f.offsets(victim)
        f.set(victim, "data_offsets", [b - 4, e - 4])
        let err = loadError(try f.bytes())
        guard case .overlappingOffsets = err else { return XCTFail("\(String(describing: err))") }
        assertNames(err, victim)
    }

    func testGapBetweenTensors() throws {
        var f = pristine!
        // Move the last tensor 8 bytes on, leaving 8 unexplained bytes before it.
        let last = f.namesByOffset.last!
        let (b, e) = f.offsets(last)
        f.data += [UInt8](repeating: 0, count: 8)
        f.data.replaceSubrange((b + 8)..<(e + 8), with: Array(f.data[b..<e]))
        f.set(last, "data_offsets", [b + 8, e + 8])
        let err = loadError(try f.bytes())
        guard case .gapInData = err else { return XCTFail("\(String(describing: err))") }
        assertNames(err, last)
    }

    func testWrongAndUnknownDType() throws {
        var f = pristine!
        f.set(victim, "dtype", "I32")
        var err = loadError(try f.bytes())
        guard case .wrongDType(_, "F32", "I32") = err else { return XCTFail("\(String(describing: err))") }
        assertNames(err, victim)
        f.set(victim, "dtype", "Q4")
        err = loadError(try f.bytes())
        guard case .unknownDType = err else { return XCTFail("\(String(describing: err))") }
        assertNames(err, victim)
        f.set(victim, "dtype", "F16")
        err = loadError(try f.bytes())
        guard case .byteCountMismatch = err else { return XCTFail("\(String(describing: err))") }
        assertNames(err, victim)
    }

    func testMissingTensor() throws {
        var f = pristine!
        f.remove(victim)
        let err = loadError(try f.bytes())
        guard case .missingTensor = err else { return XCTFail("\(String(describing: err))") }
        assertNames(err, victim)
        var g = pristine!
        g.remove("dsol.affine")
        assertNames(loadError(try g.bytes()), "dsol.affine")
    }

    func testUnexpectedTensor() throws {
        var f = pristine!
        f.append("vision.fc.weight", dtype: "F32", shape: [2], bytes: [UInt8](repeating: 0, count: 8))
        let err = loadError(try f.bytes())
        guard case .unexpectedTensor = err else { return XCTFail("\(String(describing: err))") }
        assertNames(err, "vision.fc.weight")
    }

    func testWrongShape() throws {
        var f = pristine!
        // Same element count, transposed shape: only the format check can catch it.
        let shape = f.entry(victim)["shape"] as! [Any]
        f.set(victim, "shape", [shape[1], shape[0], shape[2], shape[3]])
        let err = loadError(try f.bytes())
        guard case .wrongShape = err else { return XCTFail("\(String(describing: err))") }
        assertNames(err, victim)
        // A width metadata that disagrees with every tensor.
        var g = pristine!
        g.metadata["width"] = "16"
        guard case .wrongShape = loadError(try g.bytes()) else { return XCTFail() }
        // Element count that does not match the byte range.
        var h = pristine!
        h.set(victim, "shape", [1, 2, 3])
        let e3 = loadError(try h.bytes())
        guard case .byteCountMismatch = e3 else { return XCTFail("\(String(describing: e3))") }
        assertNames(e3, victim)
    }

    func testNonFiniteWeights() throws {
        for (value, name) in [(Float.nan, victim), (Float.infinity, "loc.scale"), (-Float.infinity, "audio.conv1.bias")] {
            var f = pristine!
            f.setFloat(name, index: 0, value)
            let err = loadError(try f.bytes())
            guard case .nonFinite(_, 0, _) = err else { return XCTFail("\(String(describing: err))") }
            assertNames(err, name)
        }
    }

    func testFiniteButHugeWeightsAreRefusedBeforeAnyConversion() throws {
        // Finite values that would overflow activations to infinity (and trap a later Float→Int conversion).
        for (value, name) in [(Float(1e30), victim), (-Float.greatestFiniteMagnitude, "loc.scale"), (Float(1.5e6), "dsol.affine")] {
            var f = pristine!
            f.setFloat(name, index: 0, value)
            let err = loadError(try f.bytes())
            guard case let .implausibleValue(tensor, 0, stored, limit)? = err else { XCTFail("\(String(describing: err))"); continue }
            XCTAssertEqual(tensor, name)
            XCTAssertEqual(stored, value)
            XCTAssertEqual(limit, 1e6)
            XCTAssertTrue(err!.description.contains("beyond ±1000000.0"), err!.description)
        }
        // The quantiser reads the same file through the same check: refused, not calibrated into a trap.
        var f = pristine!
        f.setFloat(victim, index: 3, 3e37)
        let url = dir.appendingPathComponent("huge.safetensors")
        try f.write(to: url)
        XCTAssertThrowsError(try DSOLQuantizer.quantize(modelPath: url.path, method: .minmax, count: 1, calibrationData: "",
                                                        sample: { _ in DSOLQuantizer.Sample(image: [], audio: []) })) {
            XCTAssertEqual($0 as? ModelFileError, .implausibleValue(tensor: victim, index: 3, value: 3e37, limit: 1e6))
        }
    }

    func testAbsurdMetadataNumbersAreRefusedBeforeTheySizeAnything() throws {
        let audio = { (change: String) -> String in
            var fields = ["\"sample_rate\": 16000", "\"n_fft\": 160", "\"hop\": 80", "\"n_mels\": 64", "\"fmax\": 8000",
                          "\"top_db\": 80", "\"frames\": 201"]
            let key = change.split(separator: ":")[0]
            fields.removeAll { $0.hasPrefix(key) }
            return "{" + (fields + [change]).joined(separator: ", ") + "}"
        }
        let cases: [(String, String, String)] = [
            ("width", "9223372036854775807", "outside 1...128"),        // 8·width would overflow
            ("width", "1000000000000", "outside 1...128"),
            ("width", "99999999999999999999999", "not a positive integer"),  // does not fit an Int
            ("width", "0", "not a positive integer"),
            ("embed_dim", "4611686018427387904", "outside 1...4096"),
            ("num_classes", "1000000", "outside 1...1000"),
            ("image_size", "100000", "outside 32...1024"),
            ("image_size", "16", "outside 32...1024"),
            ("image_mean", "[1e30, 0, 0]", "values must lie in -1000.0...1000.0"),
            ("image_std", "[3e38, 1, 1]", "values must lie in"),
            ("audio_features", audio("\"frames\": 1e300"), "'frames' 1e+300 is outside 32.0...4096.0"),  // Int(1e300) traps
            ("audio_features", audio("\"hop\": 9.2e18"), "'hop'"),
            ("audio_features", audio("\"n_fft\": -160"), "'n_fft' missing or not a positive number"),
            ("audio_features", audio("\"sample_rate\": 1e12"), "'sample_rate'"),
            ("audio_features", audio("\"n_mels\": 100000"), "'n_mels' 100000.0 is outside 32.0...512.0"),
            ("audio_features", audio("\"fmax\": 1e9"), "'fmax'"),
            ("audio_features", audio("\"top_db\": 1e308"), "'top_db'"),
            ("audio_features", audio("\"frames\": true"), "'frames' missing or not a positive number"),
            ("cluster_to_class", "[0, 1e300]", "expected a JSON list of class indices below 11"),
            ("cluster_to_class", "[-1]", "expected a JSON list of class indices below 11"),
        ]
        for (key, value, phrase) in cases {
            var f = pristine!
            f.metadata[key] = value
            let err = loadError(try f.bytes())
            guard case let .badMetadata(k, reason)? = err else { XCTFail("\(key)=\(value): \(String(describing: err))"); continue }
            XCTAssertEqual(k, key)
            XCTAssertTrue(reason.contains(phrase), "\(key)=\(value): \(reason)")
        }
    }

    func testNegativeAndOverflowingSizesInTheHeaderAreRefused() throws {
        func entryError(_ key: String, _ value: Any) -> ModelFileError? {
            var f = pristine!
            f.set(victim, key, value)
            return loadError(try! f.bytes())
        }
        for shape in [[-1, 8, 3, 3], [1 << 62, 4, 1, 1], [3_000_000_000, 3_000_000_000, 3_000_000_000, 1]] as [[Int]] {
            let err = entryError("shape", shape)
            XCTAssertEqual(err?.tensor, victim, "\(shape): \(String(describing: err))")
        }
        for offsets in [[-8, 0], [0, -1], [10, 5]] as [[Int]] {
            guard case .malformedEntry(victim, _)? = entryError("data_offsets", offsets) else { return XCTFail("\(offsets)") }
        }
        guard case .malformedEntry(victim, _)? = entryError("data_offsets", [0, 1e300]) else { return XCTFail("1e300") }
        guard case .offsetsOutOfRange(victim, _, _, _)? = entryError("data_offsets", [0, 1 << 52]) else { return XCTFail("2^52") }
        // A header length field past the file, or past safetensors' 100 MB header limit.
        var bytes = try pristine.bytes()
        for length in [UInt64.max, 1 << 63, UInt64(bytes.count)] {
            withUnsafeBytes(of: length.littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
            guard case .badHeaderLength? = loadError(bytes) else { return XCTFail("\(length)") }
        }
    }

    func testChecksumMismatch() throws {
        var f = pristine!
        f.data[f.data.count / 2] ^= 0x01
        let err = loadError(try f.bytes(updateChecksum: false))
        guard case .checksumMismatch = err else { return XCTFail("\(String(describing: err))") }
        // verifyChecksum: false skips only the hash.
        let url = dir.appendingPathComponent("flipped.safetensors")
        try f.write(to: url, updateChecksum: false)
        XCTAssertNoThrow(try DSOLModel(path: url.path, verifyChecksum: false))
        var g = pristine!
        g.metadata["checksum"] = "md5:abc"
        guard case .badMetadata("checksum", _) = loadError(try g.bytes(updateChecksum: false)) else { return XCTFail() }
    }

    func testMissingAndMalformedMetadata() throws {
        for key in ["format", "width", "classes", "num_classes", "audio_features", "image_mean", "checksum"] {
            var f = pristine!
            f.metadata[key] = nil
            let err = loadError(try f.bytes(updateChecksum: key != "checksum"))
            XCTAssertEqual(err, .missingMetadata(key: key))
            XCTAssertTrue(err?.description.contains(key) ?? false)
        }
        let bad: [(String, String)] = [
            ("format", "other"), ("format_version", "2"), ("width", "eight"), ("width", "-8"),
            ("classes", "[\"a\", \"b\"]"), ("classes", "not json"), ("image_std", "[1, 0, 1]"),
            ("image_mean", "[0.5]"), ("audio_features", "{\"n_mels\": 64}"), ("precision", "fp8"),
            ("cluster_to_class", "[0, 99]"),
        ]
        for (key, value) in bad {
            var f = pristine!
            f.metadata[key] = value
            let err = loadError(try f.bytes())
            guard case .badMetadata(let k, _) = err else { XCTFail("\(key)=\(value): \(String(describing: err))"); continue }
            XCTAssertEqual(k, key)
        }
        // Non-string metadata values and a non-JSON header.
        var f = pristine!
        f.header["__metadata__"] = ["width": 8]
        guard case .badMetadata("width", _) = loadError(try f.bytes(updateChecksum: false)) else { return XCTFail() }
        var junk = try pristine.bytes()
        junk[8] = UInt8(ascii: "[")
        guard case .malformedHeader = loadError(junk) else { return XCTFail() }
    }

    func testMetadataQuotedInErrorsHasItsControlCharactersEscaped() throws {
        var f = pristine!
        f.metadata["precision"] = "\u{1b}]0;owned\u{07}\u{1b}[2J"
        let error = try XCTUnwrap(loadError(try f.bytes()))
        XCTAssertTrue(error.description.contains("'\\u{1b}]0;owned\\u{7}\\u{1b}[2J'"), error.description)
        XCTAssertFalse(error.description.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) })
    }

    func testInt8PrecisionIsRejectedByTheFp32Engine() throws {
        var f = pristine!
        f.metadata["precision"] = "int8"
        guard case .badMetadata("precision", _) = loadError(try f.bytes()) else { return XCTFail() }
    }

    func testFIFODirectoryAndDeviceAreRefusedNotWaitedOn() throws {
        let fifo = dir.appendingPathComponent("fifo.safetensors").path
        try makeFIFO(fifo)
        // open() on a FIFO nobody writes to never returns; the guard turns that hang into a failure.
        let outcome = runWithHangGuard(unblock: { unblockFIFO(fifo) }) { _ = try DSOLModel(path: fifo) }
        XCTAssertEqual(outcome.error as? ModelFileError, .cannotOpen(path: fifo, reason: "is a FIFO (named pipe), not a regular file"),
                       "\(outcome)")
        for (path, reason) in [(dir.path, "is a directory"), ("/dev/zero", "is a character device, not a regular file")] {
            XCTAssertThrowsError(try SafeTensorsFile(path: path)) {
                XCTAssertEqual($0 as? ModelFileError, .cannotOpen(path: path, reason: reason))
            }
        }
    }

    func testMissingFile() {
        XCTAssertThrowsError(try DSOLModel(path: "/nonexistent/model.safetensors")) { e in
            guard case ModelFileError.cannotOpen = e else { return XCTFail("\(e)") }
        }
    }
}
