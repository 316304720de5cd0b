import Foundation
import XCTest
@testable import SoundlocEngine

/// The int8 convolution against a naive quantised reference written from the kernel header's formula:
/// bit-exact, for every shape the trunks use, with and without ReLU and residual, split in row ranges.
final class Int8ConvTests: XCTestCase {
    struct Case { var h, w, cin, cout, k, stride: Int; var relu: Bool; var residual: Bool }

    func naive(_ x: [UInt8], _ c: Case, codes: [Int8], bias: [Int32], wScale: [Float], inQ: ActivationQuantization,
               outQ: ActivationQuantization, res: [UInt8]?, resQ: ActivationQuantization?) -> [UInt8] {
        let pad = c.k / 2
        let oh = (c.h + 2 * pad - c.k) / c.stride + 1, ow = (c.w + 2 * pad - c.k) / c.stride + 1
        var out = [UInt8](repeating: 0, count: oh * ow * c.cout)
        let lo = Float((c.relu ? outQ.zeroPoint : 0) - outQ.zeroPoint), hi = Float(255 - outQ.zeroPoint)
        for oy in 0..<oh {
            for ox in 0..<ow {
                for n in 0..<c.cout {
                    var acc = Int64(bias[n])
                    for ky in 0..<c.k {
                        for kx in 0..<c.k {
                            let iy = oy * c.stride - pad + ky, ix = ox * c.stride - pad + kx
                            guard iy >= 0, iy < c.h, ix >= 0, ix < c.w else { continue }  // padding reads the zero point
                            for ch in 0..<c.cin {
                                acc += Int64(Int32(x[(iy * c.w + ix) * c.cin + ch]) - inQ.zeroPoint)
                                    * Int64(codes[((n * c.k + ky) * c.k + kx) * c.cin + ch])
                            }
                        }
                    }
                    let m = oy * ow + ox
                    let scale = inQ.scale * wScale[n] / outQ.scale
                    var t = Float(acc) * scale
                    if let res, let resQ {
                        t = fmaf(Float(Int32(res[m * c.cout + n]) - resQ.zeroPoint), resQ.scale / outQ.scale, t)
                    }
                    out[m * c.cout + n] = UInt8(lrintf(min(max(t, lo), hi)) + Int(outQ.zeroPoint))
                }
            }
        }
        return out
    }

    func testMatchesNaiveReferenceBitExactly() throws {
        _ = try Int8Kernels.activate()
        var rng = SeededRandom(seed: 8)
        let cases = [
            Case(h: 19, w: 15, cin: 3, cout: 8, k: 7, stride: 2, relu: true, residual: false),   // stem
            Case(h: 9, w: 7, cin: 16, cout: 24, k: 3, stride: 1, relu: true, residual: true),   // block conv2
            Case(h: 9, w: 7, cin: 16, cout: 32, k: 3, stride: 2, relu: true, residual: false),  // strided conv1
            Case(h: 9, w: 7, cin: 16, cout: 32, k: 1, stride: 2, relu: false, residual: false), // downsample
            Case(h: 5, w: 4, cin: 40, cout: 20, k: 1, stride: 1, relu: false, residual: false), // pointwise (layer4)
        ]
        for c in cases {
            let inQ = ActivationQuantization(scale: 0.05, zeroPoint: c.relu ? 3 : 0)
            let outQ = ActivationQuantization(scale: 0.4, zeroPoint: c.relu ? 0 : 117)
            let resQ: ActivationQuantization? = c.residual ? ActivationQuantization(scale: 0.3, zeroPoint: 9) : nil
            let x = (0..<(c.h * c.w * c.cin)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let codes = (0..<(c.cout * c.k * c.k * c.cin)).map { _ in Int8(Int(rng.next() % 255) - 127) }
            let wScale = (0..<c.cout).map { _ in 0.001 + abs(rng.float()) * 0.01 }
            let bias = (0..<c.cout).map { _ in Int32(rng.float() * 20000) }
            // Both paths of a 3×3 stride-1 layer: the GEMM and the Winograd transform.
            for winograd in c.k == 3 && c.stride == 1 ? [false, true] : [false] {
                let conv = try QuantizedConv2D(weightOHWI: codes, weightScale: wScale, bias: bias, inChannels: c.cin, outChannels: c.cout,
                                               kernel: c.k, stride: c.stride, input: inQ, output: outQ, relu: c.relu, residual: resQ,
                                               winograd: winograd)
                XCTAssertEqual(conv.isWinograd, winograd)
                let (oh, ow) = conv.outputSize(height: c.h, width: c.w)
                let res = c.residual ? (0..<(oh * ow * c.cout)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } : nil
                let expected = naive(x, c, codes: codes, bias: bias, wScale: wScale, inQ: inQ, outQ: outQ, res: res, resQ: resQ)
                let xb = ByteBuffer(count: x.count), yb = ByteBuffer(count: expected.count)
                let ws = ByteBuffer(count: conv.workspaceCount(height: c.h, width: c.w))
                xb.pointer.update(from: x, count: x.count)
                let xt = QTensor(data: xb.pointer, height: c.h, width: c.w, channels: c.cin)
                let yt = QTensor(data: yb.pointer, height: oh, width: ow, channels: c.cout)
                // Three pieces per phase, as three workers would run them.
                let resBuffer = res.map { r -> ByteBuffer in
                    let b = ByteBuffer(count: r.count)
                    b.pointer.update(from: r, count: r.count)
                    return b
                }
                XCTAssertEqual(conv.phaseCount(parts: 3), winograd ? 2 : 1)
                for phase in 0..<conv.phaseCount(parts: 3) {
                    for part in 0..<3 {
                        conv.run(xt, into: yt, residual: resBuffer.map { UnsafePointer($0.pointer) }, workspace: ws.pointer,
                                 phase: phase, part: part, of: 3)
                    }
                }
                let got = Array(UnsafeBufferPointer(start: yb.pointer, count: expected.count))
                let mismatches = zip(got, expected).filter { $0 != $1 }.count
                XCTAssertEqual(mismatches, 0, "\(c) winograd \(winograd) on \(Int8Kernels.activeName): \(mismatches) of \(expected.count) outputs differ")
            }
        }
    }

    func testWeightQuantizerIsSymmetricPerChannel() {
        let w: [Float] = [0.5, -1.0, 0.25, 0.0, /* channel 1 */ 0, 0, 0, 0, /* channel 2 */ 2, 1, -2, 0.01]
        let (codes, scales) = w.withUnsafeBufferPointer { WeightQuantizer.quantize(oihw: $0, out: 3, in: 4, kh: 1, kw: 1) }
        XCTAssertEqual(scales, [1.0 / 127, 1, 2.0 / 127])
        XCTAssertEqual(codes, [64, -127, 32, 0, 0, 0, 0, 0, 127, 64, -127, 1])
        let b: [Float] = [0.1, -3, 1e9]
        let q = b.withUnsafeBufferPointer { WeightQuantizer.quantizeBias($0, inputScale: 0.01, weightScales: [0.01, 0.1, 1]) }
        XCTAssertEqual(q, [1000, -3000, 1 << 30], "clamped to 2^30")
    }

    func testWeightQuantizerKeepsScalesNormalAndBiasesWhole() {
        // channel 0: trained-out weights (m / 127 underflows to 0); channel 1: tiny weights with a real bias
        // Subnormals written by bit pattern (a decimal literal that small draws an underflow warning): 3.9e-44, -1e-40.
        let w: [Float] = [Float(bitPattern: 28), 0, -Float(bitPattern: 71362), 0, /* channel 1 */ 1e-9, -2e-9, 0, 0]
        let (codes0, scales0) = w.withUnsafeBufferPointer { WeightQuantizer.quantize(oihw: $0, out: 2, in: 4, kh: 1, kw: 1) }
        XCTAssertEqual(scales0[0], 1, "no normal scale from the weights: scale 1, codes 0")
        XCTAssertEqual(Array(codes0[0..<4]), [0, 0, 0, 0])
        XCTAssertEqual(scales0[1], 2e-9 / 127, accuracy: 1e-20)
        // without a minimum the bias 0.5 of channel 1 at input scale 0.05 needs 0.5 / (0.05 * 2e-9 / 127) ≈ 6.4e11 units
        let bias: [Float] = [0.25, 0.5]
        let mins = bias.withUnsafeBufferPointer { WeightQuantizer.minimumScales(bias: $0, inputScale: 0.05) }
        let (codes, scales) = w.withUnsafeBufferPointer {
            WeightQuantizer.quantize(oihw: $0, out: 2, in: 4, kh: 1, kw: 1, minScales: mins)
        }
        XCTAssertEqual(scales[1], Float(0.5 / (0.05 * Double(1 << 30))), accuracy: 1e-15)
        XCTAssertEqual(Array(codes[4..<8]), [0, 0, 0, 0], "1e-9 is below half a step of the raised scale")
        let q = bias.withUnsafeBufferPointer { WeightQuantizer.quantizeBias($0, inputScale: 0.05, weightScales: scales) }
        for (n, b) in bias.enumerated() {
            XCTAssertEqual(Double(q[n]) * 0.05 * Double(scales[n]), Double(b), accuracy: 1e-6 * Double(b), "bias \(n) kept")
        }
    }
}
