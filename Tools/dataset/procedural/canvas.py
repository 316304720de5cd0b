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

# base colours (RGB 0..1) the styles jitter around
WOODS = [(0.55, 0.30, 0.12), (0.70, 0.42, 0.18), (0.45, 0.22, 0.10), (0.80, 0.55, 0.28),
         (0.35, 0.18, 0.08), (0.62, 0.25, 0.10)]
BRASS = [(0.85, 0.68, 0.22), (0.92, 0.78, 0.35), (0.75, 0.58, 0.18), (0.95, 0.82, 0.45)]
SILVER = [(0.78, 0.80, 0.83), (0.66, 0.68, 0.72), (0.88, 0.88, 0.90)]
DARK = [(0.10, 0.10, 0.12), (0.18, 0.15, 0.14), (0.22, 0.22, 0.26)]
BRIGHT = [(0.80, 0.15, 0.15), (0.15, 0.35, 0.75), (0.15, 0.55, 0.25), (0.55, 0.15, 0.55),
          (0.10, 0.10, 0.10), (0.85, 0.55, 0.10)]


@dataclass
class Style:
    """How one drawing is rendered: outline, shading and colour jitter."""
    outline: tuple | None      # RGBA outline colour, or None for no outline
    line: float                # outline width in units of the drawing's long side
    shade: float               # 0 = flat fills, >0 = highlight strength on filled shapes
    line_art: bool             # white fills, black outlines (colouring-book style)
    hue_jitter: float
    rng: np.random.Generator

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Style":
        line_art = bool(rng.random() < 0.15)
        has_outline = line_art or bool(rng.random() < 0.7)
        grey = float(rng.uniform(0.0, 0.25))
        return cls(outline=(grey, grey, grey) if has_outline else None,
                   line=float(rng.uniform(0.004, 0.012)) * (1.6 if line_art else 1.0),
                   shade=0.0 if line_art or rng.random() < 0.4 else float(rng.uniform(0.15, 0.4)),
                   line_art=line_art, hue_jitter=float(rng.uniform(0.0, 0.04)), rng=rng)

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
        x0, y0 = np.maximum(np.floor(p.min(axis=0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(p.max(axis=0)).astype(int) + 1, self.image.size)
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
        if angle_deg:  # rotated cropped and at 1.5x the final size: ~8x cheaper than the full canvas
            s = min(1.0, 1.5 * self.side / max(im.size))
            im = im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))),
                           Image.Resampling.LANCZOS)
            im = _crop(im.rotate(angle_deg, resample=Image.Resampling.BICUBIC, expand=True), 8)
        s = self.side / max(im.size)
        return im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))),
                         Image.Resampling.LANCZOS)


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
