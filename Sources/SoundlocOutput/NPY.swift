import Foundation
import SoundlocBase

/// NumPy `.npy` (format 1.0) arrays of little-endian float32, the exchange format for windows and maps.
public enum NPY {
    /// Encodes a C-order float32 array of the given shape.
    public static func encode(_ values: [Float], shape: [Int]) throws -> [UInt8] {
        let count = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }), count == values.count else {
            throw OutputError.badArray("shape \(shape) holds \(count) values, got \(values.count)")
        }
        let dims = shape.count == 1 ? "\(shape[0])," : shape.map(String.init).joined(separator: ", ")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        // Pad so the data starts on a 64-byte boundary, as numpy itself does.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let headerLength = UInt16(header.utf8.count)
        out += [UInt8(headerLength & 0xFF), UInt8(headerLength >> 8)]
        out += Array(header.utf8)
        values.withUnsafeBytes { out += $0 }  // every supported target is little-endian
        return out
    }

    /// Writes a float32 array to `path` atomically.
    public static func write(_ values: [Float], shape: [Int], to path: String) throws {
        try writeFile(try encode(values, shape: shape), to: path)
    }

    /// Reads a C-order `<f4` (or `<f8`, converted) array written by numpy or by `write`.
    public static func read(path: String) throws -> (values: [Float], shape: [Int]) {
        let bytes: [UInt8]
        do { bytes = try InputFile.read(path, limit: 1 << 30) } catch let error as InputFileError {
            throw OutputError.io(path: path, reason: error.reason)
        }
        return try decode(bytes, name: path)
    }

    /// Decodes the bytes of an `.npy` file; `name` labels errors.
    public static func decode(_ bytes: [UInt8], name: String = "array") throws -> (values: [Float], shape: [Int]) {
        func fail(_ why: String) -> OutputError { .badArray("\(name): \(why)") }
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw fail("not an .npy file")
        }
        let major = bytes[6]
        let headerStart = major == 1 ? 10 : 12
        guard major >= 1, major <= 3, bytes.count >= headerStart else { throw fail("unsupported .npy version \(major)") }
        var headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        if major > 1 { headerLength |= Int(bytes[10]) << 16 | Int(bytes[11]) << 24 }
        guard headerStart + headerLength <= bytes.count,
              let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: .utf8)
        else { throw fail("truncated header") }
        guard !header.contains("'fortran_order': True") else { throw fail("Fortran-order arrays are not supported") }
        let isDouble: Bool
        if header.contains("'descr': '<f4'") { isDouble = false }
        else if header.contains("'descr': '<f8'") { isDouble = true }
        else { throw fail("only little-endian float32/float64 arrays are supported") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw fail("header has no shape")
        }
        let shape = try header[open.upperBound..<close].split(separator: ",").compactMap { part -> Int? in
            let text = part.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { return nil }
            guard let dim = Int(text), dim >= 0 else { throw fail("bad shape entry '\(text)'") }
            return dim
        }
        let count = shape.reduce(1, *)
        let dataStart = headerStart + headerLength
        let elementSize = isDouble ? 8 : 4
        guard bytes.count - dataStart == count * elementSize else {
            throw fail("expected \(count * elementSize) data bytes for shape \(shape), found \(bytes.count - dataStart)")
        }
        let values: [Float] = bytes[dataStart...].withUnsafeBytes { raw in
            if isDouble { return (0..<count).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) } }
            return (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        }
        return (values, shape)
    }
}
