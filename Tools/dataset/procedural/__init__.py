"""Procedurally drawn instruments: any number of distinct drawings per class,
each a pure function of (class, variant), for the training split only.

The packages hold 1-5 drawings per class; a network trained on so few learns
the drawings, not the instruments. These add variety in proportions, colours,
outline and shading styles and details, and the builder keeps them out of the
validation and test splits, which stay the packages' own held-out drawings.
"""
from __future__ import annotations

import zlib

import numpy as np
from PIL import Image

from .. import CLASSES
from .canvas import Canvas, Style
from . import strings, winds

DRAWERS = {**strings.DRAWERS, **winds.DRAWERS}  # class -> f(canvas, rng, style) -> tilt (degrees)
SIDE = 512


def draw(cls: str, variant: int, side: int = SIDE) -> Image.Image:
    """RGBA drawing of `cls`, cropped to its alpha, longest side `side` pixels."""
    if cls not in DRAWERS:
        raise KeyError(f"no procedural drawing for class {cls!r}")
    if variant < 0:
        raise ValueError("variant must be >= 0")
    rng = np.random.default_rng([zlib.crc32(cls.encode()), variant])
    style = Style.random(rng)
    canvas = Canvas(style, side)
    tilt = DRAWERS[cls](canvas, rng, style)
    return canvas.finish(float(tilt or 0.0))


def missing_classes() -> list[str]:
    return [c for c in CLASSES if c not in DRAWERS]
