import Foundation

// The headless output protocol (docs/PROTOCOL.md): newline-delimited JSON over a UNIX stream socket, one
// object per line, each with a `class` field naming its kind, as gpsd does.
//
// This file holds the protocol's constants; the rest of it is in four files:
// - FrameReport.swift: what the pipeline fills per processed frame and hands to `SocketServer.publish(_:)`
//   (class indices and flat arrays, the way the model produces them);
// - ProtocolMessages.swift: the wire messages (`VersionMessage`, `FrameMessage`, ...), Codable mirrors of the
//   JSON lines with class names, for clients (`soundloc watch`, tests);
// - ClientCommand.swift: the commands a client may send, parsed and validated;
// - ProtocolWriter.swift: how the server writes lines, much faster than JSONEncoder for map-sized payloads and
//   with `class` as the first key.

/// Constants of protocol version 1.
public enum SoundlocProtocol {
    public static let version = "1"
    /// Longest client line (without its newline) the server accepts; longer ones get an ERROR and a hang-up.
    public static let maxLineLength = 4096
    /// Side of the square class and sounding-area maps.
    public static let mapSide = 14
    public static var mapCells: Int { mapSide * mapSide }
}

/// The `class` values of protocol version 1.
public enum MessageClass: String, Codable, Sendable, CaseIterable {
    case version = "VERSION", frame = "FRAME", status = "STATUS", error = "ERROR", watch = "WATCH", poll = "POLL"
}
