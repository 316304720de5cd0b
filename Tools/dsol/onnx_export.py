"""Export a model file's two backbones to ONNX, for benchmarking the engine against ONNX Runtime.

    PYTHONPATH=Tools python3 -m dsol.onnx_export MODEL.safetensors --out-dir DIR

writes DIR/vision.onnx (image (1,3,224,224) -> fv (1,D,14,14)) and DIR/audio.onnx
(audio (1,1,201,64) -> ga (1,D)), fp32, batch 1, BatchNorm already folded (the file's weights).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from .export import load_model

DEFAULT_OPSET = 17


def export_backbones(model_path: str | Path, out_dir: str | Path, opset: int = DEFAULT_OPSET,
                     check: bool = True) -> dict[str, Path]:
    """Write vision.onnx and audio.onnx; with check, compare ONNX Runtime against PyTorch."""
    model = load_model(model_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nets = {
        "vision": (model.vision, torch.zeros(1, 3, 224, 224), "image", "fv"),
        "audio": (model.audio, torch.zeros(1, 1, 201, 64), "audio", "ga"),
    }
    paths = {}
    for name, (net, example, inp, outp) in nets.items():
        path = out_dir / f"{name}.onnx"
        with warnings.catch_warnings():
            # The TorchScript-based exporter is deprecated in favour of the dynamo one, which
            # needs the extra onnxscript package; for a static conv net both give the same graph.
            warnings.simplefilter("ignore")
            torch.onnx.export(net.eval(), (example,), str(path), input_names=[inp], output_names=[outp],
                              opset_version=opset, dynamo=False, do_constant_folding=True)
        paths[name] = path
        if check:
            _check(net, path, example.shape, inp)
    return paths


def _check(net: torch.nn.Module, path: Path, shape: tuple[int, ...], inp: str) -> None:
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load(str(path)))
    x = np.random.default_rng(0).normal(0, 1, shape).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {inp: x})[0]
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)
    if err > 1e-4:
        raise RuntimeError(f"{path}: ONNX Runtime differs from PyTorch (max rel error {err:.2e})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m dsol.onnx_export", description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="fp32 model file (.safetensors, Models/FORMAT.md)")
    ap.add_argument("--out-dir", required=True, help="directory for vision.onnx and audio.onnx")
    ap.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (>= 17, default {DEFAULT_OPSET})")
    ap.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime vs PyTorch comparison")
    args = ap.parse_args(argv)
    if args.opset < 17:
        ap.error("--opset must be >= 17")
    paths = export_backbones(args.model, args.out_dir, args.opset, check=not args.no_check)
    for name, p in paths.items():
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
