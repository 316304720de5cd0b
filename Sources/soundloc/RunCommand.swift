import ArgumentParser
import Dispatch
import Foundation
import Logging
import SoundlocCapture
import SoundlocDSOL
import SoundlocOutput
import SoundlocPipeline

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the appliance: capture, localise, publish on the UNIX socket (Ctrl-C stops).",
        discussion: """
            Live: `soundloc run --config Firmware-Configs/raspberry-pi-5.yaml` captures the configured ALSA PCM and \
            V4L2 camera. From files: add --audio CLIP.wav and --video (a folder of PNG/PPM frames, a .y4m stream, \
            or one image) to replay them through the same pipeline, in real time (default) or --fast (every \
            frame, as fast as possible). Options given on the command line override the config file.
            """)

    @Option(help: "Board configuration (YAML, see Firmware-Configs/).")
    var config: String?

    @Option(help: "Model file (overrides the config).")
    var model: String?

    @Option(help: "Replay this 16 kHz WAV instead of capturing audio.")
    var audio: String?

    @Option(help: "Replay frames from a folder of images, a .y4m file, or one still image instead of a camera.")
    var video: String?

    @Option(help: "Frame rate of --video when the file does not say.")
    var fps = 25.0

    @Flag(help: "With --audio/--video: process every frame in order as fast as possible instead of in real time.")
    var fast = false

    @Option(help: "Socket path (overrides the config); 'none' publishes nothing.")
    var socket: String?

    @Option(help: "Stop after this many processed frames.")
    var frames: Int?

    @Option(help: "Inference threads (overrides the config).")
    var threads: Int?

    @Flag(help: "Print one line per processed frame.")
    var verbose = false

    @Option(help: ArgumentHelp("Also write every message the socket carries (banner, FRAMEs, STATUS) to this file, one JSON object per line; '-' for standard output (the summary then goes to standard error).", valueName: "file.ndjson"))
    var record: String?

    @Flag(help: "With --record: put the class and sounding-area maps in every recorded FRAME (about 14 KB each).")
    var recordMaps = false

    func validate() throws {
        if (audio == nil) != (video == nil) { throw ValidationError("--audio and --video go together (file replay)") }
        if fast && audio == nil { throw ValidationError("--fast applies to file replay (--audio/--video)") }
        guard fps > 0, fps <= 240 else { throw ValidationError("--fps must be in (0, 240]") }
        if let threads, !(1...64).contains(threads) { throw ValidationError("--threads must be in 1...64") }
        if recordMaps && record == nil { throw ValidationError("--record-maps goes with --record") }
        if record?.isEmpty == true { throw ValidationError("--record needs a file name, or - for standard output") }
    }

    func run() throws {
        var settings = try config.map { try ApplianceConfig.load(path: $0) } ?? ApplianceConfig()
        if let model { settings.model.path = model }
        if let socket { settings.output.socket = socket }
        if let threads { settings.engine.threads = threads }
        var logger = Log.logger("soundloc.run")
        if let level = Logger.Level(rawValue: settings.logLevel), config != nil { logger.logLevel = level }
        try settings.applyKernelChoice(file: config ?? "the built-in configuration")

        // Standard output may carry the record: then everything meant for a person goes to standard error.
        let toStandardError = record == "-"
        let print: @Sendable (String) -> Void = { toStandardError ? sayToStandardError($0) : say($0) }
        let verbose = verbose
        let session = try ApplianceSession(settings: settings, release: SoundlocVersion.release, audioFile: audio, videoFile: video,
                                           fps: fps, fast: fast, frameLimit: frames, record: record.map { (path: $0, maps: recordMaps) },
                                           logger: logger, notice: { sayToStandardError("soundloc: \($0)") }, observe: { facts in
            guard verbose || !facts.publishes else { return nil }
            return { processed in print(FrameLine.describe(processed.report, classes: facts.classes)) }
        })
        let stats = try session.run()
        print(PipelineSummary.text(stats))
    }
}

/// One human-readable line per processed frame.
enum FrameLine {
    static func describe(_ report: FrameReport, classes: [String]) -> String {
        let sounding = report.sounding.map {
            String(format: "%@ %.2f at (%.2f, %.2f)", classes[$0.classIndex], $0.score, $0.peakX, $0.peakY)
        }
        let silent = report.silentVisible.map { classes[$0] }
        let unlocated = report.unlocated.map {
            "\(classes[$0.classIndex]) (\(UnlocatedText.reason($0.reason.rawValue, value: Double($0.value), threshold: Double($0.threshold))))"
        }
        let head = String(format: "#%-5llu", report.sequence)
        if report.silence { return "\(head) silence" + (silent.isEmpty ? "" : "; visible: \(silent.joined(separator: ", "))") }
        return "\(head) sounding: \(sounding.isEmpty ? "nothing in view" : sounding.joined(separator: "; "))"
            + (silent.isEmpty ? "" : "; silent: \(silent.joined(separator: ", "))")
            + (unlocated.isEmpty ? "" : "; heard, not located: \(unlocated.joined(separator: ", "))")
    }
}

/// The end-of-run summary: counts and per-stage latency percentiles.
enum PipelineSummary {
    static func text(_ stats: PipelineStatistics) -> String {
        var lines = ["frames: \(stats.framesCaptured) captured, \(stats.framesProcessed) processed, \(stats.framesDropped) dropped, \(stats.framesWarmingUp) before the first second of audio; audio over-runs \(stats.audioOverruns), device failures \(stats.deviceFailures)"]
        for stage in PipelineStatistics.stageNames {
            if let p = stats.percentiles(stage) {
                lines.append("  " + stage.padding(toLength: 20, withPad: " ", startingAt: 0)
                             + String(format: "p50 %8.2f ms   p99 %8.2f ms", p.p50, p.p99))
            }
        }
        return lines.joined(separator: "\n")
    }
}
