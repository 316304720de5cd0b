import Foundation
import XCTest
@testable import SoundlocEval

final class ManifestTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws { root = try Paths.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    func write(_ json: String, _ name: String = "manifest.json") throws -> String {
        let url = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(json.utf8).write(to: url)
        return url.path
    }

    func touch(_ rel: String) throws {
        let url = root.appendingPathComponent(rel)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data([0]).write(to: url)
    }

    static let small = """
        {"format": "soundloc-scenes", "classes": ["cello", "flute", "tuba"],
         "scenes": [
          {"id": "test-solo-000000", "split": "test", "kind": "solo", "image": "images/a.png", "audio": "audio/a.wav",
           "objects": [{"class": "flute", "class_id": 1, "box": [0.1, 0.2, 0.3, 0.4], "sounding": true, "sound": null}],
           "sounding_classes": ["flute"]},
          {"id": "test-synthetic-000000", "split": "test", "kind": "synthetic", "image": "images/b.png", "audio": "audio/b.wav",
           "objects": [{"class_id": 0, "box": [0.5, 0.5, 0.25, 0.25, 99]}, {"class_id": 2, "box": [0, 0, 0.5, 0.5], "sounding": false}]},
          {"id": "train-free-000000", "split": "train", "kind": "free", "image": "images/c.png", "audio": "audio/c.wav"}
         ]}
        """

    func testParsesTheBuilderManifest() throws {
        let path = try write(Self.small)
        let m = try Manifest.load(path: path)
        XCTAssertEqual(m.form, .scenes)
        XCTAssertEqual(m.classes, ["cello", "flute", "tuba"])
        XCTAssertEqual(m.scenes.map(\.id), ["test-solo-000000", "test-synthetic-000000", "train-free-000000"])
        XCTAssertEqual(m.scenes[0].image, root.appendingPathComponent("images/a.png").path)
        XCTAssertEqual(m.scenes[0].audio, root.appendingPathComponent("audio/a.wav").path)
        XCTAssertEqual(m.scenes[0].audioWindow, .start(0))
        XCTAssertEqual(m.scenes[0].objects, [SceneObject(classId: 1, box: Box(x: 0.1, y: 0.2, w: 0.3, h: 0.4), sounding: true, className: "flute")])
        XCTAssertTrue(m.scenes[0].isSolo)
        XCTAssertFalse(m.scenes[1].isSolo)
        // sounding defaults to true; extra box values are ignored, as metrics.py's b[:4].
        XCTAssertEqual(m.scenes[1].objects.map(\.sounding), [true, false])
        XCTAssertEqual(m.scenes[1].objects[0].box, Box(x: 0.5, y: 0.5, w: 0.25, h: 0.25))
        XCTAssertEqual(m.scenes[2].objects, [])
        // A folder stands for its manifest.json.
        XCTAssertEqual(try Manifest.load(path: root.path).scenes.count, 3)
    }

    func testMissingFilesAreNamed() throws {
        let m = try Manifest.load(path: try write(Self.small))
        try touch("images/a.png")
        XCTAssertThrowsError(try Manifest.checkFiles(m.scenes)) { error in
            let wav = root.appendingPathComponent("audio/a.wav").path
            XCTAssertEqual(error as? ManifestError, .missingFile(scene: "test-solo-000000", role: "audio", path: wav))
            XCTAssertTrue("\(error)".contains(wav), "\(error)")
        }
        try touch("audio/a.wav")
        XCTAssertNoThrow(try Manifest.checkFiles([m.scenes[0]]))
    }

    func testUnusableManifestsGiveOneLineErrors() throws {
        let missing = root.appendingPathComponent("nope.json").path
        XCTAssertThrowsError(try Manifest.load(path: missing)) {
            XCTAssertEqual($0 as? ManifestError, .unreadable(path: missing, reason: "no such file"))
        }
        let cases: [(String, String)] = [
            ("{\"classes\": [\"a\"], \"scenes\": [", "not valid JSON"),
            ("[1, 2]", "top level is not a JSON object"),
            ("{\"foo\": 1}", "neither a scene manifest"),
            ("{\"classes\": [], \"scenes\": []}", "'classes' must be a non-empty list"),
            ("{\"classes\": [\"a\"], \"scenes\": [{\"id\": \"s\", \"split\": \"test\", \"kind\": \"solo\", \"audio\": \"x.wav\"}]}",
             "scene 0 ('s'): 'image' missing"),
            ("{\"classes\": [\"a\"], \"scenes\": [{\"id\": \"s\", \"split\": \"test\", \"kind\": \"solo\", \"image\": \"x.png\", \"audio\": \"x.wav\", \"objects\": [{\"class_id\": 1, \"box\": [0, 0, 1, 1]}]}]}",
             "class_id 1 is not below the 1 classes"),
            ("{\"classes\": [\"a\"], \"scenes\": [{\"id\": \"s\", \"split\": \"test\", \"kind\": \"solo\", \"image\": \"x.png\", \"audio\": \"x.wav\", \"objects\": [{\"class_id\": 0, \"box\": [0, 0, 1]}]}]}",
             "'box' must be 4 finite numbers"),
        ]
        for (n, (json, message)) in cases.enumerated() {
            let path = try write(json, "bad\(n).json")
            XCTAssertThrowsError(try Manifest.load(path: path), json) { error in
                guard case .corrupt? = error as? ManifestError else { return XCTFail("\(error)") }
                let text = "\(error)"
                XCTAssertTrue(text.contains(message) && text.contains(path), text)
                XCTAssertFalse(text.contains("\n"), text)
            }
        }
    }

    func testBuilderAnnotationFile() throws {
        // The builder's annotations/<split>_<kind>.json: frame keys and audio relative to the data set's root.
        try touch("images/test/free/f0.png")
        let path = try write("""
            {"images/test/free/f0.png": {"bbox": [{"box": [1, 2, 3, 4], "normbox": [0.1, 0.2, 0.3, 0.4], "category_id": 6, "sounding": false},
                                                  {"normbox": [0.5, 0.5, 0.2, 0.2], "category_id": 5}],
                                         "width": 224, "height": 224, "audio": "audio/test/free/f0.wav"}}
            """, "annotations/test_free.json")
        let m = try Manifest.load(path: path)
        XCTAssertEqual(m.form, .annotation)
        XCTAssertNil(m.classes)
        XCTAssertEqual(m.scenes.count, 1)
        let s = m.scenes[0]
        XCTAssertEqual(s.kind, "free")
        XCTAssertEqual(s.split, "test")
        XCTAssertEqual(s.image, root.appendingPathComponent("images/test/free/f0.png").path)
        XCTAssertEqual(s.audio, root.appendingPathComponent("audio/test/free/f0.wav").path)
        XCTAssertEqual(s.audioWindow, .start(0))
        XCTAssertEqual(s.objects, [SceneObject(classId: 6, box: Box(x: 0.1, y: 0.2, w: 0.3, h: 0.4), sounding: false),
                                   SceneObject(classId: 5, box: Box(x: 0.5, y: 0.5, w: 0.2, h: 0.2), sounding: true)])
    }

    func testOfficialAnnotationInTheAuthorsLayout() throws {
        // dsol.prepare_music's layout: frames/<video>/frame_SSS/NNNNN.jpg numbered at 30 a second, audio/<video>.wav
        try touch("music/frames/vidA/frame_001/00037.jpg")
        try touch("music/audio/vidA.wav")
        let path = try write("""
            {"vidA/frame_001/00037.jpg": {"bbox": [{"normbox": [0.1, 0.1, 0.5, 0.5], "category_id": 11}]}}
            """, "music/frames/solotest.json")
        let m = try Manifest.load(path: path)
        XCTAssertEqual(m.scenes.count, 1)
        let s = m.scenes[0]
        XCTAssertEqual(s.audio, root.appendingPathComponent("music/audio/vidA.wav").path)
        XCTAssertEqual(s.audioWindow, .centred(37.0 / 30.0))
        XCTAssertEqual(s.objects.map(\.classId), [Manifest.musicClasses.firstIndex(of: "violin")!])
        XCTAssertEqual(s.objects[0].className, "violin")
        // a frame number outside its second: cut at another rate
        try touch("music/frames/vidA/frame_002/00012.jpg")
        let wrong = try write("{\"vidA/frame_002/00012.jpg\": {\"bbox\": []}}", "music/frames/wrong.json")
        XCTAssertThrowsError(try Manifest.load(path: wrong)) { XCTAssertTrue("\($0)".contains("30 per second"), "\($0)") }
        // an id the official files do not use
        let badId = try write("{\"vidA/frame_001/00037.jpg\": {\"bbox\": [{\"normbox\": [0, 0, 1, 1], \"category_id\": 4}]}}",
                              "music/frames/badid.json")
        XCTAssertThrowsError(try Manifest.load(path: badId)) { XCTAssertTrue("\($0)".contains("AudioSet"), "\($0)") }
        // no sound for the video: named
        try touch("music/frames/vidB/frame_000/00000.jpg")
        let mute = try write("{\"vidB/frame_000/00000.jpg\": {\"bbox\": []}}", "music/frames/mute.json")
        XCTAssertThrowsError(try Manifest.load(path: mute)) { XCTAssertTrue("\($0)".contains("vidB.wav"), "\($0)") }
    }

    func testMusicAnnotationLocatesTheClipAudio() throws {
        // Real MUSIC layout: ROOT/frames/<clip>/<frame> and ROOT/audio/<clip>.wav, the second centred at index / fps.
        try touch("duet/frames/cello_flute/abc/000012.jpg")
        let path = try write("""
            {"frames/cello_flute/abc/000012.jpg": {"bbox": [{"normbox": [0, 0, 0.5, 1], "category_id": 1},
                                                              {"normbox": [0.5, 0, 0.5, 1], "category_id": 12}]}}
            """, "duet/duet_test.json")
        let m = try Manifest.load(path: path, fps: 2)
        XCTAssertEqual(m.scenes.count, 1)
        // the official form: AudioSet-instrument ids (1 cello, 12 flute) in MUSIC's class order
        XCTAssertEqual(m.scenes[0].objects.map(\.classId), [2, 5])
        XCTAssertEqual(m.classes, Manifest.musicClasses)
        XCTAssertEqual(m.scenes[0].kind, "music_duet")
        XCTAssertEqual(m.scenes[0].audio, root.appendingPathComponent("duet/audio/cello_flute/abc.wav").path)
        XCTAssertEqual(m.scenes[0].audioWindow, .centred(6))
        XCTAssertEqual(AudioWindow.centred(6).startSeconds(duration: 20), 5.5)
        XCTAssertEqual(AudioWindow.centred(0.2).startSeconds(duration: 20), 0)
        XCTAssertEqual(AudioWindow.centred(19.9).startSeconds(duration: 20), 19)
        XCTAssertEqual(AudioWindow.centred(3).startSeconds(duration: 0.5), 0)
        // The kind can be forced; a name with "solo" defaults to music_solo.
        XCTAssertEqual(try Manifest.load(path: path, annotationKind: "music_solo").scenes[0].kind, "music_solo")
        XCTAssertEqual(Manifest.annotationDefaults(fileName: "solo_test.json").kind, "music_solo")
        XCTAssertEqual(Manifest.annotationDefaults(fileName: "val_synthetic.json").kind, "synthetic")
        XCTAssertEqual(Manifest.annotationDefaults(fileName: "val_synthetic.json").split, "val")
        // A frame that is not there is named.
        let bad = try write("{\"frames/x/000001.jpg\": {\"bbox\": []}}", "duet/bad.json")
        XCTAssertThrowsError(try Manifest.load(path: bad)) { error in
            XCTAssertTrue("\(error)".contains("frames/x/000001.jpg"), "\(error)")
        }
    }

    func testFrameIndex() {
        XCTAssertEqual(Manifest.frameIndex("000012.jpg"), 12)
        XCTAssertEqual(Manifest.frameIndex("frame_7_b3.png"), 3)
        XCTAssertEqual(Manifest.frameIndex("cover.png"), 0)
    }
}
