import Foundation
import SoundlocCapture
import SoundlocDSOL
import SoundlocFeatures

/// Why an evaluation cannot run.
public enum EvalError: Error, CustomStringConvertible, Equatable {
    case classMismatch(String)
    case noScenes(String)
    case badScene(scene: String, reason: String)
    case audioFeatures(String)

    public var description: String {
        switch self {
        case let .classMismatch(why): return why
        case let .noScenes(why): return why
        case let .badScene(scene, reason): return "scene \(scene): \(reason)"
        case let .audioFeatures(why): return why
        }
    }
}

/// What to evaluate.
public struct EvalOptions: Sendable {
    public var split: String
    /// Kinds to score; nil: every kind the split holds.
    public var kinds: [String]?
    /// Score cocktail scenes with the stage-1 map l standing in for every class (metrics.py's `loc_only_image`).
    public var baseline: Bool
    /// At most this many scenes per kind (manifest order), as train.py's eval limit.
    public var limit: Int?
    /// Hand each scene's maps to the progress callback.
    public var keepMaps: Bool

    public init(split: String = "test", kinds: [String]? = nil, baseline: Bool = false, limit: Int? = nil,
                keepMaps: Bool = false) {
        self.split = split
        self.kinds = kinds
        self.baseline = baseline
        self.limit = limit
        self.keepMaps = keepMaps
    }
}

/// Scores of one scene: `iou` for solo scenes, the cocktail fields otherwise (nil where undefined).
public struct SceneResult: Codable, Equatable, Sendable {
    public var id: String
    public var kind: String
    /// Peak of the sounding-area map l.
    public var matchScore: Double
    public var iou: Double?
    public var ciou: Double?
    public var nsa: Double?
    public var nsaVisible: Double?
    public var perClass: [ClassScore]?

    enum CodingKeys: String, CodingKey {
        case id, kind, matchScore = "match_score", iou, ciou, nsa, nsaVisible = "nsa_visible", perClass = "per_class"
    }
}

/// One scene's low-resolution maps: the class maps in class order (what the metrics score) and l.
public struct SceneMaps: Sendable {
    public var height: Int
    public var width: Int
    /// K × height × width, class-major.
    public var classMaps: [Float]
    public var l: [Float]
}

/// Per-class breakdown of one kind: solo scenes by the class of their sounding object, cocktail
/// scenes by each sounding class's IoU.
public struct ClassReport: Codable, Equatable, Sendable {
    public var classId: Int
    public var name: String
    public var n: Int
    /// Solo kinds: success(t_10).
    public var iou50: Double?
    /// Cocktail kinds: success(t_6) of the class's IoUs.
    public var ciou30: Double?
    public var auc: Double
    public var meanIoU: Double

    enum CodingKeys: String, CodingKey {
        case classId = "class_id", name = "class", n, iou50 = "iou@0.5", ciou30 = "ciou@0.3", auc, meanIoU = "mean_iou"
    }
}

/// Results of one kind of scene.
public struct KindReport: Codable, Equatable, Sendable {
    public var kind: String
    /// Scenes evaluated (scored or skipped for an empty ground truth).
    public var scenes: Int
    public var solo: SoloSummary?
    public var cocktail: CocktailSummary?
    public var perClass: [ClassReport]

    enum CodingKeys: String, CodingKey { case kind, scenes, solo, cocktail, perClass = "per_class" }
}

/// A whole evaluation run.
public struct EvalReport: Codable, Equatable, Sendable {
    public var model: String
    public var data: String
    public var split: String
    /// "class_aware" (class maps) or "loc_only" (the stage-1 baseline).
    public var mode: String
    /// Data classes, indexed by class id.
    public var classes: [String]
    /// The model's cluster → class map used (identity when the model has none).
    public var clusterToClass: [Int]
    public var kinds: [KindReport]
    public var sceneResults: [SceneResult]

    enum CodingKeys: String, CodingKey {
        case model, data, split, mode, classes, clusterToClass = "cluster_to_class", kinds, sceneResults = "scenes"
    }

    public func kind(_ name: String) -> KindReport? { kinds.first { $0.kind == name } }
}

/// Progress after each scene.
public struct EvalProgress {
    public var done: Int
    public var total: Int
    public var scene: Scene
    public var result: SceneResult
    /// Present when `EvalOptions.keepMaps` is set.
    public var maps: SceneMaps?
}

/// Runs a DSOL model over a split and scores it with `Metrics` the way `Tools/dsol/train.py`'s
/// `evaluate` does: solo kinds by the IoU of l at 0.1·max; cocktail kinds by CIoU and NSA of the
/// class maps (cluster maps summed per class through the model's cluster_to_class) at 0.5·max,
/// 0.2·max for real duets. Sequential and deterministic; one model forward per scene.
public final class Evaluator {
    public let model: DSOLModel
    public let manifest: Manifest
    /// Data classes K, indexed by class id.
    public let classes: [String]
    public let clusterToClass: [Int]
    private let logMel: LogMel
    private var preprocessors = [[Int]: ImagePreprocessor]()

    public init(model: DSOLModel, manifest: Manifest) throws {
        self.model = model
        self.manifest = manifest
        let meta = model.metadata
        (classes, clusterToClass) = try Self.resolveClasses(model: meta, manifest: manifest.classes)
        do { logMel = try LogMel(config: try meta.logMelConfig()) } catch {
            throw EvalError.audioFeatures("the model's audio features \(meta.audio) cannot be computed here: \(error)")
        }
    }

    /// Data classes and the cluster → class map, checked against the manifest's class list. The
    /// trainer names clusters after their class ("violin", then "violin_2", ...); without a
    /// cluster_to_class the model's classes must be the manifest's, in order. Annotation files carry
    /// no class list: the names then come from the model.
    static func resolveClasses(model meta: ModelMetadata, manifest: [String]?) throws -> ([String], [Int]) {
        func list(_ names: [String]) -> String {
            names.count <= 12 ? names.joined(separator: ", ") : names.prefix(12).joined(separator: ", ") + ", ..."
        }
        guard let c2c = meta.clusterToClass else {
            if let manifest, manifest != meta.classes {
                throw EvalError.classMismatch(
                    "the model's classes (\(list(meta.classes))) do not match the manifest's (\(list(manifest)))")
            }
            return (manifest ?? meta.classes, Array(0..<meta.numClasses))
        }
        guard c2c.count == meta.numClasses else {
            throw EvalError.classMismatch("the model's cluster_to_class has \(c2c.count) entries for \(meta.numClasses) clusters")
        }
        let dataClasses: [String]
        if let manifest {
            if let bad = c2c.first(where: { $0 >= manifest.count }) {
                throw EvalError.classMismatch("the model maps a cluster to class \(bad), but the manifest has \(manifest.count) classes")
            }
            dataClasses = manifest
        } else {
            // The first cluster of each class carries the plain class name.
            let k = (c2c.max() ?? -1) + 1
            dataClasses = (0..<k).map { c in c2c.firstIndex(of: c).map { meta.classes[$0] } ?? "class\(c)" }
        }
        var seen = [Int: Int]()
        for (j, c) in c2c.enumerated() {
            seen[c, default: 0] += 1
            let expected = seen[c]! == 1 ? dataClasses[c] : "\(dataClasses[c])_\(seen[c]!)"
            guard meta.classes[j] == expected else {
                throw EvalError.classMismatch(
                    "the model's cluster \(j) is named '\(meta.classes[j])' but maps to the manifest's class \(c) '\(dataClasses[c])'"
                        + " (model classes: \(list(meta.classes)); manifest classes: \(list(dataClasses)))")
            }
        }
        return (dataClasses, c2c)
    }

    /// The scenes `options` selects, grouped by kind (kinds in name order, scenes in manifest
    /// order, at most `limit` per kind), after checking their files and class ids.
    public func selectScenes(_ options: EvalOptions) throws -> [Scene] {
        let inSplit = manifest.scenes.filter { $0.split == options.split }
        guard !inSplit.isEmpty else {
            let splits = Set(manifest.scenes.map(\.split)).sorted()
            throw EvalError.noScenes("no scenes in split '\(options.split)' of \(manifest.path) (splits there: \(splits.isEmpty ? "none" : splits.joined(separator: ", ")))")
        }
        let present = Set(inSplit.map(\.kind))
        let kinds = options.kinds.map { Array(Set($0)).sorted() } ?? present.sorted()
        for k in kinds where !present.contains(k) {
            throw EvalError.noScenes("no '\(k)' scenes in split '\(options.split)' (kinds there: \(present.sorted().joined(separator: ", ")))")
        }
        var selected = [Scene]()
        for k in kinds {
            var group = inSplit.filter { $0.kind == k }
            if let limit = options.limit { group = Array(group.prefix(max(0, limit))) }
            selected += group
        }
        for s in selected {
            if let bad = s.objects.first(where: { $0.classId >= classes.count }) {
                throw EvalError.badScene(scene: s.id, reason: "class id \(bad.classId) is not below the \(classes.count) classes")
            }
        }
        try Manifest.checkFiles(selected)
        return selected
    }

    /// Scores one scene (one forward pass).
    public func evaluate(_ scene: Scene, baseline: Bool, keepMaps: Bool = false) throws -> (SceneResult, SceneMaps?) {
        let meta = model.metadata
        let wav = try WAVFile.read(path: scene.audio, requiring: meta.audio.sampleRate)
        let rate = Double(wav.sampleRate)
        let start = scene.audioWindow.startSeconds(duration: Double(wav.samples.count) / rate)
        // Python's round(): half to even.
        let first = max(0, Int((start * rate).rounded(.toNearestOrEven)))
        let clip = first < wav.samples.count ? Array(wav.samples[first...].prefix(logMel.config.windowSamples)) : []
        let audio = logMel.window(clip)

        let picture: RGBImage
        do { picture = try ImageFile.read(path: scene.image) } catch {
            throw EvalError.badScene(scene: scene.id, reason: "\(error)")
        }
        let image = preprocessor(width: picture.width, height: picture.height).process(rgb: picture.pixels)

        let out = model.forward(image: image, audio: audio)
        let h = out.mapHeight, w = out.mapWidth
        let l = out.l.map(Double.init)
        var result = SceneResult(id: scene.id, kind: scene.kind, matchScore: Double(out.matchScore))
        var classMaps: [[Double]] = []
        if scene.isSolo {
            let boxes = scene.objects.filter(\.sounding).map(\.box)
            result.iou = Metrics.relativeIoU(l, height: h, width: w, boxes: boxes, fraction: Metrics.soloFraction)
            if keepMaps { classMaps = clusterMaps(out) }
        } else {
            let fraction = scene.kind == "music_duet" ? Metrics.duetFraction : Metrics.syntheticFraction
            let score: CocktailImageScore
            if baseline {
                score = Metrics.locOnlyImage(l, height: h, width: w, objects: scene.objects, fraction: fraction,
                                             numClasses: classes.count)
                if keepMaps { classMaps = [[Double]](repeating: l, count: classes.count) }
            } else {
                let maps = clusterMaps(out)
                score = Metrics.cocktailImage(maps, height: h, width: w, objects: scene.objects,
                                              clusterToClass: clusterToClass, numClasses: classes.count, fraction: fraction)
                if keepMaps { classMaps = maps }
            }
            result.ciou = score.ciou
            result.nsa = score.nsa
            result.nsaVisible = score.nsaVisible
            result.perClass = score.perClass
        }
        guard keepMaps else { return (result, nil) }
        if !(baseline && !scene.isSolo) {
            classMaps = Metrics.classProbabilityMaps(classMaps, clusterToClass: clusterToClass, numClasses: classes.count)
        }
        let maps = SceneMaps(height: h, width: w, classMaps: classMaps.flatMap { $0.map(Float.init) }, l: Array(out.l))
        return (result, maps)
    }

    /// Per-pixel class probabilities in cluster order, widened to Double.
    private func clusterMaps(_ out: DSOLOutput) -> [[Double]] {
        (0..<out.numClasses).map { out.classMap($0).map(Double.init) }
    }

    private func preprocessor(width: Int, height: Int) -> ImagePreprocessor {
        if let p = preprocessors[[width, height]] { return p }
        if preprocessors.count >= 8 { preprocessors.removeAll() }  // bounded: MUSIC frames come in a few sizes
        let meta = model.metadata
        let p = ImagePreprocessor(inputWidth: width, inputHeight: height, outputSize: meta.imageSize,
                                  mean: meta.imageMean, std: meta.imageStd)
        preprocessors[[width, height]] = p
        return p
    }

    /// Evaluates every selected scene and summarises each kind.
    public func run(_ options: EvalOptions, modelName: String = "", progress: ((EvalProgress) -> Void)? = nil) throws -> EvalReport {
        let scenes = try selectScenes(options)
        var results = [SceneResult]()
        results.reserveCapacity(scenes.count)
        for (n, scene) in scenes.enumerated() {
            let (result, maps) = try evaluate(scene, baseline: options.baseline, keepMaps: options.keepMaps)
            results.append(result)
            progress?(EvalProgress(done: n + 1, total: scenes.count, scene: scene, result: result, maps: maps))
        }
        return report(scenes: scenes, results: results, options: options, modelName: modelName)
    }

    /// Summaries of per-scene results (scenes and results in the same order).
    public func report(scenes: [Scene], results: [SceneResult], options: EvalOptions, modelName: String = "") -> EvalReport {
        var kinds = [KindReport]()
        var order = [String]()
        for s in scenes where !order.contains(s.kind) { order.append(s.kind) }
        for kind in order {
            let pairs = zip(scenes, results).filter { $0.0.kind == kind }
            var byClass = [Int: [Double]]()
            var report = KindReport(kind: kind, scenes: pairs.count, solo: nil, cocktail: nil, perClass: [])
            if Manifest.soloKinds.contains(kind) {
                report.solo = Metrics.summarizeSolo(pairs.map { $0.1.iou })
                for (scene, result) in pairs {
                    // A solo scene's class: its first object's (data.py's label).
                    guard let iou = result.iou, let c = scene.objects.first?.classId else { continue }
                    byClass[c, default: []].append(iou)
                }
            } else {
                let r = pairs.map(\.1)
                report.cocktail = Metrics.summarizeCocktail(r.map(\.ciou), nsa: r.map(\.nsa), nsaVisible: r.map(\.nsaVisible))
                for result in r {
                    for cs in result.perClass ?? [] {
                        if let iou = cs.iou { byClass[cs.classId, default: []].append(iou) }
                    }
                }
            }
            report.perClass = byClass.keys.sorted().map { c in
                let curve = Metrics.successCurve(byClass[c]!)
                let solo = Manifest.soloKinds.contains(kind)
                return ClassReport(classId: c, name: c < classes.count ? classes[c] : "class\(c)", n: byClass[c]!.count,
                                   iou50: solo ? curve[Metrics.iou50Index] : nil, ciou30: solo ? nil : curve[Metrics.ciou30Index],
                                   auc: Metrics.auc(curve), meanIoU: Metrics.numpyMean(byClass[c]!) ?? 0)
            }
            kinds.append(report)
        }
        return EvalReport(model: modelName, data: manifest.path, split: options.split,
                          mode: options.baseline ? "loc_only" : "class_aware", classes: classes,
                          clusterToClass: clusterToClass, kinds: kinds, sceneResults: results)
    }
}
