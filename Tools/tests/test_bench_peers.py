"""Tools/bench_peers.py: ORT fp32 / int8 peers on a tiny random model, and the soundloc JSON parser."""

import json
import os
import stat
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))
pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
Image = pytest.importorskip("PIL.Image")

import bench_peers  # noqa: E402


def _calibration_folder(root: Path, n: int = 4) -> Path:
    """n random pictures (odd sizes) and n 1 s WAVs of tones in noise, paired by name."""
    rng = np.random.default_rng(3)
    d = root / "cal"
    d.mkdir()
    t = np.arange(16000) / 16000
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (90 + 7 * i, 130, 3), dtype=np.uint8)).save(d / f"s{i}.png")
        x = 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.05 * rng.normal(size=t.size)
        with wave.open(str(d / f"s{i}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(np.clip(x * 32767, -32768, 32767).astype("<i2").tobytes())
    return d


def _fake_soundloc(root: Path) -> Path:
    """A stand-in binary: `quantize` copies the model, `bench engine` writes a report shaped like
    the real one (--int8-model measured side by side; int8 exactly twice as fast)."""
    script = root / "fake_soundloc"
    script.write_text(f"""#!{sys.executable}
import json, shutil, sys
a = sys.argv[1:]
arg = lambda k: a[a.index(k) + 1] if k in a else None
if a[0] == 'quantize':
    shutil.copyfile(arg('--model'), arg('--out'))
    sys.exit(0)
assert a[:2] == ['bench', 'engine'], a
models = [('fp32', arg('--model'))] + ([('int8', arg('--int8-model'))] if '--int8-model' in a else [])
stages = []
for n in [int(t) for t in arg('--threads').split(',')]:
    for prec, _ in models:
        tag = prec + ('/avx2-test' if prec == 'int8' else '')
        for name, us in (('vision trunk', 9000.0), ('audio trunk', 2500.0), ('heads', 300.0), ('full forward', 12000.0)):
            us = us / n / (2 if prec == 'int8' else 1)
            stages.append(dict(name=f'{{name}} {{tag}}, {{n}} thr', iterations=int(arg('--iterations') or 50),
                               medianMicroseconds=us, p99Microseconds=us * 1.1, maxMicroseconds=us * 1.2,
                               meanMicroseconds=us))
json.dump(dict(model=arg('--model'), int8Model=arg('--int8-model'), width=8, stages=stages), open(arg('--json'), 'w'))
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_bench_peers_tiny_model(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(TOOLS))
    ref = subprocess.run([sys.executable, "-m", "dsol.reference", "--width", "8", "--classes", "11", "--seed", "1",
                          "--out", str(tmp_path / "w8")], cwd=TOOLS, env=env, capture_output=True, text=True, timeout=60)
    assert ref.returncode == 0, ref.stderr
    model = tmp_path / "w8" / "model.safetensors"
    out = tmp_path / "out.json"
    run = subprocess.run([sys.executable, str(TOOLS / "bench_peers.py"), "--model", str(model),
                          "--calibration", str(_calibration_folder(tmp_path)), "--limit", "4", "--runs", "3",
                          "--warmup", "1", "--threads", "1,2", "--peers", "none", "--accuracy",
                          "--soundloc", str(_fake_soundloc(tmp_path)),
                          "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(out.read_text())
    assert doc["calibration"]["count"] == 4
    got = {(r["engine"], r["network"], r["threads"]) for r in doc["results"]}
    for engine in ("ort-fp32", "ort-int8-percentile", "ort-int8-minmax", "soundloc-fp32", "soundloc-int8"):
        for net in ("vision", "audio", "frame"):
            for t in (1, 2):
                assert (engine, net, t) in got, (engine, net, t)
    assert all(r["median_ms"] > 0 for r in doc["results"])
    assert doc["ort_int8_primary"] == "ort-int8-percentile"
    q = doc["quantization"]["ort-int8-percentile"]["vision"]
    assert q["format"] == "QDQ" and q["per_channel"] and q["calibrate_method"] == "percentile"
    ratios = {(r["ratio"], r["network"], r["threads"]): r["value"] for r in doc["ratios"]}
    # the fake binary's int8 is exactly twice as fast as its fp32
    assert ratios[("soundloc-int8 / soundloc-fp32", "vision", 1)] == pytest.approx(0.5)
    assert ("soundloc-int8 / ort-int8-percentile", "frame", 2) in ratios
    assert "quantize" in doc["soundloc"]["quantize"]["command"]  # int8 model made on the same calibration data
    assert any(r.get("kernel") == "avx2-test" for r in doc["results"])
    acc = doc["accuracy"]["ort-int8-percentile"]["vision"]
    assert np.isfinite(acc["mean_abs_diff"]) and acc["mean_abs_fp32"] > 0
    assert "noisy" in doc["note"] and "noisy" in run.stdout
    assert "median latency" in run.stdout and "frame (vision+audio)" in run.stdout


def test_parse_soundloc_variants():
    # the current shape: names carry network, precision and threads; times in µs
    rows, warnings = bench_peers.parse_soundloc({"stages": [
        {"name": "vision trunk fp32, 2 thread(s)", "medianMicroseconds": 5000.0, "p99Microseconds": 6000.0},
        {"name": "full forward fp32, 1 thread(s)", "medianMicroseconds": 9000.0},
        {"name": "heads int8/avx2, 2 thr", "medianMicroseconds": 400.0},
        {"name": "model load", "medianMicroseconds": 1.0}]}, "fp32")
    assert [(r["engine"], r["network"], r["threads"], r["median_ms"]) for r in rows] == [
        ("soundloc-fp32", "vision", 2, 5.0), ("soundloc-fp32", "full", 1, 9.0), ("soundloc-int8", "heads", 2, 0.4)]
    assert rows[0]["p99_ms"] == 6.0 and not warnings
    # explicit fields and milliseconds, both precisions in one report
    rows, _ = bench_peers.parse_soundloc({"precision": "int8", "stages": [
        {"name": "x", "network": "audio", "threads": 1, "precision": "int8", "median_ms": 1.5},
        {"name": "audio trunk fp32, 1 thread(s)", "medianMicroseconds": 3000.0}]}, "int8")
    assert [(r["engine"], r["median_ms"]) for r in rows] == [("soundloc-int8", 1.5), ("soundloc-fp32", 3.0)]
    # an int8 model run by a binary that still names every stage fp32
    rows, warnings = bench_peers.parse_soundloc({"stages": [
        {"name": "audio trunk fp32, 1 thread(s)", "medianMicroseconds": 3000.0}]}, "int8")
    assert rows[0]["engine"] == "soundloc-int8" and warnings
