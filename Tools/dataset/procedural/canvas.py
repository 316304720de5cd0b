"""Drawing surface and style for the procedural instrument drawings.

Instruments are drawn in a unit frame (x right, y down, the instrument's long
axis roughly along y in [0, 1]) on a supersampled RGBA canvas, then reduced
and cropped to their alpha, so they come out like the clip-art the builder
reads from packages: an opaque object on a transparent background.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw

SUPERSAMPLE = 3
# the looks a drawing can be given on request (dataset.build --styles); without one a drawing
# takes the classic mix of Style.random: outlined or not, flat or shaded, 15 % line art
LOOKS = ("outline", "flat", "shaded", "greyscale", "textured")
TEXTURES = ("stripes", "noise", "wood")
TEXTURE_MIN_AREA = 0.004  # unit-frame area below which a shape keeps a plain fill (keys, frets)

# base colours (RGB 0..1) the styles jitter around
WOODS = [(0.55, 0.30, 0.12), (0.70, 0.42, 0.18), (0.45, 0.22, 0.10), (0.80, 0.55, 0.28),
         (0.35, 0.18, 0.08), (0.62, 0.25, 0.10)]
BRASS = [(0.85, 0.68, 0.22), (0.92, 0.78, 0.35), (0.75, 0.58, 0.18), (0.95, 0.82, 0.45)]
SILVER = [(0.78, 0.80, 0.83), (0.66, 0.68, 0.72), (0.88, 0.88, 0.90)]
DARK = [(0.10, 0.10, 0.12), (0.18, 0.15, 0.14), (0.22, 0.22, 0.26)]
BRIGHT = [(0.80, 0.15, 0.15), (0.15, 0.35, 0.75), (0.15, 0.55, 0.25), (0.55, 0.15, 0.55),
          (0.10, 0.10, 0.10), (0.85, 0.55, 0.10)]


@dataclass
class Texture:
    """A fill pattern laid over a drawing's larger shapes: a field of brightness factors."""
    kind: str          # stripes | noise | wood
    period: float      # stripe, blob or grain spacing in units of the drawing's long side
    angle: float       # radians; stripes across, wood grain along this direction's normal
    strength: float    # how far the factors go below (and above) 1
    seed: int

    @classmethod
    def random(cls, rng: np.random.Generator, kind: str | None = None) -> "Texture":
        kind = kind or TEXTURES[int(rng.integers(len(TEXTURES)))]
        period = {"stripes": (0.03, 0.09), "noise": (0.015, 0.06), "wood": (0.012, 0.035)}[kind]
        angle = rng.uniform(-0.3, 0.3) if kind == "wood" else rng.uniform(0, np.pi)
        return cls(kind, float(rng.uniform(*period)), float(angle), float(rng.uniform(0.18, 0.38)),
                   int(rng.integers(1 << 30)))

    def field(self, width: int, height: int, scale: float) -> np.ndarray:
        """(height, width) float32 factors for a canvas of scale pixels per unit; computed on a
        grid SUPERSAMPLE times coarser and resized (the canvas is reduced by as much anyway)."""
        w, h = max(2, -(-width // SUPERSAMPLE)), max(2, -(-height // SUPERSAMPLE))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) * (SUPERSAMPLE / scale)
        rng = np.random.default_rng(self.seed)
        along = xx * np.cos(self.angle) + yy * np.sin(self.angle)
        if self.kind == "stripes":
            f = 1.0 - self.strength * (0.5 + 0.5 * np.tanh(4.0 * np.sin(2 * np.pi * along / self.period)))
        elif self.kind == "noise":
            f = 1.0 + self.strength * (_smooth_noise(rng, w, h, self.period * scale / SUPERSAMPLE)
                                       + 0.35 * rng.uniform(-1, 1, (h, w)))
        else:  # wood: thin dark grain lines, wavy, along the normal of `angle`
            warp = _smooth_noise(rng, w, h, 6 * self.period * scale / SUPERSAMPLE)
            u = along / self.period + 2.5 * warp
            f = 1.0 - self.strength * (0.5 + 0.5 * np.cos(2 * np.pi * u)) ** 4 \
                + 0.3 * self.strength * _smooth_noise(rng, w, h, 3 * self.period * scale / SUPERSAMPLE)
        im = Image.fromarray(f.astype(np.float32), "F").resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.float32)


def _smooth_noise(rng: np.random.Generator, w: int, h: int, cell: float) -> np.ndarray:
    """(h, w) value noise in about [-1, 1] with features `cell` pixels across."""
    cell = max(cell, 1.0)
    gw, gh = max(2, int(np.ceil(w / cell)) + 1), max(2, int(np.ceil(h / cell)) + 1)
    grid = rng.uniform(-1.0, 1.0, (gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)


@dataclass
class Style:
    """How one drawing is rendered: outline, shading, colour jitter, and (only when a look is
    asked for, see with_look) greyscale or a textured fill."""
    outline: tuple | None      # RGBA outline colour, or None for no outline
    line: float                # outline width in units of the drawing's long side
    shade: float               # 0 = flat fills, >0 = highlight strength on filled shapes
    line_art: bool             # white fills, black outlines (colouring-book style)
    hue_jitter: float
    rng: np.random.Generator
    grey: float = 0.0          # > 0: the finished drawing turned grey, with this gamma
    texture: Texture | None = None  # pattern over the larger filled shapes

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Style":
        line_art = bool(rng.random() < 0.15)
        has_outline = line_art or bool(rng.random() < 0.7)
        grey = float(rng.uniform(0.0, 0.25))
        return cls(outline=(grey, grey, grey) if has_outline else None,
                   line=float(rng.uniform(0.004, 0.012)) * (1.6 if line_art else 1.0),
                   shade=0.0 if line_art or rng.random() < 0.4 else float(rng.uniform(0.15, 0.4)),
                   line_art=line_art, hue_jitter=float(rng.uniform(0.0, 0.04)), rng=rng)

    def with_look(self, look: str, rng: np.random.Generator) -> "Style":
        """Force one of LOOKS, drawing its details from rng (not from the drawing's own generator,
        so a variant keeps its colours and, except for line art, its shape)."""
        if look not in LOOKS:
            raise ValueError(f"unknown look {look!r} (have: {', '.join(LOOKS)})")
        dark = float(rng.uniform(0.0, 0.2))
        self.line_art = look == "outline"
        if look == "outline":
            self.outline, self.shade = (dark, dark, dark), 0.0
            self.line = float(rng.uniform(0.007, 0.018))
        elif look == "flat":
            self.shade = 0.0
            self.outline = None if rng.random() < 0.5 else (dark, dark, dark)
        elif look == "shaded":
            self.shade = float(rng.uniform(0.2, 0.45))
        elif look == "greyscale":
            self.grey = float(rng.uniform(0.8, 1.25))
            self.shade = 0.0 if rng.random() < 0.4 else float(rng.uniform(0.15, 0.4))
        else:  # textured
            self.texture = Texture.random(rng)
            self.shade = 0.0 if rng.random() < 0.6 else float(rng.uniform(0.1, 0.3))
        return self

    def colour(self, palette: list[tuple] | tuple) -> tuple:
        """A jittered colour from a palette (a list of RGB tuples, or one tuple)."""
        if self.line_art:
            return (1.0, 1.0, 1.0)
        base = palette[int(self.rng.integers(len(palette)))] if isinstance(palette, list) else palette
        h, l, s = colorsys.rgb_to_hls(*base)
        h = (h + self.rng.uniform(-self.hue_jitter, self.hue_jitter)) % 1.0
        l = float(np.clip(l * self.rng.uniform(0.85, 1.15), 0.0, 1.0))
        s = float(np.clip(s * self.rng.uniform(0.8, 1.15), 0.0, 1.0))
        return colorsys.hls_to_rgb(h, l, s)


def _rgba(c, alpha: float = 1.0) -> tuple:
    return tuple(int(round(255 * float(np.clip(v, 0, 1)))) for v in c[:3]) + (int(round(255 * alpha)),)


class Canvas:
    """Supersampled RGBA surface addressed in the unit frame; whatever is drawn inside
    [-0.6, 0.6] x [-0.1, 1.1] is kept."""

    X0, X1, Y0, Y1 = -0.6, 0.6, -0.1, 1.1

    def __init__(self, style: Style, side: int):
        self.style = style
        self.scale = side * SUPERSAMPLE / (self.Y1 - self.Y0)
        w = int(round((self.X1 - self.X0) * self.scale))
        h = int(round((self.Y1 - self.Y0) * self.scale))
        self.image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        self.draw = ImageDraw.Draw(self.image)
        self.side = side
        self._texture: np.ndarray | None = None  # style.texture's factors, made when first needed

    def px(self, x: float, y: float) -> tuple[float, float]:
        return ((x - self.X0) * self.scale, (y - self.Y0) * self.scale)

    def _width(self, w: float | None) -> int:
        w = self.style.line if w is None else w
        return max(1, int(round(w * self.scale)))

    def _outline(self, outline) -> tuple | None:
        if outline is False:
            return None
        c = self.style.outline if outline is None else outline
        return None if c is None else _rgba(c)

    def polygon(self, pts, fill, outline=None, width: float | None = None, highlight: bool = True) -> None:
        """Filled polygon; outline None = the style's outline, False = none; highlight False
        leaves out the shaded styles' automatic highlight (misplaced on bent or diagonal shapes)."""
        p = [self.px(x, y) for x, y in pts]
        self.draw.polygon(p, fill=_rgba(fill), outline=None)
        if self.style.texture is not None and not self.style.line_art and _area(pts) >= TEXTURE_MIN_AREA:
            self._textured(p, fill)
        if highlight and self.style.shade > 0 and not self.style.line_art:
            self._highlight(pts, fill)
        o = self._outline(outline)
        if o is not None:
            self.draw.line(p + [p[0]], fill=o, width=self._width(width), joint="curve")

    def _highlight(self, pts, fill) -> None:
        # a lighter copy of the shape shrunk toward its upper-left, kept inside the shape and
        # blended by hand (ImageDraw replaces RGBA pixels, which would leave see-through holes)
        a = np.asarray(pts, float)
        c = a.mean(axis=0)
        span = np.ptp(a, axis=0)
        shrunk = c + (a - c) * 0.55 - np.array([0.18 * span[0], 0.12 * span[1]])
        p = np.asarray([self.px(x, y) for x, y in pts])
        x0, y0, x1, y1 = self._pixel_box(p)
        if x1 <= x0 or y1 <= y0:
            return
        size, off = (int(x1 - x0), int(y1 - y0)), np.array([x0, y0])
        shape, mask = Image.new("L", size, 0), Image.new("L", size, 0)
        ImageDraw.Draw(shape).polygon([tuple(v) for v in p - off], fill=255)
        ImageDraw.Draw(mask).polygon([tuple(np.asarray(self.px(x, y)) - off) for x, y in shrunk], fill=140)
        light = tuple(min(1.0, v + self.style.shade * (1 - v)) for v in fill[:3])
        box = (int(x0), int(y0), int(x1), int(y1))
        region = self.image.crop(box)
        region.paste(_rgba(light), mask=ImageChops.multiply(shape, mask))
        self.image.paste(region, box)

    def _pixel_box(self, p: np.ndarray) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of canvas pixels p, clipped to the canvas (empty if x1 <= x0 or y1 <= y0)."""
        x0, y0 = np.maximum(np.floor(p.min(axis=0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(p.max(axis=0)).astype(int) + 1, self.image.size)
        return int(x0), int(y0), int(x1), int(y1)

    def _textured(self, p, fill) -> None:
        """Refill the polygon (canvas pixels p) with fill times the style's texture factors."""
        if self._texture is None:
            self._texture = self.style.texture.field(*self.image.size, self.scale)
        a = np.asarray(p)
        x0, y0, x1, y1 = self._pixel_box(a)
        if x1 <= x0 or y1 <= y0:
            return
        mask = Image.new("L", (int(x1 - x0), int(y1 - y0)), 0)
        ImageDraw.Draw(mask).polygon([tuple(v) for v in a - (x0, y0)], fill=255)
        rgb = np.clip(np.asarray(fill[:3], np.float32) * self._texture[y0:y1, x0:x1, None], 0, 1)
        tile = np.dstack([np.round(255 * rgb), np.full(rgb.shape[:2] + (1,), 255.0)]).astype(np.uint8)
        self.image.paste(Image.fromarray(tile, "RGBA"), (int(x0), int(y0)), mask)

    def ellipse(self, cx, cy, rx, ry, fill, outline=None, angle: float = 0.0, n: int = 48) -> None:
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        ca, sa = np.cos(angle), np.sin(angle)
        x, y = rx * np.cos(t), ry * np.sin(t)
        self.polygon(list(zip(cx + ca * x - sa * y, cy + sa * x + ca * y)), fill, outline)

    def rect(self, cx, cy, w, h, fill, outline=None, angle: float = 0.0, radius: float = 0.0) -> None:
        """Rotated rectangle centred at (cx, cy); radius rounds its corners."""
        pts = rounded_rect(w, h, radius)
        ca, sa = np.cos(angle), np.sin(angle)
        self.polygon([(cx + ca * x - sa * y, cy + sa * x + ca * y) for x, y in pts], fill, outline)

    def line(self, pts, colour, width: float) -> None:
        """Polyline of the given width (unit frame); ignores the style outline."""
        c = (0.0, 0.0, 0.0) if self.style.line_art else colour
        self.draw.line([self.px(x, y) for x, y in pts], fill=_rgba(c), width=self._width(width),
                       joint="curve")

    def finish(self, angle_deg: float = 0.0) -> Image.Image:
        """Reduce, rotate by angle_deg and crop to the alpha; longest side = the canvas side."""
        im = _crop(self.image, 0)
        if self.style.grey:
            im = greyscale(im, self.style.grey)
        if angle_deg:  # rotated cropped and at 1.5x the final size: ~8x cheaper than the full canvas
            s = min(1.0, 1.5 * self.side / max(im.size))
            im = im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))),
                           Image.Resampling.LANCZOS)
            im = _crop(im.rotate(angle_deg, resample=Image.Resampling.BICUBIC, expand=True), 8)
        s = self.side / max(im.size)
        return im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))),
                         Image.Resampling.LANCZOS)


def greyscale(im: Image.Image, gamma: float = 1.0) -> Image.Image:
    """RGBA -> the same alpha over grey levels (ITU-R 601 luma, then a gamma)."""
    grey = im.convert("L").point(lambda v: round(255 * (v / 255) ** gamma))
    out = Image.merge("RGB", (grey, grey, grey)).convert("RGBA")
    out.putalpha(im.getchannel("A"))
    return out


def _area(pts) -> float:
    """Area of a polygon (shoelace), in the unit frame."""
    a = np.asarray(pts, float)
    x, y = a[:, 0], a[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _crop(im: Image.Image, threshold: int) -> Image.Image:
    ys, xs = np.nonzero(np.asarray(im.getchannel("A")) > threshold)
    if len(xs) == 0:
        raise ValueError("procedural drawing is empty")
    return im.crop((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))


def rounded_rect(w: float, h: float, r: float, n: int = 6) -> list[tuple[float, float]]:
    """Corner points of a w x h rectangle centred at 0 with corners of radius r."""
    r = min(r, w / 2, h / 2)
    if r <= 0:
        return [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    pts = []
    for (cx, cy, a0) in ((w / 2 - r, -h / 2 + r, -np.pi / 2), (w / 2 - r, h / 2 - r, 0.0),
                         (-w / 2 + r, h / 2 - r, np.pi / 2), (-w / 2 + r, -h / 2 + r, np.pi)):
        for t in np.linspace(a0, a0 + np.pi / 2, n):
            pts.append((cx + r * np.cos(t), cy + r * np.sin(t)))
    return pts


def outline_from_widths(ys, half_widths, x_centre: float = 0.0) -> list[tuple[float, float]]:
    """Closed outline of a body symmetric about x = x_centre, given its half width at each y:
    the usual way to draw a violin body, a bell or a bottle shape."""
    ys, hw = np.asarray(ys, float), np.asarray(half_widths, float)
    right = list(zip(x_centre + hw, ys))
    left = list(zip(x_centre - hw[::-1], ys[::-1]))
    return right + left


def smooth_profile(ys_ctrl, hw_ctrl, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Samples of a smooth half-width profile through control points (monotone cubic)."""
    from scipy.interpolate import PchipInterpolator
    ys = np.linspace(ys_ctrl[0], ys_ctrl[-1], n)
    return ys, np.maximum(PchipInterpolator(ys_ctrl, hw_ctrl)(ys), 0.0)
