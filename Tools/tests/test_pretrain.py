"""dsol.pretrain (the supervised warm start of the vision trunk) and dsol.train --vision-init."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tools"))
torch = pytest.importorskip("torch")

from dsol import pretrain as P  # noqa: E402
from dsol import train as T  # noqa: E402
from dsol.toy import write_toy_dataset  # noqa: E402
from dsol.model import ResNetS5  # noqa: E402

PLAIN = (0, 224, 0, 224, False, 1.0, 1.0)  # draw_image's parameters without augmentation
BG = 11


def test_cell_labels_by_hand():
    left = {"box": [0.0, 0.0, 0.5, 1.0], "label": 3}
    t = P.cell_labels([left], PLAIN, 224, 224, BG)
    # cell centres (j + 0.5) / 14 < 0.5 for j <= 6
    assert (t[:, :7] == 3).all() and (t[:, 7:] == BG).all()
    flipped = P.cell_labels([left], (0, 224, 0, 224, True, 1.0, 1.0), 224, 224, BG)
    assert (flipped[:, 7:] == 3).all() and (flipped[:, :7] == BG).all()
    # a crop of the right half (x0 = 112, width 112): the left-half box leaves the picture
    assert (P.cell_labels([left], (0, 224, 112, 112, False, 1.0, 1.0), 224, 224, BG) == BG).all()
    # an unlabelled box is ignored, and so are cells where two classes overlap
    unl = {"box": [0.5, 0.0, 0.5, 0.5], "label": None}
    other = {"box": [0.25, 0.5, 0.5, 0.5], "label": 4}
    t = P.cell_labels([left, unl, other], PLAIN, 224, 224, BG)
    assert (t[:7, 7:] == P.IGNORE).all()
    # other covers centres 0.25 <= c < 0.75: columns 3..9; it overlaps left (columns 0..6) in 3..6
    assert (t[7:, 3:7] == P.IGNORE).all()
    assert (t[7:, 7:10] == 4).all() and (t[:7, :7] == 3).all() and (t[7:, 10:] == BG).all()


def test_moved_box_follows_crop_and_flip():
    box = [0.25, 0.5, 0.25, 0.25]  # x 56..112, y 112..168 in a 224 picture
    assert P.moved_box(box, (112, 112, 0, 112, False), 224, 224) == pytest.approx((0.5, 0.0, 1.0, 0.5))
    assert P.moved_box(box, (112, 112, 0, 112, True), 224, 224) == pytest.approx((0.0, 0.0, 0.5, 0.5))


def test_labels_come_from_procedural_drawings_only(tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"scenes": [{"id": "x", "objects": [
        {"box": [0, 0, 1, 1], "class_id": 2, "drawing": "flute:procedural-007"},
        {"box": [0, 0, 1, 1], "class_id": 5, "drawing": "tuba:noto-emoji-1f3ba"}]}]}))

    class S:  # what dsol.data.load_manifest gives: objects without their drawings
        id = "x"
        objects = [{"box": [0, 0, 1, 1], "class_id": 2}, {"box": [0, 0, 1, 1], "class_id": 5}]
    names = P.drawing_names(manifest)
    assert [o["label"] for o in P.labelled_objects(S, "procedural", names)] == [2, None]
    assert [o["label"] for o in P.labelled_objects(S, "all", names)] == [2, 5]
    assert [o["label"] for o in P.labelled_objects(S, "procedural")] == [None, None]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    base = tmp_path_factory.mktemp("pretrain")
    manifest = write_toy_dataset(base / "data", seed=4, counts={
        "train": {"solo": 8, "synthetic": 4, "free": 2},
        "val": {"solo": 2, "synthetic": 2, "free": 1},
        "test": {"solo": 1, "synthetic": 1, "free": 0}})
    return base, manifest


def test_pretrain_then_vision_init(toy, tmp_path):
    base, manifest = toy
    with pytest.raises(SystemExit, match="procedural"):  # the toy drawings are not procedural
        P.main(["--data", str(manifest), "--out", str(tmp_path / "none"), "--width", "4", "--quiet"])
    out = tmp_path / "pre"
    args = ["--data", str(manifest), "--out", str(out), "--width", "4", "--epochs", "2", "--batch", "4",
            "--labels", "all", "--quiet", "--threads", "2"]
    assert P.main(args) == 0
    hist = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [0, 1]
    assert all(np.isfinite(h["loss"]) and 0 <= h["val"]["box_accuracy"] <= 1 and h["val"]["objects"] > 0
               for h in hist)
    with pytest.raises(SystemExit):  # refuses to overwrite a run
        P.main(args)
    assert P.main(args + ["--resume"]) == 0  # nothing left to do: the same weights again
    vision = torch.load(out / "vision.pt", weights_only=True)["vision"]
    assert set(vision) == set(ResNetS5(3, 4).state_dict())  # the trunk alone, in the training layout

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"width": 4, "stage1": {"epochs": 0}, "stage2": {"epochs": 0},
                                   "eval": {"limit": 1, "final_splits": []}}))
    run = tmp_path / "run"
    assert T.main(["--config", str(cfg), "--data", str(manifest), "--out", str(run), "--quiet",
                   "--vision-init", str(out / "vision.pt"), "--stop-after", "0"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["vision_init"] == str((out / "vision.pt").resolve())


def _trainer(manifest, tmp_path, width):
    cfg = T.load_config(None)
    cfg["width"] = width
    return T.Trainer(cfg, str(manifest), tmp_path / f"t{width}", quiet=True)


def test_vision_init_reads_the_torchvision_layout(toy, tmp_path):
    _, manifest = toy
    torch.manual_seed(0)
    ref = ResNetS5(3, 8)
    sd = {f"module.{k}": torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v
          for k, v in ref.state_dict().items()}
    sd["module.fc.weight"], sd["module.fc.bias"] = torch.randn(1000, 64), torch.randn(1000)  # dropped
    path = tmp_path / "tv.pth"
    torch.save(sd, path)
    tr = _trainer(manifest, tmp_path, 8)
    tr.vision_init(path)
    got = tr.model.vision.state_dict()
    for k, v in sd.items():
        if not k.startswith("module.fc."):
            assert torch.equal(got[k.removeprefix("module.")], v), k
    with pytest.raises(SystemExit, match="shapes do not fit"):
        _trainer(manifest, tmp_path, 4).vision_init(path)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(SystemExit, match="not a ResNet-18 trunk"):
        tr.vision_init(tmp_path / "bad.pth")


def test_schedule_warms_up_then_anneals_to_zero():
    assert P.schedule(0.0) < 0.05 and P.schedule(0.05) == pytest.approx(1.0)
    assert P.schedule(0.525) == pytest.approx(0.5) and P.schedule(1.0) == pytest.approx(0.0, abs=1e-12)
    xs = [P.schedule(f) for f in np.linspace(0.05, 1.0, 20)]
    assert all(a >= b for a, b in zip(xs, xs[1:]))


def test_time_budget_stops_within_an_epoch_and_val_reads_a_pack(toy, tmp_path):
    from dsol import pack as PK
    _, manifest = toy
    pk = tmp_path / "val.npz"
    PK.write_pack(manifest, pk, val_per_kind=2, progress=False)
    out = tmp_path / "budget"
    assert P.main(["--data", str(manifest), "--val", str(pk), "--out", str(out), "--width", "4", "--epochs", "50",
                   "--batch", "2", "--labels", "all", "--time-budget", "0.001", "--quiet", "--threads", "2"]) == 0
    hist = json.loads((out / "history.json").read_text())
    assert len(hist) == 1 and hist[0]["steps"] == 1       # out of time at the first step
    assert hist[0]["val"]["objects"] > 0                  # scored on the pack's validation scenes
    assert "time budget" in (out / "log.txt").read_text()


def test_gpu_window_script_on_the_cpu(toy, tmp_path):
    """The whole window at toy size: fresh pictures, warm start, stage 1 from it, the trip back."""
    import subprocess
    from dsol import pack as PK
    _, manifest = toy
    pk = tmp_path / "toy.npz"
    PK.write_pack(manifest, pk, val_per_kind=1, progress=False)
    cfg = yaml.safe_load((ROOT / "Tools/dsol/configs/gpu_fast.yaml").read_text())
    cfg["stage1"].update({"epochs": 2, "batch_size": 4, "class_batch_size": 4, "max_batches": 1,
                          "kmeans_restarts": 1, "cluster_every": 1})
    cfg["eval"].update({"limit": 1, "batch_size": 8})
    cfg["threads"] = 2
    path = tmp_path / "fast.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    r = subprocess.run(["bash", str(ROOT / "Tools/gpu_window.sh"), str(pk), str(out), "--minutes", "6",
                        "--pretrain-minutes", "1", "--scenes", "12", "--width", "4", "--config", str(path)],
                       capture_output=True, text=True, timeout=900,
                       env={**__import__("os").environ, "GPU_WINDOW_WORK": str(tmp_path / "work")})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    names = {p.name for p in out.iterdir()}
    assert {"window.log", "run.tar.gz", "pretrain.tar.gz", "SHA256SUMS"} <= names
    assert any(n.startswith("state16.pt.part-") for n in names) and not any(n.startswith("model.") for n in names)
    conf = yaml.safe_load((tmp_path / "work" / "run" / "config.yaml").read_text())
    assert conf["vision_init"].endswith("pretrain/vision.pt") and conf["width"] == 4
    log = (out / "window.log").read_text()
    assert "1/3" in log and "2/3" in log and "3/3" in log and "done in" in log
