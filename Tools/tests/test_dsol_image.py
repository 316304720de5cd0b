"""Image preprocessing (dsol.image) against its written definition."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsol.image import IMAGE_MEAN, IMAGE_STD, preprocess, resize, tent_weights  # noqa: E402


def slow_resize(rgb, out_h, out_w):
    """Per-pixel loops straight from the module docstring, Python floats (float64)."""
    h, w, _ = rgb.shape
    x = rgb.astype(np.float32) / np.float32(255)

    def taps(n_in, n_out, o):
        scale = n_in / n_out
        support = max(scale, 1.0)
        c = (o + 0.5) * scale
        lo, hi = max(0, math.floor(c - support - 1)), min(n_in, math.ceil(c + support + 1))
        ws = [(i, max(0.0, 1.0 - abs(i + 0.5 - c) / support)) for i in range(lo, hi)]
        total = sum(wt for _, wt in ws)
        return [(i, wt / total) for i, wt in ws if wt > 0]

    tx = [taps(w, out_w, o) for o in range(out_w)]
    ty = [taps(h, out_h, o) for o in range(out_h)]
    t = np.zeros((h, out_w, 3), np.float32)
    for y in range(h):
        for ox in range(out_w):
            for ch in range(3):
                t[y, ox, ch] = sum(wt * float(x[y, i, ch]) for i, wt in tx[ox])
    r = np.zeros((out_h, out_w, 3), np.float32)
    for oy in range(out_h):
        for ox in range(out_w):
            for ch in range(3):
                r[oy, ox, ch] = sum(wt * float(t[j, ox, ch]) for j, wt in ty[oy])
    return r


def ulps(a, b):
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


@pytest.mark.parametrize("shape,out", [((23, 17), (11, 29)), ((5, 3), (224, 224)), ((301, 157), (224, 224)),
                                       ((1, 1), (4, 6)), ((224, 640), (224, 224))])
def test_matches_slow_loop(shape, out):
    rgb = np.random.default_rng(sum(shape)).integers(0, 256, shape + (3,), dtype=np.uint8)
    fast = resize(rgb, *out)
    slow = slow_resize(rgb, *out)
    assert fast.dtype == np.float32 and fast.shape == out + (3,)
    assert int(ulps(fast, slow).max()) <= 1


def test_hand_computed_cases():
    # 2x2 -> 1x1 is the plain average (weights 0.75, 0.75 before normalisation).
    rgb = np.array([[[0, 10, 255], [100, 20, 255]], [[50, 30, 0], [250, 40, 0]]], np.uint8)
    got = resize(rgb, 1, 1)[0, 0]
    want = (rgb.astype(np.float32) / np.float32(255)).astype(np.float64).mean(axis=(0, 1))
    assert np.allclose(got, want, rtol=0, atol=1e-7)
    # 3 -> 1: centre 1.5, support 3: raw weights 2/3, 1, 2/3, normalised by their sum 7/3.
    assert np.allclose(tent_weights(3, 1), [[2 / 7, 3 / 7, 2 / 7]])
    # 1 -> 2 (upsampling): a single source pixel is copied.
    assert np.array_equal(tent_weights(1, 2), [[1.0], [1.0]])
    # 2 -> 4: bilinear with clamped edges.
    assert np.allclose(tent_weights(2, 4), [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    assert np.allclose(tent_weights(7, 5).sum(axis=1), 1.0)


def test_identity_at_224_and_normalisation():
    rgb = np.random.default_rng(1).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    assert np.array_equal(tent_weights(224, 224), np.eye(224))
    x = rgb.astype(np.float32) / np.float32(255)
    assert np.array_equal(resize(rgb), x)
    out = preprocess(rgb)
    assert out.shape == (3, 224, 224) and out.dtype == np.float32 and out.flags.c_contiguous
    mean = np.asarray(IMAGE_MEAN, np.float32)
    std = np.asarray(IMAGE_STD, np.float32)
    assert np.array_equal(out, ((x - mean) / std).transpose(2, 0, 1))


def test_constant_image_stays_constant():
    rgb = np.full((97, 301, 3), (12, 200, 77), np.uint8)
    r = resize(rgb)
    for ch, v in enumerate((12, 200, 77)):
        assert np.allclose(r[..., ch], np.float32(v) / np.float32(255), rtol=0, atol=1e-7)


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        preprocess(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError):
        preprocess(np.zeros((10, 10), np.uint8))
