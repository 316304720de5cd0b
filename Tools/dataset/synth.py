"""In-process General MIDI rendering with libfluidsynth (ctypes) and random
melodies per instrument class.

Every clip is rendered from a reset synthesizer with reverb and chorus off and
float output (no dither), so a clip depends only on its soundfont, program and
random generator: the same seed gives the same samples in any order or process.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass, field

import numpy as np

from . import SAMPLE_RATE, CLIP_SAMPLES

BLOCK = 64  # fluidsynth's internal block; control curves are updated per block

# General MIDI programs (0-based) per class, SPEC section 5. Saxophone programs
# carry their own ranges. Erhu has no GM program: fiddle 110 + slides/vibrato.
PROGRAMS = {
    "accordion": [21, 23],
    "acoustic_guitar": [24, 25],
    "cello": [42],
    "clarinet": [71],
    "erhu": [110],
    "flute": [73],
    "saxophone": [64, 65, 66, 67],
    "trumpet": [56],
    "tuba": [58],
    "violin": [40],
    "xylophone": [13],
}


@dataclass(frozen=True)
class Style:
    lo: int                      # MIDI key range
    hi: int
    beats: tuple                 # note lengths in beats
    vib_cents: float = 0.0       # vibrato depth
    vib_rate: float = 5.5        # Hz
    slide: bool = False          # portamento into notes (erhu)
    chord_p: float = 0.0         # chance of a chord instead of a single note
    tremolo_p: float = 0.0       # chance of a repeated-note tremolo (xylophone)
    legato: float = 0.92         # sounding share of each note's slot
    poly: bool = False


STYLES = {
    "accordion": Style(53, 84, (0.5, 1, 1, 1.5, 2), chord_p=0.35, legato=0.97, poly=True),
    "acoustic_guitar": Style(40, 76, (0.25, 0.5, 0.5, 1), chord_p=0.4, legato=1.0, poly=True),
    "cello": Style(36, 69, (0.5, 1, 1, 2), vib_cents=22, vib_rate=5.3, legato=0.98),
    "clarinet": Style(50, 86, (0.25, 0.5, 0.5, 1, 1.5), vib_cents=3),
    "erhu": Style(62, 93, (0.5, 1, 1, 1.5, 2), vib_cents=38, vib_rate=6.2, slide=True, legato=0.99),
    "flute": Style(60, 96, (0.25, 0.5, 0.5, 1, 1.5), vib_cents=12, vib_rate=5.0),
    "saxophone": Style(49, 80, (0.25, 0.5, 0.5, 1, 1.5), vib_cents=15, vib_rate=5.0),
    "trumpet": Style(54, 82, (0.25, 0.5, 0.5, 1), vib_cents=6),
    "tuba": Style(28, 58, (0.5, 1, 1, 2), legato=0.9),
    "violin": Style(55, 91, (0.25, 0.5, 1, 1, 2), vib_cents=25, vib_rate=6.0, legato=0.98),
    "xylophone": Style(60, 96, (0.25, 0.25, 0.5, 0.5, 1), tremolo_p=0.2, legato=1.0, poly=True),
}
SAX_RANGES = {64: (56, 87), 65: (49, 80), 66: (44, 75), 67: (36, 68)}

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
}


class FluidSynthMissing(RuntimeError):
    pass


def _lib():
    name = ctypes.util.find_library("fluidsynth")
    for cand in ([name] if name else []) + ["libfluidsynth.so.3", "libfluidsynth.so.2"]:
        try:
            lib = ctypes.CDLL(cand)
            break
        except OSError:
            continue
    else:
        raise FluidSynthMissing(
            "libfluidsynth not found: run Tools/dataset/install_assets.sh (Debian libfluidsynth3)")
    vp, ci, cd, cs = ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_char_p
    sig = {
        "new_fluid_settings": (vp, []),
        "delete_fluid_settings": (None, [vp]),
        "fluid_settings_setnum": (ci, [vp, cs, cd]),
        "fluid_settings_setint": (ci, [vp, cs, ci]),
        "new_fluid_synth": (vp, [vp]),
        "delete_fluid_synth": (None, [vp]),
        "fluid_synth_sfload": (ci, [vp, cs, ci]),
        "fluid_synth_program_select": (ci, [vp, ci, ci, ci, ci]),
        "fluid_synth_noteon": (ci, [vp, ci, ci, ci]),
        "fluid_synth_noteoff": (ci, [vp, ci, ci]),
        "fluid_synth_pitch_bend": (ci, [vp, ci, ci]),
        "fluid_synth_pitch_wheel_sens": (ci, [vp, ci, ci]),
        "fluid_synth_cc": (ci, [vp, ci, ci, ci]),
        "fluid_synth_system_reset": (ci, [vp]),
        "fluid_synth_write_float": (ci, [vp, ci, vp, ci, ci, vp, ci, ci]),
        "fluid_set_log_function": (vp, [ci, vp, vp]),
        "fluid_synth_get_sfont_by_id": (vp, [vp, ci]),
        "fluid_synth_add_sfont": (ci, [vp, vp]),
        "fluid_synth_remove_sfont": (ci, [vp, vp]),
    }
    for fn, (res, args) in sig.items():
        f = getattr(lib, fn)
        f.restype, f.argtypes = res, args
    for level in (2, 3, 4):  # silence warnings, info and debug messages
        lib.fluid_set_log_function(level, None, None)
    return lib


_LIB = None


def lib():
    global _LIB
    if _LIB is None:
        _LIB = _lib()
    return _LIB


class Synth:
    """A loaded soundfont. Each render runs on a throw-away fluidsynth instance
    that borrows the loaded font: a reused instance keeps state between clips
    (voices ringing on after a reset, voice-slot history), which would make a
    clip depend on the clips rendered before it."""

    def __init__(self, sf_path: str):
        L = lib()
        self._L = L
        self.settings = L.new_fluid_settings()
        for key, val in (("synth.sample-rate", float(SAMPLE_RATE)), ("synth.gain", 0.3)):
            L.fluid_settings_setnum(self.settings, key.encode(), val)
        for key, val in (("synth.reverb.active", 0), ("synth.chorus.active", 0),
                         ("synth.polyphony", 96), ("synth.cpu-cores", 1),
                         ("synth.dynamic-sample-loading", 0)):
            L.fluid_settings_setint(self.settings, key.encode(), val)
        self.owner = L.new_fluid_synth(self.settings)  # owns the loaded font
        if not self.owner:
            raise RuntimeError("new_fluid_synth failed")
        sfid = L.fluid_synth_sfload(self.owner, sf_path.encode(), 1)
        if sfid < 0:
            raise RuntimeError(f"fluidsynth could not load soundfont {sf_path}")
        self.sfont = L.fluid_synth_get_sfont_by_id(self.owner, sfid)
        self._l = np.zeros(BLOCK * 64, np.float32)
        self._r = np.zeros(BLOCK * 64, np.float32)

    def close(self):
        if self.owner:
            self._L.delete_fluid_synth(self.owner)
            self._L.delete_fluid_settings(self.settings)
            self.owner = None

    def _render(self, s, n: int, out: list):
        L = self._L
        while n > 0:
            k = min(n, self._l.size)
            L.fluid_synth_write_float(s, k, self._l.ctypes.data, 0, 1,
                                      self._r.ctypes.data, 0, 1)
            out.append(0.5 * (self._l[:k] + self._r[:k]))
            n -= k

    def render(self, perf: "Performance", program: int) -> np.ndarray:
        """Render a performance; returns mono float32 of perf.n_samples."""
        L = self._L
        s = L.new_fluid_synth(self.settings)
        if not s:
            raise RuntimeError("new_fluid_synth failed")
        sfid = L.fluid_synth_add_sfont(s, self.sfont)
        try:
            return self._render_on(s, sfid, perf, program)
        finally:
            L.fluid_synth_remove_sfont(s, self.sfont)
            L.delete_fluid_synth(s)

    def _render_on(self, s, sfid: int, perf: "Performance", program: int) -> np.ndarray:
        L = self._L
        if L.fluid_synth_program_select(s, 0, sfid, 0, program) != 0:
            raise RuntimeError(f"program {program} missing in soundfont")
        L.fluid_synth_pitch_wheel_sens(s, 0, perf.bend_range)
        # events: (sample, order, kind, a, b); order keeps note-offs before note-ons
        ev = []
        for start, dur, key, vel in perf.notes:
            ev.append((start, 1, "on", key, vel))
            ev.append((start + dur, 0, "off", key, 0))
        nblocks = (perf.n_samples + BLOCK - 1) // BLOCK
        for b in range(nblocks):
            ev.append((b * BLOCK, 2, "bend", int(perf.bend[b]), 0))
            ev.append((b * BLOCK, 2, "expr", int(perf.expr[b]), 0))
        ev.sort(key=lambda e: (e[0], e[1], e[2], e[3]))
        out: list = []
        pos = 0
        last_bend = last_expr = None
        for t, _, kind, a, b in ev:
            t = min(t, perf.n_samples)
            if t > pos:
                self._render(s, t - pos, out)
                pos = t
            if kind == "on":
                L.fluid_synth_noteon(s, 0, a, b)
            elif kind == "off":
                L.fluid_synth_noteoff(s, 0, a)
            elif kind == "bend" and a != last_bend:
                L.fluid_synth_pitch_bend(s, 0, a)
                last_bend = a
            elif kind == "expr" and a != last_expr:
                L.fluid_synth_cc(s, 0, 11, a)
                last_expr = a
        if pos < perf.n_samples:
            self._render(s, perf.n_samples - pos, out)
        return np.concatenate(out)[:perf.n_samples].astype(np.float32)


@dataclass
class Performance:
    notes: list                        # (start sample, duration samples, key, velocity)
    bend: np.ndarray                   # per block, 0..16383
    expr: np.ndarray                   # per block, CC11 0..127
    n_samples: int
    bend_range: int = 2                # semitones
    meta: dict = field(default_factory=dict)


def make_performance(cls: str, program: int, rng: np.random.Generator,
                     seconds: float) -> Performance:
    """A random melody (or strums/chords) for one instrument class."""
    st = STYLES[cls]
    lo, hi = SAX_RANGES.get(program, (st.lo, st.hi)) if cls == "saxophone" else (st.lo, st.hi)
    n = int(round(seconds * SAMPLE_RATE))
    bpm = float(rng.uniform(70, 150))
    beat = 60.0 / bpm
    root = int(rng.integers(12))
    mode = list(SCALES)[int(rng.integers(len(SCALES)))]
    keys = [k for k in range(lo, hi + 1) if (k - root) % 12 in SCALES[mode]]
    idx = int(rng.integers(len(keys) // 4, max(len(keys) // 4 + 1, 3 * len(keys) // 4)))
    base_vel = int(rng.integers(60, 115))
    notes, spans = [], []  # spans: (start, end, key) of the melody line
    t = 0.0
    while t < seconds:
        slot = beat * float(st.beats[int(rng.integers(len(st.beats)))])
        if rng.random() < 0.07 and t > 0:  # short rest
            t += slot * 0.5
            continue
        step = int(rng.choice([-3, -2, -1, -1, 0, 1, 1, 2, 3]))
        if rng.random() < 0.1:
            step = int(rng.integers(-5, 6))
        idx = int(np.clip(idx + step, 0, len(keys) - 1))
        key = keys[idx]
        vel = int(np.clip(base_vel + rng.integers(-12, 13), 30, 127))
        s0 = int(t * SAMPLE_RATE)
        dur = max(int(slot * st.legato * SAMPLE_RATE), BLOCK)
        if st.tremolo_p and rng.random() < st.tremolo_p:
            rep = max(int(slot / 0.06), 2)
            for r in range(rep):  # repeated strikes, ~60 ms apart
                notes.append((s0 + int(r * 0.06 * SAMPLE_RATE), int(0.055 * SAMPLE_RATE), key,
                              int(np.clip(vel - 10 + rng.integers(-8, 9), 20, 127))))
        elif st.chord_p and rng.random() < st.chord_p:
            chord = [keys[min(idx + o, len(keys) - 1)] for o in (0, 2, 4)]
            if cls == "acoustic_guitar":
                chord = sorted(set(chord + [keys[max(idx - 3, 0)]]))
                stagger = int(rng.uniform(0.008, 0.025) * SAMPLE_RATE)  # strum
                if rng.random() < 0.5:
                    chord = chord[::-1]
            else:
                stagger = 0
            for j, k in enumerate(sorted(set(chord))):
                notes.append((s0 + j * stagger, dur, k, int(np.clip(vel - 8 * (j > 0), 20, 127))))
        else:
            notes.append((s0, dur, key, vel))
        spans.append((s0, s0 + dur, key))
        t += slot
    nblocks = (n + BLOCK - 1) // BLOCK
    cents = np.zeros(nblocks)
    bend_range = 2
    tb = np.arange(nblocks) * BLOCK / SAMPLE_RATE
    if st.vib_cents > 0:
        depth = st.vib_cents * float(rng.uniform(0.6, 1.3))
        rate = st.vib_rate * float(rng.uniform(0.85, 1.15))
        phase = float(rng.uniform(0, 2 * np.pi))
        onset = np.zeros(nblocks)  # vibrato grows in after each note start
        for s0, s1, _ in spans:
            b0, b1 = s0 // BLOCK, min(s1 // BLOCK + 1, nblocks)
            if b0 < nblocks:
                ramp = np.clip((np.arange(b1 - b0) * BLOCK / SAMPLE_RATE - 0.08) / 0.2, 0, 1)
                onset[b0:b1] = np.maximum(onset[b0:b1], ramp)
        cents += depth * onset * np.sin(2 * np.pi * rate * tb + phase)
    if st.slide:
        bend_range = 4
        prev = None
        for s0, s1, key in spans:
            b0 = s0 // BLOCK
            start = (prev - key) * 100.0 if prev is not None else -float(rng.uniform(80, 250))
            start = float(np.clip(start, -300, 300))
            glide = float(rng.uniform(0.05, 0.16))
            nb = max(int(glide * SAMPLE_RATE / BLOCK), 1)
            ramp = start * (1 - np.linspace(0, 1, nb)) ** 2
            hi_b = min(b0 + nb, nblocks)
            if b0 < nblocks:
                cents[b0:hi_b] += ramp[:hi_b - b0]
            prev = key
    bend = np.clip(8192 + cents / (100.0 * bend_range) * 8192, 0, 16383).round()
    e0, e1 = float(rng.uniform(75, 127)), float(rng.uniform(75, 127))
    expr = np.round(np.linspace(e0, e1, nblocks)).astype(int)
    return Performance(notes, bend.astype(int), expr, n, bend_range,
                       meta={"bpm": round(bpm, 1), "root": root, "mode": mode})


def render_clip(synth: Synth, cls: str, program: int, rng: np.random.Generator,
                max_tries: int = 6) -> tuple[np.ndarray, dict]:
    """One 1-second clip cut from the middle of a longer phrase, at a random
    loudness. Returns float32 samples in [-1, 1] and a small description."""
    for _ in range(max_tries):
        pre = float(rng.uniform(0.15, 0.6))
        perf = make_performance(cls, program, rng, pre + 1.2)
        audio = synth.render(perf, program)
        s0 = int(pre * SAMPLE_RATE)
        clip = audio[s0:s0 + CLIP_SAMPLES]
        rms = float(np.sqrt(np.mean(clip.astype(np.float64) ** 2)))
        # require sound in most of the window (not one note's tail)
        frames = clip[: (CLIP_SAMPLES // 400) * 400].reshape(-1, 400)
        active = np.mean(np.sqrt(np.mean(frames ** 2, axis=1)) > 0.05 * max(rms, 1e-9))
        if rms > 1e-4 and active > 0.6:
            break
    level_db = float(rng.uniform(-30.0, -16.0))
    clip = clip * (10 ** (level_db / 20) / max(rms, 1e-9))
    peak = float(np.max(np.abs(clip)))
    if peak > 0.97:
        clip *= 0.97 / peak
    info = {"level_dbfs": round(level_db, 2), "offset_s": round(pre, 3), **perf.meta}
    return clip.astype(np.float32), info
