import Foundation
import SoundlocTestSupport

/// Deterministic, seeded mutations of corpus inputs, in the spirit of libFuzzer's mutators (bit flips, interesting
/// integers, erased, inserted, copied and spliced ranges, dictionary tokens, numbers in text replaced). The same seed
/// gives the same inputs on every machine, so the quick corpus run in `make test` is reproducible, and it is the
/// harness `soundloc-fuzz --mutate` falls back on where libFuzzer is not available.
public struct FuzzMutator {
    private var random: SeededRandom
    /// Tokens worth inserting (keywords, field names, magic bytes): the target's libFuzzer dictionary.
    public var dictionary: [[UInt8]]
    /// Mutated inputs never grow past this many bytes.
    public var maxLength: Int

    public init(seed: UInt64, dictionary: [[UInt8]] = [], maxLength: Int = 1 << 16) {
        random = SeededRandom(seed: seed)
        self.dictionary = dictionary
        self.maxLength = maxLength
    }

    /// `input` with one to four stacked mutations; `others` supplies material for splicing.
    public mutating func mutate(_ input: [UInt8], others: [[UInt8]] = []) -> [UInt8] {
        var bytes = input
        for _ in 0..<(1 + below(4)) { step(&bytes, others: others) }
        if bytes.count > maxLength { bytes.removeSubrange(maxLength...) }
        return bytes
    }

    private mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(random.next() % UInt64(n)) }

    private static let interestingBytes: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x0A, 0x20, UInt8(ascii: "0"), UInt8(ascii: "9")]
    private static let interestingIntegers: [UInt64] = [
        0, 1, 2, 3, 7, 8, 16, 32, 64, 100, 127, 128, 255, 256, 1000, 1024, 4096, 16384, 32767, 32768, 65535, 65536,
        0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, UInt64.max,
    ]
    private static let interestingNumbers = [
        "0", "-0", "1", "-1", "0.5", "255", "256", "65535", "65536", "16384", "16385", "2147483647", "2147483648",
        "4294967296", "9223372036854775807", "9223372036854775808", "-9223372036854775809", "1e308", "1e309", "-1e308",
        "1e-320", "nan", "NaN", "inf", "-inf", ".inf", "1.5", "0x10", "1_000", "00000000000000000000001",
    ]

    private mutating func step(_ bytes: inout [UInt8], others: [[UInt8]]) {
        let operation = below(11)
        if bytes.isEmpty && operation < 7 {
            bytes = dictionary.isEmpty ? [UInt8(truncatingIfNeeded: random.next())] : dictionary[below(dictionary.count)]
            return
        }
        switch operation {
        case 0:  // flip one bit
            bytes[below(bytes.count)] ^= 1 << UInt8(below(8))
        case 1:  // one byte to an interesting or random value
            let value = below(3) == 0 ? UInt8(truncatingIfNeeded: random.next()) : Self.interestingBytes[below(Self.interestingBytes.count)]
            bytes[below(bytes.count)] = value
        case 2:  // an interesting integer, 2, 4 or 8 bytes, little- or big-endian
            let width = [2, 4, 8][below(3)]
            let value = below(4) == 0 ? UInt64(bytes.count) &+ UInt64(below(17)) &- 8 : Self.interestingIntegers[below(Self.interestingIntegers.count)]
            let position = below(bytes.count)
            let bigEndian = below(2) == 0
            for i in 0..<width where position + i < bytes.count {
                let shift = UInt64(8 * (bigEndian ? width - 1 - i : i))
                bytes[position + i] = UInt8(truncatingIfNeeded: value >> shift)
            }
        case 3:  // erase a range
            let start = below(bytes.count)
            bytes.removeSubrange(start..<min(bytes.count, start + 1 + below(min(64, bytes.count))))
        case 4:  // insert random bytes
            let count = 1 + below(16)
            bytes.insert(contentsOf: (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: below(bytes.count + 1))
        case 5:  // copy a range elsewhere (repeats structures: chunks, lines, tensors)
            let start = below(bytes.count), length = 1 + below(min(256, bytes.count - start))
            let piece = Array(bytes[start..<(start + length)])
            bytes.insert(contentsOf: piece, at: below(bytes.count + 1))
        case 6:  // truncate
            bytes.removeSubrange(below(bytes.count)...)
        case 7:  // splice: this input's head with another's tail
            guard let other = others.isEmpty ? nil : others[below(others.count)], !other.isEmpty else { return insertToken(&bytes) }
            let head = below(bytes.count + 1), tail = below(other.count)
            bytes = Array(bytes[..<head]) + other[tail...]
        case 8, 9:
            insertToken(&bytes)
        default:  // a number in text replaced by an interesting one
            replaceNumber(&bytes)
        }
    }

    private mutating func insertToken(_ bytes: inout [UInt8]) {
        guard !dictionary.isEmpty else { return replaceNumber(&bytes) }
        let token = dictionary[below(dictionary.count)]
        let position = below(bytes.count + 1)
        if below(2) == 0 || position == bytes.count {
            bytes.insert(contentsOf: token, at: position)
        } else {
            bytes.replaceSubrange(position..<min(bytes.count, position + token.count), with: token)
        }
    }

    private mutating func replaceNumber(_ bytes: inout [UInt8]) {
        func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        let number = Array(Self.interestingNumbers[below(Self.interestingNumbers.count)].utf8)
        guard !bytes.isEmpty, let start = (bytes[below(bytes.count)...].firstIndex(where: isDigit) ?? bytes.firstIndex(where: isDigit)) else {
            return bytes.insert(contentsOf: number, at: below(bytes.count + 1))
        }
        var end = start
        while end < bytes.count, isDigit(bytes[end]) || bytes[end] == UInt8(ascii: ".") { end += 1 }
        bytes.replaceSubrange(start..<end, with: number)
    }
}

/// Reads a libFuzzer dictionary: one `"token"` (optionally `name="token"`) per line, `#` comments, `\\`, `\"` and
/// `\xNN` escapes.
public func readFuzzDictionary(_ text: String) -> [[UInt8]] {
    var tokens = [[UInt8]]()
    for line in text.split(whereSeparator: \.isNewline) {
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        guard !trimmed.hasPrefix("#"), let open = trimmed.firstIndex(of: "\""), let close = trimmed.lastIndex(of: "\""), open < close
        else { continue }
        let body = Array(trimmed[trimmed.index(after: open)..<close].utf8)
        var token = [UInt8](), i = 0
        while i < body.count {
            if body[i] == UInt8(ascii: "\\"), i + 1 < body.count {
                if body[i + 1] == UInt8(ascii: "x"), i + 3 < body.count,
                   let value = UInt8(String(decoding: body[(i + 2)...(i + 3)], as: UTF8.self), radix: 16) {
                    token.append(value)
                    i += 4
                } else {
                    token.append(body[i + 1])
                    i += 2
                }
            } else {
                token.append(body[i])
                i += 1
            }
        }
        if !token.isEmpty { tokens.append(token) }
    }
    return tokens
}
