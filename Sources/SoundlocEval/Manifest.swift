import Foundation
import SoundlocBase

/// Which second of a scene's WAV the model hears.
public enum AudioWindow: Equatable, Sendable {
    /// The window starts this many seconds into the file (0: its first second).
    case start(Double)
    /// The window is centred at this time, clamped inside the track (real-MUSIC frames).
    case centred(Double)

    /// Start time in seconds for a track of `duration` seconds (data.py's `_clip_window`).
    public func startSeconds(duration: Double) -> Double {
        switch self {
        case .start(let s): return s
        case .centred(let t): return min(max(t - 0.5, 0), max(duration - 1, 0))
        }
    }
}

/// One evaluation scene: a picture, its audio and its annotated objects.
public struct Scene: Equatable, Sendable {
    public var id: String
    public var split: String
    /// solo | synthetic | free (builder manifests) or music_solo | music_duet (annotation files).
    public var kind: String
    /// Absolute path of the picture.
    public var image: String
    /// Absolute path of the WAV file.
    public var audio: String
    public var audioWindow: AudioWindow
    public var objects: [SceneObject]

    public init(id: String, split: String, kind: String, image: String, audio: String,
                audioWindow: AudioWindow = .start(0), objects: [SceneObject]) {
        self.id = id
        self.split = split
        self.kind = kind
        self.image = image
        self.audio = audio
        self.audioWindow = audioWindow
        self.objects = objects
    }

    /// Solo scenes are scored with the sounding-area map l; every other kind is a cocktail party.
    public var isSolo: Bool { Manifest.soloKinds.contains(kind) }
}

/// Why a manifest or annotation file could not be used.
public enum ManifestError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case corrupt(path: String, reason: String)
    /// A file a scene needs is not there.
    case missingFile(scene: String, role: String, path: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "cannot read manifest \(path): \(reason)"
        case let .corrupt(path, reason): return "manifest \(path) is not usable: \(reason)"
        case let .missingFile(scene, role, path): return "scene \(scene): \(role) file \(path) does not exist"
        }
    }
}

/// Evaluation scenes from the data-set builder's manifest.json (format "soundloc-scenes") or from
/// an annotation JSON in the real-MUSIC form (`Tools/dsol/data.py`: `load_manifest`, `load_annotation`).
public struct Manifest: Sendable {
    public enum Form: String, Sendable { case scenes, annotation }

    public static let soloKinds: Set<String> = ["solo", "music_solo"]
    public static let cocktailKinds: Set<String> = ["synthetic", "free", "music_duet"]

    /// The file read (absolute).
    public var path: String
    public var form: Form
    /// Class names indexed by class id; nil for annotation files, which carry none.
    public var classes: [String]?
    public var scenes: [Scene]

    public init(path: String, form: Form, classes: [String]?, scenes: [Scene]) {
        self.path = path
        self.form = form
        self.classes = classes
        self.scenes = scenes
    }

    /// Reads `path` (a directory stands for its manifest.json), telling the two forms apart by
    /// their shape. For annotation files, `annotationKind`/`annotationSplit` override what the file
    /// name suggests (see `annotationDefaults`); `fps` dates MUSIC frames by their index.
    public static func load(path: String, annotationKind: String? = nil, annotationSplit: String? = nil,
                            fps: Double = 1) throws -> Manifest {
        var file = absolute(path)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), isDirectory.boolValue {
            file = (file as NSString).appendingPathComponent("manifest.json")
        }
        let data: Data
        do { data = try InputFile.data(file, limit: 256 << 20) } catch let error as InputFileError {
            throw ManifestError.unreadable(path: file, reason: error.reason)
        }
        return try parse(data, path: file, annotationKind: annotationKind, annotationSplit: annotationSplit, fps: fps)
    }

    /// Parses manifest bytes; relative paths inside resolve against `path`'s folder.
    public static func parse(_ data: Data, path: String, annotationKind: String? = nil, annotationSplit: String? = nil,
                             fps: Double = 1) throws -> Manifest {
        let file = absolute(path)
        func corrupt(_ why: String) -> ManifestError { .corrupt(path: file, reason: why) }
        let json: JSONValue
        do { json = try JSONValue.parse(data) } catch {
            throw corrupt("not valid JSON (\(jsonErrorSummary(data)))")
        }
        guard let top = json.object else { throw corrupt("the top level is not a JSON object") }
        if top["scenes"] != nil || top["classes"] != nil {
            return try parseScenes(top, file: file)
        }
        if !top.isEmpty, top.values.allSatisfy({ $0["bbox"] != nil }) {
            let defaults = annotationDefaults(fileName: (file as NSString).lastPathComponent)
            return try parseAnnotation(top, file: file, kind: annotationKind ?? defaults.kind,
                                       split: annotationSplit ?? defaults.split, fps: fps)
        }
        throw corrupt("neither a scene manifest (keys 'classes', 'scenes') nor an annotation file ({\"<frame>\": {\"bbox\": [...]}})")
    }

    /// Kind and split of an annotation file by its name: the builder's `<split>_<kind>.json`, else
    /// music_solo when the name says "solo" and music_duet otherwise (data.py's default), split "test".
    public static func annotationDefaults(fileName: String) -> (kind: String, split: String) {
        let stem = (fileName as NSString).deletingPathExtension
        let parts = stem.split(separator: "_", maxSplits: 1).map(String.init)
        if parts.count == 2, ["train", "val", "test"].contains(parts[0]), ["solo", "synthetic", "free"].contains(parts[1]) {
            return (parts[1], parts[0])
        }
        return (stem.lowercased().contains("solo") ? "music_solo" : "music_duet", "test")
    }

    /// Throws `missingFile` for the first scene whose picture or WAV is not there.
    public static func checkFiles(_ scenes: [Scene]) throws {
        for s in scenes {
            for (role, p) in [("image", s.image), ("audio", s.audio)] {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: p, isDirectory: &isDirectory), !isDirectory.boolValue else {
                    throw ManifestError.missingFile(scene: s.id, role: role, path: p)
                }
            }
        }
    }

    // MARK: builder manifest

    static func parseScenes(_ top: [String: JSONValue], file: String) throws -> Manifest {
        func corrupt(_ why: String) -> ManifestError { .corrupt(path: file, reason: why) }
        guard let classList = top["classes"]?.array, !classList.isEmpty,
              let classes = Optional(classList.compactMap(\.string)), classes.count == classList.count else {
            throw corrupt("'classes' must be a non-empty list of class names")
        }
        guard let sceneList = top["scenes"]?.array else { throw corrupt("'scenes' must be a list") }
        let root = (file as NSString).deletingLastPathComponent
        var scenes = [Scene]()
        scenes.reserveCapacity(sceneList.count)
        for (n, s) in sceneList.enumerated() {
            guard s.object != nil else { throw corrupt("scene \(n) is not an object") }
            let label = s["id"]?.string.map { "scene \(n) ('\($0)')" } ?? "scene \(n)"
            func string(_ key: String) throws -> String {
                guard let v = s[key]?.string, !v.isEmpty else { throw corrupt("\(label): '\(key)' missing or not a string") }
                return v
            }
            let id = try string("id"), split = try string("split"), kind = try string("kind")
            let image = try string("image"), audio = try string("audio")
            let objects = try parseObjects(s["objects"] ?? .array([]), classCount: classes.count) { corrupt("\(label): \($0)") }
            scenes.append(Scene(id: id, split: split, kind: kind, image: join(root, image), audio: join(root, audio),
                                objects: objects))
        }
        return Manifest(path: file, form: .scenes, classes: classes, scenes: scenes)
    }

    /// Objects of a scene (`objects` of a manifest, `bbox` of an annotation entry).
    static func parseObjects(_ value: JSONValue, classCount: Int?, boxKey: String = "box", classKey: String = "class_id",
                             error: (String) -> ManifestError) throws -> [SceneObject] {
        guard let list = value.array else { throw error("objects must be a list") }
        return try list.enumerated().map { n, o in
            guard o.object != nil else { throw error("object \(n) is not an object") }
            guard let classId = o[classKey]?.int, classId >= 0 else {
                throw error("object \(n): '\(classKey)' missing or not a non-negative integer")
            }
            if let k = classCount, classId >= k {
                throw error("object \(n): \(classKey) \(classId) is not below the \(k) classes")
            }
            guard let raw = o[boxKey]?.array, raw.count >= 4, let values = JSONValue.array(Array(raw.prefix(4))).doubles,
                  values.allSatisfy({ $0.isFinite }), let box = Box(values) else {
                throw error("object \(n): '\(boxKey)' must be 4 finite numbers [x, y, w, h]")
            }
            let sounding: Bool
            switch o["sounding"] {
            case nil, .null?: sounding = true
            case .bool(let b)?: sounding = b
            default: throw error("object \(n): 'sounding' must be true or false")
            }
            return SceneObject(classId: classId, box: box, sounding: sounding, className: o["class"]?.string)
        }
    }

    // MARK: real-MUSIC annotation

    /// The official MUSIC annotations (solotest.json, duettest.json) name classes by AudioSet-instrument
    /// ids; only these 7 of MUSIC's 11 classes are annotated.
    public static let audioSetInstruments: [Int: String] = [1: "cello", 3: "acoustic_guitar", 8: "saxophone",
                                                            10: "trumpet", 11: "violin", 12: "flute", 13: "accordion"]
    /// MUSIC's classes in SPEC §2's order: the class space of the official annotations.
    public static let musicClasses = ["accordion", "acoustic_guitar", "cello", "clarinet", "erhu", "flute",
                                      "saxophone", "trumpet", "tuba", "violin", "xylophone"]
    /// The authors' frame numbers count frames at this rate, whatever the video's own.
    static let numberingFPS = 30

    /// Index of the authors' frame_SSS folder in a frame's path components (the last such), and its second.
    static func secondFolder(_ parts: [String]) -> (index: Int, second: Int)? {
        for i in stride(from: parts.count - 2, through: 0, by: -1) where parts[i].hasPrefix("frame_") {
            let digits = parts[i].dropFirst("frame_".count)
            if !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let s = Int(digits) { return (i, s) }
        }
        return nil
    }

    /// data.py's `load_annotation`: frame keys resolve against the file's folder, then its parent.
    /// With an "audio" key in its entries the file is the builder's (category_id = class index, sound
    /// from that file's first second); without, it is the official form: category_id an AudioSet-instrument
    /// id (`audioSetInstruments`, mapped into `musicClasses`), and the sound of
    /// <video>/frame_SSS/NNNNN.jpg is ROOT/audio/<video>.wav centred at NNNNN / 30 (NNNNN // 30 must be SSS);
    /// of any other ROOT/frames/<clip>/<frame>, ROOT/audio/<clip>.wav centred at index / fps.
    static func parseAnnotation(_ top: [String: JSONValue], file: String, kind: String, split: String, fps: Double) throws -> Manifest {
        func corrupt(_ why: String) -> ManifestError { .corrupt(path: file, reason: why) }
        let folder = (file as NSString).deletingLastPathComponent
        let roots = [folder, (folder as NSString).deletingLastPathComponent]
        let official = !top.values.contains { $0["audio"] != nil }
        let idList = audioSetInstruments.keys.sorted().map { "\($0) \(audioSetInstruments[$0]!)" }.joined(separator: ", ")
        var scenes = [Scene]()
        // JSON objects are unordered once parsed; sorting the keys keeps runs deterministic.
        for key in top.keys.sorted() {
            let entry = top[key]!
            let candidates = roots.map { join($0, key) } + [absolute(key)]
            guard let image = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw ManifestError.missingFile(scene: key, role: "frame", path: candidates[0])
            }
            let base = (roots + ["/"]).first(where: { image.hasPrefix($0) }) ?? "/"
            var objects = try parseObjects(entry["bbox"] ?? .array([]), classCount: nil, boxKey: "normbox", classKey: "category_id") {
                corrupt("frame \(key): \($0)")
            }
            if official {
                objects = try objects.map { o in
                    guard let name = audioSetInstruments[o.classId], let c = musicClasses.firstIndex(of: name) else {
                        throw corrupt("frame \(key): category_id \(o.classId) is not one of the official annotations' "
                                      + "AudioSet-instrument ids (\(idList))")
                    }
                    return SceneObject(classId: c, box: o.box, sounding: o.sounding, className: name)
                }
            }
            let audio: String
            let window: AudioWindow
            if let a = entry["audio"] {
                guard let rel = a.string, !rel.isEmpty else { throw corrupt("frame \(key): 'audio' must be a path") }
                audio = join(base, rel)
                window = .start(0)
            } else if let (i, second) = secondFolder(relativeComponents(image, to: base)) {
                // the authors' <video>/frame_SSS/NNNNN.jpg
                let parts = relativeComponents(image, to: base)
                let n = frameIndex(parts[parts.count - 1])
                guard n / numberingFPS == second else {
                    throw corrupt("frame \(key): frame \(n) lies in second \(n / numberingFPS), not in its folder "
                                  + "frame_\(parts[i].dropFirst(6)): the authors number frames at \(numberingFPS) per second "
                                  + "(was the video cut at another rate?)")
                }
                let video = Array(parts[(parts.first == "frames" ? 1 : 0)..<i]).joined(separator: "/")
                let candidates = [base, (base as NSString).deletingLastPathComponent].map {
                    join(join($0, "audio"), video + ".wav")
                }
                guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                    throw ManifestError.missingFile(scene: key, role: "audio", path: candidates[0])
                }
                audio = found
                window = .centred(Double(n) / Double(numberingFPS))
            } else {
                var parts = relativeComponents(image, to: base)
                let frameName = parts.removeLast()
                let musicRoot: String, clip: [String]
                if let i = parts.firstIndex(of: "frames") {
                    musicRoot = parts[..<i].reduce(base) { join($0, $1) }
                    clip = Array(parts[(i + 1)...])
                } else {
                    musicRoot = base
                    clip = parts
                }
                audio = join(join(musicRoot, "audio"), clip.joined(separator: "/") + ".wav")
                window = .centred(Double(frameIndex(frameName)) / fps)
            }
            scenes.append(Scene(id: key, split: split, kind: kind, image: image, audio: audio, audioWindow: window,
                                objects: objects))
        }
        return Manifest(path: file, form: .annotation, classes: official ? musicClasses : nil, scenes: scenes)
    }

    /// The integer at the end of a frame's file stem (0 when it has none).
    public static func frameIndex(_ fileName: String) -> Int {
        let stem = (fileName as NSString).deletingPathExtension
        guard let last = stem.lastIndex(where: { $0.isASCII && $0.isNumber }) else { return 0 }
        var first = last
        while first > stem.startIndex {
            let previous = stem.index(before: first)
            guard stem[previous].isASCII && stem[previous].isNumber else { break }
            first = previous
        }
        return Int(stem[first...last]) ?? 0
    }

    // MARK: paths

    static func absolute(_ path: String) -> String {
        let p = path.hasPrefix("/") ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
        return (p as NSString).standardizingPath
    }

    /// `base`/`rel`, or `rel` alone when it is absolute (pathlib's `/`).
    static func join(_ base: String, _ rel: String) -> String {
        rel.hasPrefix("/") ? rel : (base as NSString).appendingPathComponent(rel)
    }

    static func relativeComponents(_ path: String, to base: String) -> [String] {
        let p = path.split(separator: "/").map(String.init), b = base.split(separator: "/").map(String.init)
        return p.starts(with: b) ? Array(p.dropFirst(b.count)) : p
    }

    /// Where JSON text goes wrong: JSONDecoder does not say, JSONSerialization does.
    static func jsonErrorSummary(_ data: Data) -> String {
        do { _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            if let why = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String { return why }
        }
        return "the data is not in the JSON format"
    }
}

/// A parsed JSON value. JSONDecoder reads numbers correctly rounded, which JSONSerialization on
/// Linux does not (it goes through NSDecimalNumber): a box edge one ulp off can move a pixel.
enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    static func parse(_ data: Data) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: data) }

    subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    var object: [String: JSONValue]? { if case .object(let o) = self { return o } else { return nil } }
    var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    var string: String? { if case .string(let s) = self { return s } else { return nil } }
    var double: Double? { if case .number(let d) = self { return d } else { return nil } }
    var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    var isNull: Bool { self == .null }
    /// An integral number as Int.
    var int: Int? { double.flatMap { Int(exactly: $0) } }
    var doubles: [Double]? {
        guard let a = array else { return nil }
        let d = a.compactMap(\.double)
        return d.count == a.count ? d : nil
    }
}
