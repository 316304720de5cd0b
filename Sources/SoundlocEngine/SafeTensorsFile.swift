import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

import SoundlocBase

#if _endian(big)
#error("model files are little-endian; a big-endian host needs byte swapping at load")
#endif

/// Element types a safetensors header may name. Only some are accepted by a given model format.
public enum DType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

/// One header entry. `byteRange` is relative to the start of the data section.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let byteRange: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

/// What a model format expects of one tensor.
public struct TensorSpec: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public init(_ name: String, _ shape: [Int], dtype: DType = .f32) {
        self.name = name
        self.shape = shape
        self.dtype = dtype
    }
}

/// A safetensors file, memory-mapped read-only, with its header parsed and structurally validated:
/// header length, entry syntax, dtypes, byte counts, offsets in range, contiguous and non-overlapping.
/// Content checks that need a format (expected names and shapes, finiteness) are separate calls.
public final class SafeTensorsFile: WeightSource {
    public let path: String
    public let fileSize: Int
    /// Length of the JSON header in bytes (the data section starts at 8 + headerLength).
    public let headerLength: Int
    /// `__metadata__` (string to string), empty when absent.
    public let metadata: [String: String]
    /// All tensors, in data-section order.
    public let tensors: [TensorInfo]
    private let byName: [String: Int]
    private let mapping: UnsafeMutableRawPointer?

    /// Largest |value| accepted in an F32 tensor. The shipped models stay below 20 (the dictionary, the
    /// affine and loc.scale; BN-folded conv weights below 10) and int8 files store at most 255 (zero points);
    /// 1e6 leaves five orders of magnitude for other trainings, and refuses the finite but huge values of a
    /// crafted file before they overflow activations to infinity and reach a Float→Int conversion.
    public static let maxMagnitude: Float = 1e6
    /// Longest JSON header accepted (safetensors' own limit); a real one is a few tens of KB.
    public static let maxHeaderLength = 100 << 20

    /// Maps and validates the file at `path`; throws `ModelFileError`.
    public init(path: String) throws {
        self.path = path
        let opened: (descriptor: Int32, size: Int)
        do { opened = try InputFile.openForReading(path) } catch let error as InputFileError {
            throw ModelFileError.cannotOpen(path: path, reason: error.reason)
        }
        let fd = opened.descriptor
        defer { close(fd) }
        fileSize = opened.size
        guard fileSize >= 8 else { throw ModelFileError.tooSmall(fileSize: fileSize) }
        guard let m = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw ModelFileError.cannotOpen(path: path, reason: "mmap: " + String(cString: strerror(errno)))
        }
        // Swift runs no deinit for an object whose init throws before every stored property is set, so the
        // mapping is released here on every refusal (a fuzzing campaign found each refused file left mapped).
        let parsed: (metadata: [String: String], tensors: [TensorInfo])
        do {
            let declared = UInt64(littleEndian: UnsafeRawPointer(m).loadUnaligned(as: UInt64.self))
            guard declared >= 2, declared <= UInt64(fileSize - 8), declared <= UInt64(Self.maxHeaderLength) else {
                throw ModelFileError.badHeaderLength(declared: declared, fileSize: fileSize)
            }
            headerLength = Int(declared)
            let headerBytes = Data(bytesNoCopy: m + 8, count: headerLength, deallocator: .none)
            parsed = try Self.parseHeader(headerBytes, dataSize: fileSize - 8 - headerLength)
        } catch {
            munmap(m, fileSize)
            throw error
        }
        mapping = m
        metadata = parsed.metadata
        tensors = parsed.tensors
        var index = [String: Int]()
        for (i, t) in tensors.enumerated() { index[t.name] = i }
        byName = index
    }

    deinit {
        if let mapping { munmap(mapping, fileSize) }
    }

    /// Size of the data section in bytes.
    public var dataSize: Int { fileSize - 8 - headerLength }

    /// The data section: every byte after the header.
    public var dataSection: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: UnsafeRawPointer(mapping!) + 8 + headerLength, count: dataSize)
    }

    public func info(_ name: String) -> TensorInfo? {
        byName[name].map { tensors[$0] }
    }

    /// Raw little-endian bytes of a tensor (inside the mapping; valid while the file object lives).
    public func bytes(of tensor: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: dataSection[tensor.byteRange])
    }

    /// Hex SHA-256 of the data section.
    ///
    /// The checksum covers the data section only, as Models/FORMAT.md and Tools/dsol/export.py define it, and
    /// that is kept: every shipped file and every file the exporter writes must keep loading, and the exporter
    /// hashes the data before it writes the header that holds the hash. A hash over the header would not
    /// stop a crafted file anyway (whoever edits the header recomputes it; it detects corruption, it is no
    /// signature). The header is protected differently: it must be a well-formed JSON object no longer than
    /// `maxHeaderLength`, every entry's shape and offsets are checked with overflow-checked arithmetic
    /// against the file, every metadata number is range-checked before use (`ModelMetadata.Limits`), and
    /// every F32 value must be finite and within `maxMagnitude` (`withFloats`).
    public func computeChecksum() -> String {
        SHA256.hex(dataSection)
    }

    /// Compares the data section with metadata `checksum` (`sha256:<hex>`).
    public func verifyChecksum() throws {
        guard let recorded = metadata["checksum"] else { throw ModelFileError.missingMetadata(key: "checksum") }
        let prefix = "sha256:"
        let hex = recorded.hasPrefix(prefix) ? String(recorded.dropFirst(prefix.count)).lowercased() : ""
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit }) else {
            throw ModelFileError.badMetadata(key: "checksum", reason: "expected sha256:<64 hex digits>, got '\(recorded)'")
        }
        let computed = computeChecksum()
        dropResidentPages()
        guard computed == hex else { throw ModelFileError.checksumMismatch(recorded: recorded, computed: computed) }
    }

    /// Checks the tensor set against a format: every spec present with its dtype and shape, nothing else.
    /// Reports the first problem in spec order (missing, dtype, shape), then unexpected tensors.
    public func validate(against specs: [TensorSpec]) throws {
        for spec in specs {
            guard let t = info(spec.name) else { throw ModelFileError.missingTensor(spec.name) }
            guard t.dtype == spec.dtype else {
                throw ModelFileError.wrongDType(tensor: spec.name, expected: spec.dtype.rawValue, found: t.dtype.rawValue)
            }
            guard t.shape == spec.shape else {
                throw ModelFileError.wrongShape(tensor: spec.name, expected: spec.shape, found: t.shape)
            }
        }
        let known = Set(specs.map(\.name))
        if let extra = tensors.first(where: { !known.contains($0.name) }) {
            throw ModelFileError.unexpectedTensor(extra.name)
        }
    }

    /// Copies an F32 tensor out, rejecting NaN, infinity and values beyond `maxMagnitude`; shape checks are `validate`'s job.
    public func floats(_ name: String) throws -> [Float] {
        try withFloats(name) { Array($0) }
    }

    /// Calls `body` with an F32 tensor's values straight from the mapping (copied only when the file
    /// misaligns them), rejecting NaN, infinity and values beyond `maxMagnitude`; the tensor's pages are released afterwards.
    public func withFloats<R>(_ name: String, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        guard let t = info(name) else { throw ModelFileError.missingTensor(name) }
        guard t.dtype == .f32 else { throw ModelFileError.wrongDType(tensor: name, expected: "F32", found: t.dtype.rawValue) }
        defer { dropResidentPages(of: t) }
        let raw = bytes(of: t)
        let n = t.elementCount
        func checked(_ values: UnsafeBufferPointer<Float>) throws -> R {
            // `!(|x| <= limit)` also catches NaN.
            for i in 0..<n where !(abs(values[i]) <= Self.maxMagnitude) {
                if !values[i].isFinite { throw ModelFileError.nonFinite(tensor: name, index: i, value: values[i]) }
                throw ModelFileError.implausibleValue(tensor: name, index: i, value: values[i], limit: Self.maxMagnitude)
            }
            return try body(values)
        }
        if n == 0 { return try checked(UnsafeBufferPointer(start: nil, count: 0)) }
        if Int(bitPattern: raw.baseAddress!) % MemoryLayout<Float>.alignment == 0 {
            return try checked(UnsafeBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: Float.self), count: n))
        }
        var copy = [Float](repeating: 0, count: n)
        copy.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<(n * 4)])) }
        return try copy.withUnsafeBufferPointer { try checked($0) }
    }

    /// Lets the kernel drop this mapping's pages from our resident set (they stay in the page cache);
    /// keeps peak RSS near one copy of the weights while they are repacked.
    public func dropResidentPages() {
        guard let mapping else { return }
        _ = madvise(mapping, fileSize, Int32(MADV_DONTNEED))
    }

    private func dropResidentPages(of t: TensorInfo) {
        guard let mapping else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let begin = 8 + headerLength + t.byteRange.lowerBound
        let end = 8 + headerLength + t.byteRange.upperBound
        let alignedBegin = (begin + page - 1) / page * page
        let alignedEnd = end / page * page
        if alignedEnd > alignedBegin {
            _ = madvise(mapping + alignedBegin, alignedEnd - alignedBegin, Int32(MADV_DONTNEED))
        }
    }

    // MARK: - Header parsing


    private static func parseHeader(_ data: Data, dataSize: Int) throws -> (metadata: [String: String], tensors: [TensorInfo]) {
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw ModelFileError.malformedHeader(reason: "not valid JSON (\(error.localizedDescription))")
        }
        guard let top = json as? [String: Any] else { throw ModelFileError.malformedHeader(reason: "not a JSON object") }
        var metadata = [String: String]()
        if let raw = top["__metadata__"] {
            guard let dict = raw as? [String: Any] else {
                throw ModelFileError.malformedHeader(reason: "__metadata__ is not an object")
            }
            for (k, v) in dict {
                guard let s = v as? String else {
                    throw ModelFileError.badMetadata(key: k, reason: "value is not a string")
                }
                metadata[k] = s
            }
        }
        var infos = [TensorInfo]()
        for name in top.keys.sorted() where name != "__metadata__" {
            guard let entry = top[name] as? [String: Any] else {
                throw ModelFileError.malformedEntry(tensor: name, reason: "not an object")
            }
            guard let dtypeName = entry["dtype"] as? String else {
                throw ModelFileError.malformedEntry(tensor: name, reason: "no dtype string")
            }
            guard let dtype = DType(rawValue: dtypeName) else { throw ModelFileError.unknownDType(tensor: name, dtype: dtypeName) }
            guard let shapeRaw = entry["shape"] as? [Any], let shape = integers(shapeRaw), shape.allSatisfy({ $0 >= 0 }) else {
                throw ModelFileError.malformedEntry(tensor: name, reason: "shape is not a list of non-negative integers")
            }
            guard let offRaw = entry["data_offsets"] as? [Any], let off = integers(offRaw), off.count == 2,
                  off[0] >= 0, off[1] >= off[0] else {
                throw ModelFileError.malformedEntry(tensor: name, reason: "data_offsets is not [begin, end] with 0 <= begin <= end")
            }
            guard off[1] <= dataSize else {
                throw ModelFileError.offsetsOutOfRange(tensor: name, begin: off[0], end: off[1], dataSize: dataSize)
            }
            var count = 1
            for d in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw ModelFileError.malformedEntry(tensor: name, reason: "shape \(shape) too large") }
                count = p
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, bytes == off[1] - off[0] else {
                throw ModelFileError.byteCountMismatch(tensor: name, shape: shape, dtype: dtypeName, bytes: off[1] - off[0])
            }
            infos.append(TensorInfo(name: name, dtype: dtype, shape: shape, byteRange: off[0]..<off[1]))
        }
        // Names were visited sorted, so ties in offset order are deterministic.
        infos.sort { ($0.byteRange.lowerBound, $0.byteRange.upperBound) < ($1.byteRange.lowerBound, $1.byteRange.upperBound) }
        var end = 0
        var previous: String?
        for t in infos {
            if t.byteRange.lowerBound < end, let previous {
                throw ModelFileError.overlappingOffsets(tensor: t.name, other: previous)
            }
            if t.byteRange.lowerBound > end {
                throw ModelFileError.gapInData(tensor: t.name, expectedBegin: end, begin: t.byteRange.lowerBound)
            }
            end = t.byteRange.upperBound
            previous = t.name
        }
        if end != dataSize {
            throw ModelFileError.malformedHeader(reason: "\(dataSize - end) bytes after the last tensor (\(previous ?? "none")) belong to no tensor")
        }
        return (metadata, infos)
    }

    /// JSON numbers as Ints, or nil if any is not an exact non-fractional integer.
    private static func integers(_ values: [Any]) -> [Int]? {
        var out = [Int]()
        out.reserveCapacity(values.count)
        for v in values {
            // JSON booleans arrive as NSNumber too, with objCType 'c'.
            guard let n = v as? NSNumber, n.objCType.pointee != 99 else { return nil }
            let d = n.doubleValue
            guard d == d.rounded(), abs(d) < 9e15 else { return nil }
            out.append(n.intValue)
        }
        return out
    }
}
