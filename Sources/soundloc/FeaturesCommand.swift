import ArgumentParser
import Foundation
import SoundlocCapture
import SoundlocFeatures
import SoundlocOutput

struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Compute the 201×64 log-mel windows the network hears from a WAV file.",
        discussion: """
            Windows are 1 s long and end every --stride seconds (rounded to the 5 ms hop), computed by the same \
            streaming front end as the live appliance. A clip shorter than 1 s gives one window, zero-padded. \
            --out writes a float32 .npy of shape (windows, 201, 64): time frames × mel bands, in dB.
            """)

    @Argument(help: "A WAV file: 16 kHz, 16-bit PCM or float, mono or multi-channel (downmixed).")
    var input: String

    @Option(help: "Write the windows to this .npy file.")
    var out: String?

    @Option(help: "Write a spectrogram picture (PNG) of the windows (at most --picture-windows of them).")
    var png: String?

    @Option(help: "Seconds between window ends (multiple of 0.005).")
    var stride: Double = 1.0

    @Option(help: "Most windows drawn in the picture.")
    var pictureWindows = 12

    func validate() throws {
        guard stride > 0, stride <= 60 else { throw ValidationError("--stride must be in (0, 60] seconds") }
        guard pictureWindows >= 1 else { throw ValidationError("--picture-windows must be at least 1") }
    }

    func run() throws {
        let file = try WAVFile.read(path: input, requiring: LogMelConfig.dsol.sampleRate)
        let result = try FeatureExtraction.windows(of: file.samples, stride: stride)
        let seconds = Double(file.samples.count) / Double(file.sampleRate)
        say(String(format: "%@: %.2f s, %@, %d channel(s) -> %d window(s) of 201×64, %.1f … %.1f dB",
                     input, seconds, file.encoding, file.channels, result.count,
                     result.values.min() ?? 0, result.values.max() ?? 0))
        if let out {
            try NPY.write(result.values, shape: [result.count, 201, 64], to: out)
            say("wrote \(out)")
        }
        if let png {
            let shown = min(result.count, pictureWindows)
            let picture = SpectrogramPicture.render(
                windows: Array(result.values.prefix(shown * 201 * 64)), count: shown, frames: 201, bands: 64)
            try PNG.writeRGB(picture.pixels, width: picture.width, height: picture.height, to: png)
            say("wrote \(png) (\(picture.width)×\(picture.height), \(shown) window(s))")
        }
    }
}

/// Turns a whole clip into windows through the streaming front end.
enum FeatureExtraction {
    static func windows(of samples: [Float], stride: Double) throws -> (values: [Float], count: Int) {
        let config = LogMelConfig.dsol
        guard samples.count >= config.windowSamples else {
            return (try LogMel(config: config).window(samples), 1)
        }
        let step = max(1, Int((stride * Double(config.sampleRate) / Double(config.hop)).rounded())) * config.hop
        let stream = try StreamingLogMel(config: config, history: 0)
        var values = [Float]()
        var window = [Float](repeating: 0, count: config.windowValueCount)
        var nextEnd = config.windowSamples
        var fed = 0
        while nextEnd <= samples.count {
            samples[fed..<nextEnd].withUnsafeBufferPointer { stream.append($0) }
            fed = nextEnd
            try window.withUnsafeMutableBufferPointer { try stream.window(endingAt: Int64(nextEnd), into: $0) }
            values += window
            nextEnd += step
        }
        return (values, values.count / config.windowValueCount)
    }
}
