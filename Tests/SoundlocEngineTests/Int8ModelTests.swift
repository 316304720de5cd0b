import Foundation
import XCTest
@testable import SoundlocDSOL
@testable import SoundlocEngine
import SoundlocFeatures

/// The quantiser and the int8 engine on the tiny fixture (width 8, random weights), calibrated on
/// generated pictures and tone/noise audio, compared with fp32 on held-out inputs.
final class Int8ModelTests: XCTestCase {
    static var fixture: String { (try? tinyFixtureDirectory().appendingPathComponent("model.safetensors").path) ?? "" }

    /// Picture `i`: a colour gradient with seeded noise and a bright square, at a size the preprocessor resamples.
    static func sample(_ i: Int) -> DSOLQuantizer.Sample {
        var rng = SeededRandom(seed: UInt64(100 + i))
        let w = 96 + 16 * (i % 3), h = 72 + 8 * (i % 2)
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                let inSquare = abs(x - w / 2 - i * 3) < w / 6 && abs(y - h / 3) < h / 6
                for c in 0..<3 {
                    let base = Float(x * (c + 1) * 255 / (w * 3) + y * (3 - c) * 255 / (h * 3)) + rng.float() * 30
                    rgb[(y * w + x) * 3 + c] = UInt8(max(0, min(255, inSquare ? 250 : base)))
                }
            }
        }
        let image = ImagePreprocessor(inputWidth: w, inputHeight: h).process(rgb: rgb)
        let f = Float(220 * (i + 1)), amp = Float(0.05 + 0.1 * Float(i % 4))
        let samples = (0..<16000).map { t in amp * sinf(2 * .pi * f * Float(t) / 16000) + 0.02 * rng.float() }
        let audio = try! LogMel().window(samples)
        return (image, audio)
    }

    static let calibrationCount = 6
    static let heldOut = [20, 21, 22, 23]

    static let quantized: Result<[UInt8], Error> = Result {
        try DSOLQuantizer.quantize(modelPath: fixture, method: .percentile, count: calibrationCount,
                                   calibrationData: "generated (\(calibrationCount) pairs)", sample: sample).bytes()
    }

    private var dir: URL!
    override func setUpWithError() throws { dir = try scratchDirectory(name) }
    override func tearDown() { if let dir { try? FileManager.default.removeItem(at: dir) } }

    private func writeInt8() throws -> URL {
        let url = dir.appendingPathComponent("int8.safetensors")
        try Data(try Self.quantized.get()).write(to: url)
        return url
    }

    func testInt8AgreesWithFP32() throws {
        let fp32 = try DSOLModel(path: Self.fixture)
        let int8 = try DSOLModel(path: try writeInt8().path)
        XCTAssertEqual(int8.precision, .int8)
        XCTAssertNotNil(int8.int8Kernel)
        var mapDelta = 0.0, lDelta = 0.0, pADelta = 0.0, n = 0
        var topAudio = 0, topVisual = 0
        for i in Self.heldOut {
            let s = Self.sample(i)
            let a = fp32.forward(image: s.image, audio: s.audio)
            let maps = Array(a.classMaps), l = Array(a.l), pA = Array(a.pA), pV = Array(a.pV)
            let b = int8.forward(image: s.image, audio: s.audio)
            mapDelta += zip(maps, b.classMaps).map { Double(abs($0 - $1)) }.reduce(0, +) / Double(maps.count)
            lDelta += zip(l, b.l).map { Double(abs($0 - $1)) }.reduce(0, +) / Double(l.count)
            pADelta += zip(pA, b.pA).map { Double(abs($0 - $1)) }.max()!
            if pA.indices.max(by: { pA[$0] < pA[$1] }) == b.pA.indices.max(by: { b.pA[$0] < b.pA[$1] }) { topAudio += 1 }
            if pV.indices.max(by: { pV[$0] < pV[$1] }) == b.pV.indices.max(by: { b.pV[$0] < b.pV[$1] }) { topVisual += 1 }
            n += 1
        }
        mapDelta /= Double(n); lDelta /= Double(n); pADelta /= Double(n)
        print(String(format: "int8 vs fp32 on %d held-out inputs (%@ kernels): mean |Δ class maps| %.4f, mean |Δ l| %.4f, "
                     + "mean max |Δ p_a| %.4f, top audio class agrees %d/%d, top visual sounding class agrees %d/%d",
                     n, int8.int8Kernel ?? "?", mapDelta, lDelta, pADelta, topAudio, n, topVisual, n))
        // Random weights make every activation range matter; 8-bit ranges over ~5 % clipping-free spans
        // give per-value errors of a few 1e-3, which the softmax maps keep well under this.
        XCTAssertLessThanOrEqual(mapDelta, 0.05)
        XCTAssertLessThanOrEqual(lDelta, 0.05)
        XCTAssertLessThanOrEqual(pADelta, 0.1)
        XCTAssertGreaterThanOrEqual(topAudio, n - 1)
    }

    func testQuantizingIsDeterministicAndRecordsProvenance() throws {
        let again = try DSOLQuantizer.quantize(modelPath: Self.fixture, method: .percentile, count: Self.calibrationCount,
                                               calibrationData: "generated (\(Self.calibrationCount) pairs)", sample: Self.sample).bytes()
        XCTAssertEqual(again, try Self.quantized.get(), "same inputs, same bytes")
        let file = try SafeTensorsFile(path: try writeInt8().path)
        XCTAssertEqual(file.metadata["precision"], "int8")
        XCTAssertEqual(file.metadata["calibration_method"], "percentile")
        XCTAssertEqual(file.metadata["calibration_data"], "generated (6 pairs)")
        XCTAssertEqual(file.metadata["fp32_checksum"], try SafeTensorsFile(path: Self.fixture).metadata["checksum"])
        XCTAssertNoThrow(try file.verifyChecksum())
        XCTAssertEqual(file.info("vision.layer1.0.conv1.weight")?.dtype, .i8)
        XCTAssertEqual(file.info("vision.layer1.0.conv1.weight")?.shape, [8, 3, 3, 8])
        XCTAssertEqual(file.info("vision.layer1.0.conv1.bias")?.dtype, .i32)
        XCTAssertEqual(file.info("loc.v_fc1.weight")?.dtype, .f32)
    }

    func testInt8ModelIsRejectedAsQuantizerInput() throws {
        let url = try writeInt8()
        XCTAssertThrowsError(try DSOLQuantizer.quantize(modelPath: url.path, method: .minmax, count: 1, calibrationData: "",
                                                        sample: Self.sample)) { e in
            XCTAssertEqual(e as? QuantizeError, .notFP32(path: url.path, precision: .int8))
            XCTAssertTrue("\(e)".contains("int8"))
        }
    }

    private func loadError(_ f: EditableSafeTensors, updateChecksum: Bool = true) throws -> ModelFileError? {
        let url = dir.appendingPathComponent("edited\(UInt32.random(in: 0...UInt32.max)).safetensors")
        try f.write(to: url, updateChecksum: updateChecksum)
        do {
            _ = try DSOLModel(path: url.path)
            XCTFail("defective int8 file loaded")
            return nil
        } catch let e as ModelFileError { return e }
    }

    func testDefectiveInt8FilesAreRejected() throws {
        let pristine = try EditableSafeTensors(bytes: try Self.quantized.get())
        // Checksum.
        var f = pristine
        f.data[f.data.count / 3] ^= 0x10
        guard case .checksumMismatch = try loadError(f, updateChecksum: false) else { return XCTFail("checksum") }
        // Missing quantisation parameters.
        f = pristine
        f.remove("vision.layer2.0.conv1.input_quant")
        XCTAssertEqual(try loadError(f), .missingTensor("vision.layer2.0.conv1.input_quant"))
        f = pristine
        f.remove("audio.layer3.1.conv2.weight_scale")
        XCTAssertEqual(try loadError(f), .missingTensor("audio.layer3.1.conv2.weight_scale"))
        // A consumer's input parameters that disagree with the producer's output.
        f = pristine
        f.setFloat("vision.layer1.1.conv1.input_quant", index: 0, 0.123)
        XCTAssertEqual(try loadError(f)?.tensor, "vision.layer1.1.conv1.input_quant")
        // Zero point out of range.
        f = pristine
        f.setFloat("audio.conv1.input_quant", index: 1, 300)
        XCTAssertEqual(try loadError(f)?.tensor, "audio.conv1.input_quant")
        // Scales that are not normal floats, or that overflow the requantisation multiplier.
        f = pristine
        f.setFloat("vision.layer1.0.conv1.weight_scale", index: 2, Float(bitPattern: 714))  // 1e-42, subnormal
        XCTAssertEqual(try loadError(f)?.tensor, "vision.layer1.0.conv1.weight_scale")
        f = pristine
        f.setFloat("audio.conv1.input_quant", index: 0, Float(bitPattern: 71362))  // 1e-40, subnormal
        XCTAssertEqual(try loadError(f)?.tensor, "audio.conv1.input_quant")
        f = pristine
        f.setFloat("vision.layer2.1.conv2.weight_scale", index: 0, 1e6)
        f.setFloat("vision.layer2.1.conv2.output_quant", index: 0, 1.2e-38)  // input · 1e6 / 1.2e-38 overflows Float
        guard case .malformedEntry("vision.layer2.1.conv2.weight_scale", let why)? = try loadError(f) else { return XCTFail("multiplier") }
        XCTAssertTrue(why.contains("multiplier overflow"), why)
        f = pristine
        f.setFloat("audio.layer1.0.conv2.weight_scale", index: 0, 5e6)
        XCTAssertEqual(try loadError(f), .implausibleValue(tensor: "audio.layer1.0.conv2.weight_scale", index: 0, value: 5e6, limit: 1e6))
        // An fp32 file that claims int8, and an int8 file that claims fp32.
        var g = try EditableSafeTensors(contentsOf: URL(fileURLWithPath: Self.fixture))
        g.metadata["precision"] = "int8"
        guard case .badMetadata("precision", _) = try loadError(g) else { return XCTFail("fp32 data, int8 metadata") }
        f = pristine
        f.metadata["precision"] = "fp32"
        guard case .wrongDType = try loadError(f) else { return XCTFail("int8 data, fp32 metadata") }
    }

    func testInt8ForwardReusesBuffersAndThreadsAgree() throws {
        let model = try DSOLModel(path: try writeInt8().path)
        let vision = try XCTUnwrap(model.vision as? QuantizedResNet18S5), audio = try XCTUnwrap(model.audio as? QuantizedResNet18S5)
        func codes() -> [UInt8] {
            Array(UnsafeBufferPointer(start: vision.output.data, count: vision.output.count))
                + Array(UnsafeBufferPointer(start: audio.output.data, count: audio.output.count))
        }
        let s = Self.sample(30)
        let before = model.bufferAddresses
        let maps1 = Array(model.forward(image: s.image, audio: s.audio).classMaps), codes1 = codes()
        model.setThreads(3)
        let maps3 = Array(model.forward(image: s.image, audio: s.audio).classMaps), codes3 = codes()
        model.setThreads(1)
        // Row splits must give identical codes (the fp32 heads run on the caller's thread either way).
        XCTAssertTrue(codes1 == codes3, "trunk codes differ between 1 and 3 threads")
        XCTAssertLessThanOrEqual(zip(maps1, maps3).map { abs($0 - $1) }.max()!, 1e-5)
        XCTAssertEqual(model.bufferAddresses, before)
    }
}
