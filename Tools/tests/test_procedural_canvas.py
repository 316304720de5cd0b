"""The procedural drawings' canvas and entry points: shading keeps shapes opaque, drawings are
a pure function of (class, variant), bad requests fail clearly, the contact sheet renders."""
import os
import sys

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from dataset import CLASSES  # noqa: E402
from dataset.procedural import DRAWERS, draw, missing_classes  # noqa: E402
from dataset.procedural.__main__ import main  # noqa: E402
from dataset.procedural.canvas import Canvas, Style  # noqa: E402


def test_every_class_has_a_drawer():
    assert missing_classes() == [] and set(DRAWERS) == set(CLASSES)


def test_shading_keeps_a_shape_opaque():
    st = Style.random(np.random.default_rng(0))
    st.line_art, st.shade, st.outline = False, 0.4, None
    c = Canvas(st, 128)
    c.ellipse(0.0, 0.5, 0.3, 0.45, (0.6, 0.3, 0.1))
    a = np.asarray(c.image)[..., 3]
    inside = a > 0
    from scipy import ndimage
    core = ndimage.binary_erosion(inside, iterations=3)
    assert core.sum() > 1000 and a[core].min() == 255  # no see-through highlight
    rgb = np.asarray(c.image)[..., :3][core].astype(int)
    assert rgb.sum(axis=1).max() > rgb.sum(axis=1).min() + 30  # but a lighter patch is there


def test_draw_rejects_unknown_class_and_negative_variant():
    with pytest.raises(KeyError):
        draw("banjo", 0)
    with pytest.raises(ValueError):
        draw("cello", -1)


def test_variants_are_independent_of_call_order():
    later = draw("tuba", 3, side=96)
    for v in range(3):
        draw("flute", v, side=96)
    assert draw("tuba", 3, side=96).tobytes() == later.tobytes()


def test_contact_sheet(tmp_path):
    out = str(tmp_path / "sheet.png")
    assert main(["--out", out, "--variants", "2", "--classes", "cello,trumpet"]) == 0
    im = Image.open(out)
    assert im.size == (110 + 2 * 128, 2 * 128)
    assert np.asarray(im.convert("L")).min() < 100  # something was drawn
    with pytest.raises(SystemExit):
        main(["--out", out, "--classes", "banjo"])
