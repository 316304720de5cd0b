/// Text from files and peers on its way to a terminal or a log.
public enum TerminalText {
    /// `text` with every control character made visible, so a file or a peer cannot move the cursor,
    /// retitle the window or hide text: C0 controls (U+0000–U+001F, tab and newline included), DEL and the
    /// C1 controls (U+0080–U+009F) become `\u{…}` escapes; a backslash stays as it is. Everything else,
    /// including non-ASCII letters, is kept.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isControl(scalar) {
                out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16))}".unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// Bytes that should be UTF-8 text (a chunk id, a line from a socket): decoded with invalid sequences
    /// replaced (U+FFFD), then escaped.
    public static func escaped<Bytes: Collection>(bytes: Bytes) -> String where Bytes.Element == UInt8 {
        escaped(String(decoding: bytes, as: UTF8.self))
    }

    /// `escaped` for text of several lines: the `\n` between lines stays, every other control is escaped.
    public static func escapedLines(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { escaped(String($0)) }.joined(separator: "\n")
    }

    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}
