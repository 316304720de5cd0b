import ArgumentParser
import Foundation
import SoundlocCapture

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the microphones (ALSA capture PCMs) and cameras (V4L2) soundloc can open.",
        discussion: """
            Microphones are listed by the PCM names ALSA's hints give; any of them (or a 'plughw:CARD,DEV' name) \
            goes in the configuration. Cameras are listed with the formats, sizes and frame rates their drivers \
            offer; soundloc captures RGB24, which libv4l2 converts from YUYV, MJPEG and the other common formats.
            """)

    @Flag(help: "Show every frame size of every format (default: a summary per format).")
    var verbose = false

    func run() throws {
        #if os(Linux)
        let pcms = ALSACaptureSource.capturePCMNames()
        say("Microphones (ALSA capture PCMs):")
        if pcms.isEmpty { say("  none found") }
        for name in pcms { say("  \(name)") }

        say("")
        say("Cameras (V4L2):")
        let cameras = V4L2CaptureSource.listDevices()
        if cameras.isEmpty { say("  none found (no /dev/video* nodes)") }
        for camera in cameras { say(Self.describe(camera, verbose: verbose), terminator: "") }
        if !cameras.isEmpty {
            say(V4L2CaptureSource.convertsFormats
                  ? "  (libv4l2 is installed: every format above is delivered to soundloc as RGB24)"
                  : "  (libv4l2 is NOT installed: only cameras offering RGB3 work; Debian package libv4l-0)")
        }
        #else
        throw ValidationError("device listing needs Linux (ALSA and V4L2)")
        #endif
    }

    /// The lines for one camera, each ending in a newline.
    static func describe(_ camera: CameraInfo, verbose: Bool) -> String {
        if let error = camera.error { return "  \(camera.path): \(error)\n" }
        var text = "  \(camera.path): \(camera.card) (driver \(camera.driver), \(camera.busInfo))"
        guard camera.isCapture else { return text + " — \(camera.kind) node, not a camera\n" }
        text += "\n"
        if camera.formats.isEmpty { text += "    no formats reported\n" }
        for format in camera.formats {
            text += "    \(format.fourcc) (\(format.description)\(format.isCompressed ? ", compressed" : "")): "
            if let range = format.sizeRange {
                text += "\(range.minWidth)x\(range.minHeight) … \(range.maxWidth)x\(range.maxHeight)"
                    + " in steps of \(range.stepWidth)x\(range.stepHeight)\n"
            } else if format.sizes.isEmpty {
                text += "no sizes reported\n"
            } else if verbose || format.sizes.count <= 3 {
                text += format.sizes.map(sizeText).joined(separator: ", ") + "\n"
            } else {
                let largest = format.sizes.max { $0.width * $0.height < $1.width * $1.height }!
                text += "\(format.sizes.count) sizes up to \(sizeText(largest)) (--verbose lists them)\n"
            }
        }
        return text
    }

    private static func sizeText(_ size: CameraFrameSize) -> String {
        let rates = size.framesPerSecond.map { $0 == $0.rounded() ? String(Int($0)) : String(format: "%g", $0) }
        return "\(size.width)x\(size.height)" + (rates.isEmpty ? "" : " @ \(rates.joined(separator: "/")) fps")
    }
}
