"""PNG copies of the frames an annotation file names, for soundloc (whose image reader takes PNG and PPM,
not JPEG) to evaluate or calibrate on a MUSIC-layout folder's JPEG frames.

    cd Tools && python3 -m dsol.png_frames ../music/solo/frames/solotest.json
        -> each <video>/frame_SSS/NNNNN.jpg it names gets NNNNN.png beside it (the pixels PIL decodes, as
           the trainer sees them), and solotest_png.json, the same file naming the copies
    cd Tools && python3 -m dsol.png_frames --frames ../music/solo/frames --every 10 --limit 300 \\
        --out ../music/solo/frames/calibration.json
        -> an annotation file (no boxes) of every 10th frame of the folder, at most 300, as PNG copies:
           `soundloc quantize --calibration` input

The names keep their folder and number, so the official rules (time NNNNN / 30, sound from
audio/<video>.wav) hold for the copies as for the JPEGs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image


def png_copy(frame: Path) -> Path:
    """frame's pixels as a PNG beside it (same name, .png); left alone when already made."""
    out = frame.with_suffix(".png")
    if frame.suffix.lower() != ".png" and not out.exists():
        with Image.open(frame) as im:
            im.convert("RGB").save(out)
    return out


def copy_annotation(path: Path, out: Path | None = None) -> Path:
    """An annotation file's frames as PNG copies and the file naming them (default: <stem>_png.json)."""
    entries = json.loads(path.read_text())
    roots = [path.parent, path.parent.parent]
    renamed = {}
    for key, entry in entries.items():
        base = next((r for r in roots if (r / key).exists()), None)
        if base is None:
            raise SystemExit(f"{path}: frame {key} not found under {[str(r) for r in roots]}")
        png_copy(base / key)
        renamed[Path(key).with_suffix(".png").as_posix()] = entry
    out = out or path.with_name(path.stem + "_png.json")
    out.write_text(json.dumps(renamed, indent=1) + "\n")
    return out


def frames_annotation(frames: Path, out: Path, every: int = 1, limit: int | None = None) -> Path:
    """An annotation file without boxes listing every `every`-th JPEG frame under frames (at most limit),
    as PNG copies; keys relative to frames, so write it there (or one level up)."""
    jpegs = sorted(p for p in frames.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))[::max(1, every)]
    if limit:
        jpegs = jpegs[:limit]
    if not jpegs:
        raise SystemExit(f"{frames}: no JPEG frames")
    entries = {png_copy(p).relative_to(frames).as_posix(): {"bbox": []} for p in jpegs}
    out.write_text(json.dumps(entries, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dsol.png_frames", description=__doc__.split("\n\n")[0])
    ap.add_argument("annotation", nargs="?", help="an annotation JSON naming JPEG frames")
    ap.add_argument("--frames", help="instead: a MUSIC-layout frames folder, all of whose JPEG frames to list")
    ap.add_argument("--every", type=int, default=1, help="with --frames: every N-th frame")
    ap.add_argument("--limit", type=int, help="with --frames: at most N frames")
    ap.add_argument("--out", help="the annotation file to write (default with ANNOTATION: <stem>_png.json)")
    args = ap.parse_args(argv)
    if bool(args.annotation) == bool(args.frames):
        ap.error("give an annotation file or --frames")
    if args.frames:
        if not args.out:
            ap.error("--frames needs --out")
        path = frames_annotation(Path(args.frames), Path(args.out), args.every, args.limit)
    else:
        path = copy_annotation(Path(args.annotation), Path(args.out) if args.out else None)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
