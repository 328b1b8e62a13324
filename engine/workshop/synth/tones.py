"""Screentones and canvas helpers. Values are float32 in [0, 1] with 1 = paper white, 0 = ink.

A canvas is float32 (H, W, C) with C = 1 (grey page) or 3 (colour page); the same code paints both by
broadcasting colours of shape (C,).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def grid(h: int, w: int, angle_deg: float, period: float, rng: np.random.Generator):
    """Rotated coordinates (u, v) in units of screen periods, float32 (h, w) each, with a random phase."""
    a = np.deg2rad(angle_deg)
    y = np.arange(h, dtype=np.float32)[:, None]
    x = np.arange(w, dtype=np.float32)[None, :]
    ca, sa = np.float32(np.cos(a) / period), np.float32(np.sin(a) / period)
    u = x * ca + y * sa + np.float32(rng.random())
    v = y * ca - x * sa + np.float32(rng.random())
    return u, v


def _smooth_threshold(field: np.ndarray, level: np.ndarray | float, softness: float) -> np.ndarray:
    # Anti-aliased threshold: ink where field < level, a ramp ``softness`` wide (in field units) at the edge.
    return np.clip((field - level) / softness + 0.5, 0.0, 1.0)


def dot_tone(
    h: int,
    w: int,
    coverage: np.ndarray | float,
    period: float,
    angle: float,
    rng: np.random.Generator,
    invert: bool = False,
) -> np.ndarray:
    """Amplitude-modulated dot screen: float32 (h, w) values, ink share ~ ``coverage`` (scalar or (h, w))."""
    u, v = grid(h, w, angle, period, rng)
    # Distance-like field in [0, 1]: 0 at dot centres. cos-based so it tiles without seams.
    field = (2.0 - np.cos(2 * np.pi * u) - np.cos(2 * np.pi * v)) * np.float32(0.25)
    # coverage -> threshold on this field (approximately linear in area for mid tones)
    level = np.sqrt(np.clip(coverage, 0.0, 1.0)) * np.float32(0.72) if not invert else coverage
    soft = max(0.04, 0.9 / period)
    out = _smooth_threshold(field, level, soft)
    return out.astype(np.float32)


def line_tone(
    h: int, w: int, coverage: np.ndarray | float, period: float, angle: float, rng: np.random.Generator
) -> np.ndarray:
    """Parallel-line screen, float32 (h, w)."""
    u, _ = grid(h, w, angle, period, rng)
    field = np.abs(u - np.floor(u) - np.float32(0.5)) * 2  # 0 at line centre, 1 between lines
    soft = max(0.05, 1.2 / period)
    return _smooth_threshold(field, np.asarray(coverage, np.float32), soft).astype(np.float32)


def noise_tone(h: int, w: int, coverage: np.ndarray | float, rng: np.random.Generator, grain: int = 1):
    """Sand/noise screentone (random dots), float32 (h, w)."""
    gh, gw = (h + grain - 1) // grain, (w + grain - 1) // grain
    r = rng.random((gh, gw), dtype=np.float32)
    if grain > 1:
        r = np.repeat(np.repeat(r, grain, 0), grain, 1)[:h, :w]
    return (r >= coverage).astype(np.float32)


def gradient(h: int, w: int, rng: np.random.Generator, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """A linear or radial ramp from ``lo`` to ``hi``, float32 (h, w)."""
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    if rng.random() < 0.7:
        a = rng.random() * 2 * np.pi
        t = x * np.float32(np.cos(a)) + y * np.float32(np.sin(a))
    else:
        cy, cx = rng.random(2)
        t = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return (lo + (hi - lo) * t).astype(np.float32)


def random_tone(h: int, w: int, rng: np.random.Generator, coverage: np.ndarray | float | None = None):
    """One of the usual manga screentones (dots, lines, gradient dots, noise) as float32 (h, w)."""
    if coverage is None:
        coverage = float(rng.uniform(0.08, 0.6))
    kind = rng.random()
    period = float(rng.choice([3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 9.0]))
    angle = float(rng.choice([45.0, 45.0, 30.0, 0.0, 15.0, 60.0, 75.0, float(rng.uniform(0, 90))]))
    if kind < 0.55:
        return dot_tone(h, w, coverage, period, angle, rng)
    if kind < 0.75:
        return dot_tone(
            h,
            w,
            gradient(h, w, rng, float(rng.uniform(0, 0.2)), float(rng.uniform(0.3, 0.9))),
            period,
            angle,
            rng,
        )
    if kind < 0.9:
        return line_tone(h, w, coverage, float(rng.uniform(3, 10)), float(rng.uniform(0, 180)), rng)
    return noise_tone(h, w, np.asarray(coverage, np.float32) * 0.7, rng, int(rng.integers(1, 3)))


def poly_mask(h: int, w: int, points, fill: int = 255) -> np.ndarray:
    """float32 (h, w) anti-aliasing-free coverage of a polygon given as [(x, y), ...]."""
    im = Image.new("L", (w, h), 0)
    ImageDraw.Draw(im).polygon([(float(x), float(y)) for x, y in points], fill=fill)
    return np.asarray(im, np.float32) * np.float32(1 / 255)


def paint(canvas: np.ndarray, cov: np.ndarray, colour, x: int = 0, y: int = 0) -> None:
    """Alpha-blend ``colour`` (array (C,) or (h, w, C) or (h, w, 1)) with coverage ``cov`` float32 (h, w)
    into ``canvas`` at (x, y), clipped to the canvas. In place."""
    H, W = canvas.shape[:2]
    h, w = cov.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return
    c = cov[y0 - y : y1 - y, x0 - x : x1 - x, None]
    col = np.asarray(colour, np.float32)
    if col.ndim == 3:
        col = col[y0 - y : y1 - y, x0 - x : x1 - x]
    region = canvas[y0:y1, x0:x1]
    region += (col - region) * c


def blit_mask(mask: np.ndarray, local: np.ndarray, x: int, y: int) -> None:
    """OR a bool (h, w) ``local`` into bool (H, W) ``mask`` at (x, y), clipped. In place."""
    H, W = mask.shape
    h, w = local.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 < x1 and y0 < y1:
        mask[y0:y1, x0:x1] |= local[y0 - y : y1 - y, x0 - x : x1 - x]
