/// Perceptually ordered dark-to-bright colour ramp (black, purple, red, orange, pale yellow) for heat pictures.
public enum Colormap {
    private static let stops: [(Float, Float, Float)] = [
        (0.00, 0.00, 0.02), (0.23, 0.06, 0.44), (0.55, 0.13, 0.51),
        (0.85, 0.26, 0.38), (0.99, 0.56, 0.30), (0.99, 0.99, 0.75),
    ]

    /// The colour of `value` in [0, 1] (clamped) as RGB bytes.
    public static func heat(_ value: Float) -> (UInt8, UInt8, UInt8) {
        let x = max(0, min(1, value.isNaN ? 0 : value)) * Float(stops.count - 1)
        let index = min(Int(x), stops.count - 2)
        let t = x - Float(index)
        let (a, b) = (stops[index], stops[index + 1])
        func mix(_ p: Float, _ q: Float) -> UInt8 { UInt8((p + (q - p) * t) * 255 + 0.5) }
        return (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// Renders log-mel windows side by side as a picture: time to the right, low frequencies at the bottom.
public enum SpectrogramPicture {
    /// `windows` holds `count` windows of `frames` × `bands` values (time-major); each cell becomes
    /// `scale` × `scale` pixels, windows are separated by a white rule. Colours span each window's own range.
    public static func render(windows: [Float], count: Int, frames: Int, bands: Int, scale: Int = 2)
        -> (pixels: [UInt8], width: Int, height: Int)
    {
        let gap = count > 1 ? 2 : 0
        let width = count * frames * scale + (count - 1) * gap, height = bands * scale
        var pixels = [UInt8](repeating: 255, count: width * height * 3)
        for w in 0..<count {
            let window = windows[(w * frames * bands)..<((w + 1) * frames * bands)]
            let low = window.min() ?? 0, high = window.max() ?? 1
            let span = high > low ? high - low : 1
            let left = w * (frames * scale + gap)
            for frame in 0..<frames {
                for band in 0..<bands {
                    let (r, g, b) = Colormap.heat((window[window.startIndex + frame * bands + band] - low) / span)
                    for dy in 0..<scale {
                        let y = (bands - 1 - band) * scale + dy
                        for dx in 0..<scale {
                            let p = (y * width + left + frame * scale + dx) * 3
                            pixels[p] = r; pixels[p + 1] = g; pixels[p + 2] = b
                        }
                    }
                }
            }
        }
        return (pixels, width, height)
    }
}
