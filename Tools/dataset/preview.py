"""Contact sheet of built scenes with their boxes (green = sounding, grey =
silent, thin orange = a silent everyday thing, see --distractors), for a person
to look at the data.

    cd Tools && python3 -m dataset.preview --data DIR --out preview.png [--per-kind 6]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from PIL import Image, ImageDraw

GREEN, GREY, ORANGE = (40, 230, 60), (150, 150, 150), (245, 150, 30)


def sheet(data: str, per_kind: int = 6, split: str | None = None, scale: int = 2) -> Image.Image:
    with open(os.path.join(data, "manifest.json")) as f:
        m = json.load(f)
    rows = []
    for kind in ("solo", "synthetic", "free"):
        for sp in ([split] if split else ["train", "val", "test"]):
            sc = [s for s in m["scenes"] if s["kind"] == kind and s["split"] == sp]
            if sc:
                step = max(1, len(sc) // per_kind)
                rows.append((f"{sp} / {kind}", sc[::step][:per_kind]))
    tile = 224 * scale
    label_h = 14 * (1 + 4)  # title + up to 4 object lines
    width = max((len(r[1]) for r in rows), default=1) * (tile + 8) + 8
    height = sum(tile + label_h + 26 for _ in rows) + 8
    out = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    y = 8
    for title, scenes in rows:
        draw.text((8, y), title, fill=(0, 0, 0))
        y += 16
        for j, s in enumerate(scenes):
            x = 8 + j * (tile + 8)
            im = Image.open(os.path.join(data, s["image"])).convert("RGB").resize(
                (tile, tile), Image.Resampling.NEAREST)
            d = ImageDraw.Draw(im)
            for t in s.get("distractors", []):
                bx, by, bw, bh = (v * tile for v in t["box"])
                d.rectangle([bx, by, bx + bw - 1, by + bh - 1], outline=ORANGE, width=1)
                d.text((bx + 3, by + bh - 12), t["thing"], fill=ORANGE)
            for o in s["objects"]:
                bx, by, bw, bh = (v * tile for v in o["box"])
                col = GREEN if o["sounding"] else GREY
                d.rectangle([bx, by, bx + bw - 1, by + bh - 1], outline=col, width=3)
                d.text((bx + 4, by + 3), o["class"], fill=col)
            out.paste(im, (x, y))
            lines = [s["id"]] + [
                f"{'*' if o['sounding'] else ' '} {o['class']} ({o['drawing'].split(':', 1)[1]})"
                for o in s["objects"]]
            for k, line in enumerate(lines[:5]):
                draw.text((x, y + tile + 2 + 12 * k), line[:60], fill=(0, 0, 0))
        y += tile + label_h + 10
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m dataset.preview")
    ap.add_argument("--data", required=True, help="built data-set folder")
    ap.add_argument("--out", required=True, help="PNG to write")
    ap.add_argument("--per-kind", type=int, default=6, help="scenes per row")
    ap.add_argument("--split", choices=["train", "val", "test"])
    ap.add_argument("--scale", type=int, default=1, help="pixel magnification")
    a = ap.parse_args(argv)
    sheet(a.data, a.per_kind, a.split, a.scale).save(a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
