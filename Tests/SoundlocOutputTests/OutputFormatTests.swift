import CZlib
import Foundation
import SoundlocOutput
import XCTest

final class OutputFormatTests: XCTestCase {
    func testNPYRoundTripsAndMatchesNumpyLayout() throws {
        let values: [Float] = (0..<24).map { Float($0) * 0.5 - 3 }
        let bytes = try NPY.encode(values, shape: [2, 3, 4])
        XCTAssertEqual(Array(bytes.prefix(8)), [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        XCTAssertEqual((bytes.count - values.count * 4) % 64, 0, "data must start 64-byte aligned")
        let header = String(decoding: bytes[10..<(bytes.count - 96)], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }"))
        XCTAssertTrue(header.hasSuffix("\n"))
        let decoded = try NPY.decode(bytes)
        XCTAssertEqual(decoded.shape, [2, 3, 4])
        XCTAssertEqual(decoded.values, values)
        XCTAssertEqual(try NPY.decode(try NPY.encode([7], shape: [1])).shape, [1])
    }

    func testNPYRejectsMismatchedShapeAndBadFiles() {
        XCTAssertThrowsError(try NPY.encode([1, 2, 3], shape: [2, 2]))
        XCTAssertThrowsError(try NPY.decode(Array("not numpy".utf8)))
        var truncated = try! NPY.encode([1, 2, 3, 4], shape: [4])
        truncated.removeLast(3)
        XCTAssertThrowsError(try NPY.decode(truncated)) { XCTAssertTrue("\($0)".contains("data bytes")) }
    }

    func testPNGChunksCRCsAndPixelsAreValid() throws {
        let width = 5, height = 3
        let pixels = (0..<(width * height * 3)).map { UInt8(($0 * 37) % 256) }
        let png = try PNG.encodeRGB(pixels, width: width, height: height)
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var position = 8
        var chunks: [String] = []
        var idat: [UInt8] = []
        while position < png.count {
            let length = Int(png[position]) << 24 | Int(png[position + 1]) << 16 | Int(png[position + 2]) << 8 | Int(png[position + 3])
            let typed = Array(png[(position + 4)..<(position + 8 + length)])
            let stored = png[(position + 8 + length)..<(position + 12 + length)].reduce(0) { $0 << 8 | UInt32($1) }
            let computed = typed.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
            XCTAssertEqual(stored, computed)
            let name = String(decoding: typed.prefix(4), as: UTF8.self)
            chunks.append(name)
            if name == "IDAT" { idat += typed.dropFirst(4) }
            position += 12 + length
        }
        XCTAssertEqual(chunks, ["IHDR", "IDAT", "IEND"])
        var raw = [UInt8](repeating: 0, count: height * (width * 3 + 1))
        var rawLength = uLongf(raw.count)
        XCTAssertEqual(uncompress(&raw, &rawLength, idat, uLong(idat.count)), Z_OK)
        for row in 0..<height {
            XCTAssertEqual(raw[row * (width * 3 + 1)], 0)
            XCTAssertEqual(Array(raw[(row * (width * 3 + 1) + 1)...].prefix(width * 3)), Array(pixels[(row * width * 3)...].prefix(width * 3)))
        }
        XCTAssertThrowsError(try PNG.encodeRGB([1, 2], width: 5, height: 3))
    }

    func testHeatColoursRunFromDarkToBright() {
        let brightness = stride(from: Float(0), through: 1, by: 0.1).map { v -> Int in
            let (r, g, b) = Colormap.heat(v)
            return Int(r) + Int(g) + Int(b)
        }
        XCTAssertEqual(brightness, brightness.sorted())
        XCTAssertLessThan(brightness.first!, 40)
        XCTAssertGreaterThan(brightness.last!, 600)
    }
}
