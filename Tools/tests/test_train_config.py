"""dsol.train configs: every shipped config loads, and a mistyped key is refused with the allowed keys."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tools"))
pytest.importorskip("torch")

from dsol import train as T  # noqa: E402


@pytest.mark.parametrize("path", sorted((ROOT / "Tools/dsol/configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = T.load_config(path)
    assert cfg["stage1"]["epochs"] >= 0 and "speed" in cfg


@pytest.mark.parametrize("text, key, allowed", [
    ("stage1:\n  epoch: 3\n", "stage1.epoch", "epochs"),          # a typo inside a section
    ("stage3:\n  epochs: 3\n", "stage3", "stage2"),                # an unknown section
    ("speed:\n  bf_16: true\n", "speed.bf_16", "bf16"),
    ("data:\n  music:\n    fsp: 4\n", "data.music.fsp", "fps"),   # nested two deep
])
def test_mistyped_key_is_refused_with_the_allowed_keys(tmp_path, text, key, allowed):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(SystemExit) as e:
        T.load_config(p)
    msg = str(e.value)
    assert f"'{key}'" in msg and allowed in msg and str(p) in msg


def test_a_section_must_be_a_mapping(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("stage1: 3\n")
    with pytest.raises(SystemExit, match="stage1: expected a mapping"):
        T.load_config(p)
