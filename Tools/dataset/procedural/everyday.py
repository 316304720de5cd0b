"""Procedural drawings of everyday things that make no sound: lamps, cups, chairs, books,
plants, balls and clocks. The builder places them in training scenes as silent distractors
(`dataset.build --distractors P`), with no class, so that the network does not learn that every
drawn object on a picture is an instrument. Each drawer draws on a Canvas in the unit frame and
returns the tilt (degrees) at which the finished drawing is shown, like the instruments'."""
from __future__ import annotations

import numpy as np

from .canvas import BRASS, BRIGHT, DARK, SILVER, WOODS, Canvas, Style, outline_from_widths, smooth_profile

PASTEL = [(0.98, 0.92, 0.75), (0.95, 0.80, 0.70), (0.80, 0.90, 0.95), (0.90, 0.95, 0.80),
          (0.97, 0.97, 0.93)]
CERAMIC = [(0.97, 0.97, 0.95), (0.85, 0.20, 0.20), (0.20, 0.45, 0.80), (0.95, 0.80, 0.20),
           (0.30, 0.65, 0.45), (0.15, 0.15, 0.18)]
LEAF = [(0.20, 0.55, 0.20), (0.30, 0.65, 0.25), (0.15, 0.45, 0.25), (0.45, 0.70, 0.30)]
TERRACOTTA = [(0.78, 0.40, 0.22), (0.70, 0.35, 0.20), (0.85, 0.55, 0.35)]
PAPER = (0.97, 0.95, 0.88)


def _u(rng, lo, hi) -> float:
    return float(rng.uniform(lo, hi))


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _ink(st: Style) -> tuple:
    return (0.06, 0.06, 0.06) if st.line_art else st.colour(DARK)


def _small_tilt(rng, amount: float = 12.0) -> float:
    return _u(rng, -amount, amount)


# ---------------------------------------------------------------- lamp

def draw_lamp(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    kind = _pick(rng, ["table", "table", "floor", "desk"])
    metal = st.colour(DARK + SILVER + BRASS + WOODS[:2])
    shade = st.colour(PASTEL + BRIGHT[:4] + [(0.9, 0.85, 0.6)])
    if kind == "desk":  # weighted base, two arm segments, a cone-shaped head
        s = 1.0 if rng.random() < 0.5 else -1.0
        c.ellipse(0, 0.95, _u(rng, 0.18, 0.26), 0.05, metal)
        p0 = np.array([0.0, 0.93])
        p1 = p0 + [s * _u(rng, 0.05, 0.25), -_u(rng, 0.4, 0.5)]
        p2 = p1 + [-s * _u(rng, 0.2, 0.35), _u(rng, -0.05, 0.1)]
        w = _u(rng, 0.018, 0.03)
        c.line([tuple(p0), tuple(p1), tuple(p2)], metal, w)
        c.ellipse(*p1, w * 1.2, w * 1.2, metal, n=16)
        ang = np.arctan2(*(p2 - p1)[::-1]) + _u(rng, 0.6, 1.2) * -s
        d = np.array([np.cos(ang), np.sin(ang)])
        n = np.array([-d[1], d[0]])
        L, r0, r1 = _u(rng, 0.15, 0.22), _u(rng, 0.03, 0.05), _u(rng, 0.09, 0.14)
        c.polygon([tuple(p2 + n * r0), tuple(p2 - n * r0), tuple(p2 + d * L - n * r1),
                   tuple(p2 + d * L + n * r1)], shade)
        c.ellipse(*(p2 + d * L), r1 * 0.8, r1 * 0.25, (1.0, 0.95, 0.7), angle=ang + np.pi / 2, n=24)
        return _small_tilt(rng, 6)
    # table and floor lamps: shade on top of a stem or a vase-like body, on a base
    sh = _u(rng, 0.2, 0.32) if kind == "table" else _u(rng, 0.14, 0.22)
    top, bot = _u(rng, 0.06, 0.16), _u(rng, 0.16, 0.3)
    if kind == "floor":
        top, bot = top * 0.8, bot * 0.8
    y_base = _u(rng, 0.9, 0.97)
    if kind == "table" and rng.random() < 0.6:  # a round vase-like body
        ys, hw = smooth_profile([sh, sh + 0.1, 0.55 + _u(rng, -0.05, 0.1), y_base],
                                [0.03, _u(rng, 0.06, 0.1), _u(rng, 0.12, 0.2), _u(rng, 0.05, 0.09)], 50)
        c.polygon(outline_from_widths(ys, hw), st.colour(CERAMIC))
    else:
        c.rect(0, (sh + y_base) / 2, _u(rng, 0.02, 0.035), y_base - sh, metal)
    c.ellipse(0, y_base, _u(rng, 0.1, 0.2), _u(rng, 0.025, 0.045), metal)
    c.polygon([(-top, 0.0), (top, 0.0), (bot, sh), (-bot, sh)], shade)
    if rng.random() < 0.5:  # trim bands on the shade
        trim = st.colour(BRIGHT + DARK)
        for y in (0.01, sh - 0.012):
            w = top + (bot - top) * y / sh
            c.rect(0, y, 2 * w, 0.02, trim, outline=False)
    return _small_tilt(rng, 6)


# ---------------------------------------------------------------- cup

def draw_cup(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    body = st.colour(CERAMIC + PASTEL)
    inside = tuple(v * 0.55 for v in body) if not st.line_art else (0.75, 0.75, 0.75)
    if rng.random() < 0.6:  # mug: straight sides, a ring handle
        w, y0, y1 = _u(rng, 0.28, 0.4), _u(rng, 0.15, 0.3), 0.95
        s = 1.0 if rng.random() < 0.5 else -1.0
        hy, hr = (y0 + y1) / 2, (y1 - y0) * _u(rng, 0.25, 0.35)
        c.line([(s * w * 0.9 + s * hr * np.cos(t), hy + hr * 1.15 * np.sin(t))
                for t in np.linspace(-np.pi / 2, np.pi / 2, 16)], body, _u(rng, 0.05, 0.08))
        c.rect(0, (y0 + y1) / 2, 2 * w, y1 - y0, body, radius=_u(rng, 0.01, 0.06))
        c.ellipse(0, y0, w, w * 0.22, inside)
        if rng.random() < 0.5:  # a band or a few dots of decoration
            deco = st.colour(BRIGHT)
            if rng.random() < 0.5:
                c.rect(0, y0 + (y1 - y0) * _u(rng, 0.3, 0.6), 2 * w, (y1 - y0) * 0.15, deco, outline=False)
            else:
                for _ in range(int(rng.integers(3, 7))):
                    c.ellipse(_u(rng, -0.7, 0.7) * w, _u(rng, y0 + 0.1, y1 - 0.08), 0.035, 0.035, deco,
                              outline=False, n=14)
    else:  # tea cup on a saucer
        w, y0, y1 = _u(rng, 0.3, 0.42), _u(rng, 0.35, 0.5), 0.85
        c.ellipse(0, 0.9, w * _u(rng, 1.4, 1.7), 0.07, body)
        ys, hw = smooth_profile([y0, (y0 + y1) / 2, y1], [w, w * 0.85, w * 0.45], 40)
        s = 1.0 if rng.random() < 0.5 else -1.0
        c.line([(s * w * 0.85 + s * 0.08 * np.cos(t), y0 + 0.12 + 0.08 * np.sin(t))
                for t in np.linspace(-np.pi / 2, np.pi / 2, 12)], body, 0.035)
        c.polygon(outline_from_widths(ys, hw), body)
        c.ellipse(0, y0, w, w * 0.18, inside)
    return _small_tilt(rng, 8)


# ---------------------------------------------------------------- chair

def draw_chair(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    wood = st.colour(WOODS + BRIGHT[:3] + [(0.95, 0.95, 0.92)])
    w = _u(rng, 0.3, 0.45)                    # half width of the seat
    seat_y, seat_d = _u(rng, 0.45, 0.55), _u(rng, 0.05, 0.09)
    leg = _u(rng, 0.025, 0.045)
    stool = rng.random() < 0.2
    inset = _u(rng, 0.0, 0.06)
    for x in (-w + inset + leg, w - inset - leg):  # back legs (shorter, seen behind)
        c.rect(x * 0.85, (seat_y + 0.9) / 2, leg * 1.6, 0.9 - seat_y, tuple(v * 0.8 for v in wood))
    if not stool:  # backrest: uprights with rails or slats between them
        top = _u(rng, 0.0, 0.1)
        for x in (-w + leg, w - leg):
            c.rect(x, (top + seat_y) / 2, leg * 2, seat_y - top, wood)
        if rng.random() < 0.5:
            for k in range(int(rng.integers(2, 5))):
                y = top + 0.04 + k * _u(rng, 0.07, 0.1)
                if y < seat_y - 0.06:
                    c.rect(0, y, 2 * w - 2 * leg, 0.045, wood)
        else:
            c.rect(0, top + 0.04, 2 * w, 0.08, wood, radius=0.02)
            n = int(rng.integers(2, 6))
            for k in range(n):
                x = (-1 + 2 * (k + 1) / (n + 1)) * (w - leg)
                c.rect(x, (top + seat_y) / 2 + 0.02, 0.035, seat_y - top - 0.08, wood)
    # seat seen a little from above, then the front legs
    c.polygon([(-w * 0.92, seat_y - seat_d), (w * 0.92, seat_y - seat_d), (w, seat_y), (-w, seat_y)],
              wood)
    c.rect(0, seat_y + 0.02, 2 * w, 0.04, tuple(v * 0.85 for v in wood))
    for x in (-w + leg, w - leg):
        c.rect(x, (seat_y + 1.0) / 2, leg * 2, 1.0 - seat_y, wood)
    if rng.random() < 0.5:  # a stretcher between the front legs
        c.rect(0, _u(rng, 0.75, 0.85), 2 * w - 2 * leg, 0.025, wood)
    if not st.line_art and rng.random() < 0.4:  # a cushion
        c.rect(0, seat_y - seat_d * 0.6, 1.7 * w, seat_d * 1.1, st.colour(BRIGHT + PASTEL), radius=0.03)
    return _small_tilt(rng, 5)


# ---------------------------------------------------------------- book

def _one_book(c: Canvas, rng, st: Style, cx, cy, w, h, angle=0.0) -> None:
    """A closed book seen from the front: cover, a spine band, the page edge below."""
    cover = st.colour(BRIGHT + WOODS[:2] + CERAMIC[1:5])
    ca, sa = np.cos(angle), np.sin(angle)
    rot = lambda x, y: (cx + ca * x - sa * y, cy + sa * x + ca * y)  # noqa: E731
    pages = [rot(-w / 2 + 0.01, h / 2 - 0.02), rot(w / 2 + 0.015, h / 2 - 0.02),
             rot(w / 2 + 0.015, h / 2 + 0.03), rot(-w / 2 + 0.01, h / 2 + 0.03)]
    c.polygon(pages, PAPER if not st.line_art else (1, 1, 1))
    c.rect(cx, cy, w, h, cover, angle=angle)
    band = tuple(v * 0.65 for v in cover)
    c.rect(*rot(-w / 2 + w * 0.07, 0), w * 0.14, h, band, angle=angle, outline=False)
    if rng.random() < 0.6:  # title label
        c.rect(*rot(w * 0.07, -h * 0.15), w * 0.5, h * 0.14, st.colour(PASTEL + [(0.9, 0.8, 0.3)]),
               angle=angle)


def draw_book(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    kind = _pick(rng, ["closed", "stack", "open"])
    if kind == "closed":
        w, h = _u(rng, 0.5, 0.75), _u(rng, 0.7, 0.95)
        _one_book(c, rng, st, 0.0, 0.5, w, h)
        return _small_tilt(rng, 25)
    if kind == "stack":  # books lying on each other, spines toward the viewer
        y = 1.0
        for _ in range(int(rng.integers(2, 6))):
            h = _u(rng, 0.08, 0.16)
            w = _u(rng, 0.6, 1.0)
            x = _u(rng, -0.06, 0.06)
            col = st.colour(BRIGHT + WOODS[:3] + CERAMIC[2:5])
            c.rect(x, y - h / 2, w, h, col, radius=0.01)
            for f in (0.15, 0.85):
                c.rect(x - w / 2 + w * f, y - h / 2, 0.02, h, tuple(v * 0.6 for v in col), outline=False)
            y -= h
        return _small_tilt(rng, 4)
    # open book: two pages bent like a shallow V with lines of text
    w, h = _u(rng, 0.4, 0.55), _u(rng, 0.5, 0.7)
    sag = _u(rng, 0.03, 0.08)
    cover = st.colour(BRIGHT + WOODS[:2])
    c.polygon([(-w - 0.03, 0.2 - 0.02), (0, 0.2 + sag), (w + 0.03, 0.2 - 0.02), (w + 0.03, 0.2 + h + 0.03),
               (0, 0.2 + h + sag + 0.04), (-w - 0.03, 0.2 + h + 0.03)], cover)
    text = (0.35, 0.35, 0.38)
    for s in (-1, 1):
        c.polygon([(0, 0.2 + sag), (s * w, 0.2), (s * w, 0.2 + h), (0, 0.2 + h + sag)],
                  PAPER if not st.line_art else (1, 1, 1))
        for k in range(int(rng.integers(5, 10))):
            y = 0.25 + k * (h - 0.1) / 9
            x0, x1 = s * w * 0.12, s * w * _u(rng, 0.6, 0.9)
            c.line([(x0, y + sag * (1 - abs(x0) / w)), (x1, y + sag * (1 - abs(x1) / w))], text, 0.008)
    return _small_tilt(rng, 15)


# ---------------------------------------------------------------- plant

def draw_plant(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    pot = st.colour(TERRACOTTA + CERAMIC)
    green = st.colour(LEAF)
    y_pot = _u(rng, 0.6, 0.72)
    top, bot = _u(rng, 0.2, 0.3), _u(rng, 0.13, 0.2)
    kind = _pick(rng, ["leaves", "cactus", "tree"])
    if kind == "leaves":  # long leaves fanning out of the pot
        for _ in range(int(rng.integers(5, 11))):
            a = _u(rng, -1.1, 1.1)
            L = _u(rng, 0.3, 0.6) * (1 - 0.3 * abs(a))
            cx, cy = np.sin(a) * L / 2, y_pot - np.cos(a) * L / 2
            c.ellipse(cx, cy, _u(rng, 0.03, 0.07), L / 2, st.colour(LEAF), angle=a, n=24)
    elif kind == "cactus":
        w = _u(rng, 0.07, 0.12)
        h = _u(rng, 0.4, 0.6)
        c.rect(0, y_pot - h / 2, 2 * w, h, green, radius=w)
        for s in (-1, 1):
            if rng.random() < 0.75:
                ay = y_pot - h * _u(rng, 0.35, 0.6)
                ah = _u(rng, 0.1, 0.22)
                c.rect(s * w * 2.2, ay - ah / 2, w * 1.1, ah, green, radius=w * 0.55)
                c.rect(s * w * 1.5, ay, w * 1.8, w * 0.9, green)
        if not st.line_art and rng.random() < 0.5:
            c.ellipse(0, y_pot - h, w * 0.6, w * 0.5, st.colour(BRIGHT[:1] + [(0.95, 0.5, 0.7)]), n=16)
    else:  # a small tree: trunk and a round crown of blobs
        trunk = st.colour(WOODS)
        c.rect(0, y_pot - 0.15, 0.04, 0.3, trunk)
        cy, r = y_pot - 0.3 - _u(rng, 0.05, 0.15), _u(rng, 0.18, 0.28)
        for _ in range(int(rng.integers(4, 8))):
            a, d = _u(rng, 0, 2 * np.pi), _u(rng, 0.2, 0.6) * r
            c.ellipse(np.cos(a) * d, cy + np.sin(a) * d * 0.8, r * _u(rng, 0.45, 0.7), r * _u(rng, 0.4, 0.6),
                      st.colour(LEAF), n=24)
    c.polygon([(-top, y_pot), (top, y_pot), (bot, 1.0), (-bot, 1.0)], pot)
    c.rect(0, y_pot + 0.02, 2 * top + 0.03, 0.06, tuple(v * 0.85 for v in pot))
    return _small_tilt(rng, 5)


# ---------------------------------------------------------------- ball

def draw_ball(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    r, cy = 0.45, 0.5
    kind = _pick(rng, ["beach", "basket", "soccer", "tennis", "plain"])
    ink = _ink(st)
    if kind == "beach":  # coloured sectors meeting at a white cap
        cols = [st.colour(BRIGHT[k % len(BRIGHT)]) for k in rng.permutation(len(BRIGHT))[:3]]
        n = int(rng.choice([6, 8]))
        c.ellipse(0, cy, r, r, (1.0, 1.0, 1.0))
        a0 = _u(rng, 0, np.pi)
        for k in range(0, n, 2):
            t = a0 + np.linspace(k, k + 1, 8) * 2 * np.pi / n
            c.polygon([(0, cy)] + [(r * np.cos(a), cy + r * np.sin(a)) for a in t], cols[(k // 2) % 3])
        c.ellipse(0, cy, r * 0.15, r * 0.15, (1.0, 1.0, 1.0), n=16)
    elif kind == "basket":
        c.ellipse(0, cy, r, r, st.colour([(0.9, 0.45, 0.1), (0.8, 0.35, 0.1)]))
        c.line([(-r, cy), (r, cy)], ink, 0.012)
        c.line([(0, cy - r), (0, cy + r)], ink, 0.012)
        for s in (-1, 1):
            t = np.linspace(-1.1, 1.1, 16)
            c.line([(s * (r * 0.35 + 0.25 * r * v * v), cy + r * 0.95 * np.sin(v)) for v in t], ink, 0.012)
    elif kind == "soccer":
        c.ellipse(0, cy, r, r, (1.0, 1.0, 1.0))
        pent = lambda x, y, s, a: [(x + s * np.cos(a + k * 2 * np.pi / 5), y + s * np.sin(a + k * 2 * np.pi / 5))  # noqa: E731
                                   for k in range(5)]
        a0 = _u(rng, 0, 2 * np.pi)
        c.polygon(pent(0, cy, r * 0.25, a0), ink)
        for k in range(5):
            a = a0 + np.pi / 5 + k * 2 * np.pi / 5
            c.polygon(pent(np.cos(a) * r * 0.78, cy + np.sin(a) * r * 0.78, r * 0.17, a), ink)
            b = a0 + k * 2 * np.pi / 5
            c.line([(np.cos(b) * r * 0.25, cy + np.sin(b) * r * 0.25),
                    (np.cos(b) * r * 0.62, cy + np.sin(b) * r * 0.62)], ink, 0.01)
    elif kind == "tennis":
        c.ellipse(0, cy, r, r, st.colour([(0.8, 0.9, 0.2), (0.85, 0.95, 0.3)]))
        t = np.linspace(-np.pi / 2, np.pi / 2, 20)
        for s in (-1, 1):
            c.line([(s * (r * 0.55 - r * 0.45 * np.cos(v)), cy + r * 0.9 * np.sin(v)) for v in t],
                   (1.0, 1.0, 1.0) if not st.line_art else ink, 0.02)
    else:
        c.ellipse(0, cy, r, r, st.colour(BRIGHT + CERAMIC))
    return _u(rng, -180, 180)


# ---------------------------------------------------------------- clock

def draw_clock(c: Canvas, rng: np.random.Generator, st: Style) -> float:
    alarm = rng.random() < 0.45
    r, cy = (0.32, 0.58) if alarm else (0.45, 0.5)
    case = st.colour(BRIGHT + SILVER + WOODS[:2] + DARK)
    ink = _ink(st)
    if alarm:  # two bells, a handle and feet
        for s in (-1, 1):
            c.ellipse(s * r * 0.8, cy - r * 0.95, r * 0.38, r * 0.3, st.colour(SILVER + BRASS), n=24)
            c.line([(s * r * 0.6, cy + r * 0.8), (s * r * 0.9, cy + r * 1.25)], case, 0.03)
        c.line([(0, cy - r), (0, cy - r * 1.3)], case, 0.025)
    c.ellipse(0, cy, r, r, case)
    c.ellipse(0, cy, r * 0.85, r * 0.85, st.colour(PASTEL) if not st.line_art else (1, 1, 1))
    numbers = rng.random() < 0.5
    for k in range(12):
        a = k * np.pi / 6
        r0 = r * (0.62 if k % 3 == 0 or not numbers else 0.7)
        c.line([(np.cos(a) * r0, cy + np.sin(a) * r0), (np.cos(a) * r * 0.78, cy + np.sin(a) * r * 0.78)],
               ink, 0.012 if k % 3 == 0 else 0.007)
    h, m = _u(rng, 0, 2 * np.pi), _u(rng, 0, 2 * np.pi)
    c.line([(0, cy), (np.sin(h) * r * 0.4, cy - np.cos(h) * r * 0.4)], ink, 0.022)
    c.line([(0, cy), (np.sin(m) * r * 0.65, cy - np.cos(m) * r * 0.65)], ink, 0.014)
    if rng.random() < 0.5:  # second hand
        s_ = _u(rng, 0, 2 * np.pi)
        c.line([(0, cy), (np.sin(s_) * r * 0.7, cy - np.cos(s_) * r * 0.7)], st.colour(BRIGHT[:1]), 0.006)
    c.ellipse(0, cy, r * 0.05, r * 0.05, ink, n=12)
    return _small_tilt(rng, 10)


DRAWERS = {
    "ball": draw_ball,
    "book": draw_book,
    "chair": draw_chair,
    "clock": draw_clock,
    "cup": draw_cup,
    "lamp": draw_lamp,
    "plant": draw_plant,
}
