"""Lay out and render lettering as coverage layers: vertical Japanese columns (right to left, with furigana),
horizontal lines (Japanese, Chinese, Korean, English), and sound effects built letter by letter.

A :class:`Lettering` holds one float32 (h, w) coverage array per stroke width (outermost first; width 0 is the
glyph fill itself). Whoever paints it picks a colour per layer; the text mask is the union of the layers at
coverage >= ``MASK_COVERAGE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.workshop.synth import corpus, fonts

# Anti-aliased edge pixels count as text where the glyph (or its outline) covers at least a quarter of the
# pixel: below that the pixel is mostly background, and a detector that grows its mask by a pixel or two
# before inpainting covers the faint rim anyway.
MASK_COVERAGE = 0.25

HAN_RE = re.compile(r"[\u4e00-\u9fff々]+")
# Characters that must not start a column/line (kinsoku): they attach to the previous one.
ROTATE_IN_COLUMN = set("ー〜～…‥－-—")
NO_START = set("、。，．！？!?…‥ー〜」』）)っゃゅょぁぃぅぇぉッャュョァィゥェォ・")


@dataclass
class Lettering:
    """Coverage layers float32 (h, w) in [0, 1], one per stroke width in ``strokes`` (descending; last 0)."""

    layers: list[np.ndarray]
    strokes: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return self.layers[0].shape

    def mask(self) -> np.ndarray:
        """bool (h, w): pixels that are text (glyph or any of its outlines)."""
        return self.layers[0] >= MASK_COVERAGE  # the outermost layer contains all inner ones

    def transformed(self, fn) -> Lettering:
        return Lettering([fn(layer) for layer in self.layers], self.strokes)


# One draw command: (x, y, text, font, direction, anchor)
Item = tuple[float, float, str, ImageFont.FreeTypeFont, str, str]


def render(items: list[Item], w: int, h: int, strokes: tuple[int, ...]) -> Lettering:
    """Draw ``items`` once per stroke width into (h, w) coverage layers."""
    layers = []
    for s in strokes:
        im = Image.new("L", (max(1, w), max(1, h)), 0)
        d = ImageDraw.Draw(im)
        for x, y, text, font, direction, anchor in items:
            d.text(
                (x, y),
                text,
                font=font,
                fill=255,
                direction=direction,
                anchor=anchor,
                stroke_width=s,
                stroke_fill=255,
            )
        layers.append(np.asarray(im, np.float32) * np.float32(1 / 255))
    return Lettering(layers, strokes)


def wrap_cjk(text: str, per_line: int) -> list[str]:
    """Break CJK text every ``per_line`` characters, keeping closing punctuation and small kana attached."""
    lines: list[str] = []
    cur = ""
    for ch in text:
        if len(cur) >= per_line and ch not in NO_START:
            lines.append(cur)
            cur = ""
        cur += ch
    if cur:
        lines.append(cur)
    return lines


def wrap_words(text: str, per_line: int) -> list[str]:
    """Greedy word wrap to about ``per_line`` characters."""
    lines: list[str] = []
    cur = ""
    for word in text.split():
        if cur and len(cur) + 1 + len(word) > per_line:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    if cur:
        lines.append(cur)
    return lines or [text]


def _furigana_items(
    rng: np.random.Generator,
    spec: fonts.FontSpec,
    font,
    line: str,
    size: int,
    x: float,
    y: float,
    vertical: bool,
) -> list[Item]:
    items: list[Item] = []
    rsize = max(5, int(size * rng.uniform(0.4, 0.52)))
    rfont = fonts.load(spec, rsize)
    for m in HAN_RE.finditer(line):
        if rng.random() < 0.35:
            continue
        direction = "ttb" if vertical else "ltr"
        start = font.getlength(line[: m.start()], direction=direction)
        run = font.getlength(m.group(), direction=direction)
        ruby = corpus.furigana_for(rng, len(m.group()))
        rlen = rfont.getlength(ruby, direction=direction)
        if rlen > run * 1.6:
            ruby = ruby[: max(1, len(m.group()))]
            rlen = rfont.getlength(ruby, direction=direction)
        off = start + (run - rlen) / 2
        if vertical:  # ruby to the right of the column
            items.append((x + size * 0.5 + rsize * 0.55, y + off, ruby, rfont, "ttb", "mt"))
        else:  # ruby above the line
            items.append((x + off, y - rsize * 0.15, ruby, rfont, "ltr", "ld"))
    return items


def block(
    rng: np.random.Generator,
    spec: fonts.FontSpec,
    size: int,
    lines: list[str],
    vertical: bool,
    strokes: tuple[int, ...] = (0,),
    furigana: bool = False,
    spacing: float | None = None,
    align: str = "centre",
) -> Lettering:
    """A block of text: vertical columns right to left (``vertical``) or horizontal lines, each line separate.

    ``size`` px font size; ``spacing`` line pitch in font sizes; ``align`` centre/start for the lines' ends.
    """
    font = fonts.load(spec, size)
    pad = max(strokes) + 2
    if spacing is None:
        spacing = float(rng.uniform(1.12, 1.45))
    if furigana:
        spacing = max(spacing, 1.6)
    pitch = size * spacing
    direction = "ttb" if vertical else "ltr"
    lengths = [font.getlength(line, direction=direction) for line in lines]
    longest = max(lengths) if lengths else size
    items: list[Item] = []
    if vertical:
        w = int(np.ceil(pitch * (len(lines) - 1) + size * (1.7 if furigana else 1.0))) + 2 * pad
        h = int(np.ceil(longest + size * 0.2)) + 2 * pad
        for i, (line, ln) in enumerate(zip(lines, lengths, strict=True)):
            x = w - pad - size * (1.1 if furigana else 0.5) - pitch * i
            y = pad + (0 if align == "start" else (longest - ln) / 2)
            items.append((x, y, line, font, "ttb", "mt"))
            if furigana:
                items.extend(_furigana_items(rng, spec, font, line, size, x, y, True))
    else:
        top = size * 0.6 if furigana else 0
        ascent, descent = font.getmetrics()
        # some fonts (brush, handwriting) reach beyond their advance and below 1.25 x size: leave room
        side = int(size * 0.15)
        w = int(np.ceil(longest)) + 2 * pad + 2 + 2 * side
        h = int(np.ceil(pitch * (len(lines) - 1) + max(size * 1.25, ascent + descent) + top)) + 2 * pad
        for i, (line, ln) in enumerate(zip(lines, lengths, strict=True)):
            x = pad + side + (0 if align == "start" else (longest - ln) / 2)
            y = pad + top + pitch * i
            items.append((x, y, line, font, "ltr", "la"))
            if furigana:
                items.extend(_furigana_items(rng, spec, font, line, size, x, y, False))
    return render(items, w, h, strokes)


def sound_effect(
    rng: np.random.Generator,
    spec: fonts.FontSpec,
    size: int,
    text: str,
    vertical: bool,
    strokes: tuple[int, ...],
) -> Lettering:
    """A sound effect built letter by letter: each letter jittered in size, angle and position."""
    pad = max(strokes) + 4
    n = len(text)
    sizes = (size * rng.uniform(0.75, 1.25, n) * np.linspace(1, rng.uniform(0.6, 1.5), n)).astype(int)
    sizes = np.maximum(sizes, 8)
    step = rng.uniform(0.7, 1.05)
    letters: list[tuple[Lettering, float, float]] = []
    pos = 0.0
    drift = rng.normal(0, 0.25)
    for ch, s in zip(text, sizes, strict=True):
        font = fonts.load(spec, int(s))
        box = font.getbbox(ch, anchor="mm")
        cw, chh = box[2] - box[0] + 2 * pad + 2, box[3] - box[1] + 2 * pad + 2
        letter = render([(cw / 2, chh / 2, ch, font, "ltr", "mm")], cw, chh, strokes)
        angle = float(rng.normal(0, 12))
        if vertical and ch in ROTATE_IN_COLUMN:
            angle -= 90  # a long-vowel bar or wave runs along the column
        if abs(angle) > 1:
            letter = letter.transformed(lambda a, ang=angle: rotate(a, ang))
        along = pos + s * 0.5
        across = along * drift + rng.normal(0, s * 0.08)
        letters.append((letter, along, across))
        pos += s * step
    # place the letters on one canvas (max-combine the coverage so overlapping letters merge)
    extent = pos + size
    cross = size * 2.0 + abs(drift) * extent
    w, h = (int(cross), int(extent)) if vertical else (int(extent), int(cross))
    w, h = w + 2 * pad, h + 2 * pad
    layers = [np.zeros((h, w), np.float32) for _ in strokes]
    for letter, along, across in letters:
        lh, lw = letter.shape
        if vertical:
            cx, cy = w / 2 + across, pad + along
        else:
            cx, cy = pad + along, h / 2 + across
        x0, y0 = int(cx - lw / 2), int(cy - lh / 2)
        for k, layer in enumerate(letter.layers):
            xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + lw, w), min(y0 + lh, h)
            if xa < xb and ya < yb:
                dst = layers[k][ya:yb, xa:xb]
                np.maximum(dst, layer[ya - y0 : yb - y0, xa - x0 : xb - x0], out=dst)
    return _trim(Lettering(layers, strokes))


def _trim(lettering: Lettering, margin: int = 2) -> Lettering:
    ys, xs = np.nonzero(lettering.layers[0] > 0)
    if ys.size == 0:
        return lettering
    y0, y1 = max(ys.min() - margin, 0), ys.max() + margin + 1
    x0, x1 = max(xs.min() - margin, 0), xs.max() + margin + 1
    return lettering.transformed(lambda a: a[y0:y1, x0:x1])


def rotate(layer: np.ndarray, angle: float) -> np.ndarray:
    im = Image.fromarray((layer * 255).astype(np.uint8))
    return np.asarray(im.rotate(angle, Image.Resampling.BILINEAR, expand=True), np.float32) * np.float32(
        1 / 255
    )


def shear(layer: np.ndarray, k: float) -> np.ndarray:
    """Horizontal shear by ``k`` (x += k * y), canvas widened to fit."""
    h, w = layer.shape
    extra = int(abs(k) * h) + 1
    im = Image.fromarray((layer * 255).astype(np.uint8))
    out = im.transform(
        (w + extra, h),
        Image.Transform.AFFINE,
        (1, -k, 0 if k > 0 else -extra, 0, 1, 0),
        Image.Resampling.BILINEAR,
    )
    return np.asarray(out, np.float32) * np.float32(1 / 255)


def warp(layer: np.ndarray, amp: float, period: float, phase: float, axis: int) -> np.ndarray:
    """Sine displacement of rows (axis=0) or columns (axis=1) by up to ``amp`` px (bilinear)."""
    h, w = layer.shape
    pad = int(np.ceil(amp)) + 1
    src = np.pad(layer, ((pad, pad), (0, 0)) if axis == 0 else ((0, 0), (pad, pad)))
    if axis == 0:  # shift each column vertically
        shift = amp * np.sin(2 * np.pi * np.arange(w) / period + phase)
        yy = np.arange(h + 2 * pad)[:, None] - shift[None, :]
        y0 = np.clip(np.floor(yy).astype(int), 0, h + 2 * pad - 2)
        f = (yy - y0).astype(np.float32)
        cols = np.arange(w)[None, :]
        return src[y0, cols] * (1 - f) + src[y0 + 1, cols] * f
    shift = amp * np.sin(2 * np.pi * np.arange(h) / period + phase)
    xx = np.arange(w + 2 * pad)[None, :] - shift[:, None]
    x0 = np.clip(np.floor(xx).astype(int), 0, w + 2 * pad - 2)
    f = (xx - x0).astype(np.float32)
    rows = np.arange(h)[:, None]
    return src[rows, x0] * (1 - f) + src[rows, x0 + 1] * f
