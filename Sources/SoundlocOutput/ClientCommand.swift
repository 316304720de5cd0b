import Foundation

/// A command line a client sent, once validated.
public enum ClientCommand: Sendable, Equatable {
    case watch(enable: Bool?, maps: Bool?)
    case poll

    /// Why a client line was refused; the text goes back in an ERROR message.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// A command object's fields, named as `WatchMessage` names them (the protocol's one spelling).
    private struct Fields: Decodable {
        var `class`: String
        var enable: Bool?
        var maps: Bool?
        init(from decoder: Decoder) throws {
            let fields = try decoder.container(keyedBy: WatchMessage.CodingKeys.self)
            `class` = try fields.decode(String.self, forKey: .kind)
            enable = try fields.decodeIfPresent(Bool.self, forKey: .enable)
            maps = try fields.decodeIfPresent(Bool.self, forKey: .maps)
        }
    }

    /// gpsd's WATCH fields that mean something here (docs/PROTOCOL.md); the others are ignored. `class`, `enable` and
    /// `maps` are ours too (`WatchMessage`'s names); `json` and `raw` are gpsd's alone.
    private struct GpsdWatch: Decodable {
        var `class`: String?
        var enable: Bool?
        var json: Bool?
        var maps: Bool?
        var raw: Level?

        enum GpsdKeys: String, CodingKey { case json, raw }

        init(from decoder: Decoder) throws {
            let ours = try decoder.container(keyedBy: WatchMessage.CodingKeys.self)
            let gpsd = try decoder.container(keyedBy: GpsdKeys.self)
            `class` = try ours.decodeIfPresent(String.self, forKey: .kind)
            enable = try ours.decodeIfPresent(Bool.self, forKey: .enable)
            json = try gpsd.decodeIfPresent(Bool.self, forKey: .json)
            maps = try ours.decodeIfPresent(Bool.self, forKey: .maps)
            raw = try gpsd.decodeIfPresent(Level.self, forKey: .raw)
        }

        /// gpsd's `raw` is a level (0, 1, 2); a boolean is taken too.
        struct Level: Decodable {
            var on: Bool
            init(from decoder: Decoder) throws {
                let value = try decoder.singleValueContainer()
                if let flag = try? value.decode(Bool.self) { on = flag } else { on = try value.decode(Int.self) > 0 }
            }
        }
    }

    /// Parses one line without its newline; unknown extra fields are ignored for forward compatibility. Besides
    /// the JSON objects, gpsd's forms are read: `?WATCH={...};`, `?WATCH;` and `?POLL;` (the `;` may be left out).
    public static func parse(_ line: some Collection<UInt8>) throws -> ClientCommand {
        if line.first == UInt8(ascii: "?") { return try parseGpsd(Array(line)) }
        let data = Data(line)
        guard (try? JSONSerialization.jsonObject(with: data, options: [])) is [String: Any] else {
            throw Invalid(description: "expected one JSON object per line, e.g. {\"class\":\"WATCH\",\"maps\":true}")
        }
        let fields: Fields
        do { fields = try JSONDecoder().decode(Fields.self, from: data) } catch let DecodingError.keyNotFound(key, _) {
            throw Invalid(description: "missing field \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(_, context) {
            let key = context.codingPath.last?.stringValue ?? "?"
            throw Invalid(description: key == WatchMessage.CodingKeys.kind.stringValue ? "\"\(key)\" must be a string" : "\"\(key)\" must be true or false")
        } catch DecodingError.valueNotFound(_, let context) {
            throw Invalid(description: "\"\(context.codingPath.last?.stringValue ?? "?")\" must not be null")
        } catch {
            throw Invalid(description: "cannot read command: \(error)")
        }
        switch MessageClass(rawValue: fields.class) {
        case .watch: return .watch(enable: fields.enable, maps: fields.maps)
        case .poll: return .poll
        default: throw Invalid(description: "unknown command class \"\(fields.class)\" (expected WATCH or POLL)")
        }
    }

    /// `?NAME;` or `?NAME={json};`, one command per line.
    private static func parseGpsd(_ bytes: [UInt8]) throws -> ClientCommand {
        var body = bytes.dropFirst()
        if body.last == UInt8(ascii: ";") { body = body.dropLast() }
        let equals = body.firstIndex(of: UInt8(ascii: "="))
        let name = String(decoding: body[..<(equals ?? body.endIndex)], as: UTF8.self)
        let argument = equals.map { body[body.index(after: $0)...] }
        switch MessageClass(rawValue: name) {
        case .poll:
            return .poll
        case .watch:
            // `?WATCH;` asks for the settings in force: the answer to a WATCH that changes nothing.
            guard let argument else { return .watch(enable: nil, maps: nil) }
            let example = "e.g. ?WATCH={\"enable\":true,\"json\":true};"
            guard (try? JSONSerialization.jsonObject(with: Data(argument), options: [])) is [String: Any] else {
                throw Invalid(description: "?WATCH= takes one JSON object and an optional ';', one command per line (\(example))")
            }
            let fields: GpsdWatch
            do { fields = try JSONDecoder().decode(GpsdWatch.self, from: Data(argument)) } catch let DecodingError.typeMismatch(_, context) {
                let key = context.codingPath.first?.stringValue ?? "?"
                switch key {
                case WatchMessage.CodingKeys.kind.stringValue: throw Invalid(description: "\"\(key)\" must be a string")
                case GpsdWatch.GpsdKeys.raw.stringValue: throw Invalid(description: "\"\(key)\" must be 0, 1, 2, true or false")
                default: throw Invalid(description: "\"\(key)\" must be true or false")
                }
            } catch DecodingError.valueNotFound(_, let context) {
                throw Invalid(description: "\"\(context.codingPath.first?.stringValue ?? "?")\" must not be null")
            } catch {
                throw Invalid(description: "cannot read ?WATCH: \(error)")
            }
            if let className = fields.class, className != MessageClass.watch.rawValue {
                throw Invalid(description: "?WATCH= takes a WATCH object, not \"\(className)\"")
            }
            // As in gpsd, an object without "enable" turns watching on, and "json":false leaves nothing to send.
            let enable = fields.json == false ? false : fields.enable ?? true
            return .watch(enable: enable, maps: fields.maps ?? fields.raw.map(\.on))
        default:
            throw Invalid(description: "unknown command ?\(name) (expected ?WATCH or ?POLL, or a JSON object such as {\"class\":\"WATCH\"})")
        }
    }
}
