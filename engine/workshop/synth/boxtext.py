"""``draw_text_in_box``: letter given text into a rectangle of a real image, with its exact mask."""

from __future__ import annotations

import os

import numpy as np
from PIL import ImageFont

from engine.errors import InputError
from engine.workshop.synth import lettering, tones


def _wrap_to_width(font: ImageFont.FreeTypeFont, text: str, width: float) -> list[str]:
    words = text.split()
    lines: list[str] = []
    cur = ""
    for word in words:
        trial = f"{cur} {word}" if cur else word
        if cur and font.getlength(trial) > width:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    if cur:
        lines.append(cur)
    return lines


def draw_text_in_box(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    text: str,
    font_path: str,
    seed: int,
    *,
    colour: tuple[int, int, int] = (0, 0, 0),
    max_size: int = 48,
    min_size: int = 6,
    padding: float = 0.08,
    line_spacing: float = 1.15,
) -> tuple[np.ndarray, np.ndarray]:
    """Letter ``text`` (word-wrapped, centred, largest size that fits) into ``box`` = (x0, y0, x1, y1)
    (end-exclusive px) of ``image`` uint8 (H, W, 3). Returns (new image uint8 (H, W, 3), mask bool (H, W) of
    the
    glyph pixels with coverage >= 25%, always inside the box). ``seed`` jitters the size slightly."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"draw_text_in_box needs a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    if not os.path.exists(font_path):
        raise InputError(f"font not found: {font_path}; pass the path of a .ttf/.otf file")
    H, W = image.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise InputError(f"box {box} is empty or too small inside a {W}x{H} image")
    rng = np.random.default_rng((int(seed) & 0xFFFFFFFF, 0xB0C5))
    bw, bh = x1 - x0, y1 - y0
    inner_w, inner_h = bw * (1 - 2 * padding), bh * (1 - 2 * padding)
    words = " ".join(text.split())
    mask = np.zeros((H, W), bool)
    if not words:
        return image.copy(), mask
    best = None
    top = int(max_size * rng.uniform(0.9, 1.0))
    for size in range(top, min_size - 1, -1):
        font = ImageFont.truetype(font_path, size)
        lines = _wrap_to_width(font, words, inner_w)
        widths = [font.getlength(line) for line in lines]
        height = size * line_spacing * (len(lines) - 1) + size * 1.25
        if max(widths) <= inner_w and height <= inner_h:
            best = (font, size, lines, widths)
            break
    if best is None:  # even the smallest size does not fit: letter at min size and clip to the box
        font = ImageFont.truetype(font_path, min_size)
        lines = _wrap_to_width(font, words, inner_w)
        best = (font, min_size, lines, [font.getlength(line) for line in lines])
    font, size, lines, widths = best
    block_h = size * line_spacing * (len(lines) - 1) + size * 1.25
    top_y = (bh - block_h) / 2
    items = [
        ((bw - wl) / 2, top_y + i * size * line_spacing, line, font, "ltr", "la")
        for i, (line, wl) in enumerate(zip(lines, widths, strict=True))
    ]
    let = lettering.render(items, bw, bh, (0,))
    canvas = image[y0:y1, x0:x1].astype(np.float32) / 255
    tones.paint(canvas, let.layers[0], np.asarray(colour, np.float32) / 255)
    out = image.copy()
    out[y0:y1, x0:x1] = np.clip(canvas * 255 + 0.5, 0, 255).astype(np.uint8)
    mask[y0:y1, x0:x1] = let.mask()
    return out, mask
