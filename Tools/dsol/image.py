"""Image preprocessing shared by the trainer and the Swift engine (which implements a twin).

Input: RGB uint8 array of shape (H, W, 3), any H, W >= 1. Output: float32 (3, 224, 224), CHW.

Definition (both implementations follow it step by step):

1. x = float32(u8) / 255, computed in float32.
2. Resampling is separable with a tent (triangle) filter. For an axis with ``in_size`` input
   and ``out_size`` output samples, all weight arithmetic in float64:
       scale   = in_size / out_size
       support = max(scale, 1)
       for output index o: c = (o + 0.5) * scale
       raw weight of input index i: w(o, i) = max(0, 1 - |i + 0.5 - c| / support)
       weights are divided by their sum over i (never zero: the nearest input pixel is
       always within 0.5 of c), giving W[o, i].
   Identity when in_size == out_size; 2 -> 1 averages; upsampling is bilinear with the
   edge pixels extended.
3. Horizontal pass first: t[y, ox, ch] = sum_i Wx[ox, i] * x[y, i, ch], accumulated in float64
   and stored as float32. Then the vertical pass: r[oy, ox, ch] = sum_j Wy[oy, j] * t[j, ox, ch],
   accumulated in float64 and stored as float32.
4. Normalisation in float32: (r - mean[ch]) / std[ch] with mean/std rounded to float32 (a true
   division, not a multiplication by the reciprocal).

Summation order is not part of the contract: implementations agree to within one float32 ulp
after each pass (float64 accumulation makes order differences vanish in nearly every pixel).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

IMAGE_SIZE = 224
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


def tent_weights(in_size: int, out_size: int) -> np.ndarray:
    """float64 (out_size, in_size) matrix of normalised tent-filter weights."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"bad sizes {in_size} -> {out_size}")
    scale = in_size / out_size
    support = max(scale, 1.0)
    c = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    i = np.arange(in_size, dtype=np.float64) + 0.5
    w = np.maximum(0.0, 1.0 - np.abs(i[None, :] - c[:, None]) / support)
    return w / w.sum(axis=1, keepdims=True)


def resize(rgb: np.ndarray, out_h: int = IMAGE_SIZE, out_w: int = IMAGE_SIZE) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (out_h, out_w, 3) in [0, 1], per steps 1-3 above."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 HxWx3, got {rgb.dtype} {rgb.shape}")
    h, w, _ = rgb.shape
    x = rgb.astype(np.float32) / np.float32(255)
    # The weight matrices are banded; sparse products keep camera-sized inputs cheap.
    wx = sparse.csr_matrix(tent_weights(w, out_w))
    wy = sparse.csr_matrix(tent_weights(h, out_h))
    xt = x.astype(np.float64).transpose(1, 0, 2).reshape(w, h * 3)
    t = np.asarray(wx @ xt).astype(np.float32).reshape(out_w, h, 3)  # horizontal pass
    tt = t.astype(np.float64).transpose(1, 0, 2).reshape(h, out_w * 3)
    r = np.asarray(wy @ tt).astype(np.float32).reshape(out_h, out_w, 3)  # vertical pass
    return r


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> normalised float32 (3, 224, 224)."""
    r = resize(rgb)
    mean = np.asarray(IMAGE_MEAN, dtype=np.float32)
    std = np.asarray(IMAGE_STD, dtype=np.float32)
    r = (r - mean) / std
    return np.ascontiguousarray(r.transpose(2, 0, 1))
