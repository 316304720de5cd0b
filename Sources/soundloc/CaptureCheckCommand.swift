import ArgumentParser
import Foundation
import SoundlocCapture

/// Opens a camera and a microphone together and checks what they deliver; the VM integration test runs
/// it against vivid and snd-aloop until `soundloc run` exists. Lines starting "capture-check:" are the
/// machine-readable result.
struct CaptureCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture-check",
        abstract: "Capture from a camera and a microphone at once and check frames, samples and timestamps.",
        shouldDisplay: false)

    @Option(help: "V4L2 camera device.")
    var video = "/dev/video0"

    @Option(help: "ALSA capture PCM.")
    var audio = "default"

    @Option(help: "Frames to capture.")
    var frames = 30

    @Option(help: "Seconds of audio to capture.")
    var seconds = 2.0

    @Option(help: "Requested frame width.")
    var width = 640

    @Option(help: "Requested frame height.")
    var height = 480

    @Option(help: "Requested frame rate.")
    var fps = 30.0

    @Option(help: "Seconds to wait for any one frame.")
    var frameTimeout = 5.0

    @Option(help: "vivid only: after this many frames, emulate an unplug (vivid's Disconnect control) and check that the camera is reopened.")
    var unplugAfter: Int?

    /// vivid's error-injection button (VIVID_CID_VIVID_BASE + 65): the device acts unplugged until its
    /// last file handle closes, then comes back.
    static let vividDisconnectControl: UInt32 = (0x00f0_0000 | 0xf000) + 65

    func validate() throws {
        guard frames >= 2 else { throw ValidationError("--frames must be at least 2 (the rate needs two)") }
        guard seconds > 0, seconds <= 600 else { throw ValidationError("--seconds must be in (0, 600]") }
        guard width > 0, height > 0, fps > 0, frameTimeout > 0 else {
            throw ValidationError("--width, --height, --fps and --frame-timeout must be positive")
        }
        if let unplugAfter, !(1..<frames).contains(unplugAfter) {
            throw ValidationError("--unplug-after must be between 1 and --frames - 1")
        }
    }

    func run() throws {
        #if os(Linux)
        var problems: [String] = []
        let logger = Log.logger("soundloc.capture-check")

        if let info = try? V4L2CaptureSource.describeDevice(path: video) {
            let formats = info.formats.map(\.fourcc).joined(separator: " ")
            say("camera \(video): \(info.card) (driver \(info.driver), \(info.busInfo)); formats: \(formats)")
        }
        say("libv4l2: \(V4L2CaptureSource.convertsFormats ? "loaded" : "not installed (native RGB24 only)")")

        let started = monotonicNanos()  // before either device starts, so every capture time must follow it
        let camera: V4L2CaptureSource
        let microphone: ALSACaptureSource
        do {
            camera = try V4L2CaptureSource(devicePath: video, width: width, height: height, framesPerSecond: fps, logger: logger)
        } catch {
            say("capture-check: FAILED: \(error)")
            throw ExitCode.failure
        }
        defer { camera.close() }
        say("camera granted \(camera.width)x\(camera.height) RGB24 from \(camera.cameraFormat)"
              + " at \(camera.framesPerSecond.map { String(format: "%.2f", $0) } ?? "unknown") fps"
              + " (asked \(width)x\(height) at \(fps)), \(camera.bufferCount) buffers, \(camera.clock.rawValue) timestamps")
        // A second user of a streaming camera must get the busy error, not a confusing failure later.
        do {
            let second = try V4L2CaptureSource(devicePath: video, width: width, height: height, framesPerSecond: fps, logger: logger)
            second.close()
            problems.append("video: a second open of the streaming camera succeeded (expected it to be busy)")
        } catch VideoSourceError.deviceBusy {
            say("second open while streaming: busy, as expected")
        } catch {
            problems.append("video: a second open failed with \(error), expected the busy error")
        }
        do {
            microphone = try ALSACaptureSource(pcmName: audio, sampleRate: 16000, logger: logger)
        } catch {
            say("capture-check: FAILED: \(error)")
            throw ExitCode.failure
        }
        defer { microphone.close() }

        // Audio on its own thread, as the pipeline will do: a stalled reader would over-run the ring buffer.
        let audioRun = AudioRun(source: microphone, wanted: Int(seconds * Double(microphone.sampleRate)))
        let audioThread = Thread { audioRun.capture() }
        audioThread.start()

        var frameTimes: [UInt64] = []
        var dequeueTimes: [UInt64] = []
        var sizesOK = true
        var dropped = 0
        var contentRange: (min: UInt8, max: UInt8) = (255, 0)
        var unplugged = false
        var recoveries = 0
        var lastSequence: UInt64?
        var expectGap = false
        while frameTimes.count < frames {
            if let unplugAfter, frameTimes.count == unplugAfter, !unplugged {
                unplugged = true
                do {
                    try V4L2CaptureSource.setControl(path: video, id: Self.vividDisconnectControl, value: 1)
                    say("unplugged \(video) (vivid's Disconnect control) after \(frameTimes.count) frames")
                } catch {
                    problems.append("unplug: \(error) (is it a vivid camera?)")
                    break
                }
            }
            let frame: VideoFrame
            do {
                guard let next = try camera.nextFrame(timeout: frameTimeout) else {
                    problems.append("camera stream ended after \(frameTimes.count) frames")
                    break
                }
                frame = next
            } catch let error as VideoSourceError {
                guard case .deviceFailed = error, unplugged, recoveries == 0 else {
                    problems.append("video: \(error)")
                    break
                }
                say("camera failed as expected: \(error)")
                if let problem = reopenWithBackoff(camera) {
                    problems.append(problem)
                    break
                }
                recoveries += 1
                expectGap = true
                continue
            } catch {
                problems.append("video: \(error)")
                break
            }
            dequeueTimes.append(monotonicNanos())
            frameTimes.append(frame.captureTimeNanos ?? 0)
            dropped += frame.droppedBefore
            if frame.width != camera.width || frame.height != camera.height || frame.pixels.count != frame.width * frame.height * 3 {
                sizesOK = false
            }
            if let lastSequence, frame.sequence <= lastSequence { problems.append("video: sequence did not increase") }
            if frame.followsGap != expectGap {
                problems.append("video: frame \(frameTimes.count) has followsGap \(frame.followsGap), expected \(expectGap)")
            }
            expectGap = false
            lastSequence = frame.sequence
            if frameTimes.count == 1 || frameTimes.count == frames {
                // Only the first and the last frame: a per-byte scan of every frame is slow in a debug build under QEMU.
                frame.pixels.withUnsafeBufferPointer { bytes in
                    for byte in bytes { contentRange = (min(contentRange.min, byte), max(contentRange.max, byte)) }
                }
            }
        }
        if audioRun.done.wait(timeout: .now() + seconds + 10) == .timedOut {
            // The reader is stuck inside alsa-lib: closing the PCM under it is unsafe, so leave without cleanup.
            say("capture-check: FAILED: audio: no data from \(audio) for \(Int(seconds + 10)) s")
            Foundation.exit(1)
        }
        let finished = monotonicNanos()

        // Video.
        let span = Double((frameTimes.last ?? 0) &- (frameTimes.first ?? 0)) / 1e9
        let achieved = frameTimes.count >= 2 && span > 0 ? Double(frameTimes.count - 1) / span : 0
        say(String(format: "capture-check: video frames=%d size=%dx%d bytes=%d fps=%.2f dropped=%d clock=%@ content=%d..%d recoveries=%d",
                     frameTimes.count, camera.width, camera.height, camera.width * camera.height * 3, achieved, dropped,
                     camera.clock.rawValue, Int(contentRange.min), Int(contentRange.max), recoveries))
        if unplugAfter != nil && recoveries != 1 { problems.append("video: the emulated unplug was not recovered from") }
        if frameTimes.count != frames { problems.append("video: \(frameTimes.count) of \(frames) frames") }
        if !sizesOK { problems.append("video: a frame did not have the granted size") }
        if contentRange.min == contentRange.max && !frameTimes.isEmpty {
            problems.append("video: every pixel byte is \(contentRange.min) (blank frames)")
        }
        problems += timestampProblems("video", times: frameTimes, returned: dequeueTimes, started: started, finished: finished)

        // Audio.
        let audioSeconds = Double(audioRun.samples) / Double(microphone.sampleRate)
        say(String(format: "capture-check: audio samples=%d rate=%d seconds=%.2f blocks=%d overruns=%d gaps=%d",
                     audioRun.samples, microphone.sampleRate, audioSeconds, audioRun.blockTimes.count,
                     microphone.overruns, audioRun.gaps))
        if let error = audioRun.error { problems.append("audio: \(error)") }
        if audioRun.samples < audioRun.wanted { problems.append("audio: \(audioRun.samples) of \(audioRun.wanted) samples") }
        problems += timestampProblems("audio", times: audioRun.blockTimes, returned: audioRun.returnTimes,
                                      started: started, finished: finished)

        // Both stamp CLOCK_MONOTONIC, so streams that started together start at nearly the same time.
        if let firstFrame = frameTimes.first, let firstBlock = audioRun.blockTimes.first {
            let skew = abs(Double(Int64(bitPattern: firstFrame &- firstBlock))) / 1e9
            say(String(format: "capture-check: clocks first-frame-minus-first-audio=%.3fs", Double(Int64(bitPattern: firstFrame &- firstBlock)) / 1e9))
            if skew > 2 { problems.append(String(format: "timestamps: video and audio start %.1f s apart (different clocks?)", skew)) }
        }

        if problems.isEmpty {
            say("capture-check: OK")
        } else {
            say("capture-check: FAILED: " + problems.joined(separator: "; "))
            throw ExitCode.failure
        }
        #else
        throw ValidationError("capture-check needs Linux (ALSA and V4L2)")
        #endif
    }

    #if os(Linux)
    /// Retries `reopen()` for up to 10 s, doubling the pause from 50 ms, as the pipeline will; nil once it works.
    private func reopenWithBackoff(_ camera: V4L2CaptureSource) -> String? {
        var pause = 0.05
        let giveUp = monotonicNanos() + 10_000_000_000
        while true {
            do {
                try camera.reopen()
                say("camera reopened: \(camera.width)x\(camera.height)")
                return nil
            } catch {
                if monotonicNanos() > giveUp { return "video: reopen kept failing: \(error)" }
                usleep(UInt32(pause * 1e6))
                pause = min(pause * 2, 1)
            }
        }
    }
    #endif

    /// Capture times must not go backwards, must precede the moment the data was returned, and must fall
    /// inside this run (CLOCK_MONOTONIC; a driver on another clock would land far outside).
    private func timestampProblems(_ what: String, times: [UInt64], returned: [UInt64], started: UInt64, finished: UInt64) -> [String] {
        var problems: [String] = []
        if zip(times, times.dropFirst()).contains(where: { $0 > $1 }) { problems.append("\(what): timestamps go backwards") }
        if zip(times, returned).contains(where: { $0 > $1 }) { problems.append("\(what): a timestamp is later than its delivery") }
        let earliest = started > 1_000_000_000 ? started - 1_000_000_000 : 0
        if times.contains(where: { $0 < earliest || $0 > finished }) {
            problems.append("\(what): a timestamp lies outside the capture run (not CLOCK_MONOTONIC?)")
        }
        return problems
    }
}

#if os(Linux)
/// The audio half of the check, filled on its own thread and read after `done` is signalled.
private final class AudioRun: @unchecked Sendable {  // unchecked: written only by its capture thread, read only after `done` is signalled
    let source: ALSACaptureSource
    let wanted: Int
    var samples = 0
    var gaps = 0
    var blockTimes: [UInt64] = []
    var returnTimes: [UInt64] = []
    var error: Error?
    let done = DispatchSemaphore(value: 0)

    init(source: ALSACaptureSource, wanted: Int) {
        self.source = source
        self.wanted = wanted
    }

    func capture() {
        defer { done.signal() }
        do {
            while samples < wanted {
                guard let block = try source.read(maxFrames: min(1600, wanted - samples)) else { break }
                returnTimes.append(monotonicNanos())
                blockTimes.append(block.captureTimeNanos ?? 0)
                if block.followsGap { gaps += 1 }
                samples += block.samples.count
            }
        } catch {
            self.error = error
        }
    }
}
#endif
