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

/// How a model file stores its trunks' convolutions: the trainer's float weights, or `soundloc quantize`'s int8 codes.
public enum ModelPrecision: String, Sendable, Equatable {
    case fp32, int8
}

/// A DSOL model file's `__metadata__`, parsed and checked (Models/FORMAT.md).
public struct ModelMetadata: Sendable, Equatable {
    public static let format = "soundloc-dsol"
    public static let formatVersion = "1"
    public static let arch = "resnet18-s5-dsol"

    public var precision: ModelPrecision
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

    /// Accepted range of every number in the metadata. Each one sizes buffers or loops (width and image
    /// size the trunks, embed_dim and num_classes the heads, audio_features the log-mel front end), so each is
    /// checked before any arithmetic uses it. The ranges hold the shipped models (width 32/64, 224 px, 11
    /// classes, 16 kHz, 201×64 windows) with room to spare, and keep a crafted file from asking for terabytes
    /// or overflowing a size computation.
    public enum Limits {
        public static let width = 1...128
        public static let embedDim = 1...4096
        public static let numClasses = 1...1000
        public static let imageSize = 32...1024
        public static let sampleRate = 1000...192_000
        public static let nFFT = 16...16384
        public static let melBands = 32...512
        public static let frames = 32...4096
        public static let topDB = 1.0...200.0
        /// image_mean lies in this range; image_std too, and above 0.
        public static let imageStatistic: ClosedRange<Float> = -1000...1000
        /// Class names: at most this many bytes each.
        public static let classNameBytes = 256
    }

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
        func positiveInt(_ key: String, in range: ClosedRange<Int>) throws -> Int {
            let v = try get(key)
            guard let n = Int(v), n > 0 else { throw bad(key, "'\(v)' is not a positive integer") }
            guard range.contains(n) else { throw bad(key, "\(n) is outside \(range.lowerBound)...\(range.upperBound)") }
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
            guard values.allSatisfy({ Limits.imageStatistic.contains($0) }) else {
                throw bad(key, "values must lie in \(Limits.imageStatistic.lowerBound)...\(Limits.imageStatistic.upperBound), got \(values)")
            }
            return values
        }

        try expect("format", Self.format)
        try expect("format_version", Self.formatVersion)
        try expect("arch", Self.arch)
        let precisionName = try get("precision")
        guard let precision = ModelPrecision(rawValue: precisionName) else {
            throw bad("precision", "'\(precisionName)', expected fp32 or int8")
        }
        self.precision = precision
        width = try positiveInt("width", in: Limits.width)
        embedDim = try positiveInt("embed_dim", in: Limits.embedDim)
        let k = try positiveInt("num_classes", in: Limits.numClasses)
        guard let names = try json("classes") as? [Any], names.allSatisfy({ $0 is String }) else {
            throw bad("classes", "expected a JSON list of strings")
        }
        classes = names.map { $0 as! String }
        guard classes.count == k else { throw bad("classes", "\(classes.count) names for num_classes \(k)") }
        if let long = classes.first(where: { $0.isEmpty || $0.utf8.count > Limits.classNameBytes }) {
            throw bad("classes", "class name of \(long.utf8.count) bytes (1...\(Limits.classNameBytes))")
        }
        imageSize = try positiveInt("image_size", in: Limits.imageSize)
        imageMean = try floats("image_mean", count: 3)
        imageStd = try floats("image_std", count: 3)
        guard imageStd.allSatisfy({ $0 > 0 }) else { throw bad("image_std", "values must be positive") }

        guard let af = try json("audio_features") as? [String: Any] else { throw bad("audio_features", "expected a JSON object") }
        func afNumber(_ name: String, in range: ClosedRange<Double>) throws -> Double {
            guard let n = af[name] as? NSNumber, n.objCType.pointee != 99, n.doubleValue.isFinite, n.doubleValue > 0 else {
                throw bad("audio_features", "'\(name)' missing or not a positive number")
            }
            guard range.contains(n.doubleValue) else {
                throw bad("audio_features", "'\(name)' \(n.doubleValue) is outside \(range.lowerBound)...\(range.upperBound)")
            }
            return n.doubleValue
        }
        // Range first, then the conversion: Int(1e300) would trap.
        func afInt(_ name: String, in range: ClosedRange<Int>) throws -> Int {
            let d = try afNumber(name, in: Double(range.lowerBound)...Double(range.upperBound))
            guard d == d.rounded() else { throw bad("audio_features", "'\(name)' is not an integer") }
            return Int(d)
        }
        let sampleRate = try afInt("sample_rate", in: Limits.sampleRate)
        let nFFT = try afInt("n_fft", in: Limits.nFFT)
        let melBands = try afInt("n_mels", in: Limits.melBands)
        let frames = try afInt("frames", in: Limits.frames)
        audio = AudioFeatureSpec(sampleRate: sampleRate, nFFT: nFFT, hop: try afInt("hop", in: 1...nFFT), melBands: melBands,
                                 maxFrequency: try afNumber("fmax", in: 1...Double(sampleRate) / 2),
                                 topDB: try afNumber("top_db", in: Limits.topDB), frames: frames)

        if raw["cluster_to_class"] != nil {
            // Each entry is checked as a Double before it becomes an Int.
            guard let list = try json("cluster_to_class") as? [Any], list.count <= Limits.numClasses.upperBound,
                  let map = Optional(list.compactMap { item -> Int? in
                      guard let n = item as? NSNumber, n.objCType.pointee != 99, n.doubleValue == n.doubleValue.rounded(),
                            n.doubleValue >= 0, n.doubleValue < Double(k) else { return nil }
                      return Int(n.doubleValue)
                  }), map.count == list.count else {
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
