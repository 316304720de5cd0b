"""Stage 1's pseudo-labels (SPEC §4): masked object features, seeded K-means, and NMI to score them.

K-means (k-means++ initialisation, several restarts) runs in numpy, float64, on the L2-normalised
masked object features; scikit-learn is not a dependency. Deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def _sq_dists(x: np.ndarray, centers: np.ndarray, x_sq: np.ndarray) -> np.ndarray:
    d = x_sq[:, None] - 2.0 * (x @ centers.T) + (centers * centers).sum(1)[None, :]
    return np.maximum(d, 0.0)


def kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator, x_sq: np.ndarray) -> np.ndarray:
    """Greedy k-means++ seeding (2 + log k candidates per step, the usual variant)."""
    n = x.shape[0]
    trials = 2 + int(np.log(k))
    centers = np.empty((k, x.shape[1]))
    centers[0] = x[rng.integers(n)]
    closest = _sq_dists(x, centers[:1], x_sq)[:, 0]
    for c in range(1, k):
        total = closest.sum()
        if total <= 0:  # all points coincide with chosen centres
            centers[c] = x[rng.integers(n)]
            continue
        cand = np.searchsorted(np.cumsum(closest), rng.random(trials) * total)
        cand = np.minimum(cand, n - 1)
        d = np.minimum(closest[None, :], _sq_dists(x, x[cand], x_sq).T)
        best = int(np.argmin(d.sum(1)))
        centers[c] = x[cand[best]]
        closest = d[best]
    return centers


def lloyd(x: np.ndarray, centers: np.ndarray, x_sq: np.ndarray, max_iter: int = 300,
          tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray, float]:
    k = centers.shape[0]
    labels = np.full(x.shape[0], -1)
    for _ in range(max_iter):
        d = _sq_dists(x, centers, x_sq)
        new = np.argmin(d, axis=1)
        counts = np.bincount(new, minlength=k)
        for j in np.nonzero(counts == 0)[0]:  # empty cluster: take the worst-fitting point
            far = int(np.argmax(d[np.arange(len(new)), new]))
            new[far] = j
            d[far, :] = 0.0
            counts = np.bincount(new, minlength=k)
        moved = np.zeros_like(centers)
        np.add.at(moved, new, x)
        moved /= np.maximum(counts, 1)[:, None]
        shift = float(((moved - centers) ** 2).sum())
        centers = moved
        if np.array_equal(new, labels) or shift <= tol:
            labels = new
            break
        labels = new
    d = _sq_dists(x, centers, x_sq)
    labels = np.argmin(d, axis=1)
    inertia = float(d[np.arange(len(labels)), labels].sum())
    return labels, centers, inertia


def kmeans(x: np.ndarray, k: int, seed: int = 0, n_init: int = 10,
           max_iter: int = 300) -> tuple[np.ndarray, np.ndarray, float]:
    """Best of n_init k-means++ / Lloyd runs: (labels (N,), centres (k, D), inertia)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < k:
        raise ValueError(f"{x.shape[0]} points for {k} clusters")
    rng = np.random.default_rng(seed)
    x_sq = (x * x).sum(1)
    best = None
    for _ in range(max(1, n_init)):
        c0 = kmeans_pp(x, k, rng, x_sq)
        res = lloyd(x, c0, x_sq, max_iter)
        if best is None or res[2] < best[2]:
            best = res
    return best


def nmi(a, b) -> float:
    """Normalised mutual information (arithmetic mean normalisation, as scikit-learn)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.size == 0:
        return 0.0
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    c = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(c, (ai, bi), 1)
    p = c / c.sum()
    pa, pb = p.sum(1), p.sum(0)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / (pa[:, None] * pb[None, :])[nz])).sum())
    ha = -float((pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = -float((pb[pb > 0] * np.log(pb[pb > 0])).sum())
    if ha + hb == 0:
        return 1.0
    return float(mi / ((ha + hb) / 2)) if mi > 0 else 0.0


def dilate4(mask: torch.Tensor) -> torch.Tensor:
    """Grow a (N, 1, H, W) {0,1} mask by one cell to its 4 neighbours (borders included)."""
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]], dtype=mask.dtype,
                     device=mask.device).view(1, 1, 3, 3)
    return (F.conv2d(mask, k, padding=1) > 0).to(mask.dtype)


def object_features(fv: torch.Tensor, l: torch.Tensor, threshold: float = 0.05,
                    relative: float | None = None) -> torch.Tensor:
    """Masked object feature o (N, D) of features fv (N, D, H, W) under sounding maps l (N, 1, H, W).
    The authors' mask (relative None): l > threshold grown by one cell, o = mean over all cells.
    relative r: l >= r * max(l) of each picture, o = mean over the masked cells. A stage-1 map
    trained from scratch is nearly flat (here l > 0.05 covered every cell), so the authors' o
    becomes the whole picture's mean and K-means clusters the background photos; the cells
    nearest the maximum keep the sounding object (cluster NMI 0.23 with r = 0.95 against 0.05,
    measured on a width-32 model and 800 training solo scenes)."""
    if relative is None:
        return (fv * dilate4((l > threshold).to(fv.dtype))).mean(dim=(2, 3))
    mask = (l >= float(relative) * torch.amax(l, dim=(2, 3), keepdim=True)).to(fv.dtype)
    return (fv * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3)).clamp_min(1.0)
