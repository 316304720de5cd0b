import Foundation
import SoundlocTestSupport
import XCTest

/// Real V4L2 and ALSA capture without hardware: Tools/qemu/run-in-vm.sh boots Debian's kernel in QEMU
/// with the vivid camera and the snd-aloop sound card and runs the built `soundloc capture-check` there.
/// Takes about half a minute (plus a one-time ~70 MB kernel download); needs `Tools/setup.sh --test`.
final class VividCaptureIntegrationTests: XCTestCase {
    func testCaptureCheckInVMWithVividAndLoopbackCard() throws {
        #if os(Linux) && arch(x86_64)
        let missing = ["qemu-system-x86_64", "cpio", "apt-get"].filter { !Self.onPath($0) }
            + (["/bin/busybox", "/usr/bin/busybox"].contains { FileManager.default.isExecutableFile(atPath: $0) } ? [] : ["busybox"])
        guard missing.isEmpty else {
            return XCTFail("\(missing.joined(separator: ", ")) not installed: run `sudo Tools/setup.sh --test` (the VM capture test needs them)")
        }
        let script = CLI.repositoryRoot.appendingPathComponent("Tools/qemu/run-in-vm.sh")
        let started = Date()
        let result = try Self.run(script.path, [
            CLI.executable.path, "capture-check", "--video", "/dev/video0", "--audio", "hw:Loopback,1,0",
            "--frames", "30", "--seconds", "2", "--width", "640", "--height", "480", "--unplug-after", "10",
        ], environment: ["SOUNDLOC_VM_TIMEOUT": "240"])
        let elapsed = Date().timeIntervalSince(started)
        let report = "run-in-vm.sh exited \(result.status) after \(Int(elapsed)) s; its output ends:\n"
            + String(result.output.suffix(4000))

        if result.status == 125 && result.output.contains("Tools/setup.sh --test") {
            return XCTFail("the VM harness is missing a tool or the kernel package:\n\(report)")
        }
        XCTAssertEqual(result.status, 0, report)
        XCTAssertTrue(result.output.contains("capture-check: OK"), report)
        // Every requested frame, at the size asked for (vivid offers 640x480), as packed RGB24.
        XCTAssertTrue(result.output.contains("capture-check: video frames=30 size=640x480 bytes=921600 "), report)
        XCTAssertNotNil(result.output.range(of: #"content=\d+\.\.\d+ recoveries=1"#, options: .regularExpression), report)
        // Two seconds of 16 kHz audio.
        XCTAssertTrue(result.output.contains("capture-check: audio samples=32000 rate=16000 "), report)
        XCTAssertTrue(result.output.contains("guest powered off cleanly"), report)
        print("VM capture check took \(Int(elapsed)) s")
        #else
        throw XCTSkip("the QEMU harness boots Debian's amd64 kernel; run it on an x86-64 host")
        #endif
    }

    /// The appliance itself in the VM: `soundloc run` on the vivid camera and the loopback card with the
    /// tiny model, publishing on its socket, stopping by itself after 12 processed frames.
    func testApplianceRunsInVMOnRealDrivers() throws {
        try Self.inVM {
            let (result, report) = try Self.runInVM(config: Self.servingConfig, ["run", "--config", "/opt/test/vm.yaml", "--frames", "12", "--verbose"])
            XCTAssertEqual(result.status, 0, report)
            XCTAssertTrue(result.output.contains("serving"), report)
            // One published line per processed frame (printed after publishing), numbered 1...12.
            for sequence in 1...12 { XCTAssertTrue(result.output.contains("#\(sequence) "), "frame \(sequence) missing\n\(report)") }
            XCTAssertNotNil(result.output.range(of: #"frames: \d+ captured, 12 processed"#, options: .regularExpression), report)
            XCTAssertTrue(result.output.contains("guest powered off cleanly"), report)
        }
    }

    /// `soundloc check` on real drivers: the loopback card found by its stable name in /proc/asound, both devices
    /// opened, then two seconds of live capture: vivid's frame rate, and the level of a loopback nobody plays into,
    /// which is digital silence: the one problem, said as such.
    func testCheckInVMFindsTheDevicesAndMeasuresThemLive() throws {
        try Self.inVM {
            let (result, report) = try Self.runInVM(config: Self.config(pcm: "plughw:CARD=Loopback,DEV=1", width: 640, height: 480),
                                                    ["check", "--config", "/opt/test/vm.yaml", "--seconds", "2"])
            XCTAssertEqual(result.status, 1, report)
            for pattern in [
                #"ok: audio\.pcm: plughw:CARD=Loopback,DEV=1 \(card \d 'Loopback': Loopback, device 1\) opened: 16000 Hz mono"#,
                #"ok: video\.device: /dev/video0 opened: .* 640x480 RGB24 from "#,
                #"live: video\.device: \d+\.\d\d fps over \d\.\d s \(\d+ frames, \d+ dropped by the driver\), 640x480"#,
                #"live: audio\.pcm: 2\.0 s at 16000 Hz: RMS -inf dBFS"#,
                #"/opt/test/vm\.yaml: audio\.pcm: the microphone delivers digital silence"#,
                #"check: 1 problem in /opt/test/vm\.yaml"#,
            ] {
                XCTAssertNotNil(result.output.range(of: pattern, options: .regularExpression), "missing /\(pattern)/\n\(report)")
            }
            XCTAssertTrue(result.output.contains("guest powered off cleanly"), report)
        }
    }

    /// Fault injection on real drivers (Tools/qemu/fault-injection.sh in the guest): while `soundloc run` serves a
    /// `soundloc watch` client, the camera's driver is unbound (an unplug, as an open handle sees it), unloaded and loaded
    /// again, then the sound card's. The client must be told of each loss and recovery once, keep its one connection,
    /// and get frames again after both; `run` must still stop cleanly on SIGTERM.
    func testRunSurvivesUnloadingAndReloadingBothDrivers() throws {
        try Self.inVM {
            let script = CLI.repositoryRoot.appendingPathComponent("Tools/qemu/fault-injection.sh").path
            let (result, report) = try Self.runInVM(config: Self.servingConfig, ["2"], script: script, timeout: 600)
            XCTAssertEqual(result.status, 0, report)
            for (device, module) in [("video", "vivid"), ("audio", "snd_aloop")] {
                XCTAssertNotNil(result.output.range(of: "fault: \(device): unbound .* the client was told: status: [0-9:]+ \(device) failed: ",
                                                    options: .regularExpression), report)
                XCTAssertTrue(result.output.contains("fault: \(device): \(module) unloaded"), report)
                XCTAssertNotNil(result.output.range(of: "fault: \(device): \(module) loaded again; the client was told: status: [0-9:]+ "
                                                    + "\(device) recovered", options: .regularExpression), report)
            }
            // One STATUS per outage, however many reopen attempts it took.
            let watchLines = result.output.split(separator: "\n").filter { $0.hasPrefix("status: ") }
            for device in ["video", "audio"] {
                XCTAssertEqual(watchLines.filter { $0.contains(" \(device) failed: ") }.count, 1, report)
                XCTAssertEqual(watchLines.filter { $0.contains(" \(device) recovered") }.count, 1, report)
            }
            XCTAssertTrue(result.output.contains("fault: OK: both devices lost and recovered"), report)
            XCTAssertTrue(result.output.contains("guest powered off cleanly"), report)
        }
    }

    /// `soundloc run` in the VM: the vivid camera at 320x180, the loopback card, the tiny model, the socket in /tmp.
    private static let servingConfig = config(pcm: "hw:Loopback,1,0", width: 320, height: 180, socketMode: "0660")

    /// A configuration for the VM: the vivid camera at `width`x`height`, the loopback card as `pcm`, the tiny model.
    private static func config(pcm: String, width: Int, height: Int, socketMode: String? = nil) -> String {
        """
        board: qemu-vivid
        audio:
          pcm: "\(pcm)"
        video:
          device: /dev/video0
          width: \(width)
          height: \(height)
          fps: 30
        model:
          path: /opt/test/model.safetensors
        engine:
          threads: 1
        pipeline:
          max_fps: 10
        output:
          socket: /tmp/soundloc.sock

        """ + (socketMode.map { "  socket_mode: \"\($0)\"\n" } ?? "")
    }

    /// Runs the built `soundloc` with `arguments` in the VM (or, with `script`, `sh SCRIPT SOUNDLOC ARGUMENTS...`), with
    /// the engine's tiny model at /opt/test/model.safetensors and `config` at /opt/test/vm.yaml; the result and a
    /// report of the console's end for failure messages.
    private static func runInVM(config: String, _ arguments: [String], script: String? = nil,
                                timeout: Int = 240) throws -> (result: (status: Int32, output: String), report: String) {
        let directory = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let configFile = directory.appendingPathComponent("vm.yaml")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        let model = CLI.repositoryRoot.appendingPathComponent("Tests/SoundlocEngineTests/Fixtures/tiny/model.safetensors")
        let harness = CLI.repositoryRoot.appendingPathComponent("Tools/qemu/run-in-vm.sh")
        var environment = [
            "SOUNDLOC_VM_TIMEOUT": "\(timeout)",
            "SOUNDLOC_VM_FILES": "\(model.path):/opt/test/model.safetensors \(configFile.path):/opt/test/vm.yaml",
        ]
        if let script { environment["SOUNDLOC_VM_SCRIPT"] = script }
        let result = try run(harness.path, [CLI.executable.path] + arguments, environment: environment)
        return (result, "run-in-vm.sh exited \(result.status); its output ends:\n" + String(result.output.suffix(4000)))
    }

    /// Runs `body` where the VM harness can run (an x86-64 Linux host with QEMU); fails without QEMU, skips elsewhere.
    private static func inVM(_ body: () throws -> Void) throws {
        #if os(Linux) && arch(x86_64)
        guard onPath("qemu-system-x86_64") else {
            return XCTFail("qemu-system-x86_64 not installed: run `sudo Tools/setup.sh --test`")
        }
        try body()
        #else
        throw XCTSkip("the QEMU harness boots Debian's amd64 kernel; run it on an x86-64 host")
        #endif
    }

    private static func onPath(_ tool: String) -> Bool {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)")
        }
    }

    /// Runs a command with stdout and stderr merged, as a person watching the console would see them.
    private static func run(_ path: String, _ arguments: [String], environment: [String: String]) throws -> (status: Int32, output: String) {
        try runMerged(path, arguments, environment: environment)
    }
}
