import CZlib
import Foundation
import SoundlocBase

/// An 8-bit RGB picture, row-major, 3 bytes per pixel.
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBImage needs width·height·3 bytes")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// Why a picture file could not be decoded.
public enum ImageFileError: Error, CustomStringConvertible, Equatable {
    case io(path: String, reason: String)
    case unknownFormat(path: String)
    case unsupported(String)
    case corrupt(String)

    public var description: String {
        switch self {
        case .io(let path, let reason): return "cannot read \(path): \(reason)"
        case .unknownFormat(let path): return "\(path): not a PNG or binary PPM/PGM file"
        case .unsupported(let why): return "unsupported image: \(why)"
        case .corrupt(let why): return "corrupt image: \(why)"
        }
    }
}

/// Decodes still pictures for offline inference: PNG (8-bit grey, grey+alpha, RGB, RGBA or palette;
/// not interlaced) and binary PPM/PGM (P6/P5, maxval ≤ 255). Alpha is dropped, as PIL's convert("RGB").
public enum ImageFile {
    /// Pictures larger than this many pixels are refused (a corrupt header must not allocate gigabytes).
    public static let maxPixels = 1 << 26
    /// Files larger than this are refused before reading (an uncompressed maxPixels RGB picture is 192 MiB).
    public static let maxFileBytes = 256 << 20

    /// Reads `path`, choosing the decoder by the file's magic bytes.
    public static func read(path: String) throws -> RGBImage {
        let bytes: [UInt8]
        do { bytes = try InputFile.read(path, limit: maxFileBytes) } catch let error as InputFileError {
            throw ImageFileError.io(path: path, reason: error.reason)
        }
        return try decode(bytes, path: path)
    }

    /// Decodes the bytes of a picture file, choosing the decoder by its magic bytes; `path` only labels errors.
    public static func decode(_ bytes: [UInt8], path: String) throws -> RGBImage {
        if bytes.starts(with: pngSignature) { return try decodePNG(bytes) }
        if bytes.count >= 2, bytes[0] == UInt8(ascii: "P"), bytes[1] == UInt8(ascii: "6") || bytes[1] == UInt8(ascii: "5") {
            return try decodePPM(bytes)
        }
        throw ImageFileError.unknownFormat(path: path)
    }

    // MARK: PNG

    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    /// Most bytes one byte of deflate data can inflate to (1032 is deflate's limit: 258-byte matches in ~2 bits each).
    static let maxInflateRatio = 1032

    /// Decodes a PNG file image.
    public static func decodePNG(_ bytes: [UInt8]) throws -> RGBImage {
        guard bytes.starts(with: pngSignature) else { throw ImageFileError.corrupt("missing PNG signature") }
        func u32(_ i: Int) -> Int { Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]) }
        var pos = 8
        var width = 0, height = 0, colorType = -1
        var palette = [UInt8]()
        var compressed = [UInt8]()
        var sawEnd = false
        while pos + 12 <= bytes.count {
            let length = u32(pos)
            let type = String(decoding: bytes[(pos + 4)..<(pos + 8)], as: UTF8.self)
            guard length <= bytes.count - pos - 12 else { throw ImageFileError.corrupt("PNG chunk \(type) runs past the end of the file") }
            let body = pos + 8
            let crc = bytes.withUnsafeBufferPointer { crc32(0, $0.baseAddress! + pos + 4, uInt(length + 4)) }
            guard UInt32(crc) == UInt32(u32(body + length)) else { throw ImageFileError.corrupt("PNG chunk \(type) fails its CRC") }
            switch type {
            case "IHDR":
                guard length == 13 else { throw ImageFileError.corrupt("IHDR has \(length) bytes") }
                width = u32(body)
                height = u32(body + 4)
                let depth = Int(bytes[body + 8])
                colorType = Int(bytes[body + 9])
                guard bytes[body + 10] == 0, bytes[body + 11] == 0 else { throw ImageFileError.corrupt("unknown PNG compression or filter method") }
                guard bytes[body + 12] == 0 else { throw ImageFileError.unsupported("interlaced PNG (save it non-interlaced)") }
                guard depth == 8 else { throw ImageFileError.unsupported("PNG bit depth \(depth) (only 8-bit is supported)") }
                guard [0, 2, 3, 4, 6].contains(colorType) else { throw ImageFileError.corrupt("PNG colour type \(colorType)") }
                guard width > 0, height > 0, width <= maxPixels / height else {
                    throw ImageFileError.unsupported("PNG size \(width)x\(height)")
                }
            case "PLTE":
                palette = Array(bytes[body..<(body + length)])
            case "IDAT":
                compressed += bytes[body..<(body + length)]
            case "IEND":
                sawEnd = true
            default:
                // Ancillary chunks (lower-case first letter) are skipped; unknown critical ones are not safe to ignore.
                if type.first?.isUppercase == true { throw ImageFileError.unsupported("PNG critical chunk \(type)") }
            }
            pos = body + length + 4
            if sawEnd { break }
        }
        guard colorType >= 0 else { throw ImageFileError.corrupt("PNG without IHDR") }
        guard sawEnd else { throw ImageFileError.corrupt("PNG truncated (no IEND)") }
        if colorType == 3 && (palette.isEmpty || palette.count % 3 != 0) { throw ImageFileError.corrupt("palette PNG without a valid PLTE") }

        let channels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][colorType]!
        let stride = width * channels
        let rawCount = height * (stride + 1)
        // Deflate cannot expand data more than ~1032 times, so a few bytes of IDAT claiming a huge picture are refused
        // before the buffer is allocated (a 69-byte file asked for 268 MB).
        guard rawCount <= compressed.count * maxInflateRatio + 1024 else {
            throw ImageFileError.corrupt("\(compressed.count) bytes of PNG image data cannot inflate to \(height) rows of \(stride) bytes")
        }
        var raw = [UInt8](repeating: 0, count: rawCount)
        var rawLength = uLongf(raw.count)
        let status = compressed.withUnsafeBufferPointer { src in
            raw.withUnsafeMutableBufferPointer { dst in uncompress(dst.baseAddress, &rawLength, src.baseAddress, uLong(src.count)) }
        }
        guard status == Z_OK, Int(rawLength) == raw.count else {
            throw ImageFileError.corrupt("PNG image data does not inflate to \(height) rows of \(stride) bytes (zlib status \(status))")
        }
        try unfilter(&raw, height: height, stride: stride, bytesPerPixel: channels)

        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let row = y * (stride + 1) + 1
            for x in 0..<width {
                let s = row + x * channels, d = (y * width + x) * 3
                switch colorType {
                case 0, 4:
                    rgb[d] = raw[s]; rgb[d + 1] = raw[s]; rgb[d + 2] = raw[s]
                case 3:
                    let i = Int(raw[s]) * 3
                    guard i + 2 < palette.count else { throw ImageFileError.corrupt("palette index \(raw[s]) out of range") }
                    rgb[d] = palette[i]; rgb[d + 1] = palette[i + 1]; rgb[d + 2] = palette[i + 2]
                default:
                    rgb[d] = raw[s]; rgb[d + 1] = raw[s + 1]; rgb[d + 2] = raw[s + 2]
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: rgb)
    }

    /// Reverses PNG's per-row filters in place (each row is 1 filter byte + stride bytes).
    static func unfilter(_ raw: inout [UInt8], height: Int, stride: Int, bytesPerPixel bpp: Int) throws {
        try raw.withUnsafeMutableBufferPointer { buf in
            for y in 0..<height {
                let row = y * (stride + 1)
                let filter = buf[row]
                let cur = row + 1, prev = row - stride  // previous row's data starts at (row - stride - 1) + 1
                for i in 0..<stride {
                    let a = i >= bpp ? Int(buf[cur + i - bpp]) : 0
                    let b = y > 0 ? Int(buf[prev + i]) : 0
                    let c = (y > 0 && i >= bpp) ? Int(buf[prev + i - bpp]) : 0
                    let predictor: Int
                    switch filter {
                    case 0: predictor = 0
                    case 1: predictor = a
                    case 2: predictor = b
                    case 3: predictor = (a + b) / 2
                    case 4:
                        let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                        predictor = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c)
                    default: throw ImageFileError.corrupt("PNG row \(y) has unknown filter type \(filter)")
                    }
                    buf[cur + i] = buf[cur + i] &+ UInt8(truncatingIfNeeded: predictor)
                }
            }
        }
    }

    // MARK: PPM / PGM

    /// Decodes a binary PPM (P6) or PGM (P5) with maxval ≤ 255 (scaled to 0...255).
    public static func decodePPM(_ bytes: [UInt8]) throws -> RGBImage {
        var pos = 2
        func token() throws -> Int {
            while pos < bytes.count {
                if bytes[pos] == UInt8(ascii: "#") {
                    while pos < bytes.count && bytes[pos] != 0x0A && bytes[pos] != 0x0D { pos += 1 }
                } else if [0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C].contains(bytes[pos]) {
                    pos += 1
                } else {
                    break
                }
            }
            var value = 0, digits = 0
            while pos < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[pos]), digits < 10 {
                value = value * 10 + Int(bytes[pos] - UInt8(ascii: "0"))
                pos += 1
                digits += 1
            }
            guard digits > 0 else { throw ImageFileError.corrupt("PPM header is not three numbers") }
            return value
        }
        let gray = bytes[1] == UInt8(ascii: "5")
        let width = try token(), height = try token(), maxval = try token()
        guard width > 0, height > 0, width <= maxPixels / height else { throw ImageFileError.unsupported("PPM size \(width)x\(height)") }
        guard maxval >= 1 && maxval <= 255 else { throw ImageFileError.unsupported("PPM maxval \(maxval) (16-bit samples)") }
        pos += 1  // the single whitespace byte before the samples
        let channels = gray ? 1 : 3
        let need = width * height * channels
        guard pos + need <= bytes.count else { throw ImageFileError.corrupt("PPM data has \(max(0, bytes.count - pos)) of \(need) bytes") }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            for ch in 0..<3 {
                let v = Int(bytes[pos + i * channels + (gray ? 0 : ch)])
                rgb[i * 3 + ch] = UInt8(maxval == 255 ? v : min(255, (v * 255 + maxval / 2) / maxval))
            }
        }
        return RGBImage(width: width, height: height, pixels: rgb)
    }
}
