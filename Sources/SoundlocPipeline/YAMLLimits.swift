// libyaml as Yams builds it: its event parser is an explicit state machine (no recursion, no alias
// expansion), so walking its events is safe on any input. Yams's own node builder recurses once per
// nesting level and its constructor copies every alias, which is what the limits here protect.
import CYaml
import Foundation

/// Bounds a YAML text must respect before Yams turns it into nodes: nesting depth, alias uses, the number of
/// nodes the document would have once every alias is expanded ("billion laughs"), and plain keys: Yams's
/// constructor force-unwraps every mapping key as a string, so a list, mapping or alias as a key
/// (`? [a]\n: b`) would trap it (found by fuzzing, Tests/Fuzz/config/crash-complex-key.yaml).
struct YAMLLimits {
    var maxDepth = 32
    var maxAliases = 64
    var maxExpandedNodes = 10_000

    /// Why a text was refused; `line` is 1-based.
    enum Violation: Error, Equatable, CustomStringConvertible {
        case tooDeep(limit: Int, line: Int)
        case tooManyAliases(limit: Int, line: Int)
        case expandsTooFar(limit: Int, line: Int)
        case complexKey(line: Int)

        var description: String {
            switch self {
            case let .tooDeep(limit, line):
                return "nested deeper than \(limit) levels (line \(line)); a board config needs 2"
            case let .tooManyAliases(limit, line):
                return "more than \(limit) aliases (*name) (line \(line))"
            case let .expandsTooFar(limit, line):
                return "its aliases expand to more than \(limit) values (line \(line)); a board config holds a few dozen"
            case let .complexKey(line):
                return "a key that is a list, a mapping or an alias (line \(line)); a board config's keys are plain names"
            }
        }
    }

    /// Walks the event stream of `text` once and throws the first limit it crosses. Syntax errors are not
    /// reported here: everything before one was within the limits, and Yams names the error itself.
    func check(_ text: String) throws {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return }
        defer { yaml_parser_delete(&parser) }
        var bytes = Array(text.utf8)
        try bytes.withUnsafeMutableBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var walk = Walk(limits: self)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT { return }
                try walk.step(event)
            }
        }
    }

    /// Open collections and what the document expands to so far.
    private struct Walk {
        let limits: YAMLLimits
        /// Per open collection: its anchor, the expanded size of its children so far, whether it is a mapping
        /// and how many nodes it holds so far (in a mapping, keys and values alternate: even counts are keys).
        var open: [(anchor: String?, size: Int, isMapping: Bool, nodes: Int)] = []
        /// Expanded size of every anchored node seen, for the aliases that repeat it.
        var anchored: [String: Int] = [:]
        var aliases = 0
        var total = 0

        init(limits: YAMLLimits) { self.limits = limits }

        mutating func step(_ event: yaml_event_t) throws {
            let line = Int(event.start_mark.line) + 1
            switch event.type {
            case YAML_SCALAR_EVENT:
                try enter(isScalar: true, line: line)
                try add(1, anchor: name(event.data.scalar.anchor), line: line)
            case YAML_ALIAS_EVENT:
                try enter(isScalar: false, line: line)
                aliases += 1
                guard aliases <= limits.maxAliases else { throw Violation.tooManyAliases(limit: limits.maxAliases, line: line) }
                try add(name(event.data.alias.anchor).flatMap { anchored[$0] } ?? 1, anchor: nil, line: line)
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                let anchor = event.type == YAML_SEQUENCE_START_EVENT
                    ? name(event.data.sequence_start.anchor) : name(event.data.mapping_start.anchor)
                guard open.count < limits.maxDepth else { throw Violation.tooDeep(limit: limits.maxDepth, line: line) }
                try enter(isScalar: false, line: line)
                try count(1, line: line)
                open.append((anchor, 1, event.type == YAML_MAPPING_START_EVENT, 0))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let closed = open.popLast() else { return }
                if let anchor = closed.anchor { anchored[anchor] = closed.size }
                if !open.isEmpty { open[open.count - 1].size = saturated(open[open.count - 1].size, closed.size) }
            default:
                break  // stream and document boundaries
            }
        }

        /// A node starts inside the innermost open collection; in a mapping's key position it must be a scalar.
        private mutating func enter(isScalar: Bool, line: Int) throws {
            guard let parent = open.indices.last else { return }
            if open[parent].isMapping && open[parent].nodes % 2 == 0 && !isScalar { throw Violation.complexKey(line: line) }
            open[parent].nodes += 1
        }

        /// A node of expanded size `size` inside the innermost open collection.
        private mutating func add(_ size: Int, anchor: String?, line: Int) throws {
            try count(size, line: line)
            if let anchor { anchored[anchor] = size }
            if !open.isEmpty { open[open.count - 1].size = saturated(open[open.count - 1].size, size) }
        }

        private mutating func count(_ size: Int, line: Int) throws {
            total = saturated(total, size)
            guard total <= limits.maxExpandedNodes else { throw Violation.expandsTooFar(limit: limits.maxExpandedNodes, line: line) }
        }

        private func saturated(_ a: Int, _ b: Int) -> Int {
            let (sum, overflow) = a.addingReportingOverflow(b)
            return overflow ? Int.max : sum
        }

        private func name(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            pointer.map { String(cString: $0) }
        }
    }
}
