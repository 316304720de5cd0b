"""Asset catalogue, Qt resource reader, rendering determinism and the real
recordings. Needs Tools/dataset/install_assets.sh to have run; installs nothing."""
import os
import sys
import wave

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from dataset import CLASSES, CLIP_SAMPLES, SAMPLE_RATE  # noqa: E402
from dataset import assets as A  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def installed():
    problems = A.check()
    if problems:
        pytest.fail("data-set assets missing - run Tools/dataset/install_assets.sh (as root):\n  "
                    + "\n  ".join(problems), pytrace=False)


def test_rcc_reader_lists_gcompris_instruments():
    from dataset.rcc import read_rcc
    files = read_rcc(os.path.join(A.GCOMPRIS, "instruments.rcc"))
    svg = files["/gcompris/src/activities/instruments/resource/tuba.svg"]
    assert svg.lstrip().startswith(b"<") and b"<svg" in svg[:4000]
    ogg = files["/gcompris/src/activities/instruments/resource/tuba.ogg"]
    assert ogg[:4] == b"OggS"


def test_every_class_has_drawings_and_reshipped_copies_are_merged():
    d = A.load_drawings()
    assert set(d) == set(CLASSES) and all(d[c] for c in CLASSES)
    by_source = {s.sid: x for c in CLASSES for x in d[c] for s in x.sources}
    # same flute drawing shipped by qabcs, openclipart and gcompris counts once
    assert by_source["qabcs/flute"] is by_source["openclipart/flute_ganson"] \
        is by_source["gcompris/flute_traversiere"]
    assert by_source["qabcs/saxophone"] is by_source["gcompris/saxophone"]
    assert by_source["qabcs/clarinet"] is by_source["gcompris/clarinet"]
    # different drawings stay apart
    assert by_source["qabcs/flute"] is not by_source["qabcs/western_concert_flute"]
    assert by_source["qabcs/cello"] is not by_source["gcompris/cello"]
    for c in CLASSES:
        for x in d[c]:
            assert x.image.mode == "RGBA" and max(x.image.size) <= A.MAX_SIDE
            assert x.splits and all(o["licence"] != "unknown" for o in x.provenance())


def test_split_rules():
    d = A.load_drawings()
    shared = A.shared_drawings(d)
    for c in CLASSES:
        n = len(d[c])
        splits = [s for x in d[c] for s in x.splits]
        assert {"train", "val", "test"} <= set(splits)
        if n >= 3:
            assert c not in shared and all(len(x.splits) == 1 for x in d[c])
        else:
            assert c in shared
            test_d = [x for x in d[c] if "test" in x.splits]
            if n == 2:  # test has its own drawing, only val borrows train's
                assert len(test_d) == 1 and test_d[0].splits == ["test"]
                assert shared[c]["splits"] == ["train", "val"]


def test_backgrounds_split_by_photo():
    bgs = A.load_backgrounds()
    assert len(bgs) >= 20
    per = {sp: {b.id for b in bgs if sp in b.splits} for sp in ("train", "val", "test")}
    assert all(per.values())
    assert not per["train"] & per["test"] and not per["val"] & per["test"] \
        and not per["train"] & per["val"]
    assert all(b.image.size[0] >= 224 and b.image.size[1] >= 224 for b in bgs)


def test_render_is_independent_of_history():
    from dataset.synth import Synth, render_clip
    sfs = {s.name: s for s in A.load_soundfonts()}
    syn = Synth(sfs["TimGM6mb"].path)
    a1, _ = render_clip(syn, "acoustic_guitar", 24, np.random.default_rng(3))
    render_clip(syn, "xylophone", 13, np.random.default_rng(4))
    a2, _ = render_clip(syn, "acoustic_guitar", 24, np.random.default_rng(3))
    assert np.array_equal(a1, a2)
    assert a1.shape == (CLIP_SAMPLES,) and 0.01 < np.sqrt(np.mean(a1 ** 2)) < 0.2


def test_erhu_has_pitch_movement():
    from dataset.synth import make_performance
    p = make_performance("erhu", 110, np.random.default_rng(0), 1.5)
    assert p.bend_range == 4 and np.ptp(p.bend) > 400  # slides and vibrato


def test_real_recordings(tmp_path):
    from dataset.real_audio import extract
    labels = extract(str(tmp_path), 0.5)
    assert not labels["classes_without_recordings"]
    assert all(labels["per_class"][c] >= 3 for c in CLASSES)
    for e in labels["windows"][:40]:
        with wave.open(os.path.join(tmp_path, e["path"]), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == \
                (1, 2, SAMPLE_RATE, CLIP_SAMPLES)
        assert CLASSES[e["class_id"]] == e["class"]
    assert all(r["licence"] != "unknown" for r in labels["recordings"])
