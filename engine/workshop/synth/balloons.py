"""Speech balloons around a text block: round, oval, cloud, spiky burst, narration box, thought bubble,
borderless; with tails. Shapes are drawn 2x supersampled so outlines are anti-aliased like scanned ink.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SS = 2  # supersampling factor

SHAPES = ("oval", "oval", "oval", "round", "cloud", "spiky", "box", "thought", "borderless")


@dataclass
class Balloon:
    """Coverage float32 (h, w) of the outline (``ink``: body grown by the line width) and the interior
    (``fill``), to paint at (x, y); ``text_box`` (x0, y0, x1, y1) in the same local frame, where text fits."""

    ink: np.ndarray
    fill: np.ndarray
    x: int
    y: int
    text_box: tuple[int, int, int, int]
    shape: str


def _draw_shape(d: ImageDraw.ImageDraw, shape: str, p: dict, grow: float) -> None:
    cx, cy, a, b = p["cx"], p["cy"], p["a"], p["b"]
    if shape in ("oval", "borderless", "thought_body"):
        d.ellipse([cx - a - grow, cy - b - grow, cx + a + grow, cy + b + grow], fill=255)
    elif shape == "round":
        r = p["r"] + grow
        d.rounded_rectangle([cx - a - grow, cy - b - grow, cx + a + grow, cy + b + grow], radius=r, fill=255)
    elif shape == "box":
        d.rectangle([cx - a - grow, cy - b - grow, cx + a + grow, cy + b + grow], fill=255)
    elif shape in ("cloud", "thought"):
        d.ellipse(
            [cx - a * 0.92 - grow, cy - b * 0.92 - grow, cx + a * 0.92 + grow, cy + b * 0.92 + grow], fill=255
        )
        for bx, by, br in p["bumps"]:
            d.ellipse([bx - br - grow, by - br - grow, bx + br + grow, by + br + grow], fill=255)
    elif shape == "spiky":
        pts = p["poly"]
        d.polygon(pts, fill=255)
        if grow > 0:
            d.line(pts + [pts[0]], fill=255, width=int(round(2 * grow)), joint="curve")
    for poly in p.get("tails", []):
        d.polygon(poly, fill=255)
        if grow > 0:
            d.line(poly + [poly[0]], fill=255, width=int(round(2 * grow)), joint="curve")
    for ex, ey, er in p.get("dots", []):
        d.ellipse([ex - er - grow, ey - er - grow, ex + er + grow, ey + er + grow], fill=255)


def make_balloon(
    rng: np.random.Generator,
    text_w: int,
    text_h: int,
    line_width: float,
    shape: str | None = None,
    tail: bool | None = None,
) -> Balloon:
    """A balloon whose interior holds a ``text_w`` x ``text_h`` px block (plus padding)."""
    if shape is None:
        shape = str(rng.choice(SHAPES))
    pad = float(rng.uniform(0.08, 0.3)) * min(text_w, text_h) + 4
    hw, hh = text_w / 2 + pad, text_h / 2 + pad
    if shape in ("oval", "borderless", "cloud", "thought", "spiky"):
        k = float(rng.uniform(1.42, 1.6))  # >= sqrt(2): the ellipse passes outside the text box's corners
        a, b = hw * k, hh * k
    else:
        a, b = hw * float(rng.uniform(1.0, 1.15)), hh * float(rng.uniform(1.0, 1.15))
    spike = 0.0
    p: dict = {"a": a, "b": b, "r": float(rng.uniform(0.2, 0.6)) * min(a, b)}
    if shape == "spiky":
        spike = float(rng.uniform(0.15, 0.5)) * min(a, b) + 6
    bump = float(rng.uniform(0.12, 0.3)) * min(a, b) if shape in ("cloud", "thought") else 0.0
    tail_len = (
        float(rng.uniform(0.3, 1.0)) * min(a, b)
        if (tail if tail is not None else rng.random() < 0.55) and shape not in ("box", "borderless")
        else 0.0
    )
    margin = line_width + spike + bump + tail_len + 4
    w, h = int(2 * (a + margin)), int(2 * (b + margin))
    cx, cy = w / 2, h / 2
    p.update(cx=cx * SS, cy=cy * SS, a=a * SS, b=b * SS, r=p["r"] * SS)
    if shape in ("cloud", "thought"):
        n = int(rng.integers(8, 16))
        ang = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 1)
        p["bumps"] = [
            (
                cx * SS + np.cos(t) * a * SS,
                cy * SS + np.sin(t) * b * SS,
                bump * SS * float(rng.uniform(0.8, 1.3)),
            )
            for t in ang
        ]
    if shape == "spiky":
        n = int(rng.integers(12, 30))
        ang = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
        pts = []
        for i, t in enumerate(ang):
            s = 1.0 if i % 2 == 0 else 1.0 + spike / min(a, b) * float(rng.uniform(0.5, 1.5))
            pts.append((float(cx * SS + np.cos(t) * a * SS * s), float(cy * SS + np.sin(t) * b * SS * s)))
        p["poly"] = pts
    if tail_len > 0:
        t = rng.uniform(0, 2 * np.pi)
        base = np.array([cx + np.cos(t) * a * 0.85, cy + np.sin(t) * b * 0.85])
        tip = np.array([cx + np.cos(t) * (a + tail_len), cy + np.sin(t) * (b + tail_len)])
        tip += rng.normal(0, tail_len * 0.3, 2)
        nrm = np.array([-np.sin(t), np.cos(t)]) * float(rng.uniform(0.08, 0.2)) * min(a, b)
        if shape == "thought":  # a trail of small bubbles instead of a wedge
            p["dots"] = [
                (
                    float((base + (tip - base) * f)[0] * SS),
                    float((base + (tip - base) * f)[1] * SS),
                    float(min(a, b) * 0.12 * (1.2 - f) * SS),
                )
                for f in (0.55, 0.85, 1.05)
            ]
        else:
            p["tails"] = [
                [
                    tuple(map(float, (base + nrm) * SS)),
                    tuple(map(float, (base - nrm) * SS)),
                    tuple(map(float, tip * SS)),
                ]
            ]
    draw_shape = "thought_body" if shape == "thought" and "bumps" not in p else shape
    fill_im = Image.new("L", (w * SS, h * SS), 0)
    _draw_shape(ImageDraw.Draw(fill_im), draw_shape, p, 0.0)
    fill = np.asarray(fill_im.resize((w, h), Image.Resampling.BOX), np.float32) * np.float32(1 / 255)
    if shape == "borderless":
        ink = np.zeros_like(fill)
    else:
        ink_im = Image.new("L", (w * SS, h * SS), 0)
        _draw_shape(ImageDraw.Draw(ink_im), draw_shape, p, line_width * SS)
        ink = np.asarray(ink_im.resize((w, h), Image.Resampling.BOX), np.float32) * np.float32(1 / 255)
    box = (
        int(cx - text_w / 2),
        int(cy - text_h / 2),
        int(cx - text_w / 2) + text_w,
        int(cy - text_h / 2) + text_h,
    )
    return Balloon(ink, fill, 0, 0, box, shape)
