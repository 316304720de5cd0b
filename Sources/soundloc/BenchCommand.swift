import ArgumentParser
import Foundation
import Histogram
import SoundlocCapture
import SoundlocFeatures

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure latency of soundloc's stages (percentiles, optional JSON report).",
        subcommands: [FeaturesBenchmark.self, EngineBenchmark.self, PipelineBenchmark.self])
}

/// Latency samples of one measured operation, summarised with HdrHistogram.
struct LatencySummary: Codable {
    var name: String
    var iterations: Int
    var medianMicroseconds: Double
    var p99Microseconds: Double
    var maxMicroseconds: Double
    var meanMicroseconds: Double

    /// Runs `body` `iterations` times after `warmup` untimed runs.
    static func measure(_ name: String, iterations: Int, warmup: Int = 10, _ body: () throws -> Void) rethrows -> LatencySummary {
        for _ in 0..<warmup { try body() }
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        for _ in 0..<iterations {
            let start = monotonicNanos()
            try body()
            _ = histogram.record(monotonicNanos() - start)
        }
        return LatencySummary(
            name: name, iterations: iterations,
            medianMicroseconds: Double(histogram.valueAtPercentile(50)) / 1000,
            p99Microseconds: Double(histogram.valueAtPercentile(99)) / 1000,
            maxMicroseconds: Double(histogram.max) / 1000,
            meanMicroseconds: histogram.mean / 1000)
    }

    var row: String {
        [name.padding(toLength: 40, withPad: " ", startingAt: 0), pad(String(iterations), 7),
         pad(String(format: "%.1f", medianMicroseconds), 11), pad(String(format: "%.1f", p99Microseconds), 11),
         pad(String(format: "%.1f", maxMicroseconds), 11)].joined()
    }

    static let header = ["stage".padding(toLength: 40, withPad: " ", startingAt: 0), pad("runs", 7),
                         pad("median µs", 11), pad("p99 µs", 11), pad("max µs", 11)].joined()
}

struct FeaturesBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Cost of the streaming log-mel front end: one window update and one full window.")

    @Option(help: "Window updates per second the appliance asks for (camera frame rate).")
    var rate = 25

    @Option(help: "Timed iterations per measurement.")
    var iterations = 2000

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    struct Report: Codable {
        var updatesPerSecond: Int
        var stages: [LatencySummary]
        var coreShareAtRatePercent: Double
    }

    func validate() throws {
        guard (1...1000).contains(rate) else { throw ValidationError("--rate must be in 1...1000") }
        guard iterations >= 10 else { throw ValidationError("--iterations must be at least 10") }
    }

    func run() throws {
        let config = LogMelConfig.dsol
        var generator = SystemRandomNumberGenerator()
        let noise = (0..<(config.sampleRate * 4)).map { _ in Float.random(in: -0.3...0.3, using: &generator) }
        let stream = try StreamingLogMel(config: config)
        stream.append(Array(noise[0..<config.windowSamples]))
        let step = config.sampleRate / rate / config.hop * config.hop
        var window = [Float](repeating: 0, count: config.windowValueCount)
        var offset = 0
        let update = try LatencySummary.measure("stream update (\(step) samples + window)", iterations: iterations) {
            noise[offset..<(offset + step)].withUnsafeBufferPointer { stream.append($0) }
            offset = (offset + step) % (noise.count - step)
            try window.withUnsafeMutableBufferPointer { try stream.window(endingAt: stream.latestWindowEnd!, into: $0) }
        }
        let clipwise = try LogMel(config: config)
        let full = LatencySummary.measure("full window (clip-wise, 201 frames)", iterations: max(10, iterations / 10)) {
            noise[0..<config.windowSamples].withUnsafeBufferPointer { input in
                window.withUnsafeMutableBufferPointer { clipwise.compute(input, into: $0) }
            }
        }
        let share = update.meanMicroseconds * Double(rate) / 1e6 * 100
        say(LatencySummary.header)
        say(update.row)
        say(full.row)
        say(String(format: "one core at %d updates/s: %.3f %% (mean update × rate)", rate, share))
        if let json {
            let report = Report(updatesPerSecond: rate, stages: [update, full], coreShareAtRatePercent: share)
            try writeJSONReport(report, to: json)
        }
    }
}

/// Writes a benchmark report as pretty, key-sorted JSON (stable diffs between runs) and says so.
func writeJSONReport<Report: Encodable>(_ report: Report, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(report).write(to: URL(fileURLWithPath: path))
    say("wrote \(path)")
}

/// Right-aligns `text` in a column of `width` characters.
func pad(_ text: String, _ width: Int) -> String {
    String(repeating: " ", count: max(0, width - text.count)) + text
}
