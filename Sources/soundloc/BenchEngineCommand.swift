import ArgumentParser
import Foundation
import SoundlocDSOL
import SoundlocEngine

/// `soundloc bench engine`: latency of the two trunks, the heads and the whole frame per thread count,
/// for a model and optionally its int8 twin, plus peak memory. (Registered by `BenchCommand`, not here.)
struct EngineBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Engine latency (vision trunk, audio trunk, heads, full forward) per thread count, fp32 and/or int8, and peak RSS.")

    @Option(help: "Model file (.safetensors), fp32 or int8.")
    var model: String

    @Option(name: .customLong("int8-model"), help: "A second model to measure side by side (normally the int8 file quantised from --model).")
    var int8Model: String?

    @Option(help: "Comma-separated thread counts to measure (each layer split over that many threads, fp32 and int8 alike).")
    var threads = "1,2"

    @Option(help: "Timed iterations per measurement.")
    var iterations = 50

    @Option(help: "Untimed warm-up iterations per measurement.")
    var warmup = 5

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    @Flag(help: "Also print each trunk's per-layer median time (1 thread).")
    var layers = false

    struct Report: Codable {
        var model: String
        var int8Model: String?
        var width: Int
        var int8Kernel: String?
        var stages: [LatencySummary]
        var peakRSSKiB: Int?
        var rssKiB: Int?
    }

    func threadCounts() throws -> [Int] {
        let counts = threads.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.count == threads.split(separator: ",").count, counts.allSatisfy({ ThreadCount.range.contains($0) }) else {
            throw ValidationError("--threads must be a comma-separated list of counts in \(ThreadCount.range.lowerBound)...\(ThreadCount.range.upperBound), e.g. 1,2")
        }
        return counts
    }

    func validate() throws {
        _ = try threadCounts()
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative") }
    }

    func run() throws {
        var models = [(path: String, dsol: DSOLModel)]()
        for path in [model] + (int8Model.map { [$0] } ?? []) {
            let loadStart = Date()
            let dsol: DSOLModel
            do { dsol = try DSOLModel(path: path, threads: 1) } catch let e as ModelFileError { throw ValidationError("\(path): \(e)") }
            say(String(format: "model %@: %@, width %d, %d classes, loaded in %.2f s%@", path, dsol.precision.rawValue, dsol.metadata.width,
                         dsol.metadata.numClasses, Date().timeIntervalSince(loadStart),
                         dsol.int8Kernel.map { ", int8 kernels: \($0)" } ?? ""))
            models.append((path, dsol))
        }
        let first = models[0].dsol
        var rng = SystemRandomNumberGenerator()
        let image = (0..<first.imageCount).map { _ in Float.random(in: -2...2, using: &rng) }
        let audio = (0..<first.audioCount).map { _ in Float.random(in: -80...0, using: &rng) }
        var stages = [LatencySummary]()
        image.withUnsafeBufferPointer { img in
            audio.withUnsafeBufferPointer { aud in
                for n in (try? threadCounts()) ?? [1] {
                    for (_, dsol) in models {
                        dsol.setThreads(n)
                        let tag = dsol.precision.rawValue + (dsol.int8Kernel.map { "/\($0)" } ?? "")
                        stages.append(LatencySummary.measure("vision trunk \(tag), \(n) thr", iterations: iterations, warmup: warmup) {
                            dsol.vision.run(chw: img)
                        })
                        stages.append(LatencySummary.measure("audio trunk \(tag), \(n) thr", iterations: iterations, warmup: warmup) {
                            dsol.audio.run(chw: aud)
                        })
                        stages.append(LatencySummary.measure("heads \(tag), \(n) thr", iterations: iterations, warmup: warmup) {
                            dsol.runHeads()
                        })
                        stages.append(LatencySummary.measure("full forward \(tag), \(n) thr", iterations: iterations, warmup: warmup) {
                            _ = dsol.forward(image: img, audio: aud)
                        })
                    }
                }
            }
        }
        for (_, dsol) in models { dsol.setThreads(1) }
        if layers {
            for (path, dsol) in models {
                image.withUnsafeBufferPointer { dsol.vision.run(chw: $0) }
                audio.withUnsafeBufferPointer { dsol.audio.run(chw: $0) }
                for (name, trunk) in [("vision", dsol.vision), ("audio", dsol.audio)] {
                    let runs = (0..<max(3, min(iterations, 20))).map { _ in trunk.profile() }
                    say("\(path): \(name) trunk (\(dsol.precision)) per layer, median of \(runs.count) runs (1 thread):")
                    var total = 0.0
                    for (i, layer) in runs[0].enumerated() {
                        let times = runs.map { $0[i].seconds }.sorted()
                        let median = times[times.count / 2]
                        total += median
                        say(String(format: "  %8.3f ms  %@", median * 1000, layer.layer))
                    }
                    say(String(format: "  %8.3f ms  total", total * 1000))
                }
            }
        }
        let status = Self.procStatus()
        let kernel = models.compactMap(\.dsol.int8Kernel).first
        if let kernel { say("int8 kernels: \(kernel)") }
        say(LatencySummary.header)
        for s in stages { say(s.row) }
        if let hwm = status["VmHWM"] { say("peak RSS (VmHWM): \(hwm / 1024) MiB") }
        if let rss = status["VmRSS"] { say("RSS now: \(rss / 1024) MiB") }
        if let json {
            let report = Report(model: model, int8Model: int8Model, width: first.metadata.width, int8Kernel: kernel, stages: stages,
                                peakRSSKiB: status["VmHWM"], rssKiB: status["VmRSS"])
            try writeJSONReport(report, to: json)
        }
    }

    /// The kB-valued lines of /proc/self/status (VmHWM, VmRSS, ...), in KiB.
    static func procStatus() -> [String: Int] {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return [:] }
        var out = [String: Int]()
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " || $0 == "\t" })
            if parts.count == 3, parts[2] == "kB", let v = Int(parts[1]) { out[String(parts[0])] = v }
        }
        return out
    }
}
