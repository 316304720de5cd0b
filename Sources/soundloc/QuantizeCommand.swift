import ArgumentParser
import Foundation
import SoundlocCapture
import SoundlocDSOL
import SoundlocEngine
import SoundlocEval
import SoundlocFeatures

/// `soundloc quantize`: post-training int8 quantisation of a fp32 model on calibration inputs.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantise a fp32 model to int8 (per-channel weights, calibrated per-tensor activations).",
        discussion: """
            --calibration is a data set's manifest.json (or its folder), whose scenes give image + audio pairs, or a \
            folder of images (PNG/PPM) and 16 kHz WAV files: paired in sorted order when their counts match, else \
            every image with every WAV. Each WAV contributes its first second (a manifest's scene, its own window). \
            Inputs are preprocessed exactly as at run time.
            """)

    @Option(help: "fp32 model file (.safetensors) from the trainer.")
    var model: String

    @Option(help: "Calibration data: manifest.json, a data-set folder holding one, or a folder of images and WAVs.")
    var calibration: String

    @Option(help: "Output int8 model file.")
    var out: String

    @Option(help: "Activation range method: percentile, mse, entropy or minmax.")
    var method = "percentile"

    @Option(help: "Use at most this many calibration pairs, spread evenly over the available ones.")
    var limit = 64

    @Option(help: "Threads each layer of the fp32 calibration passes is split over.")
    var threads = 1

    func validate() throws {
        guard CalibrationMethod(rawValue: method) != nil else {
            throw ValidationError("--method must be one of \(CalibrationMethod.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
        try ThreadCount.validate(threads)
        guard URL(fileURLWithPath: out).standardized.path != URL(fileURLWithPath: model).standardized.path else {
            throw ValidationError("--out must differ from --model")
        }
    }

    /// One calibration pair: picture, WAV, and where its second starts.
    struct Pair { var image: String, audio: String, start: Double }

    static func pairs(_ path: String) throws -> (pairs: [Pair], kind: String) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw QuantizeError.noCalibrationData("\(path) does not exist")
        }
        let manifestPath = isDirectory.boolValue ? (path as NSString).appendingPathComponent("manifest.json") : path
        if !isDirectory.boolValue || FileManager.default.fileExists(atPath: manifestPath) {
            let manifest: Manifest
            do { manifest = try Manifest.load(path: manifestPath) } catch { throw QuantizeError.noCalibrationData("\(error)") }
            guard !manifest.scenes.isEmpty else { throw QuantizeError.noCalibrationData("\(manifestPath) lists no scenes") }
            return (manifest.scenes.map { s in
                // A centred window needs the duration; the start is resolved when the WAV is read (negative marks centred).
                switch s.audioWindow {
                case .start(let t): return Pair(image: s.image, audio: s.audio, start: t)
                case .centred(let t): return Pair(image: s.image, audio: s.audio, start: -1 - t)
                }
            }, "manifest")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        func files(_ exts: Set<String>) -> [String] {
            names.filter { exts.contains(($0 as NSString).pathExtension.lowercased()) }.map { (path as NSString).appendingPathComponent($0) }
        }
        let images = files(["png", "ppm", "pgm"]), wavs = files(["wav"])
        guard !images.isEmpty else { throw QuantizeError.noCalibrationData("\(path) holds no images (.png, .ppm)") }
        guard !wavs.isEmpty else { throw QuantizeError.noCalibrationData("\(path) holds no WAV files") }
        if images.count == wavs.count {
            return (zip(images, wavs).map { Pair(image: $0, audio: $1, start: 0) }, "folder, paired")
        }
        // Every image × every WAV, ordered so that any prefix spreads over both lists.
        let n = images.count * wavs.count
        return ((0..<n).map { j in
            let i = j % images.count
            return Pair(image: images[i], audio: wavs[(i + j / images.count) % wavs.count], start: 0)
        }, "folder, all pairs")
    }

    func run() throws {
        let calibrationMethod = CalibrationMethod(rawValue: method)!
        let all: [Pair], kind: String
        do { (all, kind) = try Self.pairs(calibration) } catch let e as QuantizeError { throw ValidationError("\(e)") }
        let count = min(limit, all.count)
        let chosen = (0..<count).map { all[$0 * all.count / count] }

        let file: SafeTensorsFile
        let meta: ModelMetadata
        do {
            file = try SafeTensorsFile(path: model)
            meta = try ModelMetadata(file.metadata)
        } catch let e as ModelFileError { throw ValidationError("\(model): \(e)") }
        guard meta.precision == .fp32 else { throw ValidationError("\(QuantizeError.notFP32(path: model, precision: meta.precision))") }
        let logMel: LogMel
        do { logMel = try LogMel(config: try meta.logMelConfig()) } catch {
            throw ValidationError("\(model) was trained on audio features \(meta.audio), which this build's log-mel front end does not compute")
        }
        var preprocessors = [String: ImagePreprocessor]()

        func sample(_ i: Int) throws -> DSOLQuantizer.Sample {
            let p = chosen[i]
            let picture: RGBImage
            do { picture = try ImageFile.read(path: p.image) } catch { throw QuantizeError.badInput(file: p.image, reason: "\(error)") }
            let key = "\(picture.width)x\(picture.height)"
            let pre = preprocessors[key] ?? ImagePreprocessor(inputWidth: picture.width, inputHeight: picture.height,
                                                              outputSize: meta.imageSize, mean: meta.imageMean, std: meta.imageStd)
            preprocessors[key] = pre
            let wav: WAVFile
            do { wav = try WAVFile.read(path: p.audio, requiring: meta.audio.sampleRate) } catch {
                throw QuantizeError.badInput(file: p.audio, reason: "\(error)")
            }
            let duration = Double(wav.samples.count) / Double(wav.sampleRate)
            let startSeconds = p.start >= 0 ? p.start : AudioWindow.centred(-1 - p.start).startSeconds(duration: duration)
            let first = min(wav.samples.count, Int((startSeconds * Double(wav.sampleRate)).rounded()))
            return (pre.process(rgb: picture.pixels), logMel.window(Array(wav.samples[first...])))
        }

        let start = Date()
        sayToStandardError("quantize: \(count) of \(all.count) calibration pairs (\(kind)), method \(method)")
        let writer: SafeTensorsWriter
        do {
            writer = try DSOLQuantizer.quantize(
                modelPath: model, method: calibrationMethod, count: count,
                calibrationData: "\(URL(fileURLWithPath: calibration).standardized.path) (\(count) pairs)", threads: threads,
                progress: { sayToStandardError("quantize: \($0)") }, sample: sample)
        } catch let e as QuantizeError {
            throw ValidationError("\(e)")
        } catch let e as ModelFileError {
            throw ValidationError("\(model): \(e)")
        }
        try writer.write(to: out)
        let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
        say(String(format: "wrote %@ (%.2f MiB, int8, checksum sha256:%@) in %.1f s", out, Double(size) / 1048576,
                     writer.checksum, Date().timeIntervalSince(start)))
    }
}
