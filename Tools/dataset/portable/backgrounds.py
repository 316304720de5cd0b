"""Backgrounds for dataset.portable that need no package: procedurally drawn ones (plain fills,
gradients, blurred colour fields, stripes and checks, simple rooms with a floor and a table,
photo-like textures, out-of-focus lights), and the scikit-image photos the builder's training
split uses (never the ones a full build keeps for validation or test, see assets.reserved_backgrounds).

Each drawer is a pure function of (size, generator) returning a size x size RGB picture; the
scene records the background's origin as "procedural/<kind>" or the photo's id.
"""
from __future__ import annotations

import colorsys
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .. import assets as A
from ..procedural.canvas import WOODS, Texture, _smooth_noise

# kind -> weight among the procedural backgrounds
WEIGHTS = {"plain": 0.5, "gradient": 1.0, "field": 1.2, "pattern": 1.0, "room": 1.3, "texture": 1.3, "bokeh": 0.7}
KINDS = tuple(WEIGHTS)


def colour(rng: np.random.Generator, sat=(0.0, 1.0), val=(0.1, 1.0), hue: float | None = None) -> np.ndarray:
    """An RGB colour (0..255 floats) from HSV ranges; hue (0..1) fixed when given."""
    h = float(rng.uniform(0, 1)) if hue is None else hue % 1.0
    return 255.0 * np.array(colorsys.hsv_to_rgb(h, float(rng.uniform(*sat)), float(rng.uniform(*val))))


def _palette(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """n colours around one hue (analogous), or around it and its complement."""
    h = float(rng.uniform(0, 1))
    spread = float(rng.uniform(0.03, 0.2))
    comp = rng.random() < 0.35
    sat, val = (0.05, 0.9), (0.15, 1.0)
    return [colour(rng, sat, val, h + (0.5 if comp and k % 2 else 0.0) + rng.uniform(-spread, spread))
            for k in range(n)]


def _fill(c) -> tuple[int, ...]:
    """An ImageDraw fill from an RGB colour of 0..255 floats."""
    return tuple(int(v) for v in c)


def _image(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "RGB")


def _grain(a: np.ndarray, rng: np.random.Generator, top: float = 5.0) -> np.ndarray:
    """Sensor-like noise of a random strength up to `top` grey levels."""
    sigma = float(rng.uniform(0, top))
    return a + sigma * rng.standard_normal(a.shape, dtype=np.float32) if sigma > 0.3 else a


def _fractal(rng: np.random.Generator, size: int, cell: float, octaves: int = 4) -> np.ndarray:
    """(size, size) value noise of several octaves, roughly in [-1, 1]."""
    out = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        out += amp * _smooth_noise(rng, size, size, cell)
        total += amp
        amp, cell = amp * 0.5, max(cell / 2, 1.0)
    return out / total * 1.6


def _mix(t: np.ndarray, colours: list[np.ndarray]) -> np.ndarray:
    """Colour ramp: t in [0, 1] (H, W) through the colours, evenly spaced."""
    t = np.clip(t, 0, 1) * (len(colours) - 1)
    k = np.minimum(t.astype(int), len(colours) - 2)
    f = (t - k)[..., None]
    c = np.stack(colours)
    return c[k] * (1 - f) + c[k + 1] * f


def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return x, y


def _light(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft light fall-off: a vignette or a light coming from one side."""
    size = a.shape[0]
    x, y = _coords(size)
    if rng.random() < 0.5:
        cx, cy = rng.uniform(0.2, 0.8, 2)
        f = 1.0 - float(rng.uniform(0.1, 0.5)) * np.clip(np.hypot(x - cx, y - cy) / 0.9, 0, 1) ** 2
    else:
        th = float(rng.uniform(0, 2 * np.pi))
        f = 1.0 + float(rng.uniform(0.05, 0.3)) * ((x - 0.5) * np.cos(th) + (y - 0.5) * np.sin(th))
    return a * f[..., None]


# ---------------------------------------------------------------- drawers

def plain(size: int, rng: np.random.Generator) -> Image.Image:
    return _image(_grain(np.broadcast_to(colour(rng), (size, size, 3)).astype(np.float32), rng))


def gradient(size: int, rng: np.random.Generator) -> Image.Image:
    """Linear (any angle) or radial ramp through 2-3 colours."""
    x, y = _coords(size)
    if rng.random() < 0.7:
        th = float(rng.uniform(0, 2 * np.pi))
        t = (x - 0.5) * np.cos(th) + (y - 0.5) * np.sin(th)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    else:
        cx, cy = rng.uniform(-0.2, 1.2, 2)
        t = np.hypot(x - cx, y - cy)
        t = t / max(float(t.max()), 1e-6)
    return _image(_grain(_mix(t, _palette(rng, int(rng.integers(2, 4)))), rng))


def field(size: int, rng: np.random.Generator) -> Image.Image:
    """Blurred colour fields: a coarse grid of colours smoothed up, or smooth noise through a
    colour ramp."""
    if rng.random() < 0.5:
        g = int(rng.integers(2, 7))
        cols = _palette(rng, int(rng.integers(2, 5)))
        grid = np.stack([cols[int(rng.integers(len(cols)))] for _ in range(g * g)]).reshape(g, g, 3)
        im = Image.fromarray(grid.astype(np.uint8), "RGB").resize((size, size), Image.Resampling.BICUBIC)
        im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, size / 12))))
        return _image(_grain(np.asarray(im, np.float32), rng))
    t = 0.5 + 0.5 * _fractal(rng, size, size * float(rng.uniform(0.15, 0.6)), int(rng.integers(1, 5)))
    return _image(_grain(_light(_mix(t, _palette(rng, int(rng.integers(2, 5)))), rng), rng))


def pattern(size: int, rng: np.random.Generator) -> Image.Image:
    """Stripes, checks, plaid or dots in 2-3 colours, softened a little."""
    x, y = _coords(size)
    kind = ["stripes", "checks", "plaid", "dots"][int(rng.integers(4))]
    period = float(rng.uniform(0.03, 0.2))
    th = float(rng.uniform(0, np.pi))
    u = (x * np.cos(th) + y * np.sin(th)) / period
    v = (-x * np.sin(th) + y * np.cos(th)) / (period * float(rng.uniform(0.7, 1.4)))
    cols = _palette(rng, 3)
    if kind == "stripes":
        duty = float(rng.uniform(0.2, 0.8))
        a = _mix(((u % 1.0) < duty).astype(np.float32), cols[:2])
    elif kind == "checks":
        a = _mix(((np.floor(u) + np.floor(v)) % 2).astype(np.float32), cols[:2])
    elif kind == "plaid":
        t = 0.5 * (0.5 + 0.5 * np.sin(2 * np.pi * u)) + 0.5 * (0.5 + 0.5 * np.sin(2 * np.pi * v))
        a = _mix(t, cols)
    else:
        r = float(rng.uniform(0.15, 0.4))
        a = _mix((np.hypot(u % 1.0 - 0.5, v % 1.0 - 0.5) < r).astype(np.float32), cols[:2])
    im = _image(_light(a, rng))
    blur = float(rng.uniform(0, 1.5))
    if blur > 0.3:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    return _image(_grain(np.asarray(im, np.float32), rng))


def room(size: int, rng: np.random.Generator) -> Image.Image:
    """A wall (maybe with a window or a frame on it) over a floor of boards, tiles or carpet,
    sometimes a table top across the front."""
    x, y = _coords(size)
    wall = colour(rng, (0.0, 0.5), (0.45, 1.0))
    a = np.broadcast_to(wall, (size, size, 3)) * (1.0 - 0.15 * y[..., None] * float(rng.uniform(-1, 1)))
    if rng.random() < 0.3:  # wallpaper stripes
        p = float(rng.uniform(0.03, 0.12))
        a = a * (1.0 - float(rng.uniform(0.04, 0.12)) * ((x / p) % 1.0 < 0.5))[..., None]
    horizon = float(rng.uniform(0.45, 0.85))
    floor_kind = ["boards", "tiles", "carpet"][int(rng.integers(3))]
    fy = np.clip((y - horizon) / max(1 - horizon, 1e-3), 0, 1)  # 0 at the wall, 1 at the front
    depth = 1.0 / (0.25 + fy)          # distance into the room
    fx = (x - float(rng.uniform(0.3, 0.7))) * depth  # across, in floor units
    if floor_kind == "boards":
        base = colour(rng, (0.3, 0.7), (0.3, 0.8), float(rng.uniform(0.04, 0.1)))
        width = float(rng.uniform(0.08, 0.2))
        shade = 1.0 + 0.12 * np.sin(np.floor(fx / width) * 12.9898 + 3.0) - 0.35 * ((fx / width) % 1.0 < 0.04)
    elif floor_kind == "tiles":
        base = colour(rng, (0.0, 0.4), (0.4, 0.95))
        s = float(rng.uniform(0.1, 0.3))
        shade = 1.0 - 0.3 * (((fx / s) % 1.0 < 0.05) | ((depth / (3 * s)) % 1.0 < 0.05))
        if rng.random() < 0.5:
            shade = shade * (1.0 - 0.25 * ((np.floor(fx / s) + np.floor(depth / (3 * s))) % 2))
    else:
        base = colour(rng, (0.2, 0.8), (0.2, 0.7))
        shade = 1.0 + 0.1 * _fractal(rng, size, size / 40, 2)
    floor = base * shade[..., None] * (0.75 + 0.3 * fy[..., None])
    a = np.where((y >= horizon)[..., None], floor, a)
    im = _image(a)
    d = ImageDraw.Draw(im)
    h_px = int(horizon * size)
    d.rectangle((0, h_px - max(2, size // 60), size, h_px), fill=_fill(colour(rng, (0, 0.3), (0.2, 0.9))))
    if rng.random() < 0.5:  # a window, or a picture on the wall
        w, h = (rng.uniform(0.15, 0.4, 2) * size).astype(int)
        h = min(h, max(8, h_px - 8))
        x0 = int(rng.integers(0, max(1, size - w)))
        y0 = int(rng.integers(0, max(1, h_px - h - 4)))
        frame = _fill(colour(rng, (0, 0.3), (0.2, 1.0)))
        inner = _fill(colour(rng, (0.1, 0.5), (0.6, 1.0), float(rng.uniform(0.5, 0.65))))
        d.rectangle((x0, y0, x0 + w, y0 + h), fill=inner, outline=frame, width=max(2, size // 70))
        if rng.random() < 0.6:
            d.line((x0 + w // 2, y0, x0 + w // 2, y0 + h), fill=frame, width=max(1, size // 110))
            d.line((x0, y0 + h // 2, x0 + w, y0 + h // 2), fill=frame, width=max(1, size // 110))
    if rng.random() < 0.4:  # a table top across the front, with a darker edge
        top = int(size * rng.uniform(max(horizon, 0.55), 0.95))
        wood = tuple(int(255 * v) for v in WOODS[int(rng.integers(len(WOODS)))])
        edge = tuple(int(v * 0.7) for v in wood)
        d.rectangle((0, top, size, size), fill=wood)
        d.rectangle((0, top, size, top + max(3, size // 40)), fill=edge)
    a = _light(np.asarray(im, np.float32), rng)
    return _image(_grain(a, rng, 4.0))


def texture(size: int, rng: np.random.Generator) -> Image.Image:
    """Photo-like surfaces: marble, wood, fabric, stone, foliage, a cloudy sky, or a drawing
    texture (stripes, noise, wood grain) over a colour."""
    kind = ["marble", "wood", "fabric", "stone", "foliage", "sky", "canvas"][int(rng.integers(7))]
    x, y = _coords(size)
    if kind == "marble":
        turb = _fractal(rng, size, size / 3, 4)
        f = float(rng.uniform(3, 10))
        t = 0.5 + 0.5 * np.sin(2 * np.pi * f * (x + float(rng.uniform(0.3, 1.0)) * y) + 4.0 * turb)
        veins, stone = colour(rng, (0, 0.25), (0.2, 0.6)), colour(rng, (0, 0.15), (0.8, 1.0))
        a = _mix(t ** float(rng.uniform(0.3, 3)), [veins, stone])
    elif kind == "wood":
        cx, cy = float(rng.uniform(-2, 3)), float(rng.uniform(-2, -0.5))
        r = np.hypot((x - cx) * float(rng.uniform(0.1, 0.4)), y - cy) * float(rng.uniform(15, 40))
        t = 0.5 + 0.5 * np.sin(r + 3.0 * _fractal(rng, size, size / 4, 3))
        wood = 255.0 * np.array(WOODS[int(rng.integers(len(WOODS)))])
        a = _mix(t, [wood * 0.6, wood * 1.05])
    elif kind == "fabric":
        p = float(rng.uniform(0.008, 0.03))
        t = 0.5 + 0.25 * np.sin(2 * np.pi * x / p) * np.sin(2 * np.pi * y / p) + 0.2 * _fractal(rng, size, size / 8, 2)
        c = colour(rng, (0.2, 0.9), (0.25, 0.9))
        a = _mix(t, [c * 0.7, c * 1.1])
    elif kind == "stone":
        t = 0.5 + 0.5 * _fractal(rng, size, size / float(rng.uniform(8, 30)), 4)
        a = _mix(t, [colour(rng, (0, 0.25), (0.15, 0.45)), colour(rng, (0, 0.25), (0.5, 0.9))])
    elif kind == "foliage":
        shadow = colour(rng, (0.5, 0.9), (0.1, 0.35), float(rng.uniform(0.22, 0.36)))
        im = _image(np.broadcast_to(shadow, (size, size, 3)))
        d = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(60, 160))):
            cx, cy = rng.uniform(-0.05, 1.05, 2) * size
            rx, ry = rng.uniform(0.02, 0.08, 2) * size
            c = colour(rng, (0.4, 0.9), (0.2, 0.85), float(rng.uniform(0.18, 0.4)))
            d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=_fill(c))
        a = np.asarray(im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 2.5)))), np.float32)
    elif kind == "sky":
        top, bottom = colour(rng, (0.4, 0.8), (0.5, 0.9), 0.58), colour(rng, (0.05, 0.4), (0.8, 1.0), 0.56)
        sky = _mix(y, [top, bottom])
        cloud = np.clip(_fractal(rng, size, size / 2.5, 5) * 1.3 + float(rng.uniform(-0.6, 0.2)), 0, 1)[..., None]
        a = sky * (1 - cloud) + 250.0 * cloud
    else:
        tex = Texture.random(rng)
        c = colour(rng, (0.1, 0.9), (0.3, 1.0))
        a = c * tex.field(size, size, size * float(rng.uniform(0.5, 2.0)))[..., None]
    return _image(_grain(_light(a, rng), rng, 4.0))


def bokeh(size: int, rng: np.random.Generator) -> Image.Image:
    """Out-of-focus lights: soft discs of light colours over a darker ramp."""
    base = gradient(size, rng)
    base = _image(np.asarray(base, np.float32) * float(rng.uniform(0.3, 0.8)))
    layer = Image.new("RGB", (size, size), (0, 0, 0))
    d = ImageDraw.Draw(layer)
    hue = float(rng.uniform(0, 1))
    for _ in range(int(rng.integers(8, 40))):
        cx, cy = rng.uniform(0, 1, 2) * size
        r = float(rng.uniform(0.02, 0.12)) * size
        c = colour(rng, (0.2, 0.8), (0.4, 1.0), hue + float(rng.uniform(-0.15, 0.15)))
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_fill(c * rng.uniform(0.3, 0.8)))
    layer = layer.filter(ImageFilter.GaussianBlur(float(rng.uniform(1, size / 40))))
    return _image(_grain(np.asarray(base, np.float32) + np.asarray(layer, np.float32), rng))


DRAWERS = {"plain": plain, "gradient": gradient, "field": field, "pattern": pattern, "room": room,
           "texture": texture, "bokeh": bokeh}


def procedural(size: int, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """A procedural background of a random kind, and its origin id."""
    w = np.array([WEIGHTS[k] for k in KINDS])
    kind = KINDS[int(rng.choice(len(KINDS), p=w / w.sum()))]
    return DRAWERS[kind](size, rng), f"procedural/{kind}"


# ---------------------------------------------------------------- photos

def training_photos() -> list[A.Background]:
    """The scikit-image photos a full build may use for training (those installed), each with its
    image loaded like the builder's and its split set to train; the photos assets.reserved_backgrounds
    names (validation and test) are never among them."""
    reserved = A.reserved_backgrounds()
    out = []
    for b in A.skimage_backgrounds():
        if b.id in reserved or not (b.path and os.path.exists(b.path)):
            continue
        b.image, b.splits = A.background_image(b.path), ["train"]
        out.append(b)
    return out


def provenance(photos: list[A.Background]) -> list[dict]:
    """The manifest's background assets: each procedural kind and each photo, with licence."""
    here = "Tools/dataset/portable/backgrounds.py"
    out = [{"id": f"procedural/{k}", "package": A.PROCEDURAL_PACKAGE, "path": here, "licence": A.PROCEDURAL_LICENCE[0],
            "copyright": f"soundloc authors (drawn by {here})", "splits": ["train"]} for k in KINDS]
    return out + [b.provenance() for b in photos]
