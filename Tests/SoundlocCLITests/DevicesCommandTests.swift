import Foundation
@testable import soundloc
import SoundlocCapture
import XCTest

/// `soundloc devices`: stable names for what is present, and a plain "none found" with the reason when nothing is.
final class DevicesCommandTests: XCTestCase {
    func testMicrophonesAreListedByStableNameWithTheirCards() {
        let cards = SoundCards.parse(cards: """
             0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones
                                  bcm2835 Headphones
             1 [Device         ]: USB-Audio - USB PnP Sound Device
                                  C-Media Electronics Inc. USB PnP Sound Device at usb-0000:01:00.0-1.3, full speed
            """, pcm: "00-00: bcm2835 Headphones : bcm2835 Headphones : playback 8\n01-00: USB Audio : USB Audio : playback 1 : capture 1\n")
        let hints = [PCMHint(name: "default", title: "Default ALSA Output", detail: ""),
                     PCMHint(name: "sysdefault:CARD=Device", title: "USB PnP Sound Device, USB Audio", detail: "Default Audio Device"),
                     PCMHint(name: "dsnoop:CARD=Device,DEV=0", title: "USB PnP Sound Device, USB Audio", detail: "Direct sample snooping device")]
        XCTAssertEqual(DevicesCommand.microphones(cards: cards, hints: hints), """
            Microphones (ALSA capture devices; the first column goes in audio.pcm):
              plughw:CARD=Device,DEV=0  card 1 'Device': USB PnP Sound Device (USB-Audio), device 0: USB Audio
                                        C-Media Electronics Inc. USB PnP Sound Device at usb-0000:01:00.0-1.3, full speed
              (cards without a capture device: 0 'Headphones' bcm2835 Headphones)
            Other capture PCMs in ALSA's configuration:
              default                   Default ALSA Output
              dsnoop:CARD=Device,DEV=0  USB PnP Sound Device, USB Audio — Direct sample snooping device

            """)
    }

    func testNoMicrophoneSaysWhy() {
        XCTAssertTrue(DevicesCommand.microphones(cards: nil, hints: []).hasSuffix(
            "  none found: no sound driver is loaded (/proc/asound does not exist)\n"))
        XCTAssertTrue(DevicesCommand.microphones(cards: [], hints: []).contains("none found: the kernel lists no sound card"))
        let playbackOnly = SoundCards.parse(cards: " 0 [vc4hdmi0       ]: vc4-hdmi - vc4-hdmi-0\n", pcm: "00-00: MAI : MAI : playback 1\n")
        XCTAssertTrue(DevicesCommand.microphones(cards: playbackOnly, hints: []).contains("none found: no sound card has a capture device"))
    }

    func testCamerasShowTheirStableLink() {
        var camera = CameraInfo(path: "/dev/video0")
        camera.card = "C270 HD WEBCAM"
        camera.driver = "uvcvideo"
        camera.busInfo = "usb-0000:01:00.0-1.1"
        camera.isCapture = true
        var metadata = CameraInfo(path: "/dev/video1")
        metadata.card = "C270 HD WEBCAM"
        metadata.kind = "metadata capture"
        let byID = "/dev/v4l/by-id/usb-046d_C270_HD_WEBCAM_200901010001-video-index0"
        let byPath = "/dev/v4l/by-path/platform-xhci-hcd.0-usb-0:1.1:1.0-video-index0"
        let text = DevicesCommand.cameras([camera, metadata], links: ["/dev/video0": [byID, byPath]], verbose: false)
        XCTAssertTrue(text.contains("  /dev/video0: C270 HD WEBCAM (driver uvcvideo, usb-0000:01:00.0-1.1)\n"
                                    + "    stable name: \(byID)\n    also: \(byPath)\n    no formats reported\n"), text)
        XCTAssertTrue(text.contains("/dev/video1: C270 HD WEBCAM (driver , ) — metadata capture node, not a camera"), text)
        XCTAssertTrue(DevicesCommand.cameras([camera], links: [:], verbose: false).contains("no stable link"))
        XCTAssertTrue(DevicesCommand.cameras([], links: [:], verbose: false).contains("none found (no /dev/video* nodes)"))
    }

    /// On this machine: whatever is (not) present, the command lists it and exits 0.
    func testDevicesCommandRunsHere() throws {
        let r = try CLI.run(["devices"], hangGuard: 60)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("Microphones (ALSA capture devices"), r.stdout)
        XCTAssertTrue(r.stdout.contains("Cameras (V4L2"), r.stdout)
        if !FileManager.default.fileExists(atPath: "/proc/asound") {
            XCTAssertTrue(r.stdout.contains("none found: no sound driver is loaded"), r.stdout)
        }
        if (try? FileManager.default.contentsOfDirectory(atPath: "/dev"))?.contains(where: { $0.hasPrefix("video") }) == false {
            XCTAssertTrue(r.stdout.contains("none found (no /dev/video* nodes)"), r.stdout)
        }
    }
}
