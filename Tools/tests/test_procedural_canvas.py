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


# ---------------------------------------------------------------- looks and everyday things

from dataset.procedural import THINGS, check_looks, draw_thing, look_of  # noqa: E402
from dataset.procedural.canvas import LOOKS, Texture  # noqa: E402


def _opaque_rgb(im):
    a = np.asarray(im)
    return a[..., :3][a[..., 3] == 255].astype(int)


def test_without_looks_a_variant_is_drawn_as_before():
    # looks=None and looks=() take the classic path; a look only changes the picture
    for cls in ("violin", "trumpet"):
        plain = draw(cls, 5, side=96)
        assert draw(cls, 5, side=96, looks=()).tobytes() == plain.tobytes()
        assert look_of(cls, 5) is None
        styled = {k: draw(cls, 5, side=96, looks=(k,)) for k in LOOKS}
        hashes = {k: im.tobytes() for k, im in styled.items()}
        assert len(set(hashes.values())) == len(LOOKS)  # every look gives other pixels
        assert plain.tobytes() not in set(hashes.values()) - {hashes["shaded"], hashes["flat"]}


def test_looks_do_what_they_say():
    for cls in ("acoustic_guitar", "cello", "tuba"):
        for v in range(4):
            grey = _opaque_rgb(draw(cls, v, side=160, looks=("greyscale",)))
            assert (grey[:, 0] == grey[:, 1]).all() and (grey[:, 1] == grey[:, 2]).all()
            line = _opaque_rgb(draw(cls, v, side=160, looks=("outline",)))
            white = (line.min(axis=1) > 235).mean()
            assert white > 0.25, (cls, v, white)  # colouring-book fills
    # a textured fill: neighbouring opaque pixels differ by small steps far more often than in a
    # flat fill, where they are equal inside shapes and differ by a lot at the edges
    def soft_steps(im):
        a = np.asarray(im).astype(int)
        both = (a[:, 1:, 3] == 255) & (a[:, :-1, 3] == 255)
        d = np.abs(a[:, 1:, :3] - a[:, :-1, :3]).sum(axis=-1)
        return ((d > 4) & (d < 80))[both].mean()
    for cls in ("acoustic_guitar", "tuba", "violin"):
        for v in range(3):
            tex, flat = (soft_steps(draw(cls, v, side=200, looks=(k,))) for k in ("textured", "flat"))
            assert tex > flat + 0.08, (cls, v, tex, flat)


def test_texture_fields():
    rng = np.random.default_rng(0)
    for kind in ("stripes", "noise", "wood"):
        t = Texture.random(rng, kind)
        f = t.field(90, 60, 300.0)
        assert f.shape == (60, 90) and f.dtype == np.float32
        assert f.std() > 0.02 and f.min() > 0.3 and f.max() < 1.6
        np.testing.assert_array_equal(f, t.field(90, 60, 300.0))


def test_hundreds_of_distinct_variants_in_every_look():
    looks = check_looks(LOOKS)
    seen, got = set(), set()
    for v in range(150):
        im = draw("flute" if v % 2 else "violin", v, side=40, looks=looks)
        seen.add(im.tobytes())
        got.add(look_of("flute" if v % 2 else "violin", v, looks))
    assert len(seen) == 150 and got == set(LOOKS)
    with pytest.raises(ValueError):
        check_looks(["sepia"])


def test_everyday_things_draw_and_are_no_instruments():
    assert set(THINGS) >= {"lamp", "cup", "chair", "book", "plant", "ball"}
    assert not set(THINGS) & set(CLASSES)
    for name in THINGS:
        for v in range(6):
            im = draw_thing(name, v, side=64, looks=LOOKS if v % 2 else None)
            assert im.mode == "RGBA" and max(im.size) == 64
            assert (np.asarray(im)[..., 3] > 0).mean() > 0.1
        assert draw_thing(name, 3, side=64).tobytes() == draw_thing(name, 3, side=64).tobytes()
    with pytest.raises(KeyError):
        draw_thing("violin", 0)


def test_contact_sheet_with_looks_and_things(tmp_path):
    out = str(tmp_path / "sheet.png")
    assert main(["--out", out, "--variants", "2", "--classes", "cello", "--looks", "all", "--things"]) == 0
    assert Image.open(out).size == (110 + 2 * 128, (1 + len(THINGS)) * 128)
    with pytest.raises(SystemExit):
        main(["--out", out, "--looks", "sepia"])
