"""A toy data set in the builder's manifest layout (coloured shapes and tones), for tests and smoke
runs of the trainer and its tools: no assets needed, seconds to make."""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import numpy as np
from PIL import Image

from .audio import CLIP_SAMPLES, SAMPLE_RATE


TOY_CLASSES = ["red_disc", "green_square", "blue_triangle", "yellow_bar"]
_TOY_COLOURS = [(220, 40, 40), (40, 200, 60), (50, 80, 230), (230, 210, 40)]
_TOY_FREQS = [330.0, 550.0, 880.0, 1320.0]


def _toy_shape(cls: int, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    c = size / 2
    if cls == 0:
        m = (yy - c) ** 2 + (xx - c) ** 2 <= (0.48 * size) ** 2
    elif cls == 1:
        m = np.ones((size, size), bool)
    elif cls == 2:
        m = np.abs(xx - c) <= yy / 2
    else:
        m = np.abs(yy - c) <= 0.2 * size
    return m


def _toy_tone(cls: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(CLIP_SAMPLES) / SAMPLE_RATE
    f = _TOY_FREQS[cls % len(_TOY_FREQS)] * rng.uniform(0.97, 1.03)
    x = sum(np.sin(2 * np.pi * f * h * t + rng.uniform(0, 6.28)) / h for h in (1, 2, 3))
    return 0.25 * x * (0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(1, 4) * t) ** 2)


def _toy_write(path: Path, rgb: np.ndarray, audio: np.ndarray) -> None:
    Image.fromarray(rgb).save(path.with_suffix(".png"))
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path.with_suffix(".wav")), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


def write_toy_dataset(out: str | Path, seed: int = 0, counts: dict | None = None) -> Path:
    """Coloured shapes + tones in the builder's manifest layout; returns manifest.json's path.

    counts: {split: {kind: n}}; defaults to a few scenes of each kind per split."""
    out = Path(out)
    counts = counts or {"train": {"solo": 16, "synthetic": 8, "free": 0},
                        "val": {"solo": 4, "synthetic": 4, "free": 2},
                        "test": {"solo": 2, "synthetic": 2, "free": 0}}
    rng = np.random.default_rng(seed)
    size = 224
    k = len(TOY_CLASSES)
    scenes = []

    def canvas():
        base = rng.uniform(60, 180, 3)
        img = base + rng.normal(0, 12, (size, size, 3))
        return img

    def put(img, cls, x0, y0, side):
        m = _toy_shape(cls, side)
        sub = img[y0:y0 + side, x0:x0 + side]
        sub[m] = np.asarray(_TOY_COLOURS[cls]) + rng.normal(0, 8, (int(m.sum()), 3))
        ys, xs = np.nonzero(m)
        return [round((x0 + xs.min()) / size, 6), round((y0 + ys.min()) / size, 6),
                round((xs.max() + 1 - xs.min()) / size, 6), round((ys.max() + 1 - ys.min()) / size, 6)]

    for split, kinds in counts.items():
        for kind, n in kinds.items():
            (out / "images" / split / kind).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                sid = f"{split}-{kind}-{i:06d}"
                img = canvas()
                objects, sound = [], np.zeros(CLIP_SAMPLES)
                if kind == "solo":
                    cls = i % k
                    side = int(rng.integers(80, 160))
                    x0, y0 = (int(rng.integers(0, size - side + 1)) for _ in range(2))
                    box = put(img, cls, x0, y0, side)
                    objects.append((cls, box, True))
                    sound += _toy_tone(cls, rng)
                elif kind == "synthetic":
                    classes = rng.permutation(k)[:4].tolist()
                    loud = set(rng.permutation(4)[:2].tolist())
                    for q, cls in enumerate(classes):
                        side = int(rng.integers(40, 90))
                        qx, qy = (q % 2) * 112, (q // 2) * 112
                        x0 = qx + int(rng.integers(0, 112 - side + 1))
                        y0 = qy + int(rng.integers(0, 112 - side + 1))
                        box = put(img, cls, x0, y0, side)
                        objects.append((cls, box, q in loud))
                        if q in loud:
                            sound += _toy_tone(cls, rng)
                else:  # free: two objects left / right, one sounding
                    classes = rng.permutation(k)[:2].tolist()
                    loud = int(rng.integers(2))
                    for q, cls in enumerate(classes):
                        side = int(rng.integers(50, 100))
                        x0 = q * 112 + int(rng.integers(0, 112 - side + 1))
                        y0 = int(rng.integers(0, size - side + 1))
                        objects.append((cls, put(img, cls, x0, y0, side), q == loud))
                        if q == loud:
                            sound += _toy_tone(cls, rng)
                sound += rng.normal(0, 1e-3, CLIP_SAMPLES)
                rgb = np.clip(np.rint(img), 0, 255).astype(np.uint8)
                _toy_write(out / "images" / split / kind / sid, rgb, sound)
                # keep the builder's folders: images/... and audio/...
                (out / "audio" / split / kind).mkdir(parents=True, exist_ok=True)
                os.replace(out / "images" / split / kind / f"{sid}.wav", out / "audio" / split / kind / f"{sid}.wav")
                scenes.append({
                    "id": sid, "split": split, "kind": kind,
                    "image": f"images/{split}/{kind}/{sid}.png", "audio": f"audio/{split}/{kind}/{sid}.wav",
                    "objects": [{"class": TOY_CLASSES[c], "class_id": c, "box": b, "sounding": s}
                                for c, b, s in objects],
                    "sounding_classes": sorted({TOY_CLASSES[c] for c, _, s in objects if s}),
                })
    manifest = {"format": "soundloc-scenes", "builder_version": "toy", "seed": seed, "classes": TOY_CLASSES,
                "category_id_base": 0, "image_size": [size, size], "sample_rate": SAMPLE_RATE,
                "clip_samples": CLIP_SAMPLES, "scenes": scenes}
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1))
    return path
