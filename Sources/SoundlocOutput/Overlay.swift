/// An RGB picture (row-major, 3 bytes per pixel) with the drawing operations the result pictures need:
/// pasting, heat-map overlays of the model's 14×14 maps, frames and 5×7 capital-letter labels.
public struct RGBCanvas {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (255, 255, 255)) {
        precondition(width > 0 && height > 0, "empty canvas")
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        for p in 0..<(width * height) { (pixels[3 * p], pixels[3 * p + 1], pixels[3 * p + 2]) = fill }
    }

    public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        get { let p = 3 * (y * width + x); return (pixels[p], pixels[p + 1], pixels[p + 2]) }
        set { let p = 3 * (y * width + x); (pixels[p], pixels[p + 1], pixels[p + 2]) = newValue }
    }

    /// Draws `image` (RGB, `imageWidth`×`imageHeight`) scaled to `side`×`side` at (x, y), dimmed by `dim`
    /// (1 = unchanged), with `map` (mapSide×mapSide values in [0, 1], bilinear-upsampled) blended on top
    /// in the heat colours: opacity grows with the value, so low values leave the picture visible.
    public mutating func drawTile(image: [UInt8], imageWidth: Int, imageHeight: Int, at x: Int, _ y: Int, side: Int,
                                  map: [Float]? = nil, mapSide: Int = 14, dim: Float = 1) {
        precondition(image.count == imageWidth * imageHeight * 3, "image size")
        if let map { precondition(map.count == mapSide * mapSide, "map size") }
        for ty in 0..<side where y + ty >= 0 && y + ty < height {
            for tx in 0..<side where x + tx >= 0 && x + tx < width {
                // Nearest source pixel (pictures here are thumbnails; the maps are interpolated).
                let sx = min(imageWidth - 1, tx * imageWidth / side), sy = min(imageHeight - 1, ty * imageHeight / side)
                let s = 3 * (sy * imageWidth + sx)
                var rgb = (Float(image[s]) * dim, Float(image[s + 1]) * dim, Float(image[s + 2]) * dim)
                if let map {
                    let v = RGBCanvas.bilinear(map, side: mapSide, u: (Float(tx) + 0.5) / Float(side),
                                               v: (Float(ty) + 0.5) / Float(side))
                    let (r, g, b) = Colormap.heat(v)
                    let alpha = 0.15 + 0.8 * max(0, min(1, v))
                    rgb = (rgb.0 * (1 - alpha) + Float(r) * alpha, rgb.1 * (1 - alpha) + Float(g) * alpha,
                           rgb.2 * (1 - alpha) + Float(b) * alpha)
                }
                self[x + tx, y + ty] = (UInt8(min(255, rgb.0 + 0.5)), UInt8(min(255, rgb.1 + 0.5)), UInt8(min(255, rgb.2 + 0.5)))
            }
        }
    }

    /// A one-pixel rectangle outline; (x, y, w, h) in pixels, clipped to the canvas.
    public mutating func drawRectangle(x: Int, y: Int, width w: Int, height h: Int, color: (UInt8, UInt8, UInt8)) {
        for i in x..<(x + w) {
            for j in [y, y + h - 1] where i >= 0 && i < width && j >= 0 && j < height { self[i, j] = color }
        }
        for j in y..<(y + h) {
            for i in [x, x + w - 1] where i >= 0 && i < width && j >= 0 && j < height { self[i, j] = color }
        }
    }

    /// Writes `text` in 5×7 capitals (lower case is shown as upper case; unknown characters as '?'), `scale`
    /// pixels per dot, from the top-left corner (x, y); returns the width drawn.
    @discardableResult
    public mutating func drawText(_ text: String, x: Int, y: Int, color: (UInt8, UInt8, UInt8) = (0, 0, 0),
                                  scale: Int = 1) -> Int {
        var cursor = x
        for character in text.uppercased() {
            let rows = BitmapFont.glyph(character)
            for (row, bits) in rows.enumerated() {
                for column in 0..<5 where bits & (0x10 >> column) != 0 {
                    for dy in 0..<scale {
                        for dx in 0..<scale {
                            let px = cursor + column * scale + dx, py = y + row * scale + dy
                            if px >= 0 && px < width && py >= 0 && py < height { self[px, py] = color }
                        }
                    }
                }
            }
            cursor += BitmapFont.advance * scale
        }
        return cursor - x
    }

    /// Bilinear sample of a side×side map at normalised (u, v), cell centres at (i + 0.5) / side.
    static func bilinear(_ map: [Float], side: Int, u: Float, v: Float) -> Float {
        let fx = max(0, min(Float(side - 1), u * Float(side) - 0.5)), fy = max(0, min(Float(side - 1), v * Float(side) - 0.5))
        let x0 = Int(fx), y0 = Int(fy), x1 = min(side - 1, x0 + 1), y1 = min(side - 1, y0 + 1)
        let ax = fx - Float(x0), ay = fy - Float(y0)
        let top = map[y0 * side + x0] * (1 - ax) + map[y0 * side + x1] * ax
        let bottom = map[y1 * side + x0] * (1 - ax) + map[y1 * side + x1] * ax
        return top * (1 - ay) + bottom * ay
    }
}

/// A 5×7 dot font of capitals, digits and the punctuation labels use; each glyph is seven rows, bit 4 leftmost.
public enum BitmapFont {
    /// Horizontal distance between characters, in dots.
    public static let advance = 6
    /// Height of a line of text, in dots (7 rows plus spacing).
    public static let lineHeight = 9

    public static func glyph(_ c: Character) -> [UInt8] { glyphs[c] ?? glyphs["?"]! }

    public static func textWidth(_ text: String, scale: Int = 1) -> Int { text.count * advance * scale }

    private static let glyphs: [Character: [UInt8]] = [
        "A": [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], "B": [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        "C": [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E], "D": [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        "E": [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F], "F": [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        "G": [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F], "H": [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        "I": [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], "J": [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        "K": [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], "L": [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        "M": [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11], "N": [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        "O": [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], "P": [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        "Q": [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D], "R": [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        "S": [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], "T": [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        "U": [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], "V": [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        "W": [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A], "X": [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        "Y": [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04], "Z": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        "0": [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], "1": [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        "2": [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], "3": [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        "4": [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], "5": [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        "6": [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], "7": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        "8": [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], "9": [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        " ": [0, 0, 0, 0, 0, 0, 0], "-": [0, 0, 0, 0x1F, 0, 0, 0], "_": [0, 0, 0, 0, 0, 0, 0x1F],
        ".": [0, 0, 0, 0, 0, 0x0C, 0x0C], ":": [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0], "+": [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        ",": [0, 0, 0, 0, 0x0C, 0x04, 0x08], "/": [0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10],
        "(": [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02], ")": [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        "%": [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03], "=": [0, 0, 0x1F, 0, 0x1F, 0, 0],
        "?": [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
    ]
}
