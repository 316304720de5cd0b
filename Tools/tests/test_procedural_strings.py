"""Procedural string-instrument drawings (dataset/procedural/strings.py): each (class, variant)
is a deterministic, non-degenerate RGBA drawing on a transparent background."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from dataset import procedural  # noqa: E402
from dataset.procedural import strings  # noqa: E402

CLASSES = ["accordion", "acoustic_guitar", "cello", "erhu", "violin"]
VARIANTS = range(6)


def test_all_classes_have_drawers():
    assert sorted(strings.DRAWERS) == CLASSES


@pytest.mark.parametrize("cls", CLASSES)
def test_drawings(cls):
    seen = set()
    for v in VARIANTS:
        im = procedural.draw(cls, v, side=128)
        assert im.mode == "RGBA"
        assert max(im.size) == 128 and min(im.size) > 8, im.size
        a = np.asarray(im)[..., 3]
        # cropped to the drawing, yet its corners and most of its border are background
        assert all(a[y, x] <= 8 for y in (0, -1) for x in (0, -1)), (cls, v)
        border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
        assert (border > 8).mean() < 0.5, (cls, v)
        cover = float((a > 8).mean())
        assert 0.1 < cover < 0.95, (cls, v, cover)
        data = im.tobytes()
        assert procedural.draw(cls, v, side=128).tobytes() == data, (cls, v)
        seen.add(data)
    assert len(seen) == len(VARIANTS), cls
