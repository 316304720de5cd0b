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
        let session = try ApplianceSession(settings: settings, audioFile: audio, videoFile: video, fps: fps, fast: fast,
                                           frameLimit: frames, record: record.map { (path: $0, maps: recordMaps) }, logger: logger) { facts in
            guard verbose || !facts.publishes else { return nil }
            return { processed in print(FrameLine.describe(processed.report, classes: facts.classes)) }
        }
        let stats = try session.run()
        print(PipelineSummary.text(stats))
    }
}

/// Builds the sources, model, server and pipeline a run needs, and tears them down afterwards.
///
/// From the moment the socket can exist until it is gone again, SIGINT, SIGTERM and SIGHUP stop the
/// pipeline instead of killing the process, so every command built on a session (`run`, `demo`) ends the
/// same clean way: clients get STATUS stopped, the socket file is removed, the summary is printed.
///
/// The composition root: everything is wired here, once, through constructor arguments; see docs/THREADING.md for
/// the threads the pieces run on.
final class ApplianceSession {
    /// What a command observing the run learns once the session is built, to decide how to watch its frames.
    struct Facts: Sendable {
        /// The model's class names, indexed as in reports.
        let classes: [String]
        /// Whether reports go anywhere (a socket or a record).
        let publishes: Bool
    }

    /// Given the session's facts, what to call (on the processing thread) with each processed frame; nil for nothing.
    typealias FrameObserver = (Facts) -> (@Sendable (ProcessedFrame) -> Void)?

    let pipeline: Pipeline
    let classes: [String]
    let server: SocketServer?
    let recorder: NDJSONRecorder?
    var publishes: Bool { server != nil || recorder != nil }
    private let audio: AudioSource
    private let video: VideoSource
    private let signals: StopSignal
    /// Tells systemd (when it started us with NOTIFY_SOCKET) that the pipeline runs and still beats.
    private let notifier = SystemdNotifier()

    /// `record`: also write the socket's messages to this file (`-`: standard output), with or without maps.
    /// `observe` is called once, before the pipeline is built, for its per-frame callback.
    init(settings: ApplianceConfig, audioFile: String?, videoFile: String?, fps: Double, fast: Bool, frameLimit: Int?,
         record: (path: String, maps: Bool)? = nil, logger: Logger, observe: FrameObserver = { _ in nil }) throws {
        let model = try DSOLModel(path: settings.model.path, threads: settings.engine.threads)
        classes = model.classes
        let frameSize: (width: Int, height: Int)
        if let audioFile, let videoFile {
            let clock = PlaybackClock(realTime: !fast)
            let wav = try WAVFileSource(path: audioFile, sampleRate: model.metadata.audio.sampleRate)
            audio = PacedAudioSource(wav, clock: clock)
            // A still image is shown for as long as the audio plays.
            let files = try FileVideoSource(path: videoFile, fps: fps, clock: clock,
                                            stillSeconds: Double(wav.sampleCount) / Double(wav.sampleRate))
            frameSize = files.frameSize
            video = files
        } else {
            audio = try ALSACaptureSource(pcmName: settings.audio.pcm, sampleRate: model.metadata.audio.sampleRate,
                                          periodFrames: model.metadata.audio.sampleRate * settings.audio.periodMilliseconds / 1000,
                                          logger: logger)
            video = try V4L2CaptureSource(devicePath: settings.video.device, width: settings.video.width,
                                          height: settings.video.height, framesPerSecond: Double(settings.video.fps),
                                          logger: logger)
            frameSize = (settings.video.width, settings.video.height)
        }
        var options = PipelineOptions()
        options.maxFps = settings.pipeline.maxFps
        options.silenceDBFS = settings.pipeline.silenceDBFS
        options.minSoundingPeak = settings.pipeline.minSoundingPeak
        options.lockstep = fast
        options.frameLimit = frameLimit
        // Before the socket exists: a signal from here on stops the run (even one not started yet) cleanly; it is
        // caught now and acted on once the pipeline below exists.
        let signals = StopSignal.install(StopSignal.shutdown, logger: logger)
        self.signals = signals
        let banner = VersionMessage(
            release: SoundlocVersion.release,
            model: ModelIdentity(name: (settings.model.path as NSString).lastPathComponent, checksum: model.metadata.checksum),
            classes: model.classes, imageWidth: frameSize.width, imageHeight: frameSize.height)
        do {
            recorder = try record.map { try NDJSONRecorder(path: $0.path, banner: banner, maps: $0.maps, logger: logger) }
        } catch {
            signals.uninstall()
            throw error
        }
        // A socket systemd passed (soundloc.socket) is served whatever output.socket says: the unit owns its path,
        // mode and group.
        let passed: Int32?
        do {
            passed = try SocketActivation.takeListeningSocket()
        } catch {
            recorder?.close()
            signals.uninstall()
            throw error
        }
        if settings.output.socket != "none" || passed != nil {
            let server: SocketServer
            do {
                server = try SocketServer.start(
                    configuration: .init(path: settings.output.socket, mode: mode_t(settings.output.socketMode),
                                         group: settings.output.socketGroup, maxClients: settings.output.maxClients),
                    banner: banner, logger: logger, listening: passed)
            } catch {
                if let passed { close(passed) }
                recorder?.close()
                signals.uninstall()  // no run will follow to give the signals back
                throw error
            }
            self.server = server
            let path = passed.map(SocketActivation.boundPath) ?? settings.output.socket
            if let passed, SocketActivation.boundPath(passed) != settings.output.socket, settings.output.socket != "none" {
                logger.notice("serving the socket systemd passed, not output.socket", metadata: ["passed": "\(path)", "configured": "\(settings.output.socket)"])
            }
            logger.info("serving", metadata: ["socket": "\(path)"])
        } else {
            server = nil
        }
        let sinks = [server as ReportSink?, recorder].compactMap { $0 }
        let pipeline: Pipeline
        do {
            pipeline = try Pipeline(audio: audio, video: video, model: model, options: options, sinks: sinks,
                                    onFrame: observe(Facts(classes: classes, publishes: !sinks.isEmpty)),
                                    onHeartbeat: { [notifier] in notifier.heartbeat() }, logger: logger)
        } catch {
            server?.shutdown()
            recorder?.close()
            signals.uninstall()
            throw error
        }
        self.pipeline = pipeline
        signals.whenRequested { pipeline.stop() }
    }

    func run() throws -> PipelineStatistics {
        defer {
            notifier.stopping()
            server?.shutdown()
            if let recorder, let failure = recorder.close() { sayToStandardError("soundloc: the record stopped early: \(failure)") }
            audio.close()
            video.close()
            signals.uninstall()
        }
        return try pipeline.run()
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
