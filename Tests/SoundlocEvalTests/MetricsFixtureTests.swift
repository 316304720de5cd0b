import Foundation
import XCTest
@testable import SoundlocEval

/// Every case of metrics_cases.json (written from Tools/dsol/metrics.py) within its tolerance.
final class MetricsFixtureTests: XCTestCase {
    static let cases: [String: JSONValue] = {
        guard let data = try? Data(contentsOf: Paths.metricsCases), let json = try? JSONValue.parse(data).object else {
            fatalError("cannot read \(Paths.metricsCases.path)")
        }
        return json
    }()

    var tolerance: Double { Self.cases["tolerance"]!.double! }

    func list(_ key: String) -> [JSONValue] { Self.cases[key]!.array! }

    static func doubles(_ v: JSONValue?) -> [Double] { v!.doubles! }
    static func ints(_ v: JSONValue?) -> [Int] { v!.array!.map { $0.int! } }
    static func optionalDouble(_ v: JSONValue?) -> Double? { v?.double }
    static func number(_ v: JSONValue?) -> Double { v!.double! }
    /// A (h, w) nested list, flattened row-major.
    static func map(_ v: JSONValue?) -> (values: [Double], height: Int, width: Int) {
        let rows = v!.array!.map { $0.doubles! }
        return (rows.flatMap { $0 }, rows.count, rows.first?.count ?? 0)
    }
    static func boxes(_ v: JSONValue?) -> [Box] { v!.array!.map { Box($0.doubles!)! } }
    static func objects(_ v: JSONValue?) -> [SceneObject] {
        v!.array!.map { SceneObject(classId: $0["class_id"]!.int!, box: Box($0["box"]!.doubles!)!, sounding: $0["sounding"]?.bool ?? true) }
    }

    func testThresholdsAreTheIEEEDoubleValues() {
        let expected = Self.doubles(Self.cases["thresholds"])
        XCTAssertEqual(Metrics.thresholds.count, expected.count)
        for (a, b) in zip(Metrics.thresholds, expected) { XCTAssertEqual(a.bitPattern, b.bitPattern, "\(a) vs \(b)") }
        XCTAssertEqual(Metrics.thresholds[Metrics.ciou30Index], 0.30000000000000004)
        XCTAssertEqual(Metrics.thresholds[Metrics.iou50Index], 0.5)
    }

    func testUpsampleRows() {
        let cases = list("upsample")
        XCTAssertEqual(cases.count, 2)
        for c in cases {
            let (m, h, w) = Self.map(c["map"])
            let up = Metrics.upsample(m, height: h, width: w)
            XCTAssertEqual(up.count, 224 * 224)
            let rows = c["rows"]!.object!
            XCTAssertFalse(rows.isEmpty)
            for (r, values) in rows {
                let row = Int(r)!, expected = Self.doubles(values)
                XCTAssertEqual(expected.count, 224)
                for (p, e) in expected.enumerated() {
                    assertClose(up[row * 224 + p], e, tolerance, "\(c["name"]!.string!) row \(row) col \(p)")
                }
            }
        }
    }

    func testBoxRasterisation() {
        let cases = list("boxes")
        XCTAssertEqual(cases.count, 5)
        for c in cases {
            let box = Box(Self.doubles(c["box"]))!
            let g = Metrics.boxMask([box])
            let rows = Self.ints(c["rows"]), cols = Self.ints(c["cols"])
            for y in 0..<224 {
                for x in 0..<224 {
                    let inside = (rows[0]..<rows[1]).contains(y) && (cols[0]..<cols[1]).contains(x)
                    if g[y * 224 + x] != inside { return XCTFail("box \(box.values): pixel (\(y), \(x)) is \(g[y * 224 + x])") }
                }
            }
        }
    }

    func testIoUCases() {
        let cases = list("iou")
        XCTAssertEqual(cases.count, 13)
        for c in cases {
            let (m, h, w) = Self.map(c["map"])
            let got = Metrics.relativeIoU(m, height: h, width: w, boxes: Self.boxes(c["boxes"]),
                                          fraction: Self.number(c["fraction"]))
            assertClose(got, Self.optionalDouble(c["expected"]), tolerance, c["name"]!.string!)
        }
    }

    func testCocktailCases() {
        let cases = list("cocktail")
        XCTAssertEqual(cases.count, 6)
        for c in cases {
            let name = c["name"]!.string!
            let maps = c["maps"]!.array!.map { Self.map($0) }
            let score = Metrics.cocktailImage(maps.map(\.values), height: maps[0].height, width: maps[0].width,
                                              objects: Self.objects(c["objects"]), clusterToClass: Self.ints(c["cluster_to_class"]),
                                              numClasses: c["num_classes"]!.int!,
                                              fraction: Self.number(c["fraction"]))
            let expected = c["expected"]!
            assertClose(score.ciou, Self.optionalDouble(expected["ciou"]), tolerance, "\(name) ciou")
            assertClose(score.nsa, Self.optionalDouble(expected["nsa"]), tolerance, "\(name) nsa")
            assertClose(score.nsaVisible, Self.optionalDouble(expected["nsa_visible"]), tolerance, "\(name) nsa_visible")
            let perClass = expected["per_class"]!.object!
            XCTAssertEqual(score.perClass.map(\.classId), perClass.keys.map { Int($0)! }.sorted(), name)
            for cs in score.perClass {
                assertClose(cs.iou, Self.optionalDouble(perClass["\(cs.classId)"]), tolerance, "\(name) class \(cs.classId)")
            }
        }
    }

    func testCurves() {
        let cases = list("curves")
        XCTAssertEqual(cases.count, 3)
        for c in cases {
            let name = c["name"]!.string!
            let scores = c["scores"]!.array!.map(\.double)
            let expected = c["expected"]!
            let curve = Metrics.successCurve(scores)
            let want = Self.doubles(expected["success"])
            XCTAssertEqual(curve.count, want.count)
            for (i, (a, b)) in zip(curve, want).enumerated() { assertClose(a, b, tolerance, "\(name) success[\(i)]") }
            assertClose(curve[Metrics.iou50Index], Self.optionalDouble(expected["iou@0.5"]), tolerance, "\(name) iou@0.5")
            assertClose(curve[Metrics.ciou30Index], Self.optionalDouble(expected["ciou@0.3"]), tolerance, "\(name) ciou@0.3")
            assertClose(Metrics.auc(curve), Self.optionalDouble(expected["auc"]), tolerance, "\(name) auc")
            let solo = Metrics.summarizeSolo(scores), cocktail = Metrics.summarizeCocktail(scores)
            assertClose(solo.iou50, Self.optionalDouble(expected["iou@0.5"]), tolerance, "\(name) summary iou@0.5")
            assertClose(cocktail.ciou30, Self.optionalDouble(expected["ciou@0.3"]), tolerance, "\(name) summary ciou@0.3")
            XCTAssertEqual(solo.n, scores.compactMap { $0 }.count)
        }
    }

    func testHungarian() {
        let cases = list("hungarian")
        XCTAssertEqual(cases.count, 3)
        for c in cases {
            let got = Metrics.hungarianClusterToClass(
                clusterIds: Self.ints(c["cluster_ids"]), classIds: Self.ints(c["class_ids"]),
                nClusters: c["n_clusters"]!.int!, nClasses: c["n_classes"]!.int!)
            XCTAssertEqual(got, Self.ints(c["expected"]), "\(c)")
        }
    }
}
