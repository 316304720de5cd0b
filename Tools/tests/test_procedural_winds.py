"""The procedural wind (and xylophone) drawings: well-formed, deterministic, varied."""
import numpy as np
import pytest

from dataset import procedural

CLASSES = ["clarinet", "flute", "saxophone", "trumpet", "tuba", "xylophone"]
VARIANTS = range(6)


@pytest.mark.parametrize("cls", CLASSES)
def test_drawings_are_well_formed(cls):
    for v in VARIANTS:
        im = procedural.draw(cls, v, side=128)
        assert im.mode == "RGBA"
        assert max(im.size) == 128 and min(im.size) >= 4
        a = np.asarray(im)[..., 3]
        # transparent background around the instrument: its corners show through
        corners = [a[0, 0], a[0, -1], a[-1, 0], a[-1, -1]]
        assert min(corners) <= 8, (cls, v, corners)
        cover = float((a > 8).mean())
        assert 0.05 < cover < 0.95, (cls, v, cover)


@pytest.mark.parametrize("cls", CLASSES)
def test_drawings_are_deterministic_and_varied(cls):
    seen = set()
    for v in VARIANTS:
        b = procedural.draw(cls, v, side=128).tobytes()
        assert procedural.draw(cls, v, side=128).tobytes() == b
        seen.add(b)
    assert len(seen) == len(VARIANTS)
