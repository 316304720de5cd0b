import ArgumentParser
import Foundation
import Logging
import SoundlocCapture
import SoundlocDSOL
import SoundlocOutput
import SoundlocPipeline

/// `soundloc check --config FILE`: everything that would stop or spoil `soundloc run` with this file, at once.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a board configuration: every problem at once, then a few seconds of live sound level and frame rate.",
        discussion: """
            Reports each problem on one line, 'FILE: KEY: what is wrong': unknown keys and bad values, a model file \
            that is missing or damaged, kernels this CPU lacks, a microphone or camera that is absent, busy or \
            cannot deliver what is configured, a socket that cannot be served. Then, unless --no-live, it captures \
            for a few seconds from the configured microphone and camera and prints the sound level (dBFS, \
            against pipeline.silence_dbfs) and the frame rate. Lines starting 'ok:' say what was found working, \
            'note:' what deserves a look but would not stop the appliance. The exit status is 0 only when there \
            is no problem. Run it while soundloc itself is stopped: a running appliance holds the devices.
            """)

    @Option(help: "Board configuration (YAML, see docs/CONFIG.md).")
    var config: String

    @Flag(name: .customLong("no-live"), help: "Do not capture: check the file, the model and that the devices open.")
    var noLive = false

    @Option(help: "Seconds of live capture.")
    var seconds = 3.0

    func validate() throws {
        guard seconds >= 0.5, seconds <= 60 else { throw ValidationError("--seconds must be in 0.5...60") }
    }

    func run() throws {
        let out = CheckOutput(file: config)
        let report = ApplianceConfig.check(path: config)
        for problem in report.problems { out.problem(problem.key, problem.message) }
        guard report.readable else { return try out.finish() }
        let settings = report.config
        let settingsRead = report.keysSet.filter { key in !report.keysSet.contains { $0.hasPrefix(key + ".") } }.count
        out.ok("config", "\(config): board \(settings.board), \(settingsRead) settings read"
               + (report.problems.isEmpty ? "" : ", \(report.problems.count) with a problem"))

        var logger = Log.logger("soundloc.check")
        logger.logLevel = max(logger.logLevel, .error)  // the devices' own notices would interleave with the report
        let sampleRate = checkModel(settings, report: report, out: out)
        let microphone = checkMicrophone(settings, report: report, sampleRate: sampleRate ?? 16000, logger: logger, out: out)
        let camera = checkCamera(settings, report: report, logger: logger, out: out)
        checkSocket(settings, report: report, out: out)

        if noLive {
            say("live: skipped (--no-live)")
        } else if microphone == nil && camera == nil {
            say("live: skipped: neither the microphone nor the camera could be opened")
        } else {
            LiveCheck(seconds: seconds, settings: settings, out: out).run(microphone: microphone, camera: camera)
        }
        microphone?.close()
        camera?.close()
        try out.finish()
    }

    /// Loads the model as `soundloc run` would (kernels included); its audio sample rate, when it loads.
    private func checkModel(_ settings: ApplianceConfig, report: ConfigReport, out: CheckOutput) -> Int? {
        if !report.hasProblem("engine.kernels") {
            if let why = settings.kernelProblem { out.problem("engine.kernels", why) } else { try? settings.applyKernelChoice(file: config) }
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if !report.hasProblem("engine.threads"), settings.engine.threads > cores {
            out.note("engine.threads", "\(settings.engine.threads) threads on \(cores) cores: they will share cores")
        }
        guard !report.hasProblem("model.path") else { return nil }
        let path = settings.model.path
        guard FileManager.default.fileExists(atPath: path) else {
            let relative = path.hasPrefix("/") ? "" : " (relative to the working directory, \(FileManager.default.currentDirectoryPath))"
            out.problem("model.path", "no such file: \(path)\(relative)")
            return nil
        }
        do {
            let model = try DSOLModel(path: path, threads: settings.engine.threads)
            let m = model.metadata
            out.ok("model.path", "\(path): \(m.precision), \(m.classes.count) classes, \(m.imageSize)x\(m.imageSize) pictures, "
                   + "\(m.audio.sampleRate) Hz audio, checksum ok" + (model.int8Kernel.map { ", int8 kernels \($0)" } ?? ""))
            return m.audio.sampleRate
        } catch {
            out.problem("model.path", "\(path): \(error)")
            return nil
        }
    }

    /// Opens the configured PCM as `soundloc run` would; the open source, or nil after reporting why not.
    private func checkMicrophone(_ settings: ApplianceConfig, report: ConfigReport, sampleRate: Int, logger: Logger,
                                 out: CheckOutput) -> ALSACaptureSource? {
        guard !report.hasProblem("audio.pcm"), !report.hasProblem("audio.period_ms") else { return nil }
        let pcm = settings.audio.pcm
        let cards = SoundCards.read()
        var about = ""
        if let reference = PCMCardReference(pcmName: pcm) {
            guard let cards else {
                out.problem("audio.pcm", "\(pcm): no sound card is present: no sound driver is loaded (/proc/asound does not exist)")
                return nil
            }
            guard let card = reference.card(in: cards) else {
                let present = cards.isEmpty ? "no card is present"
                    : "present: " + cards.map { "\($0.index) '\($0.id)'" }.joined(separator: ", ")
                out.problem("audio.pcm", "\(pcm): no sound card '\(reference.card)' (\(present)); `soundloc devices` lists the capture devices")
                return nil
            }
            let capture = card.captureDevices.map(\.device)
            if let device = reference.device, !capture.contains(device) {
                let have = capture.isEmpty ? "it has none" : "it has " + capture.map(String.init).joined(separator: ", ")
                out.problem("audio.pcm", "\(pcm): card \(card.index) '\(card.id)' has no capture device \(device) (\(have))")
                return nil
            }
            about = " (card \(card.index) '\(card.id)': \(card.name)\(reference.device.map { ", device \($0)" } ?? ""))"
        }
        do {
            let source = try ALSACaptureSource(pcmName: pcm, sampleRate: sampleRate,
                                               periodFrames: sampleRate * settings.audio.periodMilliseconds / 1000, logger: logger)
            out.ok("audio.pcm", "\(pcm)\(about) opened: \(source.sampleRate) Hz mono, period \(source.periodFrames) frames")
            return source
        } catch {
            let hint = cards?.isEmpty ?? true ? " (no sound card is present)" : ""
            out.problem("audio.pcm", "\(error)\(hint)")
            return nil
        }
    }

    /// Opens the configured camera as `soundloc run` would; the open source, or nil after reporting why not.
    private func checkCamera(_ settings: ApplianceConfig, report: ConfigReport, logger: Logger, out: CheckOutput) -> V4L2CaptureSource? {
        let keys = ["video.device", "video.width", "video.height", "video.fps"]
        guard !keys.contains(where: report.hasProblem) else { return nil }
        let video = settings.video
        guard let resolved = CameraLinks.resolvedPath(video.device) else {
            let cameras = V4L2CaptureSource.listDevices().filter(\.isCapture)
            let links = CameraLinks.stableLinks()
            let present = cameras.isEmpty ? "no camera is present: no /dev/video* node is a capture device"
                : "present: " + cameras.map { camera in
                    (links[CameraLinks.resolvedPath(camera.path) ?? ""]?.first.map { "\($0) = " } ?? "") + "\(camera.path) \(camera.card)"
                }.joined(separator: ", ")
            out.problem("video.device", "\(video.device): no such device (\(present))")
            return nil
        }
        do {
            let camera = try V4L2CaptureSource(devicePath: video.device, width: video.width, height: video.height,
                                               framesPerSecond: Double(video.fps), logger: logger)
            let rate = camera.framesPerSecond.map { String(format: "%g fps", $0) } ?? "an unknown rate"
            out.ok("video.device", "\(video.device)\(resolved == video.device ? "" : " (\(resolved))") opened: \(camera.card) "
                   + "(driver \(camera.driver)), \(camera.width)x\(camera.height) RGB24 from \(camera.cameraFormat) at \(rate)")
            if camera.width != video.width || camera.height != video.height {
                out.problem("video.width", "the camera grants \(camera.width)x\(camera.height), not \(video.width)x\(video.height): "
                            + "set video.width and video.height to a size it offers (`soundloc devices` lists them)")
            }
            if let fps = camera.framesPerSecond, fps < Double(video.fps) * 0.95 {
                out.note("video.fps", String(format: "the camera grants %g fps, not %d", fps, video.fps))
            }
            return camera
        } catch {
            out.problem("video.device", "\(error)")
            return nil
        }
    }

    /// What would stop the socket server from starting, without touching the socket.
    private func checkSocket(_ settings: ApplianceConfig, report: ConfigReport, out: CheckOutput) {
        let output = settings.output
        guard output.socket != "none" else { return out.ok("output.socket", "none: nothing is published") }
        guard !["output.socket", "output.socket_group"].contains(where: report.hasProblem) else { return }
        let configuration = SocketServer.Configuration(path: output.socket, mode: mode_t(output.socketMode), group: output.socketGroup)
        switch SocketServer.preflight(configuration) {
        case nil:
            out.ok("output.socket", "\(output.socket) can be served")
        case .noSuchGroup(let group)?:
            out.problem("output.socket_group", "group \"\(group)\" does not exist")
        case .directoryMissing?:
            let folder = (output.socket as NSString).deletingLastPathComponent
            if output.socket.hasPrefix("/run/soundloc/") {
                out.note("output.socket", "\(folder) does not exist now; systemd makes it when it starts soundloc.socket")
            } else {
                out.problem("output.socket", "\(folder) does not exist: the socket cannot be made there")
            }
        case .alreadyServing?:
            out.note("output.socket", "a soundloc is serving \(output.socket) now: it holds the devices, so they may show as busy here")
        case let error?:
            out.problem("output.socket", "\(error)")
        }
    }
}

/// Prints the report and counts its problems.
final class CheckOutput {
    let file: String
    private(set) var problems = 0

    init(file: String) { self.file = file }

    /// One line: `FILE: KEY: message`.
    func problem(_ key: String?, _ message: String) {
        problems += 1
        say([file, key, message].compactMap { $0 }.joined(separator: ": "))
    }

    func ok(_ key: String?, _ message: String) { say("ok: " + [key, message].compactMap { $0 }.joined(separator: ": ")) }

    func note(_ key: String, _ message: String) { say("note: \(key): \(message)") }

    func live(_ key: String, _ message: String) { say("live: \(key): \(message)") }

    /// The summary line; fails the command when there was a problem.
    func finish() throws {
        if problems == 0 {
            say("check: all well")
        } else {
            say("check: \(problems) problem\(problems == 1 ? "" : "s") in \(file)")
            throw ExitCode.failure
        }
    }
}

/// A few seconds of capture from the opened devices: the microphone's level and the camera's frame rate.
struct LiveCheck {
    let seconds: Double
    let settings: ApplianceConfig
    let out: CheckOutput

    func run(microphone: ALSACaptureSource?, camera: V4L2CaptureSource?) {
        let meter = microphone.map { LevelMeter(source: $0, samples: Int(seconds * Double($0.sampleRate))) }
        let audioThread = meter.map { meter in Thread { meter.capture() } }
        audioThread?.start()
        if let camera { report(measureFrames(camera), camera: camera) }
        if let meter {
            // A reader stuck inside alsa-lib cannot be interrupted, and closing the PCM under it is unsafe.
            if meter.done.wait(timeout: .now() + seconds + 10) == .timedOut {
                out.problem("audio.pcm", "no audio arrived for \(Int(seconds + 10)) s: the microphone delivers nothing")
                try? out.finish()
                Foundation.exit(1)
            }
            report(meter)
        }
    }

    private struct Frames {
        var times: [UInt64] = []
        var dropped = 0
        var error: String?
    }

    private func measureFrames(_ camera: V4L2CaptureSource) -> Frames {
        var frames = Frames()
        let end = monotonicNanos() + UInt64(seconds * 1e9)
        while monotonicNanos() < end {
            do {
                guard let frame = try camera.nextFrame(timeout: 5) else { break }
                frames.times.append(frame.captureTimeNanos ?? monotonicNanos())
                if frames.times.count > 1 { frames.dropped += frame.droppedBefore }
            } catch {
                frames.error = "\(error)"
                break
            }
        }
        return frames
    }

    private func report(_ frames: Frames, camera: V4L2CaptureSource) {
        let key = "video.device"
        if let error = frames.error, frames.times.count < 2 { return out.problem(key, error) }
        guard frames.times.count >= 2, let first = frames.times.first, let last = frames.times.last, last > first else {
            return out.problem(key, "the camera delivered \(frames.times.count) frame(s) in \(String(format: "%g", seconds)) s")
        }
        let span = Double(last - first) / 1e9
        let fps = Double(frames.times.count - 1) / span
        out.live(key, String(format: "%.2f fps over %.1f s (%d frames, %d dropped by the driver), %dx%d",
                             fps, span, frames.times.count, frames.dropped, camera.width, camera.height))
        if let error = frames.error { out.problem(key, "the camera failed during the check: \(error)") }
        if fps < settings.pipeline.maxFps * 0.9 {
            out.note("pipeline.max_fps", String(format: "the camera delivers %.1f fps, fewer than max_fps %g: the pipeline will process at most those",
                                                fps, settings.pipeline.maxFps))
        }
    }

    private func report(_ meter: LevelMeter) {
        let key = "audio.pcm"
        if let error = meter.error, meter.count == 0 { return out.problem(key, "\(error)") }
        guard meter.count > 0 else { return out.problem(key, "the microphone delivered no samples") }
        let rate = Double(meter.source.sampleRate)
        let gate = settings.pipeline.silenceDBFS
        let windows = meter.windowLevels
        let above = windows.filter { $0 >= gate }.count
        var text = String(format: "%.1f s at %d Hz: RMS %@ dBFS", Double(meter.count) / rate, meter.source.sampleRate, dB(meter.rmsLevel))
        if windows.count > 1 { text += " (1-s windows \(dB(windows.min()!)) … \(dB(windows.max()!)))" }
        text += ", peak \(dB(meter.peakLevel)) dBFS; silence gate \(String(format: "%g", gate)) dBFS: "
            + "\(above) of \(windows.count) window\(windows.count == 1 ? "" : "s") above it"
        out.live(key, text)
        if let error = meter.error { out.problem(key, "the microphone failed during the check: \(error)") }
        if meter.peak == 0 {
            out.problem(key, "the microphone delivers digital silence (every sample is 0): its capture switch may be off "
                        + "or its level at 0 (alsamixer, F4 for capture)")
        } else if above == 0 {
            out.note("pipeline.silence_dbfs", "every window was below the gate: make a sound during the check, or lower the gate "
                     + "if this is the room's normal level")
        }
        if meter.peakLevel > -0.1 { out.note(key, "the signal reaches full scale (clipping): lower the capture level") }
    }

    private func dB(_ level: Double) -> String { level.isFinite ? String(format: "%.1f", level) : "-inf" }
}

/// Reads a fixed number of samples on its own thread and measures them.
final class LevelMeter: @unchecked Sendable {  // unchecked: written only by its capture thread, read only after `done` is signalled
    let source: ALSACaptureSource
    let wanted: Int
    let done = DispatchSemaphore(value: 0)
    private(set) var count = 0
    private(set) var peak: Float = 0
    private(set) var error: Error?
    private var sumOfSquares = 0.0
    /// Sums of squares of each complete second.
    private var windows: [Double] = []
    private var windowSum = 0.0
    private var windowCount = 0

    init(source: ALSACaptureSource, samples: Int) {
        self.source = source
        self.wanted = samples
    }

    func capture() {
        defer { done.signal() }
        do {
            while count < wanted {
                guard let block = try source.read(maxFrames: min(1600, wanted - count)) else { break }
                add(block.samples)
            }
        } catch {
            self.error = error
        }
    }

    func add(_ samples: [Float]) {
        for sample in samples {
            let square = Double(sample) * Double(sample)
            sumOfSquares += square
            windowSum += square
            windowCount += 1
            peak = max(peak, abs(sample))
            if windowCount == source.sampleRate {
                windows.append(windowSum)
                windowSum = 0
                windowCount = 0
            }
        }
        count += samples.count
    }

    var rmsLevel: Double { count > 0 ? Self.dBFS(meanSquare: sumOfSquares / Double(count)) : -.infinity }
    var peakLevel: Double { peak > 0 ? 20 * log10(Double(peak)) : -.infinity }
    /// The level of each complete second (of the whole capture when it was shorter).
    var windowLevels: [Double] {
        windows.isEmpty ? [rmsLevel] : windows.map { Self.dBFS(meanSquare: $0 / Double(source.sampleRate)) }
    }

    static func dBFS(meanSquare: Double) -> Double { meanSquare > 0 ? 10 * log10(meanSquare) : -.infinity }
}
