"""dsol.device_data: batches built on the device equal dsol.data's host batches (same scenes, same
augmentation draws, same filters), unsupported augmentations are refused, and a trainer run with
device_data + bf16 completes and resumes exactly (on the CPU, the device the tests have)."""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tools"))
torch = pytest.importorskip("torch")

from dsol import device_data as D  # noqa: E402
from dsol import train as T  # noqa: E402
from dsol.data import (Augment, ClassifyDataset, PairDataset, PlainDataset, SceneStore, batch_plan,  # noqa: E402
                       load_manifest, loader)
from dsol.toy import write_toy_dataset  # noqa: E402


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    base = tmp_path_factory.mktemp("devdata")
    manifest = write_toy_dataset(base / "data", seed=5, counts={
        "train": {"solo": 8, "synthetic": 4, "free": 2},
        "val": {"solo": 2, "synthetic": 2, "free": 1},
        "test": {"solo": 1, "synthetic": 1, "free": 0}})
    _, scenes = load_manifest(manifest)
    store = SceneStore([s for s in scenes if s.split == "train"])
    return base, manifest, store, D.DeviceStore(store, torch.device("cpu"))


def _both(ds, plan, dev):
    host = list(loader(ds, plan))
    device = list(D.device_loader(ds, plan, dev))
    assert len(host) == len(device) == len(plan)
    return host, device


def test_plain_batches_equal_host_preprocessing(toy):
    _, _, store, dev = toy
    ds = PlainDataset(store, range(len(store)))
    for h, d in zip(*_both(ds, batch_plan(len(ds), 5, None, False), dev)):
        assert torch.equal(h["index"], d["index"])
        assert torch.allclose(h["image"], d["image"], atol=2e-5)
        assert torch.allclose(h["audio"], d["audio"], atol=1e-4)


@pytest.mark.parametrize("eq_db", [0.0, 12.0])
def test_pair_batches_use_the_same_draws(toy, eq_db):
    _, _, store, dev = toy
    aug = Augment(eq_db=eq_db, crop_min=0.6)
    ds = PairDataset(store, list(range(len(store))), seed=7, aug=aug)
    ds.set_tag(1, 3)
    plan = batch_plan(len(ds), 4, np.random.default_rng(1), True)
    for h, d in zip(*_both(ds, plan, dev)):
        assert torch.equal(h["index"], d["index"]) and torch.equal(h["neg_index"], d["neg_index"])
        for key in ("pos", "neg"):
            assert torch.allclose(h[key], d[key], atol=5e-5), key
        assert torch.allclose(h["audio"], d["audio"], atol=1e-3)
    # augmentation really happened: a positive differs from the plain preprocessing of its scene
    plain = next(iter(D.device_loader(PlainDataset(store, range(len(store))), [plan[0]], dev)))
    pos = next(iter(D.device_loader(ds, [plan[0]], dev)))["pos"]
    assert not torch.allclose(pos, plain["image"], atol=1e-3)


def test_classify_batches_use_the_same_draws(toy):
    _, _, store, dev = toy
    ds = ClassifyDataset(store, list(range(len(store))), np.arange(len(store)) % 3, seed=2, aug=Augment())
    ds.set_tag(4, 0, 1)
    for h, d in zip(*_both(ds, batch_plan(len(ds), 3, np.random.default_rng(2), False), dev)):
        assert torch.equal(h["label"], d["label"])
        assert torch.allclose(h["image"], d["image"], atol=5e-5)
        assert torch.allclose(h["audio"], d["audio"], atol=1e-3)


def test_unsupported_augmentations_are_refused():
    D.check_augment(Augment(flip=0.0, eq_db=6.0, time_masks=2))
    D.check_augment(None)
    known = set(D.DEVICE_AUGMENTS) | set(D.HOST_AUDIO_AUGMENTS)
    assert known == {f.name for f in dataclasses.fields(Augment)}  # a new field must be placed in one list
    assert not D.host_audio(Augment(eq_db=12.0)) and D.host_audio(Augment(noise_p=0.5))


def test_host_audio_effects_give_the_host_batches(toy):
    _, _, store, dev = toy
    aug = Augment(eq_db=6.0, pitch_semitones=2.0, noise_p=1.0, time_masks=2, freq_masks=1)
    ds = PairDataset(store, list(range(len(store))), seed=3, aug=aug)
    ds.set_tag(1, 0)
    plan = batch_plan(len(ds), 4, np.random.default_rng(4), True)
    for h, d in zip(*_both(ds, plan, dev)):
        assert torch.equal(h["audio"], d["audio"])  # the same function on the same draws
        assert torch.allclose(h["pos"], d["pos"], atol=5e-5) and torch.allclose(h["neg"], d["neg"], atol=5e-5)


def test_mixed_picture_sizes_are_refused(toy, tmp_path):
    _, manifest, store, _ = toy
    from PIL import Image
    odd = tmp_path / "odd.png"
    Image.new("RGB", (31, 17)).save(odd)
    scenes = list(store.scenes)
    scenes[1] = dataclasses.replace(scenes[1], image=str(odd))
    with pytest.raises(ValueError, match="one size"):
        D.DeviceStore(SceneStore(scenes), torch.device("cpu"))


def test_trainer_with_device_data_and_bf16_resumes_exactly(toy, tmp_path):
    _, manifest, _, _ = toy
    cfg = {"seed": 4, "width": 4, "threads": 2,
           "speed": {"device_data": True, "bf16": True},
           "augment": {"enabled": True, "eq_db": 6.0},
           "stage1": {"epochs": 1, "batch_size": 4, "class_epochs": 1, "class_batch_size": 4,
                      "kmeans_restarts": 2, "max_batches": 2, "all_pairs": True, "infonce": 0.5},
           "stage2": {"epochs": 1, "batch_size": 4, "refit_steps": 5, "max_batches": 2},
           "eval": {"limit": 2, "batch_size": 8, "final_splits": ["val"]}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    full, part = tmp_path / "full", tmp_path / "part"
    args = ["--config", str(path), "--data", str(manifest), "--quiet"]
    assert T.main(args + ["--out", str(full)]) == 0
    lines = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    assert [x["phase"] for x in lines] == ["s1_loc", "s1_cls", "s2_init", "s2", "final"]
    assert all(np.isfinite(x["loss"]) and x["pairs_per_s"] > 0 for x in lines if x["phase"] in ("s1_loc", "s2"))
    assert T.main(args + ["--out", str(part), "--stop-after", "2"]) == 0
    assert T.main(["--data", str(manifest), "--out", str(part), "--quiet", "--resume"]) == 0
    a = torch.load(full / "final.pt", weights_only=True)["state_dict"]
    b = torch.load(part / "final.pt", weights_only=True)["state_dict"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
