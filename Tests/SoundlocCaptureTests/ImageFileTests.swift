import CZlib
import Foundation
import SoundlocTestSupport
import XCTest
@testable import SoundlocCapture

final class ImageFileTests: XCTestCase {
    /// Pixel (x, y) of the reference pictures below.
    private func pattern(_ x: Int, _ y: Int) -> [UInt8] {
        [UInt8((x * 30 + y * 7) % 256), UInt8((y * 40 + x * 3) % 256), UInt8((x * y * 11) % 256)]
    }

    private func expectedPattern(width: Int, height: Int) -> [UInt8] {
        (0..<height).flatMap { y in (0..<width).flatMap { x in pattern(x, y) } }
    }

    /// A 7x6 RGB PNG written by Pillow 13 (optimize=True): rows use the Sub and Paeth filters.
    private let pillowPNG = """
        89504e470d0a1a0a0000000d4948445200000007000000060802000000806c13210000002b4944415478da63646060906346472cec1a0cecccdc68082e2a868c904515e1084d5407823045cdd9999d005622060001577f140000000049454e44ae426082
        """

    private func bytes(hex: String) -> [UInt8] {
        var out = [UInt8]()
        var it = hex.unicodeScalars.makeIterator()
        while let a = it.next(), let b = it.next() { out.append(UInt8(String([Character(a), Character(b)]), radix: 16)!) }
        return out
    }

    func testFIFOIsRefusedNotWaitedOn() throws {
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-\(UUID().uuidString).png").path
        try makeFIFO(fifo)
        defer { unlink(fifo) }
        let outcome = runWithHangGuard(unblock: { unblockFIFO(fifo) }) { _ = try ImageFile.read(path: fifo) }
        XCTAssertEqual(outcome.error as? ImageFileError, .io(path: fifo, reason: "is a FIFO (named pipe), not a regular file"),
                       "\(outcome)")
        XCTAssertThrowsError(try ImageFile.read(path: "/dev/null")) {
            XCTAssertEqual($0 as? ImageFileError, .io(path: "/dev/null", reason: "is a character device, not a regular file"))
        }
    }

    func testIndependentlyEncodedPNG() throws {
        let image = try ImageFile.decodePNG(bytes(hex: pillowPNG))
        XCTAssertEqual(image.width, 7)
        XCTAssertEqual(image.height, 6)
        XCTAssertEqual(image.pixels, expectedPattern(width: 7, height: 6))
    }

    // MARK: A small encoder for the colour types and filters Pillow's file does not cover.

    private func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        let typed = Array(type.utf8) + body
        let crc = typed.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        return be32(body.count) + typed + be32(Int(crc))
    }

    /// Encodes `samples` (height rows of width·channels bytes) with the given filter per row.
    private func png(width: Int, height: Int, colorType: UInt8, channels: Int, samples: [UInt8], filters: [UInt8],
                     palette: [UInt8]? = nil, interlace: UInt8 = 0, depth: UInt8 = 8) -> [UInt8] {
        let stride = width * channels
        var raw = [UInt8]()
        for y in 0..<height {
            let f = filters[y % filters.count]
            raw.append(f)
            for i in 0..<stride {
                let x = Int(samples[y * stride + i])
                let a = i >= channels ? Int(samples[y * stride + i - channels]) : 0
                let b = y > 0 ? Int(samples[(y - 1) * stride + i]) : 0
                let c = y > 0 && i >= channels ? Int(samples[(y - 1) * stride + i - channels]) : 0
                let p: Int
                switch f {
                case 1: p = a
                case 2: p = b
                case 3: p = (a + b) / 2
                case 4:
                    let e = a + b - c
                    let pa = abs(e - a), pb = abs(e - b), pc = abs(e - c)
                    if pa <= pb && pa <= pc { p = a } else if pb <= pc { p = b } else { p = c }
                default: p = 0
                }
                raw.append(UInt8(truncatingIfNeeded: x - p))
            }
        }
        var bound = compressBound(uLong(raw.count))
        var z = [UInt8](repeating: 0, count: Int(bound))
        _ = raw.withUnsafeBufferPointer { src in z.withUnsafeMutableBufferPointer { compress2($0.baseAddress, &bound, src.baseAddress, uLong(raw.count), 9) } }
        z = Array(z.prefix(Int(bound)))
        var ihdr: [UInt8] = [0, 0, 0, UInt8(width), 0, 0, 0, UInt8(height)]
        ihdr += [depth, colorType, 0, 0, interlace]
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr)
        out += chunk("tEXt", Array("Comment\0ancillary chunks are skipped".utf8))
        if let palette { out += chunk("PLTE", palette) }
        // Split the data over two IDAT chunks, as encoders may.
        out += chunk("IDAT", Array(z.prefix(z.count / 2))) + chunk("IDAT", Array(z.dropFirst(z.count / 2)))
        return out + chunk("IEND", [])
    }

    func testColourTypesAndAllFilters() throws {
        let (w, h) = (9, 10)
        let rgb = expectedPattern(width: w, height: h)
        let filters: [UInt8] = [0, 1, 2, 3, 4]
        // RGB
        var image = try ImageFile.decodePNG(png(width: w, height: h, colorType: 2, channels: 3, samples: rgb, filters: filters))
        XCTAssertEqual(image.pixels, rgb)
        // RGBA: alpha dropped
        var rgba = [UInt8]()
        for i in 0..<(w * h) { rgba += [rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2], UInt8(i % 256)] }
        image = try ImageFile.decodePNG(png(width: w, height: h, colorType: 6, channels: 4, samples: rgba, filters: filters))
        XCTAssertEqual(image.pixels, rgb)
        // Grey and grey+alpha: replicated to three channels
        let grey = (0..<(w * h)).map { UInt8($0 * 5 % 256) }
        let greyRGB = grey.flatMap { [$0, $0, $0] }
        image = try ImageFile.decodePNG(png(width: w, height: h, colorType: 0, channels: 1, samples: grey, filters: filters))
        XCTAssertEqual(image.pixels, greyRGB)
        let greyAlpha = grey.flatMap { [$0, 255 - $0] }
        image = try ImageFile.decodePNG(png(width: w, height: h, colorType: 4, channels: 2, samples: greyAlpha, filters: filters))
        XCTAssertEqual(image.pixels, greyRGB)
        // Palette
        let palette: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 8, 7]
        let indices = (0..<(w * h)).map { UInt8($0 % 4) }
        image = try ImageFile.decodePNG(png(width: w, height: h, colorType: 3, channels: 1, samples: indices, filters: [0], palette: palette))
        var paletteRGB = [UInt8]()
        for i in indices { paletteRGB += palette[(Int(i) * 3)..<(Int(i) * 3 + 3)] }
        XCTAssertEqual(image.pixels, paletteRGB)
    }

    func testUnsupportedAndCorruptPNGsAreClearErrors() {
        let rgb = expectedPattern(width: 4, height: 4)
        func error(_ bytes: [UInt8]) -> ImageFileError? {
            do { _ = try ImageFile.decodePNG(bytes); return nil } catch { return error as? ImageFileError }
        }
        let good = png(width: 4, height: 4, colorType: 2, channels: 3, samples: rgb, filters: [1])
        XCTAssertNotNil(try? ImageFile.decodePNG(good))
        let interlaced = png(width: 4, height: 4, colorType: 2, channels: 3, samples: rgb, filters: [0], interlace: 1)
        XCTAssertTrue(error(interlaced)?.description.contains("interlaced") ?? false)
        let sixteen = png(width: 4, height: 4, colorType: 2, channels: 3, samples: rgb, filters: [0], depth: 16)
        XCTAssertTrue(error(sixteen)?.description.contains("bit depth 16") ?? false)
        var badCRC = good
        badCRC[20] ^= 1
        XCTAssertTrue(error(badCRC)?.description.contains("CRC") ?? false)
        XCTAssertTrue(error(Array(good.prefix(good.count - 12)))?.description.contains("IEND") ?? false)
        let badFilter = png(width: 4, height: 4, colorType: 2, channels: 3, samples: rgb, filters: [7])
        XCTAssertTrue(error(badFilter)?.description.contains("filter") ?? false)
    }

    func testPPMAndPGM() throws {
        let rgb = expectedPattern(width: 5, height: 3)
        let ppm = Array("P6\n# a comment\n5 3\n255\n".utf8) + rgb
        XCTAssertEqual(try ImageFile.decodePPM(ppm), RGBImage(width: 5, height: 3, pixels: rgb))
        let pgm = Array("P5 2 1 15 ".utf8) + [0, 15]
        XCTAssertEqual(try ImageFile.decodePPM(pgm).pixels, [0, 0, 0, 255, 255, 255])
        XCTAssertThrowsError(try ImageFile.decodePPM(Array("P6 5 3 255\n".utf8) + [1, 2, 3]))
        XCTAssertThrowsError(try ImageFile.decodePPM(Array("P6 5 3 65535\n".utf8) + rgb + rgb))

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagefile-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let ppmPath = dir.appendingPathComponent("a.ppm"), pngPath = dir.appendingPathComponent("a.png")
        let txtPath = dir.appendingPathComponent("a.txt")
        try Data(ppm).write(to: ppmPath)
        try Data(bytes(hex: pillowPNG)).write(to: pngPath)
        try Data("hello".utf8).write(to: txtPath)
        XCTAssertEqual(try ImageFile.read(path: ppmPath.path).pixels, rgb)
        XCTAssertEqual(try ImageFile.read(path: pngPath.path).width, 7)
        XCTAssertThrowsError(try ImageFile.read(path: txtPath.path)) { XCTAssertTrue("\($0)".contains("not a PNG")) }
        XCTAssertThrowsError(try ImageFile.read(path: dir.appendingPathComponent("missing.png").path))
    }
}
