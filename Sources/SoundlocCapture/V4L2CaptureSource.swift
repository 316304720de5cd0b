#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One camera picture: packed RGB24, top row first, `width * 3` bytes per row, no padding.
public struct VideoFrame: Sendable {
    public var pixels: [UInt8]
    public var width: Int
    public var height: Int
    /// Position in the source's stream: increases by one per frame the camera produced, so frames the
    /// driver dropped leave gaps; keeps counting across `reopen()`.
    public var sequence: UInt64
    /// CLOCK_MONOTONIC time (ns) at which the frame was captured, the time base of `AudioBlock`;
    /// nil for sources without a clock (files).
    public var captureTimeNanos: UInt64?
    /// Frames the driver dropped just before this one (its sequence gap).
    public var droppedBefore: Int
    /// True for the first frame after the device was reopened: an unknown number of frames is missing.
    public var followsGap: Bool

    public init(pixels: [UInt8], width: Int, height: Int, sequence: UInt64, captureTimeNanos: UInt64?,
                droppedBefore: Int = 0, followsGap: Bool = false) {
        precondition(pixels.count == width * height * 3, "RGB24 needs width * height * 3 bytes")
        self.pixels = pixels
        self.width = width
        self.height = height
        self.sequence = sequence
        self.captureTimeNanos = captureTimeNanos
        self.droppedBefore = droppedBefore
        self.followsGap = followsGap
    }
}

/// A producer of RGB frames: a live camera (`V4L2CaptureSource`) or a file replay (`FileVideoSource`: a picture or a y4m video).
public protocol VideoSource: AnyObject {
    /// Waits up to `timeout` seconds for the next frame; nil only at the end of a finite source.
    /// - Throws: `VideoSourceError.timedOut` when a live source delivers nothing in time.
    func nextFrame(timeout: Double) throws -> VideoFrame?
    /// Releases the device or file; further reads fail.
    func close()
}

/// What can go wrong reading video, each case with a message fit for one line on a terminal.
public enum VideoSourceError: Error, CustomStringConvertible, Equatable {
    case deviceNotFound(path: String)
    case deviceBusy(path: String)
    case notACaptureDevice(path: String, reason: String)
    case formatUnavailable(path: String, reason: String)
    case deviceUnavailable(path: String, reason: String)
    case deviceFailed(path: String, reason: String)
    case timedOut(path: String, seconds: Double)
    case closed

    public var description: String {
        switch self {
        case let .deviceNotFound(path):
            return "camera '\(path)' not found: no such device (is it plugged in? `soundloc devices` lists cameras)"
        case let .deviceBusy(path):
            return "camera '\(path)' is busy: another program is capturing from it"
        case let .notACaptureDevice(path, reason): return "'\(path)' is not a V4L2 capture device: \(reason)"
        case let .formatUnavailable(path, reason): return "camera '\(path)' cannot deliver RGB frames: \(reason)"
        case let .deviceUnavailable(path, reason): return "camera '\(path)' cannot be opened: \(reason)"
        case let .deviceFailed(path, reason): return "camera '\(path)' failed: \(reason)"
        case let .timedOut(path, seconds):
            return "camera '\(path)' delivered no frame in \(seconds) s (stalled or disconnected?)"
        case .closed: return "video source is closed"
        }
    }
}

/// A camera as `soundloc devices` shows it.
public struct CameraInfo: Sendable {
    public var path: String
    public var driver: String = ""
    public var card: String = ""
    public var busInfo: String = ""
    /// Single-planar video capture with streaming I/O: what `V4L2CaptureSource` can open.
    public var isCapture: Bool = false
    /// The node's kind when it is not a camera ("metadata capture", "video output", ...).
    public var kind: String = ""
    /// The formats the driver itself offers (libv4l2, when installed, converts these to RGB24).
    public var formats: [CameraFormat] = []
    /// Why the device could not be queried (permissions, ...); nil when it could.
    public var error: String?

    public init(path: String) { self.path = path }
}

public struct CameraFormat: Sendable {
    /// The four-character code, e.g. "YUYV" or "MJPG".
    public var fourcc: String
    public var description: String
    public var isCompressed: Bool
    /// Discrete sizes with their frame rates; empty when the driver gives a range instead.
    public var sizes: [CameraFrameSize]
    /// Continuous or stepwise sizes, when the driver gives a range instead of a list.
    public var sizeRange: CameraSizeRange?
}

public struct CameraSizeRange: Sendable {
    public var minWidth: Int
    public var minHeight: Int
    public var maxWidth: Int
    public var maxHeight: Int
    public var stepWidth: Int
    public var stepHeight: Int
}

public struct CameraFrameSize: Sendable {
    public var width: Int
    public var height: Int
    /// Discrete rates, fastest first; for a stepwise interval range, its fastest and slowest ends.
    public var framesPerSecond: [Double]
}

#if os(Linux)
import CSoundlocShims
import Logging

/// Live capture from a V4L2 camera through libv4l2, which converts YUYV, MJPEG and the other common
/// camera formats to RGB24, with mmap streaming.
///
/// Not thread-safe: one thread reads, and the same thread closes or reopens. After an unplug
/// (`VideoSourceError.deviceFailed`) the device is released; call `reopen()` until it succeeds. A
/// `/dev/v4l/by-id/...` path finds the same camera again even when it comes back as another /dev/videoN.
public final class V4L2CaptureSource: VideoSource {
    /// Where capture timestamps come from (the driver says, per buffer).
    public enum Clock: String, Sendable {
        /// The driver's buffer timestamp (V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC): the time the frame was taken.
        case driver
        /// The time the frame was dequeued, for drivers whose timestamps are not CLOCK_MONOTONIC.
        case dequeue
    }

    /// The device this source was opened with, reused by `reopen()`.
    public let devicePath: String
    public let requestedWidth: Int
    public let requestedHeight: Int
    public let requestedFramesPerSecond: Double
    /// Frame size the driver granted (it picks the nearest it supports).
    public private(set) var width = 0
    public private(set) var height = 0
    /// Frame rate the driver granted; nil when it does not say.
    public private(set) var framesPerSecond: Double?
    /// The format the camera really streams, before libv4l2 converts it to RGB24 ("YUYV", "MJPG", "RGB3").
    public private(set) var cameraFormat = ""
    public private(set) var driver = ""
    public private(set) var card = ""
    /// Number of mmap buffers the driver granted.
    public private(set) var bufferCount = 0
    public private(set) var clock = Clock.dequeue
    /// Frames returned by `nextFrame` since creation.
    public private(set) var framesDelivered = 0
    /// Frames lost since creation, from the driver's sequence gaps (including corrupt frames skipped here).
    public private(set) var droppedFrames = 0
    /// Why the device was released, while it is failed; nil while it streams.
    public private(set) var failure: String?

    private let requestedBufferCount: Int
    private var logger: Logger
    private var fd: Int32 = -1
    private var buffers: [(start: UnsafeMutableRawPointer, length: Int)] = []
    private var bytesPerLine = 0
    private var isClosed = false
    private var lastDriverSequence: UInt32?
    private var nextSequence: UInt64 = 0
    private var pendingGap = false
    private var lastCaptureTime: UInt64 = 0

    /// Opens `devicePath`, asks for `width`×`height` RGB24 at `framesPerSecond`, and starts streaming.
    /// - Throws: `VideoSourceError` naming the problem: no such device, busy, not a capture device, no RGB format.
    public init(devicePath: String, width: Int = 640, height: Int = 480, framesPerSecond: Double = 30,
                bufferCount: Int = 4, logger: Logger) throws {
        precondition(width > 0 && height > 0 && framesPerSecond > 0, "size and rate must be positive")
        self.devicePath = devicePath
        self.requestedWidth = width
        self.requestedHeight = height
        self.requestedFramesPerSecond = framesPerSecond
        self.requestedBufferCount = max(4, bufferCount)  // fewer leaves the driver nowhere to write while we copy
        self.logger = logger
        self.logger[metadataKey: "camera"] = "\(devicePath)"
        try openDevice()
    }

    deinit {
        releaseDevice()
    }

    /// True when libv4l2 is installed, so cameras that do not deliver RGB24 natively still work.
    public static var convertsFormats: Bool { soundloc_v4l2_available() != 0 }

    public func nextFrame(timeout: Double) throws -> VideoFrame? {
        if isClosed { throw VideoSourceError.closed }
        let deadline = monotonicNanos() + UInt64(min(max(0, timeout), 1e6) * 1e9)  // clamped: .infinity would trap
        while true {
            guard fd >= 0 else {
                throw VideoSourceError.deviceFailed(
                    path: devicePath, reason: "\(failure ?? "device is not open"); call reopen()")
            }
            let now = monotonicNanos()
            let waitMillis = now >= deadline ? 0 : Int32(min((deadline - now + 999_999) / 1_000_000, UInt64(Int32.max)))
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, waitMillis)
            if ready < 0 {
                if errno == EINTR { continue }
                throw fail("poll failed: \(errnoText(errno))")
            }
            if ready == 0 {
                throw VideoSourceError.timedOut(path: devicePath, seconds: timeout)
            }

            var buffer = v4l2_buffer()
            buffer.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            buffer.memory = V4L2_MEMORY_MMAP.rawValue
            if soundloc_v4l2_ioctl(fd, SOUNDLOC_VIDIOC_DQBUF, &buffer) != 0 {
                let code = errno
                if code == EAGAIN {
                    // POLLERR with nothing to dequeue: the driver stopped the stream (all our buffers are queued).
                    if pfd.revents & Int16(POLLERR | POLLHUP) != 0 {
                        throw fail("the driver reports an error on the stream (was the camera unplugged?)")
                    }
                    continue
                }
                throw fail("cannot dequeue a frame: \(errnoText(code))" + (code == ENODEV || code == EIO ? " (was the camera unplugged?)" : ""))
            }
            let dequeuedAt = monotonicNanos()
            let index = Int(buffer.index)
            let needed = bytesPerLine * (height - 1) + width * 3
            let filled = buffer.bytesused > 0 ? Int(buffer.bytesused) : Int(buffer.length)  // 0: a driver that never sets it
            let usable = index < buffers.count && buffer.flags & UInt32(V4L2_BUF_FLAG_ERROR) == 0 && filled >= needed
            let frame = usable ? makeFrame(from: buffer, dequeuedAt: dequeuedAt) : nil
            if soundloc_v4l2_ioctl(fd, SOUNDLOC_VIDIOC_QBUF, &buffer) != 0 {
                let reason = "cannot requeue a buffer: \(errnoText(errno))"
                guard let frame else { throw fail(reason) }
                _ = fail(reason)  // deliver what we have; the next call reports the failure
                return frame
            }
            if let frame { return frame }
            // A corrupt frame keeps its sequence number unconsumed, so the next frame's gap counts it.
            logger.debug("skipped a corrupt frame", metadata: ["bytes": "\(buffer.bytesused)", "flags": "\(buffer.flags)"])
        }
    }

    /// Closes the device and opens it again with the same requested settings, e.g. after the camera was
    /// plugged back in. Sequence numbers keep counting; the next frame is marked `followsGap`.
    public func reopen() throws {
        if isClosed { throw VideoSourceError.closed }
        releaseDevice()
        try openDevice()
        pendingGap = true
        logger.info("camera reopened")
    }

    public func close() {
        releaseDevice()
        isClosed = true
    }

    // MARK: - Device listing

    /// The V4L2 nodes under /dev (video0, video1, ...), each described; nodes that cannot be opened are
    /// listed with an `error`.
    public static func listDevices(directory: String = "/dev") -> [CameraInfo] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var numbered: [(Int, String)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { cString($0) }
            guard name.hasPrefix("video"), let number = Int(name.dropFirst(5)) else { continue }
            numbered.append((number, "\(directory)/\(name)"))
        }
        return numbered.sorted { $0.0 < $1.0 }.map { _, path in
            do {
                return try describeDevice(path: path)
            } catch {
                var info = CameraInfo(path: path)
                info.error = "\(error)"
                return info
            }
        }
    }

    /// Queries one node's identity, capabilities, native formats, sizes and frame rates.
    public static func describeDevice(path: String) throws -> CameraInfo {
        let fd = try openNode(path)
        defer { Glibc.close(fd) }
        var cap = v4l2_capability()
        guard soundloc_ioctl(fd, SOUNDLOC_VIDIOC_QUERYCAP, &cap) == 0 else {
            throw VideoSourceError.notACaptureDevice(path: path, reason: "VIDIOC_QUERYCAP: \(errnoText(errno))")
        }
        var info = CameraInfo(path: path)
        info.driver = withUnsafeBytes(of: cap.driver) { cString($0) }
        info.card = withUnsafeBytes(of: cap.card) { cString($0) }
        info.busInfo = withUnsafeBytes(of: cap.bus_info) { cString($0) }
        let caps = deviceCaps(cap)
        // libv4l2's plugin presents multi-planar-only cameras as single-planar ones.
        let capture = caps & UInt32(V4L2_CAP_VIDEO_CAPTURE) != 0
            || (caps & UInt32(V4L2_CAP_VIDEO_CAPTURE_MPLANE) != 0 && convertsFormats)
        info.isCapture = capture && caps & UInt32(V4L2_CAP_STREAMING) != 0
        info.kind = nodeKind(caps)
        guard caps & UInt32(V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_CAPTURE_MPLANE) != 0 else { return info }
        let type = caps & UInt32(V4L2_CAP_VIDEO_CAPTURE) != 0
            ? V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue : V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE.rawValue

        var formatIndex: UInt32 = 0
        while formatIndex < 256 {  // bounds a driver that never says EINVAL
            var desc = v4l2_fmtdesc()
            desc.index = formatIndex
            desc.type = type
            guard soundloc_ioctl(fd, SOUNDLOC_VIDIOC_ENUM_FMT, &desc) == 0 else { break }
            formatIndex += 1
            var format = CameraFormat(
                fourcc: fourccText(desc.pixelformat),
                description: withUnsafeBytes(of: desc.description) { cString($0) },
                isCompressed: desc.flags & UInt32(V4L2_FMT_FLAG_COMPRESSED) != 0, sizes: [], sizeRange: nil)
            var sizeIndex: UInt32 = 0
            while sizeIndex < 256 {
                var size = v4l2_frmsizeenum()
                size.index = sizeIndex
                size.pixel_format = desc.pixelformat
                guard soundloc_ioctl(fd, SOUNDLOC_VIDIOC_ENUM_FRAMESIZES, &size) == 0 else { break }
                sizeIndex += 1
                if size.type == V4L2_FRMSIZE_TYPE_DISCRETE.rawValue {
                    let w = Int(size.discrete.width), h = Int(size.discrete.height)
                    format.sizes.append(CameraFrameSize(
                        width: w, height: h, framesPerSecond: frameRates(fd, desc.pixelformat, w, h)))
                } else {
                    let s = size.stepwise
                    format.sizeRange = CameraSizeRange(
                        minWidth: Int(s.min_width), minHeight: Int(s.min_height), maxWidth: Int(s.max_width),
                        maxHeight: Int(s.max_height), stepWidth: Int(s.step_width), stepHeight: Int(s.step_height))
                    break
                }
            }
            info.formats.append(format)
        }
        return info
    }

    /// Sets control `id` (brightness, exposure, or a driver's own) on the camera at `path`, through a
    /// descriptor of its own so that it works while a source streams from the same camera.
    public static func setControl(path: String, id: UInt32, value: Int32) throws {
        let fd = try openNode(path)
        defer { Glibc.close(fd) }
        var control = v4l2_control(id: id, value: value)
        guard soundloc_ioctl(fd, SOUNDLOC_VIDIOC_S_CTRL, &control) == 0 else {
            let code = errno
            let reason = code == EINVAL ? "it has no control 0x\(String(id, radix: 16)) or rejects \(value)" : errnoText(code)
            throw VideoSourceError.deviceUnavailable(path: path, reason: "cannot set a control: \(reason)")
        }
    }

    // MARK: - Internals

    private func makeFrame(from buffer: v4l2_buffer, dequeuedAt: UInt64) -> VideoFrame {
        let source = UnsafeRawPointer(buffers[Int(buffer.index)].start)
        let rowBytes = width * 3
        let pixels = [UInt8](unsafeUninitializedCapacity: rowBytes * height) { out, count in
            let base = UnsafeMutableRawPointer(out.baseAddress!)
            if bytesPerLine == rowBytes {
                base.copyMemory(from: source, byteCount: rowBytes * height)
            } else {
                for row in 0..<height {
                    (base + row * rowBytes).copyMemory(from: source + row * bytesPerLine, byteCount: rowBytes)
                }
            }
            count = rowBytes * height
        }

        // A driver timestamp is when the frame was taken; trust it only if it is on our clock and plausible.
        var captureTime = dequeuedAt
        clock = buffer.flags & UInt32(V4L2_BUF_FLAG_TIMESTAMP_MASK) == UInt32(V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC) ? .driver : .dequeue
        if clock == .driver {
            let stamped = UInt64(max(0, buffer.timestamp.tv_sec)) * 1_000_000_000 + UInt64(max(0, buffer.timestamp.tv_usec)) * 1000
            if stamped > 0, stamped <= dequeuedAt, dequeuedAt - stamped < 10_000_000_000 { captureTime = stamped }
        }
        captureTime = max(captureTime, lastCaptureTime)
        lastCaptureTime = captureTime

        // Sequence numbers restart at each STREAMON; a gap is frames the driver had nowhere to put.
        var dropped = 0
        var sequence = nextSequence
        if let last = lastDriverSequence {
            let step = buffer.sequence &- last
            if step >= 1 && step < 1 << 31 {
                dropped = Int(step - 1)
                sequence = nextSequence + UInt64(dropped)
            }
        }
        lastDriverSequence = buffer.sequence
        nextSequence = sequence + 1
        droppedFrames += dropped
        framesDelivered += 1
        if dropped > 0 {
            logger.debug("driver dropped frames", metadata: ["dropped": "\(dropped)", "total": "\(droppedFrames)"])
        }
        let frame = VideoFrame(pixels: pixels, width: width, height: height, sequence: sequence,
                               captureTimeNanos: captureTime, droppedBefore: dropped, followsGap: pendingGap)
        pendingGap = false
        return frame
    }

    /// Releases the device and returns the error to throw: the pipeline decides when to `reopen()`.
    private func fail(_ reason: String) -> VideoSourceError {
        logger.error("camera failed", metadata: ["reason": "\(reason)"])
        releaseDevice()
        failure = reason
        return .deviceFailed(path: devicePath, reason: reason)
    }

    private func releaseDevice() {
        guard fd >= 0 else { return }
        var type = Int32(V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue)
        _ = soundloc_v4l2_ioctl(fd, SOUNDLOC_VIDIOC_STREAMOFF, &type)
        for buffer in buffers { _ = soundloc_v4l2_munmap(buffer.start, buffer.length) }
        buffers = []
        var release = v4l2_requestbuffers()
        release.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        release.memory = V4L2_MEMORY_MMAP.rawValue
        _ = soundloc_v4l2_ioctl(fd, SOUNDLOC_VIDIOC_REQBUFS, &release)  // frees them now, not at the last munmap
        _ = soundloc_v4l2_close(fd)
        fd = -1
    }

    private func openDevice() throws {
        let path = devicePath
        let raw = try Self.openNode(path)
        // Asked of the driver itself: libv4l2 would print its own error for a node that is not V4L2.
        var cap = v4l2_capability()
        guard soundloc_ioctl(raw, SOUNDLOC_VIDIOC_QUERYCAP, &cap) == 0 else {
            let reason = errnoText(errno)
            Glibc.close(raw)
            throw VideoSourceError.notACaptureDevice(path: path, reason: "it does not answer VIDIOC_QUERYCAP (\(reason))")
        }
        let rawCaps = Self.deviceCaps(cap)
        guard rawCaps & UInt32(V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_CAPTURE_MPLANE) != 0 else {
            Glibc.close(raw)
            throw VideoSourceError.notACaptureDevice(path: path, reason: "it is a \(Self.nodeKind(rawCaps)) node")
        }
        guard soundloc_v4l2_fd_open(raw) == raw else {
            let reason = errnoText(errno)
            Glibc.close(raw)
            throw VideoSourceError.deviceUnavailable(path: path, reason: "libv4l2 cannot take the device: \(reason)")
        }
        fd = raw
        do {
            try configure(cap)
        } catch {
            releaseDevice()
            throw error
        }
        failure = nil
        lastDriverSequence = nil
        logger.info("camera streaming", metadata: [
            "size": "\(width)x\(height)", "fps": "\(framesPerSecond.map { "\($0)" } ?? "unknown")",
            "camera-format": "\(cameraFormat)", "buffers": "\(bufferCount)", "clock": "\(clock.rawValue)",
        ])
    }

    private func configure(_ rawCap: v4l2_capability) throws {
        let path = devicePath
        func ioctlError(_ what: String, _ code: Int32) -> VideoSourceError {
            code == EBUSY ? .deviceBusy(path: path) : .deviceUnavailable(path: path, reason: "\(what): \(errnoText(code))")
        }
        driver = withUnsafeBytes(of: rawCap.driver) { cString($0) }
        card = withUnsafeBytes(of: rawCap.card) { cString($0) }
        // Through libv4l2 now: its multi-planar plugin presents such cameras as single-planar.
        var cap = v4l2_capability()
        guard soundloc_v4l2_ioctl(fd, SOUNDLOC_VIDIOC_QUERYCAP, &cap) == 0 else { throw ioctlError("VIDIOC_QUERYCAP", errno) }
        let caps = Self.deviceCaps(cap)
        guard caps & UInt32(V4L2_CAP_VIDEO_CAPTURE) != 0 else {
            throw VideoSourceError.notACaptureDevice(path: path, reason: "only multi-planar capture, which needs libv4l2's plugin (install libv4l-0)")
        }
        guard caps & UInt32(V4L2_CAP_STREAMING) != 0 else {
            throw VideoSourceError.notACaptureDevice(path: path, reason: "it has no streaming I/O")
        }

        var format = v4l2_format()
        format.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        format.fmt.pix.width = UInt32(requestedWidth)
        format.fmt.pix.height = UInt32(requestedHeight)
        format.fmt.pix.pixelformat = SOUNDLOC_V4L2_PIX_FMT_RGB24
        format.fmt.pix.field = V4L2_FIELD_NONE.rawValue  // progressive; interlaced halves would tear
        if soundloc_v4l2_ioctl(fd, SOUNDLOC_VIDIOC_S_FMT, &format) != 0 {
            let code = errno
            if code == EBUSY { throw VideoSourceError.deviceBusy(path: path) }
            throw VideoSourceError.formatUnavailable(path: path, reason: "VIDIOC_S_FMT RGB24 \(requestedWidth)x\(requestedHeight): \(errnoText(code))")
        }
        guard format.fmt.pix.pixelformat == SOUNDLOC_V4L2_PIX_FMT_RGB24 else {
            let offered = (try? Self.describeDevice(path: path))?.formats.map(\.fourcc).joined(separator: ", ") ?? "?"
            let why = Self.convertsFormats
                ? "libv4l2 cannot convert any of its formats (\(offered)) to RGB24"
                : "it does not deliver RGB24 itself (it offers \(offered)) and libv4l2 is not installed (Debian: libv4l-0)"
            throw VideoSourceError.formatUnavailable(path: path, reason: why)
        }
        width = Int(format.fmt.pix.width)
        height = Int(format.fmt.pix.height)
        bytesPerLine = max(Int(format.fmt.pix.bytesperline), width * 3)
        guard width > 0, height > 0 else {
            throw VideoSourceError.formatUnavailable(path: path, reason: "the driver granted an empty \(width)x\(height) frame")
        }
        if width != requestedWidth || height != requestedHeight {
            logger.notice("camera granted another size", metadata: [
                "requested": "\(requestedWidth)x\(requestedHeight)", "granted": "\(width)x\(height)"])
        }
        // The driver's own format, bypassing libv4l2: what is really on the wire before conversion.
        var native = v4l2_format()
        native.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        cameraFormat = soundloc_ioctl(fd, SOUNDLOC_VIDIOC_G_FMT, &native) == 0 ? fourccText(native.fmt.pix.pixelformat) : "RGB3"

        framesPerSecond = setFrameRate()

        var request = v4l2_requestbuffers()
        request.count = UInt32(requestedBufferCount)
        request.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        request.memory = V4L2_MEMORY_MMAP.rawValue
        guard soundloc_v4l2_ioctl(fd, SOUNDLOC_VIDIOC_REQBUFS, &request) == 0 else {
            let code = errno
            if code == EINVAL {
                throw VideoSourceError.notACaptureDevice(path: path, reason: "it does not support mmap streaming")
            }
            throw ioctlError("VIDIOC_REQBUFS", code)
        }
        guard request.count >= 2 else {
            throw VideoSourceError.deviceUnavailable(path: path, reason: "the driver granted only \(request.count) buffer(s)")
        }
        for index in 0..<request.count {
            var buffer = v4l2_buffer()
            buffer.index = index
            buffer.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            buffer.memory = V4L2_MEMORY_MMAP.rawValue
            guard soundloc_v4l2_ioctl(fd, SOUNDLOC_VIDIOC_QUERYBUF, &buffer) == 0 else { throw ioctlError("VIDIOC_QUERYBUF", errno) }
            let length = Int(buffer.length)
            guard let start = soundloc_v4l2_mmap(length, fd, Int64(buffer.m.offset)),
                  start != UnsafeMutableRawPointer(bitPattern: -1) else {
                throw ioctlError("mmap", errno)
            }
            buffers.append((start, length))
            if index == 0 {
                clock = buffer.flags & UInt32(V4L2_BUF_FLAG_TIMESTAMP_MASK) == UInt32(V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC)
                    ? .driver : .dequeue
            }
        }
        bufferCount = buffers.count
        for index in 0..<request.count {
            var buffer = v4l2_buffer()
            buffer.index = index
            buffer.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
            buffer.memory = V4L2_MEMORY_MMAP.rawValue
            guard soundloc_v4l2_ioctl(fd, SOUNDLOC_VIDIOC_QBUF, &buffer) == 0 else { throw ioctlError("VIDIOC_QBUF", errno) }
        }
        var type = Int32(V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue)
        guard soundloc_v4l2_ioctl(fd, SOUNDLOC_VIDIOC_STREAMON, &type) == 0 else { throw ioctlError("VIDIOC_STREAMON", errno) }
    }

    /// Asks for the requested rate where the driver lets us; returns the rate in force, if it says.
    private func setFrameRate() -> Double? {
        var parm = v4l2_streamparm()
        parm.type = V4L2_BUF_TYPE_VIDEO_CAPTURE.rawValue
        guard soundloc_v4l2_ioctl(fd, SOUNDLOC_VIDIOC_G_PARM, &parm) == 0 else { return nil }
        if parm.parm.capture.capability & UInt32(V4L2_CAP_TIMEPERFRAME) != 0 {
            // 1000/(fps*1000) keeps rates like 29.97 exact enough; the driver rounds to what it supports.
            parm.parm.capture.timeperframe = v4l2_fract(numerator: 1000, denominator: UInt32((requestedFramesPerSecond * 1000).rounded()))
            if soundloc_v4l2_ioctl(fd, SOUNDLOC_VIDIOC_S_PARM, &parm) != 0 {
                logger.warning("camera refused the frame rate", metadata: ["requested": "\(requestedFramesPerSecond)", "error": "\(errnoText(errno))"])
                _ = soundloc_v4l2_ioctl(fd, SOUNDLOC_VIDIOC_G_PARM, &parm)
            }
        }
        let interval = parm.parm.capture.timeperframe
        guard interval.numerator > 0, interval.denominator > 0 else { return nil }
        return Double(interval.denominator) / Double(interval.numerator)
    }

    /// Opens a node for listing or capture, turning errno into the error a user can act on.
    private static func openNode(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd < 0 else { return fd }
        let code = errno
        switch code {
        case ENOENT: throw VideoSourceError.deviceNotFound(path: path)
        case EBUSY: throw VideoSourceError.deviceBusy(path: path)
        case EACCES, EPERM:
            throw VideoSourceError.deviceUnavailable(path: path, reason: "permission denied (add the user to the 'video' group)")
        case ENODEV, ENXIO:
            throw VideoSourceError.deviceUnavailable(path: path, reason: "the node exists but no device is behind it (unplugged?)")
        default: throw VideoSourceError.deviceUnavailable(path: path, reason: errnoText(code))
        }
    }

    private static func deviceCaps(_ cap: v4l2_capability) -> UInt32 {
        cap.capabilities & UInt32(V4L2_CAP_DEVICE_CAPS) != 0 ? cap.device_caps : cap.capabilities
    }

    private static func nodeKind(_ caps: UInt32) -> String {
        if caps & UInt32(V4L2_CAP_VIDEO_CAPTURE) != 0 { return "video capture" }
        if caps & UInt32(V4L2_CAP_VIDEO_CAPTURE_MPLANE) != 0 { return "multi-planar video capture" }
        if caps & UInt32(V4L2_CAP_META_CAPTURE) != 0 { return "metadata capture" }
        if caps & UInt32(V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_VIDEO_OUTPUT_MPLANE) != 0 { return "video output" }
        if caps & UInt32(V4L2_CAP_VIDEO_M2M | V4L2_CAP_VIDEO_M2M_MPLANE) != 0 { return "memory-to-memory codec" }
        if caps & UInt32(V4L2_CAP_VBI_CAPTURE | V4L2_CAP_SLICED_VBI_CAPTURE) != 0 { return "VBI capture" }
        if caps & UInt32(V4L2_CAP_SDR_CAPTURE) != 0 { return "software-defined radio" }
        if caps & UInt32(V4L2_CAP_TOUCH) != 0 { return "touch sensor" }
        return "non-capture"
    }

    private static func frameRates(_ fd: Int32, _ pixelFormat: UInt32, _ width: Int, _ height: Int) -> [Double] {
        var rates: [Double] = []
        var index: UInt32 = 0
        while index < 64 {
            var interval = v4l2_frmivalenum()
            interval.index = index
            interval.pixel_format = pixelFormat
            interval.width = UInt32(width)
            interval.height = UInt32(height)
            guard soundloc_ioctl(fd, SOUNDLOC_VIDIOC_ENUM_FRAMEINTERVALS, &interval) == 0 else { break }
            index += 1
            func rate(_ f: v4l2_fract) -> Double? { f.numerator > 0 ? Double(f.denominator) / Double(f.numerator) : nil }
            if interval.type == V4L2_FRMIVAL_TYPE_DISCRETE.rawValue {
                if let r = rate(interval.discrete) { rates.append(r) }
            } else {
                rates += [rate(interval.stepwise.min), rate(interval.stepwise.max)].compactMap { $0 }
                break
            }
        }
        return rates.sorted(by: >)
    }
}

private func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}
#endif

/// The text of a NUL-terminated C array (driver and card names are fixed-size char arrays).
private func cString(_ bytes: UnsafeRawBufferPointer) -> String {
    String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
}

/// "YUYV", "MJPG", ...: a V4L2 pixel format's four characters (little-endian), trailing spaces dropped.
func fourccText(_ code: UInt32) -> String {
    let base = code & ~(1 << 31)  // the big-endian flag
    let characters = (0..<4).map { UInt8(truncatingIfNeeded: base >> (8 * $0)) }
        .map { (32...126).contains($0) ? Character(Unicode.Scalar($0)) : "?" }
    var text = String(characters)
    while text.hasSuffix(" ") { text.removeLast() }
    return code & (1 << 31) != 0 ? text + "-BE" : text
}
