import XCTest
@testable import SoundlocEval

/// Cases worked out by hand (closed-form upsampling profiles, pixel counts), independent of the fixture.
final class MetricsHandTests: XCTestCase {
    func testUpsamplingMatchesTheClosedFormProfile() {
        var m = [Double](repeating: 0, count: 196)
        for r in 0..<14 { for c in 4...9 { m[r * 14 + c] = 1 } }
        let up = Metrics.upsample(m, height: 14, width: 14)
        let profile = HandMaps.profile(4, 9)
        for r in [0, 100, 223] { for p in 0..<224 { XCTAssertEqual(up[r * 224 + p], profile[p], accuracy: 1e-15) } }
        // A constant map stays constant, edges included.
        XCTAssertTrue(Metrics.upsample([Double](repeating: 0.25, count: 196), height: 14, width: 14).allSatisfy { $0 == 0.25 })
    }

    func testBoxRasterisationTruncates() {
        // [0.1, 0.2, 0.3, 0.25]: cols int(22.4) ..< int(22.4 + 67.2) = 22 ..< 89, rows 44 ..< 100.
        let g = Metrics.boxMask([Box(x: 0.1, y: 0.2, w: 0.3, h: 0.25)])
        XCTAssertEqual(g.filter { $0 }.count, 67 * 56)
        XCTAssertTrue(g[44 * 224 + 22] && g[99 * 224 + 88])
        XCTAssertFalse(g[43 * 224 + 22] || g[44 * 224 + 21] || g[100 * 224 + 88] || g[99 * 224 + 89])
        // Clipped at the border, and a negative origin truncates toward zero.
        XCTAssertEqual(Metrics.boxMask([Box(x: 0.9, y: 0.9, w: 0.5, h: 0.5)]).filter { $0 }.count, 23 * 23)
        XCTAssertEqual(Metrics.boxMask([Box(x: -0.1, y: 0, w: 0.2, h: 1)]).filter { $0 }.count, 22 * 224)
        XCTAssertFalse(Metrics.boxMask([]).contains(true))
        // Union, not sum.
        let two = Metrics.boxMask([Box(x: 0, y: 0, w: 0.5, h: 0.5), Box(x: 0.25, y: 0.25, w: 0.5, h: 0.5)])
        XCTAssertEqual(two.filter { $0 }.count, 2 * 112 * 112 - 56 * 56)
    }

    func testOneObject() {
        // Threshold 0.1: P = rows 58...165 (108 rows), G = rows 64...159 (96 rows), full width.
        let iou = Metrics.relativeIoU(HandMaps.bandRows(4, 9), height: 14, width: 14,
                                      boxes: [Box(x: 0, y: 4.0 / 14, w: 1, h: 6.0 / 14)], fraction: 0.1)
        XCTAssertEqual(iou!, 96.0 / 108.0, accuracy: 1e-15)
    }

    func testTwoObjects() {
        var m = [Double](repeating: 0, count: 196)
        for r in 0..<14 { for c in Array(2...4) + Array(9...11) { m[r * 14 + c] = 1 } }
        // Each object: 48 columns of G inside 60 columns of P.
        let iou = Metrics.relativeIoU(m, height: 14, width: 14,
                                      boxes: [Box(x: 2.0 / 14, y: 0, w: 3.0 / 14, h: 1), Box(x: 9.0 / 14, y: 0, w: 3.0 / 14, h: 1)],
                                      fraction: 0.1)
        XCTAssertEqual(iou!, 96.0 / 120.0, accuracy: 1e-15)
    }

    func testEmptyMapAndEmptyBox() {
        // Threshold 0 and nothing above it: no prediction at all.
        XCTAssertEqual(Metrics.relativeIoU([Double](repeating: 0, count: 196), height: 14, width: 14,
                                           boxes: [Box(x: 0.2, y: 0.2, w: 0.3, h: 0.3)], fraction: 0.1), 0)
        XCTAssertNil(Metrics.relativeIoU([Double](repeating: 1, count: 196), height: 14, width: 14, boxes: [], fraction: 0.1))
        XCTAssertNil(Metrics.relativeIoU([Double](repeating: 1, count: 196), height: 14, width: 14,
                                         boxes: [Box(x: 0.5, y: 0.5, w: 0.001, h: 0.3)], fraction: 0.1), "a box thinner than a pixel is empty")
        // A flat map predicts everything: IoU = |G| / 224².
        XCTAssertEqual(Metrics.relativeIoU([Double](repeating: 1, count: 196), height: 14, width: 14,
                                           boxes: [Box(x: 0, y: 0, w: 0.5, h: 1)], fraction: 0.1), 0.5)
    }

    func testMapEqualToBox() {
        // P = outer(profile, profile) > 0.1: the ring's corners fall below the threshold.
        let a = HandMaps.profile(4, 9)
        var predicted = 0
        for y in 0..<224 { for x in 0..<224 where a[y] * a[x] > 0.1 { predicted += 1 } }
        let expected = Double(96 * 96) / Double(predicted)
        XCTAssertTrue(96.0 * 96 / (108 * 108) < expected && expected < 1)
        let iou = Metrics.relativeIoU(HandMaps.square(4, 9), height: 14, width: 14,
                                      boxes: [Box(x: 4.0 / 14, y: 4.0 / 14, w: 6.0 / 14, h: 6.0 / 14)], fraction: 0.1)
        XCTAssertEqual(iou!, expected, accuracy: 1e-15)
    }

    /// Class 0 sounds (a band), class 1 is visible and silent (flat 0.1), class 2 is absent (0.3 on columns 0...6).
    let cocktailMaps = [HandMaps.bandRows(4, 9), [Double](repeating: 0.1, count: 196),
                        (0..<196).map { $0 % 14 < 7 ? 0.3 : 0 }]
    let cocktailObjects = [SceneObject(classId: 0, box: Box(x: 0, y: 4.0 / 14, w: 1, h: 6.0 / 14), sounding: true),
                           SceneObject(classId: 1, box: Box(x: 0.1, y: 0.1, w: 0.2, h: 0.2), sounding: false)]

    func testSilentClass() {
        let r = Metrics.cocktailImage(cocktailMaps, height: 14, width: 14, objects: cocktailObjects,
                                      clusterToClass: [0, 1, 2], numClasses: 3, fraction: 0.5)
        // At 0.5·max the band's P is exactly rows 64...159 = G.
        XCTAssertEqual(r.ciou, 1)
        XCTAssertEqual(r.perClass, [ClassScore(classId: 0, iou: 1)])
        // Class 1 never exceeds 0.2; class 2's upsampled value 0.3·fall(o) is ≤ 0.2 from column 109 on (115 of 224).
        XCTAssertEqual(r.nsaVisible, 1)
        XCTAssertEqual(r.nsa!, (1 + 115.0 / 224) / 2, accuracy: 1e-15)
    }

    func testClustersAreSummedIntoClasses() {
        // Permuted clusters give the same scores; a class without a cluster is 0 everywhere (NSA 1).
        let permuted = [cocktailMaps[2], cocktailMaps[0], cocktailMaps[1]]
        let r = Metrics.cocktailImage(permuted, height: 14, width: 14, objects: cocktailObjects,
                                      clusterToClass: [2, 0, 1], numClasses: 3, fraction: 0.5)
        XCTAssertEqual(r.ciou, 1)
        XCTAssertEqual(r.nsa!, (1 + 115.0 / 224) / 2, accuracy: 1e-15)
        let missing = Metrics.cocktailImage(Array(cocktailMaps.prefix(2)), height: 14, width: 14, objects: cocktailObjects,
                                            clusterToClass: [0, 1], numClasses: 3, fraction: 0.5)
        XCTAssertEqual(missing.nsa, 1)
        // Two clusters of one class add up; an out-of-range cluster is dropped.
        let half = cocktailMaps[0].map { $0 / 2 }
        let summed = Metrics.classProbabilityMaps([half, half, cocktailMaps[1]], clusterToClass: [0, 0, 7], numClasses: 2)
        XCTAssertEqual(summed[0], cocktailMaps[0])
        XCTAssertEqual(summed[1], [Double](repeating: 0, count: 196))
    }

    func testNoSoundingClassLeavesCIoUUndefined() {
        let silent = cocktailObjects.map { o -> SceneObject in var s = o; s.sounding = false; return s }
        let r = Metrics.cocktailImage(cocktailMaps, height: 14, width: 14, objects: silent, clusterToClass: [0, 1, 2],
                                      numClasses: 3, fraction: 0.5)
        XCTAssertNil(r.ciou)
        XCTAssertEqual(r.perClass, [])
        XCTAssertNotNil(r.nsa)
        // Every class sounding: no silent class, so both NSA variants are undefined.
        let loud = Metrics.cocktailImage(Array(cocktailMaps.prefix(2)), height: 14, width: 14,
                                         objects: cocktailObjects.map { o -> SceneObject in var s = o; s.sounding = true; return s },
                                         clusterToClass: [0, 1], numClasses: 2, fraction: 0.5)
        XCTAssertNil(loud.nsa)
        XCTAssertNil(loud.nsaVisible)
    }

    func testLocOnlyBaselineSharesLWithSilentClasses() {
        let r = Metrics.locOnlyImage(HandMaps.bandRows(4, 9), height: 14, width: 14, objects: cocktailObjects,
                                     fraction: 0.5, numClasses: 2)
        XCTAssertEqual(r.ciou, 1)
        // The silent class sees the band too: rows 0...58 and 165...223 are ≤ 0.2 (118 of 224).
        XCTAssertEqual(r.nsa!, 118.0 / 224, accuracy: 1e-15)
        XCTAssertEqual(r.nsaVisible!, 118.0 / 224, accuracy: 1e-15)
        // K defaults to 1 + the largest class id.
        XCTAssertEqual(Metrics.locOnlyImage(HandMaps.bandRows(4, 9), height: 14, width: 14, objects: cocktailObjects,
                                            fraction: 0.5), r)
    }

    func testSuccessCurveAndAUC() {
        // 0.3 does not reach t_6 = 0.30000000000000004.
        XCTAssertEqual(Metrics.successCurve([0.3])[6], 0)
        XCTAssertEqual(Metrics.successCurve([0.3])[5], 1)
        XCTAssertEqual(Metrics.successCurve([nil, nil]), [Double](repeating: 0, count: 21))
        XCTAssertEqual(Metrics.auc([Double](repeating: 1, count: 21)), 1, accuracy: 1e-15)
        XCTAssertEqual(Metrics.auc([Double](repeating: 0, count: 21)), 0)
        // Scores 0.3, 0.5, 1, 0: success 1 at t0, 0.75 up to t5, 0.5 up to t10, 0.25 after: area 0.05·9.125.
        let s = Metrics.summarizeSolo([0.3, 0.5, 1.0, 0.0])
        XCTAssertEqual(s.iou50, 0.5)
        XCTAssertEqual(s.auc, 0.05 * 9.125, accuracy: 1e-12)
        XCTAssertEqual(s.n, 4)
        XCTAssertEqual(s.meanIoU, 0.45, accuracy: 1e-15)
        let c = Metrics.summarizeCocktail([0.3, 0.5, 1.0, 0.0], nsa: [0.9, nil, 1.0], nsaVisible: [])
        XCTAssertEqual(c.ciou30, 0.5)
        XCTAssertEqual(c.nsa!, 0.95, accuracy: 1e-15)
        XCTAssertNil(c.nsaVisible)
    }

    func testHungarianExtraRoundsAndTies() {
        XCTAssertEqual(Metrics.hungarianClusterToClass(clusterIds: [0, 0, 0, 1, 1, 2, 2, 2], classIds: [2, 2, 1, 0, 0, 1, 1, 1],
                                                       nClusters: 3, nClasses: 3), [2, 0, 1])
        // More clusters than classes: the extra cluster joins the class it co-occurs with most.
        XCTAssertEqual(Metrics.hungarianClusterToClass(clusterIds: [0, 0, 1, 1, 2, 3, 3], classIds: [0, 0, 1, 1, 1, 2, 2],
                                                       nClusters: 4, nClasses: 3), [0, 1, 1, 2])
        // Fewer clusters than classes: distinct classes.
        XCTAssertEqual(Metrics.hungarianClusterToClass(clusterIds: [0, 1], classIds: [3, 1], nClusters: 2, nClasses: 4), [3, 1])
        // No evidence at all: scipy's identity for a constant matrix.
        XCTAssertEqual(Metrics.hungarianClusterToClass(clusterIds: [], classIds: [], nClusters: 3, nClasses: 3), [0, 1, 2])
        XCTAssertEqual(Metrics.hungarianClusterToClass(clusterIds: [], classIds: [], nClusters: 5, nClasses: 2), [0, 1, 0, 1, 0])
        XCTAssertEqual(Metrics.hungarianClusterToClass(clusterIds: [], classIds: [], nClusters: 2, nClasses: 0), [-1, -1])
    }

    func testLinearSumAssignmentIsOptimal() {
        // Exhaustive check on small random matrices against every permutation.
        var rng = SeededRandom(seed: 11)
        func permutations(_ n: Int, _ k: Int) -> [[Int]] {
            k == 0 ? [[]] : permutations(n, k - 1).flatMap { p in (0..<n).filter { !p.contains($0) }.map { p + [$0] } }
        }
        for _ in 0..<200 {
            let rows = rng.int(1..<5), cols = rng.int(1..<5)
            let cost = (0..<rows).map { _ in (0..<cols).map { _ in Double(rng.int(0..<4)) } }
            let (r, c) = Metrics.linearSumAssignment(cost)
            XCTAssertEqual(r.count, min(rows, cols))
            XCTAssertEqual(Set(c).count, c.count)
            let total = zip(r, c).reduce(0) { $0 + cost[$1.0][$1.1] }
            let best: Double
            if rows <= cols {
                best = permutations(cols, rows).map { p in p.enumerated().reduce(0) { $0 + cost[$1.offset][$1.element] } }.min()!
            } else {
                best = permutations(rows, cols).map { p in p.enumerated().reduce(0) { $0 + cost[$1.element][$1.offset] } }.min()!
            }
            XCTAssertEqual(total, best, "\(cost)")
        }
    }

    func testNumpySum() {
        XCTAssertEqual(Metrics.numpySum([]), 0)
        XCTAssertEqual(Metrics.numpySum([1, 2, 3]), 6)
        let values = (0..<300).map { 1.0 / Double($0 + 1) }
        XCTAssertEqual(Metrics.numpySum(values), values.reduce(0, +), accuracy: 1e-12)
        XCTAssertNil(Metrics.numpyMean([]))
    }
}
