import ArgumentParser
import Foundation
import Logging
import SoundlocCapture
import SoundlocDSOL
import SoundlocPipeline

/// `soundloc bench pipeline`: the whole appliance on file inputs at real-time pace.
struct PipelineBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Play a clip through the whole pipeline in real time: sustained fps, latency per stage, CPU, memory.")

    @Option(help: "Model file.")
    var model = "Models/dsol-music-int8.safetensors"

    @Option(help: "16 kHz WAV to play (default: a synthesised clip, looped to --seconds).")
    var audio: String?

    @Option(help: "Frames: a folder, a .y4m file or one image (default: a synthetic 640×480 still).")
    var video: String?

    @Option(help: "Camera frame rate to simulate.")
    var fps = 30.0

    @Option(help: "Processed frames per second the pipeline may use at most.")
    var maxFps = 25.0

    @Option(help: "Seconds to play.")
    var seconds = 20.0

    @Option(help: "Inference threads.")
    var threads = 2

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    struct Report: Codable {
        var model: String
        var seconds: Double
        var cameraFps: Double
        var sustainedFps: Double
        var framesProcessed: Int
        var framesDropped: Int
        var stagesMilliseconds: [String: [String: Double]]
        var cpuPercentOfOneCore: Double
        var peakRSSMiB: Double
    }

    func validate() throws {
        guard seconds >= 2, seconds <= 3600 else { throw ValidationError("--seconds must be in 2...3600") }
        guard fps > 0, maxFps > 0 else { throw ValidationError("--fps and --max-fps must be positive") }
        try ThreadCount.validate(threads)
    }

    func run() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-bench-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let audioPath = try audio ?? {
            let clip = SyntheticClip.synthesize(seconds: 4)
            let looped = (0..<Int(seconds * 16000)).map { clip[$0 % clip.count] }
            let path = scratch.appendingPathComponent("clip.wav").path
            try Data(WAVFile.encodePCM16(looped, sampleRate: 16000)).write(to: URL(fileURLWithPath: path))
            return path
        }()
        let videoPath = try video ?? {
            var ppm = Array("P6\n640 480\n255\n".utf8)
            for y in 0..<480 { for x in 0..<640 { ppm += [UInt8(x % 256), UInt8(y % 256), UInt8((x + y) % 256)] } }
            let path = scratch.appendingPathComponent("still.ppm").path
            try Data(ppm).write(to: URL(fileURLWithPath: path))
            return path
        }()

        var settings = ApplianceConfig()
        settings.model.path = model
        settings.engine.threads = threads
        settings.pipeline.maxFps = maxFps
        settings.output.socket = "none"
        let session = try ApplianceSession(settings: settings, release: SoundlocVersion.release, audioFile: audioPath, videoFile: videoPath, fps: fps,
                                           fast: false, frameLimit: nil, logger: Log.logger("soundloc.bench"))
        var usageBefore = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usageBefore)
        let started = monotonicNanos()
        let stats = try session.run()
        let wall = Double(monotonicNanos() - started) / 1e9
        var usageAfter = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usageAfter)
        func cpuSeconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        let cpu = cpuSeconds(usageAfter.ru_utime) + cpuSeconds(usageAfter.ru_stime) - cpuSeconds(usageBefore.ru_utime) - cpuSeconds(usageBefore.ru_stime)
        let peak = Double(EngineBenchmark.procStatus()["VmHWM"] ?? 0) / 1024

        // The first second of frames waits for a full audio window; fps counts the time after it.
        let sustained = Double(stats.framesProcessed) / max(0.001, wall - 1)
        say(PipelineSummary.text(stats))
        say(String(format: "sustained %.1f processed frames/s over %.1f s (camera %.0f fps, cap %.0f); CPU %.0f %% of one core; peak RSS %.0f MiB",
                     sustained, wall, fps, maxFps, cpu / wall * 100, peak))
        if let json {
            var stages: [String: [String: Double]] = [:]
            for stage in PipelineStatistics.stageNames {
                if let p = stats.percentiles(stage) { stages[stage] = ["p50": p.p50, "p99": p.p99] }
            }
            let report = Report(model: model, seconds: wall, cameraFps: fps, sustainedFps: sustained,
                                framesProcessed: stats.framesProcessed, framesDropped: stats.framesDropped,
                                stagesMilliseconds: stages, cpuPercentOfOneCore: cpu / wall * 100, peakRSSMiB: peak)
            try writeJSONReport(report, to: json)
        }
    }
}

/// A synthesised test sound (drone, plucked melody, drum hits) for benchmarks that need no audio file.
enum SyntheticClip {
    static func synthesize(seconds: Int, sampleRate: Int = 16000) -> [Float] {
        let count = seconds * sampleRate
        var clip = [Float](repeating: 0, count: count)
        // Bowed drone: a sawtooth-like sum of harmonics with slow vibrato.
        for i in 0..<count {
            let t = Double(i) / Double(sampleRate)
            let f = 110 * (1 + 0.004 * sin(2 * .pi * 5 * t))
            var sample = 0.0
            for harmonic in 1...12 { sample += sin(2 * .pi * f * Double(harmonic) * t) / Double(harmonic) }
            clip[i] = Float(0.08 * sample)
        }
        // Plucked melody: decaying harmonic notes, eight per second.
        let notes: [Double] = [440, 494, 523, 587, 659, 587, 523, 494]
        for n in 0..<(seconds * 4) {
            let onset = n * sampleRate / 4, f = notes[n % notes.count]
            for i in onset..<min(count, onset + sampleRate / 4) {
                let t = Double(i - onset) / Double(sampleRate)
                let note = (sin(2 * .pi * f * t) + 0.5 * sin(4 * .pi * f * t) + 0.25 * sin(6 * .pi * f * t)) * exp(-9 * t)
                clip[i] += Float(0.25 * note)
            }
        }
        // Two drum hits: shaped noise bursts from a fixed-seed generator.
        var state: UInt32 = 12345
        for onset in [sampleRate, 3 * sampleRate] where onset < count {
            for i in onset..<min(count, onset + sampleRate / 8) {
                state = state &* 1_664_525 &+ 1_013_904_223
                let noise = Double(Int32(bitPattern: state)) / Double(Int32.max)
                clip[i] += Float(0.3 * noise * exp(-30 * Double(i - onset) / Double(sampleRate)))
            }
        }
        return clip.map { max(-1, min(1, $0)) }
    }
}
