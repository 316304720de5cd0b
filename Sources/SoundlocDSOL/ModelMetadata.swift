import Foundation
import SoundlocEngine

/// The audio front end a model was trained with (metadata `audio_features`).
public struct AudioFeatureSpec: Sendable, Equatable {
    public var sampleRate: Int
    public var nFFT: Int
    public var hop: Int
    public var melBands: Int
    public var maxFrequency: Double
    public var topDB: Double
    /// STFT frames per window: the audio network's input height.
    public var frames: Int
}

/// A DSOL model file's `__metadata__`, parsed and checked (Models/FORMAT.md).
public struct ModelMetadata: Sendable, Equatable {
    public static let format = "soundloc-dsol"
    public static let formatVersion = "1"
    public static let arch = "resnet18-s5-dsol"

    /// `fp32` or `int8`.
    public var precision: String
    /// Base channel width of the ResNet trunks (64 for the real model).
    public var width: Int
    public var embedDim: Int
    public var classes: [String]
    public var imageSize: Int
    public var imageMean: [Float]
    public var imageStd: [Float]
    public var audio: AudioFeatureSpec
    /// Cluster index to class index (Hungarian matching), when the trainer recorded it.
    public var clusterToClass: [Int]?
    public var source: String
    /// `sha256:<hex>` of the data section.
    public var checksum: String
    /// Every metadata entry as stored.
    public var raw: [String: String]

    public var numClasses: Int { classes.count }
    /// Feature size D = 8·width.
    public var featureDim: Int { 8 * width }

    /// Parses and validates; throws `ModelFileError.missingMetadata` / `.badMetadata` naming the key.
    public init(_ raw: [String: String]) throws {
        self.raw = raw
        func get(_ key: String) throws -> String {
            guard let v = raw[key] else { throw ModelFileError.missingMetadata(key: key) }
            return v
        }
        func bad(_ key: String, _ why: String) -> ModelFileError { .badMetadata(key: key, reason: why) }
        func expect(_ key: String, _ value: String) throws {
            let v = try get(key)
            guard v == value else { throw bad(key, "'\(v)', expected '\(value)'") }
        }
        func positiveInt(_ key: String) throws -> Int {
            let v = try get(key)
            guard let n = Int(v), n > 0 else { throw bad(key, "'\(v)' is not a positive integer") }
            return n
        }
        func json(_ key: String) throws -> Any {
            let v = try get(key)
            guard let obj = try? JSONSerialization.jsonObject(with: Data(v.utf8), options: [.fragmentsAllowed]) else {
                throw bad(key, "not valid JSON: '\(v)'")
            }
            return obj
        }
        func floats(_ key: String, count: Int) throws -> [Float] {
            guard let list = try json(key) as? [Any], list.count == count,
                  let values = Optional(list.compactMap { ($0 as? NSNumber)?.floatValue }), values.count == count,
                  values.allSatisfy({ $0.isFinite }) else {
                throw bad(key, "expected a JSON list of \(count) numbers")
            }
            return values
        }

        try expect("format", Self.format)
        try expect("format_version", Self.formatVersion)
        try expect("arch", Self.arch)
        precision = try get("precision")
        guard precision == "fp32" || precision == "int8" else { throw bad("precision", "'\(precision)', expected fp32 or int8") }
        width = try positiveInt("width")
        embedDim = try positiveInt("embed_dim")
        let k = try positiveInt("num_classes")
        guard let names = try json("classes") as? [Any], names.allSatisfy({ $0 is String }) else {
            throw bad("classes", "expected a JSON list of strings")
        }
        classes = names.map { $0 as! String }
        guard classes.count == k else { throw bad("classes", "\(classes.count) names for num_classes \(k)") }
        imageSize = try positiveInt("image_size")
        guard imageSize >= 32 else { throw bad("image_size", "\(imageSize) is too small for the ResNet") }
        imageMean = try floats("image_mean", count: 3)
        imageStd = try floats("image_std", count: 3)
        guard imageStd.allSatisfy({ $0 > 0 }) else { throw bad("image_std", "values must be positive") }

        guard let af = try json("audio_features") as? [String: Any] else { throw bad("audio_features", "expected a JSON object") }
        func afNumber(_ name: String) throws -> Double {
            guard let n = af[name] as? NSNumber, n.doubleValue.isFinite, n.doubleValue > 0 else {
                throw bad("audio_features", "'\(name)' missing or not a positive number")
            }
            return n.doubleValue
        }
        func afInt(_ name: String) throws -> Int {
            let d = try afNumber(name)
            guard d == d.rounded() else { throw bad("audio_features", "'\(name)' is not an integer") }
            return Int(d)
        }
        audio = AudioFeatureSpec(sampleRate: try afInt("sample_rate"), nFFT: try afInt("n_fft"), hop: try afInt("hop"),
                                 melBands: try afInt("n_mels"), maxFrequency: try afNumber("fmax"),
                                 topDB: try afNumber("top_db"), frames: try afInt("frames"))
        guard audio.frames >= 32, audio.melBands >= 32 else {
            throw bad("audio_features", "\(audio.frames)x\(audio.melBands) input is too small for the ResNet")
        }

        if raw["cluster_to_class"] != nil {
            guard let list = try json("cluster_to_class") as? [Any],
                  let map = Optional(list.compactMap { ($0 as? NSNumber).map { $0.intValue } }), map.count == list.count,
                  map.allSatisfy({ (0..<k).contains($0) }) else {
                throw bad("cluster_to_class", "expected a JSON list of class indices below \(k)")
            }
            clusterToClass = map
        } else {
            clusterToClass = nil
        }
        source = raw["source"] ?? ""
        checksum = try get("checksum")
    }
}
