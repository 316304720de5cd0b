"""Tools/ship_model.sh end to end on a tiny data set and a width-8 network: build data -> train ->
export -> soundloc quantize -> soundloc eval (fp32, int8, baselines) -> real-audio accuracy and object
classes at the box -> model card -> Models folder; then a second run that finds every step done. A few minutes on 2 cores."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tools"))
pytest.importorskip("torch")

from dsol.export import read_safetensors  # noqa: E402


def soundloc_binary() -> Path:
    for candidate in (os.environ.get("SOUNDLOC_BIN"), ROOT / ".build/debug/soundloc", ROOT / ".build/release/soundloc"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.fail("no soundloc binary: run `swift build` first (make test does) or set SOUNDLOC_BIN")


def run_chain(tmp: Path) -> subprocess.CompletedProcess:
    cmd = [str(ROOT / "Tools/ship_model.sh"), "--data", str(tmp / "data"), "--size", "tiny", "--seed", "3", "--procedural", "2",
           "--config", str(ROOT / "Tools/dsol/configs/smoke.yaml"), "--run", str(tmp / "run"),
           "--models", str(tmp / "models"), "--soundloc", str(soundloc_binary()),
           "--calibration-limit", "4", "--eval-limit", "3"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200)


def test_chain_builds_trains_quantizes_evaluates_and_ships(tmp_path):
    r = run_chain(tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    models = tmp_path / "models"
    fp32, int8 = models / "dsol-music-fp32.safetensors", models / "dsol-music-int8.safetensors"
    _, meta32 = read_safetensors(fp32)
    _, meta8 = read_safetensors(int8)
    assert meta32["precision"] == "fp32" and meta8["precision"] == "int8"
    assert meta32["checksum"] in json.dumps(meta8), "the int8 file records the fp32 model it came from"

    evals = tmp_path / "run" / "evals"
    for name in ("fp32", "int8", "baseline", "int8-baseline"):
        report = json.loads((evals / f"eval-{name}.json").read_text())
        assert report["split"] == "test"
        assert report["mode"] == ("loc_only" if "baseline" in name else "class_aware")
        assert {k["kind"] for k in report["kinds"]} >= {"solo", "synthetic"}
    real = json.loads((evals / "real-audio.json").read_text())
    assert real["windows"] > 50 and 0.0 <= real["accuracy"] <= 1.0
    boxes = json.loads((evals / "box-classes.json").read_text())
    assert boxes["split"] == "test" and boxes["objects"] > 0 and set(boxes["by_drawing"]) <= {"seen", "new"}
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert manifest["build_params"]["procedural"]["per_class"] == 2

    card = (models / "MODEL_CARD.md").read_text()
    assert json.loads((evals / "int8-agreement.json").read_text())["scenes"] > 0
    for row in ("| fp32 |", "| int8 |", "top sounding class agrees", "| stage-1 baseline (fp32) |", "Audio classifier on real recordings",
                "Largest |int8 − fp32|", "Object classes at the box", "2 procedural drawings per class",
                int8.name, meta32["checksum"]):
        assert row in card, f"model card lacks {row!r}"

    again = run_chain(tmp_path)  # every step's output exists: nothing is redone
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing" in again.stdout and "already trained" in again.stdout
    assert "have " in again.stdout


def test_missing_init_checkpoint_is_refused_before_any_work(tmp_path):
    r = subprocess.run([str(ROOT / "Tools/ship_model.sh"), "--data", str(tmp_path / "data"), "--run", str(tmp_path / "run"),
                        "--init", str(tmp_path / "none.pt")], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--init: no file" in r.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()
