"""Audio augmentation on the cached mel energies (dsol.data): each effect does what it says, is
a pure function of the sample's generator, and the defaults leave the inputs as they were."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from dsol import audio as AU  # noqa: E402
from dsol.data import (Augment, add_noise, audio_input, eq_curve, mel_centres, noise_energies,  # noqa: E402
                       pitch_matrix, spec_masks)

T = np.arange(AU.CLIP_SAMPLES) / AU.SAMPLE_RATE
NEW_KEYS = {"pitch_semitones": 2.0, "noise_p": 1.0, "time_masks": 2, "freq_masks": 2}


def tone(freq: float, level: float = 0.3) -> np.ndarray:
    return level * np.sin(2 * np.pi * freq * T)


def music() -> np.ndarray:
    """A few partials with a slow swell: something with structure in time and frequency."""
    return (tone(440) + 0.5 * tone(1320) + 0.3 * tone(2900)) * (0.4 + 0.6 * np.sin(np.pi * T) ** 2)


def energies(x) -> np.ndarray:
    return AU.mel_energies_batch(x)[0]


def centroid(mel: np.ndarray) -> float:
    """Energy-weighted band index around the peak band of the time-averaged energies."""
    p = mel.mean(axis=0)
    k = int(p.argmax())
    lo, hi = max(k - 3, 0), min(k + 4, p.size)
    return float((np.arange(lo, hi) * p[lo:hi]).sum() / p[lo:hi].sum())


def test_defaults_leave_inputs_unchanged():
    mel = energies(music())
    old = Augment(gain_db=6.0, eq_db=0.0)  # what configs without the new keys get
    for seed in range(3):
        x = audio_input(mel, np.random.default_rng(seed), Augment())
        # the defaults draw exactly the gain and nothing else: the same as before the new effects
        rng = np.random.default_rng(seed)
        gain = 10.0 ** (rng.uniform(-6, 6) / 20.0)
        np.testing.assert_array_equal(x, AU.logmel_from_energies(mel, gain)[None])
        np.testing.assert_array_equal(x, audio_input(mel, np.random.default_rng(seed), old))
    np.testing.assert_array_equal(audio_input(mel), AU.logmel(music())[None])
    # an effect that is off draws nothing: the generator is where the gain left it
    rng = np.random.default_rng(4)
    audio_input(mel, rng, Augment())
    ref = np.random.default_rng(4)
    ref.uniform()
    assert rng.uniform() == ref.uniform()


def test_every_effect_is_seeded_and_changes_the_input():
    mel = energies(music())
    plain = audio_input(mel, np.random.default_rng(1), Augment(gain_db=0.0))
    for key, value in {**NEW_KEYS, "eq_db": 12.0}.items():
        aug = Augment(gain_db=0.0, **{key: value})
        a = audio_input(mel, np.random.default_rng(1), aug)
        b = audio_input(mel, np.random.default_rng(1), aug)
        c = audio_input(mel, np.random.default_rng(2), aug)
        np.testing.assert_array_equal(a, b)
        assert a.shape == (1, 201, 64) and a.dtype == np.float32
        assert not np.array_equal(a, plain), key
        assert not np.array_equal(a, c), key


def test_eq_is_bounded_by_its_peak():
    mel = energies(music())
    base = AU.logmel_from_energies(mel)
    worst = 0.0
    for seed in range(40):
        f = eq_curve(64, 12.0, np.random.default_rng(seed))
        db = 10 * np.log10(f)
        assert np.abs(db).max() <= 12.0 + 1e-4
        worst = max(worst, float(np.abs(db).max()))
        x = audio_input(mel, np.random.default_rng(seed), Augment(gain_db=0.0, eq_db=12.0))[0]
        keep = base > base.max() - 60  # away from the 80 dB floor the log-mel moves by the EQ alone
        assert np.abs(x - base)[keep].max() <= 12.0 + 1e-3
    assert worst > 11.0  # and it does use the range


@pytest.mark.parametrize("freq", [1500.0, 2200.0, 4000.0])
@pytest.mark.parametrize("semitones", [-2.0, 2.0])
def test_pitch_shift_moves_a_tone_by_the_expected_bands(freq, semitones):
    mel = energies(tone(freq))
    shifted = mel @ pitch_matrix(semitones).T
    real = energies(tone(freq * 2 ** (semitones / 12)))
    assert abs(centroid(shifted) - centroid(real)) < 0.3
    # the expected distance in bands from the mel scale: log-spaced above 1 kHz
    c = mel_centres()
    expect = np.interp(freq * 2 ** (semitones / 12), c, np.arange(64)) - np.interp(freq, c, np.arange(64))
    assert abs((centroid(shifted) - centroid(mel)) - expect) < 0.3
    assert abs(expect) > 2.0


def test_pitch_matrix_identity_and_range():
    np.testing.assert_allclose(pitch_matrix(0.0), np.eye(64), atol=1e-6)
    for s in (-2.0, 0.7, 2.0):
        m = pitch_matrix(s)
        assert m.min() >= 0 and np.allclose(m.sum(axis=1), 1.0)  # interpolation weights
    x = audio_input(energies(tone(3000)), np.random.default_rng(0), Augment(gain_db=0.0, pitch_semitones=2.0))
    assert x.shape == (1, 201, 64)


def test_noise_respects_the_snr():
    mel = energies(music()).astype(np.float64)
    for snr in (0.0, 10.0, 25.0):
        out = add_noise(mel.astype(np.float32), snr, np.random.default_rng(3)).astype(np.float64)
        noise2 = np.maximum(out ** 2 - mel ** 2, 0.0)
        got = 10 * np.log10((mel ** 2).sum() / noise2.sum())
        assert abs(got - snr) < 0.05, (snr, got)
        np.testing.assert_array_equal(out, add_noise(mel.astype(np.float32), snr, np.random.default_rng(3)))
    silent = np.zeros((201, 64), np.float32)
    np.testing.assert_array_equal(add_noise(silent, 10.0, np.random.default_rng(0)), silent)
    # the SNR range of the config is honoured: lower SNR, more change
    x = audio_input(mel, np.random.default_rng(5), Augment(gain_db=0.0, noise_p=1.0, noise_snr_db=(0.0, 0.0)))
    y = audio_input(mel, np.random.default_rng(5), Augment(gain_db=0.0, noise_p=1.0, noise_snr_db=(30.0, 30.0)))
    base = AU.logmel_from_energies(mel)[None]
    assert np.abs(x - base).mean() > 1.5 * np.abs(y - base).mean()
    assert np.array_equal(audio_input(mel, np.random.default_rng(5), Augment(gain_db=0.0, noise_p=0.0)), base)


def test_noise_model_matches_real_white_noise():
    """The synthetic white noise has the band shape of real white noise, and adding it in power
    per band is what adding it to the waveform gives."""
    rng = np.random.default_rng(0)
    real = energies(0.05 * rng.standard_normal(AU.CLIP_SAMPLES)).astype(np.float64)
    synth = noise_energies(201, 0.0, np.random.default_rng(1))
    used = real.mean(axis=0) > 0  # the filterbank's two empty bands stay empty in both
    assert np.array_equal(used, synth.mean(axis=0) > 0)
    ratio_db = 10 * np.log10(real.mean(axis=0)[used] / synth.mean(axis=0)[used])
    assert ratio_db.std() < 0.5
    noise = 0.03 * np.random.default_rng(2).standard_normal(AU.CLIP_SAMPLES)
    es, en, both = energies(music()), energies(noise), energies(music() + noise)
    approx = np.sqrt(es.astype(np.float64) ** 2 + en.astype(np.float64) ** 2)
    assert np.abs(AU.logmel_from_energies(approx) - AU.logmel_from_energies(both)).mean() < 0.5


def test_spec_masks_set_bands_of_the_drawn_width_to_the_floor():
    mel = energies(music())
    base = AU.logmel_from_energies(mel)
    empty = AU.mel_filterbank().sum(axis=1) == 0  # two bands no FFT bin reaches
    widths = []
    for seed in range(30):
        x = audio_input(mel, np.random.default_rng(seed), Augment(gain_db=0.0, freq_masks=1, freq_mask_bands=8))[0]
        r = np.random.default_rng(seed)  # the mask's draws are the only ones this Augment makes
        w = int(r.integers(1, 9))
        a = int(r.integers(0, 64 - w + 1))
        widths.append(w)
        floor = x.max() - AU.TOP_DB
        at_floor = np.all(x == floor, axis=0)
        assert at_floor[a:a + w].all()
        # the run at the floor is exactly the mask (its neighbours are not, unless empty bands)
        for k in (a - 1, a + w):
            if 0 <= k < 64 and not empty[k]:
                assert not at_floor[k]
        # everything above the floor outside the mask is untouched
        out = np.ones(64, bool)
        out[a:a + w] = False
        keep = x[:, out] > floor
        np.testing.assert_array_equal(x[:, out][keep], base[:, out][keep])
    assert min(widths) >= 1 and max(widths) == 8
    t = spec_masks(mel, np.random.default_rng(0), 3, 20, 0, 8)
    r = np.random.default_rng(0)
    zero = np.zeros(201, bool)
    for _ in range(3):
        w = int(r.integers(1, 21))
        a = int(r.integers(0, 201 - w + 1))
        zero[a:a + w] = True
    assert np.all(t[zero] == 0) and np.array_equal(t[~zero], mel[~zero])


def test_augment_options_are_checked():
    with pytest.raises(ValueError):
        Augment(noise_snr_db=(20.0, 10.0))
    with pytest.raises(ValueError):
        Augment(noise_p=1.5)
    with pytest.raises(ValueError):
        Augment(freq_mask_bands=0)
    a = Augment.from_config({"enabled": True, "noise_snr_db": [0, 12], "pitch_semitones": 2})
    assert a.noise_snr_db == (0.0, 12.0) and a.pitch_semitones == 2
