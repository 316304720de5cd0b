"""Smoke run of dsol.train on a generated toy data set: both stages, checkpoint, exact resume,
export, and the exported file loads back through dsol.export (whole file well under 2 min)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tools"))
torch = pytest.importorskip("torch")

from dsol import train as T  # noqa: E402
from dsol.data import PlainDataset  # noqa: E402
from dsol.toy import TOY_CLASSES, write_toy_dataset  # noqa: E402
from dsol.export import load_model, read_safetensors  # noqa: E402

CONFIG = {
    "seed": 3, "width": 4, "threads": 2, "workers": 0,
    "augment": {"enabled": True},
    "stage1": {"epochs": 1, "batch_size": 4, "class_epochs": 1, "class_batch_size": 4, "kmeans_restarts": 2,
               "max_batches": 2},
    "stage2": {"epochs": 1, "batch_size": 4, "refit_steps": 10, "max_batches": 2},
    "eval": {"limit": 2, "batch_size": 8},
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("smoke")
    manifest = write_toy_dataset(base / "data", seed=2, counts={
        "train": {"solo": 8, "synthetic": 6, "free": 2},
        "val": {"solo": 2, "synthetic": 2, "free": 1},
        "test": {"solo": 1, "synthetic": 1, "free": 0}})
    cfg = base / "smoke.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    full = base / "full"
    assert T.main(["--config", str(cfg), "--data", str(manifest), "--out", str(full), "--quiet"]) == 0
    return base, manifest, cfg, full


def test_run_outputs(setup):
    _, _, _, full = setup
    for name in ("config.yaml", "log.txt", "metrics.jsonl", "final.pt", "final.json", "model.safetensors",
                 "checkpoints/last.pt", "checkpoints/stage1_final.pt"):
        assert (full / name).exists(), name
    lines = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    phases = [x["phase"] for x in lines]
    assert phases == ["s1_loc", "s1_cls", "s2_init", "s2", "final"]
    assert all(np.isfinite(x["loss"]) for x in lines if "loss" in x)
    s2 = lines[3]
    assert {"kl", "l1", "val"} <= set(s2)
    val = s2["val"]
    assert {"iou@0.5", "auc"} <= set(val["solo"])
    assert {"ciou@0.3", "auc", "nsa"} <= set(val["synthetic"]["class_aware"])
    assert "loc_only" in val["synthetic"]  # the stage-1 baseline on cocktail scenes
    final = json.loads((full / "final.json").read_text())
    assert sorted(final["cluster_to_class"]) == [0, 1, 2, 3]
    assert "test_metrics" in final and "val_metrics" in final


@pytest.mark.parametrize("stop", [1, 3])  # inside stage 1; after s2_init (teacher, 2nd optimiser)
def test_resume_is_exact(setup, tmp_path, stop):
    _, manifest, cfg, full = setup
    part = tmp_path / "part"
    args = ["--config", str(cfg), "--data", str(manifest), "--out", str(part), "--quiet"]
    assert T.main(args + ["--stop-after", str(stop)]) == 0
    assert not (part / "final.pt").exists()
    with pytest.raises(SystemExit):  # refuses to overwrite a run
        T.main(args)
    assert T.main(["--data", str(manifest), "--out", str(part), "--quiet", "--resume"]) == 0
    a = torch.load(full / "final.pt", weights_only=True)
    b = torch.load(part / "final.pt", weights_only=True)
    assert a["cluster_to_class"] == b["cluster_to_class"]
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k


def test_init_starts_a_new_run_from_another_runs_weights(setup, tmp_path):
    _, manifest, cfg, full = setup
    src = full / "checkpoints" / "stage1_final.pt"
    ref = torch.load(src, weights_only=True)["state_dict"]
    trainer = T.Trainer(T.load_config(cfg), str(manifest), tmp_path / "api", quiet=True)
    assert not all(torch.equal(v, ref[k]) for k, v in trainer.model.state_dict().items())
    trainer.init_from(src)
    assert all(torch.equal(v, ref[k]) for k, v in trainer.model.state_dict().items())
    assert trainer.step == 0 and trainer.pseudo is None  # only the weights: the schedule starts afresh
    run = tmp_path / "ft"
    args = ["--config", str(cfg), "--data", str(manifest), "--out", str(run), "--quiet"]
    assert T.main(args + ["--init", str(src), "--stop-after", "1"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["init_from"] == str(src.resolve())
    assert "initialised from the weights in" in (run / "log.txt").read_text()
    # a changed config on resume keeps the record of where the weights came from
    assert T.main(["--config", str(cfg), "--data", str(manifest), "--out", str(run), "--quiet", "--resume",
                   "--stop-after", "1"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["init_from"] == str(src.resolve())


def test_init_rejects_bad_checkpoints(setup, tmp_path):
    _, manifest, cfg, full = setup
    args = ["--config", str(cfg), "--data", str(manifest), "--quiet"]
    with pytest.raises(SystemExit):  # no such file
        T.main(args + ["--out", str(tmp_path / "a"), "--init", str(tmp_path / "none.pt")])
    with pytest.raises(SystemExit):  # with --resume
        T.main(args + ["--out", str(full), "--resume", "--init", str(full / "final.pt")])
    other = tmp_path / "wide.pt"  # a width-8 network's weights for this width-4 configuration
    torch.save({"model": T.DSOL(width=8, num_classes=4).state_dict()}, other)
    with pytest.raises(SystemExit, match="does not fit"):
        T.main(args + ["--out", str(tmp_path / "b"), "--init", str(other)])


def test_init_with_no_stage1_epochs_runs_stage2_on_the_checkpoints_dictionary(setup, tmp_path):
    _, manifest, cfg, full = setup
    src = full / "checkpoints" / "stage1_final.pt"
    ref = torch.load(src, weights_only=True)
    conf = T.load_config(cfg)
    conf["stage1"]["epochs"] = 0
    s2cfg = tmp_path / "s2.yaml"
    s2cfg.write_text(yaml.safe_dump(conf))
    run = tmp_path / "s2"
    args = ["--config", str(s2cfg), "--data", str(manifest), "--quiet"]
    assert T.main(args + ["--out", str(run), "--init", str(src)]) == 0
    phases = [json.loads(x)["phase"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert phases == ["s2_init", "s2", "final"]  # no clustering: the checkpoint's is used
    fin = torch.load(run / "final.pt", weights_only=True)
    assert torch.equal(fin["state_dict"]["dsol.dictionary"], ref["state_dict"]["dsol.dictionary"])
    _, meta = read_safetensors(run / "model.safetensors")
    assert meta["source"].endswith("stage1 0 ep, stage2 1 ep; init from full/checkpoints/stage1_final.pt"), meta
    assert not torch.equal(fin["state_dict"]["loc.v_fc1.weight"], ref["state_dict"]["loc.v_fc1.weight"])
    # resumable like any run: stopped after s2_init, resumed, it ends where the uninterrupted one did
    part = tmp_path / "s2part"
    assert T.main(args + ["--out", str(part), "--init", str(src), "--stop-after", "1"]) == 0
    assert T.main(["--data", str(manifest), "--out", str(part), "--quiet", "--resume"]) == 0
    got = torch.load(part / "final.pt", weights_only=True)
    for k, v in fin["state_dict"].items():
        assert torch.equal(v, got["state_dict"][k]), k
    # a softer teacher (stage2.teacher_temperature) gives another KL from the same start
    kl = {}
    for t in (1.0, 4.0):
        conf["stage2"]["teacher_temperature"] = t
        s2cfg.write_text(yaml.safe_dump(conf))
        assert T.main(args + ["--out", str(tmp_path / f"t{t:.0f}"), "--init", str(src)]) == 0
        lines = [json.loads(x) for x in (tmp_path / f"t{t:.0f}" / "metrics.jsonl").read_text().splitlines()]
        kl[t] = next(x["kl"] for x in lines if x["phase"] == "s2")
    assert kl[1.0] == next(json.loads(x)["kl"] for x in (run / "metrics.jsonl").read_text().splitlines()
                           if json.loads(x)["phase"] == "s2")  # temperature 1: the authors' KL, as before
    assert kl[4.0] != kl[1.0]
    conf["stage2"]["teacher_temperature"] = 1.0
    # stage2.keep_l holds the sounding map near the teacher's: at a learning rate that moves the
    # network, l on the training pictures stays closer to stage 1's with it than without
    drift = {}
    for keep in (0.0, 50.0):
        conf["stage2"].update({"keep_l": keep, "lr": 3e-3, "epochs": 2})
        s2cfg.write_text(yaml.safe_dump(conf))
        out = tmp_path / f"keep{keep:.0f}"
        assert T.main(args + ["--out", str(out), "--init", str(src)]) == 0
        tr = T.Trainer(T.load_config(s2cfg), str(manifest), tmp_path / "probe", quiet=True)
        tr.model.load_state_dict(torch.load(out / "final.pt", weights_only=True)["state_dict"])
        teacher = T.Trainer(T.load_config(s2cfg), str(manifest), tmp_path / "probe", quiet=True).model
        teacher.load_state_dict(ref["state_dict"])
        items = [PlainDataset(tr.stores["train"], tr.cocktail_idx[:6])[k] for k in range(6)]
        x = torch.stack([torch.as_tensor(b["image"]) for b in items])
        a = torch.stack([torch.as_tensor(b["audio"]) for b in items])
        with torch.no_grad():
            ls = [m.eval().loc(T.trunk(m.vision, x, 0), m.audio(a)) for m in (tr.model, teacher)]
        drift[keep] = float((ls[0] - ls[1]).abs().mean())
    assert drift[50.0] < 0.5 * drift[0.0], drift
    conf["stage2"].update({"keep_l": 0.0, "lr": 1e-4, "epochs": 1})
    # the affine of m = w_o (d.f) + b_o is set afresh from this configuration's affine_scale
    affine = {}
    for k in (10.0, 40.0):
        conf["stage2"]["epochs"], conf["stage2"]["affine_scale"] = 0, k
        s2cfg.write_text(yaml.safe_dump(conf))
        assert T.main(args + ["--out", str(tmp_path / f"k{k:.0f}"), "--init", str(src)]) == 0
        affine[k] = torch.load(tmp_path / f"k{k:.0f}" / "final.pt", weights_only=True)["state_dict"]["dsol.affine"]
    assert torch.allclose(affine[40.0], 4 * affine[10.0], rtol=1e-5)
    # weights without pseudo-labels cannot stand in for stage 1
    bare = tmp_path / "bare.pt"
    torch.save({"model": ref["state_dict"]}, bare)
    with pytest.raises(SystemExit, match="needs a stage-1 checkpoint"):
        T.main(args + ["--out", str(tmp_path / "c"), "--init", str(bare)])


def test_export_loads_back(setup):
    _, _, _, full = setup
    model = load_model(full / "model.safetensors")
    _, meta = read_safetensors(full / "model.safetensors")
    c2c = json.loads(meta["cluster_to_class"])
    names = json.loads(meta["classes"])
    assert names == [TOY_CLASSES[c] for c in c2c]
    assert model.width == 4 and model.num_classes == 4
    # the folded file computes what the trained network computes
    ck = torch.load(full / "final.pt", weights_only=True)
    net = T.DSOL(width=4, num_classes=4, classes=names)
    net.load_state_dict(ck["state_dict"])
    net.eval()
    x = torch.randn(2, 3, 224, 224)
    a = torch.randn(2, 1, 201, 64) * 10 - 40
    with torch.no_grad():
        o1, o2 = net(x, a), model(x, a)
    for k in ("l", "class_maps", "p_a", "p_v"):
        torch.testing.assert_close(o1[k], o2[k], atol=1e-4, rtol=1e-4)
    # the dictionary is the stage-1 one, fixed through stage 2
    s1 = torch.load(full / "checkpoints" / "stage1_final.pt", weights_only=True)
    assert torch.equal(s1["state_dict"]["dsol.dictionary"], ck["state_dict"]["dsol.dictionary"])


def test_music_layout_run(tmp_path, setup):
    """Training on a real-MUSIC-style folder (solo clips, no cocktail scenes: stage 2 skipped) with
    a duet-style annotation file as the test split."""
    import shutil
    import wave

    _, manifest, _, _ = setup
    pngs = sorted((manifest.parent / "images" / "train" / "solo").glob("*.png"))
    wavs = sorted((manifest.parent / "audio" / "train" / "solo").glob("*.wav"))
    root = tmp_path / "music"
    classes = ["violin", "flute"]
    for n, (png, wav) in enumerate(zip(pngs[:6], wavs[:6])):
        clip = f"{classes[n % 2]}/v{n}"
        for f in range(2):
            dst = root / "solo" / "frames" / clip / f"{f:06d}.png"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(png, dst)
        dst = root / "solo" / "audio" / f"{clip}.wav"
        dst.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(wav)) as w:
            pcm = w.readframes(w.getnframes())
        with wave.open(str(dst), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(pcm + pcm)  # 2 s track
    ann = {"solo/frames/violin/v0/000001.png": {"bbox": [{"normbox": [0.1, 0.1, 0.5, 0.5], "category_id": 11}]}}
    (root / "duet.json").write_text(json.dumps(ann))
    cfg = dict(CONFIG, data={"music": {"classes": classes, "fps": 1.0, "val_fraction": 0.0,
                                       "duet_annotation": str(root / "duet.json")}})
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert T.main(["--config", str(tmp_path / "m.yaml"), "--data", str(root), "--out", str(out), "--quiet"]) == 0
    final = json.loads((out / "final.json").read_text())
    assert "train solo 11," in (out / "log.txt").read_text()  # the annotated frame is held out
    assert sorted(final["cluster_to_class"]) == [0, 1]
    assert final["test_metrics"]["music_duet"]["class_aware"]["n"] == 1
    assert load_model(out / "model.safetensors").num_classes == 2


def test_benchmark_cli(capsys):
    assert T.main(["--benchmark", "--width", "4", "--batch", "2", "--iters", "1", "--threads", "1"]) == 0
    assert "stage-1 localisation" in capsys.readouterr().out
