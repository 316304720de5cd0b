import ArgumentParser
import Foundation
import SoundlocCapture

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the microphones (ALSA capture devices) and cameras (V4L2) present, with the names to configure them by.",
        discussion: """
            Each microphone is listed by its stable ALSA name, plughw:CARD=<id>,DEV=<n>, ready to paste into \
            audio.pcm: card ids survive reboots and replugging, card numbers (plughw:1,0) do not. Each camera is \
            listed with its /dev/v4l/by-id (or by-path) link when udev made one, for video.device, and with the \
            formats, sizes and frame rates its driver offers; soundloc captures RGB24, which libv4l2 converts from \
            YUYV, MJPEG and the other common formats. `soundloc check --config FILE` tries the configured ones.
            """)

    @Flag(help: "Show every frame size of every format (default: a summary per format).")
    var verbose = false

    func run() throws {
        #if os(Linux)
        say(Self.microphones(cards: SoundCards.read(), hints: ALSACaptureSource.capturePCMHints()), terminator: "")
        say("")
        let cameras = V4L2CaptureSource.listDevices()
        say(Self.cameras(cameras, links: CameraLinks.stableLinks(), verbose: verbose), terminator: "")
        if !cameras.isEmpty {
            say(V4L2CaptureSource.convertsFormats
                  ? "  (libv4l2 is installed: every format above is delivered to soundloc as RGB24)"
                  : "  (libv4l2 is NOT installed: only cameras offering RGB3 work; Debian package libv4l-0)")
        }
        #else
        throw ValidationError("device listing needs Linux (ALSA and V4L2)")
        #endif
    }

    /// The microphone part of the listing, each line ending in a newline. `cards` is nil when /proc/asound is absent.
    static func microphones(cards: [SoundCard]?, hints: [PCMHint]) -> String {
        var text = "Microphones (ALSA capture devices; the first column goes in audio.pcm):\n"
        let capturing = (cards ?? []).flatMap { card in card.captureDevices.map { (card, $0) } }
        let width = capturing.map { $0.0.stablePCMName(device: $0.1.device).count }.max() ?? 0
        for (card, device) in capturing {
            let name = card.stablePCMName(device: device.device).padding(toLength: width, withPad: " ", startingAt: 0)
            text += "  \(name)  card \(card.index) '\(card.id)': \(card.name) (\(card.driver)), device \(device.device): \(device.name)\n"
            if !card.longName.isEmpty { text += "  \(String(repeating: " ", count: width))  \(card.longName)\n" }
        }
        if capturing.isEmpty {
            switch cards {
            case nil: text += "  none found: no sound driver is loaded (/proc/asound does not exist)\n"
            case let cards? where cards.isEmpty: text += "  none found: the kernel lists no sound card (is the microphone plugged in?)\n"
            default: text += "  none found: no sound card has a capture device\n"
            }
        }
        let silent = (cards ?? []).filter { $0.captureDevices.isEmpty }
        if !silent.isEmpty {
            text += "  (cards without a capture device: "
                + silent.map { "\($0.index) '\($0.id)' \($0.name)" }.joined(separator: ", ") + ")\n"
        }
        // PCMs the configuration defines (default, dsnoop for sharing a microphone, a sound server's): the plain
        // card PCMs (hw, plughw, front, sysdefault) would only repeat the cards above.
        let plain: Set<String> = ["hw", "plughw", "front", "sysdefault", "usbstream"]
        let others = hints.filter { PCMCardReference(pcmName: $0.name).map { !plain.contains($0.plugin) } ?? true }
        if !others.isEmpty {
            text += "Other capture PCMs in ALSA's configuration:\n"
            let width = others.map(\.name.count).max() ?? 0
            for hint in others {
                let about = [hint.title, hint.detail].filter { !$0.isEmpty }.joined(separator: " — ")
                text += "  \(hint.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(about)\n"
            }
        }
        return text
    }

    /// The camera part of the listing; `links` maps a resolved device path to its stable links.
    static func cameras(_ cameras: [CameraInfo], links: [String: [String]], verbose: Bool) -> String {
        var text = "Cameras (V4L2; a stable name, else the device, goes in video.device):\n"
        if cameras.isEmpty { text += "  none found (no /dev/video* nodes)\n" }
        for camera in cameras {
            text += describe(camera, links: links[CameraLinks.resolvedPath(camera.path) ?? camera.path] ?? [], verbose: verbose)
        }
        return text
    }

    /// The lines for one camera, each ending in a newline.
    static func describe(_ camera: CameraInfo, links: [String] = [], verbose: Bool) -> String {
        if let error = camera.error { return "  \(camera.path): \(error)\n" }
        var text = "  \(camera.path): \(camera.card) (driver \(camera.driver), \(camera.busInfo))"
        guard camera.isCapture else { return text + " — \(camera.kind) node, not a camera\n" }
        text += "\n"
        if let stable = links.first {
            text += "    stable name: \(stable)\n"
            for other in links.dropFirst() { text += "    also: \(other)\n" }
        } else {
            text += "    no stable link (udev makes /dev/v4l/by-id links for USB cameras)\n"
        }
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
