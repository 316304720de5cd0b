"""Real-MUSIC training end to end, on videos made in the test: scenes in the builder's layout (dsol.toy's
coloured shapes and tones, named after four annotated MUSIC instruments) rendered as short videos with
ffmpeg, solos and duets -> `python3 -m dsol.prepare_music` -> the authors' layout -> `dsol.train` with the
smoke config, the official-form solotest.json / duettest.json as its test split -> model.safetensors ->
`soundloc eval` on the same official files. Then the Swift evaluator's maps (--maps-out) are scored
again by Tools/dsol/metrics.py on the scenes dsol.data reads from the official files: every per-scene
score and every summary equal to 1e-6."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tools"))
pytest.importorskip("torch")

from dsol import data as D  # noqa: E402
from dsol import metrics as M  # noqa: E402
from dsol import png_frames as PF  # noqa: E402
from dsol import prepare_music as PM  # noqa: E402
from dsol import train as T  # noqa: E402
from dsol.export import read_safetensors  # noqa: E402
from dsol.model import MUSIC_CLASSES  # noqa: E402
from dsol.toy import write_toy_dataset  # noqa: E402

if shutil.which("ffmpeg") is None:  # Tools/setup.sh --test installs it; a missing one is a setup failure
    pytest.fail("ffmpeg not installed (run Tools/setup.sh --test)", pytrace=False)

# dsol.toy's four classes stand for four instruments the official annotations name
INSTRUMENTS = ["violin", "flute", "cello", "trumpet"]
AUDIOSET = {name: k for k, name in D.AUDIOSET_IDS.items()}
SECONDS = 2.0  # 8 pictures a video at 4 a second: 00000, 00007, 00015, 00022 in frame_000, 00030, ... in frame_001
TOLERANCE = 1e-6


def soundloc_binary() -> Path:
    for candidate in (os.environ.get("SOUNDLOC_BIN"), ROOT / ".build/debug/soundloc", ROOT / ".build/release/soundloc"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.fail("no soundloc binary: run `swift build` first (make test does) or set SOUNDLOC_BIN")


def render(scene: dict, data: Path, out: Path) -> None:
    """A scene as a video: its picture held for SECONDS at 30 fps, its one-second sound looped under it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-framerate", "30", "-i", str(data / scene["image"]),
                    "-stream_loop", "-1", "-i", str(data / scene["audio"]), "-t", str(SECONDS),
                    "-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p", "-c:a", "pcm_s16le", str(out)],
                   check=True)


def official(entries: dict) -> dict:
    """Frame key -> the official annotation form: normboxes and AudioSet-instrument category ids only."""
    return {key: {"bbox": [{"normbox": box, "category_id": AUDIOSET[INSTRUMENTS[c]]} for c, box in objs]}
            for key, objs in entries.items()}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    base = tmp_path_factory.mktemp("music_e2e")
    manifest = write_toy_dataset(base / "scenes", seed=7, counts={
        "train": {"solo": 12, "synthetic": 6, "free": 0},
        "val": {"solo": 0, "synthetic": 0, "free": 0},
        "test": {"solo": 4, "synthetic": 3, "free": 0}})
    scenes = json.loads(manifest.read_text())["scenes"]
    data = manifest.parent

    # videos: solos under VIDEOS/<instrument>/, duets (the synthetic scenes: two of four sounding) apart
    videos = base / "videos"
    solo_ann, duet_ann = {}, {}
    for s in scenes:
        vid = s["id"].replace("-", "_")
        if s["kind"] == "solo":
            render(s, data, videos / "solo" / INSTRUMENTS[s["objects"][0]["class_id"]] / f"{vid}.mkv")
            if s["split"] == "test":  # two annotated frames a test video, in seconds 0 and 1
                for key in (f"{vid}/frame_000/00000.jpg", f"{vid}/frame_001/00037.jpg"):
                    solo_ann[key] = [(o["class_id"], o["box"]) for o in s["objects"] if o["sounding"]]
        else:
            first = next(o for o in s["objects"] if o["sounding"])
            render(s, data, videos / "duet" / INSTRUMENTS[first["class_id"]] / f"{vid}.mkv")
            if s["split"] == "test":  # the official duet files box every instrument in view
                duet_ann[f"{vid}/frame_001/00030.jpg"] = [(o["class_id"], o["box"]) for o in s["objects"]
                                                          if o["sounding"]]
    music = base / "music"
    for sub in ("solo", "duet"):
        assert PM.main(["--videos", str(videos / sub), "--out", str(music / sub), "--workers", "2", "--quiet"]) == 0
    # the official files beside the frames they name (keys <video>/frame_SSS/NNNNN.jpg)
    solotest, duettest = music / "solo" / "frames" / "solotest.json", music / "duet" / "frames" / "duettest.json"
    solotest.write_text(json.dumps(official(solo_ann)))
    duettest.write_text(json.dumps(official(duet_ann)))

    cfg = T.deep_merge(yaml.safe_load((ROOT / "Tools/dsol/configs/smoke.yaml").read_text()), {
        "width": 4, "threads": 1,
        "data": {"music": {"val_fraction": 0.0, "frames_per_clip": 1,
                           "solo_annotation": str(solotest), "duet_annotation": str(duettest)}},
        "eval": {"every": 0, "limit": None, "final_splits": ["test"]}})
    (base / "music.yaml").write_text(yaml.safe_dump(cfg))
    run = base / "run"
    assert T.main(["--config", str(base / "music.yaml"), "--data", str(music), "--out", str(run), "--quiet"]) == 0
    return base, music, run, solotest, duettest, solo_ann, duet_ann


def test_videos_to_a_trained_model(chain):
    base, music, run, solotest, duettest, solo_ann, duet_ann = chain
    for sub, n in (("solo", 16), ("duet", 9)):
        rep = json.loads((music / sub / "prepare.json").read_text())
        assert len(rep["videos"]) == n and not rep["skipped"]
        assert all(v["pictures"] == 8 for v in rep["videos"].values())
    log = (run / "log.txt").read_text()
    # one frame a second (frames_per_clip 1: NNNNN 00000 and 00030) of 16 solo and 9 duet videos, less
    # the frames the official files annotate (held out: 4 solo, 3 duet); the duets train stage 2
    assert "data: 11 classes; train solo 28, train cocktail 15, val 0, test 11" in log, log
    phases = [json.loads(x)["phase"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert phases == ["s1_loc", "s1_cls", "s2_init", "s2", "final"]
    final = json.loads((run / "final.json").read_text())
    test = final["test_metrics"]
    assert test["music_solo"]["n"] == len(solo_ann) == 8
    assert test["music_duet"]["class_aware"]["n"] == len(duet_ann) == 3
    assert sorted(final["cluster_to_class"]) == list(range(11))  # one cluster per MUSIC class
    assert sorted(final["classes"]) == sorted(MUSIC_CLASSES)
    assert (run / "model.safetensors").stat().st_size > 0


def scene_maps(maps: Path, scene_id: str) -> np.ndarray:
    name = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in scene_id)
    return np.load(maps / f"{name}.npy").astype(np.float64)


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= TOLERANCE


@pytest.mark.parametrize("which", ["solo", "duet"])
def test_swift_and_python_score_the_official_files_alike(chain, which):
    base, music, run, solotest, duettest, _, _ = chain
    # soundloc's image reader takes PNG and PPM, not yet JPEG: the same official file naming lossless
    # PNG copies of its frames (decoded by PIL, as the trainer decodes them), beside the JPEGs
    jpeg_ann = solotest if which == "solo" else duettest
    assert PF.main([str(jpeg_ann)]) == 0
    ann = jpeg_ann.with_name(jpeg_ann.stem + "_png.json")
    assert set(json.loads(ann.read_text())) == {k[:-4] + ".png" for k in json.loads(jpeg_ann.read_text())}
    maps, report_path = base / f"maps_{which}", base / f"eval_{which}.json"
    r = subprocess.run([str(soundloc_binary()), "eval", "--model", str(run / "model.safetensors"), "--data", str(ann),
                        "--json", str(report_path), "--maps-out", str(maps)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    report = json.loads(report_path.read_text())
    kind = f"music_{which}"
    assert [k["kind"] for k in report["kinds"]] == [kind]
    assert report["classes"] == MUSIC_CLASSES
    c2c = report["cluster_to_class"]
    assert c2c == json.loads((run / "final.json").read_text())["cluster_to_class"]

    # the same official file through dsol.data, the same maps through dsol.metrics
    scenes = {s.id: s for s in D.load_annotation(ann, kind=kind)}
    swift = {s["id"]: s for s in report["scenes"]}
    assert set(scenes) == set(swift)
    per_scene = []
    for sid in sorted(scenes):
        s, m = scenes[sid], scene_maps(maps, sid)
        assert m.shape == (len(MUSIC_CLASSES) + 1, 14, 14)
        if which == "solo":
            iou = M.relative_iou(m[-1], [o["box"] for o in s.objects if o["sounding"]], M.SOLO_FRACTION)
            assert close(iou, swift[sid]["iou"]), (sid, iou, swift[sid]["iou"])
            per_scene.append(iou)
        else:
            # the maps file holds the class maps in class order: identity cluster -> class
            res = M.cocktail_image(m[:-1], s.objects, list(range(len(MUSIC_CLASSES))), len(MUSIC_CLASSES),
                                   M.DUET_FRACTION)
            for key in ("ciou", "nsa", "nsa_visible"):
                assert close(res[key], swift[sid].get(key)), (sid, key, res[key], swift[sid].get(key))
            per_scene.append(res)
    summary = report["kinds"][0]["solo" if which == "solo" else "cocktail"]
    if which == "solo":
        ours = M.summarize_solo(per_scene)
    else:
        ours = M.summarize_cocktail([x["ciou"] for x in per_scene], [x["nsa"] for x in per_scene],
                                    [x["nsa_visible"] for x in per_scene])
    shared = set(ours) & set(summary)
    assert shared >= ({"iou@0.5", "auc"} if which == "solo" else {"ciou@0.3", "auc", "nsa"})
    for key in shared:
        assert close(ours[key], summary[key]), (key, ours[key], summary[key])


def test_quantize_on_the_prepared_frames(chain):
    """README's step 4: calibration frames listed (as PNG copies) by dsol.png_frames, int8 by soundloc."""
    base, music, run, solotest, _, _, _ = chain
    frames = music / "solo" / "frames"
    cal = frames / "calibration.json"
    assert PF.main(["--frames", str(frames), "--every", "16", "--limit", "6", "--out", str(cal)]) == 0
    listed = json.loads(cal.read_text())
    assert len(listed) == 6 and all(k.endswith(".png") and (frames / k).is_file() for k in listed)
    int8 = base / "int8.safetensors"
    r = subprocess.run([str(soundloc_binary()), "quantize", "--model", str(run / "model.safetensors"),
                        "--calibration", str(cal), "--out", str(int8)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    _, meta = read_safetensors(int8)
    assert meta["precision"] == "int8"
    png = solotest.with_name("solotest_png.json")
    assert PF.main([str(solotest)]) == 0
    r = subprocess.run([str(soundloc_binary()), "eval", "--model", str(int8), "--data", str(png)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "music_solo" in r.stdout
