import Foundation
import Logging
import NIOCore
import NIOPosix

/// The headless output: a UNIX stream socket speaking the protocol of docs/PROTOCOL.md to any number of clients.
///
/// `publish(_:)` is meant for the pipeline thread: it encodes the frame once per variant (with and without
/// maps) and hands the bytes to the event loop; it never waits for a client. Each client has a bounded
/// outbound budget: while its queued bytes are above the high water mark it gets no FRAMEs (they are counted
/// in its `dropped_messages`) until they fall below the low water mark. Replies and STATUS lines are never
/// dropped, but a client that lets them pile up past `hardLimit` is disconnected.
public final class SocketServer: @unchecked Sendable {  // unchecked: the client table and counters are guarded by `lock`; serverChannel and fileIdentity are set in start() before the server is shared; warnedAboutMaps belongs to the publisher thread
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
    private let banner: [UInt8]
    private let classes: [String]
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let loop: EventLoop
    private var serverChannel: Channel?
    private var fileIdentity: SocketPath.FileIdentity?

    // Everything below is guarded by `lock`; publishers and the event loop both take it, briefly.
    private let lock = NSLock()
    private var clients: [Int: SocketClient] = [:]
    private var nextClientID = 1
    private var refused = 0
    private var latest: LatestFrame?
    /// The last STATUS line of each device (audio, video), in the order the devices first reported: what a new
    /// client is told after the banner, so that one connecting during an outage learns of it.
    private var deviceStates: [(device: StatusMessage.Device, line: ByteBuffer)] = []
    private var closed = false
    /// Per-client objects not yet deallocated (registered or not), for tests and diagnostics.
    private let liveClients = LiveCount()
    private var warnedAboutMaps = false  // publisher thread only

    /// Binds the socket at `configuration.path` and starts serving; `banner` is sent to every client on connect.
    /// With `listening` (a socket systemd passed, see `SocketActivation`) it serves that one instead: its path,
    /// mode and group are the `.socket` unit's, and the file is left to systemd at shutdown.
    public static func start(configuration: Configuration, banner: VersionMessage, logger: Logger,
                             listening: Int32? = nil) throws -> SocketServer {
        let server = SocketServer(configuration: configuration, banner: banner, logger: logger)
        do {
            if let listening { try server.serve(inherited: listening) } else { try server.bind() }
        } catch {
            try? server.group.syncShutdownGracefully()
            throw error
        }
        return server
    }

    private init(configuration: Configuration, banner: VersionMessage, logger: Logger) {
        self.configuration = configuration
        self.banner = ProtocolWriter.line(banner)
        self.classes = banner.classes
        var logger = logger
        logger[metadataKey: "socket"] = "\(configuration.path)"
        self.logger = logger
        // One thread is plenty at 25 Hz and keeps every client on the same loop, so a publish is one task.
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.loop = group.next()
    }

    deinit {
        if serverChannel != nil && !closed { logger.warning("SocketServer released without shutdown(); the socket file stays") }
    }

    private func makeBootstrap() -> ServerBootstrap {
        let water = ChannelOptions.Types.WriteBufferWaterMark(low: configuration.lowWaterMark, high: configuration.highWaterMark)
        return ServerBootstrap(group: group)
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: water)
            .childChannelInitializer { [weak self] channel in
                guard let self else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture(withResultOf: {
                    try channel.pipeline.syncOperations.addHandler(ClientHandler(server: self))
                })
            }
    }

    private func serve(inherited fd: Int32) throws {
        try SocketActivation.checkListeningUnixStream(fd)
        do {
            serverChannel = try makeBootstrap().withBoundSocket(fd).wait()
        } catch {
            throw SocketServerError.bindFailed(path: SocketActivation.boundPath(fd), reason: "\(error)")
        }
        logger.info("serving the socket systemd passed", metadata: ["path": "\(SocketActivation.boundPath(fd))"])
    }

    private func bind() throws {
        let path = configuration.path
        let gid = try configuration.group.map(SocketPath.resolveGroup)  // before bind: a bad group leaves no file
        if try SocketPath.prepare(path) { logger.warning("replaced a stale socket left by an earlier run") }
        let bootstrap = makeBootstrap()
        // We bind ourselves rather than let NIO do it: permissions are in place before listen() (no window
        // where the umask's mode applies), and NIO's own bind would unlink the path on close even if another
        // server has taken it over since.
        let fd = try SocketPath.bind(path)
        fileIdentity = SocketPath.identity(path)
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
        serverChannel = channel
        logger.info("serving", metadata: ["mode": "\(String(configuration.mode, radix: 8))",
                                          "group": "\(configuration.group ?? "-")"])
    }

    // MARK: Publishing

    /// Sends one processed frame to every watching client; cheap, never blocks on clients. Call from one thread.
    public func publish(_ report: FrameReport) {
        let (publishNanos, time) = ProtocolClock.publishTimes(captureNanos: report.captureNanos)

        let head = ByteBuffer(bytes: ProtocolWriter.frameHead(report, classes: classes, publishNanos: publishNanos, time: time))
        var maps: ByteBuffer?
        var mapsEncoded = report.maps == nil
        var deliveries: [(SocketClient, [ByteBuffer], Int)] = []
        // At most two rounds: the maps are encoded (outside the lock) only once a client that can take them wants them.
        while true {
            let needMaps: Bool = lock.withLock {
                guard !closed else { return false }
                if !mapsEncoded, clients.values.contains(where: { $0.watching && $0.maps && !$0.blocked }) { return true }
                latest = LatestFrame(report: report, head: head, maps: maps)
                deliveries.reserveCapacity(clients.count)
                for client in clients.values where client.watching {
                    let mapsPart = client.maps ? maps : nil
                    let tail = ByteBuffer(bytes: ProtocolWriter.frameTail(droppedMessages: client.droppedMessages))
                    let size = head.readableBytes + (mapsPart?.readableBytes ?? 0) + tail.readableBytes
                    guard client.admitFrame(size: size, high: configuration.highWaterMark) else { continue }
                    client.framesSent += 1
                    deliveries.append((client, [head] + (mapsPart.map { [$0] } ?? []) + [tail], size))
                }
                // Handed over under the lock, so shutdown() cannot stop the loop between our check and this.
                if !deliveries.isEmpty {
                    let batch = deliveries
                    loop.execute { [self] in
                        for (client, parts, size) in batch { write(parts, size: size, to: client) }
                    }
                }
                return false
            }
            guard needMaps, let reportMaps = report.maps else { break }
            mapsEncoded = true
            if let bytes = ProtocolWriter.frameMaps(reportMaps, classes: classes) { maps = ByteBuffer(bytes: bytes) }
            else if !warnedAboutMaps {
                warnedAboutMaps = true
                logger.warning("maps do not match the banner's \(classes.count) classes of 14×14; frames go out without them")
            }
        }
    }

    /// Sends a STATUS line to every client (watching or not); `time` is filled when empty. The last one of each
    /// device (not `server`) is kept and sent to every client that connects later, right after the banner.
    public func publish(status: StatusMessage) {
        var status = status
        status.stamp()
        let line = ByteBuffer(bytes: ProtocolWriter.line(status))
        lock.withLock {
            if status.device != .server {
                if let at = deviceStates.firstIndex(where: { $0.device == status.device }) { deviceStates[at].line = line }
                else { deviceStates.append((status.device, line)) }
            }
            guard !closed, !clients.isEmpty else { return }
            let targets = Array(clients.values)
            loop.execute { [self] in
                for client in targets { send(line, to: client) }
            }
        }
    }

    // MARK: Introspection

    /// Clients connected now.
    public var connectedClients: Int { lock.withLock { clients.count } }

    /// Connections admitted and refused (over `maxClients`) since the server started.
    public var connectionCounts: (admitted: Int, refused: Int) { lock.withLock { (nextClientID - 1, refused) } }

    /// Per-client state objects still in memory. Once clients are gone this returns to 0: anything else is a
    /// leak (a closure or a table still holding a client).
    public var retainedClientObjects: Int { liveClients.value }

    public func clientStatistics() -> [ClientStatistics] {
        lock.withLock {
            clients.values.map {
                ClientStatistics(id: $0.id, watching: $0.watching, maps: $0.maps, droppedMessages: $0.droppedMessages,
                                 queuedBytes: $0.queuedBytes, framesSent: $0.framesSent)
            }.sorted { $0.id < $1.id }
        }
    }

    // MARK: Shutdown

    /// Says goodbye to clients (STATUS server stopped), closes everything and removes the socket file.
    /// Blocks until done; do not call it from the server's own event loop.
    public func shutdown() {
        let targets: [SocketClient]? = lock.withLock {
            guard !closed else { return nil }
            closed = true
            return Array(clients.values)
        }
        guard let targets else { return }
        try? serverChannel?.close().wait()
        let goodbye = ByteBuffer(bytes: ProtocolWriter.line(StatusMessage(
            device: .server, state: .stopped, message: "server shutting down",
            time: ProtocolWriter.isoTime(unixNanos: ProtocolClock.realtimeNanos()))))
        // A client that is not reading loses the goodbye: close() drops what the kernel did not take.
        let closing = targets.map { client in
            client.channel.eventLoop.flatSubmit {
                client.channel.writeAndFlush(goodbye, promise: nil)
                return client.channel.close()
            }
        }
        _ = try? EventLoopFuture.andAllComplete(closing, on: loop).wait()
        SocketPath.remove(configuration.path, ifStill: fileIdentity)
        do { try group.syncShutdownGracefully() } catch { logger.warning("event loop shutdown: \(error)") }
        logger.info("stopped")
    }

    // MARK: Per-client plumbing (event loop)

    /// What became of a new connection.
    fileprivate enum Admission {
        /// With the devices' STATUS lines as they stood when it was registered: a STATUS published after that
        /// reaches it through the client table, after the greeting (both run on the event loop, in order).
        case admitted(SocketClient, states: [ByteBuffer])
        /// Over `maxClients`: the connection gets this ERROR line and is closed.
        case refused(String)
        /// The server is shutting down.
        case closing
    }

    /// Registers a new connection. Its removal is tied to the channel's close future, which completes exactly
    /// once on every path (the client hangs up before, during or after the banner; a write fails; we close
    /// it), even when the channel closed before this ran: then the callback runs at once. Before, removal
    /// waited for `channelInactive`, which a peer that closed at once could deliver while the banner was
    /// being written, before the handler knew its client: the entry stayed forever and every publish paid
    /// for it, which is how connection churn grew the server without bound.
    fileprivate func register(_ channel: Channel) -> Admission {
        let admission: Admission = lock.withLock {
            guard !closed else { return .closing }
            guard clients.count < configuration.maxClients else {
                refused += 1
                return .refused("too many clients (\(configuration.maxClients) connected); try again later")
            }
            let client = SocketClient(id: nextClientID, channel: channel, live: liveClients)
            nextClientID += 1
            clients[client.id] = client
            return .admitted(client, states: deviceStates.map(\.line))
        }
        switch admission {
        case let .admitted(client, _):
            let id = client.id
            channel.closeFuture.whenComplete { [weak self] _ in self?.unregister(id) }
            logger.debug("client connected", metadata: ["client": "\(id)"])
        case let .refused(why):
            logger.warning("refusing a client: \(why)")
        case .closing:
            break
        }
        return admission
    }

    /// Greets a registered client with the banner and the devices' current STATUS lines; after `register`
    /// returned, so re-entrant closes are harmless.
    fileprivate func greet(_ client: SocketClient, states: [ByteBuffer]) {
        send([ByteBuffer(bytes: banner)] + states, to: client)
    }

    private func unregister(_ id: Int) {
        let stats: (UInt64, UInt64)? = lock.withLock {
            clients.removeValue(forKey: id).map { ($0.framesSent, $0.droppedMessages) }
        }
        guard let stats else { return }
        logger.debug("client gone", metadata: ["client": "\(id)", "frames": "\(stats.0)", "dropped": "\(stats.1)"])
    }

    fileprivate func handle(_ command: ClientCommand, from client: SocketClient) {
        switch command {
        case let .watch(enable, maps):
            let now: (Bool, Bool) = lock.withLock {
                if let enable { client.watching = enable }
                if let maps { client.maps = maps }
                return (client.watching, client.maps)
            }
            send(ByteBuffer(bytes: ProtocolWriter.line(WatchMessage(enable: now.0, maps: now.1))), to: client)
        case .poll:
            let reply: [ByteBuffer]? = lock.withLock {
                guard let latest else { return nil }
                var parts = [latest.head]
                if client.maps, let reportMaps = latest.report.maps {
                    if latest.maps == nil, let bytes = ProtocolWriter.frameMaps(reportMaps, classes: classes) {
                        self.latest?.maps = ByteBuffer(bytes: bytes)  // encoded on demand, once per frame
                    }
                    if let encoded = self.latest?.maps { parts.append(encoded) }
                }
                parts.append(ByteBuffer(bytes: ProtocolWriter.frameTail(droppedMessages: client.droppedMessages)))
                return parts
            }
            if let reply { send(reply, to: client) }
            else { sendError("no frame has been published yet", to: client) }
        }
    }

    fileprivate func sendError(_ message: String, to client: SocketClient) {
        send(ByteBuffer(bytes: ProtocolWriter.line(ErrorMessage(message: message))), to: client)
    }

    private func send(_ part: ByteBuffer, to client: SocketClient) { send([part], to: client) }

    /// A reply or STATUS: never dropped, but a client that lets them pile up past the hard limit is cut off.
    private func send(_ parts: [ByteBuffer], to client: SocketClient) {
        let size = parts.reduce(0) { $0 + $1.readableBytes }
        let admitted: Bool = lock.withLock {
            guard client.queuedBytes + size <= configuration.hardLimit else { return false }
            client.queuedBytes += size
            return true
        }
        guard admitted else {
            logger.warning("client stopped reading; disconnecting", metadata: ["client": "\(client.id)"])
            client.channel.close(promise: nil)
            return
        }
        write(parts, size: size, to: client)
    }

    /// Writes bytes already counted in the client's queue; the count drops when the socket has taken them.
    private func write(_ parts: [ByteBuffer], size: Int, to client: SocketClient) {
        loop.preconditionInEventLoop()
        for part in parts.dropLast() { client.channel.write(part, promise: nil) }
        // Writes complete in order, so the last one's completion covers them all; failures (client gone) too.
        client.channel.writeAndFlush(parts[parts.count - 1]).whenComplete { [self] _ in
            lock.withLock { client.release(size, low: configuration.lowWaterMark) }
        }
    }
}

/// The last published frame, kept for POLL.
private struct LatestFrame {
    var report: FrameReport
    var head: ByteBuffer
    var maps: ByteBuffer?
}

/// Per-client state; every mutable field is guarded by the server's lock.
private final class SocketClient: @unchecked Sendable {  // unchecked: every mutable field is guarded by the server's `lock`
    let id: Int
    let channel: Channel
    var watching = true
    var maps = false
    var droppedMessages: UInt64 = 0
    var framesSent: UInt64 = 0
    /// Bytes handed to the event loop and not yet written to the socket (includes writes still in transit).
    var queuedBytes = 0
    /// Over the high water mark: FRAMEs are dropped until the queue drains below the low one.
    var blocked = false
    private let live: LiveCount

    init(id: Int, channel: Channel, live: LiveCount) {
        self.id = id
        self.channel = channel
        self.live = live
        live.add(1)
    }

    deinit { live.add(-1) }

    /// Decides one FRAME; our own count rather than `channel.isWritable` alone, because writes handed over
    /// from the publisher thread are invisible to the channel until the event loop runs them.
    func admitFrame(size: Int, high: Int) -> Bool {
        if !blocked, queuedBytes > 0, queuedBytes + size > high || !channel.isWritable { blocked = true }
        if blocked {
            droppedMessages += 1
            return false
        }
        queuedBytes += size
        return true
    }

    func release(_ size: Int, low: Int) {
        queuedBytes -= size
        if blocked, queuedBytes <= low { blocked = false }
    }
}

/// Splits a client's input into lines and turns them into commands or ERROR replies.
private final class ClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let server: SocketServer
    private var client: SocketClient?
    private var pending = ByteBuffer()
    private var hangingUp = false

    init(server: SocketServer) { self.server = server }

    func channelActive(context: ChannelHandlerContext) {
        switch server.register(context.channel) {
        case let .admitted(admitted, states):
            client = admitted
            server.greet(admitted, states: states)  // may close the channel re-entrantly; the close future unregisters it
        case let .refused(why):
            hangingUp = true
            let line = ByteBuffer(bytes: ProtocolWriter.line(ErrorMessage(message: why)))
            let channel = context.channel  // Sendable, unlike the context (the only handler: closing either is the same)
            context.writeAndFlush(NIOAny(line)).whenComplete { _ in channel.close(promise: nil) }
        case .closing:
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        client = nil  // the server dropped its entry when the channel closed
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !hangingUp, let client else { return }
        var input = unwrapInboundIn(data)
        pending.writeBuffer(&input)
        while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - pending.readableBytesView.startIndex
            guard length <= SoundlocProtocol.maxLineLength else { return hangUpOverlong(context, client) }
            let line = pending.readBytes(length: length) ?? []
            pending.moveReaderIndex(forwardBy: 1)
            handleLine(line, client)
        }
        if pending.readableBytes > SoundlocProtocol.maxLineLength { return hangUpOverlong(context, client) }
        pending.discardReadBytes()
    }

    private func handleLine(_ line: [UInt8], _ client: SocketClient) {
        let isSpace = { (b: UInt8) in b == 0x20 || b == 0x09 || b == 0x0D }
        guard let first = line.firstIndex(where: { !isSpace($0) }), let last = line.lastIndex(where: { !isSpace($0) }) else {
            return  // blank lines (e.g. a bare Enter in socat) are harmless
        }
        do {
            server.handle(try ClientCommand.parse(line[first...last]), from: client)
        } catch {
            server.sendError("\(error)", to: client)
        }
    }

    private func hangUpOverlong(_ context: ChannelHandlerContext, _ client: SocketClient) {
        hangingUp = true
        pending.clear()
        server.sendError("line longer than \(SoundlocProtocol.maxLineLength) bytes; closing the connection", to: client)
        context.close(promise: nil)  // the ERROR was flushed above; close() drops only what the kernel did not take
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)  // typically a reset from a client that went away mid-write
    }
}

/// A count shared by objects that add themselves on init and remove themselves on deinit.
final class LiveCount: @unchecked Sendable {  // unchecked: count is guarded by `lock`
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func add(_ delta: Int) { lock.withLock { count += delta } }
}
