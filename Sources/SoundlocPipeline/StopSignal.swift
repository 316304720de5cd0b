import Dispatch
import Foundation
import Logging

/// A stop request: set by a signal or by code, noticed by checking `requested`, by waking from `sleep`, or through
/// the callback given to `install` (or `whenRequested`). Signal handlers run on a Dispatch global-queue thread.
public final class StopSignal: @unchecked Sendable {  // unchecked: flag, sources, numbers and onRequest are guarded by `lock`
    /// The signals that end a long-running command cleanly: Ctrl-C, `kill`/systemd, and a closed terminal.
    public static let shutdown = [SIGINT, SIGTERM, SIGHUP]

    private let lock = NSCondition()  // broadcast when the flag is set, for `sleep`
    private var flag = false
    private var sources: [DispatchSourceSignal] = []
    private var numbers: [Int32] = []
    private var onRequest: (@Sendable () -> Void)?

    public init() {}

    public var requested: Bool { lock.withLock { flag } }

    public func request() {
        let action: (@Sendable () -> Void)? = lock.withLock {
            defer { flag = true; lock.broadcast() }
            return flag ? nil : onRequest  // the callback runs once, however many signals come
        }
        action?()
    }

    /// Calls `action` on the first stop request, or at once when one came already: for wiring that can only be made
    /// after `install` (the thing to stop does not exist yet when the signals must already be caught).
    public func whenRequested(_ action: @escaping @Sendable () -> Void) {
        let already: Bool = lock.withLock {
            if !flag { onRequest = action }
            return flag
        }
        if already { action() }
    }

    /// Sleeps up to `seconds`, waking early when a stop is requested.
    public func sleep(_ seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        lock.withLock {
            while !flag && lock.wait(until: deadline) {}
        }
    }

    /// Turns `signals` into a stop request (and a call of `onRequest`) instead of their default action,
    /// which would end the process on the spot: no goodbye to socket clients, the socket file left behind.
    public static func install(_ signals: [Int32], logger: Logger? = nil,
                        onRequest: (@Sendable () -> Void)? = nil) -> StopSignal {
        let interrupt = StopSignal()
        interrupt.onRequest = onRequest
        interrupt.numbers = signals
        for number in signals {
            signal(number, SIG_IGN)  // the dispatch source gets it instead of the default "terminate"
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                logger?.notice("stopping on signal \(number)")
                interrupt.request()
            }
            source.resume()
            interrupt.sources.append(source)
        }
        return interrupt
    }

    /// Gives the signals their default action back (after the clean-up they protected is done).
    public func uninstall() {
        let (sources, numbers): ([DispatchSourceSignal], [Int32]) = lock.withLock {
            defer { self.sources = []; self.numbers = [] }
            return (self.sources, self.numbers)
        }
        sources.forEach { $0.cancel() }
        for number in numbers { signal(number, SIG_DFL) }
    }
}
