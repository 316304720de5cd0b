"""Log-mel audio features (SPEC §3) in plain numpy, equal to the librosa definition.

    x (16 000 samples, 16 kHz, float in [-1, 1]; shorter clips are zero-padded at the end)
    -> STFT: n_fft 160, periodic Hann window of 160, hop 80, centred with 80 zeros on both ends
       -> |X|  (81 bins x 201 frames)
    -> Slaney mel filterbank (64 bands, fmin 0, fmax 8000, Slaney area normalisation) on |X|
       (magnitude, not power; two bands are empty because the FFT bins are 100 Hz apart)
    -> 10 * log10(max(1e-10, mel)), clipped per window at (its max - 80 dB)
    -> (201 time frames, 64 mel bands) float32.

That is librosa's melspectrogram(S=|stft|, sr=16000, n_mels=64, fmax=8000) followed by
power_to_db(ref=1.0, top_db=80). librosa is not needed at train time: this module is a few
vectorised numpy operations, with a batched entry point.

The trainer caches `mel_energies` (linear, before the log) per clip, so a gain jitter g is
applied exactly as `logmel_from_energies(g * energies)` (everything before the log is linear
in the samples).
"""

from __future__ import annotations

import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
N_FFT = 160
HOP = 80
N_MELS = 64
FMAX = 8000.0
TOP_DB = 80.0
AMIN = 1e-10
FRAMES = 1 + CLIP_SAMPLES // HOP  # 201
N_BINS = N_FFT // 2 + 1  # 81


# ---------------------------------------------------------------- mel filterbank (librosa.filters.mel)

def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    mel = f / f_sp
    log_part = f >= min_log_hz
    mel = np.where(log_part, min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, mel)
    return mel


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=8)
def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmin: float = 0.0, fmax: float = FMAX) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) triangular Slaney filters with area normalisation, computed in
    float64 and rounded to float32 exactly like librosa.filters.mel (its default dtype)."""
    fftfreqs = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:n_mels] / fdiff[:n_mels, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, None]  # float32 array times float64 vector, in place: stays float32
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=4)
def hann_periodic(n: int = N_FFT) -> np.ndarray:
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
    w.setflags(write=False)
    return w


# ---------------------------------------------------------------- features

def _as_batch(samples: np.ndarray) -> np.ndarray:
    """(N, L) or (L,) float samples -> (N, 16000) float64, truncated or zero-padded at the end."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"expected (N, samples), got {x.shape}")
    out = np.zeros((x.shape[0], CLIP_SAMPLES), dtype=np.float64)
    n = min(CLIP_SAMPLES, x.shape[1])
    out[:, :n] = x[:, :n]
    return out


def mel_energies_batch(samples: np.ndarray) -> np.ndarray:
    """(N, L) samples -> (N, 201, 64) float32 mel energies of the magnitude spectrum (before log)."""
    x = _as_batch(samples)
    pad = N_FFT // 2
    xp = np.pad(x, ((0, 0), (pad, pad)))  # zero padding ('constant' centring)
    idx = np.arange(FRAMES)[:, None] * HOP + np.arange(N_FFT)[None, :]
    frames = xp[:, idx] * hann_periodic()  # (N, 201, 160)
    mag = np.abs(np.fft.rfft(frames, n=N_FFT, axis=-1))  # (N, 201, 81)
    mel = mag @ mel_filterbank().T.astype(np.float64)  # (N, 201, 64)
    return mel.astype(np.float32)


def logmel_from_energies(mel: np.ndarray, gain: float | np.ndarray = 1.0) -> np.ndarray:
    """power_to_db(ref=1, amin=1e-10, top_db=80) per window; mel (..., 201, 64) -> float32.

    `gain` multiplies the samples (so the magnitude spectrum) before the log: scalar or one per
    window (shape (N,))."""
    m = np.asarray(mel, dtype=np.float64)
    g = np.asarray(gain, dtype=np.float64)
    if g.ndim == 1:
        g = g.reshape((-1,) + (1,) * (m.ndim - 1))
    db = 10.0 * np.log10(np.maximum(AMIN, m * g))
    peak = db.max(axis=(-2, -1), keepdims=True)
    return np.maximum(db, peak - TOP_DB).astype(np.float32)


def logmel_batch(samples: np.ndarray) -> np.ndarray:
    """(N, L) float samples -> (N, 201, 64) float32 log-mel (dB), each window on its own."""
    return logmel_from_energies(mel_energies_batch(samples))


def logmel(samples: np.ndarray) -> np.ndarray:
    """One clip (L,) -> (201, 64) float32 log-mel in dB."""
    return logmel_batch(np.asarray(samples)[None])[0]


# ---------------------------------------------------------------- WAV input

def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV -> (mono float32 samples = int16 / 32768, sample rate)."""
    with wave.open(str(path), "rb") as w:
        ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(n)
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit WAV, expected 16-bit PCM")
    pcm = np.frombuffer(raw, dtype="<i2").astype(np.float32).reshape(-1, ch)
    return (pcm.mean(axis=1) / np.float32(32768.0)).astype(np.float32), rate


def resample_to(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling (scipy) to the feature rate; identity when rates agree."""
    if rate == target:
        return samples
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    return resample_poly(samples, target // g, rate // g).astype(np.float32)


def load_clip(path: str | Path, start: float = 0.0, duration: float = 1.0) -> np.ndarray:
    """duration seconds from start of a WAV, at 16 kHz (zero-padded past the end)."""
    x, rate = read_wav(path)
    x = resample_to(x, rate)
    a = int(round(start * SAMPLE_RATE))
    n = int(round(duration * SAMPLE_RATE))
    out = np.zeros(n, dtype=np.float32)
    seg = x[max(0, a):max(0, a) + n]
    out[:len(seg)] = seg
    return out
