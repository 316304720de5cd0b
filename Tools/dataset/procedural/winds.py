"""Procedural drawings: winds. Each drawer draws one instrument on a Canvas in the unit frame
and returns the tilt (degrees) at which the finished drawing is shown."""
from __future__ import annotations

import numpy as np

from .canvas import (BRASS, BRIGHT, DARK, SILVER, WOODS, Canvas, Style, outline_from_widths, rounded_rect,
                     smooth_profile)

# bar colours of toy xylophones, in rainbow order
RAINBOW = [(0.88, 0.18, 0.18), (0.95, 0.52, 0.12), (0.98, 0.85, 0.15), (0.35, 0.72, 0.25),
           (0.20, 0.70, 0.80), (0.20, 0.40, 0.85), (0.50, 0.25, 0.75), (0.90, 0.35, 0.65)]
PEARL = [(0.95, 0.93, 0.88), (0.85, 0.80, 0.70)]
ORANGE = [(0.90, 0.45, 0.15), (0.85, 0.30, 0.15)]


# ---------------------------------------------------------------- shared helpers

def tone(st: Style, col, f: float) -> tuple:
    """col darkened (f < 0) or lightened (f > 0); white stays white in line art."""
    if st.line_art:
        return (1.0, 1.0, 1.0)
    return tuple(v + f * (1 - v) if f > 0 else v * (1 + f) for v in col[:3])


def poly(c: Canvas, pts, fill, outline=None, w: float | None = None) -> None:
    """Polygon without the canvas's automatic highlight (these drawers draw their own sheen);
    w caps the outline width so small details are not swamped."""
    c.polygon([tuple(p) for p in np.asarray(pts, float)], fill, outline,
              None if w is None else min(w, c.style.line), highlight=False)


def disc(c: Canvas, x, y, rx, fill, ry=None, angle=0.0, outline=None) -> None:
    ry = rx if ry is None else ry
    t = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    ca, sa = np.cos(angle), np.sin(angle)
    ex, ey = rx * np.cos(t), ry * np.sin(t)
    poly(c, np.c_[x + ca * ex - sa * ey, y + sa * ex + ca * ey], fill, outline, w=0.4 * min(rx, ry))


def box(c: Canvas, cx, cy, w, h, fill, outline=None, angle=0.0) -> None:
    """Rotated w x h rectangle centred at (cx, cy), outline capped to its size."""
    ca, sa = np.cos(angle), np.sin(angle)
    pts = [(cx + ca * x - sa * y, cy + sa * x + ca * y)
           for x, y in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2))]
    poly(c, pts, fill, outline, w=0.35 * min(w, h))


class Turtle:
    """Builds a tube's centre line from straight runs and circular bends (heading in radians,
    y down, so a positive turn is clockwise on screen)."""

    def __init__(self, x: float, y: float, heading: float):
        self.pts, self.h = [(x, y)], heading

    def fwd(self, d: float, n: int = 6) -> "Turtle":
        x, y = self.pts[-1]
        self.pts += [(x + np.cos(self.h) * d * i / n, y + np.sin(self.h) * d * i / n) for i in range(1, n + 1)]
        return self

    def turn(self, r: float, da: float, n: int = 20) -> "Turtle":
        s = 1.0 if da > 0 else -1.0
        x, y = self.pts[-1]
        cx, cy = x + r * np.cos(self.h + s * np.pi / 2), y + r * np.sin(self.h + s * np.pi / 2)
        phi = self.h - s * np.pi / 2 + da * np.linspace(0, 1, n + 1)[1:]
        self.pts += list(zip(cx + r * np.cos(phi), cy + r * np.sin(phi)))
        self.h += da
        return self

    def array(self) -> np.ndarray:
        return np.asarray(self.pts, float)


def arclen(p: np.ndarray) -> np.ndarray:
    """Cumulative length along a polyline, 0 at its start."""
    return np.r_[0.0, np.cumsum(np.hypot(*np.diff(p, axis=0).T))]


def normals(p: np.ndarray) -> np.ndarray:
    t = np.gradient(p, axis=0)
    t /= np.linalg.norm(t, axis=1, keepdims=True) + 1e-12
    return np.c_[-t[:, 1], t[:, 0]]


def tube(c: Canvas, p, hw, fill, outline=None) -> None:
    """A tube of half width hw (scalar or one per point) along the polyline p, with an opaque
    sheen stripe on its upper-left side when the style shades."""
    p = np.asarray(p, float)
    hw = np.broadcast_to(np.asarray(hw, float), (len(p),))[:, None]
    n = normals(p)
    poly(c, np.vstack([p + n * hw, (p - n * hw)[::-1]]), fill, outline)
    st = c.style
    if st.shade > 0 and not st.line_art:
        side = -1.0 if (n.sum(axis=1)).mean() > 0 else 1.0   # toward the upper left
        a, b = p + side * n * hw * 0.15, p + side * n * hw * 0.6
        poly(c, np.vstack([a, b[::-1]]), tone(st, fill, st.shade), outline=False)


def bell_rim(c: Canvas, x, y, heading, r, depth, fill, inside=None) -> None:
    """Opening of a bell at (x, y) facing along heading: a rim ellipse and its dark inside."""
    disc(c, x, y, r, fill, ry=depth, angle=heading + np.pi / 2)
    if inside is not None:
        disc(c, x, y, r * 0.8, inside, ry=depth * 0.7, angle=heading + np.pi / 2, outline=False)


def diagonal_tilt(rng: np.random.Generator, p_diag: float, p_vert: float, flat: tuple = (80, 100)) -> float:
    """Tilt of a long thin instrument: diagonal, near vertical or near horizontal (within flat)."""
    u, s = rng.random(), float(rng.choice([-1.0, 1.0]))
    if u < p_diag:
        return s * rng.uniform(28, 60)
    if u < p_diag + p_vert:
        return rng.uniform(-10, 10)
    return s * rng.uniform(*flat)


# ---------------------------------------------------------------- clarinet

def draw_clarinet(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    body = st.colour(DARK if rng.random() < 0.8 else [WOODS[2], WOODS[4]])
    metal = st.colour(SILVER if rng.random() < 0.85 else BRASS)
    dark_metal = tone(st, metal, -0.35)
    hw = rng.uniform(0.026, 0.04)                     # a clarinet is ~ 1:12 to 1:20
    mp = rng.uniform(0.07, 0.10)                      # mouthpiece end
    barrel = mp + rng.uniform(0.06, 0.09)             # barrel end
    bell = rng.uniform(0.80, 0.86)                    # bell start
    mid = (barrel + bell) / 2 + rng.uniform(-0.03, 0.03)
    flare = hw * rng.uniform(1.8, 2.6)
    # body: mouthpiece taper, straight joints, flared bell
    ys, hws = smooth_profile([0.0, mp * 0.5, mp, bell, bell + (1 - bell) * 0.55, 1.0],
                             [hw * 0.45, hw * 0.8, hw * 0.95, hw, hw * 1.3, flare], n=80)
    poly(c, outline_from_widths(ys, hws), body)
    if st.shade > 0 and not st.line_art:              # a sheen line down the tube
        c.line([(-hw * 0.45, mp + 0.02), (-hw * 0.45, bell)], tone(st, body, 0.35), hw * 0.25)
    # the mouthpiece's beak is often a different shade, with a ligature band
    if rng.random() < 0.6:
        poly(c, outline_from_widths(ys[ys <= mp], hws[ys <= mp]), tone(st, body, 0.25) if rng.random() < 0.5 else body)
    box(c, 0, mp * 0.65, hw * 1.9, mp * 0.18, metal)
    if rng.random() < 0.4:                            # reed along one side
        poly(c, [(hw * 0.5, mp * 0.1), (hw * 0.95, mp * 0.85), (hw * 0.6, mp * 0.85)],
             st.colour([(0.85, 0.72, 0.45)]), w=hw * 0.2)
    # barrel, slightly wider, and metal rings at the joints
    box(c, 0, (mp + barrel) / 2, hw * 2.25, barrel - mp, body)
    for y in (mp, barrel, mid, bell) + ((1.0,) if rng.random() < 0.5 else ()):
        r = flare if y == 1.0 else hw
        box(c, 0, y, r * 2.3, rng.uniform(0.008, 0.014), metal)
    # tone holes with ring keys, two groups (left and right hand)
    ring = rng.random() < 0.8
    for a, b in ((barrel + 0.04, mid - 0.03), (mid + 0.04, bell - 0.04)):
        k = int(rng.integers(3, 5))
        for y in np.linspace(a, b, k):
            if ring:
                disc(c, 0, y, hw * 0.62, metal)
            disc(c, 0, y, hw * 0.35, tone(st, body, -0.5) if not ring else (0.05, 0.05, 0.05), outline=False)
    # key rods and levers along one side
    if rng.random() < 0.85:
        s = float(rng.choice([-1.0, 1.0]))
        for a, b in ((barrel + 0.02, mid - 0.015), (mid + 0.015, bell - 0.01)):
            c.line([(s * hw * 0.75, a), (s * hw * 0.75, b)], metal, hw * 0.22)
            for y in rng.uniform(a, b, int(rng.integers(2, 5))):
                box(c, s * hw * 0.55, y, hw * 0.9, hw * 0.5, dark_metal if rng.random() < 0.3 else metal)
    # thumb rest / register key on the back shows as a small bump
    if rng.random() < 0.5:
        box(c, -hw * 1.05, barrel + 0.05, hw * 0.4, 0.025, metal)
    return diagonal_tilt(rng, 0.7, 0.15)


# ---------------------------------------------------------------- flute

def draw_flute(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    metal = st.colour(SILVER if rng.random() < 0.88 else BRASS)
    keys = tone(st, metal, rng.uniform(-0.25, 0.15))
    rim = tone(st, metal, -0.45)
    hw = rng.uniform(0.011, 0.017)                    # a flute is ~ 1:30 to 1:45
    head = rng.uniform(0.26, 0.33)                    # head joint end
    foot = rng.uniform(0.80, 0.85)                    # foot joint start
    # crown cap, then the tube
    box(c, 0, 0.012, hw * 1.7, 0.024, tone(st, metal, -0.15))
    box(c, 0, 0.51, hw * 2, 0.98, metal)
    if st.shade > 0 and not st.line_art:
        c.line([(-hw * 0.4, 0.03), (-hw * 0.4, 0.99)], tone(st, metal, 0.6), hw * 0.35)
    # joint rings
    for y in (0.024, head, head + 0.02, foot) + ((0.995,) if rng.random() < 0.6 else ()):
        box(c, 0, y, hw * 2.35, rng.uniform(0.006, 0.011), tone(st, metal, -0.1))
    # lip plate and embouchure hole near the head
    ye = rng.uniform(0.08, 0.12)
    disc(c, 0, ye, hw * rng.uniform(1.3, 1.7), tone(st, metal, 0.1), ry=hw * rng.uniform(2.2, 3.2), outline=None)
    disc(c, 0, ye, hw * 0.55, (0.08, 0.08, 0.1), ry=hw * 0.9, outline=False)
    # key rods along one side
    s = float(rng.choice([-1.0, 1.0]))
    rod = rng.random() < 0.85
    if rod:
        c.line([(s * hw * 0.95, head + 0.04), (s * hw * 0.95, foot + 0.12)], rim, hw * 0.35)
    # key cups in the hand groups, some with open holes (French flute)
    ys = np.r_[np.linspace(head + 0.07, head + 0.07 + rng.uniform(0.14, 0.2), int(rng.integers(4, 7))),
               np.linspace(foot - rng.uniform(0.2, 0.26), foot - 0.04, int(rng.integers(3, 6))),
               np.linspace(foot + 0.04, foot + rng.uniform(0.09, 0.13), int(rng.integers(2, 4)))]
    open_holes = rng.random() < 0.5
    rc = hw * rng.uniform(0.85, 1.15)
    for i, y in enumerate(ys):
        if rod:
            box(c, s * hw * 0.5, y, hw * 1.0, hw * 0.45, rim, outline=False)
        disc(c, 0, y, rc, keys, outline=None)
        disc(c, 0, y, rc, keys, ry=rc, outline=rim)
        if open_holes and i % 2 == 0:
            disc(c, 0, y, rc * 0.4, (0.1, 0.1, 0.12), outline=False)
    # a few levers between the groups
    for y in rng.uniform(head + 0.1, foot, int(rng.integers(1, 4))):
        box(c, -s * hw * 0.6, y, hw * 0.7, hw * 1.6, keys, outline=rim)
    # never quite level: a level flute crops to a featureless few-pixel strip
    return diagonal_tilt(rng, 0.75, 0.0, flat=(66, 82))


# ---------------------------------------------------------------- saxophone

def draw_saxophone(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    brass = st.colour(BRASS if rng.random() < 0.85 else SILVER + DARK[:1])
    chunky = rng.random() < 0.4                        # emoji-style: thick body, big key cups
    k = rng.uniform(1.4, 1.8) if chunky else 1.0
    hw0, hw1 = 0.022 * k, rng.uniform(0.05, 0.068) * (1.2 if chunky else 1.0)  # conical: top to bow
    bell_r = rng.uniform(0.1, 0.14) * (1.15 if chunky else 1.0)
    slant = np.radians(rng.uniform(0, 30) if chunky else rng.uniform(-5, 12))
    r_bow = max(rng.uniform(0.09, 0.13), hw1 * 1.25)
    body_len = rng.uniform(0.55, 0.7)
    up_len = rng.uniform(0.22, 0.32)
    out = np.radians(rng.uniform(5, 30))               # bell turned away from the body
    # body: from the top down, round the bow, up into the bell
    t = Turtle(0.0, 0.0, np.pi / 2 + slant).fwd(body_len, 12)
    nb = len(t.pts)
    t.turn(r_bow, np.pi - slant - 0.05, 24)
    nbow = len(t.pts)
    t.fwd(up_len * 0.5, 6).turn(0.3, -out + 0.05, 8).fwd(up_len * 0.5, 8)
    p = t.array()
    s = arclen(p)
    hw = np.interp(s, [0, s[nb - 1], s[nbow - 1], s[-1]], [hw0, hw1, hw1 * 1.1, hw1 * 1.2])
    flare = np.clip((s - s[-1] + up_len * 0.7) / (up_len * 0.7), 0, 1) ** 2.5
    hw = hw + (bell_r - hw) * flare
    # neck: up out of the body top, bending over toward either side, ending in a mouthpiece
    bend = float(rng.choice([-1.0, 1.0])) * np.radians(rng.uniform(100, 140))
    nk = Turtle(0.0, 0.0, -np.pi / 2 + slant).fwd(rng.uniform(0.05, 0.09), 4) \
        .turn(rng.uniform(0.05, 0.08), bend, 14).fwd(rng.uniform(0.03, 0.06), 3)
    neck = nk.array()
    mp_len = rng.uniform(0.06, 0.09)
    mp_end = neck[-1] + mp_len * np.array([np.cos(nk.h), np.sin(nk.h)])
    # fit everything into the unit frame: y from 0 to 1, centred in x
    allp = np.vstack([p, neck, mp_end[None], p[-1:] + bell_r, p[-1:] - bell_r])
    lo, hi = allp.min(axis=0) - hw1, allp.max(axis=0) + hw1
    f = 1.0 / max(hi[1] - lo[1], hi[0] - lo[0])
    off = np.array([-(lo[0] + hi[0]) / 2, -lo[1]])
    if rng.random() < 0.5:                             # mirror: bell left or right
        p, neck, mp_end = p * [-1, 1], neck * [-1, 1], mp_end * [-1, 1]
        off[0] = -off[0]
    fit = lambda q: (q + off) * f  # noqa: E731
    p, neck, mp_end, hw, hw0, bell_r = fit(p), fit(neck), fit(mp_end), hw * f, hw0 * f, bell_r * f
    # draw: neck behind the body, mouthpiece, body, bell opening, keys
    nw = hw0 * 0.7
    tube(c, neck, np.linspace(nw * 0.75, nw, len(neck))[::-1], brass)
    d = (mp_end - neck[-1]) / np.linalg.norm(mp_end - neck[-1])
    mpp = neck[-1] + np.outer(np.linspace(0, 1, 6), mp_end - neck[-1])
    tube(c, mpp, np.linspace(nw * 1.1, nw * 0.6, 6), st.colour(DARK if rng.random() < 0.7 else SILVER))
    if rng.random() < 0.6:                             # ligature
        box(c, *(neck[-1] + d * nw * 2), nw * 2.5, nw * 1.2, st.colour(SILVER), angle=np.arctan2(d[1], d[0]) + np.pi / 2)
    tube(c, p, hw, brass)
    box(c, *p[0], hw0 * 2.6, hw0 * 1.0, tone(st, brass, -0.2), angle=slant)   # neck receiver
    head = np.arctan2(*(p[-1] - p[-2])[::-1])
    bell_rim(c, *p[-1], head, bell_r, bell_r * rng.uniform(0.2, 0.35), tone(st, brass, 0.1),
             inside=tone(st, st.colour(ORANGE) if chunky and rng.random() < 0.6 else brass, -0.3))
    # key cups down the body (emoji-style: few and big; realistic: many and small)
    cup = st.colour(ORANGE + SILVER + PEARL if chunky else PEARL + BRASS + SILVER)
    n = normals(p)
    nkeys = int(rng.integers(3, 6) if chunky else rng.integers(5, 10))
    idx = np.linspace(int(nb * 0.25), nb - 2, nkeys).astype(int)
    side = float(rng.choice([-0.3, 0.0, 0.3]))
    for i in idx:
        q = p[i] + n[i] * hw[i] * side
        disc(c, *q, hw[i] * (0.6 if chunky else 0.45), cup, outline=tone(st, brass, -0.5) if st.outline is None else None)
    if not chunky and rng.random() < 0.7:              # key guard rod along the body edge
        e = p[idx[0]:nb] - n[idx[0]:nb] * hw[idx[0]:nb, None] * 0.8
        c.line([tuple(q) for q in e], tone(st, brass, -0.35), hw0 * 0.35)
    return rng.uniform(-20, 20)


# ---------------------------------------------------------------- trumpet

def draw_trumpet(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    brass = st.colour(BRASS if rng.random() < 0.85 else SILVER)
    darker = tone(st, brass, -0.25)
    chunky = rng.random() < 0.35                       # emoji-style: fat tubes, short body
    t = rng.uniform(0.025, 0.035) if chunky else rng.uniform(0.011, 0.018)   # pipe half width
    sgn = float(rng.choice([-1.0, 1.0]))
    # work in (u, v): u along the trumpet (mouthpiece 0 -> bell 1), v across, down positive;
    # drawn with u along y and turned by the returned tilt
    xoff = 0.06 * sgn
    P = lambda u, v: (-sgn * v + xoff, u)  # noqa: E731
    Pa = lambda a: np.c_[-sgn * a[:, 1] + xoff, a[:, 0]]  # noqa: E731
    h = rng.uniform(0.07, 0.12) * (1.3 if chunky else 1.0)          # loop depth below the pipe
    u1, u2 = rng.uniform(0.12, 0.22), rng.uniform(0.58, 0.68)       # back and front bends
    uv = rng.uniform(0.36, 0.46)                                      # middle valve
    dv = rng.uniform(0.042, 0.06) * (1.3 if chunky else 1.0)
    uf = rng.uniform(0.62, 0.72)                                      # bell flare start
    B = rng.uniform(0.09, 0.14) * (1.5 if chunky else 1.0)
    # main tuning slide loop under the pipe (its ends hide under the pipe)
    loop = Turtle(u2 - h / 2, 0.0, 0.0).fwd(h * 0.01, 1).turn(h / 2, np.pi, 16) \
        .fwd(u2 - u1 - h, 8).turn(h / 2, np.pi, 16).array()
    tube(c, Pa(loop), t * 0.95, brass)
    if rng.random() < 0.6:                             # third-valve slide hanging lower
        x0 = uv + dv - t * 1.2
        sl = Turtle(x0, h, np.pi / 2).fwd(h * rng.uniform(0.4, 0.7), 4).turn(t * 1.6, -np.pi, 10) \
            .fwd(h * 0.3, 3).array()
        tube(c, Pa(sl), t * 0.8, brass)
    # mouthpiece, lead pipe and bell in one tube
    u = np.r_[np.linspace(0, 0.08, 10), np.linspace(0.09, uf, 10), np.linspace(uf, 1, 30)[1:]]
    hw = np.where(u < 0.08, t * (0.65 + 0.4 * (1 - u / 0.08) ** 3), t)
    hw = hw + (B - t) * np.clip((u - uf) / (1 - uf), 0, 1) ** 3
    tube(c, Pa(np.c_[u, 0 * u]), hw, brass)
    disc(c, *P(0.0, 0.0), t * 1.5, tone(st, st.colour(SILVER) if rng.random() < 0.5 else brass, 0.1), ry=t * 0.45)
    for uu in rng.uniform(0.1, u1, int(rng.integers(0, 3))):   # ferrules on the lead pipe
        box(c, *P(uu, 0.0), t * 2.7, t * 0.9, darker)
    # valve casings with caps and finger buttons; ub draws a box given its u and v extents
    ub = lambda u, v, du, dv, col: box(c, *P(u, v), dv, du, col)  # noqa: E731
    cw = t * 2.1 + 0.006
    button = tone(st, brass, 0.3) if rng.random() < 0.7 else st.colour(PEARL)
    stem = rng.uniform(0.045, 0.07) * (0.8 if chunky else 1.0)
    top, bot = -t * 2.2, h + t * 2.0
    for i in (-1, 0, 1):
        x = uv + i * dv
        ub(x, top - stem / 2, cw * 0.25, stem, darker)
        disc(c, *P(x, top - stem), cw * 0.3, button, ry=cw * 0.75)
        ub(x, (top + bot) / 2, cw, bot - top, brass)
        for vv in (top, bot):
            ub(x, vv, cw * 1.25, t * 1.1, darker)
    # bell rim; its inside shows when the bell is turned toward the viewer
    head = np.pi / 2
    bell_rim(c, *P(1.0, 0.0), head, B, B * rng.uniform(0.15, 0.3), tone(st, brass, 0.15),
             inside=tone(st, brass, -0.3) if rng.random() < 0.5 else None)
    return sgn * (90 + (rng.uniform(15, 40) if rng.random() < 0.3 else rng.uniform(-8, 8)))


# ---------------------------------------------------------------- tuba

def draw_tuba(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    # drawn with the bell on the left, then mirrored half the time
    brass = st.colour(BRASS if rng.random() < 0.85 else SILVER)
    darker = tone(st, brass, -0.25)
    m = float(rng.choice([-1.0, 1.0]))
    X = lambda q: np.c_[m * np.asarray(q, float)[..., 0], np.asarray(q, float)[..., 1]]  # noqa: E731
    Xp = lambda x, y: (m * x, y)  # noqa: E731
    R = rng.uniform(0.2, 0.3)                          # bell radius
    hb = rng.uniform(0.065, 0.09)                      # body tube half width
    alpha = np.radians(rng.uniform(-8, 12))            # bell axis leaning outward
    Lf, Ls, rb = rng.uniform(0.3, 0.38), rng.uniform(0.16, 0.24), rng.uniform(0.12, 0.16)
    bx = -0.15
    # valve block height: the rising tube runs up into its bottom
    vy1 = 0.03 + Lf + Ls * 0.8
    vy0 = vy1 - rng.uniform(0.14, 0.2)
    # main tube: bell rim down the flare and body, round the bottom bow, up to the valves
    t = Turtle(bx, 0.03, np.pi / 2 - alpha).fwd(Lf, 16).fwd(Ls, 6)
    t.turn(rb, -np.pi + alpha, 22)
    t.fwd(max(t.pts[-1][1] - vy1, 0.02), 4)
    p = t.array()
    s = arclen(p)
    hw = hb + (R - hb) * np.clip(1 - s / Lf, 0, 1) ** rng.uniform(2.5, 3.5)
    hw = hw * np.interp(s, [0, s[-1] * 0.7, s[-1]], [1, 1, 0.55])
    # coiled tubing: one or two ovals wrapped behind the body
    cx, cy = bx + rb + 0.03, vy1 + rng.uniform(0.0, 0.08)
    for j in range(int(rng.integers(1, 3))):
        rx, ry = rng.uniform(0.24, 0.32) - 0.06 * j, rng.uniform(0.12, 0.17) - 0.04 * j
        a = np.linspace(0, 2 * np.pi, 60)
        tube(c, X(np.c_[cx + 0.04 * j + rx * np.cos(a), cy + 0.05 * j + ry * np.sin(a)]),
             hb * 0.42, tone(st, brass, -0.08 * j))
    # valve slides hanging below the valve block
    nv = int(rng.integers(3, 5))
    dv = rng.uniform(0.045, 0.06)
    vx0 = p[-1, 0] + hw[-1] + dv * 0.6
    for i in range(nv - 1):
        if rng.random() < 0.7:
            x = vx0 + i * dv + dv / 2
            sl = Turtle(x - dv * 0.35, vy1, np.pi / 2).fwd(rng.uniform(0.04, 0.12), 4) \
                .turn(dv * 0.35, -np.pi, 10).fwd(0.02, 2).array()
            tube(c, X(sl), hb * 0.22, darker)
    # lead pipe from the top of the block out to the mouthpiece
    lead = Turtle(vx0 + dv * (nv - 0.5), vy0, -np.pi / 2).fwd(rng.uniform(0.04, 0.1), 4) \
        .turn(0.06, np.pi / 2, 10).fwd(rng.uniform(0.02, 0.07), 3).array()
    tube(c, X(lead), hb * 0.28, brass)
    mp = np.r_[[lead[-1]], [lead[-1] + (0.07, 0)]]
    metal = st.colour(SILVER)
    tube(c, X(mp), [hb * 0.2, hb * 0.32], metal)
    disc(c, *Xp(*mp[1]), hb * 0.18, tone(st, metal, -0.2), ry=hb * 0.5)
    tube(c, X(p), hw, brass)
    # valve casings joined by a band, caps and buttons on top
    cw = rng.uniform(0.032, 0.042)
    stem = rng.uniform(0.04, 0.07)
    for i in range(nv):
        x = vx0 + i * dv
        box(c, *Xp(x, vy0 - stem / 2), cw * 0.25, stem, darker)
        disc(c, *Xp(x, vy0 - stem), cw * 0.7, tone(st, brass, 0.3), ry=cw * 0.28)
        box(c, *Xp(x, (vy0 + vy1) / 2), cw, vy1 - vy0, brass)
        for y in (vy0, vy1):
            box(c, *Xp(x, y), cw * 1.2, 0.018, darker)
    if rng.random() < 0.7:
        yb = (vy0 + vy1) / 2
        box(c, *Xp(vx0 + dv * (nv - 1) / 2 - hw[-1] / 2, yb), dv * (nv - 1) + hw[-1] + cw, 0.018, darker)
    # ferrules on the body and the bell rim
    for i in (24, len(p) - 3):
        ang = np.arctan2(*(p[i + 1] - p[i - 1])[::-1]) + np.pi / 2
        box(c, *Xp(*p[i]), hw[i] * 2.3, 0.02, darker, angle=m * ang if m > 0 else np.pi - ang)
    head = np.arctan2(*(p[0] - p[1])[::-1])
    bell_rim(c, *Xp(*p[0]), np.arctan2(np.sin(head), m * np.cos(head)), R, R * rng.uniform(0.15, 0.3),
             tone(st, brass, 0.15), inside=tone(st, brass, -0.35) if rng.random() < 0.6 else None)
    return rng.uniform(-15, 15)


# ---------------------------------------------------------------- xylophone

def draw_xylophone(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    # drawn lying along x (already horizontal), bars graded in length from one end
    kind = rng.choice(["rails", "panel", "box"], p=[0.4, 0.3, 0.3])
    n = int(rng.integers(4, 9) if kind == "box" else rng.integers(6, 13))
    W = rng.uniform(0.9, 1.05)
    pitch = W / n
    bw = pitch * rng.uniform(0.68, 0.85)
    Lmax = rng.uniform(0.42, 0.55)
    Lmin = Lmax * (rng.uniform(0.7, 0.9) if kind == "box" else rng.uniform(0.45, 0.72))
    align = rng.choice(["centre", "top", "bottom"])
    xs = -W / 2 + pitch * (np.arange(n) + 0.5)
    L = np.linspace(Lmax, Lmin, n)
    if rng.random() < 0.5:
        xs = xs[::-1]
    yc = 0.5 + {"centre": 0.0, "top": 1.0, "bottom": -1.0}[align] * (Lmax - L) / 2
    top, bot = yc - L / 2, yc + L / 2
    order = np.argsort(xs)
    xl, xr = xs[order[0]] - pitch / 2, xs[order[-1]] + pitch / 2
    edge = lambda a: np.interp([xl, xr], xs[order], a[order])  # noqa: E731
    frame = st.colour(WOODS + DARK[:1])
    if kind == "box":                                   # toy: a box the bars sit on
        m = 0.035
        t0, b0 = edge(top) - m, edge(bot) + m
        depth = rng.uniform(0.05, 0.1)
        poly(c, [(xl - m, b0[0]), (xr + m, b0[1]), (xr + m, b0[1] + depth), (xl - m, b0[0] + depth)],
             tone(st, frame, -0.25))
        poly(c, [(xl - m, t0[0]), (xr + m, t0[1]), (xr + m, b0[1]), (xl - m, b0[0])], frame)
        poly(c, [(xl, t0[0] + m * 0.6), (xr, t0[1] + m * 0.6), (xr, b0[1] - m * 0.6), (xl, b0[0] - m * 0.6)],
             tone(st, frame, -0.35), outline=False)
    elif kind == "panel":                              # a backing board shaped like the bars
        m = rng.uniform(0.03, 0.06)
        t0, b0 = edge(top) - m, edge(bot) + m
        poly(c, [(xl - m, t0[0]), (xr + m, t0[1]), (xr + m, b0[1]), (xl - m, b0[0])],
             st.colour([(0.55, 0.55, 0.58), (0.3, 0.3, 0.32)] + WOODS[:2]))
    rail_f = rng.uniform(0.15, 0.25)
    rails = [top + rail_f * L, bot - rail_f * L]
    if kind == "rails":                                # two rails under the bars
        for r in rails:
            e = edge(r)
            poly(c, [(xl - 0.04, e[0] - 0.015), (xr + 0.04, e[1] - 0.015), (xr + 0.04, e[1] + 0.015),
                     (xl - 0.04, e[0] + 0.015)], frame)
    # bars: rainbow, wood or metal
    scheme = rng.choice(["rainbow", "wood", "metal"], p=[0.6, 0.3, 0.1])
    start, step = int(rng.integers(len(RAINBOW))), int(rng.choice([-1, 1]))
    wood = WOODS[int(rng.integers(len(WOODS)))]
    rr = bw * rng.uniform(0.0, 0.3)
    for i in range(n):
        base = {"rainbow": RAINBOW[(start + step * i) % len(RAINBOW)], "wood": wood, "metal": SILVER[0]}[scheme]
        col = st.colour(base)
        pts = np.asarray(rounded_rect(bw, L[i], rr)) + (xs[i], yc[i])
        poly(c, pts, col)
        if st.shade > 0 and not st.line_art:
            box(c, xs[i] - bw * 0.22, yc[i], bw * 0.18, L[i] * 0.8, tone(st, col, st.shade), outline=False)
        for r in rails:                                  # nails where the bar rests
            disc(c, xs[i], r[i], bw * 0.11, st.colour(SILVER + PEARL), outline=False)
    # mallets: stick and ball head resting across the bars
    for _ in range(int(rng.choice([0, 1, 2], p=[0.3, 0.25, 0.45]))):
        hx, hy = rng.uniform(-0.25, 0.3), rng.uniform(0.35, 0.6)
        ang = np.radians(rng.uniform(55, 125))
        ln = rng.uniform(0.4, 0.55)
        ex, ey = hx + ln * np.cos(ang), min(hy + ln * np.sin(ang), 1.05)
        c.line([(hx, hy), (ex, ey)], tone(st, st.colour(WOODS + DARK), 0.0), rng.uniform(0.012, 0.02))
        disc(c, hx, hy, rng.uniform(0.028, 0.045), st.colour(BRIGHT + PEARL))
    return rng.uniform(-12, 12) if rng.random() < 0.7 else 0.0


DRAWERS: dict = {
    "clarinet": draw_clarinet,
    "flute": draw_flute,
    "saxophone": draw_saxophone,
    "trumpet": draw_trumpet,
    "tuba": draw_tuba,
    "xylophone": draw_xylophone,
}
