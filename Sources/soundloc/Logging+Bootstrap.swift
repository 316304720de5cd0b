import Foundation
import Logging
import SoundlocBase

/// The executable's logging backend: swift-log's stream handler on stderr, level from SOUNDLOC_LOG_LEVEL,
/// behind `TerminalSafeLogHandler`.
enum Log {
    private static let bootstrapped: Bool = {
        let level = ProcessInfo.processInfo.environment["SOUNDLOC_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return TerminalSafeLogHandler(handler)
        }
        return true
    }()

    /// A logger for `label`, bootstrapping the backend on first use.
    static func logger(_ label: String) -> Logger {
        _ = bootstrapped
        return Logger(label: label)
    }
}

/// Escapes control characters in every message and metadata value before the wrapped handler writes them:
/// log lines quote paths, errors and client text, and a log is often read on a terminal.
struct TerminalSafeLogHandler<Inner: LogHandler>: LogHandler {
    private var inner: Inner
    /// Kept here rather than in `inner`, so it is escaped with the event's own metadata.
    var metadata: Logger.Metadata = [:]

    init(_ inner: Inner) {
        self.inner = inner
        metadata = inner.metadata
        self.inner.metadata = [:]
    }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        var merged = metadata
        if let own = event.metadata { merged.merge(own) { $1 } }
        if let provided = inner.metadataProvider?.get() { merged.merge(provided) { current, _ in current } }
        event.message = "\(TerminalText.escaped(event.message.description))"
        event.metadata = merged.isEmpty ? nil : merged.mapValues(Self.escaped)
        inner.log(event: event)
    }

    static func escaped(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case let .string(text): return .string(TerminalText.escaped(text))
        case let .stringConvertible(item): return .string(TerminalText.escaped(item.description))
        case let .array(items): return .array(items.map(escaped))
        case let .dictionary(items): return .dictionary(items.mapValues(escaped))
        }
    }
}
