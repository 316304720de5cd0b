import Foundation
import SoundlocPipeline
import XCTest

/// docs/CONFIG.md documents exactly the keys the loader accepts, with the loader's defaults and examples it takes.
final class ConfigDocumentationTests: XCTestCase {
    static let page = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/CONFIG.md")

    /// One `### `key`` section of the page: its Type, Default and Example lines.
    struct Entry {
        var key: String
        var fields: [String: String] = [:]
    }

    static func entries() throws -> [Entry] {
        let text = try String(contentsOf: page, encoding: .utf8)
        var entries: [Entry] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("### `"), line.hasSuffix("`") {
                entries.append(Entry(key: String(line.dropFirst(5).dropLast())))
            } else if line.hasPrefix("- "), let colon = line.firstIndex(of: ":"), !entries.isEmpty {
                let name = String(line[line.index(line.startIndex, offsetBy: 2)..<colon])
                entries[entries.count - 1].fields[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return entries
    }

    /// The text between the first pair of backticks, if the field starts with one.
    static func literal(_ field: String?) -> String? {
        guard let field, field.hasPrefix("`"), let end = field.dropFirst().firstIndex(of: "`") else { return nil }
        return String(field[field.index(after: field.startIndex)..<end])
    }

    /// A config text setting the dotted `key` to the YAML `value`.
    static func yaml(_ key: String, _ value: String) -> String {
        let parts = key.split(separator: ".")
        return parts.count == 1 ? "\(key): \(value)\n" : "\(parts[0]):\n  \(parts[1]): \(value)\n"
    }

    func testEveryAcceptedKeyIsDocumentedAndNothingElse() throws {
        let documented = try Self.entries().map(\.key)
        let accepted = ApplianceConfig.acceptedKeys
        XCTAssertEqual(Set(accepted).subtracting(documented).sorted(), [], "accepted by the loader but not in docs/CONFIG.md")
        XCTAssertEqual(Set(documented).subtracting(accepted).sorted(), [], "in docs/CONFIG.md but not accepted by the loader")
        XCTAssertEqual(documented.count, Set(documented).count, "a key documented twice")
        XCTAssertTrue(documented.contains("output.max_clients"))
    }

    func testDocumentedDefaultsAreTheLoadersAndExamplesAreAccepted() throws {
        for entry in try Self.entries() {
            for field in ["Type", "Default", "Example"] {
                XCTAssertNotNil(entry.fields[field], "\(entry.key): no '- \(field):' line")
            }
            let example = try XCTUnwrap(Self.literal(entry.fields["Example"]), "\(entry.key): example not in backticks")
            let report = ApplianceConfig.check(Self.yaml(entry.key, example), file: "doc")
            XCTAssertEqual(report.problems.map(\.description), [], "\(entry.key): documented example refused")
            // A literal default, set explicitly, must give the same configuration as leaving the key out.
            if let value = Self.literal(entry.fields["Default"]) {
                let explicit = ApplianceConfig.check(Self.yaml(entry.key, value), file: "doc")
                XCTAssertEqual(explicit.problems.map(\.description), [], "\(entry.key): documented default refused")
                XCTAssertEqual(explicit.config, ApplianceConfig(), "\(entry.key): documented default \(value) is not the loader's")
                XCTAssertNotEqual(report.config, ApplianceConfig(), "\(entry.key): the example equals the default")
            } else {
                XCTAssertEqual(entry.key, "output.socket_group", "\(entry.key): default not given as a literal")
            }
        }
    }

    func testTheFullExampleOnThePageLoads() throws {
        let text = try String(contentsOf: Self.page, encoding: .utf8)
        let start = try XCTUnwrap(text.range(of: "```yaml\n")), end = try XCTUnwrap(text.range(of: "```", range: start.upperBound..<text.endIndex))
        let report = ApplianceConfig.check(String(text[start.upperBound..<end.lowerBound]), file: "CONFIG.md")
        XCTAssertEqual(report.problems.map(\.description), [])
        XCTAssertEqual(Set(report.keysSet).intersection(ApplianceConfig.acceptedKeys).count, ApplianceConfig.acceptedKeys.count,
                       "the page's full example sets every key")
    }
}
