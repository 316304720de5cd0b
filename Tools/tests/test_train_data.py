"""Trainer pieces: K-means, mask dilation, data sets, pairing, augmentation, MUSIC layout."""

import json
import shutil
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tools"))
torch = pytest.importorskip("torch")

from dsol import data as D  # noqa: E402
from dsol import toy as toyset  # noqa: E402
from dsol.image import preprocess  # noqa: E402
from dsol.kmeans import kmeans, l2_normalize  # noqa: E402
from dsol.kmeans import dilate4, nmi, object_features  # noqa: E402


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return toyset.write_toy_dataset(tmp_path_factory.mktemp("toy"), seed=4,
                               counts={"train": {"solo": 8, "synthetic": 4, "free": 2},
                                       "val": {"solo": 2, "synthetic": 2, "free": 0}})


def test_kmeans_recovers_separable_blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (5, 8)) * 6
    truth = np.repeat(np.arange(5), 40)
    x = centres[truth] + rng.normal(0, 0.3, (200, 8))
    perm = rng.permutation(200)
    labels, cent, inertia = kmeans(x[perm], 5, seed=3, n_init=4)
    assert nmi(labels, truth[perm]) == pytest.approx(1.0)
    # same partition whatever the cluster numbering
    pairs = {(a, b) for a, b in zip(labels, truth[perm])}
    assert len(pairs) == 5
    again = kmeans(x[perm], 5, seed=3, n_init=4)
    np.testing.assert_array_equal(again[0], labels)
    assert again[2] == inertia
    # on the unit sphere, as stage 1 uses it
    ln, _, _ = kmeans(l2_normalize(x[perm] + 20), 5, seed=1)
    assert nmi(ln, truth[perm]) > 0.9


def test_kmeans_handles_duplicates():
    x = np.zeros((10, 3))
    x[5:] = 1.0
    labels, _, inertia = kmeans(x, 3, seed=0, n_init=2)
    assert inertia == 0.0 and len(set(labels.tolist())) >= 2


def test_dilate4():
    m = torch.zeros(1, 1, 5, 5)
    m[0, 0, 2, 2] = 1
    m[0, 0, 0, 4] = 1
    d = dilate4(m)[0, 0]
    expect = torch.zeros(5, 5)
    for y, x in [(2, 2), (1, 2), (3, 2), (2, 1), (2, 3), (0, 4), (0, 3), (1, 4)]:
        expect[y, x] = 1
    assert torch.equal(d, expect)


def test_object_features_authors_mask_and_relative_mask():
    fv = torch.zeros(1, 2, 3, 3)
    fv[0, 0] = torch.arange(9.0).view(3, 3)
    fv[0, 1] = 1.0
    l = torch.full((1, 1, 3, 3), 0.01)
    l[0, 0, 0, 0], l[0, 0, 2, 2], l[0, 0, 2, 1] = 0.9, 0.88, 0.5
    # authors: l > 0.05 is cells (0,0), (2,1), (2,2); grown by one: (0,0),(0,1),(1,0),(1,1),(1,2),(2,0),(2,1),(2,2)
    # -> every cell but (0,2) (value 2); mean over all 9 cells
    o = object_features(fv, l, 0.05)
    assert torch.allclose(o, torch.tensor([[(36.0 - 2.0) / 9, 8.0 / 9]]))
    # relative 0.95: l >= 0.855 is cells (0,0) and (2,2), values 0 and 8; mean over those 2
    o = object_features(fv, l, 0.05, relative=0.95)
    assert torch.allclose(o, torch.tensor([[4.0, 1.0]]))
    # a flat map keeps every cell, and the feature is the picture's mean
    o = object_features(fv, torch.full((1, 1, 3, 3), 0.3), 0.05, relative=0.95)
    assert torch.allclose(o, torch.tensor([[4.0, 1.0]]))


def test_manifest_and_store(toy):
    classes, scenes = D.load_manifest(toy)
    assert classes == toyset.TOY_CLASSES
    kinds = {(s.split, s.kind) for s in scenes}
    assert ("train", "solo") in kinds and ("val", "synthetic") in kinds
    solo = [s for s in scenes if s.kind == "solo"]
    assert all(s.label == s.objects[0]["class_id"] for s in solo)
    store = D.SceneStore(scenes, cache_dir=toy.parent / "cache")
    store.preload()
    assert store.mel(0).shape == (201, 64)
    # plain inputs are exactly the shared preprocessing and the SPEC §3 log-mel
    item = D.PlainDataset(store, [3])[0]
    np.testing.assert_array_equal(item["image"], preprocess(store.rgb(3)))
    from dsol.audio import load_clip, logmel
    np.testing.assert_allclose(item["audio"][0], logmel(load_clip(scenes[3].audio)), atol=1e-4)
    # the mel cache file is reused
    assert len(list((toy.parent / "cache").glob("mel-*.npy"))) == 1
    again = D.SceneStore(scenes, cache_dir=toy.parent / "cache")
    again.load_audio()
    np.testing.assert_array_equal(again.mel(5), store.mel(5))


def test_pairs_and_augmentation_are_seeded(toy):
    _, scenes = D.load_manifest(toy)
    store = D.SceneStore([s for s in scenes if s.split == "train"])
    solo = [i for i, s in enumerate(store.scenes) if s.kind == "solo"]
    ds = D.PairDataset(store, solo, seed=5, aug=D.Augment())
    ds.set_tag(1, 0)
    a, b = ds[2], ds[2]
    for k in ("audio", "pos", "neg"):
        np.testing.assert_array_equal(a[k], b[k])
    assert a["pos"].shape == (3, 224, 224) and a["audio"].shape == (1, 201, 64)
    for k in range(len(ds)):
        it = ds[k]
        assert store.scenes[it["neg_index"]].clip != store.scenes[it["index"]].clip
    ds.set_tag(1, 1)
    assert not np.array_equal(ds[2]["pos"], a["pos"])  # another epoch, other jitter
    # the plan is a permutation cut into batches
    plan = D.batch_plan(10, 4, np.random.default_rng(0), drop_last=True)
    assert [len(p) for p in plan] == [4, 4] and len(set(sum(plan, []))) == 8
    assert D.batch_plan(10, 4, None, False, limit=1) == [[0, 1, 2, 3]]


def _write_wav(path, seconds, freq):
    t = np.arange(int(16000 * seconds)) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())


def test_music_layout_and_annotation(tmp_path, toy):
    """A fake real-MUSIC folder: frames/<clip>/NNNNNN.jpg + audio/<clip>.wav + annotation JSON."""
    src = next((toy.parent / "images" / "train" / "solo").glob("*.png"))
    classes = ["violin", "flute"]
    for clip, freq in (("violin/vid1", 440), ("flute/vid2", 880)):
        for n in range(3):
            dst = tmp_path / "frames" / clip / f"{n:06d}.png"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
        _write_wav(tmp_path / "audio" / f"{clip}.wav", 3.5, freq)
    scenes = D.load_music(tmp_path, classes, fps=1.0, val_fraction=0.0)
    assert len(scenes) == 6 and {s.label for s in scenes} == {0, 1}
    by_id = {s.id: s for s in scenes}
    assert by_id["frames/violin/vid1/000002.png"].audio_start == pytest.approx(1.5)
    assert by_id["frames/violin/vid1/000000.png"].audio_start == 0.0
    assert by_id["frames/flute/vid2/000001.png"].clip == "flute/vid2"
    # the official form: AudioSet-instrument ids (11 = violin), no "audio" key
    ann = {"frames/violin/vid1/000001.png": {"bbox": [{"normbox": [0.1, 0.2, 0.3, 0.4], "category_id": 11}]}}
    (tmp_path / "duet.json").write_text(json.dumps(ann))
    ev = D.load_annotation(tmp_path / "duet.json", root=tmp_path, kind="music_duet", classes=classes)
    assert ev[0].objects[0]["class_id"] == 0  # violin in this two-class list
    assert D.load_annotation(tmp_path / "duet.json", root=tmp_path)[0].objects[0]["class_id"] == 9  # MUSIC order
    assert len(ev) == 1 and ev[0].audio.endswith("audio/violin/vid1.wav")
    assert ev[0].audio_start == pytest.approx(0.5) and ev[0].objects[0]["sounding"]
    store = D.SceneStore(ev)
    assert D.PlainDataset(store, [0])[0]["audio"].shape == (1, 201, 64)
    held_out = D.load_music(tmp_path, classes, exclude={ev[0].id})
    assert len(held_out) == 5


def test_builder_annotation_files(tmp_path):
    """The builder's annotations/<split>_<kind>.json load as evaluation scenes, when present."""
    manifest = tmp_path / "manifest.json"
    toyset.write_toy_dataset(tmp_path, 1, {"test": {"solo": 0, "synthetic": 2, "free": 0}})
    m = json.loads(manifest.read_text())
    ann = {s["image"]: {"bbox": [{"normbox": o["box"], "category_id": o["class_id"], "sounding": o["sounding"]}
                                 for o in s["objects"]], "audio": s["audio"]} for s in m["scenes"]}
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "test_synthetic.json").write_text(json.dumps(ann))
    ev = D.load_annotation(tmp_path / "annotations" / "test_synthetic.json", kind="synthetic")
    assert len(ev) == 2 and sum(o["sounding"] for o in ev[0].objects) == 2
    assert Path(ev[0].audio).exists()
