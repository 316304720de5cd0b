import SoundlocFeatures
import XCTest

/// Streaming windows must equal the clip-wise computation for every hop-aligned window.
final class StreamingLogMelTests: XCTestCase {
    /// A deterministic long test signal: noise bursts, tones and chirps, so windows differ.
    func longSignal(seconds: Int, seed: UInt64) -> [Float] {
        var state = seed
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
        return (0..<(seconds * 16000)).map { i in
            let t = Float(i) / 16000
            let tone = 0.3 * sin(2 * Float.pi * (200 + 300 * t) * t)
            let burst: Float = (i / 4000) % 3 == 0 ? 0.2 * next() : 0
            return tone * (0.5 + 0.5 * sin(t)) + burst
        }
    }

    func testHundredRandomWindowsEqualClipwise() throws {
        let signal = longSignal(seconds: 12, seed: 7)
        let clipwise = try LogMel()
        let stream = try StreamingLogMel(history: 11)
        var generator = SeededGenerator(seed: 99)
        // Feed in irregular blocks, as a sound card would.
        var fed = 0
        while fed < signal.count {
            let count = min(signal.count - fed, Int.random(in: 1...1500, using: &generator))
            signal[fed..<(fed + count)].withUnsafeBufferPointer { stream.append($0) }
            fed += count
        }
        XCTAssertEqual(stream.samplesReceived, Int64(signal.count))
        var streamed = [Float](repeating: 0, count: 201 * 64)
        var reference = [Float](repeating: 0, count: 201 * 64)
        for _ in 0..<100 {
            let end = Int64.random(in: stream.earliestWindowEnd / 80...stream.latestWindowEnd! / 80, using: &generator) * 80
            try streamed.withUnsafeMutableBufferPointer { try stream.window(endingAt: end, into: $0) }
            signal[Int(end - 16000)..<Int(end)].withUnsafeBufferPointer { input in
                reference.withUnsafeMutableBufferPointer { clipwise.compute(input, into: $0) }
            }
            XCTAssertEqual(streamed, reference, "window ending at sample \(end)")
        }
    }

    func testWindowsWhileStreamingMatchTheNewestSecond() throws {
        let signal = longSignal(seconds: 3, seed: 3)
        let clipwise = try LogMel()
        let stream = try StreamingLogMel()
        var streamed = [Float](repeating: 0, count: 201 * 64)
        var checked = 0
        for start in stride(from: 0, to: signal.count, by: 640) {  // 25 updates per second
            stream.append(Array(signal[start..<min(signal.count, start + 640)]))
            guard let end = stream.latestWindowEnd else { continue }
            try streamed.withUnsafeMutableBufferPointer { try stream.window(endingAt: end, into: $0) }
            XCTAssertEqual(streamed, clipwise.window(Array(signal[Int(end - 16000)..<Int(end)])))
            checked += 1
        }
        XCTAssertEqual(checked, 51)
    }

    func testRefusesWindowsItCannotProduce() throws {
        let stream = try StreamingLogMel(history: 0.5)
        var output = [Float](repeating: 0, count: 201 * 64)
        XCTAssertNil(stream.latestWindowEnd)
        stream.append([Float](repeating: 0.1, count: 40000))
        XCTAssertEqual(stream.latestWindowEnd, 40000)
        XCTAssertEqual(stream.earliestWindowEnd, 32000)
        for bad: Int64 in [40080, 16040, 31920, 8000] {
            XCTAssertThrowsError(try output.withUnsafeMutableBufferPointer { try stream.window(endingAt: bad, into: $0) },
                                 "end \(bad)")
        }
        var short = [Float](repeating: 0, count: 10)
        XCTAssertThrowsError(try short.withUnsafeMutableBufferPointer { try stream.window(endingAt: 40000, into: $0) })
        stream.reset()
        XCTAssertNil(stream.latestWindowEnd)
    }
}

/// SplitMix64: reproducible randomness for tests.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

final class StreamingLevelTests: XCTestCase {
    func testLevelOfAFullScaleSineAndOfSilence() throws {
        let stream = try StreamingLogMel()
        stream.append([Float](repeating: 0, count: 16000))
        XCTAssertEqual(try stream.levelDBFS(endingAt: 16000), -.infinity)
        stream.append((0..<16000).map { Float(sin(2 * Double.pi * 1000 * Double($0) / 16000)) })
        XCTAssertEqual(try stream.levelDBFS(endingAt: 32000), -3.0103, accuracy: 0.001)  // RMS of a sine is 1/√2
        XCTAssertThrowsError(try stream.levelDBFS(endingAt: 32080))
    }
}
