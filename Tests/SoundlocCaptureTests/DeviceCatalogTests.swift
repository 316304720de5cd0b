import Foundation
import SoundlocCapture
import XCTest

/// The text and links `soundloc devices` and `soundloc check` read: /proc/asound, ALSA's hints, /dev/v4l.
final class DeviceCatalogTests: XCTestCase {
    /// A Raspberry Pi 4 with a USB microphone and a webcam's microphone, as its kernel lists them.
    static let piCards = """
         0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones
                              bcm2835 Headphones
         1 [Device         ]: USB-Audio - USB PnP Sound Device
                              C-Media Electronics Inc. USB PnP Sound Device at usb-0000:01:00.0-1.3, full speed
         2 [vc4hdmi0       ]: vc4-hdmi - vc4-hdmi-0
                              vc4-hdmi-0
         3 [U0x46d0x825    ]: USB-Audio - USB Device 0x46d:0x825
                              USB Device 0x46d:0x825 at usb-0000:01:00.0-1.4, high speed

        """
    static let piPCMs = """
        00-00: bcm2835 Headphones : bcm2835 Headphones : playback 8
        01-00: USB Audio : USB Audio : playback 1 : capture 1
        02-00: MAI PCM i2s-hifi-0 : MAI PCM i2s-hifi-0 : playback 1
        03-00: USB Audio : USB Audio : capture 1

        """

    func testProcAsoundTextIsParsed() {
        let cards = SoundCards.parse(cards: Self.piCards, pcm: Self.piPCMs)
        XCTAssertEqual(cards.map(\.index), [0, 1, 2, 3])
        XCTAssertEqual(cards.map(\.id), ["Headphones", "Device", "vc4hdmi0", "U0x46d0x825"])
        XCTAssertEqual(cards[1].driver, "USB-Audio")
        XCTAssertEqual(cards[1].name, "USB PnP Sound Device")
        XCTAssertEqual(cards[1].longName, "C-Media Electronics Inc. USB PnP Sound Device at usb-0000:01:00.0-1.3, full speed")
        XCTAssertEqual(cards[1].devices, [SoundCardDevice(device: 0, id: "USB Audio", name: "USB Audio", playback: true, capture: true)])
        XCTAssertEqual(cards[3].devices, [SoundCardDevice(device: 0, id: "USB Audio", name: "USB Audio", playback: false, capture: true)])
        XCTAssertEqual(cards.map { $0.captureDevices.count }, [0, 1, 0, 1])
        XCTAssertEqual(cards[1].stablePCMName(device: 0), "plughw:CARD=Device,DEV=0")
        XCTAssertEqual(cards[3].stablePCMName(device: 0), "plughw:CARD=U0x46d0x825,DEV=0")
    }

    func testNoCardsAndNoDriver() throws {
        XCTAssertEqual(SoundCards.parse(cards: "--- no soundcards ---\n", pcm: ""), [])
        XCTAssertEqual(SoundCards.parse(cards: "", pcm: "garbage\n00-00 no colon\n"), [])
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-asound-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        XCTAssertNil(SoundCards.read(root: root.path), "no /proc/asound: no driver")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try Self.piCards.write(to: root.appendingPathComponent("cards"), atomically: true, encoding: .utf8)
        try Self.piPCMs.write(to: root.appendingPathComponent("pcm"), atomically: true, encoding: .utf8)
        XCTAssertEqual(SoundCards.read(root: root.path), SoundCards.parse(cards: Self.piCards, pcm: Self.piPCMs))
    }

    func testPCMNamesAreResolvedToCards() {
        let cards = SoundCards.parse(cards: Self.piCards, pcm: Self.piPCMs)
        let cases: [(String, PCMCardReference?)] = [
            ("plughw:CARD=Device,DEV=0", .init(plugin: "plughw", card: "Device", device: 0)),
            ("hw:1,0", .init(plugin: "hw", card: "1", device: 0)),
            ("plughw:1", .init(plugin: "plughw", card: "1", device: nil)),
            ("hw:Loopback,1,0", .init(plugin: "hw", card: "Loopback", device: 1)),
            ("sysdefault:CARD=Device", .init(plugin: "sysdefault", card: "Device", device: nil)),
            ("dsnoop:CARD=\"U0x46d0x825\",DEV=0", .init(plugin: "dsnoop", card: "U0x46d0x825", device: 0)),
            ("plug:hw:3", .init(plugin: "hw", card: "3", device: nil)),
            ("plug:\"hw:1,0\"", .init(plugin: "hw", card: "1", device: 0)),
            ("plug:SLAVE=hw:1", .init(plugin: "hw", card: "1", device: nil)),
            ("default", nil), ("replay", nil), ("file:/tmp/x.raw", nil), ("plughw:", nil),
        ]
        for (name, expected) in cases { XCTAssertEqual(PCMCardReference(pcmName: name), expected, name) }
        XCTAssertEqual(PCMCardReference(pcmName: "plughw:CARD=Device,DEV=0")?.card(in: cards)?.index, 1)
        XCTAssertEqual(PCMCardReference(pcmName: "hw:3,0")?.card(in: cards)?.id, "U0x46d0x825")
        XCTAssertNil(PCMCardReference(pcmName: "plughw:CARD=Microphone,DEV=0")?.card(in: cards))
        XCTAssertNil(PCMCardReference(pcmName: "hw:7,0")?.card(in: cards))
    }

    func testHintsThatCaptureAreKept() {
        let raw: [PCMHint.Raw] = [
            .init(name: "null", description: "Discard all samples (playback) or generate zero samples (capture)", ioid: nil),
            .init(name: "default", description: "Default ALSA Output (currently PipeWire Media Server)", ioid: nil),
            .init(name: "sysdefault:CARD=Device", description: "USB PnP Sound Device, USB Audio\nDefault Audio Device", ioid: nil),
            .init(name: "front:CARD=Headphones,DEV=0", description: "bcm2835 Headphones\nFront output / input", ioid: "Output"),
            .init(name: "dsnoop:CARD=Device,DEV=0", description: "USB PnP Sound Device, USB Audio\nDirect sample snooping device", ioid: "Input"),
            .init(name: "default", description: "again", ioid: nil),
            .init(name: nil, description: "nameless", ioid: nil),
        ]
        XCTAssertEqual(PCMHint.capture(raw), [
            PCMHint(name: "default", title: "Default ALSA Output (currently PipeWire Media Server)", detail: ""),
            PCMHint(name: "sysdefault:CARD=Device", title: "USB PnP Sound Device, USB Audio", detail: "Default Audio Device"),
            PCMHint(name: "dsnoop:CARD=Device,DEV=0", title: "USB PnP Sound Device, USB Audio", detail: "Direct sample snooping device"),
        ])
    }

    func testStableCameraLinksResolveToTheirNodes() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-v4l-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let dev = root.appendingPathComponent("dev")
        for folder in ["v4l/by-id", "v4l/by-path"] {
            try FileManager.default.createDirectory(at: dev.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        for node in ["video0", "video1", "video2"] { _ = FileManager.default.createFile(atPath: dev.appendingPathComponent(node).path, contents: nil) }
        // udev's links are relative, two folders up.
        let links = [
            ("v4l/by-id/usb-046d_C270_HD_WEBCAM_2009-video-index0", "../../video0"),
            ("v4l/by-id/usb-046d_C270_HD_WEBCAM_2009-video-index1", "../../video1"),
            ("v4l/by-path/platform-xhci-hcd.0-usb-0:1.1:1.0-video-index0", "../../video0"),
            ("v4l/by-id/usb-Gone_Camera-video-index0", "../../video9"),  // dangling: left out
        ]
        for (link, target) in links {
            try FileManager.default.createSymbolicLink(atPath: dev.appendingPathComponent(link).path, withDestinationPath: target)
        }
        let found = CameraLinks.stableLinks(root: dev.appendingPathComponent("v4l").path)
        let video0 = try XCTUnwrap(CameraLinks.resolvedPath(dev.appendingPathComponent("video0").path))
        let video1 = try XCTUnwrap(CameraLinks.resolvedPath(dev.appendingPathComponent("video1").path))
        let v4l = try XCTUnwrap(CameraLinks.resolvedPath(dev.appendingPathComponent("v4l").path))
        XCTAssertEqual(found[video0], ["\(dev.path)/v4l/by-id/usb-046d_C270_HD_WEBCAM_2009-video-index0",
                                       "\(dev.path)/v4l/by-path/platform-xhci-hcd.0-usb-0:1.1:1.0-video-index0"])
        XCTAssertEqual(found[video1], ["\(dev.path)/v4l/by-id/usb-046d_C270_HD_WEBCAM_2009-video-index1"])
        XCTAssertEqual(found.count, 2, "\(found)")
        XCTAssertEqual(CameraLinks.resolvedPath("\(v4l)/by-id/usb-046d_C270_HD_WEBCAM_2009-video-index0"), video0)
        XCTAssertNil(CameraLinks.resolvedPath("\(dev.path)/v4l/by-id/usb-Gone_Camera-video-index0"))
        XCTAssertEqual(CameraLinks.stableLinks(root: root.appendingPathComponent("nowhere").path), [:])
    }
}
