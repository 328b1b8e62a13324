"""``make_inpaint_sample``: a clean background crop and a text-shaped hole to learn inpainting from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from engine.workshop.synth import balloons, page, tones

_STREAM = 0x1A9A
_HOLE_STREAM = 0x401E
HOLE_MIN, HOLE_MAX = 0.03, 0.30


@dataclass
class InpaintSample:
    """``image`` uint8 (H, W, 3) clean background; ``hole`` bool (H, W), the pixels to reconstruct."""

    image: np.ndarray
    hole: np.ndarray


def _grow(mask: np.ndarray, px: int) -> np.ndarray:
    """Dilate a bool mask by ``px`` pixels (a square max filter, as a detector's grow step does)."""
    if px <= 0:
        return mask
    im = Image.fromarray(mask.astype(np.uint8) * 255)
    while px > 0:  # MaxFilter cost grows with the kernel area: apply small kernels repeatedly
        k = min(px, 3)
        im = im.filter(ImageFilter.MaxFilter(2 * k + 1))
        px -= k
    return np.asarray(im) > 0


def _background(rng: np.random.Generator, H: int, W: int, colour: bool) -> np.ndarray:
    C = 3 if colour else 1
    ink = np.zeros(C, np.float32)
    canvas = page.panel_content(rng, H, W, C, colour, ink)
    r = rng.random()
    if r < 0.3:  # a panel border or gutter running through the crop
        im = Image.new("L", (W, H), 0)
        d = ImageDraw.Draw(im)
        if rng.random() < 0.5:
            x = float(rng.uniform(0.1, 0.9) * W)
            d.line(
                [(x + rng.normal(0, 10), -1), (x + rng.normal(0, 10), H + 1)],
                fill=255,
                width=int(rng.integers(1, 5)),
            )
        else:
            y = float(rng.uniform(0.1, 0.9) * H)
            d.line([(-1, y), (W + 1, y + rng.normal(0, 10))], fill=255, width=int(rng.integers(1, 5)))
        tones.paint(canvas, np.asarray(im, np.float32) / 255, ink)
    elif r < 0.55:  # part of a balloon (the flat-fill path misses some; the edge must be rebuilt)
        b = balloons.make_balloon(
            rng, int(rng.uniform(0.3, 0.9) * W), int(rng.uniform(0.3, 0.9) * H), float(rng.uniform(1, 3))
        )
        bx = int(rng.integers(-b.fill.shape[1] // 2, W // 2 + 1))
        by = int(rng.integers(-b.fill.shape[0] // 2, H // 2 + 1))
        tones.paint(canvas, b.ink, ink, bx, by)
        tones.paint(canvas, b.fill, np.ones(C, np.float32), bx, by)
    paper = float(rng.uniform(0.9, 1.0))
    canvas = np.float32(0.03) * rng.random() + (paper - 0.03) * canvas
    out = np.clip(canvas * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(out, 3, axis=2) if C == 1 else out


def _text_hole(rng: np.random.Generator, H: int, W: int) -> np.ndarray:
    script = page._choice(rng, page.SCRIPT_WEIGHTS)
    if rng.random() < 0.75:
        size = int(np.exp(rng.uniform(np.log(9), np.log(40))))
        let = page.dialogue(rng, script, size, "free" if rng.random() < 0.7 else "aside")
    else:
        size = int(np.exp(rng.uniform(np.log(30), np.log(120))))
        let = page._sfx(rng, script, size, int(rng.integers(5)))
    m = let.mask()
    grow = int(rng.integers(1, 7))
    m = _grow(np.pad(m, grow), grow)
    out = np.zeros((H, W), bool)
    h, w = m.shape
    x = int(rng.integers(-w // 3, max(1, W - 2 * w // 3)))
    y = int(rng.integers(-h // 3, max(1, H - 2 * h // 3)))
    tones.blit_mask(out, m, x, y)
    return out


def _stroke_hole(rng: np.random.Generator, H: int, W: int) -> np.ndarray:
    im = Image.new("L", (W, H), 0)
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.6:
            pts = [tuple(p) for p in rng.uniform(0, [W, H], size=(int(rng.integers(2, 6)), 2))]
            d.line(pts, fill=255, width=int(rng.integers(3, 16)), joint="curve")
        else:
            cx, cy = rng.uniform(0, W), rng.uniform(0, H)
            r = rng.uniform(4, 0.15 * min(H, W))
            ang = np.sort(rng.uniform(0, 2 * np.pi, 7))
            d.polygon(
                [
                    (float(cx + r * q * np.cos(a)), float(cy + r * q * np.sin(a)))
                    for a, q in zip(ang, rng.uniform(0.5, 1.3, 7), strict=True)
                ],
                fill=255,
            )
    return np.asarray(im) > 0


def make_hole(seed: int, height: int = 256, width: int = 256) -> np.ndarray:
    """A hole shaped like grown text masks (plus some strokes/blobs) covering 3-30% of a (height, width) crop.

    Its own random stream: the same seed gives the same hole whatever the background generator does (the
    inpainting evaluation draws its holes from here and must not change when the art does)."""
    rng = np.random.default_rng((int(seed) & 0xFFFFFFFFFFFF, _HOLE_STREAM))
    H, W = int(height), int(width)
    target = float(np.exp(rng.uniform(np.log(HOLE_MIN + 0.005), np.log(HOLE_MAX - 0.03))))
    limit = min(HOLE_MAX, max(1.5 * target, 2 * HOLE_MIN))  # don't overshoot a small target by much
    hole = np.zeros((H, W), bool)
    for _ in range(16):
        part = _stroke_hole(rng, H, W) if rng.random() < 0.15 else _text_hole(rng, H, W)
        new = hole | part
        if new.mean() > limit:
            continue
        hole = new
        if hole.mean() >= target:
            break
    if hole.mean() < HOLE_MIN:  # guarantee the floor with a blob where nothing else landed
        while hole.mean() < HOLE_MIN:
            hole |= _stroke_hole(rng, H, W)
        if hole.mean() > HOLE_MAX:  # extremely unlikely; trim rows from the bottom
            rows = np.nonzero(hole.any(axis=1))[0]
            for r in rows[::-1]:
                hole[r] = False
                if hole.mean() <= HOLE_MAX:
                    break
    return hole


def make_inpaint_sample(seed: int, height: int = 256, width: int = 256) -> InpaintSample:
    """A clean background (tones, hatching, line art, clip art, halftoned photos, panels, balloon edges) and a
    hole from :func:`make_hole`. Deterministic."""
    if height < 32 or width < 32:
        raise ValueError(f"sample size {height}x{width} is too small: use at least 32x32 px")
    rng = np.random.default_rng((int(seed) & 0xFFFFFFFFFFFF, _STREAM))
    H, W = int(height), int(width)
    image = _background(rng, H, W, rng.random() < 0.15)
    return InpaintSample(image=image, hole=make_hole(seed, H, W))


_GLYPH_STREAM = 0x5FE7
GLYPH_MIN, GLYPH_MAX = 60, 120
SFX_CATEGORIES = ("pop", "brush", "gothic", "caps", "hand")


def _glyph(rng: np.random.Generator, spec, ch: str, size: int) -> np.ndarray:
    """One bold glyph as a bool mask (size about ``size`` px), rotated a little."""
    from engine.workshop.synth import fonts

    font = fonts.load(spec, size)
    bold = max(1, int(size * rng.uniform(0.03, 0.09)))
    x0, y0, x1, y1 = font.getbbox(ch, anchor="mm", stroke_width=bold)
    w, h = x1 - x0 + 4, y1 - y0 + 4
    im = Image.new("L", (max(4, w), max(4, h)), 0)
    ImageDraw.Draw(im).text((w / 2, h / 2), ch, font=font, fill=255, anchor="mm", stroke_width=bold,
                            stroke_fill=255)
    angle = float(rng.normal(0, 15))
    if abs(angle) > 1:
        im = im.rotate(angle, Image.Resampling.BILINEAR, expand=True)
    return np.asarray(im) > 96


def glyph_hole(seed: int, height: int, width: int, centre: tuple[float, float] | None = None) -> np.ndarray:
    """A sound-effect-sized hole: one to three bold glyphs 60-120 px tall in a row or column, each grown by a
    white outline of 3-9 px (what erasing an outlined sound effect leaves), within a (height, width) area.

    Its own random stream, like :func:`make_hole`. ``centre`` (y, x) places the group (default: random)."""

    rng = np.random.default_rng((int(seed) & 0xFFFFFFFFFFFF, _GLYPH_STREAM))
    H, W = int(height), int(width)
    script = ("ja", "ja", "ko", "zh", "en")[int(rng.integers(5))]
    spec = page.pick_font(rng, script, SFX_CATEGORIES, False)
    text = [c for c in page.pick_text(rng, script, spec, sfx=True) if not c.isspace()] or ["ド"]
    count = int(rng.integers(1, 4))
    chars = [text[i % len(text)] for i in range(count)]
    outline = int(rng.integers(3, 10))
    vertical = rng.random() < 0.5
    cy, cx = centre if centre is not None else (rng.uniform(0.3, 0.7) * H, rng.uniform(0.3, 0.7) * W)
    sizes = [int(rng.uniform(GLYPH_MIN, GLYPH_MAX)) for _ in chars]
    step_share = rng.uniform(0.75, 1.0)
    extent = sum(s * step_share for s in sizes)
    pos = -extent / 2
    drift = rng.normal(0, 0.2)
    hole = np.zeros((H, W), bool)
    for ch, size in zip(chars, sizes, strict=True):
        g = _glyph(rng, spec, ch, size)
        along = pos + size * step_share / 2
        across = along * drift + rng.normal(0, size * 0.06)
        gy, gx = (cy + along, cx + across) if vertical else (cy + across, cx + along)
        tones.blit_mask(hole, g, int(gx - g.shape[1] / 2), int(gy - g.shape[0] / 2))
        pos += size * step_share
    return _grow(hole, outline)
