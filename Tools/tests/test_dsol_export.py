"""Model file export (Models/FORMAT.md): BatchNorm folding, names, metadata, checksum."""

import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
torch = pytest.importorskip("torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

from dsol.export import (export_model, folded_tensors, load_model, main, random_model,  # noqa: E402
                         read_safetensors, verify_checksum, write_safetensors)
from dsol.model import MUSIC_CLASSES  # noqa: E402


def expected_shapes(width, cin, k, e=128):
    """FORMAT.md's tensor table, written out independently of the exporter."""
    c = [width, width, 2 * width, 4 * width, 8 * width]
    d = c[4]
    shapes = {}
    for net, ci in (("vision", 3), ("audio", 1)):
        shapes[f"{net}.conv1.weight"] = (width, ci, 7, 7)
        shapes[f"{net}.conv1.bias"] = (width,)
        for layer in range(1, 5):
            for b in range(2):
                p = f"{net}.layer{layer}.{b}"
                cin_ = c[layer - 1] if b == 0 else c[layer]
                shapes[f"{p}.conv1.weight"] = (c[layer], cin_, 3, 3)
                shapes[f"{p}.conv1.bias"] = (c[layer],)
                shapes[f"{p}.conv2.weight"] = (c[layer], c[layer], 3, 3)
                shapes[f"{p}.conv2.bias"] = (c[layer],)
            if layer > 1:
                shapes[f"{net}.layer{layer}.0.downsample.weight"] = (c[layer], c[layer - 1], 1, 1)
                shapes[f"{net}.layer{layer}.0.downsample.bias"] = (c[layer],)
    shapes.update({
        "loc.v_fc1.weight": (e, d), "loc.v_fc1.bias": (e,), "loc.v_fc2.weight": (e, e), "loc.v_fc2.bias": (e,),
        "loc.a_fc1.weight": (e, d), "loc.a_fc1.bias": (e,), "loc.a_fc2.weight": (e, e), "loc.a_fc2.bias": (e,),
        "loc.scale": (1,), "cls.audio.weight": (k, d), "cls.audio.bias": (k,),
        "cls.vision.weight": (k, d), "cls.vision.bias": (k,), "dsol.dictionary": (k, d), "dsol.affine": (2,),
    })
    return shapes


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model = random_model(8, 11, seed=5)
    path = tmp_path_factory.mktemp("export") / "model.safetensors"
    export_model(model, path, "test")
    return model, path


def test_names_shapes_and_dtypes(tiny):
    _, path = tiny
    tensors = safetensors_numpy.load_file(str(path))
    assert {n: t.shape for n, t in tensors.items()} == expected_shapes(8, None, 11)
    assert all(t.dtype == np.float32 for t in tensors.values())


def test_metadata(tiny):
    _, path = tiny
    _, meta = read_safetensors(path)
    assert meta["format"] == "soundloc-dsol" and meta["format_version"] == "1"
    assert meta["arch"] == "resnet18-s5-dsol" and meta["precision"] == "fp32"
    assert (meta["width"], meta["embed_dim"], meta["num_classes"]) == ("8", "128", "11")
    assert json.loads(meta["classes"]) == MUSIC_CLASSES
    assert meta["image_size"] == "224"
    assert json.loads(meta["image_mean"]) == [0.485, 0.456, 0.406]
    assert json.loads(meta["image_std"]) == [0.229, 0.224, 0.225]
    assert json.loads(meta["audio_features"]) == {"sample_rate": 16000, "n_fft": 160, "hop": 80, "n_mels": 64,
                                                  "fmax": 8000, "top_db": 80, "frames": 201}
    assert meta["source"] == "test"
    assert meta["checksum"].startswith("sha256:") and len(meta["checksum"]) == 7 + 64


def test_layout_is_aligned_and_contiguous(tiny):
    _, path = tiny
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__")
    spans = sorted(tuple(v["data_offsets"]) for v in header.values())
    assert spans[0][0] == 0 and spans[-1][1] == len(blob) - 8 - n
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    # Sorted name order for a single-dtype file.
    assert [k for k, _ in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])] == sorted(header)


@pytest.mark.parametrize("width", [8, 16])
def test_bn_folding_matches_unfolded_model(tmp_path, width):
    model = random_model(width, 11, seed=11 + width)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    # Random stats really are random: not the identity transform.
    assert all(float((bn.running_var - 1).abs().max()) > 1e-3 for bn in bns)
    path = tmp_path / "m.safetensors"
    export_model(model, path, "test")
    folded = load_model(path)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    g = torch.Generator().manual_seed(0)
    img = torch.randn(2, 3, 224, 224, generator=g, dtype=torch.float64)
    aud = torch.rand(2, 1, 201, 64, generator=g, dtype=torch.float64) * 120 - 100
    with torch.no_grad():
        ref = model.double()(img, aud)
        got = folded.double()(img, aud)
    for name in ref:
        scale = float(ref[name].abs().max())
        err = float((ref[name] - got[name]).abs().max())
        assert err <= 1e-5 * scale, (name, err, scale)


def test_checksum_verifies_and_detects_flipped_byte(tiny, tmp_path):
    _, path = tiny
    assert verify_checksum(path)
    blob = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", blob[:8])
    for pos in (8 + n, 8 + n + (len(blob) - 8 - n) // 2, len(blob) - 1):
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        p = tmp_path / "bad.safetensors"
        p.write_bytes(bytes(bad))
        assert not verify_checksum(p)
        with pytest.raises(ValueError, match="checksum"):
            load_model(p)
        assert main(["--verify", str(p)]) == 1
    assert main(["--verify", str(path)]) == 0


def test_writer_handles_mixed_dtypes(tmp_path):
    tensors = {"b.u8": np.arange(7, dtype=np.uint8), "a.f32": np.linspace(0, 1, 5, dtype=np.float32),
               "c.f64": np.array([1.5, -2.0])}
    p = tmp_path / "x.safetensors"
    write_safetensors(p, tensors, {"k": "v"})
    back = safetensors_numpy.load_file(str(p))
    assert set(back) == set(tensors) and all(np.array_equal(back[k], tensors[k]) for k in tensors)
    assert verify_checksum(p)
    header = json.loads(p.read_bytes()[8:8 + struct.unpack("<Q", p.read_bytes()[:8])[0]])
    # Wider elements first, so every tensor is aligned to its element size.
    assert header["c.f64"]["data_offsets"][0] == 0
    assert header["b.u8"]["data_offsets"][1] == 16 + 20 + 7


def test_folded_tensors_cover_all_parameters():
    model = random_model(4, 3, seed=2)
    tensors = folded_tensors(model)
    assert set(tensors) == set(expected_shapes(4, None, 3))


def test_cli_random_export(tmp_path):
    p = tmp_path / "cli.safetensors"
    assert main(["--random", "--width", "4", "--classes", "a,b,c", "--seed", "9", "--out", str(p)]) == 0
    m = load_model(p)
    assert (m.width, m.num_classes, m.classes) == (4, 3, ["a", "b", "c"])


def test_cli_checkpoint_export(tmp_path):
    model = random_model(4, 3, seed=4)
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"state_dict": model.state_dict(), "classes": ["x", "y", "z"], "cluster_to_class": [2, 0, 1]}, ckpt)
    out = tmp_path / "from_ckpt.safetensors"
    assert main(["--checkpoint", str(ckpt), "--out", str(out)]) == 0
    tensors, meta = read_safetensors(out)
    want = folded_tensors(model)
    assert set(tensors) == set(want) and all(np.array_equal(tensors[k], want[k]) for k in want)
    assert json.loads(meta["classes"]) == ["x", "y", "z"]
    assert json.loads(meta["cluster_to_class"]) == [2, 0, 1]
    # A bare state_dict works too (class names then default).
    torch.save(model.state_dict(), ckpt)
    assert main(["--checkpoint", str(ckpt), "--out", str(out)]) == 0
    assert load_model(out).width == 4
