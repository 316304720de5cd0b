import Foundation
import SoundlocCapture
import SoundlocDSOL
import SoundlocEngine
import SoundlocFuzz
import SoundlocPipeline
import XCTest

/// What fuzzing campaigns found (Tools/fuzz.sh), fixed at the root; each input that crashed is kept in the corpus as
/// Tests/Fuzz/<target>/crash-*, and the corpus test replays it on every run.
final class FuzzRegressionTests: XCTestCase {
    func corpusFile(_ target: FuzzTarget, _ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: FuzzCorpusTests.root.appendingPathComponent("\(target.rawValue)/\(name)")))
    }

    /// config, in the first minute: a mapping key that is itself a mapping (`? 9:`) trapped Yams's constructor, which
    /// force-unwraps every key as a string. The event walk now refuses any key that is not a scalar before Yams runs.
    func testConfigKeysMustBePlainNames() throws {
        let refusal = "refused: a key that is a list, a mapping or an alias"
        for (text, line) in [("? 9:\n", 1), ("? [a]\n: b\n", 1), ("{[a]: b}\n", 1), ("board: &x pi\n*x : c\n", 2),
                             ("!!set {? [a]}\n", 1), ("audio:\n  ? {pcm: x}\n  : y\n", 2)] {
            XCTAssertThrowsError(try ApplianceConfig.parse(text, file: "b.yaml"), text) { error in
                XCTAssertEqual("\(error)", "b.yaml: \(refusal) (line \(line)); a board config's keys are plain names")
            }
        }
        for name in ["crash-complex-key.yaml", "crash-complex-key-as-found.yaml"] {
            guard case let .refused(why) = FuzzTarget.config.run(try corpusFile(.config, name)) else { return XCTFail(name) }
            XCTAssertTrue(why.contains(refusal), "\(name): \(why)")
        }
        // Keys that are names, with anchors, aliases as values and merge keys, still load.
        let config = try ApplianceConfig.parse("board: &b pi\nmodel:\n  path: *b\naudio:\n  <<: {pcm: hw}\n", file: "b.yaml")
        XCTAssertEqual(config.model.path, "pi")
        XCTAssertEqual(config.audio.pcm, "hw")
    }

    /// image, while writing its target: 69 bytes of PNG claiming 8192×8192 RGBA made the decoder allocate 268 MB
    /// before inflating 100 bytes (Tools/fuzz.sh now stops at any single allocation of 256 MB). Deflate expands at most
    /// ~1032 times, so such a file is refused before the allocation; deflate's best real ratio still decodes.
    func testPNGWhoseDataCannotFillItsSizeIsRefusedBeforeAllocating() throws {
        let tiny = try corpusFile(.image, "bad-tiny-data-huge-picture.png")
        XCTAssertEqual(tiny.count, 69)
        XCTAssertThrowsError(try ImageFile.decode(tiny, path: "x.png")) { error in
            XCTAssertEqual("\(error)", "corrupt image: 12 bytes of PNG image data cannot inflate to 8192 rows of 32768 bytes")
        }
        let zeros = try ImageFile.decode(try corpusFile(.image, "ok-zeros-512-level-9.png"), path: "x.png")
        XCTAssertEqual(zeros.width, 512)
        XCTAssertEqual(zeros.pixels.count, 512 * 512 * 3)
    }

    /// safetensors, after 60 000 inputs: libFuzzer's 2 GB RSS limit, with 33 MB of live heap. Every model file refused
    /// after it was mapped (a bad header length, a header that does not parse) kept its mapping: Swift runs no deinit
    /// for an object whose init throws before all its stored properties are set, so the munmap there never ran, and
    /// each refusal pinned the file's pages. The mapping is now released on every path out of init.
    func testRefusedModelFilesAreUnmapped() throws {
        let refused = try corpusFile(.safetensors, "crash-leaked-mapping-oom.safetensors")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-unmapped-\(getpid()).safetensors").path
        for (name, bytes) in [("as found", refused), ("bad header length", Array(refused.prefix(200))),
                              ("not JSON", [8, 0, 0, 0, 0, 0, 0, 0] + Array("not json".utf8))] {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            for _ in 0..<3 {
                XCTAssertThrowsError(try SafeTensorsFile(path: path), name)
                XCTAssertThrowsError(try DSOLModel(path: path), name)
            }
            let maps = try String(contentsOfFile: "/proc/self/maps", encoding: .utf8)
            XCTAssertFalse(maps.contains(path), "\(name): the refused file is still mapped")
        }
        try? FileManager.default.removeItem(atPath: path)
    }
}

