import ArgumentParser
import Foundation
import Logging
import SoundlocBase
import SoundlocOutput
import SoundlocPipeline

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole appliance on the bundled cocktail-party clip, no camera or microphone needed.",
        discussion: """
            Plays Models/demo (a still scene of four instruments and a 10-s sound track in which different ones \
            play, then silence) through the real pipeline with the shipped model at real-time pace, serves the \
            UNIX socket while it runs (watch it with `soundloc watch --socket out/demo/soundloc.sock`), listens \
            to that socket itself, prints what it finds each second and per part of the track, and writes \
            out/demo/overlay.png (the class maps at the end of each part) and out/demo/frames.jsonl (every \
            FRAME message the socket carried).
            """)

    @Option(help: "Model file.")
    var model = "Models/dsol-music-int8.safetensors"

    @Option(help: "Folder of the demo clip (scene.png, clip.wav, scene.json).")
    var clip = "Models/demo"

    @Option(help: "Folder for the demo's outputs (created if missing).")
    var out = "out/demo"

    @Option(help: "Socket path ('none' publishes nothing); default: OUT/soundloc.sock.")
    var socket: String?

    @Option(help: "Inference threads.")
    var threads = 2

    @Flag(help: "Process every frame as fast as possible instead of at real-time pace.")
    var fast = false

    func validate() throws {
        try ThreadCount.validate(threads)
    }

    func run() throws {
        guard FileManager.default.fileExists(atPath: model) else {
            throw ValidationError("model file \(model) not found (run from the repository root, or give --model)")
        }
        let scene = try DemoScene.load(folder: clip)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var settings = ApplianceConfig()
        settings.model.path = model
        settings.engine.threads = threads
        settings.output.socket = socket ?? "\(out)/soundloc.sock"
        var logger = Log.logger("soundloc.demo")
        logger.logLevel = max(logger.logLevel, .warning)  // the demo prints its own story; problems still show

        say("scene: \(scene.objects.map(\.className).joined(separator: ", ")) (\(clip)/scene.png)")
        for part in scene.timeline {
            say(String(format: "  %4.1f-%4.1f s  heard: %@", part.start, part.end,
                         part.sounding.isEmpty ? "nothing (silence)" : part.sounding.joined(separator: " + ")))
        }
        let fps = 25.0
        var made: DemoRecorder?
        let session = try ApplianceSession(settings: settings, release: SoundlocVersion.release, audioFile: "\(clip)/clip.wav",
                                           videoFile: "\(clip)/scene.png", fps: fps, fast: fast, frameLimit: nil, logger: logger,
                                           observe: { facts in
            let recorder = DemoRecorder(scene: scene, classes: facts.classes, fps: fps)
            made = recorder
            return { recorder.record($0) }
        })
        guard let recorder = made else { preconditionFailure("the session asks for its frame observer while it is built") }
        let listener = session.publishes ? SocketListener(path: settings.output.socket, log: "\(out)/frames.jsonl") : nil
        listener?.start()
        say("model \(model) (\(session.classes.count) classes), \(fast ? "as fast as possible" : "real-time pace")"
              + (session.publishes ? ", serving \(settings.output.socket)" : ""))

        let stats = try session.run()
        let heard = listener?.finish()

        say("\nper part of the track (frames whose 1-s audio window lies inside the part):")
        for line in recorder.partSummary() { say("  " + line) }
        if let heard {
            say("socket: a client received \(heard.frames) FRAME messages (of \(stats.framesProcessed) processed) "
                  + "and \(heard.other) other lines; written to \(out)/frames.jsonl")
        }
        say(PipelineSummary.text(stats))
        let picture = recorder.overlaySheet()
        try PNG.writeRGB(picture.pixels, width: picture.width, height: picture.height, to: "\(out)/overlay.png")
        say("wrote \(out)/overlay.png (rows: end of each part; columns: sounding area, then each class's map)")
    }
}

/// The bundled clip's description (scene.json, written by Tools/dataset/demo_clip.py).
struct DemoScene: Decodable {
    struct Object: Decodable {
        var className: String
        var box: [Double]
        enum CodingKeys: String, CodingKey { case className = "class", box }
    }
    struct Part: Decodable {
        var start: Double
        var end: Double
        var sounding: [String]
        enum CodingKeys: String, CodingKey { case start = "start_s", end = "end_s", sounding }
    }
    var objects: [Object]
    var timeline: [Part]

    static func load(folder: String) throws -> DemoScene {
        for name in ["scene.png", "clip.wav", "scene.json"] where !FileManager.default.fileExists(atPath: "\(folder)/\(name)") {
            throw ValidationError("\(folder)/\(name) not found: --clip must name a folder made by Tools/dataset/demo_clip.py")
        }
        do {
            let scene = try JSONDecoder().decode(DemoScene.self, from: InputFile.data("\(folder)/scene.json", limit: 1 << 20))
            guard !scene.timeline.isEmpty, scene.timeline.allSatisfy({ $0.end > $0.start }) else {
                throw ValidationError("\(folder)/scene.json: empty or backwards timeline")
            }
            return scene
        } catch let error as DecodingError {
            throw ValidationError("\(folder)/scene.json is not a demo scene description: \(error)")
        }
    }
}

/// Collects what the pipeline reported, per second and per part of the track, and the maps at the end of each part.
final class DemoRecorder: @unchecked Sendable {  // unchecked: frames, snapshots and nextSecond are guarded by `lock`; the rest is immutable
    private struct Snapshot {
        var time: Double
        var image: [UInt8], width: Int, height: Int
        var classMaps: [Float], soundingArea: [Float], mapSide: Int
        var sounding: [String], silence: Bool
    }
    private let scene: DemoScene
    private let classes: [String]
    private let fps: Double
    private let lock = NSLock()
    private var frames: [(time: Double, sounding: Set<String>, silence: Bool)] = []
    private var snapshots: [Int: Snapshot] = [:]
    private var nextSecond = 1

    init(scene: DemoScene, classes: [String], fps: Double) {
        self.scene = scene
        self.classes = classes
        self.fps = fps
    }

    func record(_ processed: ProcessedFrame) {
        // Frame n of the still-image source is stamped n / fps; its audio window ends there.
        let time = Double(processed.frame.sequence) / fps
        let sounding = processed.interpretation.sounding
        lock.withLock {
            frames.append((time, Set(sounding.map(\.className)), processed.interpretation.silence))
            if time >= Double(nextSecond) {
                nextSecond = Int(time) + 1
                let what = processed.interpretation.silence ? "silence"
                    : sounding.isEmpty ? "nothing visible is sounding"
                    : sounding.map { String(format: "%@ %.2f at (%.2f, %.2f)", $0.className, $0.score, $0.peak.x, $0.peak.y) }
                        .joined(separator: "; ")
                say(String(format: "t=%5.2f s  %@", time, what))
            }
            // The snapshot of a part: its last frame (the audio window then covers the part's final second).
            for (index, part) in scene.timeline.enumerated() where time <= part.end && time > part.end - 0.5 {
                if let old = snapshots[index], old.time > time { continue }
                let output = processed.output
                snapshots[index] = Snapshot(
                    time: time, image: processed.frame.pixels, width: processed.frame.width, height: processed.frame.height,
                    classMaps: Array(output.classMaps), soundingArea: Array(output.l), mapSide: output.mapWidth,
                    sounding: sounding.map(\.className), silence: processed.interpretation.silence)
            }
        }
    }

    /// One line per part: what was heard, and how often each class was reported sounding.
    func partSummary() -> [String] {
        lock.withLock {
            scene.timeline.map { part in
                let inside = frames.filter { $0.time >= part.start + 1 && $0.time <= part.end }
                guard !inside.isEmpty else { return String(format: "%4.1f-%4.1f s: no frames", part.start, part.end) }
                var counts: [String: Int] = [:]
                for frame in inside { for name in frame.sounding { counts[name, default: 0] += 1 } }
                let silent = inside.filter(\.silence).count
                let reported = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                    .map { String(format: "%@ %.0f%%", $0.key, 100 * Double($0.value) / Double(inside.count)) }
                let heard = part.sounding.isEmpty ? "silence" : part.sounding.joined(separator: " + ")
                return String(format: "%4.1f-%4.1f s  heard %@ → reported: %@%@  (%d frames)", part.start, part.end, heard,
                              reported.isEmpty ? "nothing" : reported.joined(separator: ", "),
                              silent > 0 ? String(format: "; silence gate %.0f%%", 100 * Double(silent) / Double(inside.count)) : "",
                              inside.count)
            }
        }
    }

    /// The picture: one row per part of the track; the frame with the sounding-area map, then one tile per class.
    func overlaySheet() -> RGBCanvas {
        let tile = 112, gap = 6, labelHeight = 2 * BitmapFont.lineHeight + 4, header = BitmapFont.lineHeight + 6
        let columns = classes.count + 1
        let rows = scene.timeline.count
        var canvas = RGBCanvas(width: gap + columns * (tile + gap), height: header + rows * (labelHeight + tile + gap) + gap)
        let heardColor: (UInt8, UInt8, UInt8) = (200, 30, 30)
        for column in 0..<columns {
            let name = column == 0 ? "sounding area" : classes[column - 1]
            canvas.drawText(String(name.prefix(18)), x: gap + column * (tile + gap), y: 4)
        }
        lock.withLock {
            for (row, part) in scene.timeline.enumerated() {
                let top = header + row * (labelHeight + tile + gap)
                let heard = part.sounding.isEmpty ? "silence" : part.sounding.joined(separator: "+")
                guard let shot = snapshots[row] else {
                    canvas.drawText(String(format: "%.0f-%.0f s heard %@: no frame", part.start, part.end, heard), x: gap, y: top)
                    continue
                }
                let reported = shot.silence ? "silence" : shot.sounding.isEmpty ? "nothing" : shot.sounding.joined(separator: "+")
                canvas.drawText(String(format: "%.0f-%.0f s  heard: %@", part.start, part.end, heard), x: gap, y: top)
                canvas.drawText(String(format: "at %.2f s reported: %@", shot.time, reported), x: gap, y: top + BitmapFont.lineHeight,
                                color: (40, 40, 160))
                let y = top + labelHeight
                let cells = shot.mapSide * shot.mapSide
                canvas.drawTile(image: shot.image, imageWidth: shot.width, imageHeight: shot.height, at: gap, y, side: tile,
                                map: shot.soundingArea, mapSide: shot.mapSide)
                for k in 0..<classes.count {
                    let x = gap + (k + 1) * (tile + gap)
                    let map = Array(shot.classMaps[(k * cells)..<((k + 1) * cells)])
                    canvas.drawTile(image: shot.image, imageWidth: shot.width, imageHeight: shot.height, at: x, y, side: tile,
                                    map: map, mapSide: shot.mapSide, dim: 0.45)
                    if part.sounding.contains(classes[k]) {  // ground truth: this class is playing in this part
                        canvas.drawRectangle(x: x - 2, y: y - 2, width: tile + 4, height: tile + 4, color: heardColor)
                        canvas.drawRectangle(x: x - 3, y: y - 3, width: tile + 6, height: tile + 6, color: heardColor)
                    }
                }
            }
        }
        return canvas
    }
}

/// A socket client inside the demo: proves the stream is served and keeps every FRAME line it received.
final class SocketListener: @unchecked Sendable {  // unchecked: frames and other are written by the listener thread, read only after `done` is signalled
    private let path: String
    private let logPath: String
    private let stop = StopSignal()
    private let done = DispatchSemaphore(value: 0)
    private var frames = 0, other = 0

    init(path: String, log: String) {
        self.path = path
        logPath = log
    }

    func start() {
        Thread.detachNewThread { [self] in
            defer { done.signal() }
            guard FileManager.default.createFile(atPath: logPath, contents: nil),
                  let file = FileHandle(forWritingAtPath: logPath) else { return }
            defer { try? file.close() }
            var connection: ProtocolClient?
            while connection == nil && !stop.requested {
                connection = try? ProtocolClient(path: path)
                if connection == nil { stop.sleep(0.05) }
            }
            guard let connection else { return }
            while let line = try? connection.readLine(shouldStop: { stop.requested }) {
                if case .frame = try? ServerMessage.decode(line) {
                    frames += 1
                    file.write(Data(line + [UInt8(ascii: "\n")]))
                } else {
                    other += 1
                }
            }
        }
    }

    /// Waits for the server to close the connection (the session shuts it down), then returns the counts.
    func finish() -> (frames: Int, other: Int) {
        if done.wait(timeout: .now() + 5) == .timedOut {
            stop.request()
            done.wait()
        }
        return (frames, other)
    }
}
