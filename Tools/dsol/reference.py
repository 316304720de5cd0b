"""Reference outputs for the Swift engine's tests.

    PYTHONPATH=Tools python3 -m dsol.reference --width 8 --classes 11 --seed 1 --out DIR

writes DIR/model.safetensors (a random model with random BatchNorm stats, exported per
Models/FORMAT.md) and DIR/reference.safetensors holding the inputs (`in.rgb` raw uint8 HxWx3,
`in.image` its preprocessing, `in.audio` 201x64 log-mel-like dB) and the outputs (`out.*`, batch
and singleton channel dimensions dropped). The forward pass runs in float64 on the exported
(folded, float32) weights, so the reference is what the file means, free of PyTorch's fp32
rounding; values are stored as float32. Output is deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .export import export_model, load_model, random_model, write_safetensors
from .image import preprocess
from .synthetic import synthetic_logmel, synthetic_rgb

# Odd sizes; 301 -> 224 shrinks horizontally while 157 -> 224 enlarges vertically, so one
# image exercises both filter regimes.
RGB_HEIGHT, RGB_WIDTH = 157, 301
OUTPUTS = ("fv", "ga", "l", "match", "s", "class_maps", "p_a", "p_v", "audio_logits", "vision_logits")


def reference_inputs(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb uint8 HxWx3, image float32 3x224x224, audio float32 201x64), derived from seed."""
    rgb = synthetic_rgb(10_000 + seed, RGB_HEIGHT, RGB_WIDTH)
    return rgb, preprocess(rgb), synthetic_logmel(20_000 + seed)


def run_reference(model_path: str | Path, rgb: np.ndarray, image: np.ndarray,
                  audio: np.ndarray) -> dict[str, np.ndarray]:
    """float64 forward of a model file; returns the reference tensors (float32 / uint8)."""
    model = load_model(model_path).double()
    with torch.no_grad():
        out = model(torch.from_numpy(image)[None].double(), torch.from_numpy(audio)[None, None].double())
    tensors = {"in.rgb": rgb, "in.image": image, "in.audio": audio}
    for name in OUTPUTS:
        t = out[name][0]
        if name == "l":
            t = t[0]
        elif name == "match":
            t = t.reshape(1)
        tensors[f"out.{name}"] = t.numpy().astype(np.float32)
    return tensors


def generate(out_dir: str | Path, width: int, classes: list[str] | int, seed: int) -> dict[str, float]:
    """Write model.safetensors and reference.safetensors into out_dir; returns timings."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = None if isinstance(classes, int) else list(classes)
    k = classes if isinstance(classes, int) else len(names)
    t0 = time.perf_counter()
    model = random_model(width, k, seed, classes=names)
    t1 = time.perf_counter()
    model_path = out_dir / "model.safetensors"
    export_model(model, model_path, f"random init for tests: dsol.reference --width {width} "
                 f"--classes {k} --seed {seed}")
    t2 = time.perf_counter()
    rgb, image, audio = reference_inputs(seed)
    tensors = run_reference(model_path, rgb, image, audio)
    meta = {"width": str(width), "num_classes": str(k), "classes": json.dumps(model.classes),
            "seed": str(seed), "forward": "float64 on the exported float32 weights",
            "source": "Tools/dsol/reference.py"}
    write_safetensors(out_dir / "reference.safetensors", tensors, meta)
    t3 = time.perf_counter()
    return {"build": t1 - t0, "export": t2 - t1, "reference": t3 - t2, "total": t3 - t0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dsol.reference", description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=64, help="ResNet base width (64 = real model)")
    ap.add_argument("--classes", default="11",
                    help="K (an integer; 11 gives the MUSIC names) or comma-separated class names")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    classes: list[str] | int = int(args.classes) if args.classes.isdigit() else \
        [c.strip() for c in args.classes.split(",")]
    torch.set_grad_enabled(False)
    times = generate(args.out, args.width, classes, args.seed)
    if not args.quiet:
        print(f"wrote {args.out}/model.safetensors and reference.safetensors in {times['total']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
