"""Training and evaluation data for DSOL (SPEC §4, §5).

Sources
-------
* The data-set builder's manifest (`Tools/dataset`, format "soundloc-scenes"): scenes with
  `id, split, kind (solo | synthetic | free), image, audio, objects[{class_id, box, sounding}]`,
  paths relative to the manifest's folder.
* An annotation JSON in the real-MUSIC form
  `{"<frame path>": {"bbox": [{"normbox": [x, y, w, h], "category_id": k}, ...]}}`
  (the builder writes the same form under annotations/, with an extra "audio" key and
  "sounding" flags). Each entry becomes one evaluation scene; see `load_annotation`.
* The real MUSIC layout (`load_music`): ROOT/frames/<clip>/<frame>.{jpg,png} and
  ROOT/audio/<clip>.wav. The integer at the end of a frame's file stem is its index; its time is
  index / fps and its audio is the 1 s window centred there (clamped inside the track). A clip's
  class (used only to name clusters and to score, never to train) comes from ROOT/classes.json
  (`{"<clip>": "<class>"}` or the MUSIC `{"videos": {"<class>": [clip, ...]}}` form) or from the
  first path component of <clip> when it is a class name (frames/<class>/<video>/...).

Caching (to spare the two CPU cores)
------------------------------------
`SceneStore` decodes each picture once and keeps the RGB bytes (uint8, original size; ~150 KB
for a 224² scene) in memory, and computes each clip's *linear* mel energies once (201x64
float32, 51 KB; the STFT is most of the audio cost). The energies are also written to
`cache_dir/mel-<hash>.npy`, so a resumed or repeated run skips the STFT. The log, the per-window
80 dB clip and the gain jitter are applied per sample (exact, see dsol.audio). The preprocessed
224² float tensors are not cached: dsol.image.preprocess takes ~6 ms per picture.

Augmentation (training only, each sample seeded from (seed, epoch tag, position) so the result
does not depend on the number of loader workers): horizontal flip (p 0.5), a random crop of
85-100 % of each side then the shared tent resampling to 224 (small crop/scale/aspect jitter),
brightness and saturation factors in [0.7, 1.3] (the authors' ImageEnhance pair), audio gain in
±6 dB. Off unless configured (`augment:` keys of the trainer's config; see Augment), all on the
cached linear mel energies: a random smooth equaliser over the mel bands (`eq_db`, see
eq_curve), a pitch shift approximated by resampling the mel axis (`pitch_semitones`, see
pitch_matrix), additive noise at a random SNR (`noise_p`, `noise_snr_db`, see add_noise) and
SpecAugment time and frequency masks (`time_masks`, `time_mask_frames`, `freq_masks`,
`freq_mask_bands`, see spec_masks). Room reverb needs the waveform: the data-set builder adds it
to training scenes (`dataset.build --reverb P`).
Evaluation inputs are exactly dsol.image.preprocess(rgb) and the SPEC §3 log-mel.

Pairs
-----
`PairDataset` gives (audio of scene i, its own image, the image of another clip): stage 1 on
solo scenes (labels 1 / 0 for the matching BCE) and stage 2 on cocktail scenes (true pair and a
mismatched scene). `ClassifyDataset` gives (image, audio, pseudo-label) for the classification
rounds.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .audio import (FMAX, N_FFT, N_MELS, SAMPLE_RATE, _hz_to_mel, _mel_to_hz, load_clip,
                    logmel_from_energies, mel_energies_batch, mel_filterbank)
from .image import IMAGE_MEAN, IMAGE_STD, preprocess, resize

COCKTAIL_KINDS = ("synthetic", "free", "music_duet")
SOLO_KINDS = ("solo", "music_solo")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class Scene:
    id: str
    split: str
    kind: str
    image: str               # absolute path
    audio: str               # absolute path of a WAV
    audio_start: float = 0.0  # seconds into the WAV
    objects: list = field(default_factory=list)  # [{"class_id", "box", "sounding"}]
    clip: str = ""           # identity for negatives: never pair a scene with its own clip
    label: int = -1          # class of a solo clip (scoring / cluster naming only), -1 unknown

    def __post_init__(self):
        if not self.clip:
            self.clip = self.id


# ---------------------------------------------------------------- loading

def load_manifest(path: str | Path, picture_only_ok: bool = False) -> tuple[list[str], list[Scene]]:
    """(class names, scenes) from the builder's manifest.json. A picture-only set (dataset.portable:
    no sounds) is refused unless picture_only_ok (dsol.pretrain, which reads no audio)."""
    path = Path(path)
    m = json.loads(path.read_text())
    if m.get("picture_only") and not picture_only_ok:
        raise SystemExit(f"{path}: a picture-only data set (dataset.portable, no sounds): it can warm-start "
                         f"the vision trunk (python3 -m dsol.pretrain) but not train or score audio-visual matching")
    root = path.parent
    classes = list(m["classes"])
    scenes = []
    for s in m["scenes"]:
        objs = [{"class_id": int(o["class_id"]), "box": [float(v) for v in o["box"]],
                 "sounding": bool(o.get("sounding", True))} for o in s.get("objects", [])]
        label = objs[0]["class_id"] if s["kind"] == "solo" and objs else -1
        scenes.append(Scene(s["id"], s["split"], s["kind"], str(root / s["image"]), str(root / s["audio"]),
                            0.0, objs, s["id"], label))
    return classes, scenes


def _frame_index(path: str) -> int:
    m = re.search(r"(\d+)(?!.*\d)", Path(path).stem)
    return int(m.group(1)) if m else 0


# The official MUSIC annotations (solotest.json, duettest.json) name classes by AudioSet-instrument ids;
# only these 7 of the 11 classes are annotated.
AUDIOSET_IDS = {1: "cello", 3: "acoustic_guitar", 8: "saxophone", 10: "trumpet", 11: "violin", 12: "flute",
                13: "accordion"}
NUMBERING_FPS = 30  # the authors' frame numbers count frames at 30 per second
_SECOND_DIR = re.compile(r"^frame_(\d+)$")


def second_folder(parts) -> int | None:
    """Index of the authors' frame_SSS folder among a frame path's components (the last one), or None."""
    for i in range(len(parts) - 2, -1, -1):
        if _SECOND_DIR.match(parts[i]):
            return i
    return None


def authors_frame_time(path: str | Path) -> float:
    """Time (s) of <video>/frame_SSS/NNNNN.jpg: NNNNN counts frames at 30 per second, so NNNNN // 30 must
    be SSS; anything else means the frames were cut at another rate, and the annotation times would lie."""
    p = Path(path)
    sec = int(_SECOND_DIR.match(p.parent.name).group(1))
    n = _frame_index(p.name)
    if n // NUMBERING_FPS != sec:
        raise SystemExit(f"{path}: frame {n} lies in second {n // NUMBERING_FPS}, not in its folder frame_{sec:03d}: "
                         f"the authors number frames at {NUMBERING_FPS} per second (was the video cut at another "
                         f"rate? python3 -m dsol.prepare_music numbers every video at {NUMBERING_FPS})")
    return n / NUMBERING_FPS


def _clip_window(wav: str, t: float) -> float:
    """Start of the 1 s window centred at t, clamped inside the track."""
    try:
        with wave.open(wav, "rb") as w:
            dur = w.getnframes() / w.getframerate()
    except (OSError, wave.Error, EOFError):
        dur = 1.0
    return float(min(max(t - 0.5, 0.0), max(dur - 1.0, 0.0)))


def load_annotation(path: str | Path, root: str | Path | None = None, kind: str = "music_duet",
                    split: str = "test", fps: float = 1.0, classes: list[str] | None = None,
                    ids: str = "auto") -> list[Scene]:
    """Evaluation scenes from a real-MUSIC-style annotation JSON.

    Frame keys are resolved against root (default: the JSON's folder, then its parent). Audio:
    the entry's "audio" key when present (the builder's files), else the MUSIC layout: a frame
    <video>/frame_SSS/NNNNN.jpg (the authors') has its time from NNNNN at 30 per second and its sound in
    ROOT/audio/<video>.wav; any other ROOT/frames/<clip>/<frame> has time index / fps and sound
    ROOT/audio/<clip>.wav. category_id: ids "index" = an index into classes (the builder's files),
    "audioset" = the official files' AudioSet-instrument ids (AUDIOSET_IDS), "auto" = index when the
    entries carry "audio", else audioset."""
    path = Path(path)
    ann = json.loads(path.read_text())
    roots = [Path(root)] if root is not None else [path.parent, path.parent.parent]
    classes = list(classes or _music_class_names())
    if ids == "auto":
        ids = "index" if any(isinstance(e, dict) and "audio" in e for e in ann.values()) else "audioset"
    if ids not in ("index", "audioset"):
        raise ValueError(f"ids must be auto, index or audioset, not {ids!r}")

    def class_id(c) -> int:
        if ids == "index":
            return int(c)
        name = AUDIOSET_IDS.get(int(c))
        if name is None or name not in classes:
            raise SystemExit(f"{path}: category_id {c} is not one of the AudioSet-instrument ids of the official "
                             f"annotations ({', '.join(f'{k} {v}' for k, v in AUDIOSET_IDS.items())})")
        return classes.index(name)

    scenes = []
    for key, entry in ann.items():
        base = next((r for r in roots if (r / key).exists()), None)
        if base is None and Path(key).is_absolute() and Path(key).exists():
            base = Path(key).parent
        if base is None:
            raise FileNotFoundError(f"{path}: frame {key} not found under {[str(r) for r in roots]}")
        img = base / key
        objs = [{"class_id": class_id(b["category_id"]), "box": [float(v) for v in b["normbox"]],
                 "sounding": bool(b.get("sounding", True))} for b in entry.get("bbox", [])]
        start = 0.0
        if "audio" in entry:
            wav = str(base / entry["audio"])
            clip = entry["audio"]
        elif second_folder(Path(key).parts) is not None:  # the authors' <video>/frame_SSS/NNNNN.jpg
            kp = Path(key).parts
            j = second_folder(kp)
            vparts = kp[1:j] if kp[0] == "frames" else kp[:j]
            clip = "/".join(vparts)
            # ROOT/audio/<video>.wav beside ROOT/frames, keys relative to either
            found = [w for w in (base / "audio" / f"{clip}.wav", base.parent / "audio" / f"{clip}.wav") if w.exists()]
            if not found:
                raise FileNotFoundError(f"{path}: no sound for {key}: expected audio/{clip}.wav beside the frames "
                                        f"(python3 -m dsol.prepare_music writes it)")
            wav = str(found[0])
            start = _clip_window(wav, authors_frame_time(img))
        else:
            parts = img.parts
            if "frames" in parts:  # ROOT/frames/<clip...>/<frame>: the last "frames" component
                i = len(parts) - 1 - parts[::-1].index("frames")
                mroot = Path(*parts[:i])
                clip = "/".join(parts[i + 1:-1])
            else:  # <base>/<clip...>/<frame> with <base>/audio/<clip>.wav
                mroot = base
                clip = "/".join(Path(key).parts[:-1]) if not Path(key).is_absolute() else img.parent.name
            wav = str(mroot / "audio" / f"{clip}.wav")
            start = _clip_window(wav, _frame_index(img.name) / fps)
        label = objs[0]["class_id"] if kind in SOLO_KINDS and objs else -1
        scenes.append(Scene(str(key), split, kind, str(img), wav, start, objs, clip, label))
    return scenes


def _music_class_names() -> list[str]:
    from .model import MUSIC_CLASSES
    return MUSIC_CLASSES


def _music_classes(root: Path, classes: list[str]) -> dict[str, int]:
    f = root / "classes.json"
    if not f.exists():
        return {}
    data = json.loads(f.read_text())
    out = {}
    if "videos" in data:
        for name, clips in data["videos"].items():
            for c in clips:
                out[str(c)] = classes.index(name)
    else:
        for c, name in data.items():
            out[str(c)] = classes.index(name)
    return out


def load_music(root: str | Path, classes: list[str], kind: str = "music_solo", fps: float = 1.0,
               val_fraction: float = 0.1, seed: int = 0, frames_per_clip: int | None = None,
               exclude: set[str] | None = None) -> list[Scene]:
    """Training/validation scenes from ROOT/frames/<clip>/* + ROOT/audio/<clip>.wav.

    Clips are split train/val by a seeded hash of the clip name; frames listed in `exclude`
    (relative to root, or absolute real paths, e.g. the test annotation's frames) are left out."""
    root = Path(root)
    lookup = _music_classes(root, classes)
    exclude = exclude or set()
    scenes = []
    frames_root = root / "frames"
    for dirpath, _, files in sorted(os.walk(frames_root)):
        imgs = sorted(f for f in files if f.lower().endswith(IMAGE_SUFFIXES))
        if not imgs:
            continue
        clip = Path(dirpath).relative_to(frames_root).as_posix()
        authors = _SECOND_DIR.match(Path(dirpath).name) is not None and Path(dirpath) != frames_root
        if authors:  # <video>/frame_SSS/: one video, its sound in audio/<video>.wav
            clip = Path(dirpath).parent.relative_to(frames_root).as_posix()
        wav = root / "audio" / f"{clip}.wav"
        if not wav.exists():
            continue
        label = lookup.get(clip, -1)
        head = clip.split("/")[0]
        if label < 0 and head in classes:
            label = classes.index(head)
        h = int(hashlib.sha256(f"{seed}:{clip}".encode()).hexdigest()[:8], 16) / 2 ** 32
        split = "val" if h < val_fraction else "train"
        if frames_per_clip:
            step = max(1, len(imgs) // frames_per_clip)
            imgs = imgs[::step][:frames_per_clip]
        for f in imgs:
            rel = (Path(dirpath) / f).relative_to(root).as_posix()
            if rel in exclude or os.path.realpath(root / rel) in exclude:
                continue
            objs = [{"class_id": label, "box": [0.0, 0.0, 1.0, 1.0], "sounding": True}] if label >= 0 else []
            t = authors_frame_time(Path(dirpath) / f) if authors else _frame_index(f) / fps
            start = _clip_window(str(wav), t)
            scenes.append(Scene(rel, split, kind, str(root / rel), str(wav), start, objs, clip, label))
    return scenes


# ---------------------------------------------------------------- storage and caching

def _read_rgb(path) -> np.ndarray:
    """A picture file (path) or encoded picture (bytes) -> uint8 HxWx3."""
    with Image.open(io.BytesIO(path) if isinstance(path, bytes) else path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


class SceneStore:
    """Scenes plus in-memory caches of decoded pictures and linear mel energies.

    `encoded` (one encoded picture per scene) and `mel` (N, 201, 64) come from a training pack
    (dsol.pack): the pictures are then decoded from memory and no audio is read."""

    def __init__(self, scenes: list[Scene], cache_images: bool = True, cache_dir: str | Path | None = None,
                 encoded: list[bytes] | None = None, mel: np.ndarray | None = None):
        self.scenes = list(scenes)
        self.cache_images = cache_images
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._encoded = encoded
        self._rgb: dict[int, np.ndarray] = {}
        self._mel: np.ndarray | None = mel
        if encoded is not None and len(encoded) != len(self.scenes):
            raise ValueError("one encoded picture per scene")
        if mel is not None and mel.shape != (len(self.scenes), 201, 64):
            raise ValueError(f"mel energies {mel.shape} for {len(self.scenes)} scenes")

    def __len__(self) -> int:
        return len(self.scenes)

    def rgb(self, i: int) -> np.ndarray:
        if i in self._rgb:
            return self._rgb[i]
        a = _read_rgb(self._encoded[i] if self._encoded is not None else self.scenes[i].image)
        if self.cache_images:
            self._rgb[i] = a
        return a

    def _mel_key(self) -> str:
        h = hashlib.sha256()
        for s in self.scenes:
            try:
                st = os.stat(s.audio)
                stamp = f"{st.st_size}:{st.st_mtime_ns}"
            except OSError:
                stamp = "?"
            h.update(f"{s.audio}|{s.audio_start:.6f}|{stamp}\n".encode())
        return h.hexdigest()[:20]

    def load_audio(self, progress=None, chunk: int = 64) -> None:
        """Compute (or read from cache_dir) every scene's mel energies."""
        if self._mel is not None:
            return
        path = self.cache_dir / f"mel-{self._mel_key()}.npy" if self.cache_dir else None
        if path is not None and path.exists():
            mel = np.load(path)
            if mel.shape == (len(self.scenes), 201, 64):
                self._mel = mel
                return
        out = np.empty((len(self.scenes), 201, 64), dtype=np.float32)
        for a in range(0, len(self.scenes), chunk):
            idx = range(a, min(a + chunk, len(self.scenes)))
            clips = np.stack([load_clip(self.scenes[i].audio, self.scenes[i].audio_start) for i in idx])
            out[a:a + len(idx)] = mel_energies_batch(clips)
            if progress:
                progress(len(idx))
        self._mel = out
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, out)
            os.replace(tmp, path)

    def mel(self, i: int) -> np.ndarray:
        if self._mel is None:
            self.load_audio()
        return self._mel[i]

    def preload(self, progress=None) -> None:
        self.load_audio(progress)
        if self.cache_images:
            for i in range(len(self.scenes)):
                self.rgb(i)


# ---------------------------------------------------------------- augmentation

@dataclass
class Augment:
    """Training-time jitter. The audio effects after gain_db are off by default, and an effect
    that is off draws nothing from the sample's generator, so configs that leave them out get
    exactly the inputs they got before they existed."""
    flip: float = 0.5
    crop_min: float = 0.85     # each side of the crop is this..1 of the picture's
    brightness: float = 0.3    # factor in 1 ± this
    saturation: float = 0.3
    gain_db: float = 6.0       # audio gain in ± dB (amplitude)
    eq_db: float = 0.0         # random smooth equaliser over the mel bands, peak ± dB (0 = off)
    pitch_semitones: float = 0.0   # pitch shift of up to ± this many semitones, along the mel axis
    noise_p: float = 0.0           # chance of additive noise (white to brown, random colour)
    noise_snr_db: tuple = (5.0, 30.0)  # its signal-to-noise ratio, uniform in this range (dB)
    time_masks: int = 0            # SpecAugment: this many time masks per clip...
    time_mask_frames: int = 20     # ...each 1..this many frames wide (of 201)
    freq_masks: int = 0            # and this many frequency masks...
    freq_mask_bands: int = 8       # ...each 1..this many mel bands wide (of 64)

    def __post_init__(self):
        self.noise_snr_db = tuple(float(v) for v in self.noise_snr_db)
        if len(self.noise_snr_db) != 2 or self.noise_snr_db[0] > self.noise_snr_db[1]:
            raise ValueError(f"augment.noise_snr_db must be [low, high], got {self.noise_snr_db}")
        if not 0.0 <= self.noise_p <= 1.0:
            raise ValueError("augment.noise_p must be within [0, 1]")
        if not 0.0 <= self.pitch_semitones <= 12.0:
            raise ValueError("augment.pitch_semitones must be within [0, 12]")
        if min(self.eq_db, self.time_masks, self.freq_masks) < 0 or \
                not (1 <= self.time_mask_frames <= 201 and 1 <= self.freq_mask_bands <= N_MELS):
            raise ValueError("augment: eq_db and mask counts must be >= 0, mask widths within the "
                             "log-mel's 201 frames and 64 bands")

    @classmethod
    def from_config(cls, cfg: dict | None) -> "Augment | None":
        if cfg is None or cfg is False or (isinstance(cfg, dict) and not cfg.get("enabled", True)):
            return None
        cfg = dict(cfg or {})
        cfg.pop("enabled", None)
        return cls(**cfg)


_MEAN = np.asarray(IMAGE_MEAN, dtype=np.float32)
_STD = np.asarray(IMAGE_STD, dtype=np.float32)
_LUMA = np.asarray([0.299, 0.587, 0.114], dtype=np.float32)


def draw_image(h: int, w: int, rng: np.random.Generator | None, aug: Augment | None) -> tuple:
    """A picture's augmentation, drawn from rng: (y0, crop height, x0, crop width, flip, brightness,
    saturation); without aug the whole picture, unchanged. dsol.device_data applies the same draws."""
    if aug is None or rng is None:
        return 0, h, 0, w, False, 1.0, 1.0
    ch = max(1, int(round(h * rng.uniform(aug.crop_min, 1.0))))
    cw = max(1, int(round(w * rng.uniform(aug.crop_min, 1.0))))
    y0 = int(rng.integers(0, h - ch + 1))
    x0 = int(rng.integers(0, w - cw + 1))
    flip = bool(rng.random() < aug.flip)
    b = float(np.float32(rng.uniform(1 - aug.brightness, 1 + aug.brightness)))
    s = float(np.float32(rng.uniform(1 - aug.saturation, 1 + aug.saturation)))
    return y0, ch, x0, cw, flip, b, s


def image_input(rgb: np.ndarray, rng: np.random.Generator | None = None, aug: Augment | None = None) -> np.ndarray:
    """uint8 HxWx3 -> float32 (3, 224, 224); without aug exactly dsol.image.preprocess."""
    if aug is None or rng is None:
        return preprocess(rgb)
    y0, ch, x0, cw, flip, b, s = draw_image(rgb.shape[0], rgb.shape[1], rng, aug)
    crop = rgb[y0:y0 + ch, x0:x0 + cw]
    if flip:
        crop = crop[:, ::-1]
    x = resize(np.ascontiguousarray(crop)) * np.float32(b)
    gray = (x @ _LUMA)[..., None]
    x = np.clip(gray + (x - gray) * np.float32(s), 0.0, 1.0)
    x = (x - _MEAN) / _STD
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def audio_input(mel: np.ndarray, rng: np.random.Generator | None = None, aug: Augment | None = None) -> np.ndarray:
    """Linear mel energies (201, 64) -> log-mel (1, 201, 64) float32, with the optional audio
    jitter of aug in this order: gain, equaliser, pitch shift, noise, SpecAugment masks."""
    if aug is None or rng is None:
        return logmel_from_energies(mel)[None]
    gain = 1.0
    if aug.gain_db > 0:
        gain = 10.0 ** (rng.uniform(-aug.gain_db, aug.gain_db) / 20.0)
    if aug.eq_db > 0:
        mel = mel * eq_curve(mel.shape[-1], aug.eq_db, rng)
    if aug.pitch_semitones > 0:
        mel = mel @ pitch_matrix(float(rng.uniform(-aug.pitch_semitones, aug.pitch_semitones))).T
    if aug.noise_p > 0 and rng.random() < aug.noise_p:
        mel = add_noise(mel, float(rng.uniform(*aug.noise_snr_db)), rng)
    if aug.time_masks or aug.freq_masks:
        mel = spec_masks(mel, rng, aug.time_masks, aug.time_mask_frames, aug.freq_masks, aug.freq_mask_bands)
    return logmel_from_energies(mel, gain)[None]


def eq_curve(bands: int, peak_db: float, rng: np.random.Generator) -> np.ndarray:
    """Energy factors per mel band of a random smooth equaliser (a tilt plus two slow ripples)
    whose response stays within ± peak_db: a different microphone, room or instrument maker, so
    that the audio net cannot rely on one sample library's spectral envelope."""
    x = np.linspace(-1.0, 1.0, bands)
    a = rng.uniform(-1.0, 1.0, 3)
    ph = rng.uniform(0.0, 2 * np.pi, 2)
    curve = a[0] * x + a[1] * np.cos(np.pi * x + ph[0]) + a[2] * np.cos(2 * np.pi * x + ph[1])
    db = peak_db * curve / max(1.0, float(np.abs(curve).max()))
    return (10.0 ** (db / 10.0)).astype(np.float32)


def mel_centres() -> np.ndarray:
    """Centre frequencies (Hz) of the 64 Slaney mel bands of dsol.audio."""
    return _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(FMAX), N_MELS + 2))[1:-1]


def pitch_matrix(semitones: float) -> np.ndarray:
    """(64, 64) matrix P with energies_shifted = energies @ P.T: a pitch shift by `semitones`
    approximated on the mel energies, each band taking the energy found at its centre frequency
    divided by 2^(semitones/12), interpolated linearly between band centres (clamped at the
    edges). It moves partials to the right bands but keeps the level a band had (a real shift
    would change a tone's level by the ratio of the Slaney band widths above 1 kHz) and cannot
    bring back what the 8 kHz ceiling cut off; resampling the waveform is exact but the trainer
    only caches mel energies."""
    c = mel_centres()
    src = np.clip(c / 2.0 ** (semitones / 12.0), c[0], c[-1])
    hi = np.clip(np.searchsorted(c, src, side="right"), 1, N_MELS - 1)
    lo = hi - 1
    t = (src - c[lo]) / (c[hi] - c[lo])
    m = np.zeros((N_MELS, N_MELS), np.float32)
    rows = np.arange(N_MELS)
    np.add.at(m, (rows, lo), 1.0 - t)
    np.add.at(m, (rows, hi), t)
    return m


def add_noise(mel: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Mel energies of the clip plus stationary noise at snr_db, where the SNR is measured on the
    mel energies: 10 log10(sum E_clip^2 / sum E_noise^2). The noise's spectrum falls as
    f^(-alpha/2) in magnitude with alpha uniform in [0, 2] (white to brown); its STFT magnitudes
    are Rayleigh draws, filtered by the same mel bank. Clip and noise add in power per band
    (sqrt(E_clip^2 + E_noise^2): uncorrelated sources). A silent clip stays silent."""
    noise = noise_energies(mel.shape[0], float(rng.uniform(0.0, 2.0)), rng)
    signal = np.asarray(mel, np.float64)
    ps, pn = np.sum(signal ** 2), np.sum(noise ** 2)
    if ps <= 0 or pn <= 0:
        return mel
    noise *= np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    return np.sqrt(signal ** 2 + noise ** 2).astype(np.float32)


def noise_energies(frames: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """(frames, 64) mel energies of stationary noise whose power falls as f^-alpha (0 white,
    1 pink, 2 brown; flat below 100 Hz), at an arbitrary level: Rayleigh STFT magnitudes (what a
    Gaussian signal gives) through the mel bank."""
    f = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    tilt = (np.maximum(f, 100.0) / 1000.0) ** (-alpha / 2.0)
    return (rng.rayleigh(1.0, (frames, f.size)) * tilt) @ mel_filterbank().T.astype(np.float64)


def spec_masks(mel: np.ndarray, rng: np.random.Generator, time_masks: int, max_frames: int,
               freq_masks: int, max_bands: int) -> np.ndarray:
    """SpecAugment on (frames, bands) mel energies: time_masks runs of 1..max_frames frames and
    freq_masks runs of 1..max_bands bands, each at a uniform position, set to zero energy, which
    the log-mel turns into its floor (the window's peak - 80 dB: what silence gives)."""
    out = np.array(mel, dtype=np.float32, copy=True)
    n_t, n_f = out.shape
    for _ in range(time_masks):
        w = int(rng.integers(1, max_frames + 1))
        a = int(rng.integers(0, n_t - w + 1))
        out[a:a + w] = 0.0
    for _ in range(freq_masks):
        w = int(rng.integers(1, max_bands + 1))
        a = int(rng.integers(0, n_f - w + 1))
        out[:, a:a + w] = 0.0
    return out


def sample_rng(seed: int, tag: tuple, k: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), *[int(t) for t in tag], int(k)]))


# ---------------------------------------------------------------- datasets

class _Tagged(torch.utils.data.Dataset):
    """Datasets whose randomness derives from (seed, tag, position); set_tag per epoch."""

    def __init__(self, store: SceneStore, indices, seed: int, aug: Augment | None):
        self.store, self.indices, self.seed, self.aug = store, list(indices), int(seed), aug
        self.tag: tuple = (0,)

    def set_tag(self, *tag: int) -> None:
        self.tag = tuple(int(t) for t in tag)

    def __len__(self) -> int:
        return len(self.indices)


class PairDataset(_Tagged):
    """(audio_i, image_i, image_j) with j a scene of another clip (negative / mismatched scene).

    negatives=False leaves image_j out (all-pairs matching uses the batch's other pictures); j is
    still drawn, so the positives' augmentation is the same either way."""

    def __init__(self, store, indices, seed, aug, negatives: bool = True):
        super().__init__(store, indices, seed, aug)
        self.negatives = negatives
        clips = {store.scenes[i].clip for i in self.indices}
        if len(clips) < 2:
            raise ValueError("pairing needs scenes from at least two clips")

    def negative(self, k: int, rng: np.random.Generator) -> int:
        clip = self.store.scenes[self.indices[k]].clip
        while True:
            j = self.indices[int(rng.integers(len(self.indices)))]
            if self.store.scenes[j].clip != clip:
                return j

    def __getitem__(self, k: int) -> dict:
        rng = sample_rng(self.seed, self.tag, k)
        i = self.indices[k]
        j = self.negative(k, rng)
        out = {"audio": audio_input(self.store.mel(i), rng, self.aug),
               "pos": image_input(self.store.rgb(i), rng, self.aug),
               "index": i, "neg_index": j}
        if self.negatives:
            out["neg"] = image_input(self.store.rgb(j), rng, self.aug)
        return out


class ClassifyDataset(_Tagged):
    """(image_i, audio_i, pseudo-label_i) for the classification rounds of stage 1."""

    def __init__(self, store, indices, labels, seed, aug):
        super().__init__(store, indices, seed, aug)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __getitem__(self, k: int) -> dict:
        rng = sample_rng(self.seed, self.tag, k)
        i = self.indices[k]
        return {"image": image_input(self.store.rgb(i), rng, self.aug),
                "audio": audio_input(self.store.mel(i), rng, self.aug),
                "label": self.labels[k], "index": i}


class PlainDataset(_Tagged):
    """Unaugmented (image, audio) of scenes: feature extraction and evaluation."""

    def __init__(self, store, indices):
        super().__init__(store, indices, 0, None)

    def __getitem__(self, k: int) -> dict:
        i = self.indices[k]
        return {"image": image_input(self.store.rgb(i)), "audio": audio_input(self.store.mel(i)), "index": i}


def batch_plan(n: int, batch_size: int, rng: np.random.Generator | None, drop_last: bool,
               limit: int | None = None) -> list[list[int]]:
    """Positions 0..n-1 cut into batches (shuffled when rng is given), at most `limit` batches."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    out = [order[a:a + batch_size].tolist() for a in range(0, n, batch_size)]
    if drop_last and out and len(out[-1]) < batch_size and len(out) > 1:
        out.pop()
    if limit is not None and limit > 0:
        out = out[:limit]
    return out


def loader(dataset, plan: list[list[int]], workers: int = 0):
    """DataLoader over a fixed batch plan (no randomness of its own)."""
    return torch.utils.data.DataLoader(dataset, batch_sampler=plan, num_workers=workers,
                                       persistent_workers=False)
