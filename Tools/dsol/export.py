"""Model file export per Models/FORMAT.md: fold BatchNorm, write safetensors with metadata + checksum.

CLI (run from Tools/ or with PYTHONPATH=Tools):
    python3 -m dsol.export --checkpoint ckpt.pt --out model.safetensors
    python3 -m dsol.export --random --width 8 --classes 11 --seed 1 --out model.safetensors
    python3 -m dsol.export --verify model.safetensors
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .image import IMAGE_MEAN, IMAGE_SIZE, IMAGE_STD, preprocess
from .model import DSOL, EMBED_DIM
from .synthetic import synthetic_logmel, synthetic_rgb

FORMAT = "soundloc-dsol"
FORMAT_VERSION = "1"
ARCH = "resnet18-s5-dsol"
AUDIO_FEATURES = {"sample_rate": 16000, "n_fft": 160, "hop": 80, "n_mels": 64,
                  "fmax": 8000, "top_db": 80, "frames": 201}

_DTYPES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("uint8"): "U8",
           np.dtype("int8"): "I8", np.dtype("int32"): "I32", np.dtype("int64"): "I64",
           np.dtype("float16"): "F16", np.dtype("int16"): "I16"}
_NP_DTYPES = {v: k for k, v in _DTYPES.items()}


# ---------------------------------------------------------------- safetensors writing / reading

def write_safetensors(path: str | Path, tensors: dict[str, np.ndarray],
                      metadata: dict[str, str] | None = None, checksum: bool = True) -> str:
    """Write a safetensors file; returns the data-section checksum ("sha256:<hex>").

    Tensors are laid out by descending element size, then by name (safetensors' own order),
    so with the 8-byte-padded header every tensor starts aligned to its element size.
    The checksum covers the data section, so it is computed before the header that holds it.
    """
    arrays = {name: np.ascontiguousarray(a) for name, a in tensors.items()}
    for name, a in arrays.items():
        if a.dtype not in _DTYPES:
            raise TypeError(f"{name}: unsupported dtype {a.dtype}")
    order = sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n))
    header: dict[str, object] = {}
    chunks, offset = [], 0
    for name in order:
        raw = arrays[name].astype(arrays[name].dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[arrays[name].dtype], "shape": list(arrays[name].shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    data = b"".join(chunks)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    meta = dict(metadata or {})
    if checksum:
        meta["checksum"] = digest
    if meta:
        header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    hbytes = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        f.write(data)
    return digest


def _split(blob: bytes) -> tuple[dict, bytes]:
    if len(blob) < 8:
        raise ValueError("file too short for a safetensors header")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError("header length runs past the end of the file")
    return json.loads(blob[8:8 + n].decode("utf-8")), blob[8 + n:]


def read_safetensors(path: str | Path, verify: bool = True) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read tensors and metadata; with verify, a present checksum must match the data section."""
    blob = Path(path).read_bytes()
    header, data = _split(blob)
    meta = header.pop("__metadata__", {}) or {}
    if verify and "checksum" in meta:
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != meta["checksum"]:
            raise ValueError(f"{path}: checksum mismatch (header {meta['checksum']}, data {got})")
    tensors = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt = _NP_DTYPES[info["dtype"]].newbyteorder("<")
        tensors[name] = np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"]).astype(dt.newbyteorder("="))
    return tensors, meta


def verify_checksum(path: str | Path) -> bool:
    """True when the file's `checksum` metadata matches its data section."""
    header, data = _split(Path(path).read_bytes())
    meta = header.get("__metadata__") or {}
    return meta.get("checksum") == "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- BatchNorm folding / naming

def _fold(conv: nn.Conv2d, bn: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if isinstance(bn, nn.BatchNorm2d):
        g = bn.weight.detach().double() / torch.sqrt(bn.running_var.detach().double() + bn.eps)
        w = w * g[:, None, None, None]
        b = (b - bn.running_mean.detach().double()) * g + bn.bias.detach().double()
    return w.float().numpy(), b.float().numpy()


def _backbone_pairs(prefix: str, net: nn.Module):
    """(file name, conv, norm) for every convolution of a ResNetS5 trunk."""
    yield f"{prefix}.conv1", net.conv1, net.bn1
    for li in range(1, 5):
        for bi, block in enumerate(getattr(net, f"layer{li}")):
            p = f"{prefix}.layer{li}.{bi}"
            yield f"{p}.conv1", block.conv1, block.bn1
            yield f"{p}.conv2", block.conv2, block.bn2
            if block.downsample is not None:
                yield f"{p}.downsample", block.downsample[0], block.downsample[1]


def folded_tensors(model: DSOL) -> dict[str, np.ndarray]:
    """All FORMAT.md tensors (float32) of a model, BatchNorm folded into its convolutions."""
    out: dict[str, np.ndarray] = {}
    for prefix, net in (("vision", model.vision), ("audio", model.audio)):
        for name, conv, bn in _backbone_pairs(prefix, net):
            out[f"{name}.weight"], out[f"{name}.bias"] = _fold(conv, bn)
    for name, p in model.named_parameters():
        if name.split(".")[0] in ("loc", "cls", "dsol"):
            out[name] = p.detach().float().numpy().copy()
    return out


def model_metadata(model: DSOL, source: str, precision: str = "fp32",
                   cluster_to_class: list[int] | None = None) -> dict[str, str]:
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": ARCH,
        "precision": precision,
        "width": str(model.width),
        "embed_dim": str(model.embed_dim),
        "num_classes": str(model.num_classes),
        "classes": json.dumps(model.classes),
        "image_size": str(IMAGE_SIZE),
        "image_mean": json.dumps(list(IMAGE_MEAN)),
        "image_std": json.dumps(list(IMAGE_STD)),
        "audio_features": json.dumps(AUDIO_FEATURES),
        "source": source,
    }
    if cluster_to_class is not None:
        meta["cluster_to_class"] = json.dumps([int(c) for c in cluster_to_class])
    return meta


def export_model(model: DSOL, path: str | Path, source: str,
                 cluster_to_class: list[int] | None = None, check: bool = True) -> str:
    """Fold, write and (with check) re-read the file with safetensors' own loader."""
    tensors = folded_tensors(model)
    digest = write_safetensors(path, tensors, model_metadata(model, source, cluster_to_class=cluster_to_class))
    if check:
        from safetensors.numpy import load_file
        back = load_file(str(path))
        if set(back) != set(tensors) or any(not np.array_equal(back[k], tensors[k]) for k in tensors):
            raise RuntimeError(f"{path}: safetensors round trip differs")
        if not verify_checksum(path):
            raise RuntimeError(f"{path}: checksum does not verify")
    return digest


def _file_name(param_name: str) -> str:
    # torchvision's downsample.0 (conv) is the file's single folded downsample conv.
    return param_name.replace(".downsample.0.", ".downsample.")


def load_model(path: str | Path, verify: bool = True) -> DSOL:
    """Build a folded DSOL (eval mode, float32) from a model file."""
    tensors, meta = read_safetensors(path, verify=verify)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    if meta.get("precision", "fp32") != "fp32":
        raise ValueError(f"{path}: precision {meta.get('precision')} is not loadable in PyTorch")
    classes = json.loads(meta["classes"])
    model = DSOL(width=int(meta["width"]), num_classes=int(meta["num_classes"]),
                 embed_dim=int(meta["embed_dim"]), classes=classes, folded=True)
    state = model.state_dict()
    wanted = {_file_name(k) for k in state}
    missing, extra = wanted - set(tensors), set(tensors) - wanted
    if missing or extra:
        raise ValueError(f"{path}: missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}")
    for k in state:
        t = torch.from_numpy(tensors[_file_name(k)].copy())
        if t.shape != state[k].shape:
            raise ValueError(f"{path}: {_file_name(k)} has shape {tuple(t.shape)}, want {tuple(state[k].shape)}")
        state[k] = t
    model.load_state_dict(state)
    return model.eval()


# ---------------------------------------------------------------- random models for tests

def random_model(width: int = 64, num_classes: int = 11, seed: int = 0, embed_dim: int = EMBED_DIM,
                 classes: list[str] | None = None, calibrate: bool = True) -> DSOL:
    """DSOL with random weights and randomised BatchNorm affine + running stats, in eval mode.

    With calibrate, running stats are first measured on two synthetic inputs (float64) and then
    perturbed, so activations stay O(1) like a trained network's instead of exploding on log-mel
    inputs of magnitude ~60 dB; that keeps softmax outputs away from saturation, where fp32
    engines could not be compared with a relative tolerance. Everything derives from `seed`.
    """
    rng = np.random.default_rng(seed)
    model = DSOL(width=width, num_classes=num_classes, embed_dim=embed_dim, classes=classes)

    def put(t: torch.Tensor, a: np.ndarray) -> None:
        t.data.copy_(torch.from_numpy(np.asarray(a, dtype=np.float64).reshape(t.shape)))

    bns = []
    for _, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            put(m.weight, rng.normal(0.0, np.sqrt(2.0 / fan_out), m.weight.shape))
        elif isinstance(m, nn.BatchNorm2d):
            put(m.weight, rng.uniform(0.5, 1.5, m.num_features))
            put(m.bias, rng.normal(0.0, 0.2, m.num_features))
            put(m.running_mean, rng.normal(0.0, 0.2, m.num_features))
            put(m.running_var, rng.uniform(0.5, 1.5, m.num_features))
            bns.append(m)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / np.sqrt(m.in_features)
            put(m.weight, rng.uniform(-bound, bound, m.weight.shape))
            put(m.bias, rng.uniform(-bound, bound, m.bias.shape))
    d = model.feat_dim
    put(model.loc.scale, [rng.uniform(3.0, 7.0)])
    put(model.dsol.dictionary, rng.normal(0.0, 1.0 / np.sqrt(d), (num_classes, d)))
    put(model.dsol.affine, [rng.uniform(0.5, 2.0), rng.normal(0.0, 0.5)])

    if calibrate:
        cal_seed = int(rng.integers(0, 2 ** 31))
        images = np.stack([preprocess(synthetic_rgb(cal_seed + i, 200 + 40 * i, 260 - 30 * i)) for i in range(2)])
        audio = np.stack([synthetic_logmel(cal_seed + i)[None] for i in range(2)])

        def measure(bn: nn.BatchNorm2d, args: tuple) -> None:
            # Runs just before the layer normalises, so every later layer is calibrated against
            # the perturbed statistics actually in use upstream.
            x = args[0]
            mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3))
            bn.running_mean.copy_(mean + torch.from_numpy(rng.normal(0.0, 0.2, bn.num_features)) * var.sqrt())
            bn.running_var.copy_(var * torch.from_numpy(rng.uniform(0.7, 1.4, bn.num_features)))

        # float64 so the statistics, once rounded to float32, do not depend on the CPU's kernels.
        model.double().eval()
        hooks = [bn.register_forward_pre_hook(measure) for bn in bns]
        with torch.no_grad():
            model.vision(torch.from_numpy(images).double())
            model.audio(torch.from_numpy(audio).double())
        for h in hooks:
            h.remove()
        model.float()
    return model.eval()


# ---------------------------------------------------------------- CLI

def _from_checkpoint(path: str, classes: list[str] | None) -> tuple[DSOL, list[int] | None]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    meta = ckpt if isinstance(ckpt, dict) and ("state_dict" in ckpt or "model" in ckpt) else {}
    state = meta.get("state_dict", meta.get("model")) if meta else ckpt
    if "classes" in meta:
        classes = list(meta["classes"])
    # Sizes follow from the weights themselves, so a bare state_dict is enough.
    model = DSOL(width=state["vision.conv1.weight"].shape[0], num_classes=state["cls.audio.weight"].shape[0],
                 embed_dim=state["loc.v_fc1.weight"].shape[0], classes=classes)
    model.load_state_dict(state)
    c2c = meta.get("cluster_to_class")
    return model.eval(), (list(c2c) if c2c is not None else None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dsol.export", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="PyTorch checkpoint: a DSOL state_dict, or a dict with "
                     "'state_dict' (or 'model') and optional 'classes', 'cluster_to_class'")
    src.add_argument("--random", action="store_true", help="random weights and BN stats (tests)")
    src.add_argument("--verify", metavar="FILE", help="check a model file's checksum and tensors, then exit")
    ap.add_argument("--out", help="output .safetensors path")
    ap.add_argument("--width", type=int, default=None, help="ResNet base width for --random (default 64)")
    ap.add_argument("--classes", default=None,
                    help="K (an integer; 11 gives the MUSIC names) or comma-separated class names")
    ap.add_argument("--seed", type=int, default=0, help="seed for --random")
    ap.add_argument("--source", default=None, help="free text for the 'source' metadata key")
    args = ap.parse_args(argv)

    if args.verify:
        try:
            model = load_model(args.verify)
        except ValueError as e:
            print(f"invalid: {e}", file=sys.stderr)
            return 1
        print(f"ok: width {model.width}, {model.num_classes} classes, checksum verified")
        return 0
    if not args.out:
        ap.error("--out is required")
    classes = None
    num_classes = 11
    if args.classes:
        if args.classes.isdigit():
            num_classes = int(args.classes)
        else:
            classes = [c.strip() for c in args.classes.split(",")]
            num_classes = len(classes)
    if args.random:
        model = random_model(args.width or 64, num_classes, args.seed, classes=classes)
        c2c = None
        source = args.source or f"random init for tests (seed {args.seed})"
    else:
        model, c2c = _from_checkpoint(args.checkpoint, classes)
        source = args.source or f"trainer checkpoint {Path(args.checkpoint).name}"
    digest = export_model(model, args.out, source, cluster_to_class=c2c)
    print(f"wrote {args.out} (width {model.width}, {model.num_classes} classes, {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
