"""Training packs (dsol.pack), the equaliser augmentation, all-pairs sampling without negatives and
the trainer's --time-budget, on a generated toy data set."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tools"))
torch = pytest.importorskip("torch")

from dsol import pack as P  # noqa: E402
from dsol import train as T  # noqa: E402
from dsol import losses as L  # noqa: E402
from dsol.audio import TOP_DB, logmel_from_energies  # noqa: E402
from dsol.data import Augment, PairDataset, SceneStore, audio_input, eq_curve, load_manifest  # noqa: E402
from dsol.toy import write_toy_dataset  # noqa: E402


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    base = tmp_path_factory.mktemp("pack")
    manifest = write_toy_dataset(base / "data", seed=4, counts={
        "train": {"solo": 12, "synthetic": 8, "free": 4},
        "val": {"solo": 3, "synthetic": 3, "free": 2},
        "test": {"solo": 2, "synthetic": 2, "free": 0}})
    return base, manifest


@pytest.mark.parametrize("bits", [8, 6])
def test_logmel_quantisation_error_is_half_a_step(bits):
    rng = np.random.default_rng(1)
    energies = rng.gamma(0.5, 1.0, (3, 201, 64)) * 10.0 ** rng.uniform(-6, 0, (3, 1, 1))
    energies[0, :20] = 0.0  # silence: clipped to the floor
    db = logmel_from_energies(energies)
    codes, peak = P.quantise_logmel(db, bits)
    assert codes.dtype == np.uint8 and codes.max() <= (1 << bits) - 1
    back = logmel_from_energies(P.dequantise_energies(codes, peak, bits))
    step = TOP_DB / ((1 << bits) - 1)
    assert np.abs(back - db).max() <= step / 2 + 1e-3
    # a gain before the log shifts the values and their peak alike, so gain jitter stays exact up to
    # the quantisation (where the 1e-10 floor of power_to_db is below the 80 dB clip, as in any
    # window louder than -20 dB)
    loud = rng.gamma(0.5, 1.0, (2, 201, 64)) + 1e-4
    codes, peak = P.quantise_logmel(logmel_from_energies(loud), bits)
    g = 10 ** (4.0 / 20)
    shifted = logmel_from_energies(P.dequantise_energies(codes, peak, bits), g)
    assert np.abs(shifted - logmel_from_energies(loud, g)).max() <= step / 2 + 1e-3


def test_choose_keeps_solo_and_val_subsets_cocktails_and_drops_test(toy):
    _, manifest = toy
    _, scenes = load_manifest(manifest)
    picked = P.choose(scenes, cocktail=6, val_per_kind=2, seed=0)
    kinds = [(scenes[i].split, scenes[i].kind) for i in picked]
    assert kinds.count(("train", "solo")) == 12
    assert kinds.count(("train", "synthetic")) == 4 and kinds.count(("train", "free")) == 2  # 8:4 of 6
    assert all(kinds.count(("val", k)) == 2 for k in ("solo", "synthetic", "free"))
    assert not any(s == "test" for s, _ in kinds)
    assert picked == P.choose(scenes, cocktail=6, val_per_kind=2, seed=0)
    assert len(P.choose(scenes, None, 0, 0)) == 24  # every training scene, no validation


def test_pack_round_trip(toy, tmp_path):
    _, manifest = toy
    out = tmp_path / "toy.npz"
    info = P.write_pack(manifest, out, val_per_kind=3, quality=95, progress=False)
    assert info["scenes"] == 24 + 8 and out.stat().st_size == info["bytes"]
    classes, scenes, jpegs, mel = P.read_pack(out)
    ref_classes, ref = load_manifest(manifest)
    assert classes == ref_classes
    by_id = {s.id: s for s in ref}
    store = SceneStore([by_id[s.id] for s in scenes], True, None)
    store.load_audio()
    packed = SceneStore(scenes, True, None, jpegs, mel)
    for k, s in enumerate(scenes):
        r = by_id[s.id]
        assert (s.split, s.kind, s.objects, s.label) == (r.split, r.kind, r.objects, r.label)
        a, b = audio_input(packed.mel(k)), audio_input(store.mel(k))
        assert np.abs(a - b).max() <= TOP_DB / 255 / 2 + 1e-3
        x, y = packed.rgb(k).astype(int), store.rgb(k).astype(int)
        assert x.shape == y.shape and np.abs(x - y).mean() < 4.0  # JPEG at quality 95
    with pytest.raises(ValueError):
        SceneStore(scenes, True, None, jpegs[:-1], mel)


def test_pack_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, meta=np.frombuffer(json.dumps({"format": "x"}).encode(), dtype=np.uint8))
    with pytest.raises(SystemExit, match="not a soundloc-train-pack"):
        P.read_pack(bad)
    with pytest.raises(SystemExit):
        P.main(["--data", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o.npz")])


def test_eq_curve_is_smooth_bounded_and_seeded():
    for seed in range(20):
        f = eq_curve(64, 6.0, np.random.default_rng(seed))
        db = 10 * np.log10(f)
        assert np.abs(db).max() <= 6.0 + 1e-4
        assert np.abs(np.diff(db)).max() < 2.0  # no band jumps: a slow response
        assert np.array_equal(f, eq_curve(64, 6.0, np.random.default_rng(seed)))
    mel = np.full((201, 64), 1e-2, np.float32)
    rng = np.random.default_rng(3)
    x = audio_input(mel, rng, Augment(gain_db=0.0, eq_db=6.0))[0]
    assert np.ptp(x[0]) > 0.5 and np.allclose(x, x[0])  # one curve over the bands, the same in every window


def test_pairs_without_negatives_keep_the_positives(toy):
    _, manifest = toy
    _, scenes = load_manifest(manifest)
    train = [s for s in scenes if s.split == "train" and s.kind == "solo"]
    store = SceneStore(train, True, None)
    idx = list(range(len(train)))
    with_neg = PairDataset(store, idx, 7, Augment(), negatives=True)
    without = PairDataset(store, idx, 7, Augment(), negatives=False)
    for ds in (with_neg, without):
        ds.set_tag(1, 0)
    for k in range(4):
        a, b = with_neg[k], without[k]
        assert "neg" in a and "neg" not in b
        assert np.array_equal(a["pos"], b["pos"]) and np.array_equal(a["audio"], b["audio"])
        assert a["neg_index"] == b["neg_index"]


def test_time_budget_shortens_stage1_and_trains_from_a_pack(toy, tmp_path):
    _, manifest = toy
    pack = tmp_path / "toy.npz"
    P.write_pack(manifest, pack, val_per_kind=2, progress=False)
    cfg = {"seed": 3, "width": 4, "threads": 2, "workers": 0, "augment": {"enabled": True, "eq_db": 6.0},
           "stage1": {"epochs": 50, "batch_size": 4, "all_pairs": True, "lr_steps": [[25, 0.3], [40, 0.1]],
                      "class_epochs": 1, "class_batch_size": 4, "kmeans_restarts": 1, "warmup_epochs": 1,
                      "max_batches": 1},
           "stage2": {"epochs": 1, "batch_size": 4, "refit_steps": 5, "max_batches": 1},
           "eval": {"every": 0, "limit": 2, "batch_size": 8, "final_splits": ["val"]}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    # A budget this small leaves room for no more than the epochs already timed plus one.
    assert T.main(["--config", str(path), "--data", str(pack), "--out", str(run), "--quiet",
                   "--time-budget", "1"]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["stage1"]["epochs"] == 3
    assert all(a <= 3 for a, _ in saved["stage1"]["lr_steps"])
    log = (run / "log.txt").read_text()
    assert "time budget:" in log and "-> 3 stage-1 epochs (configured 50)" in log
    phases = [json.loads(x)["phase"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert phases.count("s1_loc") == 3 and phases[-1] == "final"
    assert (run / "model.safetensors").exists()


def test_time_budget_plans_again_from_the_configured_schedule(toy, tmp_path):
    _, manifest = toy
    cfg = T.load_config(None)
    cfg.update({"width": 4, "threads": 2, "workers": 0})
    cfg["stage1"].update({"epochs": 50, "lr_steps": [[25, 0.3], [40, 0.1]], "cluster_every": 1, "warmup_epochs": 0})
    cfg["stage2"]["epochs"] = 2
    tr = T.Trainer(cfg, str(manifest), tmp_path / "r", quiet=True)
    assert len(tr.cocktail_idx) == len(tr.solo_idx) == 12  # a stage-2 epoch costs 2.5 localisation epochs
    # after localisation epoch 0 and clustering round 0, both slow (start-up): 10 s + 10 s per epoch,
    # 2 x 25 s of stage 2, 90 s reserve -> (540 - 50 - 90) // 20 = 20 more epochs
    tr.history = [{"phase": "s1_loc", "wall_s": 10.0}, {"phase": "s1_cls", "wall_s": 10.0}]
    tr.step = 2
    tr.fit_time_budget(540.0)
    assert tr.cfg["stage1"]["epochs"] == 21 and tr.cfg["stage1"]["lr_steps"] == [[10, 0.3], [17, 0.1]]
    # three more epochs at 2 s + 2 s: (400 - 10 - 66) // 4 = 81 more, capped at the configured 50, whose
    # lr_steps come back whole
    tr.history += [{"phase": p, "wall_s": 2.0} for _ in range(3) for p in ("s1_loc", "s1_cls")]
    tr.step = 8
    tr.fit_time_budget(400.0)
    assert tr.cfg["stage1"]["epochs"] == 50 and tr.cfg["stage1"]["lr_steps"] == [[25, 0.3], [40, 0.1]]
    assert tr.plan[:8] == [(k, e) for e in range(4) for k in ("s1_loc", "s1_cls")]
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["stage1"]["epochs"] == 50
    # a whole run fits twice: after its first clustering round and once four epochs are timed
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**cfg, "stage1": {**cfg["stage1"], "epochs": 6, "batch_size": 4,
                                                       "class_batch_size": 4, "class_epochs": 1,
                                                       "kmeans_restarts": 1, "max_batches": 1, "lr_steps": None},
                                    "stage2": {**cfg["stage2"], "epochs": 1, "batch_size": 4, "max_batches": 1,
                                               "refit_steps": 5},
                                    "eval": {**cfg["eval"], "every": 0, "limit": 1, "final_splits": ["val"]}}))
    assert T.main(["--config", str(path), "--data", str(manifest), "--out", str(tmp_path / "run"), "--quiet",
                   "--time-budget", "3600"]) == 0
    log = (tmp_path / "run" / "log.txt").read_text()
    assert log.count("time budget:") == 2 and log.count("-> 6 stage-1 epochs (configured 6)") == 2


def test_all_pairs_loss_by_hand():
    n = 4
    flat = torch.zeros(n, n)  # every score 0.5: the BCE plateau
    assert abs(float(L.all_pairs_loss(flat)) - np.log(2)) < 1e-6
    assert abs(float(L.all_pairs_loss(flat, 1.0)) - (np.log(2) + np.log(n))) < 1e-6
    logits = torch.tensor([[2.0, -1.0], [0.5, 1.0]])
    sp = lambda x: np.log1p(np.exp(x))  # softplus: BCE of a logit with target 0 is sp(x), target 1 is sp(-x)
    bce = 0.5 * ((sp(-2.0) + sp(-1.0)) / 2 + (sp(-1.0) + sp(0.5)) / 2)
    rows = (-2.0 + np.log(np.exp(2.0) + np.exp(-1.0)) - 1.0 + np.log(np.exp(0.5) + np.exp(1.0))) / 2
    cols = (-2.0 + np.log(np.exp(2.0) + np.exp(0.5)) - 1.0 + np.log(np.exp(-1.0) + np.exp(1.0))) / 2
    assert abs(float(L.all_pairs_loss(logits)) - bce) < 1e-6
    assert abs(float(L.all_pairs_loss(logits, 0.5)) - (bce + 0.25 * (rows + cols))) < 1e-6


def test_train_pack_script_ships_the_run_in_parts(toy, tmp_path):
    import hashlib
    import subprocess
    _, manifest = toy
    pack = tmp_path / "toy.npz"
    P.write_pack(manifest, pack, val_per_kind=1, progress=False)
    cfg = {"seed": 3, "width": 4, "threads": 2, "workers": 0,
           "stage1": {"epochs": 2, "batch_size": 4, "all_pairs": True, "infonce": 1.0, "class_epochs": 1,
                      "class_batch_size": 4, "kmeans_restarts": 1, "warmup_epochs": 1, "max_batches": 1},
           "stage2": {"epochs": 1, "batch_size": 4, "refit_steps": 5, "max_batches": 1},
           "eval": {"every": 0, "limit": 1, "batch_size": 8, "final_splits": ["val"]}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    r = subprocess.run(["bash", str(ROOT / "Tools" / "train_pack.sh"), str(pack), str(path), str(tmp_path / "run"),
                        "600", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "on cpu" in r.stdout or "on cuda" in r.stdout
    sums = dict(reversed(line.split()) for line in (out / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {"model.safetensors", "checkpoints/state16.pt"}
    state = torch.load(tmp_path / "run" / "checkpoints" / "state16.pt", weights_only=True)
    assert state["pseudo"] is not None and state["cluster_to_class"] is not None
    assert all(v.dtype == torch.float16 for v in state["state_dict"].values() if v.is_floating_point())
    # the float16 state alone gives back the model (dsol.export), to float16 rounding
    from dsol import export as E
    assert E.main(["--checkpoint", str(tmp_path / "run" / "checkpoints" / "state16.pt"),
                   "--out", str(tmp_path / "m16.safetensors")]) == 0
    a, b = E.load_model(tmp_path / "run" / "model.safetensors"), E.load_model(tmp_path / "m16.safetensors")
    assert a.classes == b.classes
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.allclose(x, y, rtol=2e-2, atol=1e-3 * float(x.abs().max()) + 1e-6), name
    for name, digest in sums.items():
        parts = sorted(out.glob(Path(name).name + ".part-*"))
        assert parts and all(p.stat().st_size <= 15 * 2**20 for p in parts)
        assert hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest() == digest
    import tarfile
    with tarfile.open(out / "run.tar.gz") as t:
        assert {"config.yaml", "log.txt", "metrics.jsonl", "final.json"} <= set(t.getnames())
    # options after OUTDIR reach dsol.train, a relative path resolved from where the script was called
    r = subprocess.run(["bash", str(ROOT / "Tools" / "train_pack.sh"), str(pack), str(path), str(tmp_path / "run2"),
                        "600", str(tmp_path / "out2"), "--init", "run/checkpoints/state16.pt"],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    conf = yaml.safe_load((tmp_path / "run2" / "config.yaml").read_text())
    assert conf["init_from"] == str((tmp_path / "run" / "checkpoints" / "state16.pt").resolve())
    bad = subprocess.run(["bash", str(ROOT / "Tools" / "train_pack.sh"), str(tmp_path / "none.npz"), str(path),
                          str(tmp_path / "r2"), "10"], capture_output=True, text=True)
    assert bad.returncode == 1 and "no pack" in bad.stderr
