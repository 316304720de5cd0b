"""dsol.head_fit: the frozen-trunk class head. Its maps are the model's own forward pass, the
l-normalised pooling ignores the scale of l, the oracles fit true labels, and a run writes a model
file that loads with the fitted head."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tools"))
torch = pytest.importorskip("torch")

from dsol import head_fit as H  # noqa: E402
from dsol import metrics as M  # noqa: E402
from dsol.data import SceneStore, audio_input, load_manifest  # noqa: E402
from dsol.toy import TOY_CLASSES, write_toy_dataset  # noqa: E402
from dsol.export import export_model, load_model, random_model, read_safetensors  # noqa: E402
from dsol.image import preprocess  # noqa: E402

C2C = [2, 0, 3, 1]  # clusters in another order than the classes, as a trained model has them


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    base = tmp_path_factory.mktemp("headfit")
    manifest = write_toy_dataset(base / "data", seed=3, counts={
        "train": {"solo": 12, "synthetic": 8, "free": 4},
        "val": {"solo": 2, "synthetic": 4, "free": 2},
        "test": {"solo": 1, "synthetic": 2, "free": 1}})
    model = random_model(width=4, num_classes=4, seed=5, classes=[TOY_CLASSES[c] for c in C2C])
    path = base / "model.safetensors"
    export_model(model, path, "test", cluster_to_class=C2C)
    return base, manifest, path


def test_class_maps_equal_the_model_forward(toy):
    _, manifest, path = toy
    model = load_model(path)
    _, scenes = load_manifest(manifest)
    store = SceneStore([s for s in scenes if s.split == "val"])
    feats = H.extract(model, store, list(range(len(store))), quiet=True)
    w = model.dsol.affine[0] * model.dsol.dictionary
    ours = H.class_maps(w, feats["fv"].float(), feats["l"])
    with torch.no_grad():
        img = torch.from_numpy(np.stack([preprocess(store.rgb(i)) for i in range(len(store))]))
        aud = torch.from_numpy(np.stack([audio_input(store.mel(i)) for i in range(len(store))]))
        ref = model(img, aud)["class_maps"].flatten(2)
    # the bias of m cancels in the per-cell softmax; fv is stored in fp16
    assert torch.allclose(ours, ref, atol=2e-3)


def test_lnorm_pooling_ignores_the_scale_of_l():
    g = torch.Generator().manual_seed(0)
    w, fv, l = torch.randn(5, 8, generator=g), torch.randn(3, 8, 10, generator=g), torch.rand(3, 10, generator=g)
    assert torch.allclose(H.pooled_logits(w, fv, l, "lnorm"), H.pooled_logits(w, fv, 7 * l, "lnorm"), atol=1e-5)
    assert torch.allclose(7 * H.pooled_logits(w, fv, l, "mean"), H.pooled_logits(w, fv, 7 * l, "mean"), atol=1e-4)
    # mean pooling by hand: mean over cells of (w . f) * l
    by_hand = torch.stack([(w @ fv[n] * l[n]).mean(dim=1) for n in range(3)])
    assert torch.allclose(H.pooled_logits(w, fv, l, "mean"), by_hand, atol=1e-5)
    with pytest.raises(ValueError):
        H.pooled_logits(w, fv, l, "max")


class _Scene:
    def __init__(self, objects):
        self.objects = objects


def test_oracles_and_box_accuracy_on_separable_features():
    # two classes whose features point along different axes inside their boxes, noise elsewhere
    rng = np.random.default_rng(0)
    scenes, fvs = [], []
    for n in range(6):
        c = n % 2
        box = [0.0, 0.0, 0.5, 0.5] if c == 0 else [0.5, 0.5, 0.5, 0.5]
        fv = rng.normal(0, 0.1, (2, 196)).astype(np.float32)
        cells = H._box_cells(box)
        fv[c, cells.numpy()] += 3.0
        scenes.append(_Scene([{"class_id": c, "box": box, "sounding": True}]))
        fvs.append(fv)
    feats = {"fv": torch.from_numpy(np.stack(fvs)).half()}
    c2c = [1, 0]  # cluster 0 is class 1
    for kind in ("mean", "linear"):
        w = H.oracle_dictionary(feats, scenes, list(range(6)), c2c, kind)
        assert w.shape == (2, 2)
        assert w[0, 1] > w[0, 0] and w[1, 0] > w[1, 1], kind  # cluster 0 responds to class 1's axis
        assert H.box_accuracy(w, feats, scenes, list(range(6)), c2c) == 1.0
    assert H.box_accuracy(torch.eye(2), feats, scenes, list(range(6)), c2c) == 0.0  # every box misnamed
    assert len(H._box_cells([0.0, 0.0, 0.5, 0.5])) == int(M.box_mask(((0.0, 0.0, 0.5, 0.5),), 14).sum()) == 49


def test_run_writes_a_model_with_the_kept_head(toy, tmp_path):
    _, manifest, path = toy
    out = tmp_path / "run"
    assert H.main(["--model", str(path), "--data", str(manifest), "--out", str(out), "--epochs", "2",
                   "--scales", "0.5,1,2", "--oracle", "linear", "--test", "--quiet", "--seed", "3"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    hist = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [0, 1, 2]
    assert all(np.isfinite(h["kl"]) for h in hist[1:])
    assert {"synthetic", "free"} <= set(summary["kept_val"]) and "kept_test" in summary
    kept = hist[summary["kept_epoch"]]
    assert kept["headline"] == max(h["headline"] for h in hist)
    tensors, meta = read_safetensors(out / "model.safetensors")
    src, _ = read_safetensors(path)
    assert json.loads(meta["cluster_to_class"]) == C2C and "head_fit" in meta["source"]
    assert np.array_equal(tensors["dsol.affine"], np.array([1.0, 0.0], np.float32))
    for k in src:  # only the head changed
        if k not in ("dsol.dictionary", "dsol.affine"):
            assert np.array_equal(tensors[k], src[k]), k
    assert not np.array_equal(tensors["dsol.dictionary"], src["dsol.dictionary"])
    load_model(out / "model.safetensors")  # and it is a valid model file


def test_bad_kinds_are_refused(toy, tmp_path):
    _, manifest, path = toy
    with pytest.raises(SystemExit, match="not scene kinds"):
        H.main(["--model", str(path), "--data", str(manifest), "--out", str(tmp_path), "--kinds", "duet"])


def test_stage2_ablation_runs_each_combination(toy, tmp_path):
    from dsol import stage2_ablation as A
    _, manifest, path = toy
    assert A.main(["--model", str(path), "--data", str(manifest), "--out", str(tmp_path), "--steps", "2",
                   "--every", "1", "--batch", "2", "--terms", "kl+l1,l1", "--quiet"]) == 0
    res = json.loads((tmp_path / "ablation.json").read_text())["results"]
    assert set(res) == {"kl+l1", "l1"}
    for rows in res.values():
        assert [r["step"] for r in rows] == [0, 1, 2]
        assert all(0.0 <= r["inbox_mass"] <= 1.0 and 0.0 < r["mean_l"] < 1.0 for r in rows)
    # the same start, then different losses: different maps
    assert res["kl+l1"][0] == res["l1"][0] and res["kl+l1"][2] != res["l1"][2]
    with pytest.raises(SystemExit, match="--terms"):
        A.main(["--model", str(path), "--data", str(manifest), "--out", str(tmp_path), "--terms", "kl+l2"])
