"""Which class the object dictionary gives each object it can see, split by whether the
object's drawing was in the training split: the direct test of whether the class maps
learned instruments or only the drawings they were trained on.

    cd Tools && python3 -m dsol.box_classes --model M.safetensors --data MANIFEST [--split test]
                                            [--kinds synthetic,free] [--limit N] [--json OUT]

For each object of the chosen scenes (sounding or silent), the dictionary response
m_k = w * <d_k, f(v)> + b (the class map before the sounding area and the softmax) is
averaged over the object's box cells on the 14x14 grid; the object counts as recognised
when its own class has the highest mean. Drawings count as seen when the builder's
manifest lists them in the training split (other data sets: all "unknown")."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict

import numpy as np


def box_cells(box, grid: int) -> tuple[slice, slice]:
    """Rows and columns of the grid cells whose centres lie inside a normalised [x, y, w, h]
    box; the cell holding the box centre when none does (tiny boxes)."""
    x, y, w, h = box
    centres = (np.arange(grid) + 0.5) / grid
    cols = np.nonzero((centres >= x) & (centres <= x + w))[0]
    rows = np.nonzero((centres >= y) & (centres <= y + h))[0]
    if len(cols) == 0:
        cols = np.array([min(grid - 1, int((x + w / 2) * grid))])
    if len(rows) == 0:
        rows = np.array([min(grid - 1, int((y + h / 2) * grid))])
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def box_class(m: np.ndarray, box) -> int:
    """argmax over classes of the mean response (K, H, W) inside the box."""
    r, c = box_cells(box, m.shape[-1])
    return int(np.argmax(m[:, r, c].mean(axis=(1, 2))))


def summarise(records: list[tuple[str, str, bool]]) -> dict:
    """records: (true class, drawing status seen|new|unknown, recognised)."""
    out: dict = {"objects": len(records)}
    by_status, by_class = defaultdict(list), defaultdict(lambda: defaultdict(list))
    for cls, status, ok in records:
        by_status[status].append(ok)
        by_class[cls][status].append(ok)
    out["accuracy"] = float(np.mean([ok for *_, ok in records])) if records else None
    out["by_drawing"] = {s: {"objects": len(v), "accuracy": float(np.mean(v))} for s, v in sorted(by_status.items())}
    out["by_class"] = {c: {s: {"objects": len(v), "accuracy": float(np.mean(v))} for s, v in sorted(d.items())}
                       for c, d in sorted(by_class.items())}
    return out


def evaluate(model_path: str, manifest_path: str, split: str = "test",
             kinds: tuple = ("synthetic", "free"), limit: int | None = None, batch: int = 16) -> dict:
    import torch
    from PIL import Image
    from .data import image_input
    from .export import load_model

    with open(manifest_path) as f:
        manifest = json.load(f)
    train_drawings = manifest.get("splits", {}).get("train", {}).get("drawings", {})
    seen = {d for ds in train_drawings.values() for d in ds}
    model = load_model(model_path)
    index = {name: k for k, name in enumerate(model.classes)}
    missing = sorted({c for c in manifest["classes"] if c not in index})
    if missing:
        raise SystemExit(f"{model_path} has no class {', '.join(missing)} of {manifest_path}")
    scenes = [s for s in manifest["scenes"] if s["split"] == split and s["kind"] in kinds]
    if limit:
        per_kind: dict = defaultdict(list)
        for s in scenes:
            per_kind[s["kind"]].append(s)
        scenes = [s for k in kinds for s in per_kind[k][:limit]]
    if not scenes:
        raise SystemExit(f"{manifest_path}: no {'/'.join(kinds)} scenes in split {split!r}")
    root = os.path.dirname(os.path.abspath(manifest_path))
    records = []
    for i in range(0, len(scenes), batch):
        chunk = scenes[i:i + batch]
        x = torch.from_numpy(np.stack([image_input(np.asarray(Image.open(os.path.join(root, s["image"]))
                                                              .convert("RGB"))) for s in chunk]))
        with torch.no_grad():
            m = model.object_response(model.vision(x)).numpy()
        for s, mm in zip(chunk, m):
            for o in s["objects"]:
                status = "unknown" if not seen or "drawing" not in o else \
                    ("seen" if o["drawing"] in seen else "new")
                records.append((o["class"], status, model.classes[box_class(mm, o["box"])] == o["class"]))
    out = summarise(records)
    out.update({"model": model_path, "data": manifest_path, "split": split, "kinds": list(kinds),
                "scenes": len(scenes), "chance": 1.0 / len(model.classes)})
    return out


def table(r: dict) -> str:
    lines = [f"{r['split']} {'/'.join(r['kinds'])}: {r['scenes']} scenes, {r['objects']} objects; "
             f"recognised at the box {100 * r['accuracy']:.1f} % (chance {100 * r['chance']:.1f} %)"]
    for s, v in r["by_drawing"].items():
        lines.append(f"  drawing {s:7s} {v['objects']:5d} objects  {100 * v['accuracy']:5.1f} %")
    lines.append("  per class: " + ", ".join(
        f"{c} " + "/".join(f"{s} {100 * v['accuracy']:.0f}%" for s, v in d.items())
        for c, d in r["by_class"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dsol.box_classes", description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="fp32 model file (safetensors)")
    ap.add_argument("--data", required=True, help="builder manifest.json")
    ap.add_argument("--split", default="test", choices=["train", "val", "test"])
    ap.add_argument("--kinds", default="synthetic,free", help="scene kinds, comma-separated")
    ap.add_argument("--limit", type=int, help="at most N scenes per kind")
    ap.add_argument("--json", help="write the result here")
    a = ap.parse_args(argv)
    r = evaluate(a.model, a.data, a.split, tuple(k for k in a.kinds.split(",") if k), a.limit)
    print(table(r))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
