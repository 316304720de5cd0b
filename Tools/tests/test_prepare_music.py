"""From videos to the authors' MUSIC layout (dsol.prepare_music), read back by dsol.data with the official
annotations' conventions: frame_SSS folders, frames numbered at 30 per second, AudioSet-instrument ids,
one WAV per video."""

import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tools"))
pytest.importorskip("torch")

from dsol import data as D  # noqa: E402
from dsol import prepare_music as PM  # noqa: E402
from dsol.model import MUSIC_CLASSES  # noqa: E402

if shutil.which("ffmpeg") is None:  # Tools/setup.sh --test installs it; a missing one is a setup failure
    pytest.fail("ffmpeg not installed (run Tools/setup.sh --test)", pytrace=False)


def _video(path: Path, seconds: float, fps: int, freq: float | None, colour: str = "red"):
    """A test video: a colour card with the frame number burnt in as a moving bar, and a tone (or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c={colour}:s=96x64:r={fps}:d={seconds}"]
    if freq is not None:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate=44100:duration={seconds}", "-shortest"]
    cmd += ["-pix_fmt", "yuv420p", str(path)]
    subprocess.run(cmd, check=True)


def test_frame_times_follow_the_authors_numbering():
    t = PM.frame_times(2.6, 4)
    assert [(s, n) for s, n, _ in t] == [(0, 0), (0, 7), (0, 15), (0, 22), (1, 30), (1, 37), (1, 45), (1, 52)]
    assert all(n // 30 == s for s, n, _ in t)


def test_videos_to_layout_and_back(tmp_path):
    src = tmp_path / "videos"
    _video(src / "violin" / "vidA.mp4", 3.2, 30, 440)
    _video(src / "flute" / "vidB.mkv", 2.5, 25, 880, "blue")      # 25 fps: numbered at 30 all the same
    _video(src / "cello" / "mute.mp4", 2.0, 30, None)             # no sound stream
    (src / "cello" / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "music"
    assert PM.main(["--videos", str(src), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    rep = json.loads((out / "prepare.json").read_text())
    assert set(rep["videos"]) == {"vidA", "vidB"}
    assert "no sound stream" in rep["skipped"]["mute"] and "unreadable" in rep["skipped"]["broken"]
    assert rep["videos"]["vidA"]["pictures"] == 12 and rep["videos"]["vidB"]["pictures"] == 8
    frames = sorted(p.relative_to(out).as_posix() for p in (out / "frames").rglob("*.jpg"))
    assert "frames/vidB/frame_001/00037.jpg" in frames and "frames/vidA/frame_002/00067.jpg" in frames
    with wave.open(str(out / "audio" / "vidA.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert abs(w.getnframes() / 16000 - 3.2) < 0.1
    assert json.loads((out / "classes.json").read_text()) == {"videos": {"flute": ["vidB"], "violin": ["vidA"]}}
    # resumable: a second run redoes nothing (the .done files stay as they were)
    stamp = (out / "frames" / "vidA" / ".done").stat().st_mtime_ns
    assert PM.main(["--videos", str(src), "--out", str(out), "--quiet"]) == 0
    assert (out / "frames" / "vidA" / ".done").stat().st_mtime_ns == stamp

    # the trainer's reader: one clip per video, time from the frame number at 30 per second
    scenes = D.load_music(out, MUSIC_CLASSES, val_fraction=0.0)
    assert len(scenes) == 20 and {s.clip for s in scenes} == {"vidA", "vidB"}
    by_id = {s.id: s for s in scenes}
    s = by_id["frames/vidA/frame_002/00067.jpg"]
    assert s.audio.endswith("audio/vidA.wav") and s.audio_start == pytest.approx(67 / 30 - 0.5)
    assert s.label == MUSIC_CLASSES.index("violin")

    # the official annotation form: keys <video>/frame_SSS/NNNNN.jpg, AudioSet ids, no audio key
    ann = {"vidA/frame_001/00037.jpg": {"bbox": [{"normbox": [0.1, 0.1, 0.5, 0.5], "category_id": 11}]},
           "vidB/frame_000/00015.jpg": {"bbox": [{"normbox": [0.2, 0.2, 0.3, 0.3], "category_id": 12}]}}
    (out / "solotest.json").write_text(json.dumps(ann))
    ev = D.load_annotation(out / "solotest.json", root=out / "frames", kind="music_solo")
    got = {e.id: e for e in ev}
    assert got["vidA/frame_001/00037.jpg"].objects[0]["class_id"] == MUSIC_CLASSES.index("violin")
    assert got["vidB/frame_000/00015.jpg"].objects[0]["class_id"] == MUSIC_CLASSES.index("flute")
    assert got["vidA/frame_001/00037.jpg"].audio_start == pytest.approx(37 / 30 - 0.5)
    assert Path(got["vidB/frame_000/00015.jpg"].audio) == out / "audio" / "vidB.wav"
    store = D.SceneStore(ev)
    assert D.PlainDataset(store, [0])[0]["audio"].shape == (1, 201, 64)


def test_official_annotation_errors(tmp_path):
    frame = tmp_path / "vid" / "frame_001" / "00012.jpg"  # 12 // 30 = 0, not second 1: cut at another rate
    frame.parent.mkdir(parents=True)
    frame.write_bytes(b"")
    (tmp_path / "audio").mkdir()
    with wave.open(str(tmp_path / "audio" / "vid.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(np.zeros(32000, "<i2").tobytes())
    (tmp_path / "a.json").write_text(json.dumps({"vid/frame_001/00012.jpg": {"bbox": []}}))
    with pytest.raises(SystemExit, match="30 per second"):
        D.load_annotation(tmp_path / "a.json", root=tmp_path)
    ok = tmp_path / "vid" / "frame_001" / "00031.jpg"
    ok.write_bytes(b"")
    (tmp_path / "b.json").write_text(json.dumps({"vid/frame_001/00031.jpg": {"bbox": [
        {"normbox": [0, 0, 1, 1], "category_id": 4}]}}))
    with pytest.raises(SystemExit, match="AudioSet"):
        D.load_annotation(tmp_path / "b.json", root=tmp_path)
    (tmp_path / "audio" / "vid.wav").unlink()
    (tmp_path / "c.json").write_text(json.dumps({"vid/frame_001/00031.jpg": {"bbox": []}}))
    with pytest.raises(FileNotFoundError, match="audio/vid.wav"):
        D.load_annotation(tmp_path / "c.json", root=tmp_path)


def test_prepare_refuses_what_it_cannot_name(tmp_path):
    src = tmp_path / "v"
    _video(src / "banjo" / "x.mp4", 1.5, 30, 300)
    with pytest.raises(SystemExit, match="no class"):
        PM.main(["--videos", str(src), "--out", str(tmp_path / "o"), "--quiet"])
    (tmp_path / "list.json").write_text(json.dumps({"videos": {"tuba": ["x"]}}))
    assert PM.main(["--videos", str(src), "--out", str(tmp_path / "o"), "--json", str(tmp_path / "list.json"),
                    "--quiet"]) == 0
    assert json.loads((tmp_path / "o" / "classes.json").read_text()) == {"videos": {"tuba": ["x"]}}
