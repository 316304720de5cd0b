import Foundation
import SoundlocBase

/// A decoded RIFF/WAVE file, downmixed to mono float samples in [-1, 1).
public struct WAVFile: Sendable {
    public var samples: [Float]
    public var sampleRate: Int
    /// Channel count of the file before downmixing.
    public var channels: Int
    /// "16-bit PCM", "32-bit float", ... for messages.
    public var encoding: String

    /// Channel counts above this are treated as a corrupt header rather than real audio.
    public static let maxChannels = 32
    /// Largest magnitude accepted in a float WAV. Full scale is ±1; processed audio may go a few dB over it,
    /// but 32 (+30 dBFS) is no recording: it is integer data labelled float, or corruption, and would read as
    /// levels of hundreds of dB and keep the silence gate from ever closing.
    public static let maxFloatMagnitude: Double = 32
    /// Files larger than this are refused before reading: 1 GiB is over 9 hours of 16-kHz 32-bit float stereo.
    public static let maxFileBytes = 1 << 30

    /// Reads and validates a WAV file: 16-bit PCM or 32/64-bit float, any channel count up to `maxChannels`.
    public static func read(path: String) throws -> WAVFile {
        let bytes: [UInt8]
        do { bytes = try InputFile.read(path, limit: maxFileBytes) } catch let error as InputFileError {
            throw AudioSourceError.invalidFile(path: path, reason: error.reason)
        }
        return try parse(bytes, path: path)
    }

    /// Reads a WAV file that must already be at `sampleRate`; the message says how to convert one that is not.
    public static func read(path: String, requiring sampleRate: Int) throws -> WAVFile {
        let file = try read(path: path)
        guard file.sampleRate == sampleRate else {
            throw AudioSourceError.unsupportedFormat(
                path: path,
                reason: "sample rate \(file.sampleRate) Hz, soundloc needs \(sampleRate) Hz; convert with `sox IN.wav -r \(sampleRate) OUT.wav` or `ffmpeg -i IN.wav -ar \(sampleRate) OUT.wav`")
        }
        return file
    }

    /// Parses the bytes of a WAV file; `path` only labels errors.
    public static func parse(_ bytes: [UInt8], path: String) throws -> WAVFile {
        func invalid(_ reason: String) -> AudioSourceError { .invalidFile(path: path, reason: reason) }
        func unsupported(_ reason: String) -> AudioSourceError { .unsupportedFormat(path: path, reason: reason) }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        func tag(_ at: Int) -> String { String(decoding: bytes[at..<(at + 4)], as: UTF8.self) }
        /// A chunk id as a message may quote it: the file chose those 4 bytes.
        func quoted(_ id: String) -> String { "'\(TerminalText.escaped(id))'" }

        guard bytes.count >= 12 else { throw invalid("only \(bytes.count) bytes, too short for a RIFF header") }
        guard tag(0) == "RIFF", tag(8) == "WAVE" else {
            if tag(0) == "RF64" { throw unsupported("RF64 (64-bit WAV) files are not supported") }
            throw invalid("no RIFF/WAVE signature (is it really a WAV file?)")
        }
        var format: (tag: Int, channels: Int, rate: Int, blockAlign: Int, bits: Int)?
        var position = 12
        while position + 8 <= bytes.count {
            let id = tag(position)
            let size = u32(position + 4)
            let body = position + 8
            let available = bytes.count - body
            if id == "fmt " {
                guard size >= 16, available >= 16 else { throw invalid("'fmt ' chunk is truncated") }
                var formatTag = u16(body)
                if formatTag == 0xFFFE {  // WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID
                    guard size >= 40, available >= 40 else { throw invalid("extensible 'fmt ' chunk is truncated") }
                    formatTag = u16(body + 24)
                }
                format = (formatTag, u16(body + 2), u32(body + 4), u16(body + 12), u16(body + 14))
            } else if id == "data" {
                guard let format else { throw invalid("'data' chunk comes before any 'fmt ' chunk") }
                guard size <= available else {
                    throw invalid("data chunk declares \(size) bytes but only \(available) follow (file truncated?)")
                }
                return try decode(bytes[body..<(body + size)], format: format, path: path)
            }
            guard size <= available else { throw invalid("\(quoted(id)) chunk declares \(size) bytes but only \(available) follow") }
            position = body + size + (size & 1)
        }
        throw invalid(format == nil ? "no 'fmt ' chunk (truncated header?)" : "no 'data' chunk")
    }

    private static func decode(
        _ data: ArraySlice<UInt8>, format: (tag: Int, channels: Int, rate: Int, blockAlign: Int, bits: Int), path: String
    ) throws -> WAVFile {
        func invalid(_ reason: String) -> AudioSourceError { .invalidFile(path: path, reason: reason) }
        func unsupported(_ reason: String) -> AudioSourceError { .unsupportedFormat(path: path, reason: reason) }
        let channels = format.channels
        guard channels >= 1 else { throw invalid("header says 0 channels") }
        guard channels <= maxChannels else { throw invalid("header says \(channels) channels (more than \(maxChannels) is not plausible)") }
        guard format.rate > 0, format.rate <= 768_000 else { throw invalid("implausible sample rate \(format.rate) Hz") }
        let encoding: String
        switch (format.tag, format.bits) {
        case (1, 16): encoding = "16-bit PCM"
        case (3, 32): encoding = "32-bit float"
        case (3, 64): encoding = "64-bit float"
        case (1, let bits):
            throw unsupported("\(bits)-bit PCM; soundloc reads 16-bit PCM or float, convert with `sox IN.wav -b 16 OUT.wav`")
        case (3, let bits): throw unsupported("\(bits)-bit float samples")
        case (let tag, _):
            throw unsupported("WAV format tag 0x\(String(tag, radix: 16)) (compressed?); convert with `sox IN.wav -e signed -b 16 OUT.wav`")
        }
        let bytesPerSample = format.bits / 8
        guard format.blockAlign == channels * bytesPerSample else {
            throw invalid("block align \(format.blockAlign) does not match \(channels) channels of \(format.bits) bits")
        }
        let frames = data.count / format.blockAlign
        guard frames > 0 else { throw invalid("contains no samples") }
        var samples = [Float](repeating: 0, count: frames)
        let scale = 1 / Float(channels)
        /// A float sample that is no audio: NaN, infinite or absurdly loud; named by position for the message.
        func garbage(_ value: Double, frame: Int, channel: Int) -> AudioSourceError {
            let position = String(format: "sample %d%@ (%.3f s)", frame, channels > 1 ? " channel \(channel)" : "",
                                  Double(frame) / Double(format.rate))
            let what = value.isNaN ? "NaN" : value.isInfinite ? "\(value > 0 ? "+" : "-")infinity"
                : String(format: "%g, beyond ±%g (+%.0f dBFS)", value, maxFloatMagnitude, 20 * log10(maxFloatMagnitude))
            return invalid("\(position) is \(what); a \(encoding) WAV must hold finite samples near ±1")
        }
        try data.withUnsafeBytes { raw in
            for frame in 0..<frames {
                var sum: Float = 0
                for channel in 0..<channels {
                    let offset = frame * format.blockAlign + channel * bytesPerSample
                    let value: Double
                    switch bytesPerSample {
                    case 2:
                        sum += Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int16.self))) / 32768
                        continue
                    case 4: value = Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))))
                    default: value = Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
                    }
                    // `!(|x| <= max)` is also true for NaN.
                    guard abs(value) <= maxFloatMagnitude else { throw garbage(value, frame: frame, channel: channel) }
                    sum += Float(value)
                }
                samples[frame] = channels == 1 ? sum : sum * scale
            }
        }
        return WAVFile(samples: samples, sampleRate: format.rate, channels: channels, encoding: encoding)
    }

    /// Encodes mono samples as 16-bit PCM WAV bytes (clipping to the int16 range).
    public static func encodePCM16(_ samples: [Float], sampleRate: Int) -> [UInt8] {
        var out = [UInt8]()
        func put32(_ v: Int) { for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> shift)) } }
        func put16(_ v: Int) { out.append(UInt8(truncatingIfNeeded: v)); out.append(UInt8(truncatingIfNeeded: v >> 8)) }
        out += Array("RIFF".utf8); put32(36 + samples.count * 2); out += Array("WAVEfmt ".utf8)
        put32(16); put16(1); put16(1); put32(sampleRate); put32(sampleRate * 2); put16(2); put16(16)
        out += Array("data".utf8); put32(samples.count * 2)
        for sample in samples {
            put16(Int(max(-32768, min(32767, (sample * 32768).rounded()))))
        }
        return out
    }
}

/// Plays a WAV file as an `AudioSource`; timestamps are sample positions (no clock).
public final class WAVFileSource: AudioSource {
    public let sampleRate: Int
    private var samples: [Float]
    private var position = 0
    private var isClosed = false

    /// Opens `path`, which must be at `sampleRate`.
    public init(path: String, sampleRate: Int = 16000) throws {
        let file = try WAVFile.read(path: path, requiring: sampleRate)
        self.samples = file.samples
        self.sampleRate = sampleRate
    }

    /// Samples in the whole file.
    public var sampleCount: Int { samples.count }

    public func read(maxFrames: Int) throws -> AudioBlock? {
        guard !isClosed else { throw AudioSourceError.closed }
        guard position < samples.count else { return nil }
        let end = min(samples.count, position + max(1, maxFrames))
        defer { position = end }
        return AudioBlock(samples: Array(samples[position..<end]), firstSampleIndex: Int64(position), captureTimeNanos: nil)
    }

    public func close() {
        isClosed = true
        samples = []
    }
}
