"""The committed tiny engine fixture: reproducible bit for bit, and self-consistent."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
torch = pytest.importorskip("torch")

from dsol.export import load_model, read_safetensors, verify_checksum  # noqa: E402
from dsol.image import preprocess  # noqa: E402
from dsol.reference import generate, main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "Tests" / "SoundlocEngineTests" / "Fixtures" / "tiny"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    generate(out, 8, 11, 1)
    return out


def test_fixture_is_small():
    total = sum(p.stat().st_size for p in FIXTURE.glob("*.safetensors"))
    assert total < 3_000_000


@pytest.mark.parametrize("name", ["model.safetensors", "reference.safetensors"])
def test_fixture_reproduced_bit_for_bit(regenerated, name):
    assert (regenerated / name).read_bytes() == (FIXTURE / name).read_bytes()


def test_fixture_contents():
    assert verify_checksum(FIXTURE / "model.safetensors")
    ref, meta = read_safetensors(FIXTURE / "reference.safetensors")
    assert (meta["width"], meta["num_classes"], meta["seed"]) == ("8", "11", "1")
    shapes = {k: v.shape for k, v in ref.items()}
    assert shapes == {"in.rgb": (157, 301, 3), "in.image": (3, 224, 224), "in.audio": (201, 64),
                      "out.fv": (64, 14, 14), "out.ga": (64,), "out.l": (14, 14), "out.match": (1,),
                      "out.s": (11, 14, 14), "out.class_maps": (11, 14, 14), "out.p_a": (11,), "out.p_v": (11,),
                      "out.audio_logits": (11,), "out.vision_logits": (11,)}
    assert ref["in.rgb"].dtype == np.uint8
    assert all(v.dtype == np.float32 for k, v in ref.items() if k != "in.rgb")
    assert np.array_equal(ref["in.image"], preprocess(ref["in.rgb"]))
    audio = ref["in.audio"]
    assert audio.min() >= -100 and audio.max() <= 20
    # Not saturated: a relative-tolerance comparison of an fp32 engine is meaningful.
    assert 0.05 < ref["out.l"].min() and ref["out.l"].max() < 0.95
    assert ref["out.p_a"].min() > 1e-5


def test_fp32_forward_within_engine_tolerance():
    """What the Swift engine does (fp32 on the file's weights) lands within 1e-4 of the reference."""
    ref, _ = read_safetensors(FIXTURE / "reference.safetensors")
    model = load_model(FIXTURE / "model.safetensors")
    with torch.no_grad():
        out = model(torch.from_numpy(ref["in.image"])[None], torch.from_numpy(ref["in.audio"])[None, None])
    for name in ("fv", "ga", "l", "s", "class_maps", "p_a", "p_v", "audio_logits", "vision_logits"):
        got = out[name][0].numpy().reshape(ref[f"out.{name}"].shape)
        want = ref[f"out.{name}"]
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), name


def test_cli_other_sizes(tmp_path):
    assert main(["--width", "4", "--classes", "3", "--seed", "2", "--out", str(tmp_path), "--quiet"]) == 0
    ref, _ = read_safetensors(tmp_path / "reference.safetensors")
    assert ref["out.fv"].shape == (32, 14, 14) and ref["out.s"].shape == (3, 14, 14)
