import Foundation
import XCTest
@testable import SoundlocDSOL
@testable import SoundlocEngine
import SoundlocFeatures

/// Swift against the PyTorch twin (Tools/dsol/reference.py): the same model file and inputs,
/// every output within 1e-4 relative error.
final class ReferenceTests: XCTestCase {
    static let tolerance = 1e-4

    /// Compares preprocessing and every model output with `dir/reference.safetensors`.
    func checkAgainstReference(_ dir: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let ref = try SafeTensorsFile(path: dir.appendingPathComponent("reference.safetensors").path)
        let model = try DSOLModel(path: dir.appendingPathComponent("model.safetensors").path, threads: 1)
        let m = model.metadata

        func expected(_ name: String) throws -> [Float] { try ref.floats(name) }
        func check(_ actual: [Float], _ name: String) throws {
            let want = try expected(name)
            // Element-wise, an element's error is relative to its own magnitude but to no less than a
            // tenth of the tensor's largest: deep fp32 features carry rounding relative to the whole
            // tensor (PyTorch's own fp32 forward misses 1e-4 against float64 with a 1% floor).
            let scale = want.map { Double(abs($0)) }.max() ?? 0
            let floor = max(scale * 0.1, 1e-6)
            let c = compare(actual, want, floor: floor)
            print(String(format: "%@: relative error %.2e, element-wise %.2e (floor %.2e)", name, c.relative, c.elementwise, floor))
            assertClose(actual, want, tolerance: Self.tolerance, floor: floor, name, file: file, line: line)
        }

        // Preprocessing of the raw RGB.
        let rgbInfo = try XCTUnwrap(ref.info("in.rgb"))
        XCTAssertEqual(rgbInfo.dtype, .u8)
        let (h, w) = (rgbInfo.shape[0], rgbInfo.shape[1])
        let rgb = Array(ref.bytes(of: rgbInfo))
        let pre = ImagePreprocessor(inputWidth: w, inputHeight: h, outputSize: m.imageSize, mean: m.imageMean, std: m.imageStd)
        try check(pre.process(rgb: rgb), "in.image")

        // The model on the reference's own inputs, so each stage is judged on its own.
        let image = try expected("in.image"), audio = try expected("in.audio")
        let out = model.forward(image: image, audio: audio)
        var fvCHW = [Float](repeating: 0, count: out.fv.count)
        Ops.transpose(out.fv.baseAddress!, rows: out.mapHeight * out.mapWidth, columns: out.featureDim, into: &fvCHW)
        try check(fvCHW, "out.fv")
        try check(Array(out.ga), "out.ga")
        try check(Array(out.l), "out.l")
        try check([out.matchScore], "out.match")
        try check(Array(out.s), "out.s")
        try check(Array(out.classMaps), "out.class_maps")
        try check(Array(out.pA), "out.p_a")
        try check(Array(out.pV), "out.p_v")
        try check(Array(out.audioLogits), "out.audio_logits")
        try check(Array(out.visionLogits), "out.vision_logits")
        XCTAssertEqual(out.classes, m.classes, file: file, line: line)
    }

    func testTinyFixtureMatchesPyTorch() throws {
        try checkAgainstReference(try tinyFixtureDirectory())
    }

    /// The real width (64) against a freshly generated PyTorch reference; needs python3 + torch.
    func testFullSizeModelMatchesPyTorch() throws {
        let dir = try scratchDirectory("full")
        defer { try? FileManager.default.removeItem(at: dir) }
        try runReferenceGenerator(width: 64, classes: 11, seed: 3, out: dir)
        try checkAgainstReference(dir)
    }
}

/// Runs `python3 -m dsol.reference` from the repository's Tools; fails (never skips) without torch.
func runReferenceGenerator(width: Int, classes: Int, seed: Int, out: URL,
                           file: StaticString = #filePath, line: UInt = #line) throws {
    let tools = repositoryRoot().appendingPathComponent("Tools")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-m", "dsol.reference", "--width", "\(width)", "--classes", "\(classes)",
                   "--seed", "\(seed)", "--out", out.path, "--quiet"]
    var env = ProcessInfo.processInfo.environment
    env["PYTHONPATH"] = tools.path + (env["PYTHONPATH"].map { ":" + $0 } ?? "")
    p.environment = env
    p.currentDirectoryURL = tools
    let errPipe = Pipe()
    p.standardError = errPipe
    p.standardOutput = FileHandle.nullDevice
    do { try p.run() } catch {
        XCTFail("cannot run python3 (\(error)); run Tools/setup.sh --train to install Python and PyTorch", file: file, line: line)
        throw error
    }
    let err = String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        let hint = err.contains("No module named") || p.terminationStatus == 127
            ? "python3 or PyTorch is missing: run Tools/setup.sh --train" : "the reference generator failed"
        XCTFail("\(hint)\n\(err.suffix(2000))", file: file, line: line)
        throw FixtureMissing()
    }
}
