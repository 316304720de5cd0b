"""Procedurally drawn instruments: any number of distinct drawings per class,
each a pure function of (class, variant), for the training split only; and
silent everyday things (lamps, cups, chairs...) to stand beside them.

The packages hold 1-5 drawings per class; a network trained on so few learns
the drawings, not the instruments. These add variety in proportions, colours,
outline and shading styles and details, and the builder keeps them out of the
validation and test splits, which stay the packages' own held-out drawings.

`looks` (a subset of canvas.LOOKS: outline, flat, shaded, greyscale, textured)
gives each variant one of those looks, chosen and detailed by a generator of
its own; without it a variant is drawn exactly as before looks existed.
"""
from __future__ import annotations

import zlib

import numpy as np
from PIL import Image

from .. import CLASSES
from .canvas import LOOKS, Canvas, Style
from . import everyday, strings, winds

DRAWERS = {**strings.DRAWERS, **winds.DRAWERS}  # class -> f(canvas, rng, style) -> tilt (degrees)
THINGS = everyday.DRAWERS                        # silent distractors, same signature
SIDE = 512
_LOOK_STREAM = 1  # third seed word of a variant's look generator


def check_looks(looks) -> tuple[str, ...]:
    """looks as a tuple, every name one of LOOKS."""
    looks = tuple(looks or ())
    bad = [k for k in looks if k not in LOOKS]
    if bad:
        raise ValueError(f"unknown look(s) {', '.join(bad)} (have: {', '.join(LOOKS)})")
    return looks


def look_of(name: str, variant: int, looks=None) -> str | None:
    """The look variant `variant` of `name` gets from `looks` (None without looks)."""
    return _look(name, variant, check_looks(looks))[0]


def _look(name: str, variant: int, looks: tuple) -> tuple[str | None, np.random.Generator | None]:
    if not looks:
        return None, None
    rng = np.random.default_rng([zlib.crc32(name.encode()), variant, _LOOK_STREAM])
    return looks[int(rng.integers(len(looks)))], rng


def _render(drawers: dict, name: str, variant: int, side: int, looks) -> Image.Image:
    if name not in drawers:
        raise KeyError(f"no procedural drawing for {name!r}")
    if variant < 0:
        raise ValueError("variant must be >= 0")
    look, look_rng = _look(name, variant, check_looks(looks))
    rng = np.random.default_rng([zlib.crc32(name.encode()), variant])
    style = Style.random(rng)
    if look is not None:
        style.with_look(look, look_rng)
    canvas = Canvas(style, side)
    tilt = drawers[name](canvas, rng, style)
    return canvas.finish(float(tilt or 0.0))


def draw(cls: str, variant: int, side: int = SIDE, looks=None) -> Image.Image:
    """RGBA drawing of instrument `cls`, cropped to its alpha, longest side `side` pixels."""
    return _render(DRAWERS, cls, variant, side, looks)


def draw_thing(name: str, variant: int, side: int = SIDE, looks=None) -> Image.Image:
    """RGBA drawing of the everyday thing `name` (a silent distractor), like draw."""
    return _render(THINGS, name, variant, side, looks)


def missing_classes() -> list[str]:
    return [c for c in CLASSES if c not in DRAWERS]
