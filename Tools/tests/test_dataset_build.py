"""Tiny builds of the data set: determinism (workers, resume), manifest schema,
boxes, mosaics, free scenes, split disjointness, WAV format, annotations.

Needs the assets installed by Tools/dataset/install_assets.sh; installs nothing."""
import filecmp
import json
import os
import sys
import wave

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from dataset import CLASSES, CLIP_SAMPLES, SAMPLE_RATE  # noqa: E402
from dataset import assets as A  # noqa: E402

COUNTS = {"solo": 22, "synthetic": 10, "free": 10}
SPLITS = ["train", "val", "test"]


def require_assets():
    problems = A.check()
    if problems:
        pytest.fail("data-set assets missing - run Tools/dataset/install_assets.sh (as root):\n  "
                    + "\n  ".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    require_assets()
    from dataset.build import build
    a = str(tmp_path_factory.mktemp("ds") / "a")
    b = str(tmp_path_factory.mktemp("ds") / "b")
    build(a, 11, COUNTS, SPLITS, workers=1, quiet=True)
    build(b, 11, COUNTS, SPLITS, workers=2, quiet=True)
    with open(os.path.join(a, "manifest.json")) as f:
        manifest = json.load(f)
    return a, b, manifest


def tree(root):
    out = []
    for r, _, files in os.walk(root):
        out += [os.path.relpath(os.path.join(r, f), root) for f in files]
    return sorted(out)


def assert_identical(a, b):
    ta, tb = tree(a), tree(b)
    assert ta == tb
    _, mismatch, errors = filecmp.cmpfiles(a, b, ta, shallow=False)
    assert not mismatch and not errors, mismatch[:5]


def test_assets_installed():
    require_assets()


def test_same_seed_same_bytes_any_worker_count(built):
    a, b, _ = built
    assert_identical(a, b)


def test_resume_rebuilds_only_missing_or_broken(built):
    from dataset.build import build
    a, b, m = built
    victims = [m["scenes"][0], m["scenes"][-1], m["scenes"][len(m["scenes"]) // 2]]
    os.remove(os.path.join(b, victims[0]["image"]))
    os.remove(os.path.join(b, victims[1]["audio"]))
    with open(os.path.join(b, victims[2]["image"]), "r+b") as f:  # truncated file
        f.truncate(100)
    with pytest.raises(SystemExit):
        build(b, 11, COUNTS, SPLITS, workers=1, quiet=True)  # refuses to overwrite
    report = build(b, 11, COUNTS, SPLITS, workers=1, resume=True, quiet=True)
    assert report["built"] == 3 and report["skipped"] == len(m["scenes"]) - 3
    assert_identical(a, b)
    with pytest.raises(SystemExit):  # other parameters: no silent mixing
        build(b, 12, COUNTS, SPLITS, workers=1, resume=True, quiet=True)


def test_other_seed_differs(built, tmp_path):
    from dataset.build import build
    a, _, _ = built
    c = str(tmp_path / "c")
    build(c, 12, {"solo": 3, "synthetic": 0, "free": 0}, ["train"], workers=1, quiet=True)
    f = "images/train/solo/train-solo-000000.png"
    assert not filecmp.cmp(os.path.join(a, f), os.path.join(c, f), shallow=False)


def test_manifest_schema(built):
    a, _, m = built
    assert m["classes"] == CLASSES
    for key in ("builder_version", "seed", "assets", "shared_drawings", "splits", "scenes",
                "sound_families", "counts"):
        assert key in m
    assert m["seed"] == 11
    assert {d["class"] for d in m["assets"]["drawings"]} == set(CLASSES)
    for d in m["assets"]["drawings"]:
        assert d["origins"] and all(o["licence"] and o["licence"] != "unknown" and o["package"]
                                    and o["path"] for o in d["origins"])
    for b in m["assets"]["backgrounds"]:
        assert b["licence"] and b["licence"] != "unknown"
    assert {s["family"] for s in m["assets"]["soundfonts"]} == {"A", "B"}
    ids = [s["id"] for s in m["scenes"]]
    assert len(ids) == len(set(ids))
    for sp in SPLITS:
        for kind, n in COUNTS.items():
            assert m["counts"][sp][kind] == sum(
                1 for s in m["scenes"] if s["split"] == sp and s["kind"] == kind) > 0
    for s in m["scenes"]:
        assert s["split"] in SPLITS and s["kind"] in COUNTS
        assert os.path.isfile(os.path.join(a, s["image"])) and os.path.isfile(os.path.join(a, s["audio"]))
        assert s["sounding_classes"] == [c for c in CLASSES if c in
                                         {o["class"] for o in s["objects"] if o["sounding"]}]
        for o in s["objects"]:
            assert CLASSES[o["class_id"]] == o["class"]
            assert isinstance(o["sounding"], bool)
            assert o["drawing"].startswith(o["class"] + ":")
            if o["sounding"]:
                assert set(o["sound"]) >= {"soundfont", "program", "family"}
            else:
                assert o["sound"] is None


def test_boxes_inside_image(built):
    _, _, m = built
    for s in m["scenes"]:
        for o in s["objects"]:
            x, y, w, h = o["box"]
            assert w > 0.02 and h > 0.02
            assert x >= 0 and y >= 0 and x + w <= 1 + 1e-6 and y + h <= 1 + 1e-6


def test_solo_scenes_one_sounding_object(built):
    _, _, m = built
    for s in (s for s in m["scenes"] if s["kind"] == "solo"):
        assert len(s["objects"]) == 1 and s["objects"][0]["sounding"]


def test_mosaics_two_sounding_of_four_classes_one_per_quadrant(built):
    _, _, m = built
    mosaics = [s for s in m["scenes"] if s["kind"] == "synthetic"]
    assert mosaics
    for s in mosaics:
        objs = s["objects"]
        assert len(objs) == 4
        assert len({o["class"] for o in objs}) == 4
        assert sum(o["sounding"] for o in objs) == 2
        quads = set()
        for o in objs:
            x, y, w, h = o["box"]
            qx, qy = int(x >= 0.5), int(y >= 0.5)
            assert x + w <= 0.5 * (qx + 1) + 1e-6 and y + h <= 0.5 * (qy + 1) + 1e-6
            quads.add((qx, qy))
        assert len(quads) == 4


def test_free_scenes_disjoint_boxes_some_silent(built):
    _, _, m = built
    free = [s for s in m["scenes"] if s["kind"] == "free"]
    assert free
    for s in free:
        objs = s["objects"]
        assert 2 <= len(objs) <= 4 and len({o["class"] for o in objs}) == len(objs)
        n_sound = sum(o["sounding"] for o in objs)
        assert 1 <= n_sound < len(objs)
        for i in range(len(objs)):
            for j in range(i + 1, len(objs)):
                ax, ay, aw, ah = objs[i]["box"]
                bx, by, bw, bh = objs[j]["box"]
                assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
        assert s["backgrounds"][0] != "plain"


def _used(m, split, what):
    out = set()
    for s in m["scenes"]:
        if s["split"] != split:
            continue
        if what == "backgrounds":
            out |= {b for b in s["backgrounds"] if b != "plain"}
        for o in s["objects"]:
            if what == "drawings":
                out.add(o["drawing"])
            elif what == "families" and o["sound"]:
                out.add(o["sound"]["family"])
            elif what == "soundfonts" and o["sound"]:
                out.add(o["sound"]["soundfont"])
    return out


def test_splits_disjoint(built):
    _, _, m = built
    shared = {d for v in m["shared_drawings"].values() for d in v["drawings"]}
    # the manifest's declared assignment
    for c in CLASSES:
        tr, te = set(m["splits"]["train"]["drawings"][c]), set(m["splits"]["test"]["drawings"][c])
        assert (tr & te) <= shared
        if tr & te:
            assert c in m["shared_drawings"]
    assert not set(m["splits"]["train"]["backgrounds"]) & set(m["splits"]["test"]["backgrounds"])
    assert not set(m["splits"]["val"]["backgrounds"]) & set(m["splits"]["test"]["backgrounds"])
    assert m["splits"]["train"]["sound_family"] != m["splits"]["test"]["sound_family"]
    # what the scenes really use
    for other in ("train", "val"):
        assert not (_used(m, other, "drawings") & _used(m, "test", "drawings")) - shared
        assert not _used(m, other, "backgrounds") & _used(m, "test", "backgrounds")
        assert not _used(m, other, "families") & _used(m, "test", "families")
        assert not _used(m, other, "soundfonts") & _used(m, "test", "soundfonts")
    # re-shipped copies were merged: no content hash twice
    hashes = [d["content_hash"] for d in m["assets"]["drawings"]]
    assert len(hashes) == len(set(hashes))


def test_wav_format(built):
    a, _, m = built
    for s in m["scenes"]:
        with wave.open(os.path.join(a, s["audio"]), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == \
                (1, 2, SAMPLE_RATE, CLIP_SAMPLES)
            x = np.frombuffer(w.readframes(CLIP_SAMPLES), "<i2").astype(np.float64) / 32768
        rms = np.sqrt(np.mean(x ** 2))
        assert 10 ** (-40 / 20) < rms < 0.5, (s["id"], rms)
        assert np.max(np.abs(x)) < 0.99


def test_music_style_annotations(built):
    a, _, m = built
    for sp in SPLITS:
        for kind in COUNTS:
            with open(os.path.join(a, "annotations", f"{sp}_{kind}.json")) as f:
                ann = json.load(f)
            scenes = [s for s in m["scenes"] if s["split"] == sp and s["kind"] == kind]
            assert set(ann) == {s["image"] for s in scenes}
            for s in scenes:
                boxes = ann[s["image"]]["bbox"]
                assert [b["normbox"] for b in boxes] == [o["box"] for o in s["objects"]]
                assert [b["category_id"] for b in boxes] == [o["class_id"] for o in s["objects"]]
                assert all(len(b["normbox"]) == 4 for b in boxes)


def test_preview_contact_sheet(built, tmp_path):
    from PIL import Image
    from dataset.preview import main
    a, _, _ = built
    out = str(tmp_path / "p.png")
    assert main(["--data", a, "--out", out, "--per-kind", "3"]) == 0
    im = Image.open(out)
    assert im.size[0] > 3 * 224 and im.size[1] > 224
    px = np.asarray(im.convert("RGB")).reshape(-1, 3)
    assert np.any(np.all(px == (40, 230, 60), axis=1))  # a green (sounding) box is drawn


VARIETY = {"styles": ["outline", "flat", "shaded", "greyscale", "textured"], "rotation": 30.0, "aspect": 0.2,
           "occlusion": 0.5, "distractors": 1.0, "reverb": 0.5}


@pytest.fixture(scope="module")
def procedural(tmp_path_factory):
    """Builds with procedural drawings: without and with every training-split variety option."""
    require_assets()
    from dataset.build import build
    from dataset.variety import Variety
    out = {}
    for name, variety in (("plain", None), ("variety", Variety(**VARIETY))):
        d = str(tmp_path_factory.mktemp("proc") / name)
        build(d, 11, COUNTS, SPLITS, workers=2, quiet=True, procedural=3, procedural_share=0.5, variety=variety)
        with open(os.path.join(d, "manifest.json")) as f:
            out[name] = (d, json.load(f))
    return out


@pytest.mark.parametrize("which", ["plain", "variety"])
def test_procedural_drawings_only_change_the_training_split(built, procedural, which):
    from dataset.build import build
    a, _, m0 = built
    p, m = procedural[which]
    assert m["build_params"]["procedural"] == {"per_class": 3, "share": 0.5}
    assert m["build_params"].get("variety") == (VARIETY if which == "variety" else None)
    # validation and test scenes are byte-identical to the build without procedural drawings
    # (and without any of the training split's variety options)
    for sp in ("val", "test"):
        files = [s[k] for s in m["scenes"] if s["split"] == sp for k in ("image", "audio")]
        _, mismatch, errors = filecmp.cmpfiles(a, p, files, shallow=False)
        assert not mismatch and not errors, mismatch[:5]
        assert m["splits"][sp]["drawings"] == m0["splits"][sp]["drawings"]
        assert [s for s in m["scenes"] if s["split"] == sp] == [s for s in m0["scenes"] if s["split"] == sp]
    drawn = {d["id"]: d for d in m["assets"]["drawings"] if d["procedural"]}
    assert len(drawn) == 3 * len(CLASSES)
    for d in drawn.values():
        assert d["splits"] == ["train"] and d["origins"][0]["package"] == "soundloc"
        assert d["origins"][0]["licence"] != "unknown"
    for c in CLASSES:
        assert sum(1 for i in m["splits"]["train"]["drawings"][c] if i in drawn) == 3
    # roughly half of the training objects use one; none outside training
    train_objs = [o for s in m["scenes"] if s["split"] == "train" for o in s["objects"]]
    share = np.mean([o["drawing"] in drawn for o in train_objs])
    assert 0.3 < share < 0.7, share
    assert not any(o["drawing"] in drawn for s in m["scenes"] if s["split"] != "train"
                   for o in s["objects"])
    with pytest.raises(SystemExit):  # resuming with other procedural settings is refused
        build(p, 11, COUNTS, SPLITS, workers=1, resume=True, quiet=True, procedural=3,
              procedural_share=0.5 if which == "variety" else 0.6)


def test_variety_keeps_the_training_scenes_and_adds_to_them(procedural):
    """The options draw from a generator of their own: the training scenes keep their
    instruments, sounds and (without reverb) their audio bytes, and only gain the extras."""
    (p, mp), (q, mq) = procedural["plain"], procedural["variety"]
    train_p = [s for s in mp["scenes"] if s["split"] == "train"]
    train_q = [s for s in mq["scenes"] if s["split"] == "train"]
    assert [s["id"] for s in train_p] == [s["id"] for s in train_q]
    looks = set()
    for sp, sq in zip(train_p, train_q):
        key = lambda o: (o["class"], o["sounding"], o["sound"],  # noqa: E731
                         o["drawing"].removesuffix("-" + o["drawing"].rsplit("-", 1)[-1])
                         if o["drawing"].rsplit("-", 1)[-1] in VARIETY["styles"] else o["drawing"])
        assert [key(o) for o in sp["objects"]] == [key(o) for o in sq["objects"]]
        same_audio = filecmp.cmp(os.path.join(p, sp["audio"]), os.path.join(q, sq["audio"]), shallow=False)
        assert same_audio == ("reverb" not in sq), sq["id"]
        looks |= {o["drawing"].rsplit("-", 1)[-1] for o in sq["objects"] if "procedural" in o["drawing"]}
    assert looks <= set(VARIETY["styles"]) and len(looks) >= 3
    changed = sum(not filecmp.cmp(os.path.join(p, a["image"]), os.path.join(q, b["image"]), shallow=False)
                  for a, b in zip(train_p, train_q))
    assert changed == len(train_q)
    objs = [o for s in train_q for o in s["objects"]]
    assert 0.15 < np.mean(["occluded" in o["augment"] for o in objs]) < 0.85
    assert max(abs(o["augment"]["rotation"]) for o in objs) > 20
    assert all(np.exp(-0.2) - 1e-3 <= o["augment"]["stretch"] <= np.exp(0.2) + 1e-3 for o in objs)
    for o in objs:
        x, y, w, h = o["box"]
        assert w > 0.01 and h > 0.01 and x >= 0 and y >= 0 and x + w <= 1 + 1e-6 and y + h <= 1 + 1e-6
        if "occluded" in o["augment"]:
            assert 0 < o["augment"]["occluded"]["hidden"] <= 0.35
    assert 0.2 < np.mean(["reverb" in s for s in train_q]) < 0.8
    for s in train_q:
        if "reverb" in s:
            assert 0.2 <= s["reverb"]["rt60"] <= 1.2


def test_distractors_are_ignored_by_the_trainer_and_the_annotations(procedural):
    from dsol.data import load_manifest
    (p, mp), (q, mq) = procedural["plain"], procedural["variety"]
    things = [t for s in mq["scenes"] for t in s.get("distractors", [])]
    assert len(things) > 20
    assert all(s["split"] == "train" for s in mq["scenes"] if s.get("distractors"))
    for t in things:
        assert "class" not in t and "class_id" not in t and t["thing"] not in CLASSES
        x, y, w, h = t["box"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 1 + 1e-6 and y + h <= 1 + 1e-6
    # the trainer's objects and the annotation files hold the instruments only
    (_, sp), (_, sq) = load_manifest(os.path.join(p, "manifest.json")), load_manifest(os.path.join(q, "manifest.json"))
    assert [[o["class_id"] for o in s.objects] for s in sp] == [[o["class_id"] for o in s.objects] for s in sq]
    with open(os.path.join(q, "annotations", "train_synthetic.json")) as f:
        ann = json.load(f)
    assert all(len(e["bbox"]) == 4 for e in ann.values())


def test_variety_options_are_checked(tmp_path):
    from dataset.build import build, main
    from dataset.variety import Variety
    for argv in (["--occlusion", "1.5"], ["--rotation", "-3"], ["--styles", "sepia", "--procedural", "2"],
                 ["--styles", "flat"], ["--distractors", "12"], ["--reverb", "2"], ["--aspect", "3"]):
        with pytest.raises(SystemExit):
            main(["--out", str(tmp_path / "y"), "--seed", "1"] + argv)
    assert not os.path.exists(tmp_path / "y")
    with pytest.raises(ValueError):
        build(str(tmp_path / "x"), 1, COUNTS, SPLITS, variety=Variety(occlusion=2.0))


def test_procedural_options_are_checked(tmp_path):
    from dataset.build import build, main
    with pytest.raises(ValueError):
        build(str(tmp_path / "x"), 1, COUNTS, SPLITS, procedural=-1)
    with pytest.raises(ValueError):
        build(str(tmp_path / "x"), 1, COUNTS, SPLITS, procedural=2, procedural_share=1.5)
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "y"), "--seed", "1", "--procedural", "-2"])
