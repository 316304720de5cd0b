import ArgumentParser
import Dispatch
import Foundation
import SoundlocBase
import SoundlocOutput
import SoundlocPipeline

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Show live what a running soundloc reports: which objects are sounding, and where.",
        discussion: """
            Connects to the appliance's UNIX socket (docs/PROTOCOL.md), prints its banner, then one view per \
            frame: on a terminal a block redrawn in place, otherwise one line per frame. Reconnects when the \
            server goes away; Ctrl-C quits.
            """)

    @Option(help: "The appliance's socket.")
    var socket = "/run/soundloc/soundloc.sock"

    @Flag(help: "Subscribe to the maps too and draw the sounding-area map (terminal view).")
    var maps = false

    @Flag(help: "One line per frame even on a terminal.")
    var plain = false

    @Option(help: "Quit after this many frames (0: run until Ctrl-C).")
    var frames = 0

    func run() throws {
        let stop = StopSignal.install(StopSignal.shutdown)
        let view = WatchView(tty: !plain && isatty(STDOUT_FILENO) == 1, maps: maps)
        defer { view.finish() }
        var backoff = 0.25
        var waitingSaid = false
        var shown = 0
        while !stop.requested {
            let connection: ProtocolClient
            do {
                connection = try ProtocolClient(path: socket)
            } catch {
                if !waitingSaid { view.note("waiting for soundloc at \(socket) (\(error))…") }
                waitingSaid = true
                stop.sleep(backoff)
                backoff = min(backoff * 2, 5)
                continue
            }
            backoff = 0.25
            waitingSaid = false
            if maps { connection.send(ProtocolWriter.line(WatchMessage(maps: true))) }
            while !stop.requested {
                let line: [UInt8]?
                do { line = try connection.readLine(shouldStop: { stop.requested }) } catch {
                    view.note("\(error)")
                    line = nil
                }
                guard let line else { break }
                guard let message = try? ServerMessage.decode(line) else {
                    view.note("unreadable line: \(TerminalText.escaped(bytes: line.prefix(200)))")
                    continue
                }
                switch message {
                case let .version(banner): view.banner(banner)
                case let .frame(frame):
                    view.frame(frame)
                    shown += 1
                    if frames > 0, shown >= frames { return }
                case let .status(status): view.status(status)
                case let .error(error): view.note("server says: \(error.message)")
                case .watch: break
                case let .unknown(className, _): view.note("(ignoring a \(className) message)")
                }
            }
            if !stop.requested { view.note("server went away; reconnecting…") }
        }
    }
}

/// Renders protocol messages for a person: a redrawn block on a terminal, one line per frame otherwise.
final class WatchView {
    private let tty: Bool
    private let maps: Bool
    private var classes: [String] = []
    private var drawnLines = 0
    private var lastDraw: UInt64 = 0
    private var lastStatus: String?

    init(tty: Bool, maps: Bool) {
        self.tty = tty
        self.maps = maps
        if tty { write("\u{1B}[?25l") }  // hide the cursor while redrawing
    }

    func finish() {
        if tty { write("\u{1B}[?25h") }
        fflush(nil)  // every C stream, standard output among them (naming the global `stdout` is unchecked in Swift 6)
    }

    func banner(_ b: VersionMessage) {
        classes = b.classes
        note("soundloc \(b.release) (protocol \(b.protocolVersion)) · model \(b.model.name) \(b.model.checksum.prefix(19))… · "
             + "\(b.classes.count) classes · maps \(b.mapSize.map(String.init).joined(separator: "×")) · "
             + "image \(b.imageSize.map(String.init).joined(separator: "×"))")
    }

    func status(_ s: StatusMessage) {
        let text = "\(s.time.dropFirst(11).prefix(8)) \(s.device.rawValue) \(s.state.rawValue)\(s.message.isEmpty ? "" : ": \(s.message)")"
        if tty { lastStatus = text } else { note("status: \(text)") }
    }

    /// A line that stays: printed above the redrawn block. Everything the server sent (class names, STATUS and
    /// ERROR messages, unreadable lines) reaches the terminal through here or `frame`, escaped.
    func note(_ text: String) {
        clearBlock()
        write(TerminalText.escaped(text) + "\n")
    }

    func frame(_ f: FrameMessage) {
        guard tty else { return write(TerminalText.escaped(Self.line(f)) + "\n") }
        // A terminal does not need 25 redraws a second; about 12 keep it smooth without flicker.
        let now = DispatchTime.now().uptimeNanoseconds
        guard now - lastDraw >= 80_000_000 else { return }
        lastDraw = now
        // Lines that wrapped would take more rows than we move back up over, so cut them to the terminal width.
        let width = Self.terminalColumns()
        let block = Self.block(f, status: lastStatus, maps: maps).map { TerminalText.escaped($0) }
            .map { $0.count < width ? $0 : String($0.prefix(width - 1)) }
        clearBlock()
        write(block.joined(separator: "\n") + "\n")
        drawnLines = block.count
    }

    private func clearBlock() {
        guard tty, drawnLines > 0 else { return }
        write("\u{1B}[\(drawnLines)A\r\u{1B}[J")
        drawnLines = 0
    }

    private func write(_ text: String) {
        print(text, terminator: "")  // through the C library's standard output stream, like fputs
        fflush(nil)
    }

    private static func terminalColumns() -> Int {
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 1 else { return 80 }
        return Int(size.ws_col)
    }

    // MARK: Formatting

    static func line(_ f: FrameMessage) -> String {
        var parts = ["#\(f.seq)"]
        if f.silence {
            parts.append("silence")
        } else if f.sounding.isEmpty {
            parts.append("nothing sounding in view")
        } else {
            parts.append(f.sounding.map { "\($0.className) \(fmt($0.score))@(\(fmt($0.peak.first)),\(fmt($0.peak.last)))" }
                .joined(separator: " "))
        }
        if !f.silentVisible.isEmpty { parts.append("silent: " + f.silentVisible.joined(separator: ",")) }
        if let unlocated = unlocatedText(f) { parts.append(unlocated) }
        parts.append("audio: " + topAudio(f).map { "\($0.key) \(fmt($0.value))" }.joined(separator: " "))
        parts.append(String(format: "%.1f ms", latency(f)))
        if let area = f.maps?.soundingArea, let peak = area.indices.max(by: { area[$0] < area[$1] }) {
            let side = SoundlocProtocol.mapSide
            parts.append("area peak \(fmt(area[peak])) at (\(fmt((Double(peak % side) + 0.5) / Double(side))),"
                         + "\(fmt((Double(peak / side) + 0.5) / Double(side))))")
        }
        if f.droppedFrames + f.droppedMessages + f.overruns > 0 {
            parts.append("drops \(f.droppedFrames) frames/\(f.droppedMessages) msgs/\(f.overruns) overruns")
        }
        return parts.joined(separator: " | ")
    }

    static func block(_ f: FrameMessage, status: String?, maps: Bool) -> [String] {
        var lines: [String] = []
        let stages = f.latencyMs.sorted { $0.value > $1.value }.prefix(4).map { "\($0.key) \(String(format: "%.1f", $0.value))" }
        lines.append("frame \(f.seq)  \(f.time.dropFirst(11))  latency \(String(format: "%.1f", latency(f))) ms"
                     + (stages.isEmpty ? "" : " (\(stages.joined(separator: ", ")))"))
        lines.append("drops: frames \(f.droppedFrames), messages \(f.droppedMessages), audio overruns \(f.overruns)")
        lines.append("audio: " + topAudio(f).map { "\($0.key) \(fmt($0.value))" }.joined(separator: "   "))
        if f.silence {
            lines.append("sounding: — (silence)")
        } else if f.sounding.isEmpty {
            lines.append("sounding: — (nothing sounding in view)")
        } else {
            lines.append("sounding:")
            let width = f.sounding.map(\.className.count).max() ?? 0
            for s in f.sounding {
                let name = s.className.padding(toLength: width, withPad: " ", startingAt: 0)
                let box = s.box.count == 4 ? "box x \(fmt(s.box[0])) y \(fmt(s.box[1])) w \(fmt(s.box[2])) h \(fmt(s.box[3]))" : ""
                lines.append("  \(name) \(bar(s.score, width: 20)) \(fmt(s.score))  peak (\(fmt(s.peak.first)), \(fmt(s.peak.last)))  \(box)")
            }
        }
        if let unlocated = unlocatedText(f) { lines.append(unlocated) }
        lines.append("visible, silent: " + (f.silentVisible.isEmpty ? "—" : f.silentVisible.joined(separator: ", ")))
        if let status { lines.append("last status: \(status)") }
        if maps, let m = f.maps {
            lines.append("sounding area (14×14):")
            lines += heatmap(m.soundingArea)
        } else if maps {
            lines.append("(no maps in this frame)")
        }
        return lines
    }

    /// "heard, not located: violin (l peak 0.31 < 0.5), tuba (not in view)": what the audio network hears but the
    /// pictures do not place, and why; nil when there is none (or the server does not say).
    static func unlocatedText(_ f: FrameMessage) -> String? {
        guard let unlocated = f.unlocated, !unlocated.isEmpty else { return nil }
        return "heard, not located: " + unlocated.map {
            "\($0.className) (\(UnlocatedText.reason($0.reason, value: $0.value, threshold: $0.threshold)))"
        }.joined(separator: ", ")
    }

    private static func topAudio(_ f: FrameMessage) -> [(key: String, value: Double)] {
        Array(f.audio.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(3))
    }

    private static func latency(_ f: FrameMessage) -> Double {
        f.publishNs >= f.captureNs ? Double(f.publishNs - f.captureNs) / 1e6 : 0
    }

    private static func fmt(_ x: Double?) -> String { String(format: "%.2f", x ?? 0) }

    private static func bar(_ value: Double, width: Int) -> String {
        // A score from the socket is clamped before it becomes an Int: a huge one would trap the conversion.
        let filled = value.isNaN ? 0 : Int(max(0, min(Double(width), (value * Double(width)).rounded())))
        return String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
    }

    /// Two characters per cell so the 14×14 map looks square in a terminal.
    private static func heatmap(_ values: [Double]) -> [String] {
        let side = SoundlocProtocol.mapSide
        guard values.count == side * side else { return ["(map has \(values.count) values)"] }
        let shades = Array(" .:-=+*#%@")
        return (0..<side).map { row in
            "  " + (0..<side).map { col -> String in
                let v = max(0, min(1, values[row * side + col]))
                let c = shades[min(shades.count - 1, Int(v * Double(shades.count)))]
                return String(repeating: c, count: 2)
            }.joined()
        }
    }
}

/// Why a heard class is not located, for a person.
enum UnlocatedText {
    static func reason(_ reason: String, value: Double, threshold: Double) -> String {
        let test = "\(String(format: "%.2f", value)) < \(String(format: "%g", threshold))"
        switch UnlocatedReason(rawValue: reason) {
        case .noSoundingArea?: return "l peak \(test)"
        case .notInView?: return "not in view: visibility \(test)"
        case .weakClassMap?: return "class map \(test) where it sounds"
        case .quietWhereSeen?: return "in view, but l \(test) where it is"
        case nil: return "\(reason) \(test)"
        }
    }
}
