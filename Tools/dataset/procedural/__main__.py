"""Contact sheet of procedural drawings, one row per class (and per everyday thing):
    python3 -m dataset.procedural --out sheet.png [--variants 8] [--classes cello,tuba]
        [--looks outline,flat,shaded,greyscale,textured | all] [--things]"""
from __future__ import annotations

import argparse

from PIL import Image, ImageDraw

from .. import CLASSES
from . import DRAWERS, THINGS, check_looks, draw, draw_thing
from .canvas import LOOKS


def sheet(classes: list[str], variants: int, cell: int = 128, looks=None, things: list[str] = ()) -> Image.Image:
    label = 110
    rows = [(c, draw) for c in classes] + [(t, draw_thing) for t in things]
    out = Image.new("RGB", (label + variants * cell, len(rows) * cell), (255, 255, 255))
    d = ImageDraw.Draw(out)
    for r, (name, render) in enumerate(rows):
        d.text((4, r * cell + cell // 2 - 6), name, fill=(0, 0, 0))
        for v in range(variants):
            im = render(name, v, side=cell - 8, looks=looks)
            x = label + v * cell + (cell - im.size[0]) // 2
            y = r * cell + (cell - im.size[1]) // 2
            out.paste(im, (x, y), im)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dataset.procedural", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--variants", type=int, default=8)
    ap.add_argument("--classes", default=",".join(CLASSES), help="instrument rows ('' for none)")
    ap.add_argument("--looks", default="", help=f"comma-separated subset of {','.join(LOOKS)}, or all "
                    "(default: the classic mix)")
    ap.add_argument("--things", action="store_true", help="add a row per everyday thing (distractors)")
    a = ap.parse_args(argv)
    classes = [c for c in a.classes.split(",") if c]
    unknown = [c for c in classes if c not in DRAWERS]
    if unknown:
        ap.error(f"no procedural drawing for: {', '.join(unknown)} (have: {', '.join(sorted(DRAWERS))})")
    try:
        looks = check_looks(LOOKS if a.looks == "all" else [k for k in a.looks.split(",") if k])
    except ValueError as e:
        ap.error(str(e))
    things = sorted(THINGS) if a.things else []
    sheet(classes, a.variants, looks=looks, things=things).save(a.out)
    print(f"wrote {a.out}: {len(classes) + len(things)} rows x {a.variants} variants")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
