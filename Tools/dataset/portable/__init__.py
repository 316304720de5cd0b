"""Picture-only training sets made anywhere: every instrument procedurally drawn, every background
procedurally drawn or one of scikit-image's training photos. No Debian asset package, soundfont,
fluidsynth or network is needed, so fresh pictures for the vision warm start (dsol.pretrain) can be
made on the machine that trains.

    cd Tools && python3 -m dataset.portable --out DIR --scenes N [--seed S] [--workers W]
        [--styles LOOKS] [--occlusion P] [--distractors N] [--rotation DEG] [--aspect A]
        [--solo-share P] [--variants V] [--format png|jpeg]

DIR gets manifest.json (format "soundloc-scenes", split "train" only, read by
dsol.data.load_manifest and dsol.pretrain) and images/train/<kind>/<id>.png. Kinds: solo (one
instrument), synthetic (four frames of four classes tiled 2x2) and free (2-4 instruments of
different classes, apart). Each object is a procedural drawing, variant drawn from 0..V-1 per
class (default 1,000,000) and named like the builder's, e.g. "cello:procedural-48213-textured",
so dsol.pretrain labels it; distractors go under the scene's "distractors", as the builder's.

There is no audio: every scene's "audio" is "" and build_params says "audio": false (the set is
for the vision warm start only, never for dsol.train's audio-visual stages). Scene i is a pure
function of (seed, i) and the options, so --workers does not change a byte.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .. import BUILDER_VERSION, CLASSES, IMAGE_SIZE
from .. import assets as A
from .. import procedural as P
from .. import scenes as SC
from .. import variety as V
from ..build import dump_json, scene_progress, write_png
from ..procedural.canvas import LOOKS
from . import backgrounds as B

PORTABLE_VERSION = "1.0.0"
STREAM = 0x504F5254  # "PORT": the second seed word of every scene's generator
S = IMAGE_SIZE
HALF = S // 2
KINDS = ("solo", "synthetic", "free")
DEFAULTS = {"styles": LOOKS, "rotation": 30.0, "aspect": 0.15, "occlusion": 0.2, "distractors": 0.8}
PHOTO_SHARE = 0.2  # chance that a background is a photo (when any is installed)


@dataclass(frozen=True)
class Options:
    variety: V.Variety
    solo_share: float = 1 / 3
    variants: int = 1_000_000
    image_format: str = "png"

    def __post_init__(self):
        if not 0.0 <= self.solo_share <= 1.0:
            raise ValueError("--solo-share must be within [0, 1]")
        if self.variants < 1:
            raise ValueError("--variants must be >= 1")
        if self.image_format not in ("png", "jpeg"):
            raise ValueError("--format must be png or jpeg")
        if self.variety.reverb:
            raise ValueError("a picture-only set has no audio to reverberate")

    def params(self) -> dict:
        v = self.variety
        return {"styles": list(v.styles), "rotation": v.rotation, "aspect": v.aspect, "occlusion": v.occlusion,
                "distractors": v.distractors, "solo_share": self.solo_share, "variants": self.variants,
                "image_format": self.image_format}


def scene_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, STREAM, index]))


def scene_kind(rng: np.random.Generator, solo_share: float) -> str:
    if rng.random() < solo_share:
        return "solo"
    return "synthetic" if rng.random() < 0.5 else "free"


# ---------------------------------------------------------------- pictures

def background(size: int, cat: SC.Catalogue, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """A size x size background: a crop of a training photo (PHOTO_SHARE) or a procedural one."""
    if cat.backgrounds and rng.random() < PHOTO_SHARE:
        im, bg_id = SC.background("train", cat, rng, photo_only=True)
        return (im if size == S else im.resize((size, size), Image.Resampling.LANCZOS)), bg_id
    return B.procedural(size, rng)


def instrument(cls: str, opts: Options, rng: np.random.Generator, side: float) -> tuple[str, Image.Image, dict]:
    """(drawing id, RGBA picture about `side` pixels long, augmentation) of a fresh procedural
    variant of `cls`, drawn at its final size and jittered like the builder's training objects."""
    var = opts.variety
    v = int(rng.integers(opts.variants))
    im = P.draw(cls, v, max(16, int(np.ceil(side))), var.styles)
    stretch = V.stretch_factor(var, rng) if var.aspect else 1.0
    im, aug = SC.augment(im, rng, side, var.rotation, stretch)
    return A.procedural_drawing_id(cls, v, P.look_of(cls, v, var.styles)), im, aug


def _entry(cls: str, box, drawing: str, aug: dict) -> dict:
    """An object's manifest entry; sounding is true for every object (there is no audio)."""
    return {"class": cls, "class_id": CLASSES.index(cls), "box": box, "sounding": True, "drawing": drawing,
            "augment": aug}


def frame(cls: str, size: int, opts: Options, cat: SC.Catalogue, rng: np.random.Generator):
    """One instrument on a size x size background, with distractors: (picture, entry or None when
    nothing of it stayed visible, background id, distractors)."""
    canvas, bg_id = background(size, cat, rng)
    drawing, obj, aug = instrument(cls, opts, rng, size * float(rng.uniform(0.45, 0.9)))
    x = int(rng.integers(0, size - obj.size[0] + 1))
    y = int(rng.integers(0, size - obj.size[1] + 1))
    things = SC._distractors(canvas, cat, rng, [(x, y, *obj.size)], (0.2, 0.45))
    box = SC._place(canvas, obj, x, y, aug, "train", cat, rng)
    return canvas, (_entry(cls, box, drawing, aug) if box else None), bg_id, things


def solo_scene(opts, cat, rng):
    canvas, entry, bg_id, things = frame(CLASSES[int(rng.integers(len(CLASSES)))], S, opts, cat, rng)
    return canvas, [entry] if entry else [], [bg_id], things


def synthetic_scene(opts, cat, rng):
    """Four frames of four different classes tiled 2x2, each drawn at its quadrant's size."""
    canvas = Image.new("RGB", (S, S))
    objects, bgs, things = [], [], []
    for q, k in enumerate(rng.permutation(len(CLASSES))[:4]):
        im, entry, bg_id, drawn = frame(CLASSES[int(k)], HALF, opts, cat, rng)
        qx, qy = q % 2, q // 2
        canvas.paste(im, (qx * HALF, qy * HALF))
        things += [{**t, "box": SC._to_quadrant(t["box"], qx, qy)} for t in drawn]
        if entry:
            objects.append({**entry, "box": SC._to_quadrant(entry["box"], qx, qy), "background": bg_id})
        bgs.append(bg_id)
    return canvas, objects, bgs, things


def free_scene(opts, cat, rng):
    """2-4 instruments of different classes apart on one background."""
    n = int(rng.choice([2, 3, 3, 4]))
    classes = [CLASSES[int(k)] for k in rng.permutation(len(CLASSES))[:n]]
    canvas, bg_id = background(S, cat, rng)
    top = {2: 0.55, 3: 0.47, 4: 0.42}[n]
    objs = [instrument(c, opts, rng, S * float(rng.uniform(0.26, top))) for c in classes]
    rects = SC.layout([im.size for _d, im, _aug in objs], rng)
    things = SC._distractors(canvas, cat, rng, rects, (0.15, 0.35))
    objects = []
    for q, ((drawing, im, aug), (x, y, w, h), cls) in enumerate(zip(objs, rects, classes)):
        if im.size != (w, h):
            im = im.resize((w, h), Image.Resampling.LANCZOS)
        box = SC._place(canvas, im, x, y, aug, "train", cat, rng, [r for k, r in enumerate(rects) if k != q])
        if box:
            objects.append(_entry(cls, box, drawing, aug))
    return canvas, objects, [bg_id], things


MAKERS = {"solo": solo_scene, "synthetic": synthetic_scene, "free": free_scene}


def make_scene(seed: int, index: int, opts: Options, cat: SC.Catalogue) -> tuple[Image.Image, dict]:
    """Scene `index`: its picture and manifest entry (image path relative to the output folder)."""
    rng = scene_rng(seed, index)
    kind = scene_kind(rng, opts.solo_share)
    canvas, objects, bgs, things = MAKERS[kind](opts, cat, rng)
    sid = f"train-{kind}-{index:06d}"
    ext = "png" if opts.image_format == "png" else "jpg"
    entry = {"id": sid, "split": "train", "kind": kind, "image": f"images/train/{kind}/{sid}.{ext}", "audio": "",
             "objects": objects, "sounding_classes": sorted({o["class"] for o in objects}, key=CLASSES.index),
             "backgrounds": bgs}
    if things:
        entry["distractors"] = things
    return canvas, entry


# ---------------------------------------------------------------- files and workers

def write_jpeg(path: str, image: Image.Image) -> None:
    tmp = path + ".tmp"
    image.save(tmp, format="JPEG", quality=95)
    os.replace(tmp, path)


_JOB: tuple | None = None  # (out, seed, opts, cat) of this process


def _init(job) -> None:
    global _JOB
    _JOB = job


def _make(index: int) -> tuple[int, dict]:
    out, seed, opts, cat = _JOB
    image, entry = make_scene(seed, index, opts, cat)
    (write_png if opts.image_format == "png" else write_jpeg)(os.path.join(out, entry["image"]), image)
    return index, entry


def catalogue(opts: Options, photos: list) -> SC.Catalogue:
    """The builder's catalogue as the shared scene helpers read it: the training photos (for
    backgrounds and occluders) and the variety options; no drawing, no sound."""
    return SC.Catalogue({c: [] for c in CLASSES}, photos, [], {}, 0.0, opts.variety)


def build(out: str, scenes: int, seed: int = 0, opts: Options | None = None, workers: int = 1,
          quiet: bool = False) -> dict:
    """Write `scenes` scenes and the manifest to `out`; returns a report with the rate."""
    t0 = time.time()
    opts = opts or Options(V.Variety(**DEFAULTS))
    if scenes < 1:
        raise ValueError("--scenes must be >= 1")
    if os.path.exists(os.path.join(out, "manifest.json")):
        raise SystemExit(f"{out} already holds a data set; use another --out")
    for kind in KINDS:
        os.makedirs(os.path.join(out, "images", "train", kind), exist_ok=True)
    photos = B.training_photos()
    cat = catalogue(opts, photos)
    job = (out, seed, opts, cat)
    _init(job)
    results: list[dict | None] = [None] * scenes
    pool = mp.get_context("fork").Pool(workers, _init, (job,)) if workers > 1 and scenes > 1 else None
    prog = scene_progress(scenes) if not quiet else None  # after the fork: tqdm starts a thread
    try:
        entries = pool.imap_unordered(_make, range(scenes), chunksize=8) if pool else map(_make, range(scenes))
        for i, entry in entries:
            results[i] = entry
            if prog:
                prog.update()
    finally:
        if pool:
            pool.terminate()
            pool.join()
        if prog:
            prog.close()
    made = time.time() - t0
    manifest = {
        "format": "soundloc-scenes",
        "builder_version": BUILDER_VERSION,
        "generator": {"module": "dataset.portable", "version": PORTABLE_VERSION},
        "seed": seed,
        "picture_only": True,
        "build_params": {"generator": "dataset.portable", "seed": seed, "scenes": scenes, "splits": ["train"],
                         "audio": False, "portable": opts.params()},
        "classes": CLASSES,
        "category_id_base": 0,
        "image_size": [S, S],
        "box_format": "normalised [x, y, w, h] of the 224x224 image, from the drawing's alpha",
        "counts": {"train": {k: sum(1 for s in results if s["kind"] == k) for k in KINDS}},
        "splits": {"train": {"backgrounds": [b["id"] for b in B.provenance(photos)],
                             "reserved_backgrounds_left_out": sorted(A.reserved_backgrounds())}},
        "assets": {
            "drawings": [{"id": "procedural", "classes": CLASSES, "variants_per_class": opts.variants,
                          "package": A.PROCEDURAL_PACKAGE, "version": BUILDER_VERSION,
                          "path": "Tools/dataset/procedural", "licence": A.PROCEDURAL_LICENCE[0],
                          "copyright": A.PROCEDURAL_LICENCE[1], "splits": ["train"]}],
            "backgrounds": B.provenance(photos),
        },
        "licence_note": "Picture-only set: the drawings and procedural backgrounds are the project's own; "
                        "the photos keep their own licence (see assets). No audio: every scene's audio is "
                        "\"\" and it is for the vision warm start (dsol.pretrain), never for dsol.train. "
                        "Do not commit generated data.",
        "scenes": results,
    }
    dump_json(os.path.join(out, "manifest.json"), manifest)
    rate = scenes / max(made, 1e-9)
    report = {"scenes": scenes, "seconds": round(time.time() - t0, 2), "scenes_per_s": round(rate, 1),
              "workers": workers}
    if not quiet:
        print(f"made {scenes} scenes in {made:.1f} s: {rate:.1f} scenes/s with {workers} worker(s); "
              f"manifest {os.path.join(out, 'manifest.json')}")
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dataset.portable", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (outside the repository, or under data/)")
    ap.add_argument("--scenes", type=int, required=True, help="number of training scenes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--styles", default="all", metavar="LOOKS",
                    help=f"looks of the drawings and things, comma-separated from {','.join(LOOKS)}, all "
                         "(default) or none (the classic mix)")
    ap.add_argument("--rotation", type=float, default=DEFAULTS["rotation"], metavar="DEG",
                    help=f"rotate objects by up to DEG degrees either way (default {DEFAULTS['rotation']:g})")
    ap.add_argument("--aspect", type=float, default=DEFAULTS["aspect"], metavar="A",
                    help=f"scale an object's width/height by exp(U(-A, A)) (default {DEFAULTS['aspect']:g})")
    ap.add_argument("--occlusion", type=float, default=DEFAULTS["occlusion"], metavar="P",
                    help="chance that an object is 10-35%% hidden behind a patch or a thing; its box is "
                         f"what stays visible (default {DEFAULTS['occlusion']:g})")
    ap.add_argument("--distractors", type=float, default=DEFAULTS["distractors"], metavar="N",
                    help=f"mean number of silent everyday things per frame (default {DEFAULTS['distractors']:g})")
    ap.add_argument("--solo-share", type=float, default=1 / 3, metavar="P",
                    help="share of solo scenes; the rest are half mosaics, half free scenes (default 1/3)")
    ap.add_argument("--variants", type=int, default=1_000_000, metavar="V",
                    help="procedural variants per class to draw from (default 1000000)")
    ap.add_argument("--format", choices=("png", "jpeg"), default="png",
                    help="picture files: png (default, lossless) or jpeg (quality 95, a fifth of the size)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    styles = LOOKS if args.styles == "all" else () if args.styles == "none" else \
        [k for k in args.styles.split(",") if k]
    try:
        opts = Options(V.Variety(styles=styles, rotation=args.rotation, aspect=args.aspect,
                                 occlusion=args.occlusion, distractors=args.distractors),
                       args.solo_share, args.variants, args.format)
        if args.scenes < 1:
            raise ValueError("--scenes must be >= 1")
    except ValueError as e:
        ap.error(str(e))
    build(args.out, args.scenes, args.seed, opts, max(1, args.workers), args.quiet)
    return 0
