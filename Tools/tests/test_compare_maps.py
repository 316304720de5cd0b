"""dsol.compare_maps on hand-made maps: the numbers it reports can be worked out by hand."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "Tools"))

from dsol.compare_maps import compare, top_sounding_class  # noqa: E402


def scene(class_maps, l):
    return np.concatenate([np.asarray(class_maps, np.float32), np.asarray(l, np.float32)[None]])


def test_top_sounding_class_weights_class_maps_by_the_sounding_area():
    # class 0 owns the left column, class 1 the right; sound only on the right.
    cm = [[[1, 0], [1, 0]], [[0, 1], [0, 1]]]
    assert top_sounding_class(scene(cm, [[0, 1], [0, 1]])) == 1
    assert top_sounding_class(scene(cm, [[1, 0], [1, 0]])) == 0


def test_compare_reports_mean_difference_worst_scene_and_agreement(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    cm = np.array([[[1, 0], [1, 0]], [[0, 1], [0, 1]]], np.float32)
    right = [[0, 1], [0, 1]]
    np.save(a / "s1.npy", scene(cm, right))
    np.save(b / "s1.npy", scene(cm + 0.1, right))              # |delta| 0.1 everywhere, same top class
    np.save(a / "s2.npy", scene(cm, right))
    np.save(b / "s2.npy", scene(cm[::-1], right))               # classes swapped: |delta| 1, top class flips
    r = compare(a, b)
    assert r["scenes"] == 2
    assert r["mean_abs_class_prob_diff"] == pytest.approx((0.1 + 1.0) / 2, abs=1e-6)
    assert r["worst_scene"] == "s2" and r["worst_scene_mean_abs_diff"] == pytest.approx(1.0)
    assert r["mean_abs_l_diff"] == pytest.approx(0.0)
    assert r["top_class_agreement"] == pytest.approx(0.5)


def test_missing_maps_are_an_error(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    np.save(a / "s1.npy", scene([[[1.0]]], [[1.0]]))
    with pytest.raises(SystemExit, match="lacks 1"):
        compare(a, b)
