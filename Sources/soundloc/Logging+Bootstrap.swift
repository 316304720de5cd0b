import Foundation
import Logging

/// The executable's logging backend: swift-log's stream handler on stderr, level from SOUNDLOC_LOG_LEVEL.
enum Log {
    private static let bootstrapped: Bool = {
        let level = ProcessInfo.processInfo.environment["SOUNDLOC_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return true
    }()

    /// A logger for `label`, bootstrapping the backend on first use.
    static func logger(_ label: String) -> Logger {
        _ = bootstrapped
        return Logger(label: label)
    }
}
