import Foundation
import Logging

/// Writes the messages the socket carries to a file or to standard output, one JSON object per line (NDJSON), for
/// logging pipelines: the VERSION banner first, then every FRAME and STATUS as it is published, and at the end the
/// `STATUS server stopped` a socket client gets at a clean shutdown (a record without it was cut short). The lines
/// are byte for byte what a socket client with the same `maps` setting receives, but for `publish_ns` and `time`.
///
/// A writer thread does the writing, so a slow disk or a slow reader of a pipe never stalls the pipeline: a FRAME
/// that finds more than `highWaterMark` bytes waiting is dropped and counted in the next FRAME's
/// `dropped_messages`, as for a socket client. The banner and STATUS lines are never dropped. When the output
/// fails (disk full, the reader of the pipe gone) recording stops and `close()` says why; the run goes on.
public final class NDJSONRecorder: @unchecked Sendable {  // unchecked: the queue and its counters and flags are guarded by `condition`; the rest is immutable
    /// The file, or `-` for standard output.
    public let path: String
    public let maps: Bool
    public let highWaterMark: Int
    private let classes: [String]
    private let fd: Int32
    private let ownsDescriptor: Bool
    private let logger: Logger

    private let condition = NSCondition()  // guards everything below
    private var queue: [[UInt8]] = []
    private var queuedBytes = 0
    private var dropped: UInt64 = 0
    private var closing = false
    private var failure: String?
    private var writerDone = false
    private var closeCalled = false

    /// Opens (creating or truncating) `path`, or takes standard output for `-`, and writes the banner.
    public init(path: String, banner: VersionMessage, maps: Bool = false, highWaterMark: Int = 1 << 20, logger: Logger) throws {
        self.path = path
        self.maps = maps
        self.highWaterMark = highWaterMark
        self.classes = banner.classes
        self.logger = logger
        if path == "-" {
            fd = STDOUT_FILENO
            ownsDescriptor = false
        } else {
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw RecorderError(description: "cannot write the record \(path): \(String(cString: strerror(errno)))")
            }
            ownsDescriptor = true
        }
        // A reader of the pipe that goes away must end the recording, not the process.
        signal(SIGPIPE, SIG_IGN)
        enqueue(ProtocolWriter.line(banner), droppable: false)
        let writer = Thread { [self] in writeLoop() }
        writer.name = "soundloc-record"
        writer.start()
    }

    /// FRAMEs dropped because the output did not keep up.
    public var droppedMessages: UInt64 { condition.withLock { dropped } }

    public func publish(_ report: FrameReport) {
        let (publishNanos, time) = ProtocolClock.publishTimes(captureNanos: report.captureNanos)
        let droppedSoFar = condition.withLock { dropped }
        let line = ProtocolWriter.frameLine(report, classes: classes, publishNanos: publishNanos, time: time, maps: maps,
                                            droppedMessages: droppedSoFar)
        enqueue(line, droppable: true)
    }

    public func publish(status: StatusMessage) {
        var status = status
        status.stamp()
        enqueue(ProtocolWriter.line(status), droppable: false)
    }

    /// Writes the goodbye, waits until everything queued is written and closes the output. Returns why the recording
    /// stopped early, if it did. Further calls do nothing.
    @discardableResult
    public func close() -> String? {
        let first: Bool = condition.withLock {
            defer { closeCalled = true }
            return !closeCalled
        }
        guard first else { return condition.withLock { failure } }
        var goodbye = StatusMessage(device: .server, state: .stopped, message: "recording ends")
        goodbye.stamp()
        enqueue(ProtocolWriter.line(goodbye), droppable: false)
        condition.withLock {
            closing = true
            condition.broadcast()
            while !writerDone { condition.wait() }
        }
        if ownsDescriptor { Glibc.close(fd) }
        return condition.withLock { failure }
    }

    private func enqueue(_ line: [UInt8], droppable: Bool) {
        condition.withLock {
            guard !closing, failure == nil else { return }
            if droppable, queuedBytes > 0, queuedBytes + line.count > highWaterMark {
                dropped += 1
                return
            }
            queue.append(line)
            queuedBytes += line.count
            condition.broadcast()
        }
    }

    private func writeLoop() {
        while true {
            let batch: [[UInt8]]? = condition.withLock {
                while queue.isEmpty && !closing { condition.wait() }
                if queue.isEmpty { return nil }
                defer { queue.removeAll(keepingCapacity: true) }
                return queue
            }
            guard let batch else { break }
            var error: String?
            for line in batch where error == nil { error = writeAll(line) }
            condition.withLock {
                queuedBytes -= batch.reduce(0) { $0 + $1.count }
                if let error, failure == nil {
                    failure = error
                    queue.removeAll()
                    queuedBytes = 0
                }
            }
            if let error { logger.warning("recording stopped", metadata: ["record": "\(path)", "error": "\(error)"]) }
        }
        condition.withLock {
            writerDone = true
            condition.broadcast()
        }
    }

    /// Writes every byte of `line`; the error, if the output refuses them.
    private func writeAll(_ line: [UInt8]) -> String? {
        var offset = 0
        while offset < line.count {
            let n = line[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return "cannot write \(path == "-" ? "standard output" : path): \(String(cString: strerror(errno)))"
            }
            offset += n
        }
        return nil
    }
}

/// Why a record could not be started.
public struct RecorderError: Error, CustomStringConvertible {
    public var description: String
}
