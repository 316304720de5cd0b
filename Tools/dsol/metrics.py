"""The paper's localisation metrics (SPEC §6), written so that a Swift twin can match them.

Conventions (the Swift evaluator follows the same; test vectors in
Tests/SoundlocEvalTests/Fixtures/metrics_cases.json, written by
Tools/tests/test_metrics_dsol.py --write):

* Upsampling: a (h, w) map (14 x 14) goes to 224 x 224 bilinearly with PyTorch's
  `F.interpolate(mode="bilinear", align_corners=False)` convention (= OpenCV's INTER_LINEAR,
  which the authors used): for output index o, src = (o + 0.5) * in / out - 0.5, clamped below at
  0; i0 = floor(src), i1 = min(i0 + 1, in - 1), weights (1 - (src - i0), src - i0). Separable,
  computed in float64 on the map's values (float32 maps are widened first).
* Ground truth: union of the boxes. A normalised box [x, y, w, h] covers rows
  int(y*224) .. int(y*224 + h*224) - 1 and columns int(x*224) .. int(x*224 + w*224) - 1, each
  product and the sum in float64, int() truncating (the authors' rasterisation), clamped to
  [0, 224].
* IoU = |P and G| / (|G| + |P and not G|), P = upsampled map > threshold (strictly greater).
  The threshold is a fraction of the max of the *upsampled* map: 0.1 (solo), 0.5 (synthetic
  cocktail scenes), 0.2 (real duets). An image whose G is empty is skipped.
* success(t) = share of images with IoU >= t, for t_i = 0.05 * i (i = 0..20) computed in IEEE
  double exactly as written (so t_6 = 0.30000000000000004: an IoU of exactly 0.3 does *not*
  reach it, as in the authors' code). IoU@0.5 = success(t_10), CIoU@0.3 = success(t_6).
  AUC = trapezoid area under success over those t (numpy.trapz order), in [0, 1].
* Cocktail party: maps are the per-pixel class probabilities (softmax of 3·s) in the model's
  (cluster) order. The map of class c is the sum of the maps of the clusters mapped to c
  (cluster_to_class; one cluster per class when counts are equal). Image score = mean IoU over
  its sounding classes (GT of a class = union of the boxes of its sounding objects); images
  without a sounding class are skipped.
* NSA: for each class silent in the image, the share of the 224 x 224 pixels whose upsampled
  class probability is <= 0.2; mean over those classes, then over images. As in the authors'
  evaluation, "silent" means every class of the K that is not sounding ("all"); the variant over
  the visible-but-silent classes only ("visible") is reported as well. Images with no such class
  are skipped for that variant. A class with no cluster has probability 0 everywhere.
* Clusters -> classes: Hungarian assignment (scipy linear_sum_assignment, maximising the
  co-occurrence counts of training cluster ids and training class labels). With more clusters
  than classes, the unassigned clusters are assigned in further Hungarian rounds.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

OUT_SIZE = 224
SOLO_FRACTION = 0.1
SYNTHETIC_FRACTION = 0.5
DUET_FRACTION = 0.2
NSA_THRESHOLD = 0.2
THRESHOLDS = tuple(0.05 * i for i in range(21))  # IEEE double, as the authors' code
T_IOU50 = 10
T_CIOU30 = 6


# ---------------------------------------------------------------- maps and boxes

@lru_cache(maxsize=16)
def bilinear_weights(n_in: int, n_out: int = OUT_SIZE) -> np.ndarray:
    """(n_out, n_in) float64 matrix of align_corners=False bilinear weights."""
    w = np.zeros((n_out, n_in), dtype=np.float64)
    scale = n_in / n_out
    for o in range(n_out):
        src = max((o + 0.5) * scale - 0.5, 0.0)
        i0 = min(int(np.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        w[o, i0] += 1.0 - lam
        w[o, i1] += lam
    w.setflags(write=False)
    return w


def upsample(m: np.ndarray, size: int = OUT_SIZE) -> np.ndarray:
    """(h, w) or (..., h, w) map -> (..., size, size) float64, bilinear, align_corners=False."""
    m = np.asarray(m, dtype=np.float64)
    wy = bilinear_weights(m.shape[-2], size)
    wx = bilinear_weights(m.shape[-1], size)
    return np.einsum("oh,...hw,pw->...op", wy, m, wx, optimize=True)


def box_mask(boxes, size: int = OUT_SIZE) -> np.ndarray:
    """Union of normalised [x, y, w, h] boxes rasterised at size x size (bool)."""
    g = np.zeros((size, size), dtype=bool)
    for b in boxes:
        x, y, w, h = (float(v) * size for v in b[:4])
        x0, x1 = int(x), int(x + w)
        y0, y1 = int(y), int(y + h)
        x0, x1 = min(max(x0, 0), size), min(max(x1, 0), size)
        y0, y1 = min(max(y0, 0), size), min(max(y1, 0), size)
        g[y0:y1, x0:x1] = True
    return g


def iou(pred: np.ndarray, gt: np.ndarray, threshold: float) -> float | None:
    """|P and G| / (|G| + |P and not G|) with P = pred > threshold; None when G is empty."""
    n_gt = int(gt.sum())
    if n_gt == 0:
        return None
    p = pred > threshold
    inter = int(np.count_nonzero(p & gt))
    extra = int(np.count_nonzero(p & ~gt))
    return inter / (n_gt + extra)


def relative_iou(map14: np.ndarray, boxes, fraction: float) -> float | None:
    """IoU of a low-resolution map thresholded at fraction * max of its 224 x 224 upsampling."""
    up = upsample(map14)
    return iou(up, box_mask(boxes), fraction * float(up.max()))


# ---------------------------------------------------------------- curves

def success_curve(ious) -> list[float]:
    """success(t) for t in THRESHOLDS: share of scores >= t (empty input -> zeros)."""
    s = np.asarray([v for v in ious if v is not None], dtype=np.float64)
    if s.size == 0:
        return [0.0] * len(THRESHOLDS)
    return [float(np.count_nonzero(s >= t)) / s.size for t in THRESHOLDS]


def auc(curve) -> float:
    """Trapezoid area under success(t) over THRESHOLDS (sklearn.metrics.auc / numpy.trapz)."""
    y = np.asarray(curve, dtype=np.float64)
    x = np.asarray(THRESHOLDS, dtype=np.float64)
    return float((np.diff(x) * (y[1:] + y[:-1]) / 2.0).sum())


def summarize_solo(ious) -> dict:
    ious = [v for v in ious if v is not None]
    curve = success_curve(ious)
    return {"iou@0.5": curve[T_IOU50], "auc": auc(curve), "n": len(ious),
            "mean_iou": float(np.mean(ious)) if ious else 0.0}


def summarize_cocktail(cious, nsa_all=(), nsa_visible=()) -> dict:
    cious = [v for v in cious if v is not None]
    curve = success_curve(cious)
    out = {"ciou@0.3": curve[T_CIOU30], "auc": auc(curve), "n": len(cious),
           "mean_ciou": float(np.mean(cious)) if cious else 0.0}
    a = [v for v in nsa_all if v is not None]
    v = [x for x in nsa_visible if x is not None]
    out["nsa"] = float(np.mean(a)) if a else None
    out["nsa_visible"] = float(np.mean(v)) if v else None
    return out


# ---------------------------------------------------------------- cocktail scenes

def class_probability_maps(cluster_maps: np.ndarray, cluster_to_class, num_classes: int) -> np.ndarray:
    """(C, h, w) maps in cluster order -> (K, h, w) maps in class order (sum over clusters)."""
    cluster_maps = np.asarray(cluster_maps, dtype=np.float64)
    out = np.zeros((num_classes,) + cluster_maps.shape[1:], dtype=np.float64)
    for j, c in enumerate(cluster_to_class):
        if 0 <= int(c) < num_classes:
            out[int(c)] += cluster_maps[j]
    return out


def cocktail_image(cluster_maps: np.ndarray, objects, cluster_to_class, num_classes: int,
                   fraction: float = SYNTHETIC_FRACTION, nsa_threshold: float = NSA_THRESHOLD) -> dict:
    """Scores of one cocktail-party image.

    cluster_maps: (C, h, w) class probabilities in cluster order; objects: iterable of
    {"class_id": k, "box": [x, y, w, h], "sounding": bool}. Returns {"ciou", "nsa", "nsa_visible",
    "per_class": {class: iou}} with None where a value is undefined.
    """
    maps = upsample(class_probability_maps(cluster_maps, cluster_to_class, num_classes))
    sounding: dict[int, list] = {}
    visible: set[int] = set()
    for o in objects:
        c = int(o["class_id"])
        visible.add(c)
        if o.get("sounding", True):
            sounding.setdefault(c, []).append(o["box"])
    per_class = {}
    for c, boxes in sorted(sounding.items()):
        m = maps[c]
        per_class[c] = iou(m, box_mask(boxes), fraction * float(m.max()))
    scores = [v for v in per_class.values() if v is not None]
    ciou = float(np.mean(scores)) if scores else None
    npix = maps.shape[-1] * maps.shape[-2]

    def nsa(classes):
        vals = [np.count_nonzero(maps[c] <= nsa_threshold) / npix for c in sorted(classes)]
        return float(np.mean(vals)) if vals else None

    silent_all = set(range(num_classes)) - set(sounding)
    silent_visible = visible - set(sounding)
    return {"ciou": ciou, "nsa": nsa(silent_all), "nsa_visible": nsa(silent_visible), "per_class": per_class}


def loc_only_image(l_map: np.ndarray, objects, fraction: float = SYNTHETIC_FRACTION,
                   nsa_threshold: float = NSA_THRESHOLD, num_classes: int | None = None) -> dict:
    """Stage-1 baseline on a cocktail scene: the class-agnostic sounding map l stands in for every
    class map (so silent classes share it too)."""
    l_map = np.asarray(l_map, dtype=np.float64).reshape(l_map.shape[-2:])
    k = num_classes if num_classes is not None else 1 + max(int(o["class_id"]) for o in objects)
    maps = np.broadcast_to(l_map, (k,) + l_map.shape)
    return cocktail_image(maps, objects, list(range(k)), k, fraction, nsa_threshold)


# ---------------------------------------------------------------- clusters -> classes

def cooccurrence(cluster_ids, class_ids, n_clusters: int, n_classes: int) -> np.ndarray:
    m = np.zeros((n_clusters, n_classes), dtype=np.int64)
    for k, c in zip(cluster_ids, class_ids):
        m[int(k), int(c)] += 1
    return m


def hungarian_cluster_to_class(cluster_ids, class_ids, n_clusters: int, n_classes: int) -> list[int]:
    """cluster index -> class index maximising co-occurrence (one-to-one when counts are equal)."""
    from scipy.optimize import linear_sum_assignment

    counts = cooccurrence(cluster_ids, class_ids, n_clusters, n_classes)
    mapping = [-1] * n_clusters
    left = list(range(n_clusters))
    while left:
        rows, cols = linear_sum_assignment(counts[left], maximize=True)
        for r, c in zip(rows, cols):
            mapping[left[r]] = int(c)
        left = [j for j in range(n_clusters) if mapping[j] < 0]
    return mapping
