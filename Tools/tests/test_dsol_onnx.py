"""ONNX export of the backbones (benchmarking against ONNX Runtime)."""

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from dsol.export import export_model, random_model  # noqa: E402
from dsol.onnx_export import export_backbones  # noqa: E402

TOOLS = Path(__file__).resolve().parents[1]


def test_export_and_bench(tmp_path):
    import onnx

    model_path = tmp_path / "m.safetensors"
    export_model(random_model(4, 3, seed=1), model_path, "test")
    paths = export_backbones(model_path, tmp_path, check=True)  # check compares ORT with PyTorch
    for name, shape in (("vision", [1, 32, 14, 14]), ("audio", [1, 32])):
        m = onnx.load(str(paths[name]))
        assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) >= 17
        out = m.graph.output[0].type.tensor_type.shape.dim
        assert [d.dim_value for d in out] == shape
    run = subprocess.run([sys.executable, str(TOOLS / "bench_onnxruntime.py"), str(tmp_path), "--runs", "3",
                          "--warmup", "1", "--json", "-"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "vision" in run.stdout and "audio" in run.stdout and '"median_ms"' in run.stdout
