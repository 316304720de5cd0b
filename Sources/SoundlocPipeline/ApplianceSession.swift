import Foundation
import Logging
import SoundlocCapture
import SoundlocDSOL
import SoundlocOutput

/// Builds the sources, model, server and pipeline a run needs, and tears them down afterwards.
///
/// From the moment the socket can exist until it is gone again, SIGINT, SIGTERM and SIGHUP stop the
/// pipeline instead of killing the process, so every command built on a session (`run`, `demo`) ends the
/// same clean way: clients get STATUS stopped, the socket file is removed, the summary is printed.
///
/// The composition root: everything is wired here, once, through constructor arguments; see docs/THREADING.md for
/// the threads the pieces run on.
public final class ApplianceSession {
    /// What a command observing the run learns once the session is built, to decide how to watch its frames.
    public struct Facts: Sendable {
        /// The model's class names, indexed as in reports.
        public let classes: [String]
        /// Whether reports go anywhere (a socket or a record).
        public let publishes: Bool
    }

    /// Given the session's facts, what to call (on the processing thread) with each processed frame; nil for nothing.
    public typealias FrameObserver = (Facts) -> (@Sendable (ProcessedFrame) -> Void)?

    public let pipeline: Pipeline
    public let classes: [String]
    public let server: SocketServer?
    public let recorder: NDJSONRecorder?
    public var publishes: Bool { server != nil || recorder != nil }
    private let audio: AudioSource
    private let video: VideoSource
    private let signals: StopSignal
    /// Tells systemd (when it started us with NOTIFY_SOCKET) that the pipeline runs and still beats.
    private let notifier = SystemdNotifier()
    /// Tells the person running the command what went wrong on the way out (a record that stopped early).
    private let notice: (String) -> Void

    /// `release`: the soundloc release the banner names. `record`: also write the socket's messages to this file
    /// (`-`: standard output), with or without maps. `notice` gets what the person running the command should hear
    /// at the end (a record that stopped early). `observe` is called once, before the pipeline is built, for its
    /// per-frame callback.
    public init(settings: ApplianceConfig, release: String, audioFile: String?, videoFile: String?, fps: Double, fast: Bool,
                frameLimit: Int?, record: (path: String, maps: Bool)? = nil, logger: Logger,
                notice: @escaping (String) -> Void = { _ in }, observe: FrameObserver = { _ in nil }) throws {
        self.notice = notice
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
            release: release,
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

    /// Runs the pipeline to its end, then takes everything down (see docs/THREADING.md, "Start and shutdown").
    public func run() throws -> PipelineStatistics {
        defer {
            notifier.stopping()
            server?.shutdown()
            if let recorder, let failure = recorder.close() { notice("the record stopped early: \(failure)") }
            audio.close()
            video.close()
            signals.uninstall()
        }
        return try pipeline.run()
    }
}
