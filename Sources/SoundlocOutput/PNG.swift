import CZlib
import Foundation

/// Minimal PNG encoder for 8-bit RGB pictures (spectrograms, overlays); deflate comes from zlib.
public enum PNG {
    /// Encodes `pixels` (row-major RGB, 3 bytes per pixel) as a PNG file image.
    public static func encodeRGB(_ pixels: [UInt8], width: Int, height: Int) throws -> [UInt8] {
        guard width > 0, height > 0, pixels.count == width * height * 3 else {
            throw OutputError.badImage("expected \(width)x\(height)x3 bytes, got \(pixels.count)")
        }
        // Each scanline gets filter type 0 ("none"); zlib's compression is good enough on its own here.
        var raw = [UInt8]()
        raw.reserveCapacity(height * (width * 3 + 1))
        for row in 0..<height {
            raw.append(0)
            raw.append(contentsOf: pixels[(row * width * 3)..<((row + 1) * width * 3)])
        }
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header = [UInt8]()
        header.appendBigEndian(UInt32(width))
        header.appendBigEndian(UInt32(height))
        header += [8, 2, 0, 0, 0]  // bit depth 8, colour type RGB, deflate, adaptive filters, no interlace
        appendChunk("IHDR", header, to: &out)
        appendChunk("IDAT", try deflate(raw), to: &out)
        appendChunk("IEND", [], to: &out)
        return out
    }

    /// Writes an RGB picture as a PNG file, replacing any file at `path`.
    public static func writeRGB(_ pixels: [UInt8], width: Int, height: Int, to path: String) throws {
        let bytes = try encodeRGB(pixels, width: width, height: height)
        try writeFile(bytes, to: path)
    }

    private static func deflate(_ data: [UInt8]) throws -> [UInt8] {
        var bound = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(bound))
        let status = data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                compress2(dst.baseAddress, &bound, src.baseAddress, uLong(data.count), 6)
            }
        }
        guard status == Z_OK else { throw OutputError.badImage("zlib compress2 failed (\(status))") }
        return Array(out[0..<Int(bound)])
    }

    private static func appendChunk(_ type: String, _ payload: [UInt8], to out: inout [UInt8]) {
        out.appendBigEndian(UInt32(payload.count))
        let typed = Array(type.utf8) + payload
        out += typed
        let crc = typed.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        out.appendBigEndian(UInt32(crc))
    }
}

/// Errors from writing pictures and arrays.
public enum OutputError: Error, CustomStringConvertible {
    case badImage(String)
    case badArray(String)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case let .badImage(reason): return "cannot encode picture: \(reason)"
        case let .badArray(reason): return "bad array: \(reason)"
        case let .io(path, reason): return "\(path): \(reason)"
        }
    }
}

/// Writes bytes atomically (temporary file + rename) so readers never see half a file.
func writeFile(_ bytes: [UInt8], to path: String) throws {
    let url = URL(fileURLWithPath: path)
    do {
        try Data(bytes).write(to: url, options: .atomic)
    } catch {
        throw OutputError.io(path: path, reason: (error as NSError).localizedDescription)
    }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian(_ value: UInt32) {
        append(UInt8(truncatingIfNeeded: value >> 24))
        append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }
}
