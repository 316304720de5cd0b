import Foundation

/// Writes protocol lines. Numbers carry at most 3 decimals; non-finite numbers become 0 (JSON has no NaN).
public enum ProtocolWriter {
    // Field names come from the CodingKeys of the Codable mirrors in ProtocolMessages.swift and `class` values from
    // `MessageClass`: the protocol spells each name there, once; this writer and the parsers use those spellings.

    public static func line(_ message: VersionMessage) -> [UInt8] {
        typealias K = VersionMessage.CodingKeys
        typealias M = ModelIdentity.CodingKeys
        var w = JSONBytes()
        w.raw("{"); w.field(K.kind, first: true); w.string(MessageClass.version.rawValue)
        w.field(K.protocolVersion); w.string(message.protocolVersion)
        w.field(K.server); w.string(message.server)
        w.field(K.release); w.string(message.release)
        w.field(K.model); w.raw("{")
        w.field(M.name, first: true); w.string(message.model.name)
        w.field(M.checksum); w.string(message.model.checksum)
        w.raw("}")
        w.field(K.classes); w.strings(message.classes)
        w.field(K.mapSize); w.integers(message.mapSize)
        w.field(K.imageSize); w.integers(message.imageSize)
        w.raw("}\n")
        return w.bytes
    }

    public static func line(_ message: StatusMessage) -> [UInt8] {
        typealias K = StatusMessage.CodingKeys
        var w = JSONBytes()
        w.raw("{"); w.field(K.kind, first: true); w.string(MessageClass.status.rawValue)
        w.field(K.device); w.string(message.device.rawValue)
        w.field(K.state); w.string(message.state.rawValue)
        w.field(K.message); w.string(message.message)
        w.field(K.time); w.string(message.time)
        w.raw("}\n")
        return w.bytes
    }

    public static func line(_ message: ErrorMessage) -> [UInt8] {
        typealias K = ErrorMessage.CodingKeys
        var w = JSONBytes()
        w.raw("{"); w.field(K.kind, first: true); w.string(MessageClass.error.rawValue)
        w.field(K.message); w.string(message.message)
        w.raw("}\n")
        return w.bytes
    }

    public static func line(_ message: WatchMessage) -> [UInt8] {
        typealias K = WatchMessage.CodingKeys
        var w = JSONBytes()
        w.raw("{"); w.field(K.kind, first: true); w.string(MessageClass.watch.rawValue)
        if let enable = message.enable { w.field(K.enable); w.bool(enable) }
        if let maps = message.maps { w.field(K.maps); w.bool(maps) }
        w.raw("}\n")
        return w.bytes
    }

    /// The parts of a FRAME line that every client shares; see `frameLine` for how they join.
    struct FrameParts {
        /// From `{"class":"FRAME"` up to the last shared field, without a closing brace.
        var head: [UInt8]
        /// `,"maps":{...}`, or nil when the report has no (valid) maps.
        var maps: [UInt8]?
    }

    /// The shared head of a FRAME line; `classes` names the report's class indices.
    static func frameHead(_ r: FrameReport, classes: [String], publishNanos: UInt64, time: String) -> [UInt8] {
        typealias K = FrameMessage.CodingKeys
        typealias S = FrameMessage.Sounding.CodingKeys
        typealias U = FrameMessage.Unlocated.CodingKeys
        var w = JSONBytes(capacity: 512 + 24 * classes.count)
        w.raw("{"); w.field(K.kind, first: true); w.string(MessageClass.frame.rawValue)
        w.field(K.seq); w.integer(r.sequence)
        w.field(K.captureNs); w.integer(r.captureNanos)
        w.field(K.publishNs); w.integer(publishNanos)
        w.field(K.time); w.string(time)
        w.field(K.latencyMs); w.raw("{")
        for (i, l) in r.latencies.enumerated() {
            if i > 0 { w.raw(",") }
            w.string(l.stage)
            w.raw(":")
            w.number(l.milliseconds)
        }
        w.raw("}")
        w.field(K.audio); w.raw("{")
        for (k, p) in r.audioDistribution.enumerated() {
            if k > 0 { w.raw(",") }
            w.string(name(k, classes))
            w.raw(":")
            w.number(Double(p))
        }
        w.raw("}")
        w.field(K.sounding); w.raw("[")
        for (i, s) in r.sounding.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{"); w.field(S.className, first: true); w.string(name(s.classIndex, classes))
            w.field(S.score); w.number(Double(s.score))
            w.field(S.peak); w.raw("[")
            w.number(Double(s.peakX)); w.raw(","); w.number(Double(s.peakY))
            w.raw("]")
            w.field(S.box); w.raw("[")
            w.number(Double(s.boxX)); w.raw(","); w.number(Double(s.boxY)); w.raw(",")
            w.number(Double(s.boxWidth)); w.raw(","); w.number(Double(s.boxHeight))
            w.raw("]}")
        }
        w.raw("]")
        w.field(K.silentVisible); w.raw("[")
        for (i, k) in r.silentVisible.enumerated() {
            if i > 0 { w.raw(",") }
            w.string(name(k, classes))
        }
        w.raw("]")
        w.field(K.silence); w.bool(r.silence)
        w.field(K.unlocated); w.raw("[")
        for (i, u) in r.unlocated.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{"); w.field(U.className, first: true); w.string(name(u.classIndex, classes))
            w.field(U.reason); w.string(u.reason.rawValue)
            w.field(U.value); w.number(Double(u.value))
            w.field(U.threshold); w.number(Double(u.threshold))
            w.raw("}")
        }
        w.raw("]")
        w.field(K.droppedFrames); w.integer(r.droppedFrames)
        w.field(K.overruns); w.integer(r.overruns)
        return w.bytes
    }

    /// `,"maps":{...}`; nil when the maps do not have the sizes the banner promises.
    static func frameMaps(_ maps: FrameReport.Maps, classes: [String]) -> [UInt8]? {
        let cells = SoundlocProtocol.mapCells
        guard maps.soundingArea.count == cells, maps.classMaps.count == cells * classes.count else { return nil }
        typealias M = FrameMessage.Maps.CodingKeys
        var w = JSONBytes(capacity: (classes.count + 1) * cells * 6 + 64)
        w.field(FrameMessage.CodingKeys.maps); w.raw("{")
        w.field(M.classes, first: true); w.raw("{")
        for k in classes.indices {
            if k > 0 { w.raw(",") }
            w.string(classes[k])
            w.raw(":")
            w.numbers(maps.classMaps[(k * cells)..<((k + 1) * cells)])
        }
        w.raw("}")
        w.field(M.soundingArea); w.numbers(maps.soundingArea[...])
        w.raw("}")
        return w.bytes
    }

    /// The per-client tail that closes a FRAME line.
    static func frameTail(droppedMessages: UInt64) -> [UInt8] {
        var w = JSONBytes(capacity: 48)
        w.field(FrameMessage.CodingKeys.droppedMessages); w.integer(droppedMessages)
        w.raw("}\n")
        return w.bytes
    }

    /// A complete FRAME line in one piece (tests, tools); the server sends the same bytes in three writes.
    public static func frameLine(_ report: FrameReport, classes: [String], publishNanos: UInt64, time: String,
                                 maps: Bool, droppedMessages: UInt64 = 0) -> [UInt8] {
        var line = frameHead(report, classes: classes, publishNanos: publishNanos, time: time)
        if maps, let m = report.maps, let part = frameMaps(m, classes: classes) { line += part }
        return line + frameTail(droppedMessages: droppedMessages)
    }

    private static func name(_ index: Int, _ classes: [String]) -> String {
        classes.indices.contains(index) ? classes[index] : "class_\(index)"
    }

    /// ISO 8601 UTC with milliseconds, e.g. 2025-03-01T12:00:00.040Z.
    public static func isoTime(unixNanos: UInt64) -> String {
        var seconds = time_t(unixNanos / 1_000_000_000)
        let millis = Int(unixNanos % 1_000_000_000 / 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var w = JSONBytes(capacity: 24)
        w.padded(Int(parts.tm_year) + 1900, width: 4); w.raw("-")
        w.padded(Int(parts.tm_mon) + 1, width: 2); w.raw("-")
        w.padded(Int(parts.tm_mday), width: 2); w.raw("T")
        w.padded(Int(parts.tm_hour), width: 2); w.raw(":")
        w.padded(Int(parts.tm_min), width: 2); w.raw(":")
        w.padded(Int(parts.tm_sec), width: 2); w.raw(".")
        w.padded(millis, width: 3); w.raw("Z")
        return String(decoding: w.bytes, as: UTF8.self)
    }
}

/// A byte buffer with just the JSON pieces the protocol needs.
struct JSONBytes {
    var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    /// `,"name":`, or `"name":` for the first field of an object: a field name as the protocol spells it.
    mutating func field(_ key: some CodingKey, first: Bool = false) {
        if !first { raw(",") }
        string(key.stringValue)
        raw(":")
    }

    mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case UInt8(ascii: "\n"): raw("\\n")
            case UInt8(ascii: "\r"): raw("\\r")
            case UInt8(ascii: "\t"): raw("\\t")
            case 0..<0x20:
                raw("\\u00")
                bytes.append(hexDigit(b >> 4))
                bytes.append(hexDigit(b & 0xF))
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func bool(_ b: Bool) { if b { raw("true") } else { raw("false") } }

    mutating func integer(_ value: UInt64) {
        var v = value
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[count] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                count += 1
            } while v > 0
            for i in stride(from: count - 1, through: 0, by: -1) { bytes.append(d[i]) }
        }
    }

    mutating func integers(_ values: [Int]) {
        raw("[")
        for (i, v) in values.enumerated() {
            if i > 0 { raw(",") }
            if v < 0 { raw("-") }
            integer(UInt64(v.magnitude))
        }
        raw("]")
    }

    mutating func strings(_ values: [String]) {
        raw("[")
        for (i, v) in values.enumerated() {
            if i > 0 { raw(",") }
            string(v)
        }
        raw("]")
    }

    /// A number rounded to 3 decimals, written without trailing zeros. Hot: a FRAME with maps holds thousands.
    mutating func number(_ x: Double) {
        guard x.isFinite else { return bytes.append(UInt8(ascii: "0")) }
        let thousandths = (x * 1000).rounded()
        guard thousandths.magnitude < 1e15 else {
            bytes.append(contentsOf: "\(x.rounded())".utf8)  // Swift prints these as valid JSON (e.g. 1e+20)
            return
        }
        var n = Int64(thousandths)
        if n == 0 { return bytes.append(UInt8(ascii: "0")) }
        if n < 0 {
            bytes.append(UInt8(ascii: "-"))
            n = -n
        }
        let whole = UInt64(n / 1000), fraction = Int(n % 1000)
        if whole < 10 { bytes.append(UInt8(ascii: "0") + UInt8(whole)) } else { integer(whole) }
        guard fraction != 0 else { return }
        let d1 = fraction / 100, d2 = fraction / 10 % 10, d3 = fraction % 10
        bytes.append(UInt8(ascii: "."))
        bytes.append(UInt8(ascii: "0") + UInt8(d1))
        if d2 != 0 || d3 != 0 { bytes.append(UInt8(ascii: "0") + UInt8(d2)) }
        if d3 != 0 { bytes.append(UInt8(ascii: "0") + UInt8(d3)) }
    }

    /// A JSON array of numbers; values under 1000 in magnitude (all of a map) take a fast path writing in place.
    mutating func numbers(_ values: ArraySlice<Float>) {
        guard values.allSatisfy({ $0.magnitude < 999.9995 }) else {
            bytes.append(UInt8(ascii: "["))
            for (i, v) in values.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                number(Double(v))
            }
            return bytes.append(UInt8(ascii: "]"))
        }
        // Each value takes at most 9 bytes ("-999.999,"), plus the brackets.
        let chunk = [UInt8](unsafeUninitializedCapacity: values.count * 9 + 2) { out, count in
            var i = 0
            out[i] = UInt8(ascii: "["); i += 1
            for v in values {
                if i > 1 { out[i] = UInt8(ascii: ","); i += 1 }
                var n = Int((Double(v) * 1000).rounded())  // NaN fails the magnitude test above
                if n < 0 {
                    out[i] = UInt8(ascii: "-"); i += 1
                    n = -n
                }
                let whole = n / 1000, fraction = n % 1000
                if whole >= 100 { out[i] = UInt8(ascii: "0") + UInt8(whole / 100); i += 1 }
                if whole >= 10 { out[i] = UInt8(ascii: "0") + UInt8(whole / 10 % 10); i += 1 }
                out[i] = UInt8(ascii: "0") + UInt8(whole % 10); i += 1
                if fraction != 0 {
                    out[i] = UInt8(ascii: "."); i += 1
                    out[i] = UInt8(ascii: "0") + UInt8(fraction / 100); i += 1
                    let d2 = fraction / 10 % 10, d3 = fraction % 10
                    if d2 != 0 || d3 != 0 { out[i] = UInt8(ascii: "0") + UInt8(d2); i += 1 }
                    if d3 != 0 { out[i] = UInt8(ascii: "0") + UInt8(d3); i += 1 }
                }
            }
            out[i] = UInt8(ascii: "]"); i += 1
            count = i
        }
        bytes.append(contentsOf: chunk)
    }

    /// A non-negative integer left-padded with zeros to `width` digits.
    mutating func padded(_ value: Int, width: Int) {
        var divisor = 1
        for _ in 1..<max(width, 1) { divisor *= 10 }
        var v = max(value, 0)
        if v >= divisor * 10 { return integer(UInt64(v)) }
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(v / divisor))
            v %= divisor
            divisor /= 10
        }
    }

    private func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "a") + v - 10 }
}

/// The clocks the protocol's timestamps come from.
enum ProtocolClock {
    static func monotonicNanos() -> UInt64 { nanos(CLOCK_MONOTONIC) }
    static func realtimeNanos() -> UInt64 { nanos(CLOCK_REALTIME) }

    /// A FRAME's `publish_ns` (now) and `time` (the wall-clock time of its capture, now minus its age).
    static func publishTimes(captureNanos: UInt64) -> (publishNanos: UInt64, time: String) {
        let publishNanos = monotonicNanos()
        let captureAge = publishNanos >= captureNanos ? publishNanos - captureNanos : 0
        let wall = realtimeNanos()
        return (publishNanos, ProtocolWriter.isoTime(unixNanos: wall >= captureAge ? wall - captureAge : wall))
    }

    private static func nanos(_ clock: clockid_t) -> UInt64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
