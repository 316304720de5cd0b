"""Contact sheet of procedural drawings, one row per class:
    python3 -m dataset.procedural --out sheet.png [--variants 8] [--classes cello,tuba]"""
from __future__ import annotations

import argparse

from PIL import Image, ImageDraw

from .. import CLASSES
from . import DRAWERS, draw


def sheet(classes: list[str], variants: int, cell: int = 128) -> Image.Image:
    label = 110
    out = Image.new("RGB", (label + variants * cell, len(classes) * cell), (255, 255, 255))
    d = ImageDraw.Draw(out)
    for r, cls in enumerate(classes):
        d.text((4, r * cell + cell // 2 - 6), cls, fill=(0, 0, 0))
        for v in range(variants):
            im = draw(cls, v, side=cell - 8)
            x = label + v * cell + (cell - im.size[0]) // 2
            y = r * cell + (cell - im.size[1]) // 2
            out.paste(im, (x, y), im)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dataset.procedural", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--variants", type=int, default=8)
    ap.add_argument("--classes", default=",".join(CLASSES))
    a = ap.parse_args(argv)
    classes = [c for c in a.classes.split(",") if c]
    unknown = [c for c in classes if c not in DRAWERS]
    if unknown:
        ap.error(f"no procedural drawing for: {', '.join(unknown)} (have: {', '.join(sorted(DRAWERS))})")
    sheet(classes, a.variants).save(a.out)
    print(f"wrote {a.out}: {len(classes)} classes x {a.variants} variants")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
