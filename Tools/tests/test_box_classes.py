"""dsol.box_classes: box cells and the per-box class on hand-made maps, the summary on
hand-counted records, and the whole evaluation against the model's own forward pass."""
import json
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from dsol.box_classes import box_cells, box_class, evaluate, main, summarise  # noqa: E402
from dsol.data import image_input  # noqa: E402
from dsol.toy import TOY_CLASSES, write_toy_dataset  # noqa: E402
from dsol.export import export_model, random_model  # noqa: E402


def test_box_cells_take_the_cells_whose_centres_are_inside():
    assert box_cells([0.0, 0.0, 0.5, 0.5], 14) == (slice(0, 7), slice(0, 7))
    assert box_cells([0.5, 0.25, 0.5, 0.75], 14) == (slice(3, 14), slice(7, 14))
    # a box between cell centres falls back to the cell holding its centre
    assert box_cells([0.3, 0.6, 0.01, 0.02], 14) == (slice(8, 9), slice(4, 5))


def test_box_class_is_the_highest_mean_inside_the_box():
    m = np.zeros((3, 14, 14))
    m[1] = 0.6
    m[2, :7, :7] = 1.0
    assert box_class(m, [0.0, 0.0, 0.5, 0.5]) == 2
    assert box_class(m, [0.5, 0.5, 0.5, 0.5]) == 1
    # half inside the bright corner: mean 0.5 < 0.6
    assert box_class(m, [0.0, 0.0, 0.5, 1.0]) == 1


def test_summary_counts_by_drawing_and_class():
    r = summarise([("a", "seen", True), ("a", "new", False), ("b", "new", True), ("b", "new", False)])
    assert r["objects"] == 4 and r["accuracy"] == 0.5
    assert r["by_drawing"] == {"new": {"objects": 3, "accuracy": pytest.approx(1 / 3)},
                               "seen": {"objects": 1, "accuracy": 1.0}}
    assert r["by_class"]["b"] == {"new": {"objects": 2, "accuracy": 0.5}}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    d = tmp_path_factory.mktemp("box")
    path = write_toy_dataset(d, seed=3)
    m = json.loads(path.read_text())
    # name drawings as the builder does: ":a" ones are in training, ":b" ones are not
    for i, s in enumerate(m["scenes"]):
        for o in s["objects"]:
            o["drawing"] = f"{o['class']}:{'ab'[i % 2]}"
    m["splits"] = {"train": {"drawings": {c: [f"{c}:a"] for c in TOY_CLASSES}}}
    path.write_text(json.dumps(m))
    model = random_model(width=8, num_classes=len(TOY_CLASSES), seed=5, classes=TOY_CLASSES)
    export_model(model, d / "m.safetensors", "test")
    return str(path), str(d / "m.safetensors"), m


def test_evaluate_agrees_with_the_forward_pass(toy):
    from dsol.export import load_model
    from PIL import Image
    manifest, model_path, m = toy
    r = evaluate(model_path, manifest, split="val")
    scenes = [s for s in m["scenes"] if s["split"] == "val" and s["kind"] in ("synthetic", "free")]
    objs = [(i, o) for i, s in enumerate(scenes) for o in s["objects"]]
    assert r["objects"] == len(objs) and r["scenes"] == len(scenes)
    # independent path: m_k = s_k / l from the full forward pass
    model = load_model(model_path)
    root = os.path.dirname(manifest)
    x = torch.from_numpy(np.stack([image_input(np.asarray(Image.open(os.path.join(root, s["image"])).convert("RGB")))
                                   for s in scenes]))
    with torch.no_grad():
        o = model(x, torch.zeros(len(scenes), 1, 201, 64))
    resp = (o["s"] / o["l"]).numpy()
    ok = [model.classes[box_class(resp[i], ob["box"])] == ob["class"] for i, ob in objs]
    assert r["accuracy"] == pytest.approx(np.mean(ok))
    seen = [ob["drawing"].endswith(":a") for _, ob in objs]
    assert r["by_drawing"]["seen"]["objects"] == sum(seen)
    assert r["by_drawing"]["new"]["objects"] == len(objs) - sum(seen)


def test_cli_writes_json_and_rejects_foreign_classes(toy, tmp_path, capsys):
    manifest, model_path, m = toy
    out = tmp_path / "r.json"
    assert main(["--model", model_path, "--data", manifest, "--split", "val", "--json", str(out)]) == 0
    assert "recognised at the box" in capsys.readouterr().out
    assert json.loads(out.read_text())["split"] == "val"
    other = dict(m, classes=TOY_CLASSES + ["banjo"])
    p = tmp_path / "other.json"
    p.write_text(json.dumps(other))
    with pytest.raises(SystemExit):
        evaluate(model_path, str(p), split="val")
