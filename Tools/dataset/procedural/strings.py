"""Procedural drawings: strings. Each drawer draws one instrument on a Canvas in the unit frame
and returns the tilt (degrees) at which the finished drawing is shown."""
from __future__ import annotations

import numpy as np

from .canvas import BRIGHT, DARK, SILVER, WOODS, Canvas, Style, outline_from_widths, smooth_profile

IVORY = [(0.96, 0.93, 0.85), (0.98, 0.97, 0.95), (0.93, 0.88, 0.75)]
STRING = (0.80, 0.80, 0.78)
HAIR = (0.93, 0.90, 0.82)
PASTEL = [(0.98, 0.85, 0.60), (0.90, 0.70, 0.55), (0.95, 0.93, 0.85), (0.75, 0.75, 0.78)]


def _ink(st: Style) -> tuple:
    """Colour of the parts that are black on real instruments (fingerboards, holes, keys):
    they stay black in line art too, as in the real colouring-book drawings."""
    return (0.06, 0.06, 0.06) if st.line_art else st.colour(DARK)


def _u(rng, lo, hi) -> float:
    return float(rng.uniform(lo, hi))


def _tilt(rng, upright_p: float, upright: float, lo: float, hi: float) -> float:
    """Tilt in degrees: near upright with probability upright_p, else lo..hi either way
    (mostly head to the upper right, i.e. clockwise = negative)."""
    if rng.random() < upright_p:
        return _u(rng, -upright, upright)
    return _u(rng, lo, hi) * (-1.0 if rng.random() < 0.75 else 1.0)


def _profile(y0, y1, t_ctrl, hw_ctrl, caps=(0.2, 0.25), n=90):
    """Outline of a waisted body between y0 and y1 from half widths at fractions t of its
    length; quarter-ellipse caps (lengths as fractions) make round upper and lower bouts."""
    ys, hw = smooth_profile(y0 + np.asarray(t_ctrl) * (y1 - y0), hw_ctrl, n)
    t = (ys - y0) / (y1 - y0)
    e = np.clip(np.maximum((caps[0] - t) / caps[0], (t - 1 + caps[1]) / caps[1]), 0, 1)
    hw = hw * np.sqrt(1 - e ** 2)
    return outline_from_widths(ys, hw), ys, hw


def _bow(c: Canvas, st: Style, rng, p0, p1) -> None:
    """Bow from frog p0 to tip p1: a dark stick with the pale hair ribbon beside it."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    n = np.array([-d[1], d[0]]) / np.linalg.norm(d)
    gap = _u(rng, 0.015, 0.025)
    stick = st.colour(WOODS[2:5] + DARK)
    c.line([tuple(p0 + 0.04 * d + n * gap), tuple(p1 - 0.01 * d + n * gap * 0.7)],
           HAIR, _u(rng, 0.006, 0.01))
    c.line([tuple(p0), tuple(p1)], stick, _u(rng, 0.008, 0.012))
    f = p0 + 0.06 * d  # frog: a small dark block joining stick and hair
    ang = np.arctan2(d[1], d[0])
    c.rect(*(f + n * gap * 0.5), 0.06, gap * 1.6, _ink(st), angle=ang)
    c.rect(*(p1 + n * gap * 0.4), 0.02, gap * 1.2, st.colour(IVORY), angle=ang)


def _f_hole(c: Canvas, xc, yc, h, side, colour, w) -> None:
    """An f-hole: an S-shaped stroke with round eyes at both ends."""
    s = np.linspace(0, 1, 16)
    xs = xc + side * (0.10 * h * np.sin(2 * np.pi * s) + 0.18 * h * (s - 0.5))
    ys = yc + (s - 0.5) * h
    c.line(list(zip(xs, ys)), colour, w)
    for k in (0, -1):
        c.ellipse(xs[k] + side * 0.03 * h * (1 if k else -1), ys[k], 0.05 * h, 0.05 * h,
                  colour, outline=False, n=12)


def _bowed(c: Canvas, rng, st: Style, cello: bool) -> None:
    """Violin-family instrument along y: scroll, pegbox, fingerboard, waisted body.
    The cello has a bigger share of body, thicker neck, and an endpin; the violin a
    smaller body relative to its neck and a chin rest."""
    if cello:
        yb0, yb1 = _u(rng, 0.27, 0.33), _u(rng, 0.86, 0.9)
    else:
        yb0, yb1 = _u(rng, 0.36, 0.42), _u(rng, 0.97, 1.0)
    L = yb1 - yb0
    lower = L * _u(rng, 0.29, 0.34)
    upper = lower * _u(rng, 0.78, 0.9)
    waist = lower * _u(rng, 0.52, 0.66)
    tw = _u(rng, 0.42, 0.5)  # where the waist sits
    if rng.random() < 0.7:  # C-bouts with pointed corners, the violin family's mark
        t = [0, .2, tw - .15, tw - .11, tw, tw + .11, tw + .15, .72, 1]
        hw = [upper, upper, .86 * upper, waist * 1.1, waist, waist * 1.1, .84 * lower, lower, lower]
    else:
        t = [0, .2, tw - .12, tw, tw + .12, .72, 1]
        hw = [upper, upper, .82 * upper, waist, .8 * lower, lower, lower]
    k = _u(rng, 0.75, 0.95)
    caps = (k * upper / L, k * lower / L)
    body, ys, hws = _profile(yb0, yb1, t, hw, caps)
    wood = st.colour(WOODS + [(0.75, 0.30, 0.10), (0.85, 0.45, 0.10)])
    dark = _ink(st)

    neck_w = L * (0.075 if cello else 0.065) * _u(rng, 0.9, 1.15)
    y_nut = _u(rng, 0.09, 0.12) if cello else _u(rng, 0.1, 0.13)
    if cello:  # endpin: a thin spike below the body, drawn first so the body hides its root
        c.line([(0, yb1 - 0.02), (0, _u(rng, 0.98, 1.05))], st.colour(SILVER), 0.008)
        c.rect(0, yb1 + 0.012, 0.035, 0.025, dark, radius=0.008)

    # pegbox with pegs, then the scroll on top of it
    sr = neck_w * _u(rng, 0.75, 1.0)  # scroll radius
    y_sc = sr * 1.05
    c.rect(0, (y_sc + y_nut) / 2, neck_w * 0.85, y_nut - y_sc, wood, radius=neck_w * 0.2)
    peg_c = dark if rng.random() < 0.7 else st.colour(WOODS)
    for k in range(4):
        y = y_sc + sr * 0.6 + (k + 0.5) * (y_nut - y_sc - sr * 0.6) / 4.5
        side = 1 if k % 2 else -1
        pl = neck_w * _u(rng, 1.3, 1.8)
        c.line([(0, y), (side * pl, y)], peg_c, neck_w * 0.22)
        c.ellipse(side * pl, y, neck_w * 0.28, neck_w * 0.34, peg_c, n=16)
    c.ellipse(0, y_sc, sr, sr * 1.05, wood, n=32)
    c.ellipse(0.15 * sr, y_sc + 0.1 * sr, sr * 0.55, sr * 0.55, wood, n=24)
    c.ellipse(0.25 * sr, y_sc + 0.15 * sr, sr * 0.2, sr * 0.2, dark, outline=False, n=12)

    # neck (seen under the fingerboard only at its heel) and the body
    c.rect(0, (y_nut + yb0) / 2 + 0.02, neck_w * 1.05, yb0 - y_nut + 0.04, wood)
    c.polygon(body, wood)
    if not st.line_art and rng.random() < 0.6:  # purfling: a dark line just inside the edge
        inner = outline_from_widths(ys, np.maximum(hws - 0.012, 0))
        c.line(inner + inner[:1], tuple(v * 0.6 for v in wood), 0.004)

    by = yb0 + L * _u(rng, 0.56, 0.62)  # bridge
    if rng.random() < 0.9:
        for side in (-1, 1):
            _f_hole(c, side * waist * 0.72, yb0 + L * (tw + 0.05), L * 0.26, side, dark, 0.008)

    # fingerboard: dark wedge from the nut well over the upper body
    fb_end = yb0 + L * _u(rng, 0.38, 0.45)
    c.polygon([(-neck_w * 0.42, y_nut), (neck_w * 0.42, y_nut), (neck_w * 0.62, fb_end),
               (-neck_w * 0.62, fb_end)], dark)

    # tailpiece and (violin) chin rest
    ty0, ty1 = yb0 + L * 0.7, yb1 - L * 0.03
    tp_w = lower * _u(rng, 0.2, 0.27)
    c.polygon([(-tp_w * 0.9, ty0), (tp_w * 0.9, ty0), (tp_w * 0.5, ty1), (-tp_w * 0.5, ty1)],
              dark if rng.random() < 0.8 else st.colour(WOODS))
    if not cello and rng.random() < 0.85:
        cs = 1 if rng.random() < 0.5 else -1
        c.ellipse(cs * lower * 0.5, yb1 - L * 0.06, lower * 0.3, L * 0.045, dark,
                  angle=cs * 0.3, n=28)

    # bridge, then strings from nut to tailpiece
    bw = lower * _u(rng, 0.42, 0.55)
    c.polygon([(-bw / 2, by + 0.012), (bw / 2, by + 0.012), (bw * 0.4, by - 0.01),
               (-bw * 0.4, by - 0.01)], st.colour(IVORY + [(0.85, 0.65, 0.4)]))
    if rng.random() < 0.9:
        sw = 0.0035 if st.line_art else 0.004
        for k in range(4):
            f = (k - 1.5) / 1.5
            c.line([(f * neck_w * 0.3, y_nut), (f * bw * 0.32, by), (f * tp_w * 0.6, ty0 + 0.005)],
                   STRING, sw)

    if rng.random() < 0.4:  # a bow lying across the instrument
        s = 1 if rng.random() < 0.5 else -1
        y0 = _u(rng, 0.85, 1.0)
        _bow(c, st, rng, (s * _u(rng, 0.3, 0.45), y0),
             (-s * _u(rng, 0.2, 0.45), y0 - _u(rng, 0.75, 0.9)))


def draw_violin(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    _bowed(c, rng, st, cello=False)
    return _tilt(rng, 0.2, 10, 25, 55) if rng.random() < 0.9 else -90.0


def draw_cello(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    _bowed(c, rng, st, cello=True)
    return _tilt(rng, 0.7, 15, 20, 40)


def draw_acoustic_guitar(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    classical = bool(rng.random() < 0.35)
    yb0, yb1 = _u(rng, 0.5, 0.56), 1.0
    Lb = yb1 - yb0
    lower = _u(rng, 0.17, 0.24)
    upper = lower * _u(rng, 0.7, 0.84)
    waist = lower * _u(rng, 0.55, 0.7)
    tw = _u(rng, 0.38, 0.46)
    t = [0, .2, tw, .6, .72, 1]
    hw = [upper, upper, waist, .88 * lower, lower, lower]
    body, ys, hws = _profile(yb0, yb1, t, hw, (0.8 * upper / Lb, 0.8 * lower / Lb))
    top = st.colour(WOODS + IVORY[2:] + ([] if classical else BRIGHT[:4] + [(0.9, 0.8, 0.2)]))
    wood = st.colour(WOODS)
    dark = _ink(st)
    fret_c = st.colour(SILVER)

    y_nut = _u(rng, 0.12, 0.16)
    nw = upper * _u(rng, 0.28, 0.36)  # neck width at the nut
    # head: slotted and square (classical) or solid and tapered (steel), 3 tuners a side
    hw_top = nw * _u(rng, 1.1, 1.45)
    c.polygon([(-hw_top / 2, 0.005), (hw_top / 2, 0.005), (nw * 0.55, y_nut), (-nw * 0.55, y_nut)],
              wood if rng.random() < 0.6 else dark)
    for k in range(3):
        y = 0.005 + (k + 0.6) * (y_nut - 0.01) / 3.4
        for side in (-1, 1):
            x = side * (hw_top / 2 - (hw_top - nw) / 2 * y / y_nut)
            c.line([(x, y), (x + side * nw * 0.5, y)], fret_c, 0.01)
            c.ellipse(x + side * nw * 0.6, y, nw * 0.16, nw * 0.22, st.colour(IVORY + SILVER), n=14)
    if classical:
        for side in (-1, 1):
            c.rect(side * hw_top * 0.17, y_nut * 0.5, hw_top * 0.14, y_nut * 0.72, dark,
                   outline=False, radius=0.01)

    # neck and fingerboard, then the body on top of the neck root
    c.polygon([(-nw / 2, y_nut), (nw / 2, y_nut), (nw * 0.62, yb0 + 0.03), (-nw * 0.62, yb0 + 0.03)],
              wood)
    c.polygon(body, top)
    if rng.random() < 0.6:  # binding: a contrasting band inside the edge
        inner = outline_from_widths(ys, np.maximum(hws - 0.01, 0))
        c.line(inner + inner[:1], st.colour(IVORY + DARK), 0.006)

    hole_y = yb0 + Lb * _u(rng, 0.33, 0.38)
    R = waist * _u(rng, 0.45, 0.6)
    if not classical and rng.random() < 0.6:  # pickguard beside the sound hole
        c.ellipse(R * 0.65, hole_y + R * 0.55, R * 0.85, R * 1.05, st.colour(DARK + [(0.35, 0.15, 0.05)]),
                  angle=-0.4, n=28)
    c.ellipse(0, hole_y, R * 1.22, R * 1.22, st.colour(IVORY + DARK + WOODS), n=40)  # rosette
    c.ellipse(0, hole_y, R, R, dark, n=40)

    bridge_y = yb0 + Lb * _u(rng, 0.7, 0.76)
    scale = bridge_y - y_nut
    fb_end = min(hole_y - R * 1.25, yb0 + Lb * 0.2)
    c.polygon([(-nw * 0.46, y_nut), (nw * 0.46, y_nut), (nw * 0.6, fb_end), (-nw * 0.6, fb_end)],
              dark if rng.random() < 0.8 else wood)
    c.rect(0, y_nut, nw * 0.95, 0.008, st.colour(IVORY), outline=False)
    for k in range(1, 22):  # frets at their true spacing
        y = y_nut + scale * (1 - 2 ** (-k / 12))
        if y > fb_end - 0.004:
            break
        x = nw * (0.46 + 0.14 * (y - y_nut) / (fb_end - y_nut))
        c.line([(-x, y), (x, y)], fret_c, 0.004)
        if not classical and k in (3, 5, 7, 9, 12):
            c.ellipse(0, y - scale * 0.025 * 2 ** (-k / 12), nw * 0.08, nw * 0.08, IVORY[0],
                      outline=False, n=10)

    bw = lower * _u(rng, 0.55, 0.75)
    c.rect(0, bridge_y + 0.012, bw, 0.04 if classical else 0.035, wood if classical else dark,
           radius=0.008 if classical else 0.015)
    c.line([(-bw * 0.35, bridge_y), (bw * 0.35, bridge_y)], st.colour(IVORY), 0.005)
    for k in range(6):  # strings from nut to saddle
        f = (k - 2.5) / 2.5
        c.line([(f * nw * 0.38, y_nut), (f * bw * 0.3, bridge_y + (0.012 if classical else 0.0))],
               STRING if k < 3 or not classical else (0.95, 0.95, 0.9), 0.0035)
        if not classical:
            c.ellipse(f * bw * 0.3, bridge_y + 0.015, 0.006, 0.006, st.colour(IVORY), outline=False, n=8)
    return _tilt(rng, 0.4, 8, 20, 60)


def draw_erhu(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    wood = st.colour(WOODS[2:5] + DARK)
    nw = _u(rng, 0.018, 0.028)
    y_top, y_foot = _u(rng, 0.02, 0.05), _u(rng, 0.95, 1.0)
    dw, dh = _u(rng, 0.13, 0.22), _u(rng, 0.1, 0.15)  # drum width and depth
    dy = y_foot - 0.03 - dh / 2
    dx = _u(rng, 0.0, 0.03) * (1 if rng.random() < 0.5 else -1)

    # curved head: the neck bends back into a hook at the top
    hook = 1 if rng.random() < 0.5 else -1
    r = _u(rng, 0.025, 0.045)
    a = np.linspace(0, np.pi * _u(rng, 0.7, 1.0), 10)
    c.line([(0, 0.13)] + [(hook * r * (1 - np.cos(t)), y_top + r * (1 - np.sin(t))) for t in a],
           wood, nw * 0.9)
    c.rect(0, (0.1 + y_foot) / 2, nw, y_foot - 0.1, wood, radius=nw * 0.3)
    pegs = st.colour(WOODS + DARK)
    ps = 1 if rng.random() < 0.5 else -1
    for k, y in enumerate((_u(rng, 0.1, 0.14), _u(rng, 0.19, 0.24))):
        pl = _u(rng, 0.09, 0.14)
        side = ps if rng.random() < 0.6 else (ps if k == 0 else -ps)
        c.polygon([(0, y - nw * 0.3), (side * pl, y - nw * 0.7), (side * pl, y + nw * 0.7),
                   (0, y + nw * 0.3)], pegs)
    # the string loop (qianjin) that ties the strings to the neck
    qy = _u(rng, 0.3, 0.4)
    c.rect(nw * 0.8, qy, nw * 1.2, 0.012, st.colour(BRIGHT + IVORY), outline=False)

    # the drum: a short cylinder seen from the side, or its hexagonal/round face
    body = st.colour(WOODS + DARK)
    face = st.colour(IVORY + [(0.75, 0.65, 0.45)])
    if rng.random() < 0.55:
        c.rect(dx, dy, dw, dh, body, radius=0.01)
        for k in (-1, 1):
            c.rect(dx + k * dw * 0.3, dy, 0.01, dh * 0.96, tuple(v * 0.75 for v in body), outline=False)
        c.ellipse(dx + dw / 2, dy, dw * 0.1, dh / 2, face, n=24)
    else:
        n = 6 if rng.random() < 0.6 else 8 if rng.random() < 0.5 else 40
        rr = dw * 0.55
        ang = np.arange(n) * 2 * np.pi / n + (np.pi / n if n == 6 else 0)
        c.polygon(list(zip(dx + rr * np.cos(ang), dy + rr * np.sin(ang))), body)
        c.ellipse(dx, dy, rr * 0.75, rr * 0.75, face, n=32)
    c.rect(0, y_foot - 0.01, nw * 1.6, 0.03, wood, radius=0.005)  # foot peg
    by = dy + _u(rng, -0.02, 0.02)
    c.rect(nw * 1.1, by, nw * 0.9, 0.02, st.colour(IVORY), outline=False)  # bridge

    for k in (0.7, 1.3):  # two strings from the pegs down to the bridge
        c.line([(nw * k, 0.11), (nw * k, by)], STRING, 0.004)
    if rng.random() < 0.85:  # bow: its hair passes between the strings near the drum
        y0 = dy - _u(rng, 0.05, 0.2)
        L = _u(rng, 0.7, 0.95)
        ang = _u(rng, -0.5, 0.1)
        p0 = np.array([-_u(rng, 0.35, 0.5) * L * 1.1, y0])
        p1 = p0 + L * np.array([np.cos(ang), np.sin(ang)])
        _bow(c, st, rng, tuple(p0), tuple(p1))
    return _tilt(rng, 0.5, 15, 30, 70)


def draw_accordion(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    H = _u(rng, 0.55, 0.75)  # box height; widths are in units of it
    kw, bw = H * _u(rng, 0.38, 0.5), H * _u(rng, 0.3, 0.42)  # treble (keys) and bass box widths
    folds = int(rng.integers(7, 16))
    fan = rng.random() < 0.4
    # box-local coords (u across the box from the bellows outward, v up from the bottom) to
    # the drawing's frame; fanned bellows swing both boxes about a pivot below the middle
    if fan:
        span = _u(rng, 0.3, 0.6)  # half-angle of the fan
        r0 = H * _u(rng, 0.3, 0.8)

        def pt(theta, r, s):  # polar around the pivot; s offsets at right angles
            d = np.array([np.sin(theta), -np.cos(theta)])
            return tuple(r * d + s * np.array([np.cos(theta), np.sin(theta)]))

        left = lambda u, v: pt(-span, r0 + v, -u)
        right = lambda u, v: pt(span, r0 + v, u)
    else:
        blw = H * _u(rng, 0.4, 0.9)
        left = lambda u, v: (-blw / 2 - u, -v)
        right = lambda u, v: (blw / 2 + u, -v)
        span = r0 = pt = None
    # fit everything into the unit frame: x about +-0.55, y 0.05..0.95
    corners = [f(u, v) for f, w in ((left, kw), (right, bw)) for u in (0, w) for v in (0, H)]
    if fan:
        corners += [pt(a, r0 + H, 0) for a in np.linspace(-span, span, 7)]
    xy = np.array(corners)
    lo, hi = xy.min(0), xy.max(0)
    k = min(1.1 / (hi[0] - lo[0]), 0.9 / (hi[1] - lo[1]))
    off = np.array([0.0, 0.5]) - k * (lo + hi) / 2
    T = lambda p: tuple(off + k * np.asarray(p))

    def quad(f, u0, u1, v0, v1, fill, outline=None):
        c.polygon([T(f(u0, v0)), T(f(u1, v0)), T(f(u1, v1)), T(f(u0, v1))], fill, outline)

    # bellows: alternating light/dark pleats
    light, darkp = st.colour(PASTEL + IVORY + BRIGHT[:2]), _ink(st) if rng.random() < 0.5 else st.colour(DARK + BRIGHT)
    if st.line_art:
        darkp = (0.06, 0.06, 0.06) if rng.random() < 0.5 else (1.0, 1.0, 1.0)
    n = 2 * folds
    inset = H * _u(rng, 0.04, 0.12)  # bellows a little lower than the boxes: not a plain box
    for i in range(n):
        col = light if i % 2 == 0 else darkp
        if fan:
            a0, a1 = -span + 2 * span * i / n, -span + 2 * span * (i + 1) / n
            c.polygon([T(pt(a0, r0, 0)), T(pt(a1, r0, 0)), T(pt(a1, r0 + H, 0)),
                       T(pt(a0, r0 + H, 0))], col, outline=None if i % 2 else False)
        else:
            x0, x1 = -blw / 2 + blw * i / n, -blw / 2 + blw * (i + 1) / n
            c.polygon([T((x0, -inset)), T((x1, -inset)), T((x1, -H + inset)), T((x0, -H + inset))],
                      col, outline=None if i % 2 else False)

    # treble box with a piano keyboard along its outer edge; bass box with buttons
    case = st.colour(BRIGHT[:4] + [(0.9, 0.3, 0.1), (0.2, 0.2, 0.22)] + WOODS[:2])
    quad(left, 0, kw, 0, H, case)
    quad(right, 0, bw, 0, H, case)
    grille = st.colour(SILVER + DARK + IVORY)
    quad(left, kw * 0.05, kw * 0.3, H * 0.08, H * 0.92, grille)  # grille strip near the bellows
    for j in range(1, 8):
        v = H * (0.08 + 0.84 * j / 8)
        c.line([T(left(kw * 0.07, v)), T(left(kw * 0.28, v))], tuple(v_ * 0.6 for v_ in grille), 0.004)
    nk = int(rng.integers(9, 16))
    k0, k1, v0, v1 = kw * 0.42, kw * 0.92, H * 0.05, H * 0.95
    if rng.random() < 0.5:  # black keys toward the outer edge instead of the bellows
        k0, k1 = k1, k0
    white = st.colour(IVORY) if not st.line_art else (1, 1, 1)
    for i in range(nk):
        quad(left, k0, k1, v0 + (v1 - v0) * i / nk, v0 + (v1 - v0) * (i + 1) / nk, white)
    black = _ink(st) if not st.line_art else (0.06, 0.06, 0.06)
    for i in range(1, nk):
        if i % 7 not in (0, 3):  # black keys sit in groups of 2 and 3 between the white keys
            v = v0 + (v1 - v0) * i / nk
            quad(left, k0, k0 + (k1 - k0) * 0.55, v - (v1 - v0) / nk * 0.3, v + (v1 - v0) / nk * 0.3,
                 black, outline=False)
    btn = st.colour(IVORY + SILVER + DARK)
    cols, rows = int(rng.integers(2, 5)), int(rng.integers(6, 11))
    br = min(bw * 0.6 / cols, H * 0.8 / rows) * 0.35
    for i in range(cols):
        for j in range(rows):
            x, y = T(right(bw * (0.3 + 0.55 * i / max(cols - 1, 1)), H * (0.12 + 0.76 * j / (rows - 1))))
            c.ellipse(x, y + (i % 2) * br * 0.8 * k, br * k, br * k, btn, n=12)
    if rng.random() < 0.6:  # straps / trim: bands at the box tops
        trim = st.colour(SILVER + IVORY)
        quad(left, 0, kw, H * 0.97, H, trim, outline=False)
        quad(right, 0, bw, H * 0.97, H, trim, outline=False)
    return _u(rng, 3, 12) * (1 if rng.random() < 0.5 else -1)


DRAWERS = {
    "accordion": draw_accordion,
    "acoustic_guitar": draw_acoustic_guitar,
    "cello": draw_cello,
    "erhu": draw_erhu,
    "violin": draw_violin,
}
