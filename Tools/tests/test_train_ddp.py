"""dsol.train under torchrun (dsol.distributed), on the CPU with the gloo backend: two processes share
each global batch and give the losses, clusters and weights of one process, and a run stopped under
one process resumes under two. Tiny network and data, a few steps."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tools"))
torch = pytest.importorskip("torch")

from dsol import train as T  # noqa: E402
from dsol.distributed import Dist  # noqa: E402
from dsol.toy import write_toy_dataset  # noqa: E402

BASE = {
    "seed": 5, "width": 4, "threads": 1, "workers": 0, "keep_checkpoints": 10,
    "augment": {"enabled": True},
    "stage1": {"epochs": 2, "batch_size": 5, "class_epochs": 1, "class_batch_size": 5, "kmeans_restarts": 2,
               "max_batches": 2},
    "stage2": {"epochs": 1, "batch_size": 4, "refit_steps": 5, "max_batches": 2, "keep_l": 0.5},
    "eval": {"every": 0, "limit": 2, "batch_size": 8, "final_splits": ["val"]},
}
# the batch-softmax matching over the whole batch (gathered embeddings); 5 = a 3 + 2 split
ALL_PAIRS = T.deep_merge(BASE, {"stage1": {"all_pairs": True, "infonce": 0.5}})
# the authors' one-negative BCE, one stage-1 epoch alone
PLAIN = T.deep_merge(BASE, {"stage1": {"epochs": 1, "batch_size": 4, "class_batch_size": 4},
                            "stage2": {"epochs": 0}, "eval": {"final_splits": []}})
SUMS = ("loss", "match_acc", "class_loss", "kl", "l1", "kmeans_inertia")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    b = tmp_path_factory.mktemp("ddp")
    manifest = write_toy_dataset(b / "data", seed=4, counts={
        "train": {"solo": 10, "synthetic": 6, "free": 0},
        "val": {"solo": 2, "synthetic": 1, "free": 0},
        "test": {"solo": 1, "synthetic": 1, "free": 0}})
    for name, cfg in (("all_pairs", ALL_PAIRS), ("plain", PLAIN)):
        (b / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    return b, manifest


def torchrun(args: list[str], nproc: int = 2) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "Tools"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "dsol.train", *args, "--quiet"]
    r = subprocess.run(cmd, cwd=ROOT / "Tools", env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def history(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def close(a, b, rel=1e-4, abs_=1e-5):
    return np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=rel, atol=abs_)


def assert_same_training(one: list[dict], two: list[dict], rel: float = 1e-4) -> None:
    """The same steps with the same losses, within float tolerance: the same sums in another order
    (Adam's first steps are nearly sign(g) * lr, so rounding-level differences of a gradient near 0
    grow into lr-sized ones in a few parameters; a few steps stay within 1e-4 here)."""
    assert [(e["phase"], e["epoch"]) for e in one] == [(e["phase"], e["epoch"]) for e in two]
    for a, b in zip(one, two):
        assert a.get("cluster_sizes") == b.get("cluster_sizes"), a["phase"]
        assert a.get("batches") == b.get("batches"), a["phase"]
        for k in SUMS:
            assert (k in a) == (k in b), k
            if k in a:
                assert close(a[k], b[k], rel), (a["phase"], a["epoch"], k, a[k], b[k])


def assert_close_weights(a: dict, b: dict, tol: float) -> None:
    """Equal within tol (relative and absolute); a BatchNorm running mean within tol of its layer's
    standard deviation (the audio stem sees decibels: means near 0, deviations in the tens)."""
    assert a.keys() == b.keys()
    for k, v in a.items():
        if v.is_floating_point():
            scale = 1.0
            if k.endswith("running_mean"):
                scale = max(1.0, float(a[k.replace("running_mean", "running_var")].max()) ** 0.5)
            assert torch.allclose(v, b[k], rtol=tol, atol=tol * scale), (k, float((v - b[k]).abs().max()))
        else:
            assert torch.equal(v, b[k]), k  # BatchNorm's num_batches_tracked


def test_two_processes_match_one_and_resume_one(base):
    """Batch-softmax matching, clustering and stage 2: one process for the first localisation epoch and
    clustering round, then two (--resume with another number of processes), against one throughout."""
    b, manifest = base
    cfg = b / "all_pairs.yaml"
    one, two = b / "ap_one", b / "ap_one_then_two"
    assert T.main(["--config", str(cfg), "--data", str(manifest), "--out", str(one), "--quiet"]) == 0
    assert T.main(["--config", str(cfg), "--data", str(manifest), "--out", str(two), "--quiet",
                   "--stop-after", "2"]) == 0
    torchrun(["--data", str(manifest), "--out", str(two), "--resume"])
    h1, h2 = history(one), history(two)
    # rank 0 alone writes: one line per step, and its log says how the run was shared
    assert [e["phase"] for e in h2] == ["s1_loc", "s1_cls", "s1_loc", "s1_cls", "s2_init", "s2", "final"]
    assert "2 processes (gloo)" in (two / "log.txt").read_text()
    assert_same_training(h1, h2)
    # the clustering under two processes: the same pseudo-labels, dictionary within float tolerance
    s1a = torch.load(one / "checkpoints" / "stage1_final.pt", weights_only=True)
    s1b = torch.load(two / "checkpoints" / "stage1_final.pt", weights_only=True)
    assert torch.equal(s1a["pseudo"], s1b["pseudo"])
    assert s1a["cluster_to_class"] == s1b["cluster_to_class"]
    assert_close_weights(s1a["state_dict"], s1b["state_dict"], 1e-4)  # BatchNorm running stats included
    f1 = json.loads((one / "final.json").read_text())
    f2 = json.loads((two / "final.json").read_text())
    assert f1["cluster_to_class"] == f2["cluster_to_class"]
    assert (two / "model.safetensors").exists()


def test_two_processes_plain_matching(base):
    """The authors' one-negative BCE (scores gathered), a 2 + 2 split, stage 1 from the start."""
    b, manifest = base
    cfg = b / "plain.yaml"
    one, two = b / "plain_one", b / "plain_two"
    assert T.main(["--config", str(cfg), "--data", str(manifest), "--out", str(one), "--quiet"]) == 0
    torchrun(["--config", str(cfg), "--data", str(manifest), "--out", str(two)])
    assert_same_training(history(one), history(two))
    a = torch.load(one / "final.pt", weights_only=True)
    c = torch.load(two / "final.pt", weights_only=True)
    assert a["cluster_to_class"] == c["cluster_to_class"]
    # Adam moves a parameter by about lr per step whatever its gradient's size, so a gradient near 0
    # that rounds to the other sign parts the runs by up to 2 lr a step: 4 steps at lr 1e-4
    assert_close_weights(a["state_dict"], c["state_dict"], 8e-4)
    pa = torch.load(one / "checkpoints" / "last.pt", weights_only=True)["pseudo"]
    pc = torch.load(two / "checkpoints" / "last.pt", weights_only=True)["pseudo"]
    assert torch.equal(pa, pc)


def test_shares_of_a_batch():
    d = Dist(1, 2)
    assert d.shard_bounds(5) == [(0, 3), (3, 5)]
    assert Dist(0, 2).shard([7, 8, 9, 10, 11]) == [7, 8, 9] and d.shard([7, 8, 9, 10, 11]) == [10, 11]
    assert Dist(0, 1).shard_plan([[1, 2], [3]]) == [[1, 2], [3]]
    with pytest.raises(ValueError, match="batch size of at least 3"):
        Dist(0, 3).shard([1, 2])
