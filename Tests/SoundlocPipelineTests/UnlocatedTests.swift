import Foundation
import SoundlocOutput
import SoundlocPipeline
import XCTest

/// Why a class the audio network hears is not reported as sounding: each reason the interpreter gives, on a 2×2 map.
final class UnlocatedTests: XCTestCase {
    static let classes = ["violin", "flute", "cello"]
    /// Object maps m: violin strong in the left column, flute in the right, cello nowhere (not in view).
    static let m: [Float] = [4, -4, 4, -4, /* flute */ -4, 4, -4, 4, /* cello */ -4, -4, -4, -4]

    func interpret(l: [Float], pA: [Float], silence: Bool = false) -> FrameInterpretation {
        let k = Self.classes.count, cells = 4
        let s = (0..<(k * cells)).map { Self.m[$0] * l[$0 % cells] }
        var maps = [Float](repeating: 0, count: k * cells)
        for cell in 0..<cells {
            let e = (0..<k).map { exp(3 * s[$0 * cells + cell]) }
            let total = e.reduce(0, +)
            for c in 0..<k { maps[c * cells + cell] = e[c] / total }
        }
        return s.withUnsafeBufferPointer { s in l.withUnsafeBufferPointer { l in maps.withUnsafeBufferPointer { maps in
            pA.withUnsafeBufferPointer { pA in
                SoundingInterpreter().interpret(classes: Self.classes, height: 2, width: 2, s: s, l: l, classMaps: maps,
                                                audioProbabilities: pA, silence: silence)
            } } } }
    }

    func reasons(_ result: FrameInterpretation) -> [String] {
        result.unlocated.map { "\($0.className) \($0.reason.rawValue) \(String(format: "%.2f", $0.value)) < \($0.threshold)" }
    }

    func testNoSoundingAreaNamesEveryHeardClassStrongestFirst() {
        let result = interpret(l: [0.2, 0.1, 0.3, 0.1], pA: [0.3, 0.6, 0.1])
        XCTAssertTrue(result.sounding.isEmpty)
        XCTAssertEqual(reasons(result), ["flute no_sounding_area 0.30 < 0.5", "violin no_sounding_area 0.30 < 0.5",
                                         "cello no_sounding_area 0.30 < 0.5"])
    }

    func testNotInViewAndQuietWhereSeen() {
        // Sound on the left (violin's place); flute is seen on the right, where l is low; cello is nowhere.
        let result = interpret(l: [0.9, 0.1, 0.8, 0.1], pA: [0.5, 0.3, 0.2])
        XCTAssertEqual(result.sounding.map(\.className), ["violin"])
        XCTAssertEqual(reasons(result), ["flute quiet_where_seen 0.10 < 0.5", "cello not_in_view 0.00 < 0.5"])
    }

    func testWeakClassMapWhereItSounds() {
        // With l almost 0 on the right, flute is plainly visible (m) but its class map there is near uniform.
        let result = interpret(l: [0.9, 0.01, 0.8, 0.01], pA: [0.5, 0.4, 0.05])
        XCTAssertEqual(result.sounding.map(\.className), ["violin"])
        XCTAssertEqual(result.unlocated.map(\.className), ["flute"], "cello is not heard (0.05 < 0.1): not listed")
        XCTAssertEqual(result.unlocated.first?.reason, .weakClassMap)
        XCTAssertEqual(result.unlocated.first?.value ?? 0, 0.39, accuracy: 0.01)
    }

    func testSilenceHearsNothing() {
        XCTAssertEqual(interpret(l: [0.9, 0.1, 0.8, 0.1], pA: [0.5, 0.3, 0.2], silence: true).unlocated, [])
    }
}
