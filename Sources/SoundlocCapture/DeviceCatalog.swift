#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

// What `soundloc devices` and `soundloc check` say about the sound cards and cameras present, and the stable
// names to configure them by. The parsing is kept apart from the files it reads, so tests can feed it text.

/// A sound card, as the kernel lists it in /proc/asound/cards, with its PCM devices from /proc/asound/pcm.
public struct SoundCard: Equatable, Sendable {
    /// The card number (`hw:1`); it depends on the order in which cards were found at boot.
    public var index: Int
    /// The card id (`hw:CARD=Device`), stable across boots: made from the driver's or the device's name.
    public var id: String
    public var driver: String
    public var name: String
    /// The long name: maker, product and, for USB cards, the port.
    public var longName: String
    public var devices: [SoundCardDevice] = []

    public init(index: Int, id: String, driver: String, name: String, longName: String, devices: [SoundCardDevice] = []) {
        self.index = index
        self.id = id
        self.driver = driver
        self.name = name
        self.longName = longName
        self.devices = devices
    }

    public var captureDevices: [SoundCardDevice] { devices.filter(\.capture) }

    /// The ready-to-paste stable PCM name of one of its devices, through the plug layer (which converts the
    /// rate, format and channels to what soundloc captures).
    public func stablePCMName(device: Int) -> String { "plughw:CARD=\(id),DEV=\(device)" }
}

/// One PCM device of a sound card.
public struct SoundCardDevice: Equatable, Sendable {
    public var device: Int
    public var id: String
    public var name: String
    public var playback: Bool
    public var capture: Bool

    public init(device: Int, id: String, name: String, playback: Bool, capture: Bool) {
        self.device = device
        self.id = id
        self.name = name
        self.playback = playback
        self.capture = capture
    }
}

public enum SoundCards {
    /// The cards in /proc/asound (or `root`), or nil when that folder does not exist: no sound driver is loaded,
    /// or this is not Linux. An empty list means the kernel has ALSA but no card.
    public static func read(root: String = "/proc/asound") -> [SoundCard]? {
        guard let cards = try? String(contentsOfFile: "\(root)/cards", encoding: .utf8) else { return nil }
        let pcm = (try? String(contentsOfFile: "\(root)/pcm", encoding: .utf8)) ?? ""
        return parse(cards: cards, pcm: pcm)
    }

    /// Parses the text of /proc/asound/cards and /proc/asound/pcm:
    ///
    ///     " 1 [Device         ]: USB-Audio - USB PnP Sound Device"
    ///     "                      C-Media Electronics Inc. USB PnP Sound Device at usb-0000:01:00.0-1.2, full speed"
    ///     "01-00: USB Audio : USB Audio : capture 1"
    ///
    /// Lines in neither form are skipped (" --- no soundcards ---").
    public static func parse(cards: String, pcm: String) -> [SoundCard] {
        var result: [SoundCard] = []
        var expectLongName = false
        for line in cards.split(separator: "\n", omittingEmptySubsequences: false) {
            if let card = cardLine(line) {
                result.append(card)
                expectLongName = true
            } else if expectLongName, !result.isEmpty {
                result[result.count - 1].longName = line.trimmingCharacters(in: .whitespaces)
                expectLongName = false
            }
        }
        for line in pcm.split(separator: "\n") {
            guard let (card, device) = pcmLine(line), let at = result.firstIndex(where: { $0.index == card }) else { continue }
            result[at].devices.append(device)
        }
        for i in result.indices { result[i].devices.sort { $0.device < $1.device } }
        return result
    }

    /// ` 1 [Device         ]: USB-Audio - USB PnP Sound Device`
    private static func cardLine(_ line: Substring) -> SoundCard? {
        let text = line.drop { $0 == " " }
        guard let open = text.firstIndex(of: "["), let index = Int(text[..<open].trimmingCharacters(in: .whitespaces)),
              let close = text[open...].firstIndex(of: "]") else { return nil }
        let id = text[text.index(after: open)..<close].trimmingCharacters(in: .whitespaces)
        var rest = text[text.index(after: close)...]
        guard rest.hasPrefix(":"), !id.isEmpty else { return nil }
        rest = rest.dropFirst()
        let (driver, name): (String, String)
        if let dash = rest.range(of: " - ") {
            driver = rest[..<dash.lowerBound].trimmingCharacters(in: .whitespaces)
            name = rest[dash.upperBound...].trimmingCharacters(in: .whitespaces)
        } else {
            driver = rest.trimmingCharacters(in: .whitespaces)
            name = ""
        }
        return SoundCard(index: index, id: id, driver: driver, name: name, longName: "")
    }

    /// `01-00: USB Audio : USB Audio : playback 1 : capture 1`
    private static func pcmLine(_ line: Substring) -> (Int, SoundCardDevice)? {
        guard let colon = line.firstIndex(of: ":") else { return nil }
        let numbers = line[..<colon].split(separator: "-")
        guard numbers.count == 2, let card = Int(numbers[0]), let device = Int(numbers[1]) else { return nil }
        var fields = line[line.index(after: colon)...].components(separatedBy: " : ").map { $0.trimmingCharacters(in: .whitespaces) }
        var playback = false, capture = false
        while let last = fields.last, last.hasPrefix("playback ") || last.hasPrefix("capture ") {
            let count = Int(last.split(separator: " ").last ?? "") ?? 0
            if last.hasPrefix("playback ") { playback = count > 0 } else { capture = count > 0 }
            fields.removeLast()
        }
        return (card, SoundCardDevice(device: device, id: fields.first ?? "", name: fields.count > 1 ? fields[1] : "",
                                      playback: playback, capture: capture))
    }
}

/// The card (and device) an ALSA PCM name refers to: `plughw:CARD=Device,DEV=0`, `hw:1,0`, `plughw:1`,
/// `sysdefault:CARD=Device`, `dsnoop:Device`. Names of PCMs defined in a configuration (`default`, `mymic`)
/// refer to no card this way.
public struct PCMCardReference: Equatable, Sendable {
    /// What comes before the colon (`plughw`, `hw`, `dsnoop`, ...).
    public var plugin: String
    /// A card number or id, as written.
    public var card: String
    public var device: Int?

    public init(plugin: String, card: String, device: Int?) {
        self.plugin = plugin
        self.card = card
        self.device = device
    }

    /// Parses a PCM name; nil when it names no card. `CARD=`/`DEV=` pairs and positional arguments are both
    /// read; quotes around a value are removed.
    public init?(pcmName: String) {
        guard let colon = pcmName.firstIndex(of: ":") else { return nil }
        plugin = String(pcmName[..<colon])
        var rest = String(pcmName[pcmName.index(after: colon)...])
        // The plug plugin around another PCM: plug:hw:1, plug:"hw:1,0", plug:SLAVE=hw:1.
        if plugin == "plug" {
            if rest.uppercased().hasPrefix("SLAVE=") { rest = String(rest.dropFirst(6)) }
            rest = rest.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            guard let inner = PCMCardReference(pcmName: rest) else { return nil }
            self = inner
            return
        }
        guard Self.cardPlugins.contains(plugin) else { return nil }
        var card: String?, device: Int?
        let arguments = rest.split(separator: ",", omittingEmptySubsequences: false)
        for (position, argument) in arguments.enumerated() {
            let parts = argument.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " \"'")) }
            let (key, value) = parts.count == 2 ? (parts[0].uppercased(), parts[1]) : (position == 0 ? "CARD" : position == 1 ? "DEV" : "", parts.first ?? "")
            switch key {
            case "CARD": card = value
            case "DEV": device = Int(value)
            default: break
            }
        }
        guard let card, !card.isEmpty else { return nil }
        self.card = card
        self.device = device
    }

    /// The PCM plugins (and the cards' own PCM definitions) whose first argument is a card.
    static let cardPlugins: Set<String> = ["hw", "plughw", "default", "sysdefault", "dsnoop", "dmix", "front", "usbstream"]

    /// The card among `cards` that this reference names (by number or by id, as ALSA matches them).
    public func card(in cards: [SoundCard]) -> SoundCard? {
        if let number = Int(card) { return cards.first { $0.index == number } }
        return cards.first { $0.id == card }
    }
}

/// A PCM that alsa-lib's name hints list.
public struct PCMHint: Equatable, Sendable {
    public var name: String
    /// The first line of the hint's description (the card's name); the rest, if any, says what the PCM does.
    public var title: String
    public var detail: String

    public init(name: String, title: String, detail: String) {
        self.name = name
        self.title = title
        self.detail = detail
    }

    /// One hint's fields as `snd_device_name_get_hint` gives them.
    public struct Raw: Sendable {
        public var name: String?
        public var description: String?
        /// "Input", "Output", or nil for both.
        public var ioid: String?
        public init(name: String?, description: String?, ioid: String?) {
            self.name = name
            self.description = description
            self.ioid = ioid
        }
    }

    /// The hints that can capture (IOID "Input" or none), in alsa's order, without the `null` PCM (which captures
    /// silence) and without duplicates.
    public static func capture(_ hints: [Raw]) -> [PCMHint] {
        var seen = Set<String>()
        return hints.compactMap { raw in
            guard let name = raw.name, !name.isEmpty, name != "null", raw.ioid == nil || raw.ioid == "Input",
                  seen.insert(name).inserted else { return nil }
            let lines = (raw.description ?? "").split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            return PCMHint(name: name, title: lines.first ?? "", detail: lines.dropFirst().joined(separator: " "))
        }
    }
}

/// Stable names of V4L2 cameras: udev's links in /dev/v4l/by-id (USB cameras, named after model and serial
/// number) and /dev/v4l/by-path (named after the port), which survive a change in /dev/videoN numbering.
public enum CameraLinks {
    /// For each device node the links point at (keyed by its resolved path), the links: by-id first, then by-path,
    /// each group sorted. Dangling links are left out; a missing folder gives an empty map.
    public static func stableLinks(root: String = "/dev/v4l") -> [String: [String]] {
        var links: [String: [String]] = [:]
        for folder in ["by-id", "by-path"] {
            let directory = "\(root)/\(folder)"
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for name in names.sorted() {
                let link = "\(directory)/\(name)"
                guard let target = resolvedPath(link) else { continue }
                links[target, default: []].append(link)
            }
        }
        return links
    }

    /// The path with every symbolic link resolved, or nil when it leads nowhere.
    public static func resolvedPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
