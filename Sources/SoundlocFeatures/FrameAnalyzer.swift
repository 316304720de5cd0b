import CFFTW
import Foundation

/// Turns one STFT frame of raw samples into its log-mel column (before the per-window floor).
///
/// The FFT runs in double precision: with a magnitude (not power) spectrum the 80 dB floor spans a
/// factor of 1e8, and single-precision rounding would disturb the quietest bands that the floor keeps.
final class FrameAnalyzer {
    let config: LogMelConfig
    private let filterbank: MelFilterbank
    private let window: UnsafeMutablePointer<Double>
    private let input: UnsafeMutablePointer<Double>
    private let spectrum: UnsafeMutablePointer<fftw_complex>
    private let magnitude: UnsafeMutablePointer<Double>
    private let plan: fftw_plan

    init(config: LogMelConfig) {
        self.config = config
        filterbank = MelFilterbank(config: config)
        let n = config.fftSize
        window = .allocate(capacity: n)
        for i in 0..<n { window[i] = 0.5 - 0.5 * cos(2 * Double.pi * Double(i) / Double(n)) }  // periodic Hann
        input = .allocate(capacity: n)
        input.initialize(repeating: 0, count: n)
        spectrum = .allocate(capacity: config.bins)
        magnitude = .allocate(capacity: config.bins)
        plan = FFTWPlanner.realForward(size: n, input: input, output: spectrum)
    }

    deinit {
        FFTWPlanner.destroy(plan)
        window.deallocate(); input.deallocate(); spectrum.deallocate(); magnitude.deallocate()
    }

    /// Writes the `melBands` log-mel values of the frame `samples[0..<fftSize]` to `output`.
    func analyze(_ samples: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>) {
        for i in 0..<config.fftSize { input[i] = Double(samples[i]) * window[i] }
        fftw_execute(plan)
        for bin in 0..<config.bins {
            let (re, im) = spectrum[bin]
            // librosa stores the spectrum as complex64: keep its rounding so quiet bins agree exactly.
            magnitude[bin] = Double(Float(sqrt(Double(Float(re)) * Double(Float(re)) + Double(Float(im)) * Double(Float(im)))))
        }
        for (band, filter) in filterbank.bands.enumerated() {
            var sum = 0.0
            for (offset, weight) in filter.weights.enumerated() { sum += weight * magnitude[filter.firstBin + offset] }
            output[band] = Float(10 * log10(max(config.amin, Double(Float(sum)))))
        }
    }
}

/// FFTW's planner is not thread-safe; every plan goes through this lock.
enum FFTWPlanner {
    private static let lock = NSLock()

    static func realForward(size: Int, input: UnsafeMutablePointer<Double>, output: UnsafeMutablePointer<fftw_complex>) -> fftw_plan {
        lock.lock(); defer { lock.unlock() }
        // ESTIMATE keeps plans (and so results) identical from run to run.
        guard let plan = fftw_plan_dft_r2c_1d(Int32(size), input, output, UInt32(FFTW_ESTIMATE)) else {
            fatalError("FFTW could not plan a \(size)-point real FFT")
        }
        return plan
    }

    static func destroy(_ plan: fftw_plan) {
        lock.lock(); defer { lock.unlock() }
        fftw_destroy_plan(plan)
    }
}
