"""A compact, self-contained training pack of a builder data set, for training on another machine.

The builder's small set is ~600 MB of PNGs and WAVs; a GPU machine that can only be sent a few tens
of megabytes gets the same scenes as one file instead:

* each picture as a JPEG (quality 80 by default, ~11 KB for a 224² scene; training augments the
  pictures anyway, evaluation still reads the builder's PNGs);
* each clip as its SPEC §3 log-mel, quantised to 8 bits over the 80 dB the log-mel keeps
  (0.31 dB steps, deflated: ~10 KB; `--mel-bits 6`: 1.27 dB steps, ~7 KB), plus its peak in dB. The trainer's mel energies come back as
  10^(dB/10), so `logmel_from_energies` gives the original log-mel to within half a step, with gain
  jitter still exact (a gain shifts the peak and the clip floor together).

    python3 -m dsol.pack --data DATA/manifest.json --out /tmp/small.pack.npz \
        [--cocktail 1200] [--val-per-kind 64] [--quality 80]

`python3 -m dsol.train --data PACK.npz` trains from it (dsol.data.load_pack). Which scenes go in
is decided by the seed, so the same command gives the same pack.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .audio import TOP_DB, load_clip, logmel_batch
from .data import COCKTAIL_KINDS, SOLO_KINDS, Scene, load_manifest
from .progress import Progress

FORMAT = "soundloc-train-pack"
VERSION = 1


def quantise_logmel(db: np.ndarray, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, M) log-mel in dB, each window clipped at its peak - 80 dB -> (uint8 codes, peaks)."""
    levels = (1 << bits) - 1
    peak = db.max(axis=(1, 2)).astype(np.float32)
    rel = (db - (peak[:, None, None] - TOP_DB)) * (levels / TOP_DB)
    return np.clip(np.rint(rel), 0, levels).astype(np.uint8), peak


def dequantise_energies(codes: np.ndarray, peak: np.ndarray, bits: int = 8) -> np.ndarray:
    """Inverse of quantise_logmel, as the linear mel energies the trainer stores."""
    step = TOP_DB / ((1 << bits) - 1)
    db = codes.astype(np.float64) * step + (peak.astype(np.float64)[:, None, None] - TOP_DB)
    return np.power(10.0, db / 10.0).astype(np.float32)


def choose(scenes: list[Scene], cocktail: int | None, val_per_kind: int, seed: int) -> list[int]:
    """Indices of the scenes to pack: every training solo scene, `cocktail` training cocktail scenes
    (all when None; spread over the kinds in proportion), the first `val_per_kind` validation scenes
    of each kind. The test split stays out: it is scored on the builder's own files."""
    rng = np.random.default_rng([seed, 77])
    out = [i for i, s in enumerate(scenes) if s.split == "train" and s.kind in SOLO_KINDS]
    pool = [i for i, s in enumerate(scenes) if s.split == "train" and s.kind in COCKTAIL_KINDS]
    if cocktail is None or cocktail >= len(pool):
        out += pool
    else:
        by_kind: dict[str, list[int]] = {}
        for i in pool:
            by_kind.setdefault(scenes[i].kind, []).append(i)
        for kind, idx in sorted(by_kind.items()):
            n = int(round(cocktail * len(idx) / len(pool)))
            out += sorted(rng.choice(idx, size=min(n, len(idx)), replace=False).tolist())
    seen: dict[str, int] = {}
    for i, s in enumerate(scenes):
        if s.split == "val" and seen.get(s.kind, 0) < val_per_kind:
            seen[s.kind] = seen.get(s.kind, 0) + 1
            out.append(i)
    return out


def _jpeg(path: str, quality: int) -> bytes:
    with Image.open(path) as im:
        b = io.BytesIO()
        im.convert("RGB").save(b, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
        return b.getvalue()


def write_pack(manifest: str | Path, out: str | Path, cocktail: int | None = None, val_per_kind: int = 64,
               quality: int = 80, seed: int = 0, progress: bool = True, mel_bits: int = 8) -> dict:
    """Write the pack; returns its summary (counts, bytes, seconds)."""
    t0 = time.time()
    manifest = Path(manifest)
    classes, scenes = load_manifest(manifest)
    picked = choose(scenes, cocktail, val_per_kind, seed)
    if not picked:
        raise SystemExit(f"{manifest}: no training scenes to pack")
    jpegs, codes, peaks = [], [], []
    chunk = 64
    bar = Progress(len(picked), "pack", progress)
    for a in range(0, len(picked), chunk):
        idx = picked[a:a + chunk]
        clips = np.stack([load_clip(scenes[i].audio, scenes[i].audio_start) for i in idx])
        q, p = quantise_logmel(logmel_batch(clips), mel_bits)
        codes.append(q)
        peaks.append(p)
        jpegs += [_jpeg(scenes[i].image, quality) for i in idx]
        bar.update(len(idx))
    bar.close()
    offsets = np.cumsum([0] + [len(j) for j in jpegs]).astype(np.int64)
    meta = {
        "format": FORMAT, "version": VERSION, "classes": classes, "jpeg_quality": quality, "mel_bits": mel_bits, "seed": seed,
        "source": str(manifest.resolve()),
        "source_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
        "scenes": [{"id": scenes[i].id, "split": scenes[i].split, "kind": scenes[i].kind,
                    "objects": scenes[i].objects, "label": scenes[i].label} for i in picked],
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                            jpeg=np.frombuffer(b"".join(jpegs), dtype=np.uint8), jpeg_offsets=offsets,
                            logmel=np.concatenate(codes), logmel_peak=np.concatenate(peaks))
    tmp.replace(out)
    kinds: dict[str, int] = {}
    for i in picked:
        key = f"{scenes[i].split}/{scenes[i].kind}"
        kinds[key] = kinds.get(key, 0) + 1
    return {"scenes": len(picked), "counts": kinds, "bytes": out.stat().st_size, "seconds": time.time() - t0}


def read_pack(path: str | Path) -> tuple[list[str], list[Scene], list[bytes], np.ndarray]:
    """(classes, scenes, JPEG bytes per scene, mel energies (N, 201, 64) float32)."""
    path = Path(path)
    with np.load(path) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise SystemExit(f"{path}: not a {FORMAT} v{VERSION} file")
        blob, off = z["jpeg"].tobytes(), z["jpeg_offsets"]
        mel = dequantise_energies(z["logmel"], z["logmel_peak"], int(meta.get("mel_bits", 8)))
    entries = meta["scenes"]
    if len(off) != len(entries) + 1 or mel.shape[0] != len(entries):
        raise SystemExit(f"{path}: {len(entries)} scenes but {len(off) - 1} pictures and {mel.shape[0]} clips")
    jpegs = [blob[off[k]:off[k + 1]] for k in range(len(entries))]
    scenes = [Scene(e["id"], e["split"], e["kind"], f"{path}#{k}", f"{path}#{k}", 0.0, e["objects"], e["id"],
                    int(e.get("label", -1))) for k, e in enumerate(entries)]
    return list(meta["classes"]), scenes, jpegs, mel


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dsol.pack", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the builder's manifest.json")
    ap.add_argument("--out", required=True, help="pack file to write (.npz)")
    ap.add_argument("--cocktail", type=int, help="training cocktail scenes to keep (default: all)")
    ap.add_argument("--val-per-kind", type=int, default=64, help="validation scenes per kind (default 64)")
    ap.add_argument("--quality", type=int, default=80, help="JPEG quality 1-95 (default 80)")
    ap.add_argument("--mel-bits", type=int, default=8, help="bits per log-mel value over its 80 dB (2-8, default 8)")
    ap.add_argument("--seed", type=int, default=0, help="chooses the cocktail subset")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if not 1 <= a.quality <= 95:
        ap.error("--quality must be in 1..95")
    if not 2 <= a.mel_bits <= 8:
        ap.error("--mel-bits must be in 2..8")
    if not Path(a.data).is_file():
        ap.error(f"--data {a.data}: no such manifest")
    info = write_pack(a.data, a.out, a.cocktail, a.val_per_kind, a.quality, a.seed, not a.quiet, a.mel_bits)
    print(f"wrote {a.out}: {info['scenes']} scenes ({', '.join(f'{k} {v}' for k, v in sorted(info['counts'].items()))}), "
          f"{info['bytes'] / 2**20:.1f} MiB in {info['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
