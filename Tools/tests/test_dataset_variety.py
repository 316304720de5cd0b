"""The training split's extra variety (dataset.variety) piece by piece, without the packages:
options, stretch and rotation, occlusion and the boxes it leaves, distractors, reverb."""
import os
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from dataset import CLIP_SAMPLES, SAMPLE_RATE  # noqa: E402
from dataset import scenes as SC  # noqa: E402
from dataset import variety as V  # noqa: E402


def instrument(w=90, h=150) -> Image.Image:
    """A stand-in drawing: an opaque rounded shape on a transparent background."""
    im = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ImageDraw.Draw(im).rounded_rectangle((0, 0, w - 1, h - 1), radius=20, fill=(180, 90, 30, 255))
    return im


def catalogue(**options) -> SC.Catalogue:
    return SC.Catalogue({}, [], [], {}, 0.0, V.Variety(**options))


def alpha_box(a: np.ndarray):
    ys, xs = np.nonzero(a > 32)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def test_options_are_checked_and_recorded():
    assert V.Variety().params() == {} and not V.Variety().scene_extras()
    v = V.Variety(styles=["greyscale"], rotation=30, occlusion=0.5)
    assert v.params() == {"styles": ["greyscale"], "rotation": 30, "occlusion": 0.5}
    assert v.scene_extras() and not V.Variety(styles=("flat",)).scene_extras()
    for bad in ({"rotation": -1}, {"aspect": 2}, {"occlusion": 1.5}, {"reverb": -0.1},
                {"distractors": 9}, {"styles": ["sepia"]}):
        with pytest.raises(ValueError):
            V.Variety(**bad)


def test_variety_rng_is_per_scene_and_apart_from_the_scene_rng():
    a = V.variety_rng(1, 2, "train", 3).random(4)
    np.testing.assert_array_equal(a, V.variety_rng(1, 2, "train", 3).random(4))
    assert not np.array_equal(a, V.variety_rng(1, 2, "train", 4).random(4))
    from dataset.build import scene_rng
    assert not np.array_equal(a, scene_rng(1, "synthetic", "train", 3).random(4))


def test_stretch_and_rotation():
    im = instrument(60, 160)
    plain, aug = SC.augment(im, np.random.default_rng(0), 120)
    same, _ = SC.augment(im, np.random.default_rng(0), 120, V.ROTATION, 1.0)
    assert plain.tobytes() == same.tobytes() and "stretch" not in aug  # the defaults are the old path
    wide, aug_w = SC.augment(im, np.random.default_rng(0), 120, 0.0, 2.0)
    thin, _ = SC.augment(im, np.random.default_rng(0), 120, 0.0, 0.5)
    ratio = lambda x: x.size[0] / x.size[1]  # noqa: E731
    assert aug_w["stretch"] == 2.0 and ratio(wide) > 1.6 * ratio(thin)
    _, a30 = SC.augment(im, np.random.default_rng(3), 120, 30.0)
    _, a20 = SC.augment(im, np.random.default_rng(3), 120)
    assert a30["rotation"] == pytest.approx(a20["rotation"] * 1.5, abs=0.02)  # same draw, wider range
    f = [V.stretch_factor(V.Variety(aspect=0.2), np.random.default_rng(s)) for s in range(200)]
    assert np.exp(-0.2) <= min(f) and max(f) <= np.exp(0.2) and np.std(np.log(f)) > 0.08


def test_occlusion_hides_a_bounded_share_and_the_box_is_what_stays_visible():
    obj = instrument()
    area = (np.asarray(obj.getchannel("A")) > 32).sum()
    hid = []
    for seed in range(40):
        r = V.occlude(obj, V.Variety(occlusion=1.0), np.random.default_rng(seed), [])
        if r is None:
            continue
        cut, occ, (dx, dy), info = r
        a = np.asarray(cut.getchannel("A"))
        visible = (a > 32).sum()
        assert 0.03 <= 1 - visible / area <= V.OCCLUSION[1] + 1e-9  # below 10 % only for sparse occluders
        assert info["hidden"] == pytest.approx(1 - visible / area, abs=2e-3)
        hid.append(info["hidden"])
        again = V.occlude(obj, V.Variety(occlusion=1.0), np.random.default_rng(seed), [])
        assert again[0].tobytes() == cut.tobytes() and again[2] == (dx, dy)
    assert len(hid) >= 30 and max(hid) > 0.25 and np.median(hid) >= V.OCCLUSION[0]

    # in a scene: the box is the visible part's, the canvas changed where the occluder went
    cat = catalogue(occlusion=1.0)
    for seed in range(10):
        canvas = Image.new("RGB", (224, 224), (40, 120, 200))
        aug = {}
        box = SC._place(canvas, obj, 50, 30, aug, "train", cat, np.random.default_rng(seed))
        full = [50 / 224, 30 / 224, obj.size[0] / 224, obj.size[1] / 224]
        assert all(0 <= v <= 1 for v in box) and box[2] > 0 and box[3] > 0
        assert box[0] >= full[0] - 1e-6 and box[1] >= full[1] - 1e-6
        assert box[0] + box[2] <= full[0] + full[2] + 1e-6 and box[1] + box[3] <= full[1] + full[3] + 1e-6
        if "occluded" in aug:
            assert 0 < aug["occluded"]["hidden"] <= V.OCCLUSION[1]
            assert not np.array_equal(np.asarray(canvas)[:5, :5], np.asarray(canvas)[100:105, 70:75])


def test_the_occluder_keeps_out_of_other_objects_places():
    cat = catalogue(occlusion=1.0)
    obj = instrument(80, 120)
    forbid = [(0, 0, 224, 40), (0, 0, 45, 224), (135, 0, 89, 224), (0, 165, 224, 59)]  # all around it
    for seed in range(12):
        canvas = Image.new("RGB", (224, 224), (0, 0, 0))
        aug = {}
        SC._place(canvas, obj, 50, 43, aug, "train", cat, np.random.default_rng(seed), forbid)
        px = np.asarray(canvas)
        for x, y, w, h in forbid:
            assert px[y:y + h, x:x + w].max() == 0, (seed, aug)


def test_distractors_are_silent_things_without_a_class():
    canvas = Image.new("RGB", (224, 224), (200, 200, 200))
    before = np.asarray(canvas).copy()
    var = V.Variety(distractors=2.0, styles=("greyscale",))
    things = V.distractors(canvas, var, np.random.default_rng(0), [(60, 60, 100, 100)], (0.2, 0.4), SC.augment)
    assert len(things) == 2 and not np.array_equal(np.asarray(canvas), before)
    for t in things:
        assert set(t) == {"thing", "drawing", "box", "look"} and t["look"] == "greyscale"
        assert "class" not in t and "class_id" not in t and t["thing"] in V.THINGS
        assert all(0 <= v <= 1 for v in t["box"]) and t["box"][2] > 0 and t["box"][3] > 0
    assert np.mean([V.count(0.5, np.random.default_rng(s)) for s in range(400)]) == pytest.approx(0.5, abs=0.08)
    assert {V.count(1.0, np.random.default_rng(s)) for s in range(20)} == {1}


def test_room_reverb():
    ir, info = V.room(np.random.default_rng(0))
    again, _ = V.room(np.random.default_rng(0))
    np.testing.assert_array_equal(ir, again)
    assert 0.2 <= info["rt60"] <= 1.2 and -6 <= info["drr_db"] <= 10
    assert ir[0] > 0.9 and len(ir) <= SAMPLE_RATE
    # direct-to-reverberant ratio as drawn, and the tail decays by about 60 dB over rt60
    drr = 10 * np.log10(1.0 / np.sum(ir[1:] ** 2))
    assert drr == pytest.approx(info["drr_db"], abs=1.0)
    e = np.convolve(ir[1:] ** 2, np.ones(400) / 400, mode="same")
    k = int(0.05 * SAMPLE_RATE)
    drop = 10 * np.log10(e[k] / e[k + int(0.5 * info["rt60"] * SAMPLE_RATE)])
    assert drop == pytest.approx(30, abs=8)  # half of the 60 dB over half the time
    # reverberated clips keep their length and level and smear a click
    click = np.zeros(CLIP_SAMPLES)
    click[1000:1010] = 0.5
    wet = V.reverberate(click, ir)
    assert wet.shape == (CLIP_SAMPLES,)
    assert np.sqrt(np.mean(wet ** 2)) == pytest.approx(np.sqrt(np.mean(click ** 2)), rel=1e-6)
    assert np.abs(wet[3000:]).max() > 1e-4 and np.abs(click[3000:]).max() == 0
    # mix() without a room is what it was
    clips = [np.sin(np.arange(CLIP_SAMPLES) * 0.05) * 0.3]
    np.testing.assert_array_equal(SC.mix(clips, np.random.default_rng(1)),
                                  SC.mix(clips, np.random.default_rng(1), None))
    assert not np.array_equal(SC.mix(clips, np.random.default_rng(1)), SC.mix(clips, np.random.default_rng(1), ir))
