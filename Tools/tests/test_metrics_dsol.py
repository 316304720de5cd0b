"""SPEC §6 metrics on hand-computed cases, and the shared test vectors for the Swift evaluator.

The vectors live in Tests/SoundlocEvalTests/Fixtures/metrics_cases.json (read by the Swift
evaluator's tests);
rewrite them with
    python3 Tools/tests/test_metrics_dsol.py --write
and test_fixture_is_current checks that the committed file still matches this implementation.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tools"))

from dsol import metrics as M  # noqa: E402

_LOCATIONS = [ROOT / "Tests/SoundlocEvalTests/Fixtures/metrics_cases.json"]
FIXTURE = next((p for p in _LOCATIONS if p.exists()), _LOCATIONS[0])


# ---------------------------------------------------------------- building blocks of the hand cases

def profile(lo_cell: int, hi_cell: int, n: int = 224, cells: int = 14) -> np.ndarray:
    """1-D upsampling of a 0/1 indicator of cells lo..hi (inclusive), written out by hand:
    pixel o sits at cell coordinate (o + 0.5) / 16 - 0.5; values ramp linearly between cell
    centres and are flat beyond the outermost centres."""
    step = n // cells
    o = np.arange(n, dtype=np.float64)
    c = np.maximum((o + 0.5) / step - 0.5, 0.0)
    rise = np.clip(c - (lo_cell - 1), 0.0, 1.0)  # 0 at centre lo-1, 1 at centre lo
    fall = np.clip((hi_cell + 1) - c, 0.0, 1.0)  # 1 at centre hi, 0 at centre hi+1
    return np.minimum(rise, fall)


def band_rows(lo, hi, value=1.0):
    m = np.zeros((14, 14))
    m[lo:hi + 1, :] = value
    return m


def square(lo, hi):
    m = np.zeros((14, 14))
    m[lo:hi + 1, lo:hi + 1] = 1.0
    return m


def cocktail_maps():
    """Three class maps: 0 sounding (a band), 1 visible and silent (flat 0.1), 2 not visible."""
    m0 = band_rows(4, 9)
    m1 = np.full((14, 14), 0.1)
    m2 = np.zeros((14, 14))
    m2[:, :7] = 0.3
    return np.stack([m0, m1, m2])


COCKTAIL_OBJECTS = [
    {"class_id": 0, "box": [0.0, 4 / 14, 1.0, 6 / 14], "sounding": True},
    {"class_id": 1, "box": [0.1, 0.1, 0.2, 0.2], "sounding": False},
]


# ---------------------------------------------------------------- hand-computed cases

def test_profile_matches_upsampling():
    m = np.zeros((14, 14))
    m[:, 4:10] = 1.0
    np.testing.assert_allclose(M.upsample(m)[0], profile(4, 9), atol=1e-15)


def test_upsampling_is_pytorch_align_corners_false():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    m = rng.random((2, 14, 14))
    ref = torch.nn.functional.interpolate(torch.from_numpy(m)[None], size=(224, 224), mode="bilinear",
                                          align_corners=False)[0].numpy()
    np.testing.assert_allclose(M.upsample(m), ref, atol=1e-14)


def test_box_rasterisation():
    g = M.box_mask([[4 / 14, 4 / 14, 6 / 14, 6 / 14]])
    ys, xs = np.nonzero(g)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (64, 159, 64, 159)
    # int() truncation of x*224 and x*224 + w*224: [0.1, 0.2, 0.3, 0.25] -> cols 22..88, rows 44..99
    ys, xs = np.nonzero(M.box_mask([[0.1, 0.2, 0.3, 0.25]]))
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (22, 88, 44, 99)
    assert not M.box_mask([]).any()
    assert M.box_mask([[0.9, 0.9, 0.5, 0.5]]).sum() == (224 - 201) ** 2  # clipped at the border


def test_one_object_band():
    # threshold 0.1: P = rows 58..165 (108 rows), G = rows 64..159 (96 rows), full width
    assert M.relative_iou(band_rows(4, 9), [[0.0, 4 / 14, 1.0, 6 / 14]], 0.1) == pytest.approx(96 / 108, abs=1e-15)


def test_map_equal_to_box():
    a = profile(4, 9)
    p = np.outer(a, a) > 0.1  # the corners of the ring fall below the threshold
    expected = 96 * 96 / p.sum()
    assert 96 * 96 / (108 * 108) < expected < 1
    assert M.relative_iou(square(4, 9), [[4 / 14, 4 / 14, 6 / 14, 6 / 14]], 0.1) == pytest.approx(expected, abs=1e-15)


def test_two_objects_union():
    m = np.zeros((14, 14))
    m[:, 2:5] = 1.0
    m[:, 9:12] = 1.0
    boxes = [[2 / 14, 0.0, 3 / 14, 1.0], [9 / 14, 0.0, 3 / 14, 1.0]]
    # each object: G = 48 columns, P = 60 columns (26..85 and 138..197)
    assert M.relative_iou(m, boxes, 0.1) == pytest.approx(96 / 120, abs=1e-15)


def test_empty_map_and_empty_box():
    assert M.relative_iou(np.zeros((14, 14)), [[0.2, 0.2, 0.3, 0.3]], 0.1) == 0.0
    assert M.relative_iou(np.ones((14, 14)), [], 0.1) is None  # skipped
    full = M.relative_iou(np.ones((14, 14)), [[0.0, 0.0, 0.5, 1.0]], 0.1)  # flat map: P everything
    assert full == pytest.approx(0.5)


def test_silent_class_and_nsa():
    r = M.cocktail_image(cocktail_maps(), COCKTAIL_OBJECTS, [0, 1, 2], 3, fraction=0.5)
    assert r["ciou"] == 1.0  # threshold 0.5 puts P exactly on rows 64..159 = G
    assert r["nsa_visible"] == 1.0  # flat 0.1 <= 0.2 everywhere
    # class 2: 0.3 on cells 0..6 falls to <= 0.2 from column 109 on
    assert r["nsa"] == pytest.approx((1.0 + 115 / 224) / 2, abs=1e-15)


def test_cluster_order_is_mapped():
    maps = cocktail_maps()
    c2c = [2, 0, 1]  # cluster j shows class c2c[j]
    permuted = np.stack([maps[c] for c in c2c])
    a = M.cocktail_image(maps, COCKTAIL_OBJECTS, [0, 1, 2], 3)
    b = M.cocktail_image(permuted, COCKTAIL_OBJECTS, c2c, 3)
    assert (a["ciou"], a["nsa"], a["nsa_visible"]) == (b["ciou"], b["nsa"], b["nsa_visible"])


def test_class_without_cluster_is_dark():
    r = M.cocktail_image(cocktail_maps()[:2], COCKTAIL_OBJECTS, [0, 1], 3)
    assert r["nsa"] == 1.0  # class 2 has no cluster: probability 0 everywhere


def test_success_curve_ties_and_auc():
    scores = [0.3, 0.5, 1.0, 0.0]
    curve = M.success_curve(scores)
    assert curve[0] == 1.0 and curve[5] == 0.75
    assert curve[6] == 0.5  # 0.3 < 0.05 * 6 = 0.30000000000000004 (the authors' thresholds)
    assert curve[10] == 0.5 and curve[20] == 0.25
    assert M.auc(curve) == pytest.approx(0.05 * 9.125, abs=1e-12)
    s = M.summarize_solo(scores)
    assert s["iou@0.5"] == 0.5 and s["n"] == 4
    c = M.summarize_cocktail(scores, [0.9, None, 1.0], [])
    assert c["ciou@0.3"] == 0.5 and c["nsa"] == pytest.approx(0.95) and c["nsa_visible"] is None
    assert M.auc([1.0] * 21) == pytest.approx(1.0) and M.auc([0.0] * 21) == 0.0


def test_hungarian():
    assert M.hungarian_cluster_to_class([0, 0, 0, 1, 1, 2, 2, 2], [2, 2, 1, 0, 0, 1, 1, 1], 3, 3) == [2, 0, 1]
    # more clusters than classes: the extra cluster joins the class it co-occurs with most
    assert M.hungarian_cluster_to_class([0, 0, 1, 1, 2, 3, 3], [0, 0, 1, 1, 1, 2, 2], 4, 3) == [0, 1, 1, 2]
    # fewer clusters than classes: distinct classes
    assert M.hungarian_cluster_to_class([0, 1], [3, 1], 2, 4) == [3, 1]


def test_random_cases_against_torch():
    """IoU from an independent implementation (PyTorch upsampling, explicit rasterisation)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    for _ in range(20):
        m = rng.random((14, 14)).astype(np.float32)
        box = [float(v) for v in rng.uniform(0, 0.5, 2)] + [float(v) for v in rng.uniform(0.1, 0.5, 2)]
        up = torch.nn.functional.interpolate(torch.from_numpy(m.astype(np.float64))[None, None], size=(224, 224),
                                             mode="bilinear", align_corners=False)[0, 0].numpy()
        g = np.zeros((224, 224), bool)
        x, y, w, h = (v * 224 for v in box)
        g[int(y):min(int(y + h), 224), int(x):min(int(x + w), 224)] = True
        p = up > 0.1 * up.max()
        ref = (p & g).sum() / (g.sum() + (p & ~g).sum())
        assert M.relative_iou(m, [box], 0.1) == pytest.approx(ref, abs=1e-15)


# ---------------------------------------------------------------- fixture for the Swift twin

def _f32(a) -> list:
    return np.asarray(a, dtype=np.float32).astype(np.float64).tolist()


def build_cases() -> dict:
    rng = np.random.default_rng(2020)
    up_maps = {"ramp": np.add.outer(np.arange(14), 14 * np.arange(14)).T.astype(np.float32) / 196,
               "random": rng.random((14, 14)).astype(np.float32)}
    rows = [0, 1, 7, 8, 9, 100, 215, 216, 222, 223]
    upsample_cases = [{"name": k, "map": _f32(v),
                       "rows": {str(r): M.upsample(np.asarray(_f32(v)))[r].tolist() for r in rows}}
                      for k, v in up_maps.items()]

    iou_cases = []

    def add_iou(name, m, boxes, fraction):
        m = np.asarray(_f32(m))
        iou_cases.append({"name": name, "map": m.tolist(), "boxes": boxes, "fraction": fraction,
                          "expected": M.relative_iou(m, boxes, fraction)})

    add_iou("one_object_band", band_rows(4, 9), [[0.0, 4 / 14, 1.0, 6 / 14]], 0.1)
    add_iou("map_equal_to_box", square(4, 9), [[4 / 14, 4 / 14, 6 / 14, 6 / 14]], 0.1)
    two = np.zeros((14, 14))
    two[:, 2:5] = 1.0
    two[:, 9:12] = 1.0
    add_iou("two_objects", two, [[2 / 14, 0.0, 3 / 14, 1.0], [9 / 14, 0.0, 3 / 14, 1.0]], 0.1)
    add_iou("empty_map", np.zeros((14, 14)), [[0.2, 0.2, 0.3, 0.3]], 0.1)
    add_iou("no_box", np.ones((14, 14)), [], 0.1)
    add_iou("flat_map_half_box", np.ones((14, 14)), [[0.0, 0.0, 0.5, 1.0]], 0.1)
    add_iou("truncated_box", square(3, 8), [[0.1, 0.2, 0.3, 0.25]], 0.1)
    for i in range(6):
        m = rng.random((14, 14)) ** 3
        boxes = [[float(v) for v in np.round(np.r_[rng.uniform(0, 0.6, 2), rng.uniform(0.1, 0.4, 2)], 6)]
                 for _ in range(1 + i % 2)]
        add_iou(f"random_{i}", m, boxes, [0.1, 0.5, 0.2][i % 3])

    cocktail_cases = []

    def add_cocktail(name, maps, objects, c2c, k, fraction):
        maps = np.asarray(_f32(maps))
        r = M.cocktail_image(maps, objects, c2c, k, fraction)
        cocktail_cases.append({"name": name, "maps": maps.tolist(), "objects": objects, "cluster_to_class": c2c,
                               "num_classes": k, "fraction": fraction,
                               "expected": {"ciou": r["ciou"], "nsa": r["nsa"], "nsa_visible": r["nsa_visible"],
                                            "per_class": {str(c): v for c, v in r["per_class"].items()}}})

    add_cocktail("silent_class", cocktail_maps(), COCKTAIL_OBJECTS, [0, 1, 2], 3, 0.5)
    maps = cocktail_maps()
    add_cocktail("cluster_permutation", np.stack([maps[c] for c in [2, 0, 1]]), COCKTAIL_OBJECTS, [2, 0, 1], 3, 0.5)
    add_cocktail("class_without_cluster", maps[:2], COCKTAIL_OBJECTS, [0, 1], 3, 0.5)
    for i in range(3):
        k = 5
        logits = rng.normal(0, 2, (k, 14, 14))
        probs = np.exp(logits) / np.exp(logits).sum(0)
        classes = rng.permutation(k)[:4].tolist()
        objects = [{"class_id": int(c), "box": [0.5 * (q % 2) + 0.05, 0.5 * (q // 2) + 0.05, 0.35, 0.4],
                    "sounding": q in (0, 3)} for q, c in enumerate(classes)]
        add_cocktail(f"random_mosaic_{i}", probs, objects, rng.permutation(k).tolist(), k, [0.5, 0.2, 0.5][i])

    curve_cases = []
    for name, scores in (("ties", [0.3, 0.5, 1.0, 0.0]), ("random", rng.random(37).round(4).tolist()),
                         ("with_skipped", [0.7, None, 0.05, 0.25])):
        curve = M.success_curve(scores)
        curve_cases.append({"name": name, "scores": scores, "expected": {
            "success": curve, "iou@0.5": curve[M.T_IOU50], "ciou@0.3": curve[M.T_CIOU30], "auc": M.auc(curve)}})

    hungarian_cases = []
    for cl, gt, nc, nk in (([0, 0, 0, 1, 1, 2, 2, 2], [2, 2, 1, 0, 0, 1, 1, 1], 3, 3),
                           ([0, 1, 2, 3, 0, 1, 2, 3, 3], [1, 2, 3, 0, 1, 2, 3, 0, 0], 4, 4),
                           ([0, 1], [3, 1], 2, 4)):
        hungarian_cases.append({"cluster_ids": cl, "class_ids": gt, "n_clusters": nc, "n_classes": nk,
                                "expected": M.hungarian_cluster_to_class(cl, gt, nc, nk)})

    box_cases = []
    for b in ([4 / 14, 4 / 14, 6 / 14, 6 / 14], [0.1, 0.2, 0.3, 0.25], [0.9, 0.9, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0],
              [0.123456, 0.654321, 0.2, 0.1]):
        g = M.box_mask([b])
        ys, xs = np.nonzero(g)
        box_cases.append({"box": b, "rows": [int(ys.min()), int(ys.max()) + 1], "cols": [int(xs.min()), int(xs.max()) + 1]})

    return {
        "description": "SPEC §6 metric test vectors written by Tools/tests/test_metrics_dsol.py from "
                       "Tools/dsol/metrics.py; see that module's docstring for the conventions.",
        "conventions": {
            "upsample": "bilinear 14x14 -> 224x224, PyTorch align_corners=False: src = (o+0.5)*in/out-0.5, "
                        "clamped at 0, i1 = min(i0+1, in-1); computed in float64",
            "box": "rows int(y*224) ..< int(y*224 + h*224), cols int(x*224) ..< int(x*224 + w*224), float64, "
                   "truncation, clamped to [0, 224]",
            "iou": "|P&G| / (|G| + |P&!G|), P = up > fraction * max(up); null when G is empty (image skipped)",
            "thresholds": "t_i = 0.05 * i in IEEE double, i = 0..20; success = share of scores >= t_i",
            "auc": "sum over i of (t_{i+1} - t_i) * (s_i + s_{i+1}) / 2",
            "cocktail": "maps in cluster order; class map = sum of clusters mapped to it; ciou = mean IoU over "
                        "sounding classes; nsa = mean over non-sounding classes of the share of pixels <= 0.2; "
                        "nsa_visible = same over visible silent classes",
        },
        "thresholds": list(M.THRESHOLDS),
        "tolerance": 1e-6,
        "upsample": upsample_cases,
        "iou": iou_cases,
        "cocktail": cocktail_cases,
        "curves": curve_cases,
        "hungarian": hungarian_cases,
        "boxes": box_cases,
    }


def _close(a, b, path="") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and abs(a - b) <= 1e-12, f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a} != {b}"


def test_fixture_is_current():
    assert FIXTURE.exists(), f"missing {FIXTURE}; run python3 Tools/tests/test_metrics_dsol.py --write"
    _close(json.loads(json.dumps(build_cases())), json.loads(FIXTURE.read_text()))


def test_fixture_cases_replay():
    """Replays the file the way the Swift side will: from the JSON values alone."""
    cases = json.loads(FIXTURE.read_text())
    for c in cases["iou"]:
        got = M.relative_iou(np.asarray(c["map"]), c["boxes"], c["fraction"])
        assert (got is None and c["expected"] is None) or abs(got - c["expected"]) <= 1e-6, c["name"]
    for c in cases["cocktail"]:
        r = M.cocktail_image(np.asarray(c["maps"]), c["objects"], c["cluster_to_class"], c["num_classes"], c["fraction"])
        for k in ("ciou", "nsa", "nsa_visible"):
            assert (r[k] is None and c["expected"][k] is None) or abs(r[k] - c["expected"][k]) <= 1e-6, c["name"]
    for c in cases["upsample"]:
        up = M.upsample(np.asarray(c["map"]))
        for r, row in c["rows"].items():
            np.testing.assert_allclose(up[int(r)], row, atol=1e-12)
    names = {c["name"]: c for c in cases["iou"]}
    assert names["one_object_band"]["expected"] == pytest.approx(96 / 108)
    assert names["two_objects"]["expected"] == pytest.approx(0.8)
    assert names["empty_map"]["expected"] == 0.0 and names["no_box"]["expected"] is None


if __name__ == "__main__":
    if "--write" in sys.argv:
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(json.dumps(build_cases(), indent=1) + "\n")
        print(f"wrote {FIXTURE}")
