#!/usr/bin/env python3
"""Regenerates the log-mel reference fixtures used by the Swift tests (SoundlocFeaturesTests).

Each fixture is a 16-bit mono 16 kHz WAV plus the librosa log-mel of exactly those samples
(SPEC §3: melspectrogram(S=|stft|, sr=16000, n_mels=64, fmax=8000), power_to_db(ref=1, top_db=80)),
stored as float32 .npy in time-major (201, 64) layout. Clips shorter than one second are zero-padded
at the end before the transform, as the appliance does.

    python3 Tools/make_logmel_fixtures.py            # rewrite the fixtures
    python3 Tools/make_logmel_fixtures.py --check    # recompute and compare with the committed ones
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import warnings

import numpy as np

# Two of the 64 bands are narrower than the 100 Hz bin spacing and stay empty by design (SPEC §3).
warnings.filterwarnings("ignore", message="Empty filters detected")

SR = 16000
FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "Tests/SoundlocFeaturesTests/Fixtures/logmel"
QABCS_VIOLIN = "usr/share/qabcs/abcs/all/noises/violin.ogg"


def logmel_reference(samples: np.ndarray) -> np.ndarray:
    """librosa's definition on one window; returns (frames, mels) float32."""
    import librosa

    y = np.zeros(SR, dtype=np.float32)
    y[: min(SR, len(samples))] = samples[:SR]
    spectrum = np.abs(librosa.stft(y, n_fft=160, hop_length=80, win_length=160, window="hann",
                                   center=True, pad_mode="constant"))
    mel = librosa.feature.melspectrogram(S=spectrum, sr=SR, n_mels=64, fmax=8000)
    return np.ascontiguousarray(librosa.power_to_db(mel, ref=1.0, top_db=80.0).T, dtype=np.float32)


def quantize(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def violin_recording() -> tuple[np.ndarray, str]:
    """One second of a real violin from Debian's qabcs-data (GPL-3+), resampled to 16 kHz."""
    import librosa
    import soundfile

    installed = pathlib.Path("/") / QABCS_VIOLIN
    with tempfile.TemporaryDirectory() as tmp:
        path = installed
        if not installed.exists():
            subprocess.run(["apt-get", "download", "qabcs-data"], cwd=tmp, check=True, capture_output=True)
            deb = next(pathlib.Path(tmp).glob("qabcs-data_*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
            path = pathlib.Path(tmp) / QABCS_VIOLIN
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = librosa.resample(audio.mean(axis=1), orig_sr=rate, target_sr=SR)
    start = int(0.25 * SR)  # skip the bow's attack so the window is mostly sustained tone
    return mono[start:start + SR], "qabcs-data all/noises/violin.ogg (GPL-3+), 0.25-1.25 s, resampled to 16 kHz"


def signals() -> dict[str, tuple[np.ndarray, str]]:
    rng = np.random.default_rng(20201)
    t = np.arange(SR) / SR
    f0, f1 = 40.0, 7900.0
    chirp = 0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) / 2 * t ** 2))
    half = np.arange(SR // 2) / SR
    return {
        "white_noise": (rng.uniform(-0.3, 0.3, SR), "uniform white noise, amplitude 0.3, seed 20201"),
        "chirp": (chirp, "linear chirp 40 Hz to 7.9 kHz over 1 s, amplitude 0.5"),
        "violin": violin_recording(),
        "silence": (np.zeros(SR), "all zeros"),
        "clipping": (np.clip(4.0 * np.sin(2 * np.pi * 441.0 * t), -1.0, 1.0), "441 Hz sine at 4x full scale, clipped"),
        "half_second": (0.4 * np.sin(2 * np.pi * 660.0 * half) * np.exp(-3 * half),
                        "0.5 s decaying 660 Hz tone; zero-padded to 1 s"),
    }


def write_wav(path: pathlib.Path, pcm: np.ndarray) -> None:
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SR)
        out.writeframes(pcm.astype("<i2").tobytes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed fixtures instead of writing")
    parser.add_argument("--tolerance-db", type=float, default=1e-3)
    args = parser.parse_args()
    import librosa

    if args.check:
        worst = 0.0
        for wav in sorted(FIXTURES.glob("*.wav")):
            import wave

            with wave.open(str(wav)) as handle:
                pcm = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
            expected = np.load(wav.with_suffix(".npy"))
            actual = logmel_reference(pcm.astype(np.float32) / 32768.0)
            error = float(np.max(np.abs(actual - expected)))
            worst = max(worst, error)
            print(f"{wav.stem:12s} max |librosa - fixture| = {error:.2e} dB")
        print(f"worst {worst:.2e} dB (tolerance {args.tolerance_db} dB)")
        return 0 if worst <= args.tolerance_db else 1

    FIXTURES.mkdir(parents=True, exist_ok=True)
    index = {"librosa": librosa.__version__, "definition": "SPEC §3", "layout": "(201 frames, 64 mels) float32", "clips": {}}
    for name, (signal, description) in signals().items():
        pcm = quantize(np.asarray(signal, dtype=np.float64))
        write_wav(FIXTURES / f"{name}.wav", pcm)
        reference = logmel_reference(pcm.astype(np.float32) / 32768.0)
        np.save(FIXTURES / f"{name}.npy", reference)
        index["clips"][name] = {"samples": int(len(pcm)), "description": description,
                                "min_db": float(reference.min()), "max_db": float(reference.max())}
        print(f"{name:12s} {len(pcm):6d} samples  {reference.min():8.2f} .. {reference.max():7.2f} dB")
    (FIXTURES / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
