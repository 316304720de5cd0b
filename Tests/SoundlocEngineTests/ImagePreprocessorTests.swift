import XCTest
import SoundlocFeatures

final class ImagePreprocessorTests: XCTestCase {
    private let mean = ImagePreprocessor.imageNetMean, std = ImagePreprocessor.imageNetStd

    /// The contract written as dense matrices, straight from Tools/dsol/image.py's docstring.
    private func naive(_ rgb: [UInt8], h: Int, w: Int, out n: Int) -> [Float] {
        func weights(_ inSize: Int) -> [[Double]] {
            let scale = Double(inSize) / Double(n), support = max(scale, 1)
            return (0..<n).map { o in
                let c = (Double(o) + 0.5) * scale
                let raw = (0..<inSize).map { i in max(0, 1 - abs(Double(i) + 0.5 - c) / support) }
                let s = raw.reduce(0, +)
                return raw.map { $0 / s }
            }
        }
        let wx = weights(w), wy = weights(h)
        let x = rgb.map { Float($0) / Float(255) }
        var t = [Float](repeating: 0, count: h * n * 3)
        for y in 0..<h { for ox in 0..<n { for ch in 0..<3 {
            var s = 0.0
            for i in 0..<w { s += wx[ox][i] * Double(x[(y * w + i) * 3 + ch]) }
            t[(y * n + ox) * 3 + ch] = Float(s)
        } } }
        var out = [Float](repeating: 0, count: 3 * n * n)
        for oy in 0..<n { for ox in 0..<n { for ch in 0..<3 {
            var s = 0.0
            for j in 0..<h { s += wy[oy][j] * Double(t[(j * n + ox) * 3 + ch]) }
            out[ch * n * n + oy * n + ox] = (Float(s) - mean[ch]) / std[ch]
        } } }
        return out
    }

    func testMatchesDenseDefinition() {
        var rng = SeededRandom(seed: 5)
        for (h, w, n) in [(37, 53, 24), (10, 3, 24), (224, 224, 224), (480, 640, 56), (1, 1, 4), (2, 7, 7)] {
            let rgb = (0..<(h * w * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let pre = ImagePreprocessor(inputWidth: w, inputHeight: h, outputSize: n)
            let got = pre.process(rgb: rgb), want = naive(rgb, h: h, w: w, out: n)
            // Double accumulation: any difference is a one-ulp rounding flip of the stored Float.
            for i in 0..<got.count where got[i] != want[i] {
                XCTAssertEqual(got[i], want[i], accuracy: 4 * want[i].ulp + 1e-6, "\(h)x\(w)->\(n) element \(i)")
            }
        }
    }

    func testIdentityAndAveraging() {
        // Same size: pixels pass through unchanged.
        let rgb: [UInt8] = [0, 128, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90]
        let same = ImagePreprocessor(inputWidth: 2, inputHeight: 2, outputSize: 2).process(rgb: rgb)
        for p in 0..<4 {
            for ch in 0..<3 {
                XCTAssertEqual(same[ch * 4 + p], (Float(rgb[p * 3 + ch]) / 255 - mean[ch]) / std[ch])
            }
        }
        // 2 -> 1 averages; a uniform image stays uniform at any scale.
        let half = ImagePreprocessor(inputWidth: 2, inputHeight: 2, outputSize: 1).process(rgb: rgb)
        XCTAssertEqual(half[0], ((0 + 10 + 40 + 70) / 4 / 255 - mean[0]) / std[0], accuracy: 1e-6)
        let grey = [UInt8](repeating: 77, count: 31 * 17 * 3)
        let out = ImagePreprocessor(inputWidth: 17, inputHeight: 31).process(rgb: grey)
        XCTAssertEqual(out.count, 3 * 224 * 224)
        for ch in 0..<3 {
            let v = (Float(77) / 255 - mean[ch]) / std[ch]
            XCTAssertTrue(out[(ch * 50176)..<((ch + 1) * 50176)].allSatisfy { abs($0 - v) <= 2 * v.ulp + 1e-6 })
        }
    }
}
