"""Extra variety for the training split only (dataset.build --styles, --rotation, --aspect,
--occlusion, --distractors, --reverb): looks of the procedural drawings, wider rotation, aspect
jitter, partial occlusion, silent everyday things beside the instruments, and room reverb.

Every draw these make comes from a generator of its own per training scene (variety_rng), not
from the scene's generator, so a training scene keeps its instruments, places and sounds and only
gains the extras; validation and test scenes never see any of it and stay byte-identical to a
build without these options.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from . import CLIP_SAMPLES, SAMPLE_RATE, SPLITS
from .procedural import THINGS, check_looks, draw_thing, look_of
from .procedural.canvas import Texture

ROTATION = 20.0       # degrees either way: what every split gets without --rotation
OCCLUSION = (0.1, 0.35)  # share of an occluded instrument's pixels that end up hidden
MAX_DISTRACTORS = 4.0
VARIETY_STREAM = 7    # last seed word of variety_rng


@dataclass(frozen=True)
class Variety:
    """The training split's extra variety; the defaults add nothing."""
    styles: tuple = ()          # looks of the procedural drawings (procedural.canvas.LOOKS)
    rotation: float = ROTATION  # training objects are rotated by up to this many degrees either way
    aspect: float = 0.0         # width/height of a training object scaled by exp(±aspect)
    occlusion: float = 0.0      # chance that a training object is partly hidden
    distractors: float = 0.0    # mean number of silent everyday things per training frame
    reverb: float = 0.0         # chance that a training scene's audio gets a room's reverb

    def __post_init__(self):
        object.__setattr__(self, "styles", check_looks(self.styles))
        if not 0.0 <= self.rotation <= 90.0:
            raise ValueError("--rotation must be within [0, 90] degrees")
        if not 0.0 <= self.aspect <= 0.7:
            raise ValueError("--aspect must be within [0, 0.7]")
        for name in ("occlusion", "reverb"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"--{name} must be within [0, 1]")
        if not 0.0 <= self.distractors <= MAX_DISTRACTORS:
            raise ValueError(f"--distractors must be within [0, {MAX_DISTRACTORS:g}]")

    def params(self) -> dict:
        """The options that differ from the defaults (recorded in the manifest's build_params)."""
        base = asdict(Variety())
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if v != base[k]}

    def scene_extras(self) -> bool:
        """Whether training scenes need a variety generator (styles act on the drawings only)."""
        return bool(self.rotation != ROTATION or self.aspect or self.occlusion or self.distractors
                    or self.reverb)


def variety_rng(seed: int, kind_code: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(
        [seed, kind_code, SPLITS.index(split), index, VARIETY_STREAM]))


def stretch_factor(var: Variety, vrng: np.random.Generator) -> float:
    """Width/height scale factor of one object: exp(U(-aspect, aspect))."""
    return float(np.exp(vrng.uniform(-var.aspect, var.aspect)))


# ---------------------------------------------------------------- pictures

def composite(canvas: Image.Image, layer: Image.Image, x: int, y: int) -> np.ndarray:
    """Alpha-composite the RGBA `layer` onto the RGB canvas at (x, y); returns the layer's alpha
    as placed on the canvas (H, W uint8)."""
    full = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    full.paste(layer, (x, y))
    base = canvas.convert("RGBA")
    base.alpha_composite(full)
    canvas.paste(base.convert("RGB"))
    return np.asarray(full.getchannel("A"))


def alpha_box(a: np.ndarray) -> list[float] | None:
    """Normalised [x, y, w, h] of the pixels of the (H, W) alpha `a` above 32; None if none."""
    ys, xs = np.nonzero(a > 32)
    if len(xs) == 0:
        return None
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    H, W = a.shape
    return [round(x0 / W, 6), round(y0 / H, 6), round((x1 - x0) / W, 6), round((y1 - y0) / H, 6)]


def count(mean: float, vrng: np.random.Generator) -> int:
    """floor(mean), plus one with probability frac(mean)."""
    n = int(np.floor(mean))
    return n + int(vrng.random() < mean - n)


def _overlap_share(a, b) -> float:
    """Share of rectangle a (x, y, w, h) inside rectangle b."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0) / max(a[2] * a[3], 1)


def distractors(canvas: Image.Image, var: Variety, vrng: np.random.Generator, avoid: list,
                size: tuple[float, float], augment) -> list[dict]:
    """Paste about var.distractors silent everyday things onto canvas, before the instruments
    go on top (so no instrument's box changes); each is placed mostly clear of the `avoid`
    rectangles (x, y, w, h) where it can be. augment(im, rng, side) is the scenes' own jitter.
    Returns manifest entries {"thing", "drawing", "box"} (box as pasted; no class, no sound)."""
    names = sorted(THINGS)
    out = []
    W, H = canvas.size
    for _ in range(count(var.distractors, vrng)):
        name = names[int(vrng.integers(len(names)))]
        variant = int(vrng.integers(1 << 20))
        side = float(vrng.uniform(*size)) * W
        im, _aug = augment(draw_thing(name, variant, side=max(8, int(round(side))), looks=var.styles),
                           vrng, side)
        w, h = im.size
        for _try in range(20):
            x, y = int(vrng.integers(0, W - w + 1)), int(vrng.integers(0, H - h + 1))
            if all(_overlap_share((x, y, w, h), r) < 0.25 for r in avoid):
                break
        box = alpha_box(composite(canvas, im, x, y))
        if box is None:
            continue
        entry = {"thing": name, "drawing": f"{name}:procedural-{variant:07d}", "box": box}
        look = look_of(name, variant, var.styles)
        if look:
            entry["look"] = look
        out.append(entry)
        avoid = avoid + [(x, y, w, h)]
    return out


def _shape_mask(kind: str, w: int, h: int, vrng: np.random.Generator) -> Image.Image:
    """An antialiased L mask of an ellipse, a rounded rectangle or a smooth blob filling w x h."""
    ss = 2
    m = Image.new("L", (w * ss, h * ss), 0)
    d = ImageDraw.Draw(m)
    if kind == "ellipse":
        d.ellipse((0, 0, w * ss - 1, h * ss - 1), fill=255)
    elif kind == "rect":
        d.rounded_rectangle((0, 0, w * ss - 1, h * ss - 1), radius=int(min(w, h) * ss * vrng.uniform(0, 0.3)),
                            fill=255)
    else:
        t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        r = 1.0 + sum(vrng.uniform(-0.12, 0.12) * np.cos(k * t + vrng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
        r /= r.max()
        d.polygon(list(zip((0.5 + 0.5 * r * np.cos(t)) * (w * ss - 1), (0.5 + 0.5 * r * np.sin(t)) * (h * ss - 1))),
                  fill=255)
    return m.resize((w, h), Image.Resampling.LANCZOS)


def occluder(var: Variety, vrng: np.random.Generator, side: float, photos: list) -> tuple[Image.Image, str]:
    """Something to put in front of an instrument, about `side` pixels across: a plain or
    textured patch, a patch of photo, or an everyday thing. Returns (RGBA, what)."""
    what = ["patch", "texture", "photo", "thing"][int(vrng.integers(4))]
    if what == "photo" and not photos:
        what = "patch"
    if what == "thing":
        names = sorted(THINGS)
        name = names[int(vrng.integers(len(names)))]
        return draw_thing(name, int(vrng.integers(1 << 20)), side=max(8, int(round(side))), looks=var.styles), name
    w = max(6, int(round(side * vrng.uniform(0.5, 1.0))))
    h = max(6, int(round(side * vrng.uniform(0.5, 1.0))))
    mask = _shape_mask(["ellipse", "rect", "blob"][int(vrng.integers(3))], w, h, vrng)
    colour = vrng.uniform(0.1, 0.95, 3)
    if what == "photo":
        bg = photos[int(vrng.integers(len(photos)))].image
        s = int(min(bg.size) * vrng.uniform(0.1, 0.4))
        x0, y0 = int(vrng.integers(0, bg.size[0] - s + 1)), int(vrng.integers(0, bg.size[1] - s + 1))
        rgb = bg.crop((x0, y0, x0 + s, y0 + s)).convert("RGB").resize((w, h), Image.Resampling.BICUBIC)
    else:
        rgb = np.broadcast_to(colour, (h, w, 3))
        if what == "texture":
            rgb = rgb * Texture.random(vrng).field(w, h, float(max(w, h)))[..., None]
        rgb = Image.fromarray(np.clip(np.round(255 * rgb), 0, 255).astype(np.uint8), "RGB")
    im = rgb.convert("RGBA")
    im.putalpha(mask.filter(ImageFilter.GaussianBlur(0.6)))
    return im, what


def occlude(obj: Image.Image, var: Variety, vrng: np.random.Generator, photos: list):
    """Hide OCCLUSION[0]..[1] of obj's visible pixels behind an occluder coming in from a random
    side. Returns (obj with those pixels cut out of its alpha, occluder RGBA, (dx, dy) of the
    occluder relative to obj's top-left, info) or None when the occluder would barely touch it."""
    a = np.asarray(obj.getchannel("A")).astype(np.float32) / 255.0
    vis = a > 32 / 255
    area = int(vis.sum())
    if area == 0:
        return None
    w, h = obj.size
    target = float(vrng.uniform(*OCCLUSION))
    occ, what = occluder(var, vrng, max(w, h) * float(vrng.uniform(0.35, 0.7)), photos)
    oa = np.asarray(occ.getchannel("A")).astype(np.float32) / 255.0
    ow, oh = occ.size
    theta = float(vrng.uniform(0, 2 * np.pi))
    reach = 0.5 * np.hypot(w, h) + 0.5 * np.hypot(ow, oh)  # t = 1: the two cannot touch

    def place(t: float):
        dx = int(round(w / 2 + t * reach * np.cos(theta) - ow / 2))
        dy = int(round(h / 2 + t * reach * np.sin(theta) - oh / 2))
        cover = np.zeros((h, w), np.float32)
        x0, y0, x1, y1 = max(dx, 0), max(dy, 0), min(dx + ow, w), min(dy + oh, h)
        if x1 > x0 and y1 > y0:
            cover[y0:y1, x0:x1] = oa[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
        hidden = float((vis & (a * (1 - cover) <= 32 / 255)).sum()) / area
        return hidden, (dx, dy), cover

    lo, hi = 0.0, 1.0  # hidden(lo) > target >= hidden(hi), unless even the centre is below it
    if place(lo)[0] <= target:
        hi = lo
    else:
        for _ in range(12):
            mid = (lo + hi) / 2
            if place(mid)[0] > target:
                lo = mid
            else:
                hi = mid
    hidden, (dx, dy), cover = place(hi)
    if hidden < 0.03:
        return None
    cut = obj.copy()
    cut.putalpha(Image.fromarray(np.round(255 * a * (1 - cover)).astype(np.uint8), "L"))
    return cut, occ, (dx, dy), {"occluder": what, "hidden": round(hidden, 3)}


def paste_occluder(canvas: Image.Image, occ: Image.Image, x: int, y: int, forbid: list) -> None:
    """Composite the occluder at (x, y) except inside the `forbid` rectangles (other objects'
    places: their boxes must stay theirs)."""
    if forbid:
        a = np.asarray(occ.getchannel("A")).copy()
        for rx, ry, rw, rh in forbid:
            x0, y0 = max(rx - x, 0), max(ry - y, 0)
            x1, y1 = min(rx + rw - x, occ.size[0]), min(ry + rh - y, occ.size[1])
            if x1 > x0 and y1 > y0:
                a[y0:y1, x0:x1] = 0
        occ = occ.copy()
        occ.putalpha(Image.fromarray(a, "L"))
    composite(canvas, occ, x, y)


# ---------------------------------------------------------------- audio

def room(vrng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A synthetic room impulse response: the direct sound, a few early reflections and an
    exponentially decaying noise tail (RT60 0.2-1.2 s), darkened by a one-pole low-pass for air
    and wall absorption, at a direct-to-reverberant ratio of -6..+10 dB."""
    from scipy.signal import lfilter
    rt60 = float(vrng.uniform(0.2, 1.2))
    drr_db = float(vrng.uniform(-6.0, 10.0))
    n = int(min(1.0, 1.1 * rt60 + 0.05) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = vrng.standard_normal(n) * np.exp(-6.91 * t / rt60)
    damp = float(vrng.uniform(0.0, 0.85))
    tail = lfilter([1 - damp], [1, -damp], tail)
    tail[:int(vrng.uniform(0.004, 0.02) * SAMPLE_RATE)] = 0.0  # the tail starts after the pre-delay
    for _ in range(int(vrng.integers(3, 9))):  # early reflections
        k = int(vrng.uniform(0.003, 0.04) * SAMPLE_RATE)
        tail[k] += vrng.uniform(0.3, 1.0) * (1 if vrng.random() < 0.5 else -1) * np.abs(tail).max()
    tail *= 10 ** (-drr_db / 20) / np.sqrt(np.sum(tail ** 2))
    ir = tail
    ir[0] += 1.0  # the direct sound
    return ir, {"rt60": round(rt60, 3), "drr_db": round(drr_db, 2)}


def reverberate(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """x convolved with ir, cut to the clip, at x's RMS level."""
    from scipy.signal import fftconvolve
    y = fftconvolve(x, ir)[:CLIP_SAMPLES]
    rx, ry = np.sqrt(np.mean(x ** 2)), np.sqrt(np.mean(y ** 2))
    return y * (rx / ry) if ry > 0 else y
