"""dsol.audio: the trainer's numpy log-mel equals librosa's definition (SPEC §3)."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tools"))

from dsol import audio  # noqa: E402

FIXTURES = ROOT / "Tests/SoundlocFeaturesTests/Fixtures/logmel"


def librosa_logmel(y):
    librosa = pytest.importorskip("librosa")
    x = np.zeros(16000, dtype=np.float32)
    x[:min(16000, len(y))] = y[:16000]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two mel bands are empty by design
        s = np.abs(librosa.stft(x, n_fft=160, hop_length=80, win_length=160, window="hann", center=True,
                                pad_mode="constant"))
        mel = librosa.feature.melspectrogram(S=s, sr=16000, n_mels=64, fmax=8000)
    return librosa.power_to_db(mel, ref=1.0, top_db=80.0).T


def test_filterbank_equals_librosa():
    librosa = pytest.importorskip("librosa")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = librosa.filters.mel(sr=16000, n_fft=160, n_mels=64, fmax=8000)
    fb = audio.mel_filterbank()
    assert fb.dtype == np.float32 and fb.shape == (64, 81)
    np.testing.assert_array_equal(fb, ref)
    assert (fb.max(axis=1) == 0).sum() == 2  # the two empty bands SPEC §3 keeps


def test_random_inputs_match_librosa():
    rng = np.random.default_rng(1)
    signals = [rng.standard_normal(16000) * a for a in (1e-4, 0.01, 0.3)]
    t = np.arange(16000) / 16000
    signals += [np.sin(2 * np.pi * 440 * t) * 0.5, np.zeros(16000), rng.uniform(-1, 1, 9000),  # short clip
                np.clip(3 * np.sin(2 * np.pi * 97 * t), -1, 1), rng.standard_normal(16000) * np.exp(-8 * t)]
    for y in signals:
        y = y.astype(np.float32)
        got = audio.logmel(y)
        assert got.shape == (201, 64) and got.dtype == np.float32
        np.testing.assert_allclose(got, librosa_logmel(y), atol=1e-3, rtol=0)


def test_batched_equals_single_and_short_clips_pad():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 16000)).astype(np.float32) * 0.1
    np.testing.assert_array_equal(audio.logmel_batch(x)[1], audio.logmel(x[1]))
    short = x[0, :12345]
    padded = np.zeros(16000, np.float32)
    padded[:12345] = short
    np.testing.assert_array_equal(audio.logmel(short), audio.logmel(padded))


def test_gain_on_energies_is_exact():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(16000) * 0.05).astype(np.float64)
    e = audio.mel_energies_batch(x[None])[0]
    np.testing.assert_allclose(audio.logmel_from_energies(e, 0.5), audio.logmel(0.5 * x), atol=1e-4)


def test_committed_fixtures():
    wavs = sorted(FIXTURES.glob("*.wav"))
    assert wavs, f"no fixtures in {FIXTURES}"
    for wav in wavs:
        samples, rate = audio.read_wav(wav)
        assert rate == 16000
        got = audio.logmel(samples)
        ref = np.load(wav.with_suffix(".npy"))
        assert np.max(np.abs(got - ref)) <= 0.01, wav.name
