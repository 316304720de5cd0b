import Foundation
import XCTest

/// `soundloc check --config FILE`: every problem at once, one line each with its key; devices absent said plainly;
/// the live level measured through a private ALSA configuration (a `file` PCM replaying a known signal).
final class CheckCommandTests: XCTestCase {
    var directory: URL!
    let model = CLI.repositoryRoot.appendingPathComponent("Tests/SoundlocEngineTests/Fixtures/tiny/model.safetensors").path

    override func setUpWithError() throws { directory = try CLI.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func write(_ name: String, _ text: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The problem lines (`FILE: key: message`) of a check's output.
    func problems(_ output: String, file: String) -> [String] {
        output.split(separator: "\n").filter { $0.hasPrefix(file + ": ") }.map { String($0.dropFirst(file.count + 2)) }
    }

    static var noSoundDriver: Bool { !FileManager.default.fileExists(atPath: "/proc/asound") }

    func testEveryProblemIsReportedAtOnceWithItsKey() throws {
        #if arch(x86_64)
        let foreignKernels = "neondot"
        #else
        let foreignKernels = "avx2"
        #endif
        let config = try write("bad.yaml", """
            board: test
            colour: blue
            audio:
              pcm: "plughw:CARD=NoSuchCard,DEV=0"
            video:
              device: /nonexistent/video7
              fsp: 30
            model:
              path: \(directory.path)/missing.safetensors
            engine:
              kernels: \(foreignKernels)
            pipeline:
              silence_dbfs: 3
            output:
              socket: \(directory.path)/s.sock
              socket_mode: 660
            """)
        let r = try CLI.run(["check", "--config", config, "--no-live"], hangGuard: 120)
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        let found = problems(r.stdout, file: config)
        XCTAssertEqual(found.map { String($0.prefix { $0 != ":" }) }, [
            "video.fsp", "pipeline.silence_dbfs", "output.socket_mode", "colour", "engine.kernels", "model.path", "audio.pcm", "video.device",
        ], r.stdout)
        XCTAssertTrue(found.contains("video.fsp: unknown key (did you mean fps?); allowed here: device, width, height, fps"), r.stdout)
        XCTAssertTrue(found.contains("model.path: no such file: \(directory.path)/missing.safetensors"), r.stdout)
        XCTAssertTrue(found.contains { $0.hasPrefix("engine.kernels: \(foreignKernels) is not supported by this CPU") }, r.stdout)
        XCTAssertTrue(found.contains { $0.hasPrefix("audio.pcm: plughw:CARD=NoSuchCard,DEV=0: no sound card") }, r.stdout)
        XCTAssertTrue(found.contains { $0.hasPrefix("video.device: /nonexistent/video7: no such device (") }, r.stdout)
        XCTAssertTrue(r.stdout.contains("ok: output.socket: \(directory.path)/s.sock can be served"), r.stdout)
        XCTAssertTrue(r.stdout.contains("live: skipped (--no-live)\n"), r.stdout)
        XCTAssertTrue(r.stdout.hasSuffix("check: 8 problems in \(config)\n"), r.stdout)
        XCTAssertEqual(r.stderr, "")
    }

    func testUnreadableConfigIsOneProblem() throws {
        let config = try write("broken.yaml", "audio: [unclosed\n")
        let r = try CLI.run(["check", "--config", config], hangGuard: 60)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stdout.hasPrefix("\(config): not valid YAML: "), r.stdout)
        XCTAssertTrue(r.stdout.hasSuffix("check: 1 problem in \(config)\n"), r.stdout)
        let missing = try CLI.run(["check", "--config", directory.appendingPathComponent("nope.yaml").path], hangGuard: 60)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stdout.contains("nope.yaml: cannot read the file: no such file"), missing.stdout)
    }

    /// A valid file on a machine without the configured microphone and camera (this one has neither): each absence
    /// is one clear line, the live part says why it is skipped, and the command ends with status 1, not a crash.
    func testGoodConfigWithDevicesAbsent() throws {
        let config = try deviceConfig(name: "pi", pcm: "\"plughw:CARD=Device,DEV=0\"",
                                      video: "/dev/v4l/by-id/usb-Nobody_Camera-video-index0")
        let r = try CLI.run(["check", "--config", config, "--seconds", "1"], hangGuard: 120)
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr)
        XCTAssertTrue(r.stdout.contains("ok: model.path: \(model): "), r.stdout)
        let found = problems(r.stdout, file: config)
        XCTAssertEqual(found.count, 2, r.stdout)
        if Self.noSoundDriver {
            XCTAssertTrue(found.contains("audio.pcm: plughw:CARD=Device,DEV=0: no sound card is present: no sound driver is loaded "
                                         + "(/proc/asound does not exist)"), r.stdout)
        }
        XCTAssertTrue(found.contains { $0.hasPrefix("video.device: /dev/v4l/by-id/usb-Nobody_Camera-video-index0: no such device") }, r.stdout)
        XCTAssertTrue(r.stdout.contains("live: skipped: neither the microphone nor the camera could be opened"), r.stdout)
        XCTAssertTrue(r.stdout.hasSuffix("check: 2 problems in \(config)\n"), r.stdout)
    }

    // MARK: The live part, through alsa-lib with a private configuration

    /// Writes an ALSA configuration with `file` PCMs replaying 16-bit mono samples over a `null` slave, one per
    /// entry of `pcms`, and returns the environment that makes alsa-lib read only it.
    func alsaConfiguration(_ pcms: [String: [Int16]]) throws -> [String: String] {
        var text = "pcm.nullslave { type null }\n"
        for (name, samples) in pcms.sorted(by: { $0.key < $1.key }) {
            let raw = directory.appendingPathComponent("\(name).raw")
            try samples.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: raw)
            text += "pcm.\(name) { type file slave.pcm \"nullslave\" file \"/dev/null\" infile \"\(raw.path)\" format \"raw\" }\n"
        }
        return ["ALSA_CONFIG_PATH": try write("asound.conf", text)]
    }

    /// A valid config with the tiny model, `pcm` and `video` (by default a camera that does not exist).
    func deviceConfig(name: String, pcm: String, video: String? = nil) throws -> String {
        try write("\(name).yaml", """
            audio:
              pcm: \(pcm)
            video:
              device: \(video ?? directory.path + "/no-camera")
            model:
              path: \(model)
            engine:
              threads: 1
            output:
              socket: \(directory.path)/s.sock
            """)
    }

    func liveConfig(pcm: String) throws -> String { try deviceConfig(name: pcm, pcm: pcm) }

    /// Half-scale 440 Hz: RMS 0.5/√2 (−9.0 dBFS), peak −6.0 dBFS, over whole periods of each second.
    static let sine: [Int16] = (0..<(16000 * 6)).map { Int16((sin(2 * Double.pi * 440 * Double($0) / 16000) * 16384).rounded()) }

    func testLiveLevelOfTheMicrophoneAndNoLive() throws {
        let environment = try alsaConfiguration(["tone": Self.sine])
        let config = try liveConfig(pcm: "tone")
        let quick = try CLI.run(["check", "--config", config, "--no-live"], environment: environment, hangGuard: 120)
        XCTAssertEqual(quick.status, 1, quick.stdout + quick.stderr)
        XCTAssertTrue(quick.stdout.contains("ok: audio.pcm: tone opened: 16000 Hz mono, period 320 frames\n"), quick.stdout)
        XCTAssertTrue(quick.stdout.contains("live: skipped (--no-live)\n"), quick.stdout)
        XCTAssertFalse(quick.stdout.contains("live: audio.pcm"), quick.stdout)

        let r = try CLI.run(["check", "--config", config, "--seconds", "2"], environment: environment, hangGuard: 120)
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("live: audio.pcm: 2.0 s at 16000 Hz: RMS -9.0 dBFS (1-s windows -9.0 … -9.0), peak -6.0 dBFS; "
                                        + "silence gate -55 dBFS: 2 of 2 windows above it\n"), r.stdout)
        // The camera is the one problem; the level is fine.
        XCTAssertEqual(problems(r.stdout, file: config).map { String($0.prefix { $0 != ":" }) }, ["video.device"], r.stdout)
        XCTAssertTrue(r.stdout.hasSuffix("check: 1 problem in \(config)\n"), r.stdout)
    }

    func testDigitalSilenceIsAProblemAndAQuietRoomANote() throws {
        let quiet = Self.sine.map { $0 / 1024 }  // -69 dBFS, under the -55 dBFS gate
        let environment = try alsaConfiguration(["zeros": [Int16](repeating: 0, count: 16000 * 4), "quiet": quiet])
        let zeros = try CLI.run(["check", "--config", try liveConfig(pcm: "zeros"), "--seconds", "1"], environment: environment, hangGuard: 120)
        XCTAssertTrue(zeros.stdout.contains("live: audio.pcm: 1.0 s at 16000 Hz: RMS -inf dBFS, peak -inf dBFS"), zeros.stdout)
        XCTAssertTrue(zeros.stdout.contains(": audio.pcm: the microphone delivers digital silence (every sample is 0)"), zeros.stdout)
        XCTAssertTrue(zeros.stdout.hasSuffix("check: 2 problems in \(directory.path)/zeros.yaml\n"), zeros.stdout)

        let room = try CLI.run(["check", "--config", try liveConfig(pcm: "quiet"), "--seconds", "1"], environment: environment, hangGuard: 120)
        XCTAssertNotNil(room.stdout.range(of: #"RMS -69\.\d dBFS, peak -66\.\d dBFS; silence gate -55 dBFS: 0 of 1 window above it\n"#,
                                          options: .regularExpression), room.stdout)
        XCTAssertTrue(room.stdout.contains("note: pipeline.silence_dbfs: every window was below the gate"), room.stdout)
        XCTAssertTrue(room.stdout.hasSuffix("check: 1 problem in \(directory.path)/quiet.yaml\n"), room.stdout)
    }
}
