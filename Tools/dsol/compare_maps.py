"""int8 against fp32 on the same scenes: compares two folders of maps written by
`soundloc eval --maps-out DIR` (one float32 .npy per scene, shape (K+1, H, W): the
K class maps, then the sounding-area map l).

    cd Tools && python3 -m dsol.compare_maps --a FP32_MAPS --b INT8_MAPS [--json OUT]

Reports the mean absolute difference of the per-pixel class probabilities (all
scenes, classes and cells), its worst scene, the mean |delta l|, and how often the
top sounding class agrees. The top sounding class of a scene is the class with the
most probability inside the sounding area: argmax_k sum_cells classmap_k * l."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def top_sounding_class(maps: np.ndarray) -> int:
    classes, l = maps[:-1].astype(np.float64), maps[-1].astype(np.float64)
    return int(np.argmax((classes * l[None]).sum(axis=(1, 2))))


def compare(a_dir: Path, b_dir: Path) -> dict:
    names = sorted(p.name for p in a_dir.glob("*.npy"))
    missing = [n for n in names if not (b_dir / n).exists()]
    if not names:
        raise SystemExit(f"{a_dir}: no .npy maps")
    if missing:
        raise SystemExit(f"{b_dir} lacks {len(missing)} of {a_dir}'s maps (first: {missing[0]})")
    diffs, l_diffs, agree, worst = [], [], 0, ("", -1.0)
    for n in names:
        a, b = np.load(a_dir / n), np.load(b_dir / n)
        if a.shape != b.shape:
            raise SystemExit(f"{n}: shapes differ, {a.shape} vs {b.shape}")
        d = float(np.abs(a[:-1].astype(np.float64) - b[:-1]).mean())
        diffs.append(d)
        l_diffs.append(float(np.abs(a[-1].astype(np.float64) - b[-1]).mean()))
        agree += top_sounding_class(a) == top_sounding_class(b)
        if d > worst[1]:
            worst = (n[:-4], d)
    return {"scenes": len(names), "mean_abs_class_prob_diff": float(np.mean(diffs)),
            "worst_scene": worst[0], "worst_scene_mean_abs_diff": worst[1],
            "mean_abs_l_diff": float(np.mean(l_diffs)), "top_class_agreement": agree / len(names)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dsol.compare_maps", description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="reference maps (fp32)")
    ap.add_argument("--b", required=True, help="maps to compare (int8)")
    ap.add_argument("--json", help="write the result as JSON")
    args = ap.parse_args(argv)
    for d in (args.a, args.b):
        if not Path(d).is_dir():
            print(f"{d} is not a folder of maps (soundloc eval --maps-out)", file=sys.stderr)
            return 1
    r = compare(Path(args.a), Path(args.b))
    print(f"{r['scenes']} scenes: mean |delta class probability| {r['mean_abs_class_prob_diff']:.4f} "
          f"(worst scene {r['worst_scene']}: {r['worst_scene_mean_abs_diff']:.4f}), mean |delta l| "
          f"{r['mean_abs_l_diff']:.4f}, top sounding class agrees on {100 * r['top_class_agreement']:.1f} %")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
