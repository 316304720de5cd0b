"""Real single-instrument recordings shipped in Debian packages, cut into
labelled 1-second 16 kHz mono WAV windows: an honest test of an audio
classifier trained on synthesized clips.

    cd Tools && python3 -m dataset.real_audio --out DIR [--hop 0.5]

Sources: qabcs-data (all/noises/*.ogg), gcompris-qt-data (instrument sounds and
xylophone notes inside Qt .rcc bundles), tuxpaint-stamps-default (stamp sounds).
Writes DIR/audio/*.wav and DIR/labels.json (one entry per window, with origin
and licence). Levels are left as recorded.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import wave
from math import gcd

import numpy as np

from . import CLASSES, CLIP_SAMPLES, SAMPLE_RATE
from .assets import GCOMPRIS, INSTALL_HINT, TUXPAINT, dep5_licence, pkg_version
from .rcc import read_rcc

QABCS_NOISES = "/usr/share/qabcs/abcs/all/noises"
GC_INSTR = "/gcompris/src/activities/instruments/resource/"
GC_MELODY = "/gcompris/src/activities/melody/resource/"

# (source id, class, package, loader, path, member)
RECORDINGS = [
    *[(f"qabcs/{n}", c, "qabcs-data", "file", f"{QABCS_NOISES}/{n}.ogg", "")
      for n, c in (("accordion", "accordion"), ("guitar", "acoustic_guitar"), ("cello", "cello"),
                   ("clarinet", "clarinet"), ("erhu", "erhu"), ("flute", "flute"),
                   ("western_concert_flute", "flute"), ("saxophone", "saxophone"),
                   ("trumpet", "trumpet"), ("violin", "violin"), ("xylophone", "xylophone"))],
    *[(f"gcompris/{n}", c, "gcompris-qt-data", "rcc", f"{GCOMPRIS}/instruments.rcc",
       f"{GC_INSTR}{n}.ogg")
      for n, c in (("accordion", "accordion"), ("guitar", "acoustic_guitar"), ("cello", "cello"),
                   ("clarinet", "clarinet"), ("flute_traversiere", "flute"),
                   ("saxophone", "saxophone"), ("trumpet", "trumpet"), ("tuba", "tuba"),
                   ("violin", "violin"))],
    *[(f"gcompris/xylofon_son{i}", "xylophone", "gcompris-qt-data", "rcc",
       f"{GCOMPRIS}/melody.rcc", f"{GC_MELODY}xylofon_son{i}.wav") for i in range(1, 5)],
    ("tuxpaint/cello", "cello", "tuxpaint-stamps-default", "file",
     f"{TUXPAINT}/string/cello.ogg", ""),
    ("tuxpaint/violin", "violin", "tuxpaint-stamps-default", "file",
     f"{TUXPAINT}/string/violin.ogg", ""),
]


def _licence(package: str, path: str, member: str) -> tuple[str, str]:
    if package == "qabcs-data":
        return dep5_licence(package, os.path.relpath(path, "/usr/share/qabcs"))
    if package == "gcompris-qt-data":
        return dep5_licence(package, member.replace("/gcompris/", "", 1))
    if package == "tuxpaint-stamps-default":
        return dep5_licence(package, "stamps/" + os.path.relpath(path, "/usr/share/tuxpaint/stamps"))
    return "unknown", ""


def load_audio(data) -> np.ndarray:
    """Decode (file path or bytes) to mono float64 at 16 kHz."""
    import soundfile as sf
    from scipy.signal import resample_poly
    x, sr = sf.read(io.BytesIO(data) if isinstance(data, bytes) else data,
                    dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    if sr != SAMPLE_RATE:
        g = gcd(int(sr), SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, int(sr) // g)
    return x


def windows(x: np.ndarray, hop_s: float) -> list[tuple[int, np.ndarray, bool]]:
    """(start sample, 1 s window, padded) for the windows that hold sound."""
    hop = int(hop_s * SAMPLE_RATE)
    if len(x) < CLIP_SAMPLES:
        return [(0, np.pad(x, (0, CLIP_SAMPLES - len(x))), True)]
    out = [(s, x[s:s + CLIP_SAMPLES], False) for s in range(0, len(x) - CLIP_SAMPLES + 1, hop)]
    rms = [float(np.sqrt(np.mean(w ** 2))) for _, w, _ in out]
    top = max(rms)
    # drop near-silent windows (tails, pauses): quieter than -50 dBFS or 20 dB under the loudest
    return [o for o, r in zip(out, rms) if r > 10 ** (-50 / 20) and r > 0.1 * top]


def extract(out: str, hop_s: float = 0.5) -> dict:
    os.makedirs(os.path.join(out, "audio"), exist_ok=True)
    bundles: dict = {}
    entries, recordings, missing = [], [], []
    for sid, cls, pkg, loader, path, member in RECORDINGS:
        if not os.path.exists(path):
            missing.append(f"{sid} ({pkg})")
            continue
        if loader == "rcc":
            if path not in bundles:
                bundles[path] = read_rcc(path)
            x = load_audio(bundles[path][member])
        else:
            x = load_audio(path)
        lic, cr = _licence(pkg, path, member)
        rec = {"source": sid, "class": cls, "package": pkg, "version": pkg_version(pkg),
               "path": path, "duration_s": round(len(x) / SAMPLE_RATE, 3),
               "licence": lic, "copyright": cr}
        if member:
            rec["member"] = member
        recordings.append(rec)
        for k, (start, w, padded) in enumerate(windows(x, hop_s)):
            name = f"{sid.replace('/', '-')}-{k:02d}.wav"
            pcm = np.clip(np.round(w * 32767), -32768, 32767).astype("<i2")
            with wave.open(os.path.join(out, "audio", name), "wb") as f:
                f.setnchannels(1)
                f.setsampwidth(2)
                f.setframerate(SAMPLE_RATE)
                f.writeframes(pcm.tobytes())
            rms = float(np.sqrt(np.mean(w ** 2)))
            entries.append({"path": f"audio/{name}", "class": cls, "class_id": CLASSES.index(cls),
                            "source": sid, "start_s": round(start / SAMPLE_RATE, 3),
                            "padded": padded, "rms_dbfs": round(20 * np.log10(max(rms, 1e-12)), 2)})
    if not recordings:
        raise SystemExit(f"no recordings found; {INSTALL_HINT}")
    labels = {
        "format": "soundloc-real-audio", "classes": CLASSES, "sample_rate": SAMPLE_RATE,
        "clip_samples": CLIP_SAMPLES, "hop_s": hop_s,
        "note": "real recordings; windows of one recording overlap and are not independent; "
                "gcompris xylophone notes are shorter than 1 s and zero-padded",
        "per_class": {c: sum(1 for e in entries if e["class"] == c) for c in CLASSES},
        "classes_without_recordings": [c for c in CLASSES if not any(e["class"] == c for e in entries)],
        "missing_sources": missing,
        "recordings": recordings,
        "windows": entries,
    }
    with open(os.path.join(out, "labels.json"), "w", encoding="utf-8") as f:
        json.dump(labels, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return labels


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m dataset.real_audio")
    ap.add_argument("--out", required=True)
    ap.add_argument("--hop", type=float, default=0.5, help="seconds between window starts")
    a = ap.parse_args(argv)
    labels = extract(a.out, a.hop)
    print(f"{len(labels['windows'])} windows from {len(labels['recordings'])} recordings in {a.out}")
    print("per class: " + ", ".join(f"{c} {n}" for c, n in labels["per_class"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
