import Foundation
import SoundlocCapture
import SoundlocDSOL
import SoundlocEngine
import SoundlocFeatures
import SoundlocOutput
import SoundlocPipeline

/// What a parser made of one input. Refusing garbage with an error is the expected outcome; a trap, a crash or a
/// sanitizer report while getting here is the finding.
public enum FuzzOutcome: Equatable, Sendable {
    case accepted
    case refused(String)

    public var isAccepted: Bool { self == .accepted }
}

/// The parsers of outside input, one fuzz target each (Tools/fuzz.sh, Tests/Fuzz/<target>/ holds each seed corpus).
///
/// Every entry takes the raw bytes of one input and calls the real parser on them, the way soundloc does with a
/// file or a socket line, then uses what the parser accepted as soundloc would (pictures are preprocessed, model
/// files are loaded). Thrown errors are the parser saying no and are returned, never rethrown.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// `WAVFile.parse`: RIFF chunks, PCM and float formats, float sample checks.
    case wav
    /// `ImageFile.decode` (PNG, PPM/PGM), then `ImagePreprocessor` on the decoded picture.
    case image
    /// `FileVideoSource` on a `.y4m` file: the stream header, FRAME markers and frame planes.
    case y4m
    /// `DSOLModel` loading a model file: `SafeTensorsFile` (header JSON, offsets), `ModelMetadata`, the checksum,
    /// then every tensor's checks as the fp32 or int8 trunks and the heads take their weights.
    case safetensors
    /// `ApplianceConfig.parse` (its `check`) on a YAML board config (size, nesting and alias limits, every key).
    case config
    /// The socket server's command parser: each line as a client command (`ClientCommand.parse`), up to the first
    /// line over the protocol's 4096 bytes, where the server hangs up.
    case command
    /// The client side of the socket protocol: each line as a server message (`ServerMessage.decode`, what
    /// `soundloc watch` reads from whatever answers on the socket).
    case watch

    /// Feeds `bytes` to this target's parser.
    public func run(_ bytes: [UInt8]) -> FuzzOutcome {
        do {
            switch self {
            case .wav: try Self.wav(bytes)
            case .image: try Self.image(bytes)
            case .y4m: try Self.y4m(bytes)
            case .safetensors: try Self.safetensors(bytes)
            case .config: try Self.config(bytes)
            case .command: try Self.lines(bytes, maxLength: SoundlocProtocol.maxLineLength) { _ = try ClientCommand.parse($0) }
            case .watch: try Self.lines(bytes, maxLength: Int.max) { _ = try ServerMessage.decode($0) }
            }
            return .accepted
        } catch {
            return .refused("\(error)")
        }
    }

    // MARK: - Entries

    static func wav(_ bytes: [UInt8]) throws {
        let file = try WAVFile.parse(bytes, path: "fuzz.wav")
        // What the pipeline relies on once a file is accepted.
        precondition(!file.samples.isEmpty && file.samples.allSatisfy(\.isFinite), "accepted WAV with unusable samples")
    }

    static func image(_ bytes: [UInt8]) throws {
        let picture = try ImageFile.decode(bytes, path: "fuzz.png")
        // Preprocessing allocates per input size; keep that bounded to what a fuzzer can afford per input.
        guard picture.width * picture.height <= 1 << 22 else { return }
        let preprocessor = ImagePreprocessor(inputWidth: picture.width, inputHeight: picture.height)
        let chw = preprocessor.process(rgb: picture.pixels)
        precondition(chw.count == preprocessor.outputCount && chw.allSatisfy(\.isFinite), "preprocessing gave unusable values")
    }

    /// Frames read from one stream at most: inputs are small, but a 1×1 stream could hold thousands.
    static let maxFrames = 64

    static func y4m(_ bytes: [UInt8]) throws {
        try FuzzScratchFile.with(bytes, suffix: ".y4m") { path in
            let source = try FileVideoSource(path: path, fps: 25, clock: PlaybackClock(realTime: false))
            defer { source.close() }
            for _ in 0..<maxFrames {
                guard let frame = try source.nextFrame(timeout: 1) else { break }
                precondition(frame.pixels.count == frame.width * frame.height * 3, "frame of the wrong size")
            }
        }
    }

    static func safetensors(_ bytes: [UInt8]) throws {
        try FuzzScratchFile.with(bytes, suffix: ".safetensors") { path in
            // What `soundloc run` does: header, metadata, checksum, every tensor. A data section that no longer
            // matches its checksum (most mutations of a valid file) is loaded again without the hash, so that the
            // weight checks get fuzzed too; a malformed checksum entry stays an error.
            let model: DSOLModel
            do { model = try DSOLModel(path: path, threads: 1) } catch ModelFileError.checksumMismatch {
                model = try DSOLModel(path: path, threads: 1, verifyChecksum: false)
            }
            precondition(model.imageCount > 0 && model.audioCount > 0 && !model.classes.isEmpty, "model without inputs")
        }
    }

    static func config(_ bytes: [UInt8]) throws {
        // parse is check (every key, every problem) throwing the first problem.
        _ = try ApplianceConfig.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml")
    }

    /// Parses the lines of a stretch of a connection, up to the first one longer than `maxLength`; all are parsed,
    /// and the first refusal is the outcome.
    static func lines(_ bytes: [UInt8], maxLength: Int, _ parse: (ArraySlice<UInt8>) throws -> Void) throws {
        var firstError: Error?
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            guard line.count <= maxLength else { break }
            do { try parse(line) } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
    }
}

/// One file per process for the parsers that only read paths (y4m, model files), removed after each use; in
/// /dev/shm when there is one, so a fuzzing campaign does not write to disk.
enum FuzzScratchFile {
    static let directory: String = {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isDirectory), isDirectory.boolValue,
           access("/dev/shm", W_OK) == 0 {
            return "/dev/shm"
        }
        return NSTemporaryDirectory()
    }()

    static func with(_ bytes: [UInt8], suffix: String, _ body: (String) throws -> Void) throws {
        let path = "\(directory)/soundloc-fuzz-\(getpid())\(suffix)"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "cannot create \(path): \(String(cString: strerror(errno)))")
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            precondition(n > 0 || errno == EINTR, "cannot write \(path): \(String(cString: strerror(errno)))")
            if n > 0 { written += n }
        }
        close(fd)
        defer { unlink(path) }
        try body(path)
    }
}
