import ArgumentParser
import Foundation
import SoundlocDSOL
import SoundlocEngine
import SoundlocEval
import SoundlocOutput

/// `soundloc eval`: the paper's metrics (SPEC §6) for a model on a data set's split.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score a model on a data set: solo IoU@0.5/AUC, cocktail-party CIoU@0.3/AUC/NSA (SPEC §6).",
        discussion: """
            DATA is the data-set builder's manifest.json (or its folder), or an annotation JSON in the \
            real-MUSIC form {"<frame>": {"bbox": [{"normbox": [x, y, w, h], "category_id": k}]}}. \
            Solo scenes are scored with the sounding-area map l (threshold 0.1·max); synthetic and free \
            scenes with the class maps at 0.5·max, real duets (music_duet) at 0.2·max. The metric \
            definitions are Tools/dsol/metrics.py's.
            """)

    @Option(help: "Model file (.safetensors, fp32 or int8).")
    var model: String

    @Option(help: "manifest.json (or its folder) or a real-MUSIC annotation JSON.")
    var data: String

    @Option(help: "Split to evaluate (default: test; for an annotation file, the split its name gives).")
    var split: String?

    @Option(help: "Comma-separated kinds to score (solo, synthetic, free, music_solo, music_duet); default: all in the split.")
    var kinds: String?

    @Option(name: .customLong("annotation-kind"), help: "Kind of an annotation file's scenes (music_solo or music_duet); default from its file name.")
    var annotationKind: String?

    @Flag(help: "Stage-1 baseline: the class-agnostic map l stands in for every class map on cocktail scenes.")
    var baseline = false

    @Option(help: "At most N scenes per kind (manifest order).")
    var limit: Int?

    @Option(help: "Threads each layer is split over.")
    var threads = 1

    @Option(help: "Write the full report (summaries, per-class and per-scene scores) as JSON.")
    var json: String?

    @Option(name: .customLong("maps-out"), help: "Write each scene's maps as DIR/<scene>.npy, float32 (K+1, H, W): the K class maps in class order, then l.")
    var mapsOut: String?

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func validate() throws {
        try ThreadCount.validate(threads)
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let kinds, kindList(kinds).isEmpty { throw ValidationError("--kinds needs at least one kind") }
    }

    private func kindList(_ s: String) -> [String] {
        s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func run() throws {
        let known = Manifest.soloKinds.union(Manifest.cocktailKinds)
        let requested = kinds.map(kindList)
        if let bad = requested?.first(where: { !known.contains($0) }) {
            throw Failure(description: "unknown kind '\(bad)' (kinds: \(known.sorted().joined(separator: ", ")))")
        }
        if let annotationKind, !known.contains(annotationKind) {
            throw Failure(description: "unknown --annotation-kind '\(annotationKind)'")
        }

        let manifest: Manifest
        do { manifest = try Manifest.load(path: data, annotationKind: annotationKind) } catch let e as ManifestError {
            throw Failure(description: "\(e)")
        }
        let dsol: DSOLModel
        do { dsol = try DSOLModel(path: model, threads: threads) } catch let e as ModelFileError {
            throw Failure(description: "\(model): \(e)")
        }
        let evaluator: Evaluator
        do { evaluator = try Evaluator(model: dsol, manifest: manifest) } catch let e as EvalError {
            throw Failure(description: "\(model) vs \(manifest.path): \(e)")
        }
        let split = self.split ?? (manifest.form == .annotation ? manifest.scenes.first?.split ?? "test" : "test")
        let options = EvalOptions(split: split, kinds: requested, baseline: baseline, limit: limit, keepMaps: mapsOut != nil)
        let scenes: [Scene]
        do { scenes = try evaluator.selectScenes(options) } catch {
            throw Failure(description: "\(error)")
        }
        if let mapsOut {
            do { try FileManager.default.createDirectory(atPath: mapsOut, withIntermediateDirectories: true) } catch {
                throw Failure(description: "cannot create --maps-out folder \(mapsOut): \(error.localizedDescription)")
            }
        }

        let counts = Dictionary(grouping: scenes, by: \.kind).mapValues(\.count)
        sayToStandardError(
            "evaluating \(scenes.count) scenes of split '\(split)' (" + counts.keys.sorted().map { "\($0) \(counts[$0]!)" }.joined(separator: ", ")
            + ") with \(model), \(baseline ? "stage-1 baseline (l for every class)" : "class-aware maps")")

        var meter = ProgressMeter(total: scenes.count)
        var results = [SceneResult]()
        results.reserveCapacity(scenes.count)
        do {
            for scene in scenes {
                let (result, maps) = try evaluator.evaluate(scene, baseline: baseline, keepMaps: mapsOut != nil)
                results.append(result)
                if let mapsOut, let maps {
                    let k = maps.classMaps.count / (maps.height * maps.width)
                    let path = (mapsOut as NSString).appendingPathComponent(Self.fileName(scene.id) + ".npy")
                    try NPY.write(maps.classMaps + maps.l, shape: [k + 1, maps.height, maps.width], to: path)
                }
                meter.step()
            }
        } catch {
            meter.finish()
            throw Failure(description: "\(error)")
        }
        meter.finish()

        let report = evaluator.report(scenes: scenes, results: results, options: options, modelName: model)
        Self.printTable(report, seconds: meter.elapsed)
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            do { try encoder.encode(report).write(to: URL(fileURLWithPath: json)) } catch {
                throw Failure(description: "cannot write \(json): \(error.localizedDescription)")
            }
            say("wrote \(json)")
        }
        if let mapsOut { say("wrote \(scenes.count) map files to \(mapsOut)") }
    }

    /// A scene id as a file name (annotation ids are frame paths).
    static func fileName(_ id: String) -> String {
        String(id.map { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) ? $0 : "_" })
    }

    static func printTable(_ report: EvalReport, seconds: Double) {
        func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "-" }
        func row(_ cells: [String]) -> String {
            zip(cells, [12, 6, 9, 9, 7, 7, 8]).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: " ")
                .trimmingCharacters(in: .whitespaces)
        }
        say("\(report.mode == "loc_only" ? "stage-1 baseline (l for every class)" : "class-aware") on split '\(report.split)', "
              + "\(report.classes.count) classes, \(report.sceneResults.count) scenes in \(String(format: "%.1f", seconds)) s")
        say(row(["kind", "n", "IoU@0.5", "CIoU@0.3", "AUC", "NSA", "NSA-vis"]))
        for k in report.kinds {
            if let s = k.solo {
                say(row([k.kind, "\(s.n)", f(s.iou50), "-", f(s.auc), "-", "-"]))
            } else if let c = k.cocktail {
                say(row([k.kind, "\(c.n)", "-", f(c.ciou30), f(c.auc), f(c.nsa), f(c.nsaVisible)]))
            }
            let skipped = k.scenes - (k.solo?.n ?? k.cocktail?.n ?? 0)
            if skipped > 0 { say("  (\(skipped) \(k.kind) scenes without a sounding box were skipped)") }
        }
    }
}

/// A one-line "done/total, rate, ETA" progress display on stderr: redrawn in place on a terminal,
/// a line every 10 % otherwise.
struct ProgressMeter {
    let total: Int
    let start = Date()
    let tty = isatty(STDERR_FILENO) == 1
    var done = 0
    var lastDraw = Date.distantPast
    var lastDecile = 0

    init(total: Int) { self.total = total }

    var elapsed: Double { Date().timeIntervalSince(start) }

    mutating func step() {
        done += 1
        if tty {
            guard done == total || Date().timeIntervalSince(lastDraw) >= 0.2 else { return }
            lastDraw = Date()
            write("\r\u{1B}[K" + line())
        } else {
            let decile = total > 0 ? done * 10 / total : 10
            guard decile > lastDecile else { return }
            lastDecile = decile
            write(line() + "\n")
        }
    }

    mutating func finish() {
        if tty && done > 0 { write("\n") }
    }

    func line() -> String {
        let t = elapsed
        let rate = t > 0 ? Double(done) / t : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        return String(format: "%d/%d scenes  %.1f scenes/s  ETA %@", done, total, rate, Self.clock(eta))
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
}
