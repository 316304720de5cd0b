import XCTest
@testable import SoundlocEngine

/// The trunk described once (`TrunkLayout`): what ResNet-18-S5 derives from it, the buffer plan, and a variant
/// network that needed nothing but a different layout to run in both precisions.
final class TrunkLayoutTests: XCTestCase {
    func testResNet18S5Layout() {
        let net = TrunkLayout(prefix: "v", inChannels: 3, width: 8)
        // 1 stem + 8 blocks × 2 + 3 projections (layers 2-4 change the channel count).
        XCTAssertEqual(net.convs.count, 20)
        XCTAssertEqual(net.fp32TensorSpecs.count, 40)
        XCTAssertEqual(net.int8TensorSpecs.count, 100)
        XCTAssertEqual(net.fp32TensorSpecs.first, TensorSpec("v.conv1.weight", [8, 3, 7, 7]))
        XCTAssertTrue(net.fp32TensorSpecs.contains(TensorSpec("v.layer2.0.downsample.weight", [16, 8, 1, 1])))
        XCTAssertFalse(net.fp32TensorSpecs.contains { $0.name.hasPrefix("v.layer1.0.downsample") })
        XCTAssertTrue(net.int8TensorSpecs.contains(TensorSpec("v.layer4.1.conv2.weight", [64, 3, 3, 64], dtype: .i8)))
        XCTAssertEqual(net.output, "v.layer4.1.conv2")
        // Calibration: the stem is quantised as the max pool's output, which it feeds; shortcuts as produced.
        XCTAssertEqual(net.calibrationName("v.conv1"), "v.maxpool")
        XCTAssertEqual(net.calibrationName("v.maxpool"), "v.maxpool")
        XCTAssertEqual(net.calibrationName("v.input"), "v.input")
        let convs = Dictionary(uniqueKeysWithValues: net.convs.map { ($0.name, $0) })
        XCTAssertEqual(convs["v.layer1.0.conv1"]?.input, "v.maxpool")
        XCTAssertEqual(convs["v.layer1.0.conv2"]?.residual, "v.maxpool")
        XCTAssertEqual(convs["v.layer2.0.conv2"]?.residual, "v.layer2.0.downsample")
        XCTAssertEqual(convs["v.layer2.0.conv1"]?.stride, 2)
        XCTAssertEqual(convs["v.layer4.0.conv1"]?.stride, 1)
        XCTAssertEqual(convs["v.layer2.0.downsample"]?.relu, false)
    }

    /// Replays a plan: every read finds the activation it wants in its slot, and no op writes over its own input.
    private func checkPlan(_ net: TrunkLayout, h: Int, w: Int, inPlace: Bool, file: StaticString = #filePath, line: UInt = #line) -> Int {
        let plan = TrunkLayout.BufferPlan(net, inputHeight: h, inputWidth: w, residualInPlace: inPlace)
        var holds = [Int: String]()
        for op in net.ops {
            var reads = [op.input]
            if case .conv(let c) = op, let r = c.residual { reads.append(r) }
            for r in reads where r != net.input {
                XCTAssertEqual(holds[plan.slots[r]!], r, "\(op.output) reads \(r), overwritten", file: file, line: line)
            }
            let slot = plan.slots[op.output]!
            XCTAssertNotEqual(plan.slots[op.input], slot, "\(op.output) writes over its input", file: file, line: line)
            XCTAssertGreaterThanOrEqual(plan.slotSizes[slot], plan.shapes[op.output]!.count, file: file, line: line)
            holds[slot] = op.output
        }
        return plan.slotSizes.count
    }

    func testBufferPlansKeepEveryActivationUntilItsLastRead() {
        let resnet = TrunkLayout(prefix: "v", inChannels: 3, width: 8)
        let variant = TrunkLayout(prefix: "v", inChannels: 3, width: 6, blocks: [1, 3, 2, 2])
        for net in [resnet, variant] {
            // Block input, middle and projection are all a block ever needs at once (plus the int8 output).
            XCTAssertEqual(checkPlan(net, h: 224, w: 224, inPlace: true), 3)
            XCTAssertLessThanOrEqual(checkPlan(net, h: 201, w: 64, inPlace: false), 4)
        }
    }

    /// A wider-by-odd-width net with an extra block in stage 2, from nothing but its layout: fp32 against the
    /// naive reference, then quantised from its own calibration and run in int8 against fp32.
    func testVariantRunsInBothPrecisions() throws {
        let layout = TrunkLayout(prefix: "x", inChannels: 3, width: 6, blocks: [2, 3, 2, 2])
        let specs = layout.fp32TensorSpecs
        XCTAssertEqual(specs.count, 44)
        XCTAssertTrue(specs.contains(TensorSpec("x.layer2.2.conv1.weight", [12, 12, 3, 3])))
        XCTAssertFalse(specs.contains { $0.name.hasPrefix("x.layer2.2.downsample") })

        var rng = SeededRandom(seed: 21)
        var weights = [String: [Float]]()
        for spec in specs {
            let n = spec.shape.reduce(1, *), fanIn = spec.shape.count == 4 ? spec.shape[1...].reduce(1, *) : 1
            weights[spec.name] = spec.name.hasSuffix(".bias") ? rng.floats(n, scale: 0.1)
                : rng.floats(n, scale: Float((3.0 / Double(fanIn)).squareRoot()))
        }
        let (h, w) = (40, 36)
        let fp32 = try ResNet18S5(layout, inputHeight: h, inputWidth: w, weights: ArrayWeights(weights))
        // 40x36 -> conv1/2 20x18 -> pool 10x9 -> layer1 10x9 -> layer2/2 5x5 -> layer3/2 3x3 -> layer4 3x3, 8·6 channels.
        XCTAssertTrue(fp32.outputShape == (3, 3, 48), "\(fp32.outputShape)")
        let inputs = (0..<5).map { _ in rng.floats(3 * h * w) }
        let x = CHW(c: 3, h: h, w: w, inputs[4].map(Double.init))
        let expected = naiveResNet(x, prefix: "x", width: 6, blocks: [2, 3, 2, 2], weights: weights)
        let f = Array(inputs[4].withUnsafeBufferPointer { fp32.forward(chw: $0) }.readOnly)
        assertClose(f, expected.hwc, tolerance: 1e-4, floor: 0.01, "fp32 variant")

        // Calibrate min/max on four inputs, quantise as the quantiser does, and hold out the fifth.
        var ranges = [String: ClosedRange<Float>]()
        fp32.observer = { name, t in
            let lo = t.readOnly.min()!, hi = t.readOnly.max()!
            ranges[name] = ranges[name].map { min($0.lowerBound, lo)...max($0.upperBound, hi) } ?? lo...hi
        }
        for x in inputs[..<4] { x.withUnsafeBufferPointer { _ = fp32.forward(chw: $0) } }
        fp32.observer = nil
        var q = ArrayQuantizedWeights(floats: [:], i8: [:], i32: [:])
        for c in layout.convs {
            let inQ = ActivationQuantization(range: ranges[layout.calibrationName(c.input)]!)
            let outQ = ActivationQuantization(range: ranges[layout.calibrationName(c.output)]!)
            let bias = weights["\(c.name).bias"]!
            let minScales = bias.withUnsafeBufferPointer { WeightQuantizer.minimumScales(bias: $0, inputScale: inQ.scale) }
            let (codes, scales) = weights["\(c.name).weight"]!.withUnsafeBufferPointer {
                WeightQuantizer.quantize(oihw: $0, out: c.outChannels, in: c.inChannels, kh: c.kernel, kw: c.kernel, minScales: minScales)
            }
            q.i8["\(c.name).weight"] = codes
            q.floats["\(c.name).weight_scale"] = scales
            q.i32["\(c.name).bias"] = bias.withUnsafeBufferPointer { WeightQuantizer.quantizeBias($0, inputScale: inQ.scale, weightScales: scales) }
            q.floats["\(c.name).input_quant"] = inQ.stored
            q.floats["\(c.name).output_quant"] = outQ.stored
        }
        // What was made is exactly what the derived int8 specs list.
        var made = q.floats.mapValues(\.count)
        for (name, v) in q.i8 { made[name] = v.count }
        for (name, v) in q.i32 { made[name] = v.count }
        XCTAssertEqual(Set(made.keys), Set(layout.int8TensorSpecs.map(\.name)))
        for spec in layout.int8TensorSpecs { XCTAssertEqual(made[spec.name], spec.shape.reduce(1, *), spec.name) }

        _ = try Int8Kernels.activate()
        let int8 = try QuantizedResNet18S5(layout, inputHeight: h, inputWidth: w, weights: q, threads: 2)
        XCTAssertTrue(int8.outputShape == fp32.outputShape, "\(int8.outputShape)")
        inputs[4].withUnsafeBufferPointer { _ = int8.forward(chw: $0) }
        var d = [Float](repeating: 0, count: f.count)
        int8.dequantizeOutput(into: &d)
        let err = zip(d, f).map { Double(($0 - $1) * ($0 - $1)) }.reduce(0, +).squareRoot()
        let norm = f.map { Double($0 * $0) }.reduce(0, +).squareRoot()
        print(String(format: "variant int8 vs fp32 on a held-out input: relative L2 error %.4f", err / norm))
        XCTAssertGreaterThan(norm, 0)
        XCTAssertLessThan(err / norm, 0.06)  // measured 0.025
    }
}
