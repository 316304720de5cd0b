import XCTest
@testable import SoundlocEngine

final class SHA256Tests: XCTestCase {
    func testKnownVectors() {
        // FIPS 180-2 examples and the empty message.
        XCTAssertEqual(SHA256.hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testPaddingBoundariesAndChunking() {
        // Lengths around the 55/56/64-byte padding edges, hashed whole and in uneven chunks.
        var rng = SeededRandom(seed: 99)
        for n in [55, 56, 57, 63, 64, 65, 119, 120, 128, 1000] {
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let whole = SHA256.hex(bytes)
            var h = SHA256()
            var i = 0, step = 1
            while i < n {
                let j = min(n, i + step)
                h.update(Array(bytes[i..<j]))
                i = j
                step = step * 3 % 71 + 1
            }
            XCTAssertEqual(SHA256.hexString(h.finalize()), whole, "length \(n)")
        }
        // Python's hashlib for bytes(range(256)) * 3.
        let pattern = (0..<768).map { UInt8($0 % 256) }
        XCTAssertEqual(SHA256.hex(pattern), "f3a25aa93aa2fbba28d79260535bbd6a5eb0fc1c24a8b0f04e12b484c1dfe363")
    }
}
