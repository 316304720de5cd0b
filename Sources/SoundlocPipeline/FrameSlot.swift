import Foundation

/// A mailbox holding only the newest item: a producer that outpaces the consumer overwrites (and counts)
/// what was not taken, so nothing queues without bound.
public final class LatestSlot<Item: Sendable>: @unchecked Sendable {  // unchecked: item, closed and dropped are guarded by `condition`
    private let condition = NSCondition()
    private var item: Item?
    private var closed = false
    /// Items overwritten before anyone took them.
    private var dropped = 0

    public init() {}

    /// Stores `newItem`, replacing (and counting) an untaken one.
    public func put(_ newItem: Item) {
        condition.lock()
        if item != nil { dropped += 1 }
        item = newItem
        condition.signal()
        condition.unlock()
    }

    /// Waits up to `timeout` seconds for an item; nil on timeout or once closed and empty.
    public func take(timeout: TimeInterval) -> Item? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while item == nil && !closed {
            if !condition.wait(until: deadline) { break }
        }
        defer { item = nil }
        return item
    }

    /// Wakes waiting consumers; later takes return what is left, then nil.
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// True once `close()` was called and the last item was taken.
    public var isClosedAndEmpty: Bool {
        condition.lock(); defer { condition.unlock() }
        return closed && item == nil
    }

    public var droppedCount: Int {
        condition.lock(); defer { condition.unlock() }
        return dropped
    }
}
