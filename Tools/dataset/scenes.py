"""Scene composition: solo scenes, MUSIC-Synthetic 2x2 mosaics and free
cocktail-party scenes. Every scene is a pure function of its random generator
and the asset catalogue, so scenes can be built in any order or process.

A training scene may also get a second generator, vrng (dataset.variety): the
extras it draws (aspect jitter, occlusion, distractors, reverb) leave the draws
of the scene's own generator as they were. Without vrng nothing changes."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance

from . import CLASSES, CLIP_SAMPLES, IMAGE_SIZE
from . import variety as V
from .synth import PROGRAMS, Synth, render_clip

S = IMAGE_SIZE


class Catalogue:
    """Assets available to one split, plus lazily loaded synthesizers."""

    def __init__(self, drawings, backgrounds, soundfonts, families, procedural_share: float = 0.0,
                 variety: V.Variety | None = None):
        self.drawings = drawings          # {class: [Drawing]}, package and procedural ones
        self.backgrounds = backgrounds    # [Background]
        self.soundfonts = soundfonts      # [SoundFont]
        self.families = families          # {split: family}
        self.procedural_share = procedural_share  # chance an object uses a procedural drawing
        self.variety = variety or V.Variety()     # the training split's extras (with a vrng only)

    def drawings_for(self, split, cls, procedural: bool = False):
        return [d for d in self.drawings[cls] if split in d.splits and d.procedural == procedural]

    def backgrounds_for(self, split):
        return [b for b in self.backgrounds if split in b.splits]

    def sources_for(self, split, cls):
        fam = self.families[split]
        return [(sf, p) for sf in self.soundfonts if sf.family == fam for p in PROGRAMS[cls]]

    def synth(self, sf):
        # one loaded font per process (rendering itself keeps no state)
        if sf.path not in _SYNTHS:
            _SYNTHS[sf.path] = Synth(sf.path)
        return _SYNTHS[sf.path]


_SYNTHS: dict = {}


# ---------------------------------------------------------------- pictures

def augment(im: Image.Image, rng: np.random.Generator, side: float, rotation: float = V.ROTATION,
            stretch: float = 1.0) -> tuple[Image.Image, dict]:
    """Mirror, colour jitter and rotation (up to `rotation` degrees either way) of an RGBA
    drawing, its width/height first scaled by `stretch`; the result's longest side is `side`
    pixels."""
    aug = {}
    im = _resize_longest(im, side)  # work at the final scale: cheap and sharp
    if stretch != 1.0:
        r = np.sqrt(stretch)
        im = im.resize((max(2, round(im.size[0] * r)), max(2, round(im.size[1] / r))), Image.Resampling.LANCZOS)
        aug["stretch"] = round(stretch, 3)
    if rng.random() < 0.5:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        aug["flip"] = True
    alpha = im.getchannel("A")
    b, c = float(rng.uniform(0.75, 1.25)), float(rng.uniform(0.75, 1.25))
    sat, hue = float(rng.uniform(0.6, 1.4)), float(rng.uniform(-0.06, 0.06))
    rgb = ImageEnhance.Brightness(im.convert("RGB")).enhance(b)
    rgb = ImageEnhance.Contrast(rgb).enhance(c)
    h, s_, v = (np.asarray(ch, np.int32) for ch in rgb.convert("HSV").split())
    h = ((h + int(round(hue * 256))) % 256).astype(np.uint8)
    s_ = np.clip(np.round(s_ * sat), 0, 255).astype(np.uint8)
    hsv = Image.merge("HSV", [Image.fromarray(x, "L") for x in (h, s_, v.astype(np.uint8))])
    im = hsv.convert("RGB").convert("RGBA")
    im.putalpha(alpha)
    angle = float(rng.uniform(-rotation, rotation))
    im = im.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    bbox = im.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    if bbox:
        im = im.crop(bbox)
    aug.update({"rotation": round(angle, 2), "brightness": round(b, 3), "contrast": round(c, 3),
                "saturation": round(sat, 3), "hue": round(hue, 3)})
    return _resize_longest(im, side), aug


def _resize_longest(im: Image.Image, side: float) -> Image.Image:
    s = side / max(im.size)
    return im.resize((max(2, round(im.size[0] * s)), max(2, round(im.size[1] * s))),
                     Image.Resampling.LANCZOS)


def background(split, cat: Catalogue, rng, photo_only=False) -> tuple[Image.Image, str]:
    """A 224x224 background: random crop of a photo, or a plain/gradient fill."""
    bgs = cat.backgrounds_for(split)
    if photo_only or rng.random() >= 0.25:
        bg = bgs[int(rng.integers(len(bgs)))]
        im = bg.image
        side = int(min(im.size) * rng.uniform(0.45, 1.0))
        x0 = int(rng.integers(0, im.size[0] - side + 1))
        y0 = int(rng.integers(0, im.size[1] - side + 1))
        crop = im.crop((x0, y0, x0 + side, y0 + side)).resize((S, S), Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        crop = ImageEnhance.Brightness(crop).enhance(float(rng.uniform(0.8, 1.15)))
        return crop, bg.id
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    if rng.random() < 0.4:
        c1 = c0
    t = np.linspace(0, 1, S)[:, None, None]
    grad = c0 * (1 - t) + c1 * t                       # vertical gradient
    if rng.random() < 0.5:
        grad = grad.transpose(1, 0, 2)
    img = np.broadcast_to(grad, (S, S, 3)) + rng.normal(0, 4, (S, S, 3))
    return Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "RGB"), "plain"


def paste(canvas: Image.Image, obj: Image.Image, x: int, y: int) -> list[float]:
    """Alpha-composite obj at (x, y); returns its normalised [x, y, w, h] box
    measured from the pasted alpha."""
    return V.alpha_box(V.composite(canvas, obj, x, y))


def _pick(seq, rng):
    return seq[int(rng.integers(len(seq)))]


def _object(split, cls, cat, rng, side, vrng=None):
    drawn = cat.drawings_for(split, cls, procedural=True)
    # no extra random draw where there are no procedural drawings (val, test): those
    # splits' scenes stay byte-identical to a build without them
    use_drawn = bool(drawn) and rng.random() < cat.procedural_share
    d = _pick(drawn if use_drawn else cat.drawings_for(split, cls), rng)
    if vrng is None:
        im, aug = augment(d.image, rng, side)
    else:
        var = cat.variety
        im, aug = augment(d.image, rng, side, var.rotation,
                          V.stretch_factor(var, vrng) if var.aspect else 1.0)
    return d, im, aug


def _place(canvas, obj, x, y, aug, split, cat, vrng=None, forbid=()) -> list[float]:
    """Paste an instrument and return its box; with vrng, partly hide it behind an occluder
    (chance cat.variety.occlusion) and return the box of what stays visible. The occluder
    keeps out of the `forbid` rectangles (the other instruments' places)."""
    hidden = None
    if vrng is not None and cat.variety.occlusion and vrng.random() < cat.variety.occlusion:
        hidden = V.occlude(obj, cat.variety, vrng, cat.backgrounds_for(split))
    if hidden is None:
        return paste(canvas, obj, x, y)
    cut, occ, (dx, dy), info = hidden
    box = paste(canvas, cut, x, y)
    V.paste_occluder(canvas, occ, x + dx, y + dy, list(forbid))
    aug["occluded"] = info
    return box


def _distractors(canvas, cat, vrng, avoid, size) -> list[dict]:
    if vrng is None or not cat.variety.distractors:
        return []
    return V.distractors(canvas, cat.variety, vrng, avoid, size, augment)


# ---------------------------------------------------------------- audio

def sound(split, cls, cat, rng) -> tuple[np.ndarray, dict]:
    sf, prog = _pick(cat.sources_for(split, cls), rng)
    clip, info = render_clip(cat.synth(sf), cls, prog, rng)
    return clip, {"soundfont": sf.name, "program": prog, "family": sf.family, **info}


def mix(clips: list[np.ndarray], rng, room: np.ndarray | None = None) -> np.ndarray:
    """Sum, reverberate with the impulse response `room` if given, add a faint noise floor,
    keep peaks below full scale."""
    out = np.zeros(CLIP_SAMPLES, np.float64)
    for c in clips:
        out += c
    if room is not None:
        out = V.reverberate(out, room)
    floor_db = float(rng.uniform(-72, -58))
    out += rng.normal(0, 10 ** (floor_db / 20), CLIP_SAMPLES)
    peak = np.max(np.abs(out))
    if peak > 0.97:
        out *= 0.97 / peak
    return out


def to_pcm16(x: np.ndarray) -> bytes:
    return np.clip(np.round(x * 32767), -32768, 32767).astype("<i2").tobytes()


# ---------------------------------------------------------------- scenes

def _entry(cls, box, sounding, drawing, snd, aug, bg=None):
    e = {"class": cls, "class_id": CLASSES.index(cls), "box": box, "sounding": sounding,
         "drawing": drawing.id, "sound": snd, "augment": aug}
    if bg is not None:
        e["background"] = bg
    return e


def _solo_frame(split, cls, cat, rng, scale=(0.45, 0.9), vrng=None):
    canvas, bg_id = background(split, cat, rng)
    d, obj, aug = _object(split, cls, cat, rng, S * float(rng.uniform(*scale)), vrng)
    x = int(rng.integers(0, S - obj.size[0] + 1))
    y = int(rng.integers(0, S - obj.size[1] + 1))
    things = _distractors(canvas, cat, vrng, [(x, y, *obj.size)], (0.2, 0.45))
    box = _place(canvas, obj, x, y, aug, split, cat, vrng)
    return canvas, box, d, aug, bg_id, things


def _extras(bgs, things, room_info) -> dict:
    """A scene's manifest keys besides its objects: distractors and reverb only when present."""
    out = {"backgrounds": bgs}
    if things:
        out["distractors"] = things
    if room_info:
        out["reverb"] = room_info
    return out


def _room(cat, vrng):
    """(impulse response, manifest info) of a training scene's room, or (None, None)."""
    if vrng is None or not cat.variety.reverb or vrng.random() >= cat.variety.reverb:
        return None, None
    return V.room(vrng)


def solo_scene(split, index, cat, rng, vrng=None):
    """One instrument on a photo or plain background, with its own sound."""
    cls = CLASSES[index % len(CLASSES)]
    canvas, box, d, aug, bg_id, things = _solo_frame(split, cls, cat, rng, vrng=vrng)
    clip, snd = sound(split, cls, cat, rng)
    ir, room_info = _room(cat, vrng)
    audio = mix([clip], rng, ir)
    return canvas, audio, [_entry(cls, box, True, d, snd, aug)], _extras([bg_id], things, room_info)


def _to_quadrant(box, qx, qy):
    return [round((qx + box[0]) / 2, 6), round((qy + box[1]) / 2, 6), round(box[2] / 2, 6), round(box[3] / 2, 6)]


def synthetic_scene(split, index, cat, rng, vrng=None):
    """MUSIC-Synthetic: four frames of four different classes tiled 2x2;
    audio = mix of two of them, the other two silent."""
    classes = [CLASSES[i] for i in rng.permutation(len(CLASSES))[:4]]
    sounding = set(int(i) for i in rng.permutation(4)[:2])
    canvas = Image.new("RGB", (S, S))
    objects, clips, bgs, things = [], [], [], []
    half = S // 2
    for q, cls in enumerate(classes):
        frame, box, d, aug, bg_id, drawn = _solo_frame(split, cls, cat, rng, vrng=vrng)
        qx, qy = q % 2, q // 2
        canvas.paste(frame.resize((half, half), Image.Resampling.LANCZOS), (qx * half, qy * half))
        qbox = _to_quadrant(box, qx, qy)
        things += [{**t, "box": _to_quadrant(t["box"], qx, qy)} for t in drawn]
        snd = None
        if q in sounding:
            clip, snd = sound(split, cls, cat, rng)
            clips.append(clip)
        objects.append(_entry(cls, qbox, q in sounding, d, snd, aug, bg_id))
        bgs.append(bg_id)
    ir, room_info = _room(cat, vrng)
    return canvas, mix(clips, rng, ir), objects, _extras(bgs, things, room_info)


def _overlap(a, b, gap):
    return not (a[0] + a[2] + gap <= b[0] or b[0] + b[2] + gap <= a[0] or
                a[1] + a[3] + gap <= b[1] or b[1] + b[3] + gap <= a[1])


def layout(sizes, rng) -> list[tuple[int, int, int, int]]:
    """Non-overlapping places (x, y, w, h) on the S x S canvas for objects of the given (w, h)
    sizes, at least 3 pixels apart; all shrunk by 0.85 and tried again when they do not fit."""
    scale = 1.0
    for _attempt in range(12):
        rects = []
        for w0, h0 in sizes:
            w, h = max(2, round(w0 * scale)), max(2, round(h0 * scale))
            for _try in range(60):
                x, y = int(rng.integers(0, S - w + 1)), int(rng.integers(0, S - h + 1))
                if not any(_overlap((x, y, w, h), r, 3) for r in rects):
                    rects.append((x, y, w, h))
                    break
            else:
                break
        else:
            return rects
        scale *= 0.85
    raise RuntimeError("could not place objects")


def free_scene(split, index, cat, rng, vrng=None):
    """2-4 instruments of different classes on a photo, non-overlapping boxes;
    at least one sounding and at least one silent."""
    n = int(rng.choice([2, 3, 3, 4]))
    classes = [CLASSES[i] for i in rng.permutation(len(CLASSES))[:n]]
    n_sound = int(rng.integers(1, n))
    sounding = set(int(i) for i in rng.permutation(n)[:n_sound])
    canvas, bg_id = background(split, cat, rng, photo_only=True)
    top = {2: 0.55, 3: 0.47, 4: 0.42}[n]
    objs = [_object(split, c, cat, rng, S * float(rng.uniform(0.26, top)), vrng) for c in classes]
    rects = layout([im.size for _d, im, _aug in objs], rng)
    things = _distractors(canvas, cat, vrng, rects, (0.15, 0.35))
    objects, clips = [], []
    for q, ((d, im, aug), (x, y, w, h), cls) in enumerate(zip(objs, rects, classes)):
        if im.size != (w, h):
            im = im.resize((w, h), Image.Resampling.LANCZOS)
        box = _place(canvas, im, x, y, aug, split, cat, vrng, [r for k, r in enumerate(rects) if k != q])
        snd = None
        if q in sounding:
            clip, snd = sound(split, cls, cat, rng)
            clips.append(clip)
        objects.append(_entry(cls, box, q in sounding, d, snd, aug))
    ir, room_info = _room(cat, vrng)
    return canvas, mix(clips, rng, ir), objects, _extras([bg_id], things, room_info)


KINDS = {"solo": solo_scene, "synthetic": synthetic_scene, "free": free_scene}
