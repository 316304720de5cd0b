// The paper's localisation metrics (SPEC §6): a one-to-one twin of `Tools/dsol/metrics.py`.
//
// Every convention (align_corners=False bilinear upsampling in Double, int()-truncating box
// rasterisation, strictly-greater thresholding, the IEEE-double thresholds 0.05·i, trapezoid AUC,
// cluster→class summing, NSA "all"/"visible", scipy-compatible Hungarian rounds) is the one that
// module's docstring fixes; `Tests/SoundlocEvalTests/Fixtures/metrics_cases.json` holds its vectors.
// Sums and means follow numpy's pairwise summation so results agree to the last bit where the
// inputs do.

/// A normalised [x, y, w, h] box: fractions of the image's width and height.
public struct Box: Codable, Equatable, Sendable {
    public var x: Double
    public var y: Double
    public var w: Double
    public var h: Double

    public init(x: Double, y: Double, w: Double, h: Double) {
        self.x = x
        self.y = y
        self.w = w
        self.h = h
    }

    /// From a `[x, y, w, h, ...]` list (extra values ignored, as metrics.py's `b[:4]`); nil when shorter.
    public init?(_ values: [Double]) {
        guard values.count >= 4 else { return nil }
        self.init(x: values[0], y: values[1], w: values[2], h: values[3])
    }

    public var values: [Double] { [x, y, w, h] }

    public init(from decoder: Decoder) throws {
        let list = try decoder.singleValueContainer().decode([Double].self)
        guard let box = Box(list) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "a box needs 4 numbers"))
        }
        self = box
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(values)
    }
}

/// One annotated object of a scene.
public struct SceneObject: Codable, Equatable, Sendable {
    public var classId: Int
    public var box: Box
    public var sounding: Bool
    /// The class name the annotation gave, when it gave one (informational).
    public var className: String?

    public init(classId: Int, box: Box, sounding: Bool = true, className: String? = nil) {
        self.classId = classId
        self.box = box
        self.sounding = sounding
        self.className = className
    }

    enum CodingKeys: String, CodingKey {
        case classId = "class_id", box, sounding, className = "class"
    }
}

/// One class's IoU in a cocktail-party image (nil when its ground truth is empty).
public struct ClassScore: Codable, Equatable, Sendable {
    public var classId: Int
    public var iou: Double?

    public init(classId: Int, iou: Double?) {
        self.classId = classId
        self.iou = iou
    }

    enum CodingKeys: String, CodingKey { case classId = "class_id", iou }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(classId, forKey: .classId)
        try c.encode(iou, forKey: .iou)
    }
}

/// Scores of one cocktail-party image (metrics.py's `cocktail_image`); nil where undefined.
public struct CocktailImageScore: Codable, Equatable, Sendable {
    /// Mean IoU over the sounding classes.
    public var ciou: Double?
    /// Mean share of pixels ≤ the NSA threshold over every non-sounding class.
    public var nsa: Double?
    /// Same over the visible-but-silent classes only.
    public var nsaVisible: Double?
    /// Sounding classes in ascending order.
    public var perClass: [ClassScore]

    public init(ciou: Double?, nsa: Double?, nsaVisible: Double?, perClass: [ClassScore]) {
        self.ciou = ciou
        self.nsa = nsa
        self.nsaVisible = nsaVisible
        self.perClass = perClass
    }

    enum CodingKeys: String, CodingKey { case ciou, nsa, nsaVisible = "nsa_visible", perClass = "per_class" }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ciou, forKey: .ciou)
        try c.encode(nsa, forKey: .nsa)
        try c.encode(nsaVisible, forKey: .nsaVisible)
        try c.encode(perClass, forKey: .perClass)
    }
}

/// metrics.py's `summarize_solo`.
public struct SoloSummary: Codable, Equatable, Sendable {
    /// success(t_10).
    public var iou50: Double
    public var auc: Double
    /// Images scored (those with a non-empty ground truth).
    public var n: Int
    public var meanIoU: Double
    /// success(t_i) for every threshold.
    public var success: [Double]

    enum CodingKeys: String, CodingKey { case iou50 = "iou@0.5", auc, n, meanIoU = "mean_iou", success }
}

/// metrics.py's `summarize_cocktail`.
public struct CocktailSummary: Codable, Equatable, Sendable {
    /// success(t_6).
    public var ciou30: Double
    public var auc: Double
    public var n: Int
    public var meanCIoU: Double
    public var nsa: Double?
    public var nsaVisible: Double?
    public var success: [Double]

    enum CodingKeys: String, CodingKey {
        case ciou30 = "ciou@0.3", auc, n, meanCIoU = "mean_ciou", nsa, nsaVisible = "nsa_visible", success
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ciou30, forKey: .ciou30)
        try c.encode(auc, forKey: .auc)
        try c.encode(n, forKey: .n)
        try c.encode(meanCIoU, forKey: .meanCIoU)
        try c.encode(nsa, forKey: .nsa)
        try c.encode(nsaVisible, forKey: .nsaVisible)
        try c.encode(success, forKey: .success)
    }
}

public enum Metrics {
    public static let outputSize = 224
    public static let soloFraction = 0.1
    public static let syntheticFraction = 0.5
    public static let duetFraction = 0.2
    public static let nsaThreshold = 0.2
    /// t_i = 0.05·i computed in Double exactly as metrics.py (t_6 = 0.30000000000000004).
    public static let thresholds: [Double] = (0...20).map { 0.05 * Double($0) }
    /// Index of t = 0.5 in `thresholds` (IoU@0.5).
    public static let iou50Index = 10
    /// Index of t = 0.3 in `thresholds` (CIoU@0.3).
    public static let ciou30Index = 6

    // MARK: maps and boxes

    /// One output sample of the 1-D align_corners=False interpolation: at most two taps.
    struct Tap {
        var i0: Int
        var w0: Double
        var i1: Int
        var w1: Double
    }

    /// The nonzero entries of metrics.py's `bilinear_weights` matrix, row by row.
    static func bilinearTaps(nIn: Int, nOut: Int) -> [Tap] {
        let scale = Double(nIn) / Double(nOut)
        return (0..<nOut).map { o in
            let src = max((Double(o) + 0.5) * scale - 0.5, 0.0)
            let i0 = min(Int(src.rounded(.down)), nIn - 1)
            let i1 = min(i0 + 1, nIn - 1)
            let lam = src - Double(i0)
            // At the far edge both weights land on one input; metrics.py adds them into one entry.
            if i0 == i1 { return Tap(i0: i0, w0: (1.0 - lam) + lam, i1: i1, w1: 0) }
            return Tap(i0: i0, w0: 1.0 - lam, i1: i1, w1: lam)
        }
    }

    /// Bilinear (align_corners=False) upsampling of a row-major `height`×`width` map to `size`×`size`, in Double.
    public static func upsample(_ map: [Double], height: Int, width: Int, size: Int = outputSize) -> [Double] {
        precondition(height > 0 && width > 0 && map.count == height * width, "map must hold height·width values")
        let ty = bilinearTaps(nIn: height, nOut: size), tx = bilinearTaps(nIn: width, nOut: size)
        var out = [Double](repeating: 0, count: size * size)
        var rowBuffer = [Double](repeating: 0, count: width)
        map.withUnsafeBufferPointer { m in
            out.withUnsafeMutableBufferPointer { dst in
                rowBuffer.withUnsafeMutableBufferPointer { row in
                    for o in 0..<size {
                        let t = ty[o]
                        for c in 0..<width {
                            row[c] = t.w0 * m[t.i0 * width + c] + t.w1 * m[t.i1 * width + c]
                        }
                        for p in 0..<size {
                            let s = tx[p]
                            dst[o * size + p] = s.w0 * row[s.i0] + s.w1 * row[s.i1]
                        }
                    }
                }
            }
        }
        return out
    }

    /// Float maps are widened to Double first (as metrics.py does).
    public static func upsample(_ map: [Float], height: Int, width: Int, size: Int = outputSize) -> [Double] {
        upsample(map.map(Double.init), height: height, width: width, size: size)
    }

    /// Python's int() of a Double (truncation), kept finite so the conversion cannot trap.
    static func truncate(_ v: Double) -> Int {
        guard !v.isNaN else { return 0 }
        return Int(min(max(v, -1e15), 1e15))
    }

    /// Union of the boxes rasterised at `size`×`size`, row-major.
    public static func boxMask(_ boxes: [Box], size: Int = outputSize) -> [Bool] {
        var g = [Bool](repeating: false, count: size * size)
        let s = Double(size)
        for b in boxes {
            let x = b.x * s, y = b.y * s, w = b.w * s, h = b.h * s
            let x0 = min(max(truncate(x), 0), size), x1 = min(max(truncate(x + w), 0), size)
            let y0 = min(max(truncate(y), 0), size), y1 = min(max(truncate(y + h), 0), size)
            guard x0 < x1 else { continue }
            for r in stride(from: y0, to: y1, by: 1) {
                for c in x0..<x1 { g[r * size + c] = true }
            }
        }
        return g
    }

    /// |P ∧ G| / (|G| + |P ∧ ¬G|) with P = pred > threshold; nil when G is empty.
    public static func iou(_ pred: [Double], _ gt: [Bool], threshold: Double) -> Double? {
        precondition(pred.count == gt.count, "prediction and ground truth differ in size")
        var nGT = 0, inter = 0, extra = 0
        for i in pred.indices {
            let p = pred[i] > threshold
            if gt[i] {
                nGT += 1
                if p { inter += 1 }
            } else if p {
                extra += 1
            }
        }
        guard nGT > 0 else { return nil }
        return Double(inter) / Double(nGT + extra)
    }

    /// numpy's `max` for finite data.
    static func maximum(_ values: [Double]) -> Double {
        var m = -Double.infinity
        for v in values where v > m { m = v }
        return m
    }

    /// IoU of a low-resolution map thresholded at `fraction`·max of its `outputSize`² upsampling.
    public static func relativeIoU(_ map: [Double], height: Int, width: Int, boxes: [Box], fraction: Double) -> Double? {
        let up = upsample(map, height: height, width: width)
        return iou(up, boxMask(boxes), threshold: fraction * maximum(up))
    }

    public static func relativeIoU(_ map: [Float], height: Int, width: Int, boxes: [Box], fraction: Double) -> Double? {
        relativeIoU(map.map(Double.init), height: height, width: width, boxes: boxes, fraction: fraction)
    }

    // MARK: sums as numpy computes them

    /// numpy's pairwise summation of a contiguous Double array (`np.sum`, `np.mean`'s numerator).
    public static func numpySum(_ a: [Double]) -> Double {
        a.withUnsafeBufferPointer { pairwise($0.baseAddress, $0.count) }
    }

    private static func pairwise(_ a: UnsafePointer<Double>?, _ n: Int) -> Double {
        guard let a, n > 0 else { return -0.0 }
        if n < 8 {
            var r = -0.0
            for i in 0..<n { r += a[i] }
            return r
        }
        if n <= 128 {
            var r = (0..<8).map { a[$0] }
            var i = 8
            while i < n - n % 8 {
                for j in 0..<8 { r[j] += a[i + j] }
                i += 8
            }
            var res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            while i < n {
                res += a[i]
                i += 1
            }
            return res
        }
        var n2 = n / 2
        n2 -= n2 % 8
        return pairwise(a, n2) + pairwise(a + n2, n - n2)
    }

    /// `np.mean`; nil for no values.
    public static func numpyMean(_ a: [Double]) -> Double? {
        a.isEmpty ? nil : numpySum(a) / Double(a.count)
    }

    // MARK: curves

    /// success(t) for every threshold: share of the (non-nil) scores ≥ t; all zeros without scores.
    public static func successCurve(_ scores: [Double?]) -> [Double] {
        let s = scores.compactMap { $0 }
        guard !s.isEmpty else { return [Double](repeating: 0, count: thresholds.count) }
        return thresholds.map { t in Double(s.lazy.filter { $0 >= t }.count) / Double(s.count) }
    }

    /// Trapezoid area under success(t) over `thresholds` (numpy.trapz order).
    public static func auc(_ curve: [Double]) -> Double {
        precondition(curve.count == thresholds.count, "a success curve has \(thresholds.count) points")
        let x = thresholds
        let terms = (0..<(x.count - 1)).map { (i: Int) -> Double in
            let dx: Double = x[i + 1] - x[i]
            let sy: Double = curve[i + 1] + curve[i]
            return dx * sy / 2.0
        }
        return numpySum(terms)
    }

    public static func summarizeSolo(_ ious: [Double?]) -> SoloSummary {
        let s = ious.compactMap { $0 }
        let curve = successCurve(s)
        return SoloSummary(iou50: curve[iou50Index], auc: auc(curve), n: s.count, meanIoU: numpyMean(s) ?? 0, success: curve)
    }

    public static func summarizeCocktail(_ cious: [Double?], nsa: [Double?] = [], nsaVisible: [Double?] = []) -> CocktailSummary {
        let s = cious.compactMap { $0 }
        let curve = successCurve(s)
        return CocktailSummary(ciou30: curve[ciou30Index], auc: auc(curve), n: s.count, meanCIoU: numpyMean(s) ?? 0,
                               nsa: numpyMean(nsa.compactMap { $0 }), nsaVisible: numpyMean(nsaVisible.compactMap { $0 }),
                               success: curve)
    }

    // MARK: cocktail scenes

    /// (C, h·w) maps in cluster order → (K, h·w) maps in class order: each class sums its clusters'
    /// maps; clusters mapped outside 0..<K are dropped, a class without a cluster stays 0.
    public static func classProbabilityMaps(_ clusterMaps: [[Double]], clusterToClass: [Int], numClasses: Int) -> [[Double]] {
        let n = clusterMaps.first?.count ?? 0
        var out = [[Double]](repeating: [Double](repeating: 0, count: n), count: numClasses)
        for (j, c) in clusterToClass.enumerated() where j < clusterMaps.count && c >= 0 && c < numClasses {
            let m = clusterMaps[j]
            precondition(m.count == n, "cluster maps differ in size")
            for i in 0..<n { out[c][i] += m[i] }
        }
        return out
    }

    /// Scores of one cocktail-party image. `clusterMaps`: C maps (row-major `height`×`width`) of
    /// per-pixel class probabilities in the model's cluster order.
    public static func cocktailImage(_ clusterMaps: [[Double]], height: Int, width: Int, objects: [SceneObject],
                                     clusterToClass: [Int], numClasses: Int, fraction: Double = syntheticFraction,
                                     nsaThreshold: Double = nsaThreshold) -> CocktailImageScore {
        let classMaps = classProbabilityMaps(clusterMaps, clusterToClass: clusterToClass, numClasses: numClasses)
        let up = classMaps.map { upsample($0, height: height, width: width) }
        return scoreUpsampled(up, objects: objects, fraction: fraction, nsaThreshold: nsaThreshold)
    }

    /// The stage-1 baseline on a cocktail scene: the class-agnostic map `l` stands in for every
    /// class map (silent classes share it too). K defaults to 1 + the largest class id of the objects.
    public static func locOnlyImage(_ l: [Double], height: Int, width: Int, objects: [SceneObject],
                                    fraction: Double = syntheticFraction, nsaThreshold: Double = nsaThreshold,
                                    numClasses: Int? = nil) -> CocktailImageScore {
        let k = numClasses ?? (1 + (objects.map(\.classId).max() ?? -1))
        // Upsampling is linear, so one upsampled copy equals K upsampled copies.
        let up = upsample(l, height: height, width: width)
        return scoreUpsampled([[Double]](repeating: up, count: k), objects: objects, fraction: fraction,
                              nsaThreshold: nsaThreshold)
    }

    /// The part of `cocktail_image` after upsampling: `maps` are K class maps at `outputSize`².
    static func scoreUpsampled(_ maps: [[Double]], objects: [SceneObject], fraction: Double,
                               nsaThreshold: Double) -> CocktailImageScore {
        let k = maps.count
        var sounding = [Int: [Box]]()
        var visible = Set<Int>()
        for o in objects {
            precondition(o.classId >= 0 && o.classId < k, "object class \(o.classId) outside 0..<\(k)")
            visible.insert(o.classId)
            if o.sounding { sounding[o.classId, default: []].append(o.box) }
        }
        let perClass = sounding.keys.sorted().map { c -> ClassScore in
            let m = maps[c]
            return ClassScore(classId: c, iou: iou(m, boxMask(sounding[c]!), threshold: fraction * maximum(m)))
        }
        let ciou = numpyMean(perClass.compactMap(\.iou))
        func nsa(_ classes: Set<Int>) -> Double? {
            let values = classes.sorted().map { c -> Double in
                let m = maps[c]
                return Double(m.lazy.filter { $0 <= nsaThreshold }.count) / Double(m.count)
            }
            return numpyMean(values)
        }
        let soundingSet = Set(sounding.keys)
        return CocktailImageScore(ciou: ciou, nsa: nsa(Set(0..<k).subtracting(soundingSet)),
                                  nsaVisible: nsa(visible.subtracting(soundingSet)), perClass: perClass)
    }

    // MARK: clusters → classes

    /// counts[cluster][class] over paired training labels.
    public static func cooccurrence(clusterIds: [Int], classIds: [Int], nClusters: Int, nClasses: Int) -> [[Int]] {
        var m = [[Int]](repeating: [Int](repeating: 0, count: nClasses), count: nClusters)
        for (k, c) in zip(clusterIds, classIds) {
            precondition((0..<nClusters).contains(k) && (0..<nClasses).contains(c), "cluster \(k) / class \(c) out of range")
            m[k][c] += 1
        }
        return m
    }

    /// Cluster index → class index maximising co-occurrence: one Hungarian round, then further
    /// rounds over the clusters left unassigned while clusters outnumber classes.
    public static func hungarianClusterToClass(clusterIds: [Int], classIds: [Int], nClusters: Int, nClasses: Int) -> [Int] {
        let counts = cooccurrence(clusterIds: clusterIds, classIds: classIds, nClusters: nClusters, nClasses: nClasses)
        var mapping = [Int](repeating: -1, count: nClusters)
        guard nClasses > 0 else { return mapping }
        var left = Array(0..<nClusters)
        while !left.isEmpty {
            let (rows, cols) = linearSumAssignment(left.map { counts[$0].map(Double.init) }, maximize: true)
            for (r, c) in zip(rows, cols) { mapping[left[r]] = c }
            left = (0..<nClusters).filter { mapping[$0] < 0 }
        }
        return mapping
    }

    /// Optimal assignment of a rectangular cost matrix (rows × columns), scipy's
    /// `linear_sum_assignment` including its tie-breaking: shortest augmenting paths with
    /// potentials (O(n³)), one row at a time; a tall matrix is solved transposed. Returns matched
    /// (row, column) pairs in ascending row order.
    public static func linearSumAssignment(_ cost: [[Double]], maximize: Bool = false) -> (rows: [Int], cols: [Int]) {
        let nr0 = cost.count, nc0 = cost.first?.count ?? 0
        guard nr0 > 0, nc0 > 0 else { return ([], []) }
        precondition(cost.allSatisfy { $0.count == nc0 }, "cost matrix rows differ in length")
        let transpose = nc0 < nr0
        let nr = transpose ? nc0 : nr0, nc = transpose ? nr0 : nc0
        var c = [Double](repeating: 0, count: nr * nc)
        for i in 0..<nr0 {
            for j in 0..<nc0 {
                let v = maximize ? -cost[i][j] : cost[i][j]
                precondition(!v.isNaN && v != -.infinity, "cost matrix holds NaN or an unbounded entry")
                if transpose { c[j * nr0 + i] = v } else { c[i * nc + j] = v }
            }
        }

        var u = [Double](repeating: 0, count: nr), v = [Double](repeating: 0, count: nc)
        var shortest = [Double](repeating: .infinity, count: nc)
        var path = [Int](repeating: -1, count: nc)
        var col4row = [Int](repeating: -1, count: nr), row4col = [Int](repeating: -1, count: nc)
        var inSR = [Bool](repeating: false, count: nr), inSC = [Bool](repeating: false, count: nc)
        var remaining = [Int](repeating: 0, count: nc)

        for curRow in 0..<nr {
            // Dijkstra-like search for the cheapest path from curRow to a free column.
            var minVal = 0.0
            var numRemaining = nc
            // Reverse order makes a constant matrix come out as the identity (scipy's choice).
            for it in 0..<nc { remaining[it] = nc - it - 1 }
            for i in 0..<nr { inSR[i] = false }
            for j in 0..<nc {
                inSC[j] = false
                shortest[j] = .infinity
            }
            var i = curRow
            var sink = -1
            while sink == -1 {
                var index = -1
                var lowest = Double.infinity
                inSR[i] = true
                for it in 0..<numRemaining {
                    let j = remaining[it]
                    let r = minVal + c[i * nc + j] - u[i] - v[j]
                    if r < shortest[j] {
                        path[j] = i
                        shortest[j] = r
                    }
                    // Among equal costs prefer a free column: it ends the search.
                    if shortest[j] < lowest || (shortest[j] == lowest && row4col[j] == -1) {
                        lowest = shortest[j]
                        index = it
                    }
                }
                minVal = lowest
                precondition(minVal.isFinite, "infeasible cost matrix")
                let j = remaining[index]
                if row4col[j] == -1 { sink = j } else { i = row4col[j] }
                inSC[j] = true
                numRemaining -= 1
                remaining[index] = remaining[numRemaining]
            }

            u[curRow] += minVal
            for r in 0..<nr where inSR[r] && r != curRow {
                u[r] += minVal - shortest[col4row[r]]
            }
            for j in 0..<nc where inSC[j] {
                v[j] -= minVal - shortest[j]
            }
            var j = sink
            while true {
                let r = path[j]
                row4col[j] = r
                swap(&col4row[r], &j)
                if r == curRow { break }
            }
        }

        if transpose {
            // Rows of the transposed problem are the original columns; report by original row.
            let order = (0..<nr).sorted { col4row[$0] < col4row[$1] }
            return (order.map { col4row[$0] }, order)
        }
        return (Array(0..<nr), col4row)
    }
}
