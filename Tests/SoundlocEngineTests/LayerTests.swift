import XCTest
@testable import SoundlocEngine

/// Each engine layer against the direct-loop reference on random data.
final class LayerTests: XCTestCase {

    private func checkConv(cin: Int, cout: Int, k: Int, stride: Int, pad: Int, h: Int, w: Int, relu: Bool,
                           accumulate: Bool = false, algorithm: Conv2D.Algorithm? = nil, seed: UInt64,
                           file: StaticString = #filePath, line: UInt = #line) {
        var rng = SeededRandom(seed: seed)
        let x = CHW(c: cin, h: h, w: w, rng.floats(cin * h * w).map(Double.init))
        let weight = rng.floats(cout * cin * k * k, scale: 0.5)
        let bias = rng.floats(cout)
        let conv = Conv2D(weightOIHW: weight, bias: bias, outChannels: cout, inChannels: cin, kernelHeight: k,
                          kernelWidth: k, stride: stride, padding: pad, algorithm: algorithm)
        var expected = naiveConv(x, weight: weight, bias: bias, cout: cout, k: k, stride: stride, pad: pad,
                                 relu: relu && !accumulate)
        let (oh, ow) = conv.outputSize(height: h, width: w)
        XCTAssertEqual(oh, expected.h, file: file, line: line)
        XCTAssertEqual(ow, expected.w, file: file, line: line)
        let input = FloatBuffer(x.hwc)
        let output = FloatBuffer(count: oh * ow * cout)
        var residual: CHW?
        if accumulate {
            let r = CHW(c: cout, h: oh, w: ow, rng.floats(cout * oh * ow).map(Double.init))
            output.pointer.update(from: r.hwc, count: r.v.count)
            residual = r
        }
        let ws = FloatBuffer(count: conv.workspaceCount(height: h, width: w))
        conv(Tensor(data: input.pointer, height: h, width: w, channels: cin),
             into: Tensor(data: output.pointer, height: oh, width: ow, channels: cout),
             workspace: ws.pointer, relu: relu, accumulate: accumulate)
        if let residual { expected = naiveAdd(expected, residual, relu: relu) }
        // Element-wise floor: a tenth of the largest output (rounding is relative to the sums' scale).
        let floor = 0.1 * (expected.v.map { abs($0) }.max() ?? 1)
        assertClose(Array(output.buffer), expected.hwc, tolerance: 1e-5, floor: floor,
                    "conv \(cin)->\(cout) k\(k) s\(stride) p\(pad) \(h)x\(w) \(conv.algorithm)", file: file, line: line)
    }

    func testConvolutionMatchesDirectLoops() {
        // Stem-like 7x7/2/3 on odd sizes (the audio input is 201x64), 3x3 with both strides,
        // 1x1 stride 1 (direct GEMM) and stride 2 (gathered), padding larger than needed.
        checkConv(cin: 3, cout: 5, k: 7, stride: 2, pad: 3, h: 23, w: 17, relu: true, seed: 1)
        checkConv(cin: 1, cout: 4, k: 7, stride: 2, pad: 3, h: 21, w: 8, relu: true, seed: 2)
        checkConv(cin: 6, cout: 7, k: 3, stride: 1, pad: 1, h: 9, w: 11, relu: true, seed: 3)
        checkConv(cin: 6, cout: 8, k: 3, stride: 2, pad: 1, h: 13, w: 4, relu: false, seed: 4)
        checkConv(cin: 8, cout: 5, k: 1, stride: 1, pad: 0, h: 5, w: 7, relu: false, seed: 5)
        checkConv(cin: 8, cout: 16, k: 1, stride: 2, pad: 0, h: 7, w: 5, relu: false, seed: 6)
        checkConv(cin: 2, cout: 3, k: 5, stride: 3, pad: 2, h: 10, w: 10, relu: true, seed: 7)
        checkConv(cin: 4, cout: 4, k: 3, stride: 1, pad: 1, h: 1, w: 1, relu: true, seed: 8)
        checkConv(cin: 4, cout: 6, k: 3, stride: 1, pad: 1, h: 6, w: 5, relu: true, accumulate: true, seed: 9)
        checkConv(cin: 4, cout: 6, k: 3, stride: 1, pad: 1, h: 6, w: 5, relu: false, accumulate: true, seed: 10)
    }

    /// Both algorithms for 3x3/1/1: odd and even sizes (partial edge tiles), channel counts that
    /// exercise the 8-lane bulk, the scalar tail and both, residual accumulation.
    func testWinogradAndIm2colAgreeWithDirectLoops() {
        var seed: UInt64 = 100
        for algorithm in [Conv2D.Algorithm.winograd, .im2col] {
            for (cin, cout, h, w) in [(8, 8, 6, 6), (16, 24, 13, 4), (20, 12, 9, 11), (3, 5, 1, 1), (8, 16, 2, 7), (24, 8, 51, 16)] {
                for (relu, accumulate) in [(true, false), (false, false), (true, true)] {
                    seed += 1
                    checkConv(cin: cin, cout: cout, k: 3, stride: 1, pad: 1, h: h, w: w, relu: relu, accumulate: accumulate,
                              algorithm: algorithm, seed: seed)
                }
            }
        }
        XCTAssertEqual(Conv2D(weightOIHW: [Float](repeating: 0, count: 9), bias: [0], outChannels: 1, inChannels: 1,
                              kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1).algorithm, .winograd)
        XCTAssertEqual(Conv2D(weightOIHW: [Float](repeating: 0, count: 9), bias: [0], outChannels: 1, inChannels: 1,
                              kernelHeight: 3, kernelWidth: 3, stride: 2, padding: 1).algorithm, .im2col)
    }

    /// Every way a layer is cut into pieces (output rows in one phase, or patches then output channels in two; 1×1
    /// reading its input directly; Winograd tiles) gives the whole layer's result, pieces run in any order.
    func testConvPiecesAddUpToTheWholeLayer() {
        // (cin, cout, kernel, stride, padding, h, w, algorithm): few output rows per channel split by channels,
        // many by rows; with 5 pieces a 48-channel layer has too few channels and splits by rows.
        let shapes: [(Int, Int, Int, Int, Int, Int, Int, Conv2D.Algorithm?)] = [
            (8, 40, 3, 1, 1, 9, 7, .winograd), (8, 16, 3, 1, 1, 30, 31, .winograd), (8, 48, 3, 2, 1, 9, 7, .im2col),
            (3, 16, 7, 2, 3, 40, 37, .im2col), (16, 64, 1, 1, 0, 5, 5, nil), (16, 32, 1, 2, 0, 9, 9, nil),
            (12, 48, 3, 1, 1, 13, 4, .im2col),
        ]
        var rng = SeededRandom(seed: 77)
        var sawSplits = Set<Int>()
        for (cin, cout, k, stride, pad, h, w, algorithm) in shapes {
            let conv = Conv2D(weightOIHW: rng.floats(cout * cin * k * k, scale: 0.5), bias: rng.floats(cout), outChannels: cout,
                              inChannels: cin, kernelHeight: k, kernelWidth: k, stride: stride, padding: pad, algorithm: algorithm)
            let (oh, ow) = conv.outputSize(height: h, width: w)
            let input = FloatBuffer(rng.floats(h * w * cin)), residual = rng.floats(oh * ow * cout)
            let x = Tensor(data: input.pointer, height: h, width: w, channels: cin)
            let ws = FloatBuffer(count: conv.workspaceCount(height: h, width: w))
            for accumulate in [false, true] {
                func result(_ fill: (Tensor) -> Void) -> [Float] {
                    let out = FloatBuffer(accumulate ? residual : [Float](repeating: .nan, count: residual.count))
                    fill(Tensor(data: out.pointer, height: oh, width: ow, channels: cout))
                    return Array(out.buffer)
                }
                let whole = result { conv(x, into: $0, workspace: ws.pointer, relu: true, accumulate: accumulate) }
                for parts in [2, 3, 5] {
                    let phases = conv.phaseCount(x, parts: parts)
                    sawSplits.insert(phases)
                    let pieces = result { y in
                        for phase in 0..<phases {
                            for part in (0..<parts).reversed() {
                                conv.run(x, into: y, workspace: ws.pointer, relu: true, accumulate: accumulate, phase: phase, part: part, of: parts)
                            }
                        }
                    }
                    // OpenBLAS's edge kernels sum in another order, so pieces round differently: relative to the scale.
                    assertClose(pieces, whole, tolerance: 1e-5, floor: 0.1 * Double(whole.map(abs).max()!),
                                "conv \(cin)->\(cout) k\(k)/\(stride) \(h)x\(w) \(conv.algorithm) in \(parts) pieces (\(phases) phases)")
                }
            }
        }
        XCTAssertEqual(sawSplits, [1, 2], "both kinds of split exercised")
    }

    /// A trunk split over a pool (2 and 3 threads) computes what it does alone.
    func testTrunkOnAPoolMatchesOneThread() throws {
        var rng = SeededRandom(seed: 78)
        let layout = TrunkLayout(prefix: "t", inChannels: 3, width: 8)
        var tensors = [String: [Float]]()
        for spec in layout.fp32TensorSpecs { tensors[spec.name] = rng.floats(spec.shape.reduce(1, *), scale: 0.3) }
        let trunk = try ResNet18S5(layout, inputHeight: 37, inputWidth: 29, weights: ClosureWeights { tensors[$0]! })
        let image = rng.floats(trunk.input.count)
        func run() -> [Float] { image.withUnsafeBufferPointer { Array(trunk.forward(chw: $0).readOnly) } }
        let alone = run()
        for threads in [2, 3] {
            trunk.setThreads(threads)
            XCTAssertEqual(trunk.threads, threads)
            assertClose(run(), alone, tolerance: 1e-5, floor: 0.1 * Double(alone.map(abs).max()!), "trunk on \(threads) threads")
        }
        XCTAssertEqual(BLASThreads.current, 1, "the pool is the parallelism; OpenBLAS stays single-threaded")
        trunk.setThreads(1)
        XCTAssertEqual(run(), alone)
    }

    func testMaxPoolMatchesPyTorchPadding() {
        var rng = SeededRandom(seed: 11)
        for (h, w) in [(112, 112), (101, 32), (7, 5), (2, 3), (1, 1)] {
            let c = 3
            // All-negative inputs: a zero-padding implementation would wrongly return 0 at borders.
            let x = CHW(c: c, h: h, w: w, rng.floats(c * h * w).map { Double($0) - 2 })
            let expected = naiveMaxPool(x, k: 3, stride: 2, pad: 1)
            let pool = MaxPool2D(kernel: 3, stride: 2, padding: 1)
            let (oh, ow) = pool.outputSize(height: h, width: w)
            XCTAssertEqual(oh, expected.h)
            XCTAssertEqual(ow, expected.w)
            let input = FloatBuffer(x.hwc), output = FloatBuffer(count: oh * ow * c)
            pool(Tensor(data: input.pointer, height: h, width: w, channels: c),
                 into: Tensor(data: output.pointer, height: oh, width: ow, channels: c))
            XCTAssertEqual(Array(output.buffer), expected.hwc, "maxpool \(h)x\(w)")
        }
    }

    func testLinearAndPooling() {
        var rng = SeededRandom(seed: 12)
        let rows = 5, inF = 9, outF = 4
        let w = rng.floats(outF * inF), b = rng.floats(outF), x = rng.floats(rows * inF)
        let linear = Linear(weight: w, bias: b, outFeatures: outF, inFeatures: inF)
        for r in [1, rows] {
            var out = [Float](repeating: 0, count: r * outF)
            linear(x, rows: r, into: &out, relu: true, scale: 0.5)
            var expected = [Float]()
            for row in 0..<r {
                for o in 0..<outF {
                    var s = 0.0
                    for i in 0..<inF { s += Double(w[o * inF + i]) * Double(x[row * inF + i]) }
                    expected.append(Float(max(0.5 * s + Double(b[o]), 0)))
                }
            }
            assertClose(out, expected, tolerance: 1e-6, "linear rows \(r)")
        }

        let t = FloatBuffer(rng.floats(6 * 4 * 3))
        let tensor = Tensor(data: t.pointer, height: 6, width: 4, channels: 3)
        var mx = [Float](repeating: 0, count: 3), avg = [Float](repeating: 0, count: 3)
        Ops.globalMaxPool(tensor, into: &mx)
        Ops.globalAveragePool(tensor, into: &avg)
        for c in 0..<3 {
            let column = (0..<24).map { t.pointer[$0 * 3 + c] }
            XCTAssertEqual(mx[c], column.max()!)
            XCTAssertEqual(Double(avg[c]), column.map(Double.init).reduce(0, +) / 24, accuracy: 1e-6)
        }
    }

    func testElementwiseOps() {
        var v: [Float] = [3, 4, 0, 0, 0, 0]
        Ops.l2Normalize(&v, rows: 2, columns: 3)
        XCTAssertEqual(v, [0.6, 0.8, 0, 0, 0, 0], "F.normalize leaves a zero row at zero")
        var s: [Float] = [0, 2, -1]
        Ops.sigmoid(&s, count: 3, scale: 2)
        XCTAssertEqual(s[0], 0.5)
        XCTAssertEqual(Double(s[1]), 1 / (1 + exp(-4.0)), accuracy: 1e-7)
        XCTAssertEqual(Double(s[2]), 1 / (1 + exp(2.0)), accuracy: 1e-7)
        // Softmax over a strided column with scale, and with huge inputs (no overflow).
        var m: [Float] = [1, 9, 2, 9, 3, 9]
        Ops.softmax(&m, count: 3, stride: 2, scale: 3)
        let e = [1.0, 2, 3].map { exp(3 * $0) }, z = e.reduce(0, +)
        for i in 0..<3 { XCTAssertEqual(Double(m[2 * i]), e[i] / z, accuracy: 1e-7) }
        XCTAssertEqual(m[1], 9)
        var big: [Float] = [1000, 1000]
        Ops.softmax(&big, count: 2)
        XCTAssertEqual(big, [0.5, 0.5])
        var dots = [Float](repeating: 0, count: 2)
        Ops.rowDot([1, 2, 3, 4], rows: 2, columns: 2, vector: [1, -1], into: &dots)
        XCTAssertEqual(dots, [-1, -1])
    }

    /// A whole trunk (narrow, odd input size) against the naive composition.
    func testResNetTrunkMatchesNaiveComposition() throws {
        for (cin, h, w, seed) in [(3, 45, 37, UInt64(13)), (1, 201, 64, UInt64(14))] {
            var rng = SeededRandom(seed: seed)
            let width = 4
            var weights = [String: [Float]]()
            for spec in ResNet18S5.tensorSpecs(prefix: "n", inChannels: cin, width: width) {
                let n = spec.shape.reduce(1, *)
                let fanIn = spec.shape.count == 4 ? spec.shape[1...].reduce(1, *) : 1
                weights[spec.name] = spec.name.hasSuffix(".bias") ? rng.floats(n, scale: 0.1)
                    : rng.floats(n, scale: Float((3.0 / Double(fanIn)).squareRoot()))
            }
            let net = try ResNet18S5(prefix: "n", inChannels: cin, width: width, inputHeight: h, inputWidth: w) {
                try XCTUnwrap(weights[$0], "no weight \($0)")
            }
            let x = CHW(c: cin, h: h, w: w, rng.floats(cin * h * w).map(Double.init))
            let expected = naiveResNet(x, prefix: "n", width: width, weights: weights)
            let out = x.floats.withUnsafeBufferPointer { net.forward(chw: $0) }
            XCTAssertEqual(out.height, expected.h)
            XCTAssertEqual(out.width, expected.w)
            XCTAssertEqual(out.channels, expected.c)
            assertClose(Array(out.readOnly), expected.hwc, tolerance: 1e-4, floor: 0.01, "trunk \(cin)x\(h)x\(w)")
        }
    }

    func testTrunkOutputSizesOfTheRealInputs() throws {
        for (cin, h, w, oh, ow) in [(3, 224, 224, 14, 14), (1, 201, 64, 13, 4)] {
            var weights = [String: [Float]]()
            for spec in ResNet18S5.tensorSpecs(prefix: "n", inChannels: cin, width: 2) {
                weights[spec.name] = [Float](repeating: 0, count: spec.shape.reduce(1, *))
            }
            let net = try ResNet18S5(prefix: "n", inChannels: cin, width: 2, inputHeight: h, inputWidth: w) { weights[$0]! }
            XCTAssertEqual(net.outputShape.height, oh)
            XCTAssertEqual(net.outputShape.width, ow)
            XCTAssertEqual(net.outputShape.channels, 16)
        }
    }
}
