"""Hard negatives: small drawn things that a text detector took for lettering on real manga pages (a hand raised
to a mouth, roses on a banner, a bottle, steam puffs, eyes, ornaments, clusters of hatching or short strokes).

Each painter draws one such thing in ink, at a size near that of lettering, somewhere on a canvas float32
(h, w, C) in [0, 1] (1 = white), in place; ``hard_negatives`` draws a few of them. They are art: never in any
text mask.
"""

from __future__ import annotations

import numpy as np

from engine.workshop.synth import tones
from engine.workshop.synth.art import _bezier, _cov, _draw


def _centre_size(rng: np.random.Generator, H: int, W: int, lo: float, hi: float):
    s = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return float(rng.uniform(0, W)), float(rng.uniform(0, H)), s


def _blob(cx: float, cy: float, rx: float, ry: float, rng: np.random.Generator, points: int = 10, wobble=0.15):
    ang = np.linspace(0, 2 * np.pi, points, endpoint=False) + rng.uniform(0, 0.5)
    rad = 1 + rng.uniform(-wobble, wobble, points)
    return [(float(cx + rx * q * np.cos(a)), float(cy + ry * q * np.sin(a))) for a, q in zip(ang, rad, strict=True)]


def hand(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """An outlined hand: a palm and four or five fingers (curled or spread), knuckle lines, white inside."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    fill, fd = _draw(H, W)
    cx, cy, s = _centre_size(rng, H, W, 18, 90)
    angle = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    lw = max(1, int(s * rng.uniform(0.03, 0.07)))

    def pt(x, y):
        q = rot @ np.array([x, y]) * s
        return float(cx + q[0]), float(cy + q[1])

    palm = [pt(x, y) for x, y in [(-0.45, 0), (-0.4, 0.55), (0, 0.7), (0.4, 0.55), (0.45, 0), (0, -0.1)]]
    fd.polygon(palm, fill=255)
    d.line(palm[:5], fill=255, width=lw, joint="curve")
    curl = rng.random() < 0.5
    n = 5 if rng.random() < 0.7 else 4
    for k in range(n):
        fx = -0.38 + 0.76 * k / (n - 1)
        length = rng.uniform(0.45, 0.8) * (0.6 if curl else 1.0)
        tilt = (k - (n - 1) / 2) * rng.uniform(0.05, 0.2)
        tip = (fx + tilt * length, -length)
        half = 0.08
        finger = [pt(fx - half, 0), pt(tip[0] - half, tip[1]), pt(tip[0], tip[1] - half),
                  pt(tip[0] + half, tip[1]), pt(fx + half, 0)]
        fd.polygon(finger, fill=255)
        d.line(finger, fill=255, width=lw, joint="curve")
        if rng.random() < 0.6:  # knuckle crease
            ky = tip[1] * 0.5
            d.line([pt(fx - half * 0.7, ky), pt(fx + half * 0.7, ky)], fill=255, width=max(1, lw - 1))
    d.line([pt(0.45, 0.1), pt(0.75, -0.25), pt(0.8, -0.45)], fill=255, width=lw, joint="curve")  # thumb
    white = np.ones_like(np.asarray(ink, np.float32))
    tones.paint(canvas, _cov(fill, soften=True), white)
    tones.paint(canvas, _cov(im, soften=True), ink)


def flower(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """A few roses or daisies: spiral or petal outlines with leaves, as on banners and backgrounds."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    cx, cy, s = _centre_size(rng, H, W, 10, 45)
    lw = max(1, int(s * rng.uniform(0.04, 0.1)))
    for _ in range(int(rng.integers(1, 6))):
        x, y = cx + rng.normal(0, s * 1.5), cy + rng.normal(0, s)
        r = s * rng.uniform(0.6, 1.2)
        if rng.random() < 0.5:  # rose: a spiral of arcs
            t = np.linspace(0, rng.uniform(3, 5) * np.pi, 40)
            rad = r * t / t[-1]
            pts = [(float(x + q * np.cos(a)), float(y + q * np.sin(a) * 0.85)) for a, q in zip(t, rad, strict=True)]
            d.line(pts, fill=255, width=lw, joint="curve")
            d.line(_blob(x, y, r, r * 0.85, rng, 8, 0.2) + [_blob(x, y, r, r * 0.85, rng, 8, 0.2)[0]],
                   fill=255, width=lw)
        else:  # daisy: petals around a dark heart
            k = int(rng.integers(5, 10))
            for a in np.linspace(0, 2 * np.pi, k, endpoint=False):
                px, py = x + np.cos(a) * r * 0.6, y + np.sin(a) * r * 0.6
                d.ellipse([px - r * 0.3, py - r * 0.3, px + r * 0.3, py + r * 0.3], outline=255, width=lw)
            d.ellipse([x - r * 0.2, y - r * 0.2, x + r * 0.2, y + r * 0.2], fill=255)
        for _ in range(int(rng.integers(0, 3))):  # leaves
            a = rng.uniform(0, 2 * np.pi)
            lx, ly = x + np.cos(a) * r * 1.4, y + np.sin(a) * r * 1.4
            d.polygon(_blob(lx, ly, r * 0.6, r * 0.25, rng, 6, 0.1), outline=255)
            d.line([(x + np.cos(a) * r, y + np.sin(a) * r), (lx, ly)], fill=255, width=max(1, lw - 1))
    tones.paint(canvas, _cov(im, soften=True), ink)


def bottle(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """A bottle or glass in outline, with highlight strokes and sometimes a blank label band."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    cx, cy, s = _centre_size(rng, H, W, 25, 110)
    w, lw = s * rng.uniform(0.25, 0.45), max(1, int(s * rng.uniform(0.015, 0.04)))
    neck, shoulder = w * rng.uniform(0.25, 0.45), s * rng.uniform(0.2, 0.45)
    top, bottom = cy - s / 2, cy + s / 2
    left = [(cx - neck, top), (cx - neck, top + shoulder * 0.6), (cx - w, top + shoulder), (cx - w, bottom)]
    right = [(cx + w, bottom), (cx + w, top + shoulder), (cx + neck, top + shoulder * 0.6), (cx + neck, top)]
    d.line(left + right + [left[0]], fill=255, width=lw, joint="curve")
    for k in range(int(rng.integers(1, 4))):  # highlights
        x = cx - w * rng.uniform(0.3, 0.7) + k * lw * 3
        d.line([(x, top + shoulder * 1.2), (x, bottom - s * 0.1)], fill=255, width=1)
    if rng.random() < 0.5:  # label band
        y0 = top + shoulder + s * rng.uniform(0.1, 0.3)
        d.rectangle([cx - w, y0, cx + w, y0 + s * 0.2], outline=255, width=lw)
    tones.paint(canvas, _cov(im, soften=True), ink)


def steam(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """Steam or smoke: rising wavy strokes and puffs of small open curls."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    cx, cy, s = _centre_size(rng, H, W, 20, 90)
    lw = int(rng.choice([1, 1, 2, 3]))
    for _ in range(int(rng.integers(2, 6))):
        x = cx + rng.normal(0, s * 0.4)
        amp, length = s * rng.uniform(0.05, 0.2), s * rng.uniform(0.5, 1.2)
        t = np.linspace(0, 1, 24)
        pts = [(float(x + amp * np.sin(q * rng.uniform(6, 12))), float(cy - q * length)) for q in t]
        d.line(pts, fill=255, width=lw, joint="curve")
    for _ in range(int(rng.integers(0, 5))):  # puffs
        r = s * rng.uniform(0.08, 0.25)
        x, y = cx + rng.normal(0, s * 0.5), cy - rng.uniform(0, s)
        a0 = rng.uniform(0, 360)
        d.arc([x - r, y - r, x + r, y + r], a0, a0 + rng.uniform(180, 300), fill=255, width=lw)
    tones.paint(canvas, _cov(im, soften=True), ink)


def eye(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """One eye in close-up or small: almond outline, iris ring, pupil, catch-light, lashes."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    light, ld = _draw(H, W)
    cx, cy, s = _centre_size(rng, H, W, 8, 70)
    lw = max(1, int(s * rng.uniform(0.04, 0.1)))
    upper = _bezier(np.array([cx - s, cy]), np.array([cx - s / 2, cy - s * 0.6]),
                    np.array([cx + s / 2, cy - s * 0.6]), np.array([cx + s, cy]))
    lower = _bezier(np.array([cx - s, cy]), np.array([cx - s / 2, cy + s * 0.4]),
                    np.array([cx + s / 2, cy + s * 0.4]), np.array([cx + s, cy]))
    d.line(upper, fill=255, width=lw * 2, joint="curve")
    d.line(lower, fill=255, width=max(1, lw // 2))
    r = s * rng.uniform(0.3, 0.45)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=255, width=lw)
    p = r * rng.uniform(0.35, 0.6)
    d.ellipse([cx - p, cy - p, cx + p, cy + p], fill=255)
    hr = r * 0.25
    ld.ellipse([cx + p * 0.3 - hr, cy - p * 0.6 - hr, cx + p * 0.3 + hr, cy - p * 0.6 + hr], fill=255)
    for k in range(int(rng.integers(0, 5))):
        x, y = upper[-1 - 2 * k]
        d.line([(x, y), (x + s * 0.15, y - s * 0.2)], fill=255, width=max(1, lw // 2))
    dark = _cov(im, soften=True)
    tones.paint(canvas, dark, ink)
    tones.paint(canvas, _cov(light, soften=True) * dark, np.ones_like(np.asarray(ink, np.float32)))


def ornament(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """Small decorative shapes: stars, hearts, notes, swirls, diamonds, in a row or scattered."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    cx, cy, s = _centre_size(rng, H, W, 5, 30)
    row = rng.random() < 0.4
    n = int(rng.integers(1, 7))
    for k in range(n):
        x = cx + (k * s * 2.2 if row else rng.normal(0, s * 3))
        y = cy + (0 if row else rng.normal(0, s * 3))
        kind = int(rng.integers(5))
        filled = rng.random() < 0.5
        if kind == 0:  # five-point star
            a = np.linspace(-np.pi / 2, 3.5 * np.pi, 10, endpoint=False)
            q = np.where(np.arange(10) % 2 == 0, s, s * 0.45)
            poly = [(float(x + r * np.cos(t)), float(y + r * np.sin(t))) for t, r in zip(a, q, strict=True)]
        elif kind == 1:  # heart
            t = np.linspace(0, 2 * np.pi, 24)
            poly = [(float(x + s * 0.06 * 16 * np.sin(u) ** 3),
                     float(y - s * 0.06 * (13 * np.cos(u) - 5 * np.cos(2 * u) - 2 * np.cos(3 * u) - np.cos(4 * u))))
                    for u in t]
        elif kind == 2:  # diamond
            poly = [(x, y - s), (x + s * 0.6, y), (x, y + s), (x - s * 0.6, y)]
        elif kind == 3:  # musical note
            d.ellipse([x - s * 0.4, y + s * 0.3, x + s * 0.2, y + s * 0.7], fill=255)
            d.line([(x + s * 0.15, y + s * 0.5), (x + s * 0.15, y - s * 0.7), (x + s * 0.5, y - s * 0.4)],
                   fill=255, width=max(1, int(s / 8)))
            continue
        else:  # swirl
            t = np.linspace(0, 3 * np.pi, 30)
            d.line([(float(x + s * u / 10 * np.cos(u)), float(y + s * u / 10 * np.sin(u))) for u in t],
                   fill=255, width=max(1, int(s / 8)))
            continue
        if filled:
            d.polygon(poly, fill=255)
        else:
            d.line(poly + [poly[0]], fill=255, width=max(1, int(s / 8)))
    tones.paint(canvas, _cov(im, soften=True), ink)


def hatch_cluster(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """A small patch of short hatching strokes (a shadow on a cheek, a fold): text-sized, but not text."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    cx, cy, s = _centre_size(rng, H, W, 8, 40)
    a = rng.uniform(0, np.pi)
    dx, dy = np.cos(a), np.sin(a)
    nx, ny = -dy, dx
    gap = rng.uniform(2, 5)
    curved = rng.random() < 0.4
    for k in np.arange(-s / 2, s / 2, gap):
        ll = s * rng.uniform(0.3, 1.0) / 2
        px, py = cx + nx * k + rng.normal(0, 1), cy + ny * k + rng.normal(0, 1)
        p0, p3 = np.array([px - dx * ll, py - dy * ll]), np.array([px + dx * ll, py + dy * ll])
        if curved:
            bend = np.array([nx, ny]) * ll * 0.3
            d.line(_bezier(p0, p0 + (p3 - p0) / 3 + bend, p0 + 2 * (p3 - p0) / 3 + bend, p3, n=8), fill=255,
                   width=1)
        else:
            d.line([tuple(p0), tuple(p3)], fill=255, width=int(rng.choice([1, 1, 2])))
    tones.paint(canvas, _cov(im, soften=True), ink)


def stroke_cluster(canvas: np.ndarray, rng: np.random.Generator, ink) -> None:
    """A loose knot of short curved strokes, ticks and dots the size of a glyph (grass, fur, wrinkles, a
    scribbled shadow), scattered rather than set in a line or column as lettering is."""
    H, W = canvas.shape[:2]
    im, d = _draw(H, W)
    cx, cy, s = _centre_size(rng, H, W, 8, 36)
    lw = int(rng.choice([1, 1, 2, 2, 3]))
    for _ in range(int(rng.integers(3, 10))):
        p0 = np.array([cx, cy]) + rng.normal(0, s * 0.5, 2)
        v = rng.normal(0, s * 0.5, 2)
        if rng.random() < 0.15:
            d.ellipse([p0[0] - lw, p0[1] - lw, p0[0] + lw, p0[1] + lw], fill=255)
            continue
        q = [p0, p0 + v / 3 + rng.normal(0, s * 0.2, 2), p0 + 2 * v / 3 + rng.normal(0, s * 0.2, 2), p0 + v]
        d.line(_bezier(*q, n=10), fill=255, width=lw, joint="curve")
    tones.paint(canvas, _cov(im, soften=True), ink)


PAINTERS = (hand, flower, bottle, steam, eye, ornament, hatch_cluster, stroke_cluster)


def hard_negatives(canvas: np.ndarray, rng: np.random.Generator, ink, count: int | None = None) -> None:
    """Paint ``count`` (default 1 to 5) hard negatives chosen at random onto ``canvas``, in place."""
    for _ in range(int(rng.integers(1, 6)) if count is None else count):
        PAINTERS[int(rng.integers(len(PAINTERS)))](canvas, rng, ink)
