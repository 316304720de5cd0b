import Foundation
import SoundlocEngine
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
        /// Inference thread counts accepted here and by every command's --threads.
        public static let threadRange = 1...64
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

    public static let kernelChoices = ["auto"] + Int8Kernels.names
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Loads and validates a config file; relative paths in it (the model, the socket) are taken from the working
    /// directory, as `soundloc run` started there would. Throws the first problem; `check(path:)` reports them all.
    public static func load(path: String) throws -> ApplianceConfig {
        let report = check(path: path)
        if let first = report.problems.first { throw first }
        return report.config
    }

    /// Parses YAML text; `file` labels errors. Throws the first problem; `check(_:file:)` reports them all.
    public static func parse(_ text: String, file: String) throws -> ApplianceConfig {
        let report = check(text, file: file)
        if let first = report.problems.first { throw first }
        return report.config
    }

    /// Reads a config file and reports every problem in it at once (`soundloc check`).
    public static func check(path: String) -> ConfigReport {
        let bytes: [UInt8]
        do { bytes = try InputFile.read(path, limit: maxFileBytes) } catch {
            let reason = (error as? InputFileError)?.reason ?? "\(error)"
            return ConfigReport(file: path, problems: [ConfigError(file: path, key: nil, message: "cannot read the file: \(reason)")])
        }
        return check(String(decoding: bytes, as: UTF8.self), file: path)
    }

    /// Parses YAML text and reports every problem in it: each bad value and each unknown key, with its dotted key.
    /// Values with a problem keep their defaults in `config`. Text over `maxFileBytes`, nested deeper than a config
    /// can be, or with aliases that multiply it (a "billion laughs" file) is refused before Yams builds any node;
    /// such a text, or one that is not YAML, gives a single problem without a key (`ConfigReport.readable` false).
    public static func check(_ text: String, file: String) -> ConfigReport {
        func unreadable(_ message: String) -> ConfigReport {
            ConfigReport(file: file, problems: [ConfigError(file: file, key: nil, message: message)])
        }
        guard text.utf8.count <= maxFileBytes else {
            return unreadable("larger than \(maxFileBytes) bytes; a board config is a page of YAML")
        }
        do { try YAMLLimits().check(text) } catch {
            return unreadable("refused: \(error)")
        }
        let node: Any?
        do { node = try Yams.load(yaml: text) } catch { return unreadable("not valid YAML: \(oneLine(error))") }
        let log = ConfigLog(file: file)
        let config = read(ConfigReader(log: log, node: node ?? [String: Any](), path: nil))
        return ConfigReport(file: file, config: config, problems: log.problems, readable: true, keysSet: log.keysSet)
    }

    /// Every key the loader accepts, dotted (`audio.pcm`), in the order it reads them; docs/CONFIG.md documents
    /// exactly these (a test compares the two). Taken from the loader itself, reading an empty file.
    public static var acceptedKeys: [String] {
        let log = ConfigLog(file: "")
        _ = read(ConfigReader(log: log, node: [String: Any](), path: nil))
        return log.accepted
    }

    /// The one place that knows the keys: reads every key of every section (absent sections read as empty,
    /// so that `acceptedKeys` sees them all), recording problems in the reader's log.
    private static func read(_ root: ConfigReader) -> ApplianceConfig {
        var reader = root
        var config = ApplianceConfig()
        config.board = reader.string("board", default: config.board)
        config.logLevel = reader.choice("log_level", from: logLevels, default: config.logLevel)
        var audio = reader.section("audio")
        config.audio.pcm = audio.string("pcm", default: config.audio.pcm)
        config.audio.periodMilliseconds = audio.integer("period_ms", in: 5...200, default: config.audio.periodMilliseconds)
        audio.finish()
        var video = reader.section("video")
        config.video.device = video.string("device", default: config.video.device)
        config.video.width = video.integer("width", in: 32...7680, default: config.video.width)
        config.video.height = video.integer("height", in: 32...4320, default: config.video.height)
        config.video.fps = video.integer("fps", in: 1...240, default: config.video.fps)
        video.finish()
        var model = reader.section("model")
        config.model.path = model.string("path", default: config.model.path)
        model.finish()
        var engine = reader.section("engine")
        config.engine.threads = engine.integer("threads", in: Engine.threadRange, default: config.engine.threads)
        config.engine.kernels = engine.choice("kernels", from: kernelChoices, default: config.engine.kernels)
        engine.finish()
        var pipeline = reader.section("pipeline")
        config.pipeline.maxFps = pipeline.number("max_fps", in: 0.1...240, default: config.pipeline.maxFps)
        config.pipeline.silenceDBFS = pipeline.number("silence_dbfs", in: -120...0, default: config.pipeline.silenceDBFS)
        config.pipeline.minSoundingPeak = pipeline.number("min_sounding_peak", in: 0...1, default: config.pipeline.minSoundingPeak)
        pipeline.finish()
        var output = reader.section("output")
        config.output.socket = output.string("socket", default: config.output.socket) { path in
            path.utf8.count < 108 ? nil : "path longer than 107 bytes (the UNIX socket limit)"
        }
        config.output.socketMode = output.fileMode("socket_mode", default: config.output.socketMode)
        config.output.socketGroup = output.optionalString("socket_group")
        config.output.maxClients = output.integer("max_clients", in: 1...1024, default: config.output.maxClients)
        output.finish()
        reader.finish()
        return config
    }
}

/// What `ApplianceConfig.check` found in a config text: the config (defaults where a value was bad) and every problem.
public struct ConfigReport: Sendable {
    public var file: String
    public var config = ApplianceConfig()
    /// In the order the loader reads the keys; an unknown key comes after the known ones of its section.
    public var problems: [ConfigError] = []
    /// False when the text could not be read as a config at all (then `problems` holds that one reason).
    public var readable = false
    /// The dotted keys the file sets, valid or not (unknown ones included).
    public var keysSet: [String] = []

    /// Whether `key` (dotted) has a problem of its own.
    public func hasProblem(_ key: String) -> Bool { problems.contains { $0.key == key } }
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

/// The problems and keys found while reading one config text, shared by the readers of its sections.
private final class ConfigLog {
    let file: String
    var problems: [ConfigError] = []
    /// Every key the loader asked for, dotted (sections not included).
    var accepted: [String] = []
    /// Every key the file set, dotted.
    var keysSet: [String] = []

    init(file: String) { self.file = file }
}

/// Walks one mapping of the YAML tree, remembering which keys were read so unknown ones are reported. A bad value
/// is logged as a problem and the default is used, so that one reading finds every problem.
private struct ConfigReader {
    let log: ConfigLog
    let path: String?
    let values: [String: Any]
    var known: [String] = []

    init(log: ConfigLog, node: Any, path: String?) {
        self.log = log
        self.path = path
        if let mapping = node as? [String: Any] {
            values = mapping
        } else {
            values = [:]
            log.problems.append(ConfigError(file: log.file, key: path, message: "expected a mapping of keys to values, got \(describe(node))"))
        }
        for key in values.keys.sorted() { log.keysSet.append(self.key(key)) }
    }

    func key(_ name: String) -> String { path.map { "\($0).\(name)" } ?? name }

    func fail(_ name: String, _ message: String) {
        log.problems.append(ConfigError(file: log.file, key: key(name), message: message))
    }

    /// The reader of a section; an absent section reads as an empty one (every key takes its default).
    mutating func section(_ name: String) -> ConfigReader {
        known.append(name)
        return ConfigReader(log: log, node: values[name] ?? [String: Any](), path: key(name))
    }

    /// Marks `name` as a key of this mapping and returns its value, if set.
    private mutating func value(_ name: String) -> Any? {
        known.append(name)
        log.accepted.append(key(name))
        return values[name]
    }

    /// A non-empty string; `check` may refuse it with a reason.
    mutating func string(_ name: String, default fallback: String, check: (String) -> String? = { _ in nil }) -> String {
        guard let text = optionalString(name) else { return fallback }
        if let why = check(text) {
            fail(name, why)
            return fallback
        }
        return text
    }

    mutating func optionalString(_ name: String) -> String? {
        guard let value = value(name) else { return nil }
        if let text = value as? String, !text.isEmpty { return text }
        if let number = value as? Int { return String(number) }
        fail(name, "expected a non-empty string, got \(describe(value))")
        return nil
    }

    mutating func integer(_ name: String, in range: ClosedRange<Int>, default fallback: Int) -> Int {
        guard let value = value(name) else { return fallback }
        guard let number = value as? Int, range.contains(number) else {
            fail(name, "expected an integer in \(range.lowerBound)…\(range.upperBound), got \(describe(value))")
            return fallback
        }
        return number
    }

    mutating func number(_ name: String, in range: ClosedRange<Double>, default fallback: Double) -> Double {
        guard let value = value(name) else { return fallback }
        let number = (value as? Double) ?? (value as? Int).map(Double.init)
        guard let number, range.contains(number) else {
            fail(name, "expected a number in \(range.lowerBound)…\(range.upperBound), got \(describe(value))")
            return fallback
        }
        return number
    }

    mutating func choice(_ name: String, from choices: [String], default fallback: String) -> String {
        guard let value = value(name) else { return fallback }
        guard let text = value as? String, choices.contains(text) else {
            fail(name, "expected one of \(choices.joined(separator: ", ")), got \(describe(value))")
            return fallback
        }
        return text
    }

    mutating func fileMode(_ name: String, default fallback: UInt16) -> UInt16 {
        guard let value = value(name) else { return fallback }
        // YAML reads 0660 as the decimal integer 660, so modes are written as quoted octal strings.
        guard let text = value as? String, let mode = UInt16(text.hasPrefix("0o") ? String(text.dropFirst(2)) : text, radix: 8),
              mode <= 0o777
        else {
            fail(name, "expected an octal permission string such as \"0660\", got \(describe(value))")
            return fallback
        }
        return mode
    }

    /// Logs every key of this mapping that nobody read, with the nearest known one when it looks like a typo.
    func finish() {
        for name in values.keys.filter({ !known.contains($0) }).sorted() {
            let guess = closestKey(to: name, in: known).map { " (did you mean \($0)?)" } ?? ""
            fail(name, "unknown key\(guess); allowed here: \(known.joined(separator: ", "))")
        }
    }
}

private func describe(_ value: Any) -> String {
    if let text = value as? String { return "'\(text)'" }
    if value is [Any] { return "a list" }
    if value is [String: Any] { return "a mapping" }
    return "\(value)"
}

/// The known key within two edits (insertions, deletions, substitutions, swaps of neighbours) of `name`, if one is.
private func closestKey(to name: String, in known: [String]) -> String? {
    let a = Array(name.lowercased())
    var best: (key: String, distance: Int)?
    for key in known {
        let b = Array(key)
        // Optimal string alignment distance: Levenshtein plus transpositions of adjacent letters.
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        if !a.isEmpty && !b.isEmpty {
            for i in 1...a.count {
                for j in 1...b.count {
                    let cost = a[i - 1] == b[j - 1] ? 0 : 1
                    d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                    if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
                }
            }
        }
        let distance = d[a.count][b.count]
        if distance <= 2, distance < (best?.distance ?? .max) { best = (key, distance) }
    }
    return best?.key
}
