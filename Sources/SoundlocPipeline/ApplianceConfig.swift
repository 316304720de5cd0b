import Foundation
import SoundlocBase
import SoundlocOutput
import Yams

/// Everything `soundloc run` needs to know about one board, read from a YAML file in Firmware-Configs/.
public struct ApplianceConfig: Equatable, Sendable {
    public struct Audio: Equatable, Sendable {
        /// ALSA PCM name, e.g. `plughw:1,0` (the plug layer converts rates the card lacks).
        public var pcm = "default"
        public var periodMilliseconds = 20
    }

    public struct Video: Equatable, Sendable {
        public var device = "/dev/video0"
        public var width = 640
        public var height = 480
        public var fps = 30
    }

    public struct Model: Equatable, Sendable {
        public var path = "Models/dsol-music-int8.safetensors"
    }

    public struct Engine: Equatable, Sendable {
        public var threads = 2
        /// `auto` or a kernel family (SOUNDLOC_KERNELS values).
        public var kernels = "auto"
    }

    public struct Pipeline: Equatable, Sendable {
        /// At most this many frames per second are processed; the rest are dropped (counted).
        public var maxFps = 25.0
        /// Audio whose RMS over the window is below this (dBFS) is silence: nothing is reported as sounding.
        public var silenceDBFS = -55.0
        /// A class counts as sounding only where the sounding-area map's peak reaches this.
        public var minSoundingPeak = 0.5
    }

    public struct Output: Equatable, Sendable {
        public var socket = "/run/soundloc/soundloc.sock"
        /// Permission bits of the socket file.
        public var socketMode: UInt16 = 0o660
        /// Group owning the socket file (name or numeric id); nil keeps the process's group.
        public var socketGroup: String?
        /// Clients served at once (`max_clients`); one more gets an ERROR line and is closed.
        public var maxClients = SocketServer.Configuration.defaultMaxClients
    }

    public var board = "generic"
    public var audio = Audio()
    public var video = Video()
    public var model = Model()
    public var engine = Engine()
    public var pipeline = Pipeline()
    public var output = Output()
    public var logLevel = "info"

    public init() {}

    /// Config files (and texts) larger than this are refused unread; the shipped ones are under 2 KiB.
    public static let maxFileBytes = 64 * 1024

    public static let kernelChoices = ["auto", "reference", "avx2", "avx512vnni", "neon", "neondot"]
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Loads and validates a config file; relative model paths resolve against the file's folder's parent
    /// when they do not exist relative to the working directory.
    public static func load(path: String) throws -> ApplianceConfig {
        let bytes: [UInt8]
        do { bytes = try InputFile.read(path, limit: maxFileBytes) } catch let error as InputFileError {
            throw ConfigError(file: path, key: nil, message: "cannot read the file: \(error.reason)")
        }
        return try parse(String(decoding: bytes, as: UTF8.self), file: path)
    }

    /// Parses YAML text; `file` labels errors. Text over `maxFileBytes`, nested deeper than a config can be,
    /// or with aliases that multiply it (a "billion laughs" file) is refused before Yams builds any node.
    public static func parse(_ text: String, file: String) throws -> ApplianceConfig {
        guard text.utf8.count <= maxFileBytes else {
            throw ConfigError(file: file, key: nil, message: "larger than \(maxFileBytes) bytes; a board config is a page of YAML")
        }
        do { try YAMLLimits().check(text) } catch let violation as YAMLLimits.Violation {
            throw ConfigError(file: file, key: nil, message: "refused: \(violation)")
        }
        let node: Any?
        do { node = try Yams.load(yaml: text) }
        catch { throw ConfigError(file: file, key: nil, message: "not valid YAML: \(oneLine(error))") }
        var reader = try ConfigReader(file: file, node: node ?? [String: Any](), path: nil)
        var config = ApplianceConfig()
        config.board = try reader.string("board", default: config.board)
        config.logLevel = try reader.choice("log_level", from: logLevels, default: config.logLevel)
        if var audio = try reader.section("audio") {
            config.audio.pcm = try audio.string("pcm", default: config.audio.pcm)
            config.audio.periodMilliseconds = try audio.integer("period_ms", in: 5...200, default: config.audio.periodMilliseconds)
            try audio.finish()
        }
        if var video = try reader.section("video") {
            config.video.device = try video.string("device", default: config.video.device)
            config.video.width = try video.integer("width", in: 32...7680, default: config.video.width)
            config.video.height = try video.integer("height", in: 32...4320, default: config.video.height)
            config.video.fps = try video.integer("fps", in: 1...240, default: config.video.fps)
            try video.finish()
        }
        if var model = try reader.section("model") {
            config.model.path = try model.string("path", default: config.model.path)
            try model.finish()
        }
        if var engine = try reader.section("engine") {
            config.engine.threads = try engine.integer("threads", in: 1...64, default: config.engine.threads)
            config.engine.kernels = try engine.choice("kernels", from: kernelChoices, default: config.engine.kernels)
            try engine.finish()
        }
        if var pipeline = try reader.section("pipeline") {
            config.pipeline.maxFps = try pipeline.number("max_fps", in: 0.1...240, default: config.pipeline.maxFps)
            config.pipeline.silenceDBFS = try pipeline.number("silence_dbfs", in: -120...0, default: config.pipeline.silenceDBFS)
            config.pipeline.minSoundingPeak = try pipeline.number("min_sounding_peak", in: 0...1, default: config.pipeline.minSoundingPeak)
            try pipeline.finish()
        }
        if var output = try reader.section("output") {
            config.output.socket = try output.string("socket", default: config.output.socket)
            config.output.socketMode = try output.fileMode("socket_mode", default: config.output.socketMode)
            config.output.socketGroup = try output.optionalString("socket_group")
            config.output.maxClients = try output.integer("max_clients", in: 1...1024, default: config.output.maxClients)
            guard config.output.socket.utf8.count < 108 else {
                throw ConfigError(file: file, key: "output.socket", message: "path longer than 107 bytes (the UNIX socket limit)")
            }
            try output.finish()
        }
        try reader.finish()
        return config
    }
}

/// A config mistake: the file, the offending key (dotted path) and what is allowed.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var key: String?
    public var message: String

    public var description: String { key.map { "\(file): \($0): \(message)" } ?? "\(file): \(message)" }
}

private func oneLine(_ error: Error) -> String {
    "\(error)".split(whereSeparator: \.isNewline).joined(separator: " ")
}

/// Walks one mapping of the YAML tree, remembering which keys were read so unknown ones are reported.
private struct ConfigReader {
    let file: String
    let path: String?
    let values: [String: Any]
    var known: [String] = []

    init(file: String, node: Any, path: String?) throws {
        self.file = file
        self.path = path
        guard let mapping = node as? [String: Any] else {
            throw ConfigError(file: file, key: path, message: "expected a mapping of keys to values")
        }
        values = mapping
    }

    func key(_ name: String) -> String { path.map { "\($0).\(name)" } ?? name }

    func fail(_ name: String, _ message: String) -> ConfigError { ConfigError(file: file, key: key(name), message: message) }

    mutating func section(_ name: String) throws -> ConfigReader? {
        known.append(name)
        guard let node = values[name] else { return nil }
        return try ConfigReader(file: file, node: node, path: key(name))
    }

    mutating func string(_ name: String, default fallback: String) throws -> String {
        try optionalString(name) ?? fallback
    }

    mutating func optionalString(_ name: String) throws -> String? {
        known.append(name)
        guard let value = values[name] else { return nil }
        if let text = value as? String, !text.isEmpty { return text }
        if let number = value as? Int { return String(number) }
        throw fail(name, "expected a non-empty string, got \(describe(value))")
    }

    mutating func integer(_ name: String, in range: ClosedRange<Int>, default fallback: Int) throws -> Int {
        known.append(name)
        guard let value = values[name] else { return fallback }
        guard let number = value as? Int, range.contains(number) else {
            throw fail(name, "expected an integer in \(range.lowerBound)…\(range.upperBound), got \(describe(value))")
        }
        return number
    }

    mutating func number(_ name: String, in range: ClosedRange<Double>, default fallback: Double) throws -> Double {
        known.append(name)
        guard let value = values[name] else { return fallback }
        let number = (value as? Double) ?? (value as? Int).map(Double.init)
        guard let number, range.contains(number) else {
            throw fail(name, "expected a number in \(range.lowerBound)…\(range.upperBound), got \(describe(value))")
        }
        return number
    }

    mutating func choice(_ name: String, from choices: [String], default fallback: String) throws -> String {
        known.append(name)
        guard let value = values[name] else { return fallback }
        guard let text = value as? String, choices.contains(text) else {
            throw fail(name, "expected one of \(choices.joined(separator: ", ")), got \(describe(value))")
        }
        return text
    }

    mutating func fileMode(_ name: String, default fallback: UInt16) throws -> UInt16 {
        known.append(name)
        guard let value = values[name] else { return fallback }
        // YAML reads 0660 as the decimal integer 660, so modes are written as quoted octal strings.
        guard let text = value as? String, let mode = UInt16(text.hasPrefix("0o") ? String(text.dropFirst(2)) : text, radix: 8),
              mode <= 0o777
        else { throw fail(name, "expected an octal permission string such as \"0660\", got \(describe(value))") }
        return mode
    }

    func finish() throws {
        let unknown = values.keys.filter { !known.contains($0) }.sorted()
        if let first = unknown.first {
            throw fail(first, "unknown key; allowed here: \(known.joined(separator: ", "))")
        }
    }

    func describe(_ value: Any) -> String {
        if let text = value as? String { return "'\(text)'" }
        if value is [Any] { return "a list" }
        if value is [String: Any] { return "a mapping" }
        return "\(value)"
    }
}
