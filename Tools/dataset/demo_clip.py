"""The demo's cocktail-party clip: one still 2x2 scene of four instruments and a
10-second sound track in which different pairs play, one plays alone, then
silence. Built from test-split assets only (drawings, backgrounds and a
soundfont family the shipped model never saw), so the demo shows the model on
unseen material.

    cd Tools && python3 -m dataset.demo_clip --out ../Models/demo [--seed 7]

Writes scene.png (224x224), clip.wav (16 kHz mono PCM16) and scene.json
(boxes, the timeline of who sounds when, provenance and licences)."""
from __future__ import annotations

import argparse
import json
import os
import wave

import numpy as np
from PIL import Image

from . import CLASSES, CLIP_SAMPLES, IMAGE_SIZE, SAMPLE_RATE
from . import assets as A
from .scenes import Catalogue, _solo_frame, sound, to_pcm16

# Four classes with clearly different sounds and test-split drawings; quadrants
# in reading order.
DEMO_CLASSES = ["violin", "trumpet", "acoustic_guitar", "flute"]
# (start s, end s, sounding quadrants): two at a time as in MUSIC-Synthetic,
# one alone, then silence (the silence gate must report nothing).
TIMELINE = [(0, 3, (0, 3)), (3, 6, (1, 2)), (6, 8, (1,)), (8, 10, ())]
LEVEL_DBFS = -20.0
FADE = SAMPLE_RATE // 50  # 20 ms ramps at segment edges, so cuts do not click


def _segment(cls: str, seconds: int, cat: Catalogue, rng) -> tuple[np.ndarray, list[dict]]:
    """`seconds` consecutive 1-s test-family clips of one class at one level."""
    parts, infos = [], []
    for _ in range(seconds):
        clip, info = sound("test", cls, cat, rng)
        rms = float(np.sqrt(np.mean(clip.astype(np.float64) ** 2)))
        parts.append(clip * (10 ** (LEVEL_DBFS / 20) / max(rms, 1e-9)))
        infos.append(info)
    out = np.concatenate(parts)
    ramp = np.linspace(0, 1, FADE)
    out[:FADE] *= ramp
    out[-FADE:] *= ramp[::-1]
    return out, infos


def build(out: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    cat = Catalogue(A.load_drawings(), A.load_backgrounds(), A.load_soundfonts(), A.split_families("B"))
    half = IMAGE_SIZE // 2
    canvas = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE))
    objects = []
    for q, cls in enumerate(DEMO_CLASSES):
        frame, box, drawing, _aug, bg_id = _solo_frame("test", cls, cat, rng, scale=(0.6, 0.85))
        qx, qy = q % 2, q // 2
        canvas.paste(frame.resize((half, half), Image.Resampling.LANCZOS), (qx * half, qy * half))
        objects.append({"class": cls, "class_id": CLASSES.index(cls),
                        "box": [round((qx + box[0]) / 2, 6), round((qy + box[1]) / 2, 6),
                                round(box[2] / 2, 6), round(box[3] / 2, 6)],
                        "drawing": drawing.id, "drawing_provenance": drawing.provenance(),
                        "background": bg_id})

    total = TIMELINE[-1][1] * SAMPLE_RATE
    track = rng.normal(0, 10 ** (-66 / 20), total)  # a faint noise floor, as a real room has
    timeline = []
    for start, end, quadrants in TIMELINE:
        sounds = []
        for q in quadrants:
            seg, infos = _segment(DEMO_CLASSES[q], end - start, cat, rng)
            track[start * SAMPLE_RATE:end * SAMPLE_RATE] += seg
            sounds.append({"class": DEMO_CLASSES[q], "clips": infos})
        timeline.append({"start_s": start, "end_s": end, "sounding": [DEMO_CLASSES[q] for q in quadrants],
                         "sounds": sounds})
    peak = float(np.max(np.abs(track)))
    if peak > 0.97:
        track *= 0.97 / peak

    os.makedirs(out, exist_ok=True)
    canvas.save(os.path.join(out, "scene.png"), optimize=True)
    with wave.open(os.path.join(out, "clip.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(to_pcm16(track))
    fonts = {s.name: {"package": s.package, "licence": s.licence} for s in A.load_soundfonts()}
    used_fonts = sorted({c["soundfont"] for seg in timeline for s in seg["sounds"] for c in s["clips"]})
    backgrounds = {b.id: {"package": b.package, "path": b.path, "licence": b.licence, "copyright": b.copyright}
                   for b in A.load_backgrounds(with_images=False)}
    meta = {
        "format": "soundloc-demo-clip",
        "seed": seed,
        "image": "scene.png",
        "audio": "clip.wav",
        "sample_rate": SAMPLE_RATE,
        "seconds": TIMELINE[-1][1],
        "level_dbfs": LEVEL_DBFS,
        "box_format": "normalised [x, y, w, h] of the 224x224 image",
        "objects": objects,
        "timeline": timeline,
        "soundfonts": {n: fonts[n] for n in used_fonts},
        "backgrounds": {o["background"]: backgrounds.get(o["background"], {}) for o in objects},
        "note": "test-split assets only; clip length per segment is built from consecutive 1-s renders "
                f"({CLIP_SAMPLES} samples each)",
    }
    with open(os.path.join(out, "scene.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dataset.demo_clip", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for scene.png, clip.wav, scene.json")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    meta = build(args.out, args.seed)
    for seg in meta["timeline"]:
        print(f"{seg['start_s']:>2}-{seg['end_s']:>2} s: {', '.join(seg['sounding']) or 'silence'}")
    print(f"wrote {args.out}/scene.png, clip.wav, scene.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
