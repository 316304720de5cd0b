import ArgumentParser
import Foundation
import SoundlocCapture
import SoundlocFeatures
import SoundlocOutput

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run soundloc on its built-in example, no camera or microphone needed.",
        discussion: """
            Synthesises a 4-second clip (a plucked melody over a bowed drone, with two drum hits), runs it through \
            the streaming log-mel front end at 25 windows per second, and writes the clip, the windows and a \
            spectrogram picture to --out.
            """)

    @Option(help: "Folder for the demo's outputs (created if missing).")
    var out = "out/demo"

    func run() throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let clip = DemoClip.synthesize(seconds: 4)
        let wavPath = "\(out)/demo.wav"
        do { try Data(WAVFile.encodePCM16(clip, sampleRate: 16000)).write(to: URL(fileURLWithPath: wavPath)) }
        catch { throw ValidationError("cannot write \(wavPath): \(error.localizedDescription)") }
        print("wrote \(wavPath) (4.00 s, 16 kHz mono)")

        let start = monotonicNanos()
        let streamed = try FeatureExtraction.windows(of: clip, stride: 0.04)
        let elapsed = Double(monotonicNanos() - start) / 1e6
        print(String(format: "streamed %d log-mel windows (201×64, one per 40 ms) in %.1f ms", streamed.count, elapsed))
        try NPY.write(streamed.values, shape: [streamed.count, 201, 64], to: "\(out)/windows.npy")
        print("wrote \(out)/windows.npy")

        let perSecond = try FeatureExtraction.windows(of: clip, stride: 1.0)
        let picture = SpectrogramPicture.render(windows: perSecond.values, count: perSecond.count, frames: 201, bands: 64)
        try PNG.writeRGB(picture.pixels, width: picture.width, height: picture.height, to: "\(out)/spectrogram.png")
        print("wrote \(out)/spectrogram.png (\(perSecond.count) consecutive 1-s windows; time →, low frequencies at the bottom)")
    }
}

/// The built-in example sound, generated so the repository ships no audio asset for it.
enum DemoClip {
    static func synthesize(seconds: Int, sampleRate: Int = 16000) -> [Float] {
        let count = seconds * sampleRate
        var clip = [Float](repeating: 0, count: count)
        // Bowed drone: a sawtooth-like sum of harmonics with slow vibrato.
        for i in 0..<count {
            let t = Double(i) / Double(sampleRate)
            let f = 110 * (1 + 0.004 * sin(2 * .pi * 5 * t))
            var sample = 0.0
            for harmonic in 1...12 { sample += sin(2 * .pi * f * Double(harmonic) * t) / Double(harmonic) }
            clip[i] = Float(0.08 * sample)
        }
        // Plucked melody: decaying harmonic notes, eight per second.
        let notes: [Double] = [440, 494, 523, 587, 659, 587, 523, 494]
        for n in 0..<(seconds * 4) {
            let onset = n * sampleRate / 4, f = notes[n % notes.count]
            for i in onset..<min(count, onset + sampleRate / 4) {
                let t = Double(i - onset) / Double(sampleRate)
                let note = (sin(2 * .pi * f * t) + 0.5 * sin(4 * .pi * f * t) + 0.25 * sin(6 * .pi * f * t)) * exp(-9 * t)
                clip[i] += Float(0.25 * note)
            }
        }
        // Two drum hits: shaped noise bursts from a fixed-seed generator.
        var state: UInt32 = 12345
        for onset in [sampleRate, 3 * sampleRate] where onset < count {
            for i in onset..<min(count, onset + sampleRate / 8) {
                state = state &* 1_664_525 &+ 1_013_904_223
                let noise = Double(Int32(bitPattern: state)) / Double(Int32.max)
                clip[i] += Float(0.3 * noise * exp(-30 * Double(i - onset) / Double(sampleRate)))
            }
        }
        return clip.map { max(-1, min(1, $0)) }
    }
}
