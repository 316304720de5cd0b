import ArgumentParser
import Foundation
import SoundlocCapture
import SoundlocDSOL
import SoundlocEngine
import SoundlocFeatures
import SoundlocOutput
import SoundlocPipeline

/// `soundloc infer`: one forward pass on a picture and the first second of a WAV file.
struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Run the model once on an image (PNG or PPM) and a WAV file's first second; report which classes sound where.")

    @Option(help: "Model file (.safetensors, fp32 or int8).")
    var model: String

    @Option(help: "Picture: PNG (8-bit, not interlaced) or binary PPM/PGM.")
    var image: String

    @Option(help: "WAV file at the model's sample rate; its first second is used (shorter files are zero-padded).")
    var audio: String

    @Option(help: "Write a PNG of the image with each sounding class's map tinted over it.")
    var overlay: String?

    @Option(name: .customLong("maps-out"), help: "Write a float32 .npy of shape (K+1, H, W): K per-pixel class-probability maps, then the sounding-area map l.")
    var mapsOut: String?

    @Option(help: "Threads each layer is split over.")
    var threads = 1

    @Option(name: .customLong("silence-dbfs"), help: "Audio whose RMS is below this (dBFS) counts as silence: nothing is reported sounding.")
    var silenceDBFS = ApplianceConfig().pipeline.silenceDBFS

    @Option(name: .customLong("min-sounding-peak"), help: "Peak the sounding-area map must reach for anything to be sounding.")
    var minSoundingPeak = ApplianceConfig().pipeline.minSoundingPeak

    func validate() throws {
        try ThreadCount.validate(threads)
    }

    func run() throws {
        let dsol: DSOLModel
        do { dsol = try DSOLModel(path: model, threads: threads) } catch let e as ModelFileError {
            throw ValidationError("\(model): \(e)")
        }
        let meta = dsol.metadata

        let picture: RGBImage
        do { picture = try ImageFile.read(path: image) } catch let e as ImageFileError { throw ValidationError("\(e)") }
        let pre = ImagePreprocessor(inputWidth: picture.width, inputHeight: picture.height, outputSize: meta.imageSize,
                                    mean: meta.imageMean, std: meta.imageStd)
        let input = pre.process(rgb: picture.pixels)

        let wav = try WAVFile.read(path: audio, requiring: meta.audio.sampleRate)
        let logMel: LogMel
        do { logMel = try LogMel(config: try meta.logMelConfig()) } catch {
            throw ValidationError("\(model) was trained on audio features \(meta.audio), which this build's log-mel front end does not compute")
        }
        let window = Array(wav.samples.prefix(logMel.config.windowSamples))
        let rms = (window.reduce(0) { $0 + Double($1) * Double($1) } / Double(logMel.config.windowSamples)).squareRoot()
        let dbfs = 20 * log10(max(rms, 1e-10))
        let features = logMel.window(window)

        let out = dsol.forward(image: input, audio: features)
        var interpreter = SoundingInterpreter(minSoundingPeak: minSoundingPeak)
        interpreter.minSoundingPeak = minSoundingPeak
        let result = interpreter.interpret(classes: out.classes, height: out.mapHeight, width: out.mapWidth, s: out.s, l: out.l,
                                           classMaps: out.classMaps, audioProbabilities: out.pA, silence: dbfs < silenceDBFS)

        say("model: \(model) (width \(meta.width), \(meta.numClasses) classes, \(meta.precision))")
        say("image: \(image) (\(picture.width)x\(picture.height))")
        say(String(format: "audio: %@ (%d Hz, %.2f s used of %.2f s, RMS %.1f dBFS%@)", audio, wav.sampleRate,
                     Double(window.count) / Double(wav.sampleRate), Double(wav.samples.count) / Double(wav.sampleRate), dbfs,
                     result.silence ? ", silence" : ""))
        say(String(format: "match score (peak of sounding-area map l): %.3f", out.matchScore))
        Self.printDistribution("audio class distribution p_a", out.classes, out.pA)
        Self.printDistribution("visual sounding distribution p_v", out.classes, out.pV)
        if result.sounding.isEmpty {
            say("sounding: none" + (result.silence ? " (silence)" : result.soundingAreaPeak < minSoundingPeak ? " (sounding-area peak below \(minSoundingPeak))" : ""))
        } else {
            say("sounding (score, peak x y, box x y w h in normalised image coordinates):")
            for o in result.sounding {
                say(String(format: "  %@ score %.3f  peak %.3f %.3f  box %.3f %.3f %.3f %.3f",
                             o.className.padding(toLength: 16, withPad: " ", startingAt: 0), o.score, o.peak.x, o.peak.y,
                             o.box.x, o.box.y, o.box.width, o.box.height))
            }
        }
        if !result.silentVisible.isEmpty { say("visible but silent: \(result.silentVisible.joined(separator: ", "))") }

        if let mapsOut {
            let values = Array(out.classMaps) + Array(out.l)
            try NPY.write(values, shape: [out.numClasses + 1, out.mapHeight, out.mapWidth], to: mapsOut)
            say("wrote \(mapsOut) (\(out.numClasses) class maps, then l; \(out.numClasses + 1)x\(out.mapHeight)x\(out.mapWidth) float32)")
        }
        if let overlay {
            let (pixels, legend) = Self.overlay(picture, out, sounding: result.sounding)
            try PNG.writeRGB(pixels, width: picture.width, height: picture.height, to: overlay)
            say("wrote \(overlay) (\(legend))")
        }
    }

    static func printDistribution(_ title: String, _ classes: [String], _ p: UnsafeBufferPointer<Float>) {
        say("\(title):")
        for k in (0..<classes.count).sorted(by: { p[$0] > p[$1] }) {
            let bar = String(repeating: "#", count: p[k].isNaN ? 0 : Int(max(0, min(40, (p[k] * 40).rounded()))))
            say(String(format: "  %@ %.3f %@", classes[k].padding(toLength: 16, withPad: " ", startingAt: 0), p[k], bar))
        }
    }

    static let palette: [(Float, Float, Float)] = [
        (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (145, 30, 180),
        (70, 240, 240), (245, 130, 48), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
    ]

    /// Tints each sounding class's evidence (class map × l, bilinearly upsampled, scaled to its peak)
    /// in its own colour and outlines its box; with nothing sounding, shows l as a heat map.
    static func overlay(_ picture: RGBImage, _ out: DSOLOutput, sounding: [SoundingObject]) -> ([UInt8], String) {
        var pixels = picture.pixels.map(Float.init)
        let (w, h) = (picture.width, picture.height)
        let (mh, mw) = (out.mapHeight, out.mapWidth)
        func upsampled(_ map: [Float]) -> [Float] {
            // align_corners=False bilinear, the metric code's upsampling.
            var result = [Float](repeating: 0, count: w * h)
            for y in 0..<h {
                let sy = max(0, min(Float(mh - 1), (Float(y) + 0.5) * Float(mh) / Float(h) - 0.5))
                let y0 = Int(sy), y1 = min(y0 + 1, mh - 1), fy = sy - Float(y0)
                for x in 0..<w {
                    let sx = max(0, min(Float(mw - 1), (Float(x) + 0.5) * Float(mw) / Float(w) - 0.5))
                    let x0 = Int(sx), x1 = min(x0 + 1, mw - 1), fx = sx - Float(x0)
                    let top = map[y0 * mw + x0] * (1 - fx) + map[y0 * mw + x1] * fx
                    let bottom = map[y1 * mw + x0] * (1 - fx) + map[y1 * mw + x1] * fx
                    result[y * w + x] = top * (1 - fy) + bottom * fy
                }
            }
            return result
        }
        var legend = [String]()
        if sounding.isEmpty {
            let l = upsampled(Array(out.l))
            for i in 0..<(w * h) {
                let (r, g, b) = Colormap.heat(l[i])
                let a: Float = 0.5
                pixels[i * 3] = pixels[i * 3] * (1 - a) + Float(r) * a
                pixels[i * 3 + 1] = pixels[i * 3 + 1] * (1 - a) + Float(g) * a
                pixels[i * 3 + 2] = pixels[i * 3 + 2] * (1 - a) + Float(b) * a
            }
            legend.append("nothing sounding: heat map of l")
        }
        for (n, object) in sounding.enumerated() {
            let color = palette[n % palette.count]
            let classMap = out.classMap(object.classIndex)
            var evidence = (0..<(mh * mw)).map { classMap[$0] * out.l[$0] }
            let peak = max(evidence.max() ?? 0, 1e-6)
            evidence = evidence.map { $0 / peak }
            let alpha = upsampled(evidence)
            for i in 0..<(w * h) {
                let a = 0.65 * max(0, min(1, alpha[i]))
                pixels[i * 3] = pixels[i * 3] * (1 - a) + color.0 * a
                pixels[i * 3 + 1] = pixels[i * 3 + 1] * (1 - a) + color.1 * a
                pixels[i * 3 + 2] = pixels[i * 3 + 2] * (1 - a) + color.2 * a
            }
            // Box outline, two pixels wide.
            let x0 = Int(object.box.x * Double(w)), y0 = Int(object.box.y * Double(h))
            let x1 = min(w - 1, Int((object.box.x + object.box.width) * Double(w)) - 1)
            let y1 = min(h - 1, Int((object.box.y + object.box.height) * Double(h)) - 1)
            if x1 > x0 && y1 > y0 {
                for y in y0...y1 {
                    for x in x0...x1 where x - x0 < 2 || x1 - x < 2 || y - y0 < 2 || y1 - y < 2 {
                        pixels[(y * w + x) * 3] = color.0
                        pixels[(y * w + x) * 3 + 1] = color.1
                        pixels[(y * w + x) * 3 + 2] = color.2
                    }
                }
            }
            legend.append("\(object.className) = rgb(\(Int(color.0)),\(Int(color.1)),\(Int(color.2)))")
        }
        return (pixels.map { UInt8(max(0, min(255, $0.rounded()))) }, legend.joined(separator: ", "))
    }
}
