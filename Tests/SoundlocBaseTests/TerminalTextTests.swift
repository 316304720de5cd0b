import SoundlocBase
import XCTest

final class TerminalTextTests: XCTestCase {
    func testControlCharactersAreEscapedAndTextIsKept() {
        XCTAssertEqual(TerminalText.escaped("violin"), "violin")
        XCTAssertEqual(TerminalText.escaped("é, 小提琴, ♪"), "é, 小提琴, ♪", "printable non-ASCII stays")
        XCTAssertEqual(TerminalText.escaped("\u{1b}[2J\u{1b}]0;owned\u{07}"), "\\u{1b}[2J\\u{1b}]0;owned\\u{7}")
        XCTAssertEqual(TerminalText.escaped("a\nb\rc\td\u{0}"), "a\\u{a}b\\u{d}c\\u{9}d\\u{0}")
        XCTAssertEqual(TerminalText.escaped("del\u{7f} csi\u{9b}31m nel\u{85} c1end\u{9f}"), "del\\u{7f} csi\\u{9b}31m nel\\u{85} c1end\\u{9f}")
        XCTAssertEqual(TerminalText.escaped("back\\slash"), "back\\slash")
        XCTAssertEqual(TerminalText.escaped(bytes: [0x52, 0x1b, 0xff, 0x46]), "R\\u{1b}\u{fffd}F", "invalid UTF-8 becomes U+FFFD")
    }

    func testEveryControlCharacterIsCaught() {
        let controls = (0..<0x20).map { Unicode.Scalar(UInt8($0)) } + (0x7f...0x9f).map { Unicode.Scalar(UInt8($0)) }
        for scalar in controls {
            let escaped = TerminalText.escaped("x\(Character(scalar))y")
            XCTAssertFalse(escaped.unicodeScalars.contains(where: TerminalText.isControl), "U+\(String(scalar.value, radix: 16))")
            XCTAssertEqual(escaped, "x\\u{\(String(scalar.value, radix: 16))}y")
        }
    }

    func testLinesKeepTheirBreaksOnly() {
        XCTAssertEqual(TerminalText.escapedLines("one\ntwo\u{1b}[1m\n"), "one\ntwo\\u{1b}[1m\n")
        XCTAssertEqual(TerminalText.escapedLines("plain\ntext"), "plain\ntext")
    }
}
