import Foundation
import SoundlocEngine

/// Why quantisation could not run.
public enum QuantizeError: Error, CustomStringConvertible, Equatable {
    /// `--model` is not an fp32 file (e.g. already int8).
    case notFP32(path: String, precision: ModelPrecision)
    case noCalibrationData(String)
    /// A calibration input could not be read or decoded.
    case badInput(file: String, reason: String)

    public var description: String {
        switch self {
        case let .notFP32(path, precision):
            return "\(path) is a \(precision) model; quantize needs the fp32 model the trainer exported"
        case let .noCalibrationData(why): return "no usable calibration data: \(why)"
        case let .badInput(file, reason): return "calibration input \(file): \(reason)"
        }
    }
}

/// Post-training static quantisation of a fp32 DSOL file (Models/FORMAT.md, "int8 files"): per-output-channel
/// symmetric int8 weights, per-tensor uint8 activations calibrated on sample inputs in two passes
/// (extremes, then histograms over them), int32 biases; the heads stay fp32. Deterministic for the same inputs.
public enum DSOLQuantizer {
    /// One preprocessed calibration input: CHW image (3 × size²) and time-major log-mel window.
    public typealias Sample = (image: [Float], audio: [Float])

    /// Quantises `modelPath` on `count` samples from `sample(i)` (called twice per index). `calibrationData`
    /// is recorded in the metadata; `progress` gets one line per step.
    public static func quantize(modelPath: String, method: CalibrationMethod, count: Int, calibrationData: String,
                                threads: Int = 1, progress: ((String) -> Void)? = nil,
                                sample: (Int) throws -> Sample) throws -> SafeTensorsWriter {
        let file = try SafeTensorsFile(path: modelPath)
        let meta = try ModelMetadata(file.metadata)
        guard meta.precision == .fp32 else { throw QuantizeError.notFP32(path: modelPath, precision: meta.precision) }
        guard count > 0 else { throw QuantizeError.noCalibrationData("no samples") }
        let model = try DSOLModel(path: modelPath, threads: threads)
        let (vision, audio) = model.fp32Trunks!

        // Pass 1: extremes of every activation; pass 2: histograms over exactly those ranges.
        final class Stats {
            var lower = [String: Float](), upper = [String: Float](), histograms = [String: ActivationHistogram]()
        }
        let stats = Stats()
        func run(_ pass: Int, _ observe: @escaping (String, Tensor) -> Void) throws {
            vision.observer = observe
            audio.observer = observe
            defer { vision.observer = nil; audio.observer = nil }
            for i in 0..<count {
                let s = try sample(i)
                guard s.image.count == model.imageCount, s.audio.count == model.audioCount else {
                    throw QuantizeError.noCalibrationData("sample \(i) has \(s.image.count)/\(s.audio.count) values, expected \(model.imageCount)/\(model.audioCount)")
                }
                s.image.withUnsafeBufferPointer { _ = vision.forward(chw: $0) }
                s.audio.withUnsafeBufferPointer { _ = audio.forward(chw: $0) }
                if (i + 1) % 16 == 0 || i + 1 == count { progress?("calibration pass \(pass)/2: \(i + 1)/\(count) samples") }
            }
        }
        try run(1) { name, t in
            var lo = stats.lower[name] ?? .infinity, hi = stats.upper[name] ?? -.infinity
            for v in t.readOnly { lo = min(lo, v); hi = max(hi, v) }
            stats.lower[name] = lo
            stats.upper[name] = hi
        }
        for (name, lo) in stats.lower { stats.histograms[name] = ActivationHistogram(lower: lo, upper: stats.upper[name]!) }
        try run(2) { name, t in stats.histograms[name]!.add(t.readOnly) }

        var writer = SafeTensorsWriter(metadata: [:])
        var meta32 = file.metadata
        meta32["checksum"] = nil
        meta32["precision"] = ModelPrecision.int8.rawValue
        meta32["calibration_method"] = method.rawValue
        meta32["calibration_data"] = calibrationData
        meta32["fp32_checksum"] = file.metadata["checksum"] ?? ""
        writer.metadata = meta32

        // 4-byte tensors first, then int8 ones, each by name: every F32/I32 tensor stays 4-byte aligned.
        var wide = [(String, () throws -> Void)](), narrow = [(String, () throws -> Void)]()
        for (prefix, cin) in [("vision", 3), ("audio", 1)] {
            let layout = TrunkLayout(prefix: prefix, inChannels: cin, width: meta.width)
            for s in layout.convs {
                let input = layout.calibrationName(s.input), output = layout.calibrationName(s.output)
                guard let inHist = stats.histograms[input], let outHist = stats.histograms[output] else {
                    preconditionFailure("activation \(input) or \(output) was never observed")
                }
                let inQ = ActivationQuantization(range: inHist.range(method))
                let outQ = ActivationQuantization(range: outHist.range(method))
                let minScales = try file.withFloats("\(s.name).bias") {
                    WeightQuantizer.minimumScales(bias: $0, inputScale: inQ.scale)
                }
                let (codes, scales) = try file.withFloats("\(s.name).weight") {
                    WeightQuantizer.quantize(oihw: $0, out: s.outChannels, in: s.inChannels, kh: s.kernel, kw: s.kernel,
                                             minScales: minScales)
                }
                let bias = try file.withFloats("\(s.name).bias") {
                    WeightQuantizer.quantizeBias($0, inputScale: inQ.scale, weightScales: scales)
                }
                let o = s.outChannels
                narrow.append(("\(s.name).weight", { writer.add("\(s.name).weight", shape: [o, s.kernel, s.kernel, s.inChannels], int8s: codes) }))
                wide.append(("\(s.name).weight_scale", { writer.add("\(s.name).weight_scale", shape: [o], floats: scales) }))
                wide.append(("\(s.name).bias", { writer.add("\(s.name).bias", shape: [o], int32s: bias) }))
                wide.append(("\(s.name).input_quant", { writer.add("\(s.name).input_quant", shape: [2], floats: inQ.stored) }))
                wide.append(("\(s.name).output_quant", { writer.add("\(s.name).output_quant", shape: [2], floats: outQ.stored) }))
            }
        }
        for spec in DSOLModel.tensorSpecs(for: meta) where spec.name.hasPrefix("loc.") || spec.name.hasPrefix("cls.") || spec.name.hasPrefix("dsol.") {
            let values = try file.floats(spec.name)
            wide.append((spec.name, { writer.add(spec.name, shape: spec.shape, floats: values) }))
        }
        for (_, add) in wide.sorted(by: { $0.0 < $1.0 }) + narrow.sorted(by: { $0.0 < $1.0 }) { try add() }
        progress?("quantised \(narrow.count) convolutions (\(method.rawValue) activation ranges)")
        return writer
    }
}
