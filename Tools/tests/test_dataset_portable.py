"""dataset.portable: picture-only training sets made without the Debian asset packages.

The builds run in a subprocess in which every path under /usr/share (where the pictures, photos,
soundfonts and their copyright files live) is unreachable and every try to reach one is logged,
and libfluidsynth cannot load, as on the lent GPU machine."""
import filecmp
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

from dataset import CLASSES  # noqa: E402
from dataset import assets as A  # noqa: E402
from dataset.procedural.canvas import LOOKS  # noqa: E402

N = 24
SEED = 5

# Runs dataset.portable.build(out, scenes, seed, workers) with /usr/share blocked; blocked tries go
# to the log file, one path a line (forked workers append to it too).
GUARDED = textwrap.dedent("""
    import builtins, ctypes, io, json, os, sys
    out, scenes, seed, workers, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    real_open, BLOCK = builtins.open, "/usr/share"

    def blocked(path):
        try:
            p = os.fsdecode(path) if not isinstance(path, int) else ""
        except TypeError:
            return False
        if os.path.abspath(p).startswith(BLOCK):
            with real_open(log, "a") as f:
                f.write(p + "\\n")
            return True
        return False

    def guard(fn):
        def wrapped(path, *a, **k):
            if blocked(path):
                raise FileNotFoundError(2, "blocked by the test", path)
            return fn(path, *a, **k)
        return wrapped

    for name in ("stat", "lstat", "listdir", "scandir", "open", "access"):
        setattr(os, name, guard(getattr(os, name)))
    builtins.open = io.open = guard(real_open)
    real_cdll = ctypes.CDLL.__init__

    def cdll(self, name, *a, **k):
        if name and "fluidsynth" in str(name):
            blocked(BLOCK + "/libfluidsynth")
            raise OSError("blocked by the test")
        real_cdll(self, name, *a, **k)
    ctypes.CDLL.__init__ = cdll

    from dataset.portable import build
    print(json.dumps(build(out, scenes, seed, workers=workers, quiet=True)))
""")


def guarded_build(out: Path, scenes: int, seed: int, workers: int) -> list[str]:
    """Build in a subprocess with /usr/share unreachable; returns the blocked paths it tried."""
    log = out.parent / (out.name + ".blocked")
    env = {**os.environ, "PYTHONPATH": str(TOOLS)}
    r = subprocess.run([sys.executable, "-c", GUARDED, str(out), str(scenes), str(seed), str(workers), str(log)],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return log.read_text().split() if log.exists() else []


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("portable")
    a, b, c = root / "a", root / "b", root / "c"
    tried = guarded_build(a, N, SEED, 1) + guarded_build(b, N, SEED, 2) + guarded_build(c, 6, SEED + 1, 1)
    return a, b, c, json.loads((a / "manifest.json").read_text()), tried


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_builds_without_any_package_asset(built):
    a, _, _, m, tried = built
    assert tried == []  # nothing under /usr/share was even looked at
    assert {b["package"] for b in m["assets"]["backgrounds"]} <= {"soundloc", "scikit-image"}
    assert [d["package"] for d in m["assets"]["drawings"]] == ["soundloc"]
    for b in m["assets"]["backgrounds"]:
        assert b["licence"] and b["licence"] != "unknown" and b["splits"] == ["train"]
    used = {bg for s in m["scenes"] for bg in s["backgrounds"]}
    assert used <= set(m["splits"]["train"]["backgrounds"])
    assert all(bg.startswith(("procedural/", "skimage/")) for bg in used)
    assert len({bg for bg in used if bg.startswith("procedural/")}) >= 4


def test_manifest_loads_and_is_picture_only(built):
    from dsol.data import SceneStore, load_manifest
    a, _, _, m, _ = built
    assert m["format"] == "soundloc-scenes" and m["classes"] == CLASSES
    assert m["picture_only"] is True and m["build_params"]["audio"] is False
    classes, scenes = load_manifest(a / "manifest.json", picture_only_ok=True)
    assert classes == CLASSES and len(scenes) == N
    with pytest.raises(SystemExit, match="picture-only"):  # the audio-visual trainer, dsol.pack, head_fit
        load_manifest(a / "manifest.json")
    assert {s.split for s in scenes} == {"train"}
    assert {s.kind for s in scenes} == {"solo", "synthetic", "free"}
    assert m["counts"]["train"] == {k: sum(s.kind == k for s in scenes) for k in ("solo", "synthetic", "free")}
    assert all(s["audio"] == "" for s in m["scenes"])
    assert len({s.id for s in scenes}) == N
    store = SceneStore(scenes[:3])
    for i in range(3):
        assert store.rgb(i).shape == (224, 224, 3)
    with Image.open(scenes[0].image) as im:
        assert im.format == "PNG" and im.size == (224, 224) and im.mode == "RGB"


def test_every_object_is_a_labelled_procedural_drawing_inside_the_picture(built):
    from dsol.pretrain import drawing_names, labelled_objects
    from dsol.data import load_manifest
    a, _, _, m, _ = built
    name = re.compile(r"^(?P<cls>[a-z_]+):procedural-\d{3,}(-(?P<look>[a-z]+))?$")
    looks = set()
    for s in m["scenes"]:
        assert s["objects"], s["id"]
        assert s["sounding_classes"] == [c for c in CLASSES if c in {o["class"] for o in s["objects"]}]
        for o in s["objects"]:
            hit = name.match(o["drawing"])
            assert hit and hit["cls"] == o["class"], o["drawing"]
            looks.add(hit["look"])
            assert CLASSES[o["class_id"]] == o["class"] and o["sounding"] is True
            x, y, w, h = o["box"]
            assert w > 0.01 and h > 0.01 and x >= 0 and y >= 0 and x + w <= 1 + 1e-6 and y + h <= 1 + 1e-6
        if s["kind"] == "synthetic":  # one class per quadrant, each box inside its quadrant
            assert len({o["class"] for o in s["objects"]}) == len(s["objects"]) <= 4
            for o in s["objects"]:
                x, y, w, h = o["box"]
                assert int(x >= 0.5) == int(x + w > 0.5 + 1e-6) and int(y >= 0.5) == int(y + h > 0.5 + 1e-6)
        if s["kind"] == "free":
            objs = s["objects"]
            assert 2 <= len(objs) <= 4 and len({o["class"] for o in objs}) == len(objs)
            for i in range(len(objs)):
                for j in range(i + 1, len(objs)):
                    ax, ay, aw, ah = objs[i]["box"]
                    bx, by, bw, bh = objs[j]["box"]
                    assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
    assert looks <= set(LOOKS) and len(looks) >= 3  # --styles all by default
    # dsol.pretrain gives every object its class
    _, scenes = load_manifest(a / "manifest.json", picture_only_ok=True)
    names = drawing_names(a / "manifest.json")
    for sc in scenes:
        assert [o["label"] for o in labelled_objects(sc, "procedural", names)] == [o["class_id"] for o in sc.objects]


def test_same_seed_same_bytes_any_worker_count(built):
    a, b, _, _, _ = built
    files = tree(a)
    assert files == tree(b) and len(files) == N + 1
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors, mismatch[:5]


def test_other_seed_gives_other_pictures(built):
    a, _, c, m, _ = built
    mc = json.loads((c / "manifest.json").read_text())
    assert mc["seed"] == SEED + 1
    for sa, sc in zip(m["scenes"], mc["scenes"]):
        assert (a / sa["image"]).read_bytes() != (c / sc["image"]).read_bytes()
    assert {o["drawing"] for s in m["scenes"] for o in s["objects"]}.isdisjoint(
        {o["drawing"] for s in mc["scenes"] for o in s["objects"]})


def test_no_validation_or_test_background(built):
    from dataset.portable import backgrounds as B
    _, _, _, m, _ = built
    reserved = A.reserved_backgrounds()
    # what a full build holds out (assets.background_splits over every package's photos)
    assert {"skimage/astronaut", "skimage/rocket", "skimage/camera", "skimage/coffee"} <= reserved
    assert set(m["splits"]["train"]["reserved_backgrounds_left_out"]) == reserved
    used = {bg for s in m["scenes"] for bg in s["backgrounds"]}
    used |= {o["background"] for s in m["scenes"] for o in s["objects"] if "background" in o}
    assert not used & reserved
    assert not {b["id"] for b in m["assets"]["backgrounds"]} & reserved
    photos = B.training_photos()
    assert not {b.id for b in photos} & reserved
    assert all(b.image is not None and min(b.image.size) <= A.BG_SHORT_SIDE for b in photos)


def test_distractors_carry_no_class(built):
    _, _, _, m, _ = built
    things = [t for s in m["scenes"] for t in s.get("distractors", [])]
    assert len(things) >= 10
    for t in things:
        assert set(t) <= {"thing", "drawing", "box", "look"} and t["thing"] not in CLASSES
        assert t["drawing"].startswith(t["thing"] + ":procedural-")
        x, y, w, h = t["box"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 1 + 1e-6 and y + h <= 1 + 1e-6


def test_backgrounds_are_pure_functions_of_their_generator():
    from dataset.portable import backgrounds as B
    for kind, draw in B.DRAWERS.items():
        for size in (224, 112):
            im = draw(size, np.random.default_rng([3, size]))
            assert im.mode == "RGB" and im.size == (size, size), kind
            assert im.tobytes() == draw(size, np.random.default_rng([3, size])).tobytes(), kind


def test_jpeg_files_load(tmp_path):
    from dataset.portable import Options, build
    from dataset.variety import Variety
    from dsol.data import SceneStore, load_manifest
    build(str(tmp_path / "j"), 3, 1, Options(Variety(), image_format="jpeg"), quiet=True)
    _, scenes = load_manifest(tmp_path / "j" / "manifest.json", picture_only_ok=True)
    for i, s in enumerate(scenes):
        assert s.image.endswith(".jpg")
        with Image.open(s.image) as im:
            assert im.format == "JPEG"
        assert SceneStore(scenes).rgb(i).shape == (224, 224, 3)
    with pytest.raises(SystemExit):  # never over an existing set
        build(str(tmp_path / "j"), 3, 1, quiet=True)


@pytest.mark.parametrize("bad", [["--solo-share", "1.5"], ["--rotation", "120"], ["--styles", "neon"],
                                 ["--occlusion", "-0.1"], ["--variants", "0"], ["--scenes", "0"]])
def test_options_are_checked(tmp_path, bad):
    from dataset.portable import main
    args = ["--out", str(tmp_path / "x"), "--scenes", "2"] + bad
    with pytest.raises(SystemExit):
        main(args)
    assert not (tmp_path / "x").exists()


def test_reserved_backgrounds_follow_the_builders_split():
    """reserved_backgrounds reads no file; it must name what a full build's split holds out."""
    table = A.background_table()
    assert A.background_ids() == [b.id for b in table]
    split = A.background_splits(b.id for b in table)
    assert A.reserved_backgrounds() == {b for b, sp in split.items() if sp != "train"}
