import Foundation
import SoundlocTestSupport
import XCTest
@testable import SoundlocEval

/// Swift vs Tools/dsol/metrics.py on the same random maps, boxes, scores and co-occurrences:
/// this test writes them to a JSON file, runs python3 on it and compares the answers to 1e-6.
final class PythonCrossCheckTests: XCTestCase {
    static let tolerance = 1e-6

    static let script = #"""
    import json, sys
    import numpy as np
    from dsol import metrics as M

    cases = json.load(open(sys.argv[1]))
    def objs(os_):
        return [{"class_id": o["class_id"], "box": o["box"], "sounding": o["sounding"]} for o in os_]
    def cocktail(r):
        return {"ciou": r["ciou"], "nsa": r["nsa"], "nsa_visible": r["nsa_visible"],
                "per_class": {str(k): v for k, v in r["per_class"].items()}}
    out = {
        "upsample": [M.upsample(np.asarray(c["map"])).ravel().tolist() for c in cases["upsample"]],
        "iou": [M.relative_iou(np.asarray(c["map"]), c["boxes"], c["fraction"]) for c in cases["iou"]],
        "cocktail": [cocktail(M.cocktail_image(np.asarray(c["maps"]), objs(c["objects"]), c["cluster_to_class"],
                                               c["num_classes"], c["fraction"])) for c in cases["cocktail"]],
        "loc_only": [cocktail(M.loc_only_image(np.asarray(c["map"]), objs(c["objects"]), c["fraction"],
                                               num_classes=c["num_classes"])) for c in cases["loc_only"]],
        "solo": [M.summarize_solo(s) for s in cases["scores"]],
        "summary": [M.summarize_cocktail(s, s[::2], s[1::3]) for s in cases["scores"]],
        "curves": [M.success_curve(s) for s in cases["scores"]],
        "hungarian": [M.hungarian_cluster_to_class(c["cluster_ids"], c["class_ids"], c["n_clusters"], c["n_classes"])
                      for c in cases["hungarian"]],
        "sums": [float(np.sum(np.asarray(a, dtype=np.float64))) for a in cases["sums"]],
    }
    json.dump(out, open(sys.argv[2], "w"))
    """#

    // MARK: random inputs, written as JSON text with Swift's shortest round-trip numbers

    struct Inputs {
        var upsample: [(map: [[Double]], h: Int, w: Int)] = []
        var iou: [(map: [[Double]], boxes: [Box], fraction: Double)] = []
        var cocktail: [(maps: [[[Double]]], objects: [SceneObject], c2c: [Int], k: Int, fraction: Double)] = []
        var locOnly: [(map: [[Double]], objects: [SceneObject], k: Int, fraction: Double)] = []
        var scores: [[Double?]] = []
        var hungarian: [(clusters: [Int], classes: [Int], nClusters: Int, nClasses: Int)] = []
        var sums: [[Double]] = []
    }

    static func makeInputs() -> Inputs {
        var rng = SeededRandom(seed: 2020)
        func map(_ h: Int, _ w: Int, power: Double = 3) -> [[Double]] {
            (0..<h).map { _ in (0..<w).map { _ in pow(rng.uniform(), power) } }
        }
        func box() -> Box {
            // Some boxes poke out of the picture; some are aligned to pixel edges.
            if rng.int(0..<4) == 0 {
                return Box(x: Double(rng.int(0..<200)) / 224, y: Double(rng.int(0..<200)) / 224,
                           w: Double(rng.int(1..<100)) / 224, h: Double(rng.int(1..<100)) / 224)
            }
            return Box(x: rng.uniform(-0.1...0.8), y: rng.uniform(-0.1...0.8), w: rng.uniform(0.02...0.5), h: rng.uniform(0.02...0.5))
        }
        func objects(k: Int) -> [SceneObject] {
            (0..<rng.int(1..<5)).map { _ in SceneObject(classId: rng.int(0..<k), box: box(), sounding: rng.int(0..<3) > 0) }
        }
        func softmax(c: Int, h: Int, w: Int) -> [[[Double]]] {
            let logits = (0..<c).map { _ in (0..<h).map { _ in (0..<w).map { _ in 3 * rng.uniform(-1...1) } } }
            return logits.indices.map { j in
                (0..<h).map { y in
                    (0..<w).map { x in exp(logits[j][y][x]) / logits.reduce(0) { $0 + exp($1[y][x]) } }
                }
            }
        }
        var inputs = Inputs()
        inputs.upsample = [(map(14, 14, power: 1), 14, 14), (map(7, 9, power: 1), 7, 9), (map(1, 5, power: 1), 1, 5)]
        let fractions = [0.1, 0.2, 0.5]
        for i in 0..<40 {
            inputs.iou.append((map(14, 14), (0..<(1 + i % 3)).map { _ in box() }, fractions[i % 3]))
        }
        for i in 0..<12 {
            let k = 3 + rng.int(0..<4), c = [k, k + 2, max(1, k - 1)][i % 3]
            var c2c = (0..<c).map { _ in rng.int(0..<k) }
            if i % 4 == 3 { c2c[0] = -1; c2c[c - 1] = k }  // clusters outside 0..<K are dropped
            inputs.cocktail.append((softmax(c: c, h: 14, w: 14), objects(k: k), c2c, k, [0.5, 0.2][i % 2]))
        }
        for i in 0..<6 {
            let k = 2 + rng.int(0..<4)
            inputs.locOnly.append((map(14, 14), objects(k: k), k, [0.5, 0.2][i % 2]))
        }
        let ties: [Double?] = [0.3, 0.5, 0.05, 0.25, 1.0, 0.0, nil, 0.30000000000000004, 0.1, 0.15, 0.35]
        inputs.scores = [ties, (0..<37).map { _ in rng.uniform() }, (0..<5).map { _ in Double(rng.int(0..<21)) * 0.05 }, [nil]]
        for i in 0..<60 {
            let nClusters = 1 + rng.int(0..<8), nClasses = 1 + rng.int(0..<6)
            let n = [0, 3, 10, 40][i % 4]
            let clusters = (0..<n).map { _ in rng.int(0..<nClusters) }
            let classes = (0..<n).map { _ in rng.int(0..<nClasses) }
            inputs.hungarian.append((clusters, classes, nClusters, nClasses))
        }
        inputs.sums = [1, 7, 8, 9, 20, 127, 128, 129, 300, 1000].map { n in (0..<n).map { _ in rng.uniform(-1...1) * pow(10, rng.uniform(-3...3)) } }
        return inputs
    }

    static func json(_ inputs: Inputs) -> String {
        func num(_ v: Double) -> String { "\(v)" }
        func list<T>(_ xs: [T], _ f: (T) -> String) -> String { "[" + xs.map(f).joined(separator: ",") + "]" }
        func map2(_ m: [[Double]]) -> String { list(m) { list($0, num) } }
        func box(_ b: Box) -> String { list(b.values, num) }
        func objects(_ os: [SceneObject]) -> String {
            list(os) { "{\"class_id\":\($0.classId),\"box\":\(box($0.box)),\"sounding\":\($0.sounding)}" }
        }
        var parts = [String]()
        parts.append("\"upsample\":" + list(inputs.upsample) { "{\"map\":\(map2($0.map))}" })
        parts.append("\"iou\":" + list(inputs.iou) { "{\"map\":\(map2($0.map)),\"boxes\":\(list($0.boxes, box)),\"fraction\":\(num($0.fraction))}" })
        parts.append("\"cocktail\":" + list(inputs.cocktail) {
            "{\"maps\":\(list($0.maps, map2)),\"objects\":\(objects($0.objects)),\"cluster_to_class\":\($0.c2c),\"num_classes\":\($0.k),\"fraction\":\(num($0.fraction))}"
        })
        parts.append("\"loc_only\":" + list(inputs.locOnly) {
            "{\"map\":\(map2($0.map)),\"objects\":\(objects($0.objects)),\"num_classes\":\($0.k),\"fraction\":\(num($0.fraction))}"
        })
        parts.append("\"scores\":" + list(inputs.scores) { list($0) { $0.map(num) ?? "null" } })
        parts.append("\"hungarian\":" + list(inputs.hungarian) {
            "{\"cluster_ids\":\($0.clusters),\"class_ids\":\($0.classes),\"n_clusters\":\($0.nClusters),\"n_classes\":\($0.nClasses)}"
        })
        parts.append("\"sums\":" + list(inputs.sums) { list($0, num) })
        return "{" + parts.joined(separator: ",\n") + "}\n"
    }

    // MARK: running python3

    /// Runs python3 in `directory` with PYTHONPATH=<repo>/Tools; throws when python3 cannot be started.
    func python(_ arguments: [String], in directory: URL) throws -> (status: Int32, output: String) {
        let tools = Paths.repositoryRoot.appendingPathComponent("Tools").path
        let inherited = ProcessInfo.processInfo.environment["PYTHONPATH"]
        let path = [tools, inherited].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ":")
        return try runMerged("/usr/bin/env", ["python3"] + arguments, environment: ["PYTHONPATH": path], directory: directory)
    }

    func testSwiftMatchesMetricsPy() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let setupHint = "the Swift/Python metrics cross-check needs python3 with numpy and scipy: run `Tools/setup.sh --test`"
        let probe: (status: Int32, output: String)
        do { probe = try python(["-c", "import numpy, scipy.optimize; from dsol import metrics"], in: dir) } catch {
            return XCTFail("cannot start python3 (\(error)); \(setupHint)")
        }
        guard probe.status == 0 else { return XCTFail("\(setupHint)\n\(probe.output)") }

        let inputs = Self.makeInputs()
        let input = dir.appendingPathComponent("cases.json"), output = dir.appendingPathComponent("python.json")
        let scriptURL = dir.appendingPathComponent("crosscheck.py")
        try Data(Self.json(inputs).utf8).write(to: input)
        try Data(Self.script.utf8).write(to: scriptURL)
        let run = try python([scriptURL.path, input.path, output.path], in: dir)
        guard run.status == 0 else { return XCTFail("metrics.py failed on the cases:\n\(run.output)") }
        let py = try XCTUnwrap(try JSONValue.parse(Data(contentsOf: output)).object)
        let tol = Self.tolerance
        // Both sides work on the numbers as parsed back from the file (correctly rounded on both).
        let parsed = try XCTUnwrap(try JSONValue.parse(Data(contentsOf: input)).object)
        func maps(_ v: JSONValue) -> [[Double]] { v.array!.map { $0.doubles! } }
        func out(_ key: String, _ i: Int) -> JSONValue { py[key]!.array![i] }

        for (i, c) in parsed["upsample"]!.array!.enumerated() {
            let m = maps(c["map"]!)
            let up = Metrics.upsample(m.flatMap { $0 }, height: m.count, width: m[0].count)
            let want = out("upsample", i).doubles!
            XCTAssertEqual(up.count, want.count)
            XCTAssertLessThanOrEqual(zip(up, want).map { abs($0 - $1) }.max()!, tol, "upsample \(i)")
        }
        for (i, c) in parsed["iou"]!.array!.enumerated() {
            let got = Metrics.relativeIoU(maps(c["map"]!).flatMap { $0 }, height: 14, width: 14,
                                          boxes: c["boxes"]!.array!.map { Box($0.doubles!)! }, fraction: c["fraction"]!.double!)
            assertClose(got, out("iou", i).double, tol, "iou \(i)")
        }
        func objects(_ v: JSONValue) -> [SceneObject] {
            v.array!.map { SceneObject(classId: $0["class_id"]!.int!, box: Box($0["box"]!.doubles!)!, sounding: $0["sounding"]!.bool!) }
        }
        func compare(_ s: CocktailImageScore, _ want: JSONValue, _ name: String) {
            assertClose(s.ciou, want["ciou"]?.double, tol, "\(name) ciou")
            assertClose(s.nsa, want["nsa"]?.double, tol, "\(name) nsa")
            assertClose(s.nsaVisible, want["nsa_visible"]?.double, tol, "\(name) nsa_visible")
            let perClass = want["per_class"]!.object!
            XCTAssertEqual(s.perClass.map(\.classId), perClass.keys.map { Int($0)! }.sorted(), name)
            for cs in s.perClass { assertClose(cs.iou, perClass["\(cs.classId)"]?.double, tol, "\(name) class \(cs.classId)") }
        }
        for (i, c) in parsed["cocktail"]!.array!.enumerated() {
            let ms = c["maps"]!.array!.map { maps($0).flatMap { $0 } }
            let s = Metrics.cocktailImage(ms, height: 14, width: 14, objects: objects(c["objects"]!),
                                          clusterToClass: c["cluster_to_class"]!.array!.map { $0.int! },
                                          numClasses: c["num_classes"]!.int!, fraction: c["fraction"]!.double!)
            compare(s, out("cocktail", i), "cocktail \(i)")
        }
        for (i, c) in parsed["loc_only"]!.array!.enumerated() {
            let s = Metrics.locOnlyImage(maps(c["map"]!).flatMap { $0 }, height: 14, width: 14, objects: objects(c["objects"]!),
                                         fraction: c["fraction"]!.double!, numClasses: c["num_classes"]!.int!)
            compare(s, out("loc_only", i), "loc_only \(i)")
        }
        for (i, raw) in parsed["scores"]!.array!.enumerated() {
            let scores = raw.array!.map(\.double)
            let curve = Metrics.successCurve(scores), wantCurve = out("curves", i).doubles!
            for (t, (a, b)) in zip(curve, wantCurve).enumerated() { assertClose(a, b, tol, "scores \(i) success[\(t)]") }
            let solo = Metrics.summarizeSolo(scores), wantSolo = out("solo", i)
            assertClose(solo.iou50, wantSolo["iou@0.5"]?.double, tol, "solo \(i) iou@0.5")
            assertClose(solo.auc, wantSolo["auc"]?.double, tol, "solo \(i) auc")
            assertClose(solo.meanIoU, wantSolo["mean_iou"]?.double, tol, "solo \(i) mean")
            XCTAssertEqual(solo.n, wantSolo["n"]?.int)
            let everyOther = stride(from: 0, to: scores.count, by: 2).map { scores[$0] }
            let everyThird = stride(from: 1, to: scores.count, by: 3).map { scores[$0] }
            let s = Metrics.summarizeCocktail(scores, nsa: everyOther, nsaVisible: everyThird)
            let want = out("summary", i)
            assertClose(s.ciou30, want["ciou@0.3"]?.double, tol, "summary \(i) ciou@0.3")
            assertClose(s.auc, want["auc"]?.double, tol, "summary \(i) auc")
            assertClose(s.meanCIoU, want["mean_ciou"]?.double, tol, "summary \(i) mean")
            assertClose(s.nsa, want["nsa"]?.double, tol, "summary \(i) nsa")
            assertClose(s.nsaVisible, want["nsa_visible"]?.double, tol, "summary \(i) nsa_visible")
        }
        for (i, c) in parsed["hungarian"]!.array!.enumerated() {
            func ints(_ k: String) -> [Int] { c[k]!.array!.map { $0.int! } }
            let got = Metrics.hungarianClusterToClass(clusterIds: ints("cluster_ids"), classIds: ints("class_ids"),
                                                      nClusters: c["n_clusters"]!.int!, nClasses: c["n_classes"]!.int!)
            XCTAssertEqual(got, out("hungarian", i).array!.map { $0.int! }, "hungarian \(i): \(ints("cluster_ids")) \(ints("class_ids"))")
        }
        for (i, raw) in parsed["sums"]!.array!.enumerated() {
            // numpy's pairwise order: equal to the bit here; an ulp-scale slack allows other numpy builds.
            let want = out("sums", i).double!
            XCTAssertEqual(Metrics.numpySum(raw.doubles!), want, accuracy: 1e-12 * max(1, abs(want)), "sum \(i)")
        }
    }
}
