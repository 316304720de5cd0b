"""Seeded K-means (k-means++ initialisation, several restarts) in numpy, float64.

Used by stage 1 (SPEC §4) on the L2-normalised masked object features; scikit-learn is not a
dependency. Deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np


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
