"""Training batches built on the training device: data resident there, augmentation there.

On a GPU the CPU-side pipeline of dsol.data (decode, tent-resample and colour-jitter every picture
in Python, then copy it over) keeps the device idle most of the time. With `speed.device_data` the
trainer instead uploads every picture of a split once, as uint8 (3, H, W), and every clip's linear
mel energies once, and builds each batch on the device:

* The random choices (negative scene, crop, flip, brightness, saturation, gain, equaliser) are drawn
  per sample from the same seeded generator and in the same order as dsol.data's datasets, so a
  batch uses the same scenes and the same augmentation parameters on either path; only a few numbers
  per sample cross from host to device.
* The crop and resize is the same tent filter as dsol.image.resize, applied as two batched matrix
  products with per-sample weight matrices (the crop offset and the flip live in the matrix), then
  the colour jitter, clip and normalisation as in dsol.data.image_input.
* The log-mel is dsol.audio.logmel_from_energies (gain, log, per-window 80 dB floor) in float32.
  With pitch shift, noise or SpecAugment masks on, each clip's log-mel is instead computed on the
  host by dsol.data.audio_input (exact, at a CPU cost per sample) and uploaded.

Without augmentation a batch equals dsol.data's to float rounding (the tests compare them). The
datasets of dsol.data are reused for what they decide (indices, negatives, labels, seeds), and
`device_loader` replaces `dsol.data.loader` for them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .audio import AMIN, TOP_DB
from .data import (Augment, ClassifyDataset, PairDataset, PlainDataset, SceneStore, audio_input, draw_image,
                   eq_curve, sample_rng)
from .image import IMAGE_MEAN, IMAGE_SIZE, IMAGE_STD, tent_weights

_LUMA = (0.299, 0.587, 0.114)
# the Augment fields device batches implement on the device, and those whose audio they compute on the
# host with dsol.data.audio_input (exact, but a CPU cost per sample); any other field must stay off
DEVICE_AUGMENTS = ("flip", "crop_min", "brightness", "saturation", "gain_db", "eq_db")
HOST_AUDIO_AUGMENTS = ("pitch_semitones", "noise_p", "noise_snr_db", "time_masks", "time_mask_frames",
                       "freq_masks", "freq_mask_bands")


def _changed(aug: Augment, names) -> list[str]:
    import dataclasses
    base = Augment()
    return [f.name for f in dataclasses.fields(Augment) if f.name in names and getattr(aug, f.name) != getattr(base, f.name)]


def host_audio(aug: Augment | None) -> bool:
    """Whether the clips' audio effects need dsol.data.audio_input on the host (pitch, noise, masks)."""
    return aug is not None and bool(_changed(aug, HOST_AUDIO_AUGMENTS))


def check_augment(aug: Augment | None) -> None:
    """Refuse augmentation settings that device batches do not implement (they would be ignored)."""
    if aug is None:
        return
    import dataclasses
    known = set(DEVICE_AUGMENTS) | set(HOST_AUDIO_AUGMENTS)
    extra = _changed(aug, {f.name for f in dataclasses.fields(Augment)} - known)
    if extra:
        raise ValueError(f"speed.device_data implements the augmentations {', '.join(sorted(known))}; "
                         f"turn off {', '.join(extra)} or device_data")


class DeviceStore:
    """A split's pictures (uint8 (N, 3, H, W)) and linear mel energies ((N, 201, 64)) on a device."""

    def __init__(self, store: SceneStore, device: torch.device, progress=None, audio: bool = True):
        self.store = store
        self.device = torch.device(device)
        n = len(store)
        first = store.rgb(0) if n else np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
        self.height, self.width = first.shape[:2]
        self.images = torch.empty((n, 3, self.height, self.width), dtype=torch.uint8, device=self.device)
        for i in range(n):
            rgb = store.rgb(i)
            if rgb.shape[:2] != (self.height, self.width):
                raise ValueError(f"{store.scenes[i].image}: {rgb.shape[1]}x{rgb.shape[0]} pixels; device_data "
                                 f"needs every picture of a split at one size ({self.width}x{self.height} here)")
            self.images[i] = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).to(self.device)
            if progress:
                progress(1)
        if audio and n:
            store.load_audio()
            self.mel = torch.from_numpy(np.ascontiguousarray(store._mel)).to(self.device)
        else:  # pictures only (dsol.pretrain)
            self.mel = torch.zeros((0, 201, 64), device=self.device)
        self.mean = torch.tensor(IMAGE_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGE_STD, device=self.device).view(1, 3, 1, 1)
        self.luma = torch.tensor(_LUMA, device=self.device).view(1, 3, 1, 1)


# ---------------------------------------------------------------- augmentation parameters (host)

def draw_audio(bands: int, rng: np.random.Generator | None, aug: Augment | None) -> tuple[float, np.ndarray | None]:
    """(amplitude gain, equaliser energy factors or None) in dsol.data.audio_input's draw order."""
    gain, eq = 1.0, None
    if aug is not None and rng is not None and aug.gain_db > 0:
        gain = 10.0 ** (rng.uniform(-aug.gain_db, aug.gain_db) / 20.0)
    if aug is not None and rng is not None and aug.eq_db > 0:
        eq = eq_curve(bands, aug.eq_db, rng)
    return gain, eq


@lru_cache(maxsize=256)
def _tent(in_size: int, out_size: int) -> np.ndarray:
    return tent_weights(in_size, out_size).astype(np.float32)


def _placed(offset: int, length: int, full: int, out: int, flip: bool) -> np.ndarray:
    """(out, full) tent weights of a crop [offset, offset + length) of an axis of `full` pixels."""
    m = np.zeros((out, full), dtype=np.float32)
    m[:, offset:offset + length] = _tent(length, out)
    return m[::-1] if flip else m


# ---------------------------------------------------------------- batches (device)

def images(ds: DeviceStore, idx: list[int], params: list[tuple]) -> torch.Tensor:
    """Normalised float32 (N, 3, 224, 224) of the given scenes with the given augmentation params."""
    dev = ds.device
    wy = torch.from_numpy(np.stack([_placed(p[0], p[1], ds.height, IMAGE_SIZE, False) for p in params])).to(dev)
    wx = torch.from_numpy(np.stack([_placed(p[2], p[3], ds.width, IMAGE_SIZE, p[4]) for p in params])).to(dev)
    x = ds.images[torch.as_tensor(idx, device=dev)].float() / 255.0
    # rows, then columns: (N,1,224,H) @ (N,3,H,W) @ (N,1,W,224)
    x = torch.matmul(torch.matmul(wy[:, None], x), wx.transpose(1, 2)[:, None])
    jitter = torch.tensor([[p[5], p[6]] for p in params], device=dev, dtype=torch.float32)
    if bool((jitter != 1.0).any()):
        x = x * jitter[:, 0].view(-1, 1, 1, 1)
        gray = (x * ds.luma).sum(dim=1, keepdim=True)
        x = (gray + (x - gray) * jitter[:, 1].view(-1, 1, 1, 1)).clamp(0.0, 1.0)
    return (x - ds.mean) / ds.std


def audio(ds: DeviceStore, idx: list[int], params: list) -> torch.Tensor:
    """Log-mel float32 (N, 1, 201, 64) of the given scenes' clips with the given (gain, eq) params,
    or the host's finished log-mels (arrays from dsol.data.audio_input) uploaded as they are."""
    dev = ds.device
    if params and isinstance(params[0], np.ndarray):
        return torch.from_numpy(np.stack(params)).to(dev)
    m = ds.mel[torch.as_tensor(idx, device=dev)]
    gain = torch.tensor([p[0] for p in params], device=dev, dtype=torch.float32).view(-1, 1, 1)
    m = m * gain
    if any(p[1] is not None for p in params):
        eq = np.stack([p[1] if p[1] is not None else np.ones(m.shape[-1], np.float32) for p in params])
        m = m * torch.from_numpy(eq).to(dev)[:, None, :]
    db = 10.0 * torch.log10(m.clamp_min(AMIN))
    peak = db.amax(dim=(1, 2), keepdim=True)
    return torch.maximum(db, peak - TOP_DB)[:, None]


def device_loader(dataset, plan: list[list[int]], store: DeviceStore):
    """Batches of a dsol.data dataset, built on store's device; the same keys as dsol.data.loader's."""
    aug = getattr(dataset, "aug", None)
    h, w = store.height, store.width
    bands = store.mel.shape[-1]
    on_host = host_audio(aug)

    def draw_clip(i: int, rng):  # the same position in rng's sequence either way
        return audio_input(store.store.mel(i), rng, aug) if on_host else draw_audio(bands, rng, aug)

    for batch in plan:
        if isinstance(dataset, PairDataset):
            idx, neg, a_par, p_par, n_par = [], [], [], [], []
            for k in batch:
                rng = sample_rng(dataset.seed, dataset.tag, k)
                i = dataset.indices[k]
                j = dataset.negative(k, rng)
                idx.append(i)
                neg.append(j)
                a_par.append(draw_clip(i, rng))
                p_par.append(draw_image(h, w, rng, aug))
                if dataset.negatives:
                    n_par.append(draw_image(h, w, rng, aug))
            out = {"audio": audio(store, idx, a_par), "pos": images(store, idx, p_par),
                   "index": torch.tensor(idx), "neg_index": torch.tensor(neg)}
            if dataset.negatives:
                out["neg"] = images(store, neg, n_par)
        elif isinstance(dataset, ClassifyDataset):
            idx, i_par, a_par = [], [], []
            for k in batch:
                rng = sample_rng(dataset.seed, dataset.tag, k)
                idx.append(dataset.indices[k])
                i_par.append(draw_image(h, w, rng, aug))
                a_par.append(draw_clip(dataset.indices[k], rng))
            out = {"image": images(store, idx, i_par), "audio": audio(store, idx, a_par),
                   "label": torch.as_tensor(dataset.labels[batch]), "index": torch.tensor(idx)}
        elif isinstance(dataset, PlainDataset):
            idx = [dataset.indices[k] for k in batch]
            out = {"image": images(store, idx, [draw_image(h, w, None, None)] * len(idx)),
                   "audio": audio(store, idx, [(1.0, None)] * len(idx)), "index": torch.tensor(idx)}
        else:
            raise TypeError(f"no device batches for {type(dataset).__name__}")
        yield out
