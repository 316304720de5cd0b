import Foundation

/// Slaney-scale, area-normalised triangular mel filters over FFT bins, as librosa.filters.mel builds them.
struct MelFilterbank {
    /// For each band, the first bin with a non-zero weight and the weights from there on.
    let bands: [(firstBin: Int, weights: [Double])]

    init(config: LogMelConfig) {
        let edges = (0..<(config.melBands + 2)).map { i -> Double in
            let low = Self.hertzToMel(config.minFrequency), high = Self.hertzToMel(config.maxFrequency)
            return Self.melToHertz(low + (high - low) * Double(i) / Double(config.melBands + 1))
        }
        let binFrequencies = (0..<config.bins).map { Double($0) * Double(config.sampleRate) / Double(config.fftSize) }
        bands = (0..<config.melBands).map { band in
            let lowerWidth = edges[band + 1] - edges[band], upperWidth = edges[band + 2] - edges[band + 1]
            let areaNorm = 2 / (edges[band + 2] - edges[band])
            // librosa keeps weights as float32: round the triangle, then the normalised product, to Float.
            let weights = binFrequencies.map { f -> Double in
                let rising = (f - edges[band]) / lowerWidth, falling = (edges[band + 2] - f) / upperWidth
                let triangle = Double(Float(max(0, min(rising, falling))))
                return Double(Float(triangle * areaNorm))
            }
            guard let first = weights.firstIndex(where: { $0 != 0 }), let last = weights.lastIndex(where: { $0 != 0 }) else {
                return (0, [])  // bands narrower than the bin spacing stay empty, as in librosa
            }
            return (first, Array(weights[first...last]))
        }
    }

    /// Slaney's scale: linear below 1 kHz, logarithmic above.
    static func hertzToMel(_ hz: Double) -> Double {
        let linearStep = 200.0 / 3, breakHz = 1000.0, logStep = log(6.4) / 27
        return hz >= breakHz ? breakHz / linearStep + log(hz / breakHz) / logStep : hz / linearStep
    }

    static func melToHertz(_ mel: Double) -> Double {
        let linearStep = 200.0 / 3, breakHz = 1000.0, logStep = log(6.4) / 27
        let breakMel = breakHz / linearStep
        return mel >= breakMel ? breakHz * exp(logStep * (mel - breakMel)) : mel * linearStep
    }
}
