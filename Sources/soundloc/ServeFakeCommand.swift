import ArgumentParser
import Foundation
import SoundlocOutput
import SoundlocPipeline

/// Serves synthetic FRAMEs on the real socket server, so clients and the protocol can be tried without a model.
struct ServeFakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve-fake",
        abstract: "Serve made-up FRAME messages on a socket (protocol demos and client tests).",
        discussion: """
            Four instruments sit in the quadrants of the picture, as in MUSIC-Synthetic; two of them sound at a \
            time, the pair changes every few seconds, and every ten seconds comes a second of silence. Every \
            thirty seconds the audio device "fails" and "recovers" (STATUS messages). Try it with \
            `socat - UNIX-CONNECT:PATH` or `soundloc watch --socket PATH`.
            """,
        shouldDisplay: false)

    @Option(help: "Socket path to serve on.")
    var socket: String

    @Option(help: "Frames per second.")
    var rate = 25.0

    @Option(help: "Mode of the socket file, in octal.")
    var mode = "0660"

    @Option(help: "Group of the socket file (name or number).")
    var group: String?

    @Option(help: "Stop after this many frames (0: run until Ctrl-C or SIGTERM).")
    var frames = 0

    @Option(help: "Seed of the made-up scene.")
    var seed: UInt64 = 1

    func validate() throws {
        guard rate > 0, rate <= 1000 else { throw ValidationError("--rate must be in (0, 1000]") }
        guard mode_t(mode, radix: 8) != nil else { throw ValidationError("--mode must be octal, e.g. 0660") }
    }

    func run() throws {
        let stop = StopSignal.install(StopSignal.shutdown)
        let scene = FakeScene(seed: seed)
        let configuration = SocketServer.Configuration(path: socket, mode: mode_t(mode, radix: 8)!, group: group)
        let server = try SocketServer.start(configuration: configuration, banner: scene.banner,
                                            logger: Log.logger("soundloc.serve-fake"))
        defer { server.shutdown() }
        say("serving made-up frames at \(rate) Hz on \(socket); Ctrl-C stops")
        let period = UInt64(1e9 / rate)
        var next = monotonicNow()
        var sequence: UInt64 = 0
        while !stop.requested, frames == 0 || sequence < UInt64(frames) {
            let t = Double(sequence) / rate
            for status in scene.statuses(at: t, previous: sequence == 0 ? -1 : Double(sequence - 1) / rate) {
                server.publish(status: status)
            }
            server.publish(scene.report(sequence: sequence, at: t))
            sequence += 1
            next += period
            let now = monotonicNow()
            if next > now { usleep(useconds_t((next - now) / 1000)) } else { next = now }  // late: don't try to catch up
        }
        say("published \(sequence) frames")
    }

    private func monotonicNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// A made-up cocktail-party scene: plausible values, not model output.
private struct FakeScene {
    static let classes = ["accordion", "acoustic_guitar", "cello", "clarinet", "erhu", "flute", "saxophone", "trumpet",
                          "tuba", "violin", "xylophone"]
    let banner = VersionMessage(release: SoundlocVersion.release + "-fake", model: ModelIdentity(name: "serve-fake (no model)", checksum:
        "sha256:0000000000000000000000000000000000000000000000000000000000000000"),
                                classes: FakeScene.classes, imageWidth: 640, imageHeight: 480)
    let seed: UInt64

    init(seed: UInt64) { self.seed = seed }

    /// The four instruments in view during the `epoch`-th stretch of 12 seconds, one per quadrant.
    private func cast(epoch: Int) -> [Int] {
        var rng = SplitMix(seed: seed &+ UInt64(epoch) &* 0x9E37)
        var pool = Array(0..<Self.classes.count)
        return (0..<4).map { _ in pool.remove(at: Int(rng.next() % UInt64(pool.count))) }
    }

    func statuses(at t: Double, previous: Double) -> [StatusMessage] {
        func crossed(_ mark: Double) -> Bool {
            previous >= 0 && previous.truncatingRemainder(dividingBy: 30) < mark && t.truncatingRemainder(dividingBy: 30) >= mark
        }
        if previous < 0 {
            return [StatusMessage(device: .audio, state: .started, message: "capturing from plughw:CARD=Device,DEV=0 (made up)"),
                    StatusMessage(device: .video, state: .started, message: "capturing from /dev/video0 (made up)")]
        }
        if crossed(20) { return [StatusMessage(device: .audio, state: .failed, message: "plughw:CARD=Device,DEV=0: No such device (made up)")] }
        if crossed(22) { return [StatusMessage(device: .audio, state: .recovered, message: "audio capture recovered (made up)")] }
        return []
    }

    func report(sequence: UInt64, at t: Double) -> FrameReport {
        var rng = SplitMix(seed: seed ^ (sequence &* 0x2545F4914F6CDD1D))
        let jitter = { (scale: Double) in (Double(rng.next() % 10_000) / 10_000 - 0.5) * scale }
        let epoch = Int(t / 12)
        let inView = cast(epoch: epoch)
        // Which two of the four sound changes every 4 s; one second in ten is silence (the audio "drops out").
        let pair = Int(t / 4) % 3
        let soundingSlots = [[0, 3], [1, 2], [0, 1]][pair]
        let audioDown = (20..<22).contains(t.truncatingRemainder(dividingBy: 30))  // between the STATUS failed and recovered
        let silence = audioDown || t.truncatingRemainder(dividingBy: 10) >= 9
        let centres: [(Double, Double)] = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]

        var audio = [Float](repeating: 0.01, count: Self.classes.count)
        var sounding: [FrameReport.Sounding] = []
        var silentVisible: [Int] = []
        for (slot, k) in inView.enumerated() {
            let (cx, cy) = centres[slot]
            if !silence, soundingSlots.contains(slot) {
                let score = 0.6 + 0.3 * sin(t * 1.3 + Double(slot)) * 0.5 + jitter(0.05)
                audio[k] += Float(slot == soundingSlots[0] ? 0.55 : 0.3)
                let px = cx + 0.04 * sin(t * 0.7 + Double(slot)) + jitter(0.01)
                let py = cy + 0.03 * cos(t * 0.5 + Double(slot)) + jitter(0.01)
                sounding.append(.init(classIndex: k, score: Float(score), peak: (Float(px), Float(py)),
                                      box: (Float(px - 0.15), Float(py - 0.18), 0.3, 0.36)))
            } else {
                silentVisible.append(k)
            }
        }
        // In the third stretch of each 12 s, an instrument out of the picture is heard too.
        var unlocated: [FrameReport.Unlocated] = []
        if !silence, pair == 2, let offscreen = (0..<Self.classes.count).first(where: { !inView.contains($0) }) {
            audio[offscreen] += 0.25
            unlocated.append(.init(classIndex: offscreen, reason: .notInView, value: Float(0.05 + jitter(0.02)), threshold: 0.5))
        }
        let total = audio.reduce(0, +)
        audio = audio.map { $0 / total }
        sounding.sort { $0.score > $1.score }

        let audioMs = 5 + jitter(1), visionMs = 21 + jitter(4), headsMs = 1.2 + jitter(0.2), featuresMs = 0.6 + jitter(0.1)
        let totalMs = 4 + featuresMs + audioMs + visionMs + headsMs
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nowNanos = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
        return FrameReport(
            sequence: sequence, captureNanos: nowNanos - UInt64(totalMs * 1e6),
            latencies: [.init("features", milliseconds: featuresMs), .init("audio", milliseconds: audioMs),
                        .init("vision", milliseconds: visionMs), .init("heads", milliseconds: headsMs)],
            audioDistribution: audio, sounding: sounding, silentVisible: silentVisible, silence: silence, unlocated: unlocated,
            droppedFrames: sequence / 500, overruns: UInt64(t / 30),
            maps: maps(inView: inView, sounding: sounding))
    }

    /// Class maps as a per-cell softmax over Gaussian blobs at the instruments; the area map lights up where sound is.
    private func maps(inView: [Int], sounding: [FrameReport.Sounding]) -> FrameReport.Maps {
        let side = SoundlocProtocol.mapSide, cells = side * side, k = Self.classes.count
        var area = [Float](repeating: 0.02, count: cells)
        var logits = [Float](repeating: 0, count: k * cells)
        for cell in 0..<cells {
            let x = (Float(cell % side) + 0.5) / Float(side), y = (Float(cell / side) + 0.5) / Float(side)
            for s in sounding {
                let d2 = (x - s.peakX) * (x - s.peakX) + (y - s.peakY) * (y - s.peakY)
                area[cell] = max(area[cell], s.score * exp(-d2 / 0.01))
                logits[s.classIndex * cells + cell] += 3 * s.score * exp(-d2 / 0.015)
            }
            for c in inView { logits[c * cells + cell] += 0.2 }
            let m = (0..<k).map { logits[$0 * cells + cell] }.max() ?? 0
            let e = (0..<k).map { exp(logits[$0 * cells + cell] - m) }
            let sum = e.reduce(0, +)
            for c in 0..<k { logits[c * cells + cell] = e[c] / sum }
        }
        return .init(classMaps: logits, soundingArea: area)
    }
}

/// A tiny deterministic generator (SplitMix64), so `--seed` replays the same scene.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
