import Foundation
@testable import SoundlocOutput
import XCTest

final class OverlayTests: XCTestCase {
    func testBilinearHitsCellCentresAndInterpolatesBetween() {
        let map: [Float] = [0, 1, 2, 3]  // 2×2
        XCTAssertEqual(RGBCanvas.bilinear(map, side: 2, u: 0.25, v: 0.25), 0, accuracy: 1e-6)
        XCTAssertEqual(RGBCanvas.bilinear(map, side: 2, u: 0.75, v: 0.75), 3, accuracy: 1e-6)
        XCTAssertEqual(RGBCanvas.bilinear(map, side: 2, u: 0.5, v: 0.25), 0.5, accuracy: 1e-6)
        XCTAssertEqual(RGBCanvas.bilinear(map, side: 2, u: 0.5, v: 0.5), 1.5, accuracy: 1e-6)
        XCTAssertEqual(RGBCanvas.bilinear(map, side: 2, u: 0, v: 0), 0, accuracy: 1e-6, "edges clamp")
    }

    func testHeatOverlayIsBrightestWhereTheMapPeaks() {
        let grey = [UInt8](repeating: 100, count: 8 * 8 * 3)
        var map = [Float](repeating: 0, count: 14 * 14)
        map[10 * 14 + 3] = 1  // row 10, column 3
        var canvas = RGBCanvas(width: 140, height: 140)
        canvas.drawTile(image: grey, imageWidth: 8, imageHeight: 8, at: 0, 0, side: 140, map: map)
        var best = (x: 0, y: 0, value: -1)
        for y in 0..<140 {
            for x in 0..<140 {
                let (r, g, b) = canvas[x, y]
                let value = Int(r) + Int(g) + Int(b)
                if value > best.value { best = (x, y, value) }
            }
        }
        XCTAssertEqual(Double(best.x), 35, accuracy: 5, "peak at the centre of column 3 (x = 3.5 · 10)")
        XCTAssertEqual(Double(best.y), 105, accuracy: 5, "peak at the centre of row 10")
        let far = canvas[130, 5]
        XCTAssertLessThan(Int(far.0) + Int(far.1) + Int(far.2), 3 * 100, "where the map is 0 the picture is only darkened")
    }

    func testTextDrawsGlyphDotsAndUnknownCharactersAsQuestionMarks() {
        var canvas = RGBCanvas(width: 40, height: 10)
        let width = canvas.drawText("l1", x: 1, y: 1, color: (255, 0, 0))
        XCTAssertEqual(width, 2 * BitmapFont.advance)
        // 'L': left column set on all seven rows, bottom row full.
        for row in 0..<7 { XCTAssertEqual(canvas[1, 1 + row].0, 255) }
        for column in 0..<5 { XCTAssertEqual(canvas[1 + column, 7].0, 255) }
        XCTAssertEqual(canvas[3, 3].1, 255, "inside the L stays background")
        XCTAssertEqual(BitmapFont.glyph("é"), BitmapFont.glyph("?"))
    }

    func testRectangleIsClippedToTheCanvas() {
        var canvas = RGBCanvas(width: 10, height: 10)
        canvas.drawRectangle(x: -2, y: 5, width: 20, height: 20, color: (0, 0, 255))
        XCTAssertEqual(canvas[0, 5].2, 255)
        XCTAssertEqual(canvas[9, 5].2, 255)
        XCTAssertEqual(canvas[9, 5].0, 0)
        XCTAssertEqual(canvas[5, 9].0, 255, "the bottom edge lies outside; the pixel stays white")
    }
}
