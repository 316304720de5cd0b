import Foundation
import SoundlocDSOL
import XCTest
@testable import SoundlocEval

/// End to end with the tiny random model on scenes generated here.
final class EvaluatorTests: XCTestCase {
    var root: URL!
    var manifestPath: String!

    override func setUpWithError() throws {
        root = try Paths.temporaryDirectory()
        manifestPath = try SyntheticDataSet.write(to: root)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    func makeEvaluator(manifest path: String? = nil) throws -> Evaluator {
        let model = try DSOLModel(path: Paths.tinyModel.path, threads: 1)
        return try Evaluator(model: model, manifest: try Manifest.load(path: path ?? manifestPath))
    }

    func inUnitInterval(_ v: Double?, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let v else { return XCTFail("\(what) is missing", file: file, line: line) }
        XCTAssertTrue(v >= 0 && v <= 1, "\(what) = \(v)", file: file, line: line)
    }

    func testReportCountsAndRanges() throws {
        let evaluator = try makeEvaluator()
        var seen = [Int]()
        let report = try evaluator.run(EvalOptions(split: "test"), modelName: "tiny") { p in
            XCTAssertEqual(p.total, 4)
            XCTAssertNil(p.maps)
            seen.append(p.done)
        }
        XCTAssertEqual(seen, [1, 2, 3, 4])
        XCTAssertEqual(report.mode, "class_aware")
        XCTAssertEqual(report.classes, SyntheticDataSet.classes)
        XCTAssertEqual(report.clusterToClass, Array(0..<11))
        XCTAssertEqual(report.kinds.map(\.kind), ["free", "solo", "synthetic"])
        XCTAssertEqual(report.sceneResults.map(\.id), ["test-free-0", "test-solo-0", "test-solo-1", "test-synthetic-0"])

        let solo = try XCTUnwrap(report.kind("solo")?.solo)
        XCTAssertEqual(solo.n, 2)
        inUnitInterval(solo.iou50, "solo IoU@0.5")
        inUnitInterval(solo.auc, "solo AUC")
        XCTAssertEqual(report.kind("solo")?.perClass.map(\.classId), [0, 9])
        for kind in ["synthetic", "free"] {
            let c = try XCTUnwrap(report.kind(kind)?.cocktail, kind)
            XCTAssertEqual(c.n, 1, kind)
            inUnitInterval(c.ciou30, "\(kind) CIoU@0.3")
            inUnitInterval(c.auc, "\(kind) AUC")
            inUnitInterval(c.nsa, "\(kind) NSA")
            inUnitInterval(c.nsaVisible, "\(kind) NSA-visible")
        }
        XCTAssertEqual(report.kind("synthetic")?.perClass.map(\.classId), [2, 7])
        for r in report.sceneResults {
            inUnitInterval(r.iou ?? r.ciou, "\(r.id) score")
            XCTAssertTrue(r.matchScore > 0 && r.matchScore < 1)
        }

        // Deterministic, and the report survives a JSON round trip.
        let again = try makeEvaluator().run(EvalOptions(split: "test"), modelName: "tiny")
        XCTAssertEqual(again, report)
        let data = try JSONEncoder().encode(report)
        XCTAssertEqual(try JSONDecoder().decode(EvalReport.self, from: data), report)
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(text.contains("\"ciou@0.3\"") && text.contains("\"iou@0.5\"") && text.contains("\"nsa_visible\""))
    }

    func testScoresMatchTheMetricsOnTheReturnedMaps() throws {
        let evaluator = try makeEvaluator()
        for scene in try evaluator.selectScenes(EvalOptions()) {
            for baseline in [false, true] {
                let (result, maps) = try evaluator.evaluate(scene, baseline: baseline, keepMaps: true)
                let m = try XCTUnwrap(maps)
                XCTAssertEqual(m.classMaps.count, 11 * m.height * m.width)
                if scene.isSolo {
                    let boxes = scene.objects.filter(\.sounding).map(\.box)
                    XCTAssertEqual(result.iou, Metrics.relativeIoU(m.l, height: m.height, width: m.width, boxes: boxes, fraction: 0.1))
                } else {
                    let n = m.height * m.width
                    let classMaps = (0..<11).map { k in m.classMaps[(k * n)..<((k + 1) * n)].map(Double.init) }
                    // Identity cluster_to_class: the class maps are the model's maps, and they sum to 1 per pixel.
                    let score = Metrics.cocktailImage(classMaps, height: m.height, width: m.width, objects: scene.objects,
                                                      clusterToClass: Array(0..<11), numClasses: 11)
                    if baseline {
                        XCTAssertEqual(classMaps[3], m.l.map(Double.init))
                        let lo = Metrics.locOnlyImage(m.l.map(Double.init), height: m.height, width: m.width,
                                                      objects: scene.objects, numClasses: 11)
                        XCTAssertEqual(result.ciou, lo.ciou)
                        XCTAssertEqual(result.nsa, lo.nsa)
                    } else {
                        XCTAssertEqual(result.ciou, score.ciou)
                        XCTAssertEqual(result.nsa, score.nsa)
                        XCTAssertEqual(result.nsaVisible, score.nsaVisible)
                        let total = (0..<11).reduce(0.0) { $0 + classMaps[$1][40] }
                        XCTAssertEqual(total, 1, accuracy: 1e-5)
                    }
                }
            }
        }
    }

    func testBaselineLimitAndKinds() throws {
        let evaluator = try makeEvaluator()
        let baseline = try evaluator.run(EvalOptions(baseline: true))
        XCTAssertEqual(baseline.mode, "loc_only")
        XCTAssertEqual(baseline.kind("synthetic")?.cocktail?.n, 1)
        // Solo scenes use l either way.
        let classAware = try evaluator.run(EvalOptions())
        XCTAssertEqual(baseline.kind("solo"), classAware.kind("solo"))

        XCTAssertEqual(try evaluator.run(EvalOptions(limit: 1)).sceneResults.map(\.id), ["test-free-0", "test-solo-0", "test-synthetic-0"])
        XCTAssertEqual(try evaluator.run(EvalOptions(kinds: ["solo"])).kinds.map(\.kind), ["solo"])
        XCTAssertEqual(try evaluator.run(EvalOptions(split: "train")).sceneResults.map(\.id), ["train-solo-0"])
        XCTAssertThrowsError(try evaluator.run(EvalOptions(kinds: ["synthtic"]))) {
            XCTAssertTrue("\($0)".contains("no 'synthtic' scenes"), "\($0)")
        }
        XCTAssertThrowsError(try evaluator.run(EvalOptions(split: "val"))) {
            XCTAssertTrue("\($0)".contains("no scenes in split 'val'"), "\($0)")
        }
    }

    func testMissingSceneFileIsNamed() throws {
        let wav = root.appendingPathComponent("audio/test/free/test-free-0.wav")
        try FileManager.default.removeItem(at: wav)
        let evaluator = try makeEvaluator()
        XCTAssertThrowsError(try evaluator.run(EvalOptions())) { error in
            XCTAssertEqual(error as? ManifestError, .missingFile(scene: "test-free-0", role: "audio", path: wav.path))
        }
        // Other splits do not need that file.
        XCTAssertNoThrow(try evaluator.run(EvalOptions(split: "train")))
    }

    func testClassListMustMatchTheModel() throws {
        var names = SyntheticDataSet.classes
        names.swapAt(0, 1)
        let other = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: other) }
        let path = try SyntheticDataSet.write(to: other, scenes: [SyntheticDataSet.defaultScenes[0]], classes: names)
        XCTAssertThrowsError(try makeEvaluator(manifest: path)) { error in
            guard case .classMismatch(let why)? = error as? EvalError else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("do not match"), why)
        }
    }

    /// The trainer's naming: clusters carry their class's name, repeats suffixed _2, _3, ...
    func testClusterToClassNaming() throws {
        func metadata(classes: [String], clusterToClass: [Int]?) throws -> ModelMetadata {
            var raw = [
                "format": "soundloc-dsol", "format_version": "1", "arch": "resnet18-s5-dsol", "precision": "fp32",
                "width": "8", "embed_dim": "16", "num_classes": "\(classes.count)",
                "classes": String(decoding: try JSONSerialization.data(withJSONObject: classes), as: UTF8.self),
                "image_size": "224", "image_mean": "[0.485, 0.456, 0.406]", "image_std": "[0.229, 0.224, 0.225]",
                "audio_features": "{\"sample_rate\": 16000, \"n_fft\": 160, \"hop\": 80, \"n_mels\": 64, \"fmax\": 8000, \"top_db\": 80, \"frames\": 201}",
                "checksum": "sha256:0",
            ]
            if let clusterToClass { raw["cluster_to_class"] = "\(clusterToClass)" }
            return try ModelMetadata(raw)
        }
        let data = ["cello", "flute", "tuba"]
        let (classes, c2c) = try Evaluator.resolveClasses(
            model: try metadata(classes: ["tuba", "cello", "tuba_2", "flute"], clusterToClass: [2, 0, 2, 1]), manifest: data)
        XCTAssertEqual(classes, data)
        XCTAssertEqual(c2c, [2, 0, 2, 1])
        // Annotation files carry no class list: names come from each class's first cluster.
        XCTAssertEqual(try Evaluator.resolveClasses(
            model: try metadata(classes: ["tuba", "cello", "tuba_2", "flute"], clusterToClass: [2, 0, 2, 1]), manifest: nil).0, data)
        XCTAssertThrowsError(try Evaluator.resolveClasses(
            model: try metadata(classes: ["cello", "flute", "tuba"], clusterToClass: [2, 0, 1]), manifest: data)) {
            XCTAssertTrue("\($0)".contains("cluster 0 is named 'cello' but maps to the manifest's class 2 'tuba'"), "\($0)")
        }
        XCTAssertEqual(try Evaluator.resolveClasses(model: try metadata(classes: data, clusterToClass: nil), manifest: data).1, [0, 1, 2])
    }
}
