import SoundlocEngine
import XCTest

final class ActivationHistogramTests: XCTestCase {
    func histogram(_ values: [Float]) -> ActivationHistogram {
        var h = ActivationHistogram(lower: values.min()!, upper: values.max()!)
        values.withUnsafeBufferPointer { h.add($0) }
        return h
    }

    func testQuantizationParametersKeepZeroExact() {
        let relu = ActivationQuantization(range: 0...2.55)
        XCTAssertEqual(relu.zeroPoint, 0)
        XCTAssertEqual(relu.scale, 0.01, accuracy: 1e-7)
        let signed = ActivationQuantization(range: -1...3)
        XCTAssertEqual(signed.zeroPoint, 64)
        XCTAssertEqual(ActivationQuantization(range: 1...2).zeroPoint, 0, "a positive range is widened to include 0")
    }

    func testMinMaxIsTheObservedRange() {
        let h = histogram([0, 0.5, 1, 4])
        XCTAssertEqual(h.range(.minmax), 0...4)
    }

    func testPercentileClipsRareOutliers() {
        var values = [Float](repeating: 0, count: 100_000)
        for i in values.indices { values[i] = Float(i % 1000) / 1000 }  // uniform in [0, 1)
        values[17] = 50  // one huge outlier
        let range = histogram(values).range(.percentile)
        XCTAssertEqual(range.lowerBound, 0)
        XCTAssertLessThan(range.upperBound, 1.1)
        XCTAssertGreaterThan(range.upperBound, 0.95)
    }

    func testMSEAndEntropyClipLongTailsButNotBulk() {
        // Mostly small values with a thin exponential tail: clipping the tail lowers the error overall.
        var state: UInt64 = 1
        let values: [Float] = (0..<200_000).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = Float(state >> 40) / Float(1 << 24)
            return -log(max(1 - u, 1e-7))  // Exp(1): max around 14
        }
        let h = histogram(values)
        let range = h.range(.mse)
        XCTAssertLessThan(range.upperBound, h.upper, "MSE should clip the far tail")
        XCTAssertGreaterThan(range.upperBound, 3, "MSE must keep the bulk")
        XCTAssertLessThanOrEqual(h.quantizationError(range), h.quantizationError(h.range(.minmax)))
    }

    func testEntropyAndPercentileIgnoreAFarOutlier() {
        var values = (0..<50_000).map { Float($0 % 1000) / 1000 }  // bulk in [0, 1)
        values.append(200)  // one value 200× beyond the bulk would leave the bulk ~1 quantisation level
        let h = histogram(values)
        // (MSE rightly keeps it: one value clipped by ~200 costs more than the whole bulk's rounding.)
        for method in [CalibrationMethod.percentile, .entropy] {
            let range = h.range(method)
            XCTAssertLessThan(range.upperBound, 30, "\(method)")
            XCTAssertGreaterThan(range.upperBound, 0.9, "\(method)")
        }
    }

    func testSignedTensorsKeepBothSides() {
        let values: [Float] = (0..<10_000).map { Float($0 % 200) / 100 - 1 }  // [-1, 1)
        for method in CalibrationMethod.allCases {
            let range = histogram(values).range(method)
            XCTAssertLessThan(range.lowerBound, -0.8, "\(method)")
            XCTAssertGreaterThan(range.upperBound, 0.8, "\(method)")
        }
    }
}
