"""Deterministic synthetic inputs for tests, references and BatchNorm calibration of random models."""

from __future__ import annotations

import numpy as np

AUDIO_FRAMES = 201
N_MELS = 64


def synthetic_rgb(seed: int, height: int = 257, width: int = 301) -> np.ndarray:
    """uint8 (height, width, 3): smooth colour fields, a few discs and noise, so resampling
    exercises both low and high frequencies."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.empty((height, width, 3))
    for ch in range(3):
        fx, fy, ph = rng.uniform(0.01, 0.08), rng.uniform(0.01, 0.08), rng.uniform(0, 2 * np.pi)
        img[..., ch] = 128 + 90 * np.sin(fx * xx + ph) * np.cos(fy * yy - ph)
    for _ in range(4):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        rad = rng.uniform(0.05, 0.2) * min(height, width)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < rad ** 2
        img[inside] = rng.uniform(0, 255, size=3)
    img += rng.normal(0, 12, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def synthetic_logmel(seed: int, frames: int = AUDIO_FRAMES, n_mels: int = N_MELS) -> np.ndarray:
    """float32 (frames, n_mels) log-mel-like dB values in [-100, 20]: harmonic tracks over a
    noise floor, clipped 80 dB below the peak like power_to_db(top_db=80)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames, dtype=np.float64)[:, None]
    f = np.arange(n_mels, dtype=np.float64)[None, :]
    spec = -70 + 6 * rng.standard_normal((frames, n_mels))
    f0 = rng.uniform(5, 10)
    for h in range(1, 6):
        centre = f0 * h ** 0.8 + 2 * np.sin(t / rng.uniform(15, 40) + h)
        env = 0.6 + 0.4 * np.sin(t / rng.uniform(10, 30) + 2 * h)
        spec += (75 / h) * env * np.exp(-(((f - centre) / 1.5) ** 2))
    spec[:, [1, 3]] = -100.0  # mel bands with no FFT bin come out at the floor
    peak = min(spec.max(), 20.0)
    spec = np.clip(spec, peak - 80, peak)
    return spec.astype(np.float32)
