import Foundation

// The wire messages as Codable mirrors. Their CodingKeys are where the protocol spells its field names (and
// `MessageClass` its `class` values): ProtocolWriter writes the server's lines with them and ClientCommand reads
// commands with them, so a name is written once. Every message's `class` field is `kind = "class"`: synthesised
// Codable needs the raw value in each type's own CodingKeys.

/// Which deployed model is answering.
public struct ModelIdentity: Codable, Sendable, Equatable {
    public var name: String
    /// `sha256:<hex>` of the model's data, as the model file records it.
    public var checksum: String
    public init(name: String, checksum: String) {
        self.name = name
        self.checksum = checksum
    }
    enum CodingKeys: String, CodingKey { case name, checksum }
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

/// Any line a client may receive from the server.
public enum ServerMessage: Sendable, Equatable {
    case version(VersionMessage)
    case frame(FrameMessage)
    case status(StatusMessage)
    case error(ErrorMessage)
    case watch(WatchMessage)
    /// A class this client does not know (a newer server); the line is kept for display.
    case unknown(className: String, line: String)

    /// The `class` field alone, spelt as every message's CodingKeys spell it.
    private struct Peek: Decodable {
        var `class`: String
        init(from decoder: Decoder) throws {
            `class` = try decoder.container(keyedBy: ErrorMessage.CodingKeys.self).decode(String.self, forKey: .kind)
        }
    }

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
