import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The headless output: a UNIX stream socket speaking the protocol of docs/PROTOCOL.md to any number of clients.
///
/// `publish(_:)` is meant for the pipeline thread: it encodes the frame once per variant (with and without
/// maps) and hands the bytes to the event loop; it never waits for a client. Each client has a bounded
/// outbound budget: while its queued bytes are above the high water mark it gets no FRAMEs (they are counted
/// in its `dropped_messages`) until they fall below the low water mark. Replies and STATUS lines are never
/// dropped, but a client that lets them pile up past `hardLimit` is disconnected.
///
/// Threads: every client, the client table, the last frame, the devices' states and every counter belong to the
/// event loop (`ServerCore`, reachable only through a `NIOLoopBoundBox`); other threads hand work to it with
/// `loop.execute` and read statistics with `loop.submit { }.wait()`. What crosses is immutable (encoded bytes) or
/// atomic (`FlowControl`); `gate` orders hand-offs against shutdown and is never taken on the loop.
public final class SocketServer: Sendable {
    public struct Configuration: Sendable {
        public var path: String
        /// Mode of the socket file (0660: owner and group may connect).
        public var mode: mode_t
        /// Group of the socket file, by name or number; nil keeps the process's group.
        public var group: String?
        /// Queued bytes per client below which FRAMEs flow again.
        public var lowWaterMark: Int
        /// Queued bytes per client above which FRAMEs are dropped for it.
        public var highWaterMark: Int
        /// Queued bytes per client past which it is disconnected.
        public var hardLimit: Int
        /// Clients served at once; one more gets an ERROR line and is closed. Each client costs a queue of up
        /// to `hardLimit` bytes and a share of every publish, so the cap bounds both.
        public var maxClients: Int

        /// The default `maxClients`: far more than a board's viewers, far fewer than would slow publishing.
        public static let defaultMaxClients = 64

        public init(path: String, mode: mode_t = 0o660, group: String? = nil,
                    lowWaterMark: Int = 64 * 1024, highWaterMark: Int = 256 * 1024, hardLimit: Int = 1024 * 1024,
                    maxClients: Int = defaultMaxClients) {
            self.path = path
            self.mode = mode
            self.group = group
            self.lowWaterMark = lowWaterMark
            self.highWaterMark = max(highWaterMark, lowWaterMark + 1)
            self.hardLimit = max(hardLimit, self.highWaterMark)
            self.maxClients = max(1, maxClients)
        }
    }

    /// One connected client, as seen by the server (for tests and diagnostics).
    public struct ClientStatistics: Sendable, Equatable {
        public var id: Int
        public var watching: Bool
        public var maps: Bool
        /// FRAMEs not delivered to this client because it was not reading fast enough.
        public var droppedMessages: UInt64
        /// Bytes handed to the socket layer and not yet written out.
        public var queuedBytes: Int
        public var framesSent: UInt64
    }

    public let configuration: Configuration
    private let classes: [String]
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let loop: EventLoop
    private let core: NIOLoopBoundBox<ServerCore>
    private let flow: FlowControl
    private let liveClients: LiveCount
    private let serverChannel: Channel
    private let fileIdentity: SocketPath.FileIdentity?
    /// Hand-offs to the loop and shutdown, in one order: nothing is handed over once shutdown began, so nothing
    /// is scheduled on a loop that is shutting down. Publishers, statistics readers and shutdown take it; the loop never does.
    private let gate = Mutex(Gate())

    private struct Gate {
        enum Phase { case serving, closing, closed(ServerCore.Counts) }
        var phase = Phase.serving
        /// FRAMEs the publisher dropped (loop behind) since the last hand-off; the next hand-off carries the
        /// count to the loop, which adds it to every watching client's `dropped_messages` before anything else.
        var skipped = 0
    }

    /// Binds the socket at `configuration.path` and starts serving; `banner` is sent to every client on connect.
    /// With `listening` (a socket systemd passed, see `SocketActivation`) it serves that one instead: its path,
    /// mode and group are the `.socket` unit's, and the file is left to systemd at shutdown.
    public static func start(configuration: Configuration, banner: VersionMessage, logger: Logger,
                             listening: Int32? = nil) throws -> SocketServer {
        var logger = logger
        logger[metadataKey: "socket"] = "\(configuration.path)"
        // One thread is plenty at 25 Hz and keeps every client on the same loop, so a publish is one task.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let flow = FlowControl()
        let live = LiveCount()
        let core = NIOLoopBoundBox.makeBoxSendingValue(
            ServerCore(configuration: configuration, banner: banner, logger: logger, loop: loop, flow: flow, live: live),
            eventLoop: loop)
        let bootstrap = makeBootstrap(group: group, configuration: configuration, core: core)
        do {
            let (channel, identity) = try listening.map { (try serve(bootstrap, inherited: $0, logger: logger), nil) }
                ?? bind(bootstrap, configuration: configuration, logger: logger)
            return SocketServer(configuration: configuration, classes: banner.classes, logger: logger, group: group,
                                core: core, flow: flow, live: live, channel: channel, fileIdentity: identity)
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
    }

    private init(configuration: Configuration, classes: [String], logger: Logger, group: MultiThreadedEventLoopGroup,
                 core: NIOLoopBoundBox<ServerCore>, flow: FlowControl, live: LiveCount, channel: Channel,
                 fileIdentity: SocketPath.FileIdentity?) {
        self.configuration = configuration
        self.classes = classes
        self.logger = logger
        self.group = group
        self.loop = core.eventLoop
        self.core = core
        self.flow = flow
        self.liveClients = live
        self.serverChannel = channel
        self.fileIdentity = fileIdentity
    }

    deinit {
        if case .serving = gate.withLock({ $0.phase }) { logger.warning("SocketServer released without shutdown(); the socket file stays") }
    }

    private static func makeBootstrap(group: MultiThreadedEventLoopGroup, configuration: Configuration,
                                      core: NIOLoopBoundBox<ServerCore>) -> ServerBootstrap {
        let water = ChannelOptions.Types.WriteBufferWaterMark(low: configuration.lowWaterMark, high: configuration.highWaterMark)
        return ServerBootstrap(group: group)
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: water)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture(withResultOf: {
                    try channel.pipeline.syncOperations.addHandler(ClientHandler(core: core.value))
                })
            }
    }

    private static func serve(_ bootstrap: ServerBootstrap, inherited fd: Int32, logger: Logger) throws -> Channel {
        try SocketActivation.checkListeningUnixStream(fd)
        let channel: Channel
        do {
            channel = try bootstrap.withBoundSocket(fd).wait()
        } catch {
            throw SocketServerError.bindFailed(path: SocketActivation.boundPath(fd), reason: "\(error)")
        }
        logger.info("serving the socket systemd passed", metadata: ["path": "\(SocketActivation.boundPath(fd))"])
        return channel
    }

    private static func bind(_ bootstrap: ServerBootstrap, configuration: Configuration,
                             logger: Logger) throws -> (Channel, SocketPath.FileIdentity?) {
        let path = configuration.path
        let gid = try configuration.group.map(SocketPath.resolveGroup)  // before bind: a bad group leaves no file
        if try SocketPath.prepare(path) { logger.warning("replaced a stale socket left by an earlier run") }
        // We bind ourselves rather than let NIO do it: permissions are in place before listen() (no window
        // where the umask's mode applies), and NIO's own bind would unlink the path on close even if another
        // server has taken it over since.
        let fd = try SocketPath.bind(path)
        let fileIdentity = SocketPath.identity(path)
        do {
            try SocketPath.applyPermissions(path, mode: configuration.mode, group: gid, groupName: configuration.group)
        } catch {
            close(fd)
            SocketPath.remove(path, ifStill: fileIdentity)
            throw error
        }
        let channel: Channel
        do {
            channel = try bootstrap.withBoundSocket(fd).wait()
        } catch {
            SocketPath.remove(path, ifStill: fileIdentity)
            throw SocketServerError.bindFailed(path: path, reason: "\(error)")
        }
        logger.info("serving", metadata: ["mode": "\(String(configuration.mode, radix: 8))",
                                          "group": "\(configuration.group ?? "-")"])
        return (channel, fileIdentity)
    }

    // MARK: Publishing

    /// Sends one processed frame to every watching client; cheap, never blocks on clients. Call from one thread.
    ///
    /// The frame is encoded here (the maps only while a client that can take them wants them) and handed to
    /// the loop, which decides per client. While the FRAMEs already handed over and not yet run come to more
    /// than the high water mark (the loop is behind), this one is dropped here and counted for every watching
    /// client; so is its maps part alone when the maps in flight do: memory stays bounded however far the loop
    /// falls behind.
    public func publish(_ report: FrameReport) {
        let (publishNanos, time) = ProtocolClock.publishTimes(captureNanos: report.captureNanos)
        let head = ByteBuffer(bytes: ProtocolWriter.frameHead(report, classes: classes, publishNanos: publishNanos, time: time))
        let budget = configuration.highWaterMark
        guard flow.pendingFrameBytes.reserve(head.readableBytes, budget: budget) else {
            gate.withLock { $0.skipped += 1 }
            return
        }
        var maps = HandedFrame.Maps.absent
        var mapBytes = 0
        if let reportMaps = report.maps {
            if !flow.mapsWanted.load(ordering: .acquiring) {
                maps = .notEncoded
            } else if flow.pendingMapBytes.load(ordering: .relaxed) > budget {
                maps = .overBudget
            } else if let bytes = ProtocolWriter.frameMaps(reportMaps, classes: classes) {
                mapBytes = bytes.count
                flow.pendingMapBytes.wrappingAdd(mapBytes, ordering: .relaxed)
                maps = .encoded(ByteBuffer(bytes: bytes))
            } else {
                maps = .unencodable
                if !flow.warnedAboutMaps.exchange(true, ordering: .relaxed) {
                    logger.warning("maps do not match the banner's \(classes.count) classes of 14×14; frames go out without them")
                }
            }
        }
        let frame = HandedFrame(report: report, head: head, maps: maps, frameBytes: head.readableBytes, mapBytes: mapBytes)
        if !handOff({ $0.deliver(frame) }) { flow.release(frame) }
    }

    /// Sends a STATUS line to every client (watching or not); `time` is filled when empty. The last one of each
    /// device (not `server`) is kept and sent to every client that connects later, right after the banner.
    public func publish(status: StatusMessage) {
        var status = status
        status.stamp()
        let line = ByteBuffer(bytes: ProtocolWriter.line(status))
        let device = status.device
        handOff { $0.broadcast(line, from: device) }
    }

    /// Runs `work` on the loop, after the FRAMEs dropped since the last hand-off are counted; false (and nothing
    /// runs) once shutdown has begun.
    @discardableResult
    private func handOff(_ work: @escaping @Sendable (ServerCore) -> Void) -> Bool {
        gate.withLock { gate in
            guard case .serving = gate.phase else { return false }
            loop.execute(loopTask(&gate, work))
            return true
        }
    }

    /// `work` as a task for the loop that first counts the FRAMEs dropped since the last hand-off (taken from
    /// `gate`, so build it under the gate's lock and hand it over before releasing it: tasks keep their order).
    private func loopTask<T>(_ gate: inout Gate, _ work: @escaping @Sendable (ServerCore) -> T) -> @Sendable () -> T {
        let skipped = gate.skipped
        gate.skipped = 0
        let core = self.core
        return {
            let server = core.value
            server.countSkipped(skipped)
            return work(server)
        }
    }

    // MARK: Introspection

    /// Clients connected now.
    public var connectedClients: Int { inspect({ $0.clients.count }, closed: { _ in 0 }) }

    /// Connections admitted and refused (over `maxClients`) since the server started.
    public var connectionCounts: (admitted: Int, refused: Int) {
        let counts = inspect({ $0.counts }, closed: { $0 })
        return (counts.admitted, counts.refused)
    }

    /// Per-client state objects still in memory. Once clients are gone this returns to 0: anything else is a
    /// leak (a closure or a table still holding a client).
    public var retainedClientObjects: Int { liveClients.value }

    public func clientStatistics() -> [ClientStatistics] { inspect({ $0.statistics() }, closed: { _ in [] }) }

    /// Reads the loop's state on the loop and waits for the answer; after shutdown, `closed` of the final counts.
    /// Never call it on the loop (it would wait for itself).
    private func inspect<T: Sendable>(_ read: @escaping @Sendable (ServerCore) -> T, closed: (ServerCore.Counts) -> T) -> T {
        precondition(!loop.inEventLoop, "SocketServer's statistics wait for its event loop; do not read them on it")
        let (later, final): (EventLoopFuture<T>?, ServerCore.Counts?) = gate.withLock { gate in
            if case let .closed(counts) = gate.phase { return (nil, counts) }
            // Still serving or closing: the loop runs until shutdown has stored the final counts, after this task.
            return (loop.submit(loopTask(&gate, read)), nil)
        }
        if let final { return closed(final) }
        return try! later!.wait()  // cannot fail: submit fails only on a loop already shut down, and this one is not
    }

    // MARK: Shutdown

    /// Says goodbye to clients (STATUS server stopped), closes everything and removes the socket file.
    /// Blocks until done; do not call it from the server's own event loop.
    public func shutdown() {
        precondition(!loop.inEventLoop, "SocketServer.shutdown() waits for its event loop; do not call it on it")
        let closing: EventLoopFuture<ServerCore.Counts>? = gate.withLock { gate in
            guard case .serving = gate.phase else { return nil }
            gate.phase = .closing
            let listener = serverChannel
            return loop.flatSubmit(loopTask(&gate) { $0.close(listener: listener) })
        }
        guard let closing else { return }
        let counts = (try? closing.wait()) ?? ServerCore.Counts(admitted: 0, refused: 0)
        SocketPath.remove(configuration.path, ifStill: fileIdentity)
        gate.withLock { $0.phase = .closed(counts) }
        do { try group.syncShutdownGracefully() } catch { logger.warning("event loop shutdown: \(error)") }
        logger.info("stopped")
    }
}

/// A FRAME on its way from the publisher to the loop.
private struct HandedFrame: Sendable {
    enum Maps: Sendable {
        /// The report has none.
        case absent
        case encoded(ByteBuffer)
        /// Nobody wanted them when it was published; the loop encodes them if a client wants them by now.
        case notEncoded
        /// They do not match the banner's classes: FRAMEs go out without them.
        case unencodable
        /// Maps already in flight came to more than the high water mark: dropped for clients that want maps.
        case overBudget
    }

    var report: FrameReport
    var head: ByteBuffer
    var maps: Maps
    /// Bytes counted in `FlowControl` until the loop has run this frame.
    var frameBytes: Int
    var mapBytes: Int
}

/// What the publisher and the loop share without a lock.
private final class FlowControl: Sendable {
    /// Bytes of FRAMEs (without maps) handed to the loop and not yet run.
    let pendingFrameBytes = Atomic<Int>(0)
    /// Bytes of encoded maps handed to the loop and not yet run.
    let pendingMapBytes = Atomic<Int>(0)
    /// Whether a watching, unblocked client wants maps: written by the loop, read by the publisher (a hint; the
    /// loop encodes the maps itself when it was stale).
    let mapsWanted = Atomic<Bool>(false)
    /// The publisher warned about maps that do not match the classes.
    let warnedAboutMaps = Atomic<Bool>(false)

    func release(_ frame: HandedFrame) {
        pendingFrameBytes.wrappingSubtract(frame.frameBytes, ordering: .relaxed)
        if frame.mapBytes > 0 { pendingMapBytes.wrappingSubtract(frame.mapBytes, ordering: .relaxed) }
    }
}

extension Atomic where Value == Int {
    /// Adds `size` unless what is there already is over `budget`, as a client's queue is judged: the first
    /// one always passes.
    fileprivate func reserve(_ size: Int, budget: Int) -> Bool {
        let before = wrappingAdd(size, ordering: .relaxed).oldValue
        guard before > 0, before + size > budget else { return true }
        wrappingSubtract(size, ordering: .relaxed)
        return false
    }
}

/// The server's state and per-client plumbing; lives on the event loop and is touched nowhere else (it is
/// reached only through `NIOLoopBoundBox`, which checks).
private final class ServerCore {
    struct Counts: Sendable {
        var admitted: Int
        var refused: Int
    }

    let configuration: SocketServer.Configuration
    private let banner: [UInt8]
    private let classes: [String]
    private let logger: Logger
    private let loop: EventLoop
    private let flow: FlowControl
    private let live: LiveCount

    private(set) var clients: [Int: SocketClient] = [:]
    private var nextClientID = 1
    private var refused = 0
    private var latest: LatestFrame?
    /// The last STATUS line of each device (audio, video), in the order the devices first reported: what a new
    /// client is told after the banner, so that one connecting during an outage learns of it.
    private var deviceStates: [(device: StatusMessage.Device, line: ByteBuffer)] = []
    private var closing = false

    init(configuration: SocketServer.Configuration, banner: VersionMessage, logger: Logger, loop: EventLoop,
         flow: FlowControl, live: LiveCount) {
        self.configuration = configuration
        self.banner = ProtocolWriter.line(banner)
        self.classes = banner.classes
        self.logger = logger
        self.loop = loop
        self.flow = flow
        self.live = live
    }

    var counts: Counts { Counts(admitted: nextClientID - 1, refused: refused) }

    func statistics() -> [SocketServer.ClientStatistics] {
        clients.values.map {
            SocketServer.ClientStatistics(id: $0.id, watching: $0.watching, maps: $0.maps, droppedMessages: $0.droppedMessages,
                                          queuedBytes: $0.queuedBytes, framesSent: $0.framesSent)
        }.sorted { $0.id < $1.id }
    }

    // MARK: Frames and STATUS

    /// FRAMEs the publisher dropped before they reached the loop: every watching client missed them.
    func countSkipped(_ skipped: Int) {
        guard skipped > 0 else { return }
        for client in clients.values where client.watching { client.droppedMessages += UInt64(skipped) }
    }

    func deliver(_ frame: HandedFrame) {
        defer { flow.release(frame) }
        guard !closing else { return }
        var maps = frame.maps
        latest = LatestFrame(report: frame.report, head: frame.head, maps: nil)
        for client in clients.values where client.watching {
            guard !client.blocked else {
                client.droppedMessages += 1  // as `admitFrame` would, without encoding maps for it first
                continue
            }
            var mapsPart: ByteBuffer?
            if client.maps {
                if case .notEncoded = maps, let reportMaps = frame.report.maps {
                    // A client asked for maps after the publisher looked: encoded here, once.
                    maps = ProtocolWriter.frameMaps(reportMaps, classes: classes).map { .encoded(ByteBuffer(bytes: $0)) } ?? .unencodable
                }
                switch maps {
                case let .encoded(encoded): mapsPart = encoded
                case .overBudget:
                    client.droppedMessages += 1
                    continue
                case .absent, .notEncoded, .unencodable: break
                }
            }
            let tail = ByteBuffer(bytes: ProtocolWriter.frameTail(droppedMessages: client.droppedMessages))
            let size = frame.head.readableBytes + (mapsPart?.readableBytes ?? 0) + tail.readableBytes
            guard client.admitFrame(size: size, high: configuration.highWaterMark) else { continue }
            client.framesSent += 1
            write([frame.head] + (mapsPart.map { [$0] } ?? []) + [tail], size: size, to: client)
        }
        if case let .encoded(encoded) = maps { latest?.maps = encoded }
        updateMapsWanted()
    }

    func broadcast(_ line: ByteBuffer, from device: StatusMessage.Device) {
        if device != .server {
            if let at = deviceStates.firstIndex(where: { $0.device == device }) { deviceStates[at].line = line }
            else { deviceStates.append((device, line)) }
        }
        guard !closing else { return }
        for client in clients.values { send(line, to: client) }
    }

    /// Tells the publisher whether encoding maps is worth it.
    private func updateMapsWanted() {
        let wanted = clients.values.contains { $0.watching && $0.maps && !$0.blocked }
        flow.mapsWanted.store(wanted, ordering: .releasing)
    }

    // MARK: Clients

    /// What became of a new connection.
    enum Admission {
        case admitted(SocketClient)
        /// Over `maxClients`: the connection gets this ERROR line and is closed.
        case refused(String)
        /// The server is shutting down.
        case closing
    }

    /// Registers a new connection and greets it with the banner and the devices' current STATUS lines. Its
    /// removal is tied to the channel's close future, which completes exactly once on every path (the client
    /// hangs up before, during or after the banner; a write fails; we close it), even when the channel closed
    /// before this ran: then the callback runs at once. Before, removal waited for `channelInactive`, which a
    /// peer that closed at once could deliver while the banner was being written, before the handler knew its
    /// client: the entry stayed forever and every publish paid for it, which is how connection churn grew the
    /// server without bound.
    func register(_ channel: Channel) -> Admission {
        guard !closing else { return .closing }
        guard clients.count < configuration.maxClients else {
            refused += 1
            let why = "too many clients (\(configuration.maxClients) connected); try again later"
            logger.warning("refusing a client: \(why)")
            return .refused(why)
        }
        let client = SocketClient(id: nextClientID, channel: channel, live: live)
        nextClientID += 1
        clients[client.id] = client
        let id = client.id
        channel.closeFuture.assumeIsolated().whenComplete { [weak self] _ in self?.unregister(id) }
        logger.debug("client connected", metadata: ["client": "\(id)"])
        // After the entry exists, so a re-entrant close (the write fails) is harmless.
        send([ByteBuffer(bytes: banner)] + deviceStates.map(\.line), to: client)
        return .admitted(client)
    }

    private func unregister(_ id: Int) {
        guard let client = clients.removeValue(forKey: id) else { return }
        if client.watching && client.maps { updateMapsWanted() }
        logger.debug("client gone", metadata: ["client": "\(id)", "frames": "\(client.framesSent)",
                                                "dropped": "\(client.droppedMessages)"])
    }

    func handle(_ command: ClientCommand, from client: SocketClient) {
        switch command {
        case let .watch(enable, maps):
            if let enable { client.watching = enable }
            if let maps { client.maps = maps }
            updateMapsWanted()
            send(ByteBuffer(bytes: ProtocolWriter.line(WatchMessage(enable: client.watching, maps: client.maps))), to: client)
        case .poll:
            guard let latest else { return sendError("no frame has been published yet", to: client) }
            var parts = [latest.head]
            if client.maps, let reportMaps = latest.report.maps {
                if latest.maps == nil, let bytes = ProtocolWriter.frameMaps(reportMaps, classes: classes) {
                    self.latest?.maps = ByteBuffer(bytes: bytes)  // encoded on demand, once per frame
                }
                if let encoded = self.latest?.maps { parts.append(encoded) }
            }
            parts.append(ByteBuffer(bytes: ProtocolWriter.frameTail(droppedMessages: client.droppedMessages)))
            send(parts, to: client)
        }
    }

    func sendError(_ message: String, to client: SocketClient) {
        send(ByteBuffer(bytes: ProtocolWriter.line(ErrorMessage(message: message))), to: client)
    }

    private func send(_ part: ByteBuffer, to client: SocketClient) { send([part], to: client) }

    /// A reply or STATUS: never dropped, but a client that lets them pile up past the hard limit is cut off.
    private func send(_ parts: [ByteBuffer], to client: SocketClient) {
        let size = parts.reduce(0) { $0 + $1.readableBytes }
        guard client.queuedBytes + size <= configuration.hardLimit else {
            logger.warning("client stopped reading; disconnecting", metadata: ["client": "\(client.id)"])
            client.channel.close(promise: nil)
            return
        }
        client.queuedBytes += size
        write(parts, size: size, to: client)
    }

    /// Writes bytes already counted in the client's queue; the count drops when the socket has taken them.
    private func write(_ parts: [ByteBuffer], size: Int, to client: SocketClient) {
        loop.preconditionInEventLoop()
        for part in parts.dropLast() { client.channel.write(part, promise: nil) }
        // Writes complete in order, so the last one's completion covers them all; failures (client gone) too.
        client.channel.writeAndFlush(parts[parts.count - 1]).assumeIsolated().whenComplete { [self] _ in
            if client.release(size, low: configuration.lowWaterMark) { updateMapsWanted() }
        }
    }

    // MARK: Shutdown

    /// Refuses new clients, closes the listener, says goodbye to every client and closes it; the future
    /// completes once all are closed, with the final counts.
    func close(listener: Channel) -> EventLoopFuture<Counts> {
        closing = true
        let goodbye = ByteBuffer(bytes: ProtocolWriter.line(StatusMessage(
            device: .server, state: .stopped, message: "server shutting down",
            time: ProtocolWriter.isoTime(unixNanos: ProtocolClock.realtimeNanos()))))
        let listenerClosed = listener.close()
        // A client that is not reading loses the goodbye: close() drops what the kernel did not take.
        let closed = clients.values.map { client in
            client.channel.writeAndFlush(goodbye, promise: nil)
            return client.channel.close()
        }
        let counts = self.counts
        return EventLoopFuture.andAllComplete([listenerClosed] + closed, on: loop).map { counts }
    }
}

/// The last published frame, kept for POLL.
private struct LatestFrame {
    var report: FrameReport
    var head: ByteBuffer
    var maps: ByteBuffer?
}

/// Per-client state; the event loop's, like the rest of `ServerCore`.
private final class SocketClient {
    let id: Int
    let channel: Channel
    var watching = true
    var maps = false
    var droppedMessages: UInt64 = 0
    var framesSent: UInt64 = 0
    /// Bytes handed to the channel and not yet written to the socket.
    var queuedBytes = 0
    /// Over the high water mark: FRAMEs are dropped until the queue drains below the low one.
    private(set) var blocked = false
    private let live: LiveCount

    init(id: Int, channel: Channel, live: LiveCount) {
        self.id = id
        self.channel = channel
        self.live = live
        live.add(1)
    }

    deinit { live.add(-1) }

    /// Decides one FRAME; our own count as well as `channel.isWritable`, which alone would let a burst handed
    /// over in one task past the high water mark.
    func admitFrame(size: Int, high: Int) -> Bool {
        if !blocked, queuedBytes > 0, queuedBytes + size > high || !channel.isWritable { blocked = true }
        if blocked {
            droppedMessages += 1
            return false
        }
        queuedBytes += size
        return true
    }

    /// True when this unblocked the client.
    func release(_ size: Int, low: Int) -> Bool {
        queuedBytes -= size
        guard blocked, queuedBytes <= low else { return false }
        blocked = false
        return true
    }
}

/// Splits a client's input into lines and turns them into commands or ERROR replies.
private final class ClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let core: ServerCore
    private var client: SocketClient?
    private var pending = ByteBuffer()
    private var hangingUp = false

    init(core: ServerCore) { self.core = core }

    func channelActive(context: ChannelHandlerContext) {
        // Registered by a task queued behind whatever was handed to the loop before the peer connected, so a
        // STATUS or FRAME published before the connection is not sent to it: the greeting already says the state.
        let channel = context.channel
        context.eventLoop.assumeIsolated().execute { [self] in admit(channel) }
        context.fireChannelActive()
    }

    private func admit(_ channel: Channel) {
        switch core.register(channel) {
        case let .admitted(admitted):
            client = admitted
            processLines(channel)  // nothing yet, normally: reads are handled by tasks queued after this one
        case let .refused(why):
            hangingUp = true
            let line = ByteBuffer(bytes: ProtocolWriter.line(ErrorMessage(message: why)))
            channel.writeAndFlush(line).whenComplete { _ in channel.close(promise: nil) }
        case .closing:
            channel.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        client = nil  // the server dropped its entry when the channel closed
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Handled by a task, like the registration: behind whatever was handed to the loop before the client
        // sent it (a FRAME published before the client's WATCH goes out under the old subscription).
        let input = unwrapInboundIn(data)
        let channel = context.channel
        context.eventLoop.assumeIsolated().execute { [self] in receive(input, channel) }
    }

    private func receive(_ input: ByteBuffer, _ channel: Channel) {
        guard !hangingUp else { return }
        var input = input
        pending.writeBuffer(&input)
        processLines(channel)
    }

    /// Handles the complete lines received so far, once the client is registered.
    private func processLines(_ channel: Channel) {
        guard !hangingUp, let client else { return }  // before registration: kept until `admit` runs, right after
        while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - pending.readableBytesView.startIndex
            guard length <= SoundlocProtocol.maxLineLength else { return hangUpOverlong(channel, client) }
            let line = pending.readBytes(length: length) ?? []
            pending.moveReaderIndex(forwardBy: 1)
            handleLine(line, client)
        }
        if pending.readableBytes > SoundlocProtocol.maxLineLength { return hangUpOverlong(channel, client) }
        pending.discardReadBytes()
    }

    private func handleLine(_ line: [UInt8], _ client: SocketClient) {
        let isSpace = { (b: UInt8) in b == 0x20 || b == 0x09 || b == 0x0D }
        guard let first = line.firstIndex(where: { !isSpace($0) }), let last = line.lastIndex(where: { !isSpace($0) }) else {
            return  // blank lines (e.g. a bare Enter in socat) are harmless
        }
        do {
            core.handle(try ClientCommand.parse(line[first...last]), from: client)
        } catch {
            core.sendError("\(error)", to: client)
        }
    }

    private func hangUpOverlong(_ channel: Channel, _ client: SocketClient) {
        hangingUp = true
        pending.clear()
        core.sendError("line longer than \(SoundlocProtocol.maxLineLength) bytes; closing the connection", to: client)
        channel.close(promise: nil)  // the ERROR was flushed above; close() drops only what the kernel did not take
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)  // typically a reset from a client that went away mid-write
    }
}

/// A count shared by objects that add themselves on init and remove themselves on deinit (on any thread).
final class LiveCount: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .relaxed) }
    func add(_ delta: Int) { count.wrappingAdd(delta, ordering: .relaxed) }
}
