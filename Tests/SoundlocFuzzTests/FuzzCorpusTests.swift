import Foundation
import SoundlocFuzz
import XCTest

/// The fuzz targets on every CI run, in a plain build: each committed seed (Tests/Fuzz/<target>/) through its
/// parser with the outcome its name promises (ok-*: accepted, bad-* and crash-*: refused), then a few thousand
/// seeded mutations of them (Tools/fuzz.sh runs the long, coverage-guided campaigns). A trap fails the run.
final class FuzzCorpusTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    /// Mutations per target: enough to leave the seeds' paths, few enough for seconds of CI.
    static let mutations = 3000

    struct Seed {
        var name: String
        var bytes: [UInt8]
    }

    static func corpus(_ target: FuzzTarget) throws -> [Seed] {
        let folder = root.appendingPathComponent(target.rawValue)
        return try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted().map { name in
            Seed(name: name, bytes: [UInt8](try Data(contentsOf: folder.appendingPathComponent(name))))
        }
    }

    static func dictionary(_ target: FuzzTarget) -> [[UInt8]] {
        let url = root.appendingPathComponent("\(target.rawValue).dict")
        return (try? String(contentsOf: url, encoding: .utf8)).map(readFuzzDictionary) ?? []
    }

    func exercise(_ target: FuzzTarget, mutations: Int = FuzzCorpusTests.mutations) throws {
        let seeds = try Self.corpus(target)
        XCTAssertTrue(seeds.contains { $0.name.hasPrefix("ok-") }, "\(target): no valid seed")
        for seed in seeds {
            let outcome = target.run(seed.bytes)
            if seed.name.hasPrefix("ok-") {
                XCTAssertEqual(outcome, .accepted, "\(target)/\(seed.name)")
            } else {
                XCTAssertFalse(outcome.isAccepted, "\(target)/\(seed.name) was accepted")
            }
        }
        var mutator = FuzzMutator(seed: 0x5EED_0000 + UInt64(FuzzTarget.allCases.firstIndex(of: target)!),
                                  dictionary: Self.dictionary(target))
        let inputs = seeds.map(\.bytes)
        var accepted = 0
        for i in 0..<mutations where target.run(mutator.mutate(inputs[i % inputs.count], others: inputs)).isAccepted {
            accepted += 1
        }
        // Not a target: the mutations must keep some inputs valid, or they only test the first check.
        XCTAssertGreaterThan(accepted, 0, "\(target): no mutated input was accepted")
    }

    func testWAV() throws { try exercise(.wav) }
    func testImage() throws { try exercise(.image) }
    func testY4M() throws { try exercise(.y4m) }
    func testSafeTensors() throws { try exercise(.safetensors) }
    func testConfig() throws { try exercise(.config) }
    func testCommand() throws { try exercise(.command) }
    func testWatch() throws { try exercise(.watch) }

    /// The mutator is what makes the corpus run reproducible: the same seed gives the same inputs.
    func testMutationsAreDeterministic() {
        var a = FuzzMutator(seed: 7, dictionary: [Array("WATCH".utf8)]), b = FuzzMutator(seed: 7, dictionary: [Array("WATCH".utf8)])
        let input = Array("{\"class\":\"POLL\",\"n\":12}".utf8)
        for _ in 0..<200 { XCTAssertEqual(a.mutate(input, others: [input]), b.mutate(input, others: [input])) }
    }

    func testDictionaryFormat() {
        let text = "# comment\nkw1=\"WATCH\"\n\"a\\x00\\\\\\\"b\"\n\n  \"fmt \"\nnot a token\n"
        XCTAssertEqual(readFuzzDictionary(text), [Array("WATCH".utf8), [0x61, 0x00, 0x5C, 0x22, 0x62], Array("fmt ".utf8)])
    }
}
