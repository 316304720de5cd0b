import Foundation
import SoundlocTestSupport
import SoundlocCapture
import XCTest
@testable import SoundlocEval

enum Paths {
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let repositoryRoot = testsDirectory.deletingLastPathComponent().deletingLastPathComponent()
    static let metricsCases = testsDirectory.appendingPathComponent("Fixtures/metrics_cases.json")
    static let tinyModel = repositoryRoot.appendingPathComponent("Tests/SoundlocEngineTests/Fixtures/tiny/model.safetensors")

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-eval-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

typealias SeededRandom = SoundlocTestSupport.SeededRandom

/// 14×14 maps written the way Tools/tests/test_metrics_dsol.py builds its hand cases.
enum HandMaps {
    static func bandRows(_ lo: Int, _ hi: Int, value: Double = 1) -> [Double] {
        (0..<196).map { (lo...hi).contains($0 / 14) ? value : 0 }
    }

    static func square(_ lo: Int, _ hi: Int) -> [Double] {
        (0..<196).map { (lo...hi).contains($0 / 14) && (lo...hi).contains($0 % 14) ? 1 : 0 }
    }

    /// Upsampled 1-D profile of a 0/1 indicator of cells lo...hi, from its closed form: pixel o
    /// sits at cell coordinate (o + 0.5)/16 − 0.5; values ramp linearly between cell centres.
    static func profile(_ lo: Int, _ hi: Int) -> [Double] {
        (0..<224).map { o in
            let c = max((Double(o) + 0.5) / 16 - 0.5, 0)
            let rise = min(max(c - Double(lo - 1), 0), 1), fall = min(max(Double(hi + 1) - c, 0), 1)
            return min(rise, fall)
        }
    }
}

/// A binary PPM (P6) file's bytes.
func ppm(width: Int, height: Int, pixel: (Int, Int) -> (UInt8, UInt8, UInt8)) -> Data {
    var bytes = [UInt8]("P6\n\(width) \(height)\n255\n".utf8)
    for y in 0..<height {
        for x in 0..<width {
            let (r, g, b) = pixel(x, y)
            bytes += [r, g, b]
        }
    }
    return Data(bytes)
}

/// A small data set in the builder's layout: pictures with coloured rectangles where the objects
/// are, tones for the sounding ones, and a manifest.json.
struct SyntheticDataSet {
    struct SceneSpec {
        var id: String
        var split: String
        var kind: String
        var objects: [(classId: Int, box: [Double], sounding: Bool)]
        var seconds: Double = 1
    }

    static let classes = ["accordion", "acoustic_guitar", "cello", "clarinet", "erhu", "flute", "saxophone",
                          "trumpet", "tuba", "violin", "xylophone"]

    static let defaultScenes: [SceneSpec] = [
        SceneSpec(id: "test-solo-0", split: "test", kind: "solo", objects: [(0, [0.2, 0.25, 0.5, 0.4], true)]),
        SceneSpec(id: "test-solo-1", split: "test", kind: "solo", objects: [(9, [0.1, 0.1, 0.3, 0.7], true)], seconds: 0.6),
        SceneSpec(id: "test-synthetic-0", split: "test", kind: "synthetic",
                  objects: [(2, [0.05, 0.05, 0.4, 0.4], true), (5, [0.55, 0.05, 0.4, 0.4], false),
                            (7, [0.05, 0.55, 0.4, 0.4], true), (10, [0.55, 0.55, 0.4, 0.4], false)]),
        SceneSpec(id: "test-free-0", split: "test", kind: "free",
                  objects: [(3, [0.3, 0.2, 0.3, 0.5], true), (4, [0.7, 0.6, 0.2, 0.3], false)], seconds: 1.5),
        SceneSpec(id: "train-solo-0", split: "train", kind: "solo", objects: [(1, [0.0, 0.0, 1.0, 1.0], true)]),
    ]

    /// Writes the scenes under `root`; returns manifest.json's path.
    @discardableResult
    static func write(to root: URL, scenes: [SceneSpec] = defaultScenes, classes: [String] = classes) throws -> String {
        var entries = [[String: Any]]()
        for (n, s) in scenes.enumerated() {
            let image = "images/\(s.split)/\(s.kind)/\(s.id).ppm", audio = "audio/\(s.split)/\(s.kind)/\(s.id).wav"
            for rel in [image, audio] {
                try FileManager.default.createDirectory(at: root.appendingPathComponent(rel).deletingLastPathComponent(),
                                                        withIntermediateDirectories: true)
            }
            let size = 224
            let picture = ppm(width: size, height: size) { x, y in
                for (k, o) in s.objects.enumerated() {
                    let fx = Double(x) / Double(size), fy = Double(y) / Double(size)
                    if fx >= o.box[0] && fx < o.box[0] + o.box[2] && fy >= o.box[1] && fy < o.box[1] + o.box[3] {
                        return (UInt8(40 + 50 * k), UInt8(200 - 20 * o.classId), UInt8(30 * n % 256))
                    }
                }
                return (UInt8((x + y) % 64 + 90), 110, 120)
            }
            try picture.write(to: root.appendingPathComponent(image))
            let count = Int(s.seconds * 16000)
            let tones = s.objects.filter(\.sounding).map { 220.0 * Double($0.classId + 1) }
            let samples = (0..<count).map { i -> Float in
                let t = Double(i) / 16000
                return Float(tones.reduce(0) { $0 + 0.2 * sin(2 * .pi * $1 * t) })
            }
            try Data(WAVFile.encodePCM16(samples, sampleRate: 16000)).write(to: root.appendingPathComponent(audio))
            entries.append([
                "id": s.id, "split": s.split, "kind": s.kind, "image": image, "audio": audio,
                "objects": s.objects.map { ["class": classes[$0.classId], "class_id": $0.classId, "box": $0.box, "sounding": $0.sounding] },
            ])
        }
        let manifest: [String: Any] = ["format": "soundloc-scenes", "classes": classes, "scenes": entries]
        let path = root.appendingPathComponent("manifest.json")
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted]).write(to: path)
        return path.path
    }
}

func assertClose(_ a: Double?, _ b: Double?, _ tolerance: Double, _ message: @autoclosure () -> String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    switch (a, b) {
    case (nil, nil): return
    case let (x?, y?): XCTAssertLessThanOrEqual(abs(x - y), tolerance, "\(message()): \(x) vs \(y)", file: file, line: line)
    default: XCTFail("\(message()): \(String(describing: a)) vs \(String(describing: b))", file: file, line: line)
    }
}
