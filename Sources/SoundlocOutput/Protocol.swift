import Foundation

// The headless output protocol (docs/PROTOCOL.md): newline-delimited JSON over a UNIX stream socket, one
// object per line, each with a `class` field naming its kind, as gpsd does.
//
// Two families of types live here:
// - `FrameReport`: what the pipeline fills per processed frame and hands to `SocketServer.publish(_:)`
//   (class indices and flat arrays, the way the model produces them);
// - the wire messages (`VersionMessage`, `FrameMessage`, ...): Codable mirrors of the JSON lines, with
//   class names, for clients (`soundloc watch`, tests). The server writes the lines with `ProtocolWriter`,
//   which is much faster than JSONEncoder for map-sized payloads and keeps `class` as the first key.

/// Constants of protocol version 1.
public enum SoundlocProtocol {
    public static let version = "1"
    /// Longest client line (without its newline) the server accepts; longer ones get an ERROR and a hang-up.
    public static let maxLineLength = 4096
    /// Side of the square class and sounding-area maps.
    public static let mapSide = 14
    public static var mapCells: Int { mapSide * mapSide }
}

/// The `class` values of protocol version 1.
public enum MessageClass: String, Codable, Sendable, CaseIterable {
    case version = "VERSION", frame = "FRAME", status = "STATUS", error = "ERROR", watch = "WATCH", poll = "POLL"
}

// MARK: - What the pipeline fills

/// Why a class the audio network hears is not reported as sounding (`unlocated` in FRAME messages), in the order the
/// interpreter tests them.
public enum UnlocatedReason: String, Codable, Sendable, CaseIterable {
    /// The sounding-area map l peaks below `min_sounding_peak` everywhere: the sound is not placed in the picture.
    case noSoundingArea = "no_sounding_area"
    /// The class's visibility (the softmax over classes of the object maps) stays below its threshold: not in view.
    case notInView = "not_in_view"
    /// Visible, but its class map does not win the cell where it sounds most.
    case weakClassMap = "weak_class_map"
    /// Its class map wins a cell, but l there is below `min_sounding_peak`: seen, not sounding where it is.
    case quietWhereSeen = "quiet_where_seen"
}

/// One processed frame's results, as the pipeline produces them; the server turns it into FRAME lines.
public struct FrameReport: Sendable, Equatable {
    /// Time spent in one pipeline stage.
    public struct StageLatency: Sendable, Equatable {
        public var stage: String
        public var milliseconds: Double
        public init(_ stage: String, milliseconds: Double) {
            self.stage = stage
            self.milliseconds = milliseconds
        }
    }

    /// A class judged visible and sounding; coordinates are normalised to the image (0…1, origin top left).
    public struct Sounding: Sendable, Equatable {
        public var classIndex: Int
        public var score: Float
        public var peakX: Float, peakY: Float
        public var boxX: Float, boxY: Float, boxWidth: Float, boxHeight: Float
        public init(classIndex: Int, score: Float, peak: (x: Float, y: Float),
                    box: (x: Float, y: Float, width: Float, height: Float)) {
            self.classIndex = classIndex
            self.score = score
            (peakX, peakY) = (peak.x, peak.y)
            (boxX, boxY, boxWidth, boxHeight) = (box.x, box.y, box.width, box.height)
        }
    }

    /// A class the audio network hears (probability at least the interpreter's minimum) that is not in `sounding`,
    /// and the test it failed, with the value that failed it and the threshold.
    public struct Unlocated: Sendable, Equatable {
        public var classIndex: Int
        public var reason: UnlocatedReason
        public var value: Float
        public var threshold: Float
        public init(classIndex: Int, reason: UnlocatedReason, value: Float, threshold: Float) {
            self.classIndex = classIndex
            self.reason = reason
            self.value = value
            self.threshold = threshold
        }
    }

    /// The model's maps, row-major 14×14 each.
    public struct Maps: Sendable, Equatable {
        /// K class-aware maps back to back (class-major, K·196 values) in the banner's class order.
        public var classMaps: [Float]
        /// The sounding-area map l (196 values).
        public var soundingArea: [Float]
        public init(classMaps: [Float], soundingArea: [Float]) {
            self.classMaps = classMaps
            self.soundingArea = soundingArea
        }
    }

    public var sequence: UInt64
    /// CLOCK_MONOTONIC nanoseconds at which the camera frame was captured.
    public var captureNanos: UInt64
    public var latencies: [StageLatency]
    /// Audio class distribution p_a (K values, banner class order).
    public var audioDistribution: [Float]
    public var sounding: [Sounding]
    /// Indices of classes that are visible but silent.
    public var silentVisible: [Int]
    /// The energy gate judged the audio window silent (then `sounding` is empty).
    public var silence: Bool
    /// Classes heard but not located, with why (empty in silence: nothing is heard then).
    public var unlocated: [Unlocated]
    /// Frames the pipeline skipped since it started, because it fell behind.
    public var droppedFrames: UInt64
    /// Audio capture over-runs since start.
    public var overruns: UInt64
    /// Sent only to clients that asked for maps; nil when the pipeline did not produce them.
    public var maps: Maps?

    public init(sequence: UInt64, captureNanos: UInt64, latencies: [StageLatency] = [], audioDistribution: [Float],
                sounding: [Sounding] = [], silentVisible: [Int] = [], silence: Bool = false, unlocated: [Unlocated] = [],
                droppedFrames: UInt64 = 0, overruns: UInt64 = 0, maps: Maps? = nil) {
        self.sequence = sequence
        self.captureNanos = captureNanos
        self.latencies = latencies
        self.audioDistribution = audioDistribution
        self.sounding = sounding
        self.silentVisible = silentVisible
        self.silence = silence
        self.unlocated = unlocated
        self.droppedFrames = droppedFrames
        self.overruns = overruns
        self.maps = maps
    }
}

// MARK: - Wire messages

/// Which deployed model is answering.
public struct ModelIdentity: Codable, Sendable, Equatable {
    public var name: String
    /// `sha256:<hex>` of the model's data, as the model file records it.
    public var checksum: String
    public init(name: String, checksum: String) {
        self.name = name
        self.checksum = checksum
    }
}

/// The banner each client gets on connect.
public struct VersionMessage: Codable, Sendable, Equatable {
    public var kind: MessageClass = .version
    public var protocolVersion: String
    public var server: String
    public var release: String
    public var model: ModelIdentity
    public var classes: [String]
    /// [width, height] of the maps (14×14).
    public var mapSize: [Int]
    /// [width, height] in pixels of the camera frames the normalised coordinates refer to.
    public var imageSize: [Int]

    public init(release: String, model: ModelIdentity, classes: [String], imageWidth: Int, imageHeight: Int,
                server: String = "soundloc", protocolVersion: String = SoundlocProtocol.version) {
        self.protocolVersion = protocolVersion
        self.server = server
        self.release = release
        self.model = model
        self.classes = classes
        self.mapSize = [SoundlocProtocol.mapSide, SoundlocProtocol.mapSide]
        self.imageSize = [imageWidth, imageHeight]
    }

    enum CodingKeys: String, CodingKey {
        case kind = "class", protocolVersion = "protocol", server, release, model, classes
        case mapSize = "map_size", imageSize = "image_size"
    }
}

/// One processed frame as a client receives it.
public struct FrameMessage: Codable, Sendable, Equatable {
    public struct Sounding: Codable, Sendable, Equatable {
        public var className: String
        public var score: Double
        /// [x, y] of the class map's maximum, normalised.
        public var peak: [Double]
        /// [x, y, width, height], normalised.
        public var box: [Double]
        public init(className: String, score: Double, peak: [Double], box: [Double]) {
            self.className = className
            self.score = score
            self.peak = peak
            self.box = box
        }
        enum CodingKeys: String, CodingKey { case className = "class", score, peak, box }
    }

    /// A class heard but not located: `reason` is an `UnlocatedReason` raw value (clients must accept others),
    /// `value` what failed the test and `threshold` what it had to reach.
    public struct Unlocated: Codable, Sendable, Equatable {
        public var className: String
        public var reason: String
        public var value: Double
        public var threshold: Double
        public init(className: String, reason: String, value: Double, threshold: Double) {
            self.className = className
            self.reason = reason
            self.value = value
            self.threshold = threshold
        }
        enum CodingKeys: String, CodingKey { case className = "class", reason, value, threshold }
    }

    public struct Maps: Codable, Sendable, Equatable {
        /// Class name → 196 values (row-major 14×14).
        public var classes: [String: [Double]]
        public var soundingArea: [Double]
        enum CodingKeys: String, CodingKey { case classes, soundingArea = "sounding_area" }
    }

    public var kind: MessageClass
    public var seq: UInt64
    public var captureNs: UInt64
    public var publishNs: UInt64
    /// Wall-clock capture time, ISO 8601 UTC with milliseconds.
    public var time: String
    public var latencyMs: [String: Double]
    /// Audio class distribution, class name → probability.
    public var audio: [String: Double]
    public var sounding: [Sounding]
    public var silentVisible: [String]
    public var silence: Bool
    /// Classes heard but not located, and why; nil from a server older than this field.
    public var unlocated: [Unlocated]?
    public var droppedFrames: UInt64
    public var overruns: UInt64
    /// FRAME messages this client missed because it did not read fast enough (cumulative).
    public var droppedMessages: UInt64
    public var maps: Maps?

    enum CodingKeys: String, CodingKey {
        case kind = "class", seq, captureNs = "capture_ns", publishNs = "publish_ns", time, latencyMs = "latency_ms"
        case audio, sounding, silentVisible = "silent_visible", silence, unlocated, droppedFrames = "dropped_frames"
        case overruns, droppedMessages = "dropped_messages", maps
    }
}

/// A device failed, recovered, started or stopped; `server` `stopped` is sent on a clean shutdown.
public struct StatusMessage: Codable, Sendable, Equatable {
    public enum Device: String, Codable, Sendable { case audio, video, server }
    public enum State: String, Codable, Sendable { case failed, recovered, started, stopped }

    public var kind: MessageClass = .status
    public var device: Device
    public var state: State
    public var message: String
    /// Wall-clock time, ISO 8601 UTC; the server fills it when left empty.
    public var time: String

    public init(device: Device, state: State, message: String = "", time: String = "") {
        self.device = device
        self.state = state
        self.message = message
        self.time = time
    }

    enum CodingKeys: String, CodingKey { case kind = "class", device, state, message, time }

    /// Fills `time` with the wall-clock time now, when it is empty.
    mutating func stamp() {
        if time.isEmpty { time = ProtocolWriter.isoTime(unixNanos: ProtocolClock.realtimeNanos()) }
    }
}

/// The server's answer to a line it could not accept.
public struct ErrorMessage: Codable, Sendable, Equatable {
    public var kind: MessageClass = .error
    public var message: String
    public init(message: String) { self.message = message }
    enum CodingKeys: String, CodingKey { case kind = "class", message }
}

/// Client → server subscription change; the server answers with its complete current settings.
public struct WatchMessage: Codable, Sendable, Equatable {
    public var kind: MessageClass = .watch
    /// false pauses FRAME delivery; absent keeps the current setting.
    public var enable: Bool?
    /// true adds the maps to each FRAME; absent keeps the current setting.
    public var maps: Bool?
    public init(enable: Bool? = nil, maps: Bool? = nil) {
        self.enable = enable
        self.maps = maps
    }
    enum CodingKeys: String, CodingKey { case kind = "class", enable, maps }
}

/// Client → server: answer with the latest FRAME now.
public struct PollMessage: Codable, Sendable, Equatable {
    public var kind: MessageClass = .poll
    public init() {}
    enum CodingKeys: String, CodingKey { case kind = "class" }
}

/// Any line a client may receive from the server.
public enum ServerMessage: Sendable, Equatable {
    case version(VersionMessage)
    case frame(FrameMessage)
    case status(StatusMessage)
    case error(ErrorMessage)
    case watch(WatchMessage)
    /// A class this client does not know (a newer server); the line is kept for display.
    case unknown(className: String, line: String)

    private struct Peek: Decodable { var `class`: String }

    /// Decodes one line (with or without its newline).
    public static func decode(_ line: some DataProtocol) throws -> ServerMessage {
        let data = Data(line)
        let decoder = JSONDecoder()
        let peek = try decoder.decode(Peek.self, from: data)
        switch MessageClass(rawValue: peek.class) {
        case .version: return .version(try decoder.decode(VersionMessage.self, from: data))
        case .frame: return .frame(try decoder.decode(FrameMessage.self, from: data))
        case .status: return .status(try decoder.decode(StatusMessage.self, from: data))
        case .error: return .error(try decoder.decode(ErrorMessage.self, from: data))
        case .watch: return .watch(try decoder.decode(WatchMessage.self, from: data))
        case .poll, nil: return .unknown(className: peek.class, line: String(decoding: data, as: UTF8.self))
        }
    }
}

/// A command line a client sent, once validated.
public enum ClientCommand: Sendable, Equatable {
    case watch(enable: Bool?, maps: Bool?)
    case poll

    /// Why a client line was refused; the text goes back in an ERROR message.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    private struct Fields: Decodable {
        var `class`: String
        var enable: Bool?
        var maps: Bool?
    }

    /// gpsd's WATCH fields that mean something here (docs/PROTOCOL.md); the others are ignored.
    private struct GpsdWatch: Decodable {
        var `class`: String?
        var enable: Bool?
        var json: Bool?
        var maps: Bool?
        var raw: Level?

        /// gpsd's `raw` is a level (0, 1, 2); a boolean is taken too.
        struct Level: Decodable {
            var on: Bool
            init(from decoder: Decoder) throws {
                let value = try decoder.singleValueContainer()
                if let flag = try? value.decode(Bool.self) { on = flag } else { on = try value.decode(Int.self) > 0 }
            }
        }
    }

    /// Parses one line without its newline; unknown extra fields are ignored for forward compatibility. Besides
    /// the JSON objects, gpsd's forms are read: `?WATCH={...};`, `?WATCH;` and `?POLL;` (the `;` may be left out).
    public static func parse(_ line: some Collection<UInt8>) throws -> ClientCommand {
        if line.first == UInt8(ascii: "?") { return try parseGpsd(Array(line)) }
        let data = Data(line)
        guard (try? JSONSerialization.jsonObject(with: data, options: [])) is [String: Any] else {
            throw Invalid(description: "expected one JSON object per line, e.g. {\"class\":\"WATCH\",\"maps\":true}")
        }
        let fields: Fields
        do { fields = try JSONDecoder().decode(Fields.self, from: data) } catch let DecodingError.keyNotFound(key, _) {
            throw Invalid(description: "missing field \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(_, context) {
            let key = context.codingPath.last?.stringValue ?? "?"
            throw Invalid(description: key == "class" ? "\"class\" must be a string" : "\"\(key)\" must be true or false")
        } catch DecodingError.valueNotFound(_, let context) {
            throw Invalid(description: "\"\(context.codingPath.last?.stringValue ?? "?")\" must not be null")
        } catch {
            throw Invalid(description: "cannot read command: \(error)")
        }
        switch MessageClass(rawValue: fields.class) {
        case .watch: return .watch(enable: fields.enable, maps: fields.maps)
        case .poll: return .poll
        default: throw Invalid(description: "unknown command class \"\(fields.class)\" (expected WATCH or POLL)")
        }
    }

    /// `?NAME;` or `?NAME={json};`, one command per line.
    private static func parseGpsd(_ bytes: [UInt8]) throws -> ClientCommand {
        var body = bytes.dropFirst()
        if body.last == UInt8(ascii: ";") { body = body.dropLast() }
        let equals = body.firstIndex(of: UInt8(ascii: "="))
        let name = String(decoding: body[..<(equals ?? body.endIndex)], as: UTF8.self)
        let argument = equals.map { body[body.index(after: $0)...] }
        switch name {
        case "POLL":
            return .poll
        case "WATCH":
            // `?WATCH;` asks for the settings in force: the answer to a WATCH that changes nothing.
            guard let argument else { return .watch(enable: nil, maps: nil) }
            let example = "e.g. ?WATCH={\"enable\":true,\"json\":true};"
            guard (try? JSONSerialization.jsonObject(with: Data(argument), options: [])) is [String: Any] else {
                throw Invalid(description: "?WATCH= takes one JSON object and an optional ';', one command per line (\(example))")
            }
            let fields: GpsdWatch
            do { fields = try JSONDecoder().decode(GpsdWatch.self, from: Data(argument)) } catch let DecodingError.typeMismatch(_, context) {
                let key = context.codingPath.first?.stringValue ?? "?"
                switch key {
                case "class": throw Invalid(description: "\"class\" must be a string")
                case "raw": throw Invalid(description: "\"raw\" must be 0, 1, 2, true or false")
                default: throw Invalid(description: "\"\(key)\" must be true or false")
                }
            } catch DecodingError.valueNotFound(_, let context) {
                throw Invalid(description: "\"\(context.codingPath.first?.stringValue ?? "?")\" must not be null")
            } catch {
                throw Invalid(description: "cannot read ?WATCH: \(error)")
            }
            if let className = fields.class, className != "WATCH" {
                throw Invalid(description: "?WATCH= takes a WATCH object, not \"\(className)\"")
            }
            // As in gpsd, an object without "enable" turns watching on, and "json":false leaves nothing to send.
            let enable = fields.json == false ? false : fields.enable ?? true
            return .watch(enable: enable, maps: fields.maps ?? fields.raw.map(\.on))
        default:
            throw Invalid(description: "unknown command ?\(name) (expected ?WATCH or ?POLL, or a JSON object such as {\"class\":\"WATCH\"})")
        }
    }
}

// MARK: - Writing lines

/// Writes protocol lines. Numbers carry at most 3 decimals; non-finite numbers become 0 (JSON has no NaN).
public enum ProtocolWriter {
    public static func line(_ message: VersionMessage) -> [UInt8] {
        var w = JSONBytes()
        w.raw("{\"class\":\"VERSION\",\"protocol\":")
        w.string(message.protocolVersion)
        w.raw(",\"server\":")
        w.string(message.server)
        w.raw(",\"release\":")
        w.string(message.release)
        w.raw(",\"model\":{\"name\":")
        w.string(message.model.name)
        w.raw(",\"checksum\":")
        w.string(message.model.checksum)
        w.raw("},\"classes\":")
        w.strings(message.classes)
        w.raw(",\"map_size\":")
        w.integers(message.mapSize)
        w.raw(",\"image_size\":")
        w.integers(message.imageSize)
        w.raw("}\n")
        return w.bytes
    }

    public static func line(_ message: StatusMessage) -> [UInt8] {
        var w = JSONBytes()
        w.raw("{\"class\":\"STATUS\",\"device\":")
        w.string(message.device.rawValue)
        w.raw(",\"state\":")
        w.string(message.state.rawValue)
        w.raw(",\"message\":")
        w.string(message.message)
        w.raw(",\"time\":")
        w.string(message.time)
        w.raw("}\n")
        return w.bytes
    }

    public static func line(_ message: ErrorMessage) -> [UInt8] {
        var w = JSONBytes()
        w.raw("{\"class\":\"ERROR\",\"message\":")
        w.string(message.message)
        w.raw("}\n")
        return w.bytes
    }

    public static func line(_ message: WatchMessage) -> [UInt8] {
        var w = JSONBytes()
        w.raw("{\"class\":\"WATCH\"")
        if let enable = message.enable { w.raw(",\"enable\":"); w.bool(enable) }
        if let maps = message.maps { w.raw(",\"maps\":"); w.bool(maps) }
        w.raw("}\n")
        return w.bytes
    }

    /// The parts of a FRAME line that every client shares; see `frameLine` for how they join.
    struct FrameParts {
        /// From `{"class":"FRAME"` up to the last shared field, without a closing brace.
        var head: [UInt8]
        /// `,"maps":{...}`, or nil when the report has no (valid) maps.
        var maps: [UInt8]?
    }

    /// The shared head of a FRAME line; `classes` names the report's class indices.
    static func frameHead(_ r: FrameReport, classes: [String], publishNanos: UInt64, time: String) -> [UInt8] {
        var w = JSONBytes(capacity: 512 + 24 * classes.count)
        w.raw("{\"class\":\"FRAME\",\"seq\":")
        w.integer(r.sequence)
        w.raw(",\"capture_ns\":")
        w.integer(r.captureNanos)
        w.raw(",\"publish_ns\":")
        w.integer(publishNanos)
        w.raw(",\"time\":")
        w.string(time)
        w.raw(",\"latency_ms\":{")
        for (i, l) in r.latencies.enumerated() {
            if i > 0 { w.raw(",") }
            w.string(l.stage)
            w.raw(":")
            w.number(l.milliseconds)
        }
        w.raw("},\"audio\":{")
        for (k, p) in r.audioDistribution.enumerated() {
            if k > 0 { w.raw(",") }
            w.string(name(k, classes))
            w.raw(":")
            w.number(Double(p))
        }
        w.raw("},\"sounding\":[")
        for (i, s) in r.sounding.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"class\":")
            w.string(name(s.classIndex, classes))
            w.raw(",\"score\":")
            w.number(Double(s.score))
            w.raw(",\"peak\":[")
            w.number(Double(s.peakX)); w.raw(","); w.number(Double(s.peakY))
            w.raw("],\"box\":[")
            w.number(Double(s.boxX)); w.raw(","); w.number(Double(s.boxY)); w.raw(",")
            w.number(Double(s.boxWidth)); w.raw(","); w.number(Double(s.boxHeight))
            w.raw("]}")
        }
        w.raw("],\"silent_visible\":[")
        for (i, k) in r.silentVisible.enumerated() {
            if i > 0 { w.raw(",") }
            w.string(name(k, classes))
        }
        w.raw("],\"silence\":")
        w.bool(r.silence)
        w.raw(",\"unlocated\":[")
        for (i, u) in r.unlocated.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"class\":")
            w.string(name(u.classIndex, classes))
            w.raw(",\"reason\":")
            w.string(u.reason.rawValue)
            w.raw(",\"value\":")
            w.number(Double(u.value))
            w.raw(",\"threshold\":")
            w.number(Double(u.threshold))
            w.raw("}")
        }
        w.raw("]")
        w.raw(",\"dropped_frames\":")
        w.integer(r.droppedFrames)
        w.raw(",\"overruns\":")
        w.integer(r.overruns)
        return w.bytes
    }

    /// `,"maps":{...}`; nil when the maps do not have the sizes the banner promises.
    static func frameMaps(_ maps: FrameReport.Maps, classes: [String]) -> [UInt8]? {
        let cells = SoundlocProtocol.mapCells
        guard maps.soundingArea.count == cells, maps.classMaps.count == cells * classes.count else { return nil }
        var w = JSONBytes(capacity: (classes.count + 1) * cells * 6 + 64)
        w.raw(",\"maps\":{\"classes\":{")
        for k in classes.indices {
            if k > 0 { w.raw(",") }
            w.string(classes[k])
            w.raw(":")
            w.numbers(maps.classMaps[(k * cells)..<((k + 1) * cells)])
        }
        w.raw("},\"sounding_area\":")
        w.numbers(maps.soundingArea[...])
        w.raw("}")
        return w.bytes
    }

    /// The per-client tail that closes a FRAME line.
    static func frameTail(droppedMessages: UInt64) -> [UInt8] {
        var w = JSONBytes(capacity: 48)
        w.raw(",\"dropped_messages\":")
        w.integer(droppedMessages)
        w.raw("}\n")
        return w.bytes
    }

    /// A complete FRAME line in one piece (tests, tools); the server sends the same bytes in three writes.
    public static func frameLine(_ report: FrameReport, classes: [String], publishNanos: UInt64, time: String,
                                 maps: Bool, droppedMessages: UInt64 = 0) -> [UInt8] {
        var line = frameHead(report, classes: classes, publishNanos: publishNanos, time: time)
        if maps, let m = report.maps, let part = frameMaps(m, classes: classes) { line += part }
        return line + frameTail(droppedMessages: droppedMessages)
    }

    private static func name(_ index: Int, _ classes: [String]) -> String {
        classes.indices.contains(index) ? classes[index] : "class_\(index)"
    }

    /// ISO 8601 UTC with milliseconds, e.g. 2025-03-01T12:00:00.040Z.
    public static func isoTime(unixNanos: UInt64) -> String {
        var seconds = time_t(unixNanos / 1_000_000_000)
        let millis = Int(unixNanos % 1_000_000_000 / 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var w = JSONBytes(capacity: 24)
        w.padded(Int(parts.tm_year) + 1900, width: 4); w.raw("-")
        w.padded(Int(parts.tm_mon) + 1, width: 2); w.raw("-")
        w.padded(Int(parts.tm_mday), width: 2); w.raw("T")
        w.padded(Int(parts.tm_hour), width: 2); w.raw(":")
        w.padded(Int(parts.tm_min), width: 2); w.raw(":")
        w.padded(Int(parts.tm_sec), width: 2); w.raw(".")
        w.padded(millis, width: 3); w.raw("Z")
        return String(decoding: w.bytes, as: UTF8.self)
    }
}

/// A byte buffer with just the JSON pieces the protocol needs.
struct JSONBytes {
    var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case UInt8(ascii: "\n"): raw("\\n")
            case UInt8(ascii: "\r"): raw("\\r")
            case UInt8(ascii: "\t"): raw("\\t")
            case 0..<0x20:
                raw("\\u00")
                bytes.append(hexDigit(b >> 4))
                bytes.append(hexDigit(b & 0xF))
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func bool(_ b: Bool) { if b { raw("true") } else { raw("false") } }

    mutating func integer(_ value: UInt64) {
        var v = value
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[count] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                count += 1
            } while v > 0
            for i in stride(from: count - 1, through: 0, by: -1) { bytes.append(d[i]) }
        }
    }

    mutating func integers(_ values: [Int]) {
        raw("[")
        for (i, v) in values.enumerated() {
            if i > 0 { raw(",") }
            if v < 0 { raw("-") }
            integer(UInt64(v.magnitude))
        }
        raw("]")
    }

    mutating func strings(_ values: [String]) {
        raw("[")
        for (i, v) in values.enumerated() {
            if i > 0 { raw(",") }
            string(v)
        }
        raw("]")
    }

    /// A number rounded to 3 decimals, written without trailing zeros. Hot: a FRAME with maps holds thousands.
    mutating func number(_ x: Double) {
        guard x.isFinite else { return bytes.append(UInt8(ascii: "0")) }
        let thousandths = (x * 1000).rounded()
        guard thousandths.magnitude < 1e15 else {
            bytes.append(contentsOf: "\(x.rounded())".utf8)  // Swift prints these as valid JSON (e.g. 1e+20)
            return
        }
        var n = Int64(thousandths)
        if n == 0 { return bytes.append(UInt8(ascii: "0")) }
        if n < 0 {
            bytes.append(UInt8(ascii: "-"))
            n = -n
        }
        let whole = UInt64(n / 1000), fraction = Int(n % 1000)
        if whole < 10 { bytes.append(UInt8(ascii: "0") + UInt8(whole)) } else { integer(whole) }
        guard fraction != 0 else { return }
        let d1 = fraction / 100, d2 = fraction / 10 % 10, d3 = fraction % 10
        bytes.append(UInt8(ascii: "."))
        bytes.append(UInt8(ascii: "0") + UInt8(d1))
        if d2 != 0 || d3 != 0 { bytes.append(UInt8(ascii: "0") + UInt8(d2)) }
        if d3 != 0 { bytes.append(UInt8(ascii: "0") + UInt8(d3)) }
    }

    /// A JSON array of numbers; values under 1000 in magnitude (all of a map) take a fast path writing in place.
    mutating func numbers(_ values: ArraySlice<Float>) {
        guard values.allSatisfy({ $0.magnitude < 999.9995 }) else {
            bytes.append(UInt8(ascii: "["))
            for (i, v) in values.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                number(Double(v))
            }
            return bytes.append(UInt8(ascii: "]"))
        }
        // Each value takes at most 9 bytes ("-999.999,"), plus the brackets.
        let chunk = [UInt8](unsafeUninitializedCapacity: values.count * 9 + 2) { out, count in
            var i = 0
            out[i] = UInt8(ascii: "["); i += 1
            for v in values {
                if i > 1 { out[i] = UInt8(ascii: ","); i += 1 }
                var n = Int((Double(v) * 1000).rounded())  // NaN fails the magnitude test above
                if n < 0 {
                    out[i] = UInt8(ascii: "-"); i += 1
                    n = -n
                }
                let whole = n / 1000, fraction = n % 1000
                if whole >= 100 { out[i] = UInt8(ascii: "0") + UInt8(whole / 100); i += 1 }
                if whole >= 10 { out[i] = UInt8(ascii: "0") + UInt8(whole / 10 % 10); i += 1 }
                out[i] = UInt8(ascii: "0") + UInt8(whole % 10); i += 1
                if fraction != 0 {
                    out[i] = UInt8(ascii: "."); i += 1
                    out[i] = UInt8(ascii: "0") + UInt8(fraction / 100); i += 1
                    let d2 = fraction / 10 % 10, d3 = fraction % 10
                    if d2 != 0 || d3 != 0 { out[i] = UInt8(ascii: "0") + UInt8(d2); i += 1 }
                    if d3 != 0 { out[i] = UInt8(ascii: "0") + UInt8(d3); i += 1 }
                }
            }
            out[i] = UInt8(ascii: "]"); i += 1
            count = i
        }
        bytes.append(contentsOf: chunk)
    }

    /// A non-negative integer left-padded with zeros to `width` digits.
    mutating func padded(_ value: Int, width: Int) {
        var divisor = 1
        for _ in 1..<max(width, 1) { divisor *= 10 }
        var v = max(value, 0)
        if v >= divisor * 10 { return integer(UInt64(v)) }
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(v / divisor))
            v %= divisor
            divisor /= 10
        }
    }

    private func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "a") + v - 10 }
}

/// The clocks the protocol's timestamps come from.
enum ProtocolClock {
    static func monotonicNanos() -> UInt64 { nanos(CLOCK_MONOTONIC) }
    static func realtimeNanos() -> UInt64 { nanos(CLOCK_REALTIME) }

    /// A FRAME's `publish_ns` (now) and `time` (the wall-clock time of its capture, now minus its age).
    static func publishTimes(captureNanos: UInt64) -> (publishNanos: UInt64, time: String) {
        let publishNanos = monotonicNanos()
        let captureAge = publishNanos >= captureNanos ? publishNanos - captureNanos : 0
        let wall = realtimeNanos()
        return (publishNanos, ProtocolWriter.isoTime(unixNanos: wall >= captureAge ? wall - captureAge : wall))
    }

    private static func nanos(_ clock: clockid_t) -> UInt64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
