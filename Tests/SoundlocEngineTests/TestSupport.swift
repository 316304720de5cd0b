import Foundation
import SoundlocTestSupport
import XCTest
@testable import SoundlocEngine

typealias SeededRandom = SoundlocTestSupport.SeededRandom

/// Relative error as max|a − b| / max(max|b|, tiny), plus the worst element-wise error
/// |a − b| / max(|b|, floor); the caller bounds both.
struct Comparison {
    var relative: Double
    var elementwise: Double
    var worstIndex: Int
}

func compare(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, floor: Double) -> Comparison {
    precondition(a.count == b.count)
    var maxDiff = 0.0, maxRef = 0.0, worst = 0.0, worstIndex = 0
    for i in 0..<a.count {
        let x = Double(a[i]), y = Double(b[i])
        let d = abs(x - y)
        if !d.isFinite { return Comparison(relative: .infinity, elementwise: .infinity, worstIndex: i) }
        maxDiff = max(maxDiff, d)
        maxRef = max(maxRef, abs(y))
        let e = d / max(abs(y), floor)
        if e > worst { worst = e; worstIndex = i }
    }
    return Comparison(relative: maxDiff / max(maxRef, 1e-30), elementwise: worst, worstIndex: worstIndex)
}

func compare(_ a: [Float], _ b: [Float], floor: Double) -> Comparison {
    a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in compare(x, y, floor: floor) } }
}

/// Asserts `actual` matches `expected` within `tolerance`, both as a whole (relative to the
/// largest reference magnitude) and element-wise (relative, with absolute floor `floor`).
func assertClose(_ actual: [Float], _ expected: [Float], tolerance: Double = 1e-4, floor: Double = 1e-3,
                 _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(what): element count", file: file, line: line)
    guard actual.count == expected.count else { return }
    let c = compare(actual, expected, floor: floor)
    XCTAssertLessThanOrEqual(c.relative, tolerance, "\(what): relative error \(c.relative)", file: file, line: line)
    XCTAssertLessThanOrEqual(c.elementwise, tolerance,
                             "\(what): element \(c.worstIndex) is \(actual[c.worstIndex]), expected \(expected[c.worstIndex]) (error \(c.elementwise))",
                             file: file, line: line)
}

/// The repository root, found from this file's path (Tests/SoundlocEngineTests/<file>).
func repositoryRoot(_ path: String = #filePath) -> URL {
    URL(fileURLWithPath: path).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

struct FixtureMissing: Error {}

/// Directory of the width-8 fixture (model.safetensors + reference.safetensors).
func tinyFixtureDirectory() throws -> URL {
    let fixtures = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil), "Fixtures not bundled")
    let dir = fixtures.appendingPathComponent("tiny")
    guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path) else {
        XCTFail("""
            missing fixture \(dir.path)/model.safetensors; generate it with
            cd Tools && python3 -m dsol.reference --width 8 --classes 11 --seed 1 --out ../Tests/SoundlocEngineTests/Fixtures/tiny
            """)
        throw FixtureMissing()
    }
    return dir
}

func scratchDirectory(_ name: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-engine-tests-\(getpid())-\(name)")
    try? FileManager.default.removeItem(at: dir)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// A safetensors file held as an editable header and data section, for making defective files.
struct EditableSafeTensors {
    var header: [String: Any]
    var data: [UInt8]

    init(bytes: [UInt8]) throws {
        let n = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        header = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any])
        data = Array(bytes[(8 + n)...])
    }

    init(contentsOf url: URL) throws { try self.init(bytes: Array(try Data(contentsOf: url))) }

    var metadata: [String: String] {
        get { header["__metadata__"] as? [String: String] ?? [:] }
        set { header["__metadata__"] = newValue }
    }

    func entry(_ name: String) -> [String: Any] { header[name] as! [String: Any] }

    func offsets(_ name: String) -> (Int, Int) {
        let o = entry(name)["data_offsets"] as! [Any]
        return ((o[0] as! NSNumber).intValue, (o[1] as! NSNumber).intValue)
    }

    mutating func set(_ name: String, _ key: String, _ value: Any) {
        var e = entry(name)
        e[key] = value
        header[name] = e
    }

    /// Tensor names in data order.
    var namesByOffset: [String] {
        header.keys.filter { $0 != "__metadata__" }.sorted { offsets($0).0 < offsets($1).0 }
    }

    /// Removes a tensor and its bytes, shifting later tensors down.
    mutating func remove(_ name: String) {
        let (b, e) = offsets(name)
        data.removeSubrange(b..<e)
        header[name] = nil
        for other in namesByOffset where offsets(other).0 >= e {
            let (ob, oe) = offsets(other)
            set(other, "data_offsets", [ob - (e - b), oe - (e - b)])
        }
    }

    /// Appends a tensor at the end of the data section.
    mutating func append(_ name: String, dtype: String, shape: [Int], bytes: [UInt8]) {
        header[name] = ["dtype": dtype, "shape": shape, "data_offsets": [data.count, data.count + bytes.count]]
        data += bytes
    }

    mutating func setFloat(_ name: String, index: Int, _ value: Float) {
        let (b, _) = offsets(name)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { data.replaceSubrange((b + index * 4)..<(b + index * 4 + 4), with: $0) }
    }

    /// Serialises; with `updateChecksum` the metadata checksum is recomputed over the data.
    func bytes(updateChecksum: Bool = true) throws -> [UInt8] {
        var h = header
        if updateChecksum {
            var m = metadata
            m["checksum"] = "sha256:" + SHA256.hex(data)
            h["__metadata__"] = m
        }
        var json = Array(try JSONSerialization.data(withJSONObject: h, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(0x20) }
        var out = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
        out += json
        out += data
        return out
    }

    func write(to url: URL, updateChecksum: Bool = true) throws {
        try Data(try bytes(updateChecksum: updateChecksum)).write(to: url)
    }
}
