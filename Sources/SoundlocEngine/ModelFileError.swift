import SoundlocBase

/// Why a model file was rejected. Every case that concerns one tensor names it; `description` is one line.
public enum ModelFileError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    /// Shorter than the 8-byte header length field.
    case tooSmall(fileSize: Int)
    /// The header length field does not fit the file.
    case badHeaderLength(declared: UInt64, fileSize: Int)
    case malformedHeader(reason: String)
    /// A header entry is not `{dtype, shape, data_offsets}` with sane values.
    case malformedEntry(tensor: String, reason: String)
    case unknownDType(tensor: String, dtype: String)
    case offsetsOutOfRange(tensor: String, begin: Int, end: Int, dataSize: Int)
    case overlappingOffsets(tensor: String, other: String)
    /// Bytes between tensors (or after the last) that belong to no tensor.
    case gapInData(tensor: String, expectedBegin: Int, begin: Int)
    case byteCountMismatch(tensor: String, shape: [Int], dtype: String, bytes: Int)
    case missingTensor(String)
    case unexpectedTensor(String)
    case wrongDType(tensor: String, expected: String, found: String)
    case wrongShape(tensor: String, expected: [Int], found: [Int])
    case nonFinite(tensor: String, index: Int, value: Float)
    /// Finite, but larger than any trained weight or quantisation parameter (`SafeTensorsFile.maxMagnitude`).
    case implausibleValue(tensor: String, index: Int, value: Float, limit: Float)
    case missingMetadata(key: String)
    case badMetadata(key: String, reason: String)
    case checksumMismatch(recorded: String, computed: String)

    /// The tensor the error is about, when there is one.
    public var tensor: String? {
        switch self {
        case .malformedEntry(let t, _), .unknownDType(let t, _), .offsetsOutOfRange(let t, _, _, _),
             .overlappingOffsets(let t, _), .gapInData(let t, _, _), .byteCountMismatch(let t, _, _, _),
             .missingTensor(let t), .unexpectedTensor(let t), .wrongDType(let t, _, _), .wrongShape(let t, _, _),
             .nonFinite(let t, _, _), .implausibleValue(let t, _, _, _):
            return t
        default:
            return nil
        }
    }

    /// One line, with control characters from the file (names, metadata values) escaped.
    public var description: String { TerminalText.escaped(text) }

    private var text: String {
        switch self {
        case .cannotOpen(let path, let reason): return "cannot open model file \(path): \(reason)"
        case .tooSmall(let size): return "model file is \(size) bytes, too small for a safetensors header"
        case .badHeaderLength(let declared, let size):
            return "header length \(declared) does not fit a file of \(size) bytes (truncated or not safetensors)"
        case .malformedHeader(let reason): return "malformed safetensors header: \(reason)"
        case .malformedEntry(let t, let reason): return "tensor '\(t)': malformed header entry: \(reason)"
        case .unknownDType(let t, let d): return "tensor '\(t)': unknown dtype '\(d)'"
        case .offsetsOutOfRange(let t, let b, let e, let size):
            return "tensor '\(t)': data offsets [\(b), \(e)) outside the \(size)-byte data section (truncated file?)"
        case .overlappingOffsets(let t, let o): return "tensor '\(t)': data overlaps tensor '\(o)'"
        case .gapInData(let t, let expected, let begin):
            return "tensor '\(t)': data starts at \(begin) but the previous tensor ends at \(expected) (unaccounted bytes)"
        case .byteCountMismatch(let t, let shape, let d, let bytes):
            return "tensor '\(t)': \(bytes) bytes do not hold shape \(shape) of \(d)"
        case .missingTensor(let t): return "tensor '\(t)' is missing"
        case .unexpectedTensor(let t): return "tensor '\(t)' is not part of this model format (unexpected tensor)"
        case .wrongDType(let t, let e, let f): return "tensor '\(t)': dtype \(f), expected \(e)"
        case .wrongShape(let t, let e, let f): return "tensor '\(t)': shape \(f), expected \(e)"
        case .nonFinite(let t, let i, let v): return "tensor '\(t)': non-finite value \(v) at element \(i)"
        case .implausibleValue(let t, let i, let v, let limit):
            return "tensor '\(t)': value \(v) at element \(i) is beyond ±\(limit), larger than any trained weight (crafted or corrupt file?)"
        case .missingMetadata(let k): return "metadata '\(k)' is missing"
        case .badMetadata(let k, let reason): return "metadata '\(k)' is malformed: \(reason)"
        case .checksumMismatch(let recorded, let computed):
            return "checksum mismatch: file records \(recorded), data section hashes to sha256:\(computed) (corrupt file)"
        }
    }
}
