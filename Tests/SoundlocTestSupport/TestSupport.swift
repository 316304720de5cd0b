import Foundation

/// SplitMix64: a small seeded generator so every test input is reproducible.
public struct SeededRandom: RandomNumberGenerator {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    public mutating func float() -> Float { Float(Double(next() >> 11) / Double(1 << 53)) * 2 - 1 }
    public mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in float() * scale } }
    public mutating func uniform(_ range: ClosedRange<Double> = 0...1) -> Double { Double.random(in: range, using: &self) }
    public mutating func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &self) }
}

/// Runs a program with stdout and stderr merged (as a person at the console sees them) and stdin closed.
public func runMerged(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                      directory: URL? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    if let directory { process.currentDirectoryURL = directory }
    process.standardInput = FileHandle.nullDevice
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// How a call run under `runWithHangGuard` ended.
public enum GuardedOutcome {
    case returned
    case threw(Error)
    /// Still running after the guard's time: the call hangs.
    case hung

    /// The error thrown, if the call threw.
    public var error: Error? {
        if case let .threw(error) = self { return error }
        return nil
    }
}

/// Runs `body` on its own thread and waits for it at most `seconds`. This is a hang guard, not a speed
/// limit: keep `seconds` generous (tens of seconds), so only a call that would never return fails. After a
/// hang, `unblock` is called (e.g. to open the other end of a FIFO) so the stuck thread can finish.
public func runWithHangGuard(seconds: Double = 20, unblock: () -> Void = {},
                             _ body: @escaping @Sendable () throws -> Void) -> GuardedOutcome {
    final class Box: @unchecked Sendable {  // unchecked: outcome is written by the body thread before `done` is signalled and read after
        let done = DispatchSemaphore(value: 0)
        var outcome = GuardedOutcome.hung
    }
    let box = Box()
    Thread.detachNewThread {
        do {
            try body()
            box.outcome = .returned
        } catch {
            box.outcome = .threw(error)
        }
        box.done.signal()
    }
    if box.done.wait(timeout: .now() + seconds) == .success { return box.outcome }
    unblock()
    _ = box.done.wait(timeout: .now() + 5)
    return .hung
}

/// Makes a FIFO (named pipe) at `path`; nobody writes to it, so a plain open() for reading would block.
public func makeFIFO(_ path: String) throws {
    guard mkfifo(path, 0o600) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
}

/// Releases a thread stuck opening the FIFO at `path` (for reading or writing) by opening the other end.
public func unblockFIFO(_ path: String) {
    for flags in [O_WRONLY | O_NONBLOCK, O_RDONLY | O_NONBLOCK] {
        let fd = open(path, flags)
        if fd >= 0 { close(fd) }
    }
}
