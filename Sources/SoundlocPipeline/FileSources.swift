import Foundation
import SoundlocBase
import SoundlocCapture

/// The shared time base of file-driven runs: sample n and frame n are stamped relative to one start time,
/// and in real-time mode each is delivered no earlier than its stamp.
public final class PlaybackClock: Sendable {
    public let startNanos: UInt64
    public let realTime: Bool

    public init(realTime: Bool, startNanos: UInt64 = monotonicNanos()) {
        self.realTime = realTime
        self.startNanos = startNanos
    }

    /// The stamp of an event `seconds` after the start (clamped to 0...10⁹ s, so no input can make it trap).
    public func stamp(_ seconds: Double) -> UInt64 {
        let clamped = seconds.isFinite ? min(max(0, seconds), 1e9) : 0
        return startNanos &+ UInt64(clamped * 1e9)
    }

    /// In real-time mode, sleeps until `stamp`.
    func wait(until stamp: UInt64) {
        guard realTime else { return }
        let now = monotonicNanos()
        if stamp > now { Thread.sleep(forTimeInterval: Double(stamp - now) / 1e9) }
    }
}

/// Plays a finite audio source on a `PlaybackClock`: blocks are stamped (and, in real time, paced) by position.
public final class PacedAudioSource: AudioSource {
    private let source: AudioSource
    private let clock: PlaybackClock
    public var sampleRate: Int { source.sampleRate }

    public init(_ source: AudioSource, clock: PlaybackClock) {
        self.source = source
        self.clock = clock
    }

    public func read(maxFrames: Int) throws -> AudioBlock? {
        guard var block = try source.read(maxFrames: maxFrames) else { return nil }
        let first = Double(block.firstSampleIndex) / Double(sampleRate)
        let last = Double(block.firstSampleIndex + Int64(block.samples.count)) / Double(sampleRate)
        clock.wait(until: clock.stamp(last))  // a block exists only once its last sample was "recorded"
        block.captureTimeNanos = clock.stamp(first)
        return block
    }

    public func close() { source.close() }
}

/// Frames from files: a folder of PNG/PPM images (sorted by name), a YUV4MPEG2 (.y4m) stream, or one still
/// image repeated; stamped and paced at `fps` on a `PlaybackClock`.
public final class FileVideoSource: VideoSource {
    private enum Input {
        case folder([String])
        case y4m(Y4MReader)
        case still(RGBImage, count: Int)
    }

    public let fps: Double
    /// Width and height of the frames (of the first frame, for a folder).
    public private(set) var frameSize: (width: Int, height: Int) = (0, 0)
    private let clock: PlaybackClock
    private var input: Input
    private var index = 0
    private var isClosed = false

    /// Opens `path`: a directory of images, a `.y4m` file, or a single image shown for `stillSeconds`.
    public init(path: String, fps: Double, clock: PlaybackClock, stillSeconds: Double = 10) throws {
        precondition(fps > 0)
        self.clock = clock
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw VideoSourceError.deviceNotFound(path: path)
        }
        if isDirectory.boolValue {
            let names = try FileManager.default.contentsOfDirectory(atPath: path)
                .filter { ["png", "ppm", "pnm"].contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
            guard !names.isEmpty else {
                throw VideoSourceError.formatUnavailable(path: path, reason: "no .png or .ppm frames in the folder")
            }
            input = .folder(names.map { "\(path)/\($0)" })
            let first = try ImageFile.read(path: "\(path)/\(names[0])")
            frameSize = (first.width, first.height)
            self.fps = fps
        } else if path.lowercased().hasSuffix(".y4m") {
            let reader = try Y4MReader(path: path)
            input = .y4m(reader)
            frameSize = (reader.width, reader.height)
            self.fps = reader.fps ?? fps
        } else {
            let image = try ImageFile.read(path: path)
            input = .still(image, count: max(1, Int((stillSeconds * fps).rounded())))
            frameSize = (image.width, image.height)
            self.fps = fps
        }
    }

    public func nextFrame(timeout: Double) throws -> VideoFrame? {
        guard !isClosed else { throw VideoSourceError.closed }
        let image: RGBImage
        switch input {
        case let .folder(paths):
            guard index < paths.count else { return nil }
            image = try ImageFile.read(path: paths[index])
        case let .y4m(reader):
            guard let frame = try reader.next() else { return nil }
            image = frame
        case let .still(still, count):
            guard index < count else { return nil }
            image = still
        }
        let stamp = clock.stamp(Double(index) / fps)
        clock.wait(until: stamp)
        defer { index += 1 }
        return VideoFrame(pixels: image.pixels, width: image.width, height: image.height, sequence: UInt64(index),
                          captureTimeNanos: stamp)
    }

    public func close() { isClosed = true }
}

/// Minimal YUV4MPEG2 reader: 8-bit 4:2:0 (C420, C420jpeg, C420paldv, C420mpeg2) or mono, converted to RGB
/// with BT.601 limited-range coefficients — what `ffmpeg -i IN -pix_fmt yuv420p OUT.y4m` writes.
final class Y4MReader {
    let width: Int, height: Int
    let fps: Double?
    private let handle: FileHandle
    private let chroma: Bool
    private let path: String

    init(path: String) throws {
        self.path = path
        self.handle = FileHandle(fileDescriptor: try InputFile.openForReading(path).descriptor, closeOnDealloc: true)
        let header = try Self.line(handle, path: path)
        let parsed = try Self.parseHeader(header, path: path)
        width = parsed.width; height = parsed.height; fps = parsed.fps; chroma = parsed.chroma
    }

    /// Largest width or height accepted (8K is 7680; 16384 leaves room without letting products overflow).
    static let maxSide = 16384
    /// Frame rates accepted from the `F` field, as for `--fps`: one frame in 100 s up to 240 per second.
    static let fpsRange = 0.01...240.0
    /// The 8-bit colour spaces this reader converts; `420` means 4:2:0 with any chroma siting.
    static let colourSpaces: Set<String> = ["420", "420jpeg", "420paldv", "420mpeg2", "mono"]

    /// Parses and range-checks the stream header line: every number is checked before any arithmetic uses
    /// it, so a crafted header (zero, negative or enormous sizes, a zero denominator) is an error, not a trap.
    static func parseHeader(_ header: String, path: String) throws
        -> (width: Int, height: Int, fps: Double?, chroma: Bool) {
        func refuse(_ why: String) -> VideoSourceError { .formatUnavailable(path: path, reason: why) }
        func clip(_ text: Substring) -> String { TerminalText.escaped(String(text.prefix(40))) }
        let fields = header.split(separator: " ")
        guard fields.first == "YUV4MPEG2" else { throw refuse("not a YUV4MPEG2 stream") }
        var w: Int?, h: Int?, rate: Double?, colour = "420jpeg"
        func side(_ value: Substring, _ name: String) throws -> Int {
            guard let n = Int(value), (1...maxSide).contains(n) else {
                throw refuse("frame \(name) '\(clip(value))' is not a whole number in 1...\(maxSide)")
            }
            return n
        }
        for field in fields.dropFirst() {
            let value = field.dropFirst()
            switch field.first {
            case "W": w = try side(value, "width")
            case "H": h = try side(value, "height")
            case "F":
                let parts = value.split(separator: ":", omittingEmptySubsequences: false)
                guard parts.count == 2, let numerator = Int(parts[0]), let denominator = Int(parts[1]),
                      numerator > 0, denominator > 0 else {
                    throw refuse("frame rate 'F\(clip(value))' is not two positive whole numbers N:D")
                }
                let fps = Double(numerator) / Double(denominator)
                guard fpsRange.contains(fps) else {
                    throw refuse("frame rate \(numerator):\(denominator) is \(String(format: "%g", fps)) fps, outside \(fpsRange.lowerBound)...\(Int(fpsRange.upperBound))")
                }
                rate = fps
            case "C": colour = String(value)
            default: break
            }
        }
        guard let w, let h else { throw refuse("the header gives no frame size (W and H)") }
        let (pixels, overflow) = w.multipliedReportingOverflow(by: h)
        guard !overflow, pixels <= ImageFile.maxPixels else {
            throw refuse("frame size \(w)x\(h) is more than \(ImageFile.maxPixels) pixels")
        }
        guard colourSpaces.contains(colour) else {
            throw refuse("colour space C\(clip(Substring(colour))); convert with `ffmpeg -i IN -pix_fmt yuv420p OUT.y4m`")
        }
        return (w, h, rate, colour != "mono")
    }

    private static func line(_ handle: FileHandle, path: String) throws -> String {
        var bytes = [UInt8]()
        while true {
            guard let byte = try handle.read(upToCount: 1), let b = byte.first else {
                if bytes.isEmpty { return "" }
                throw VideoSourceError.formatUnavailable(path: path, reason: "truncated header")
            }
            if b == 0x0A { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(b)
            if bytes.count > 1024 { throw VideoSourceError.formatUnavailable(path: path, reason: "header line too long") }
        }
    }

    func next() throws -> RGBImage? {
        let marker = try Self.line(handle, path: path)
        if marker.isEmpty { return nil }
        guard marker.hasPrefix("FRAME") else {
            throw VideoSourceError.formatUnavailable(path: path, reason: "expected FRAME marker")
        }
        let cw = (width + 1) / 2, ch = (height + 1) / 2
        let size = width * height + (chroma ? 2 * cw * ch : 0)
        guard let data = try handle.read(upToCount: size), data.count == size else { return nil }  // a cut-off last frame ends the stream
        let planes = [UInt8](data)
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let luma = 1.164 * (Double(planes[y * width + x]) - 16)
                var (r, g, b) = (luma, luma, luma)
                if chroma {
                    let ci = (y / 2) * cw + x / 2
                    let u = Double(planes[width * height + ci]) - 128, v = Double(planes[width * height + cw * ch + ci]) - 128
                    r += 1.596 * v; g -= 0.392 * u + 0.813 * v; b += 2.017 * u
                }
                let p = (y * width + x) * 3
                rgb[p] = UInt8(max(0, min(255, r.rounded())))
                rgb[p + 1] = UInt8(max(0, min(255, g.rounded())))
                rgb[p + 2] = UInt8(max(0, min(255, b.rounded())))
            }
        }
        return RGBImage(width: width, height: height, pixels: rgb)
    }
}
