"""``make_page``: a synthetic manga/comic page with its exact text mask and its clean twin.

Order of painting: paper -> panels (tones, art, speed lines, ...) -> panel borders -> balloons -> [clean
snapshot] -> text in balloons, text over art with white outlines (fuchidori), asides, sound effects ->
identical scan degradations of the page and the clean snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.workshop.synth import art, balloons, corpus, degrade, fonts, lettering, negatives, tones

# Separate the generator's random stream from other users of the same integer seed (e.g. crop pickers).
_STREAM = 0x5E17
_RAIN_STREAM = 0x5E18  # its own stream: pages without rain keep their bytes
_NEGATIVE_STREAM = 0x5E19  # hard negatives too


@dataclass
class SynthPage:
    """A synthetic page. ``image`` uint8 (H, W, 3) RGB with text, degraded like a scan; ``text_mask`` bool
    (H, W), the exact glyph + outline pixels (coverage >= 25%); ``clean`` uint8 (H, W, 3), the same page
    without text and with the same degradations. ``sfx_mask`` bool (H, W): the part of ``text_mask`` that is
    sound effects (drawn, stylised text that belongs to the art); the rest of ``text_mask`` is lettering
    (dialogue, narration, asides, titles). Empty when not given."""

    image: np.ndarray
    text_mask: np.ndarray
    clean: np.ndarray
    sfx_mask: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        if self.sfx_mask is None:
            self.sfx_mask = np.zeros_like(self.text_mask)

    @property
    def lettering_mask(self) -> np.ndarray:
        """bool (H, W): the text that is not sound effects."""
        return self.text_mask & ~self.sfx_mask


SCRIPT_WEIGHTS = {"ja": 0.6, "en": 0.2, "ko": 0.1, "zh": 0.1}


def _choice(rng: np.random.Generator, weights: dict):
    keys = list(weights)
    p = np.array([weights[k] for k in keys], float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


# ---------------------------------------------------------------------------------------------- panels
def panel_layout(rng: np.random.Generator, H: int, W: int) -> list[list[tuple[float, float]]]:
    """Panel polygons [(x, y), ...] covering a window of a virtual page larger than (H, W)."""
    r = rng.random()
    if r < 0.2:  # inside one panel: the whole crop is art
        return [[(-5, -5), (W + 5, -5), (W + 5, H + 5), (-5, H + 5)]]
    scale = float(rng.uniform(1.0, 1.8))
    VH, VW = H * scale, W * scale
    ox, oy = -float(rng.uniform(0, VW - W + 1)), -float(rng.uniform(0, VH - H + 1))
    margin = float(rng.uniform(10, 40))
    gut = float(rng.uniform(6, 22))
    n_rows = int(rng.integers(1, 4))
    cuts = np.sort(rng.uniform(0.2, 0.8, n_rows - 1)) if n_rows > 1 else np.array([])
    ys = [margin] + list(margin + cuts * (VH - 2 * margin)) + [VH - margin]
    polys = []
    for i in range(n_rows):
        top, bot = ys[i] + (gut / 2 if i else 0), ys[i + 1] - (gut / 2 if i < n_rows - 1 else 0)
        n_cols = int(rng.integers(1, 4))
        xcuts = np.sort(rng.uniform(0.2, 0.8, n_cols - 1)) if n_cols > 1 else np.array([])
        xs = [margin] + list(margin + xcuts * (VW - 2 * margin)) + [VW - margin]
        slants = [0.0] + [float(rng.normal(0, 25)) if rng.random() < 0.3 else 0.0 for _ in xcuts] + [0.0]
        for j in range(n_cols):
            l_top = xs[j] + (gut / 2 if j else 0) + slants[j] / 2
            l_bot = xs[j] + (gut / 2 if j else 0) - slants[j] / 2
            r_top = xs[j + 1] - (gut / 2 if j < n_cols - 1 else 0) + slants[j + 1] / 2
            r_bot = xs[j + 1] - (gut / 2 if j < n_cols - 1 else 0) - slants[j + 1] / 2
            polys.append(
                [
                    (l_top + ox, top + oy),
                    (r_top + ox, top + oy),
                    (r_bot + ox, bot + oy),
                    (l_bot + ox, bot + oy),
                ]
            )
    return polys


def _bbox(poly, H: int, W: int) -> tuple[int, int, int, int]:
    xs = [p[0] for p in poly]
    ys = [p[1] for p in poly]
    return (
        max(0, int(min(xs))),
        max(0, int(min(ys))),
        min(W, int(np.ceil(max(xs))) + 1),
        min(H, int(np.ceil(max(ys))) + 1),
    )


def panel_content(rng: np.random.Generator, h: int, w: int, C: int, colour: bool, ink) -> np.ndarray:
    """Artwork filling a (h, w) panel: a base (paper, tone, gradient, grey, dark) plus 0-3 overlays."""
    base = np.ones((h, w, C), np.float32)
    if colour and rng.random() < 0.5:
        base[:] = rng.uniform(0.55, 1.0, C)
        if rng.random() < 0.5:  # soft colour wash (webtoon skies, backgrounds)
            t = tones.gradient(h, w, rng)[..., None]
            base[:] = base * (1 - t) + rng.uniform(0.4, 1.0, C).astype(np.float32) * t
    r = rng.random()
    if r < 0.22:
        base *= tones.random_tone(h, w, rng)[..., None]
    elif r < 0.3:
        base *= tones.gradient(h, w, rng, float(rng.uniform(0.2, 0.8)), 1.0)[..., None]
    elif r < 0.36:
        base *= np.float32(rng.uniform(0.35, 0.85))
    elif r < 0.4:
        base[:] = np.float32(rng.uniform(0.0, 0.15))
        ink = np.ones_like(np.asarray(ink))  # white lines on black
    painters = [
        art.line_art,
        art.hatching,
        art.speed_lines,
        art.buildings,
        art.clouds,
        art.scribble_dark,
        art.marks,
        art.black_hair,
        art.anime_eyes,
    ]
    weights = np.array([0.3, 0.12, 0.16, 0.12, 0.04, 0.06, 0.12, 0.1, 0.08])
    # pictures first (characters, objects, scenery), then procedural ink on top
    for _ in range(int(rng.choice([0, 1, 1, 1, 2, 2, 3]))):
        art.place_image(base, rng, colour=colour)
    for _ in range(int(rng.choice([0, 0, 1, 1, 2, 3]))):
        painter = painters[int(rng.choice(len(painters), p=weights / weights.sum()))]
        painter(base, rng, ink)
    return base


# ---------------------------------------------------------------------------------------------- text
def pick_font(rng: np.random.Generator, script: str, categories: tuple[str, ...], vertical: bool):
    specs = fonts.available(script, categories) or fonts.available(script)
    for _ in range(6):
        spec = specs[int(rng.integers(len(specs)))]
        if not vertical or fonts.supports_vertical(spec):
            return spec
    vert = [s for s in fonts.available(script) if fonts.supports_vertical(s)]
    return vert[0] if vert else specs[0]


def pick_text(rng: np.random.Generator, script: str, spec, sfx: bool = False) -> str:
    """A line the font can draw completely (missing glyphs would letter tofu boxes)."""
    for _ in range(8):
        s = corpus.sound_effect(rng, script) if sfx else corpus.sentence(rng, script)
        if script == "en" and not sfx and rng.random() < 0.75:
            s = s.upper()  # comic lettering is mostly capitals
        if fonts.covers(spec, s):
            return s
    return {"ja": "えっ！？", "ko": "뭐?!", "zh": "什么？！", "en": "WHAT?!"}[script]


def dialogue(
    rng: np.random.Generator, script: str, size: int, role: str, strokes: tuple[int, ...] = (0,)
) -> lettering.Lettering:
    """A block of dialogue/narration in ``script`` at font ``size`` px (role: balloon, free, aside, title)."""
    vertical = (script == "ja" and rng.random() < 0.85) or (script == "zh" and rng.random() < 0.3)
    if role == "aside":
        cats = ("hand", "rounded", "comic", "gothic")
    elif role == "title":  # chapter titles, signs, headlines
        cats = ("pop", "gothic", "brush", "mincho", "caps")
    elif script == "ja":
        cats = (
            ("mincho", "gothic", "gothic", "rounded", "mincho")
            if rng.random() < 0.85
            else ("hand", "brush", "pop")
        )
    elif script == "en":
        cats = ("comic", "hand", "caps") if rng.random() < 0.9 else ("gothic", "pop", "brush")
    else:
        cats = ("gothic", "mincho", "rounded", "hand", "pop", "brush")
    spec = pick_font(rng, script, cats, vertical)
    n_sent = 1 if role == "title" else int(rng.choice([1, 1, 1, 2, 2, 3]))
    text = "".join(
        pick_text(rng, script, spec) + ("" if script in ("ja", "zh") else " ") for _ in range(n_sent)
    )
    text = text.strip()
    if role == "title":  # a few characters or words
        text = text[: int(rng.integers(2, 11))] if script in ("ja", "zh") else " ".join(text.split()[:3])
    if script in ("ja", "zh"):
        per = int(rng.integers(3, 12)) if vertical else int(rng.integers(5, 16))
        lines = lettering.wrap_cjk(text, per)[:8]
    else:
        lines = lettering.wrap_words(text, int(rng.integers(8, 26)))[:7]
    furigana = vertical and script == "ja" and rng.random() < 0.4 and size >= 14
    return lettering.block(
        rng,
        spec,
        size,
        lines,
        vertical,
        strokes=strokes,
        furigana=furigana,
        align="start" if rng.random() < 0.4 else "centre",
    )


SHOUT_ENDINGS = {"ja": ["！", "！？", "…", "っ！", "ー！", "！！", "…！", "？", "…？"], "zh": ["！", "！？", "…", "？"],
                 "ko": ["!", "?!", "…", "!!"], "en": ["!", "?!", "...", "!!"]}
PUNCTUATION_ONLY = {"ja": ["…", "……", "？", "！？", "！", "！！", "？？", "…？", "…！"],
                    "en": ["...", "?", "!?", "!", "!!", "??", "...?", "?!"]}


def shout(rng: np.random.Generator, script: str, size: int) -> lettering.Lettering:
    """One or two short lines of dialogue type in a balloon ("うわ！", "でも…！", "WHAT?!"), or punctuation
    alone ("…", "！？"), usually larger than ordinary dialogue.

    Real pages letter shouts in the dialogue fonts at up to four times the usual size, and give whole balloons
    to an ellipsis or a question mark; a detector trained only on ordinary dialogue missed both.
    """
    vertical = (script == "ja" and rng.random() < 0.85) or (script == "zh" and rng.random() < 0.3)
    if script == "en":
        cats = ("comic", "hand", "caps")
    elif script == "ja":
        cats = ("mincho", "gothic", "gothic", "rounded", "pop")
    else:
        cats = ("gothic", "mincho", "rounded", "pop")
    spec = pick_font(rng, script, cats, vertical)
    text = pick_text(rng, script, spec)
    ending = str(rng.choice(SHOUT_ENDINGS[script]))
    if rng.random() < 0.35:  # a balloon of punctuation alone (real pages have many)
        lines = [str(rng.choice(PUNCTUATION_ONLY["en" if script == "en" else "ja"]))]
    elif script == "en":
        words = text.upper().rstrip(".!?").split() or ["WHAT"]
        start = int(rng.integers(len(words)))
        lines = [" ".join(words[start:start + int(rng.integers(1, 3))]) + ending]
    else:
        chars = [c for c in text if not c.isspace() and c not in "。、，．.,!?！？…「」"] or list("えっ")
        start = int(rng.integers(len(chars)))
        body = "".join(chars[start:start + int(rng.integers(1, 6))])
        lines = lettering.wrap_cjk(body + ending, int(rng.integers(3, 6)))[:2]
    if not fonts.covers(spec, "".join(lines)):
        lines = [{"ja": "えっ！？", "ko": "뭐?!", "zh": "什么？！", "en": "WHAT?!"}[script]]
    bold = rng.random() < 0.3
    return lettering.block(rng, spec, size, lines, vertical, strokes=(max(1, size // 24), 0) if bold else (0,),
                           align="centre")


def _sfx(rng: np.random.Generator, script: str, size: int, style: int) -> lettering.Lettering:
    cats = ("pop", "brush", "gothic", "hand", "caps")
    vertical = script in ("ja", "zh") and rng.random() < 0.5
    spec = pick_font(rng, script, cats, False)
    text = pick_text(rng, script, spec, sfx=True)
    s = max(2, int(size * rng.uniform(0.05, 0.12)))
    strokes = {0: (0,), 1: (s, 0), 2: (s * 2, s, 0), 3: (s, 0), 4: (s, 0)}[style]
    let = lettering.sound_effect(rng, spec, size, text, vertical, strokes)
    if rng.random() < 0.6:
        ang = float(rng.normal(0, 20))
        let = let.transformed(lambda a: lettering.rotate(a, ang))
    if rng.random() < 0.35:
        k = float(rng.uniform(-0.45, 0.45))
        let = let.transformed(lambda a: lettering.shear(a, k))
    if rng.random() < 0.35:
        amp, per, ph, ax = (
            float(rng.uniform(1, max(2.0, size * 0.12))),
            float(rng.uniform(60, 300)),
            float(rng.uniform(0, 6)),
            int(rng.integers(2)),
        )
        let = let.transformed(lambda a: lettering.warp(a, amp, per, ph, ax))
    return let


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


# Lettering that changes the page by less than this (mean over its mask, values in [0, 1]) is invisible, e.g.
# black text without an outline on a black panel: it is dropped rather than labelled as text.
MIN_VISIBILITY = 0.12


def _paint_lettering(canvas, mask, let: lettering.Lettering, colours: list, x: int, y: int) -> bool:
    """Paint the layers in their colours and add the lettering to ``mask``; False (nothing painted) if the
    result would be invisible."""
    H, W = mask.shape
    h, w = let.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return False
    before = canvas[y0:y1, x0:x1].copy()
    for layer, col in zip(let.layers, colours, strict=True):
        tones.paint(canvas, layer, col, x, y)
    local = let.mask()[y0 - y : y1 - y, x0 - x : x1 - x]
    if not local.any():
        return False
    change = np.abs(canvas[y0:y1, x0:x1] - before).max(axis=2)[local].mean()
    if change < MIN_VISIBILITY:
        canvas[y0:y1, x0:x1] = before
        return False
    mask[y0:y1, x0:x1] |= local
    return True


def _rint(rng: np.random.Generator, lo: int, hi: int) -> int:
    """An integer in [lo, hi] (lo if the range is empty)."""
    lo, hi = int(lo), int(hi)
    return lo if hi <= lo else int(rng.integers(lo, hi + 1))


def _free(rect: tuple[int, int, int, int], taken: list[tuple[int, int, int, int]]) -> bool:
    x0, y0, x1, y1 = rect
    return all(x1 <= a0 or a1 <= x0 or y1 <= b0 or b1 <= y0 for a0, b0, a1, b1 in taken)


def _window(arr: np.ndarray, ax: int, ay: int, x: int, y: int, h: int, w: int) -> np.ndarray:
    """The (h, w) window at page position (x, y) of ``arr`` placed at (ax, ay); zero where ``arr`` is not."""
    out = np.zeros((h, w), np.float32)
    ah, aw = arr.shape
    x0, y0 = max(x, ax), max(y, ay)
    x1, y1 = min(x + w, ax + aw), min(y + h, ay + ah)
    if x0 < x1 and y0 < y1:
        out[y0 - y : y1 - y, x0 - x : x1 - x] = arr[y0 - ay : y1 - ay, x0 - ax : x1 - ax]
    return out


def _fits(H: int, W: int, h: int, w: int) -> bool:
    return h < H - 4 and w < W - 4


# ---------------------------------------------------------------------------------------------- page
def make_page(
    seed: int,
    height: int = 768,
    width: int = 768,
    *,
    grey: bool | None = None,
    shout_share: float = 0.0,
    rain_share: float = 0.0,
    negative_share: float = 0.0,
) -> SynthPage:
    """A synthetic page (see :class:`SynthPage`). Same seed and size -> same bytes, given the installed
    packages. ``grey``: force a grey (True) or colour (False) page; default: grey 85% of the time.
    ``shout_share``: the share of balloons that hold a short shout or punctuation alone (:func:`shout`);
    ``rain_share``: the share of panels given a field of rain-like dashes (:func:`art.rain`, drawn from a random
    stream of its own); ``negative_share``: the share of panels given hard negatives (:mod:`negatives`: hands,
    flowers, bottles, steam, eyes, ornaments, clusters of strokes; a stream of their own). At 0 each, the page
    is exactly what it was before the option existed (the fixed validation sets rely on that)."""
    if height < 32 or width < 32:
        raise ValueError(f"page size {height}x{width} is too small: use at least 32x32 px")
    rng = np.random.default_rng((int(seed) & 0xFFFFFFFFFFFF, _STREAM))
    rain_rng = np.random.default_rng((int(seed) & 0xFFFFFFFFFFFF, _RAIN_STREAM))
    negative_rng = np.random.default_rng((int(seed) & 0xFFFFFFFFFFFF, _NEGATIVE_STREAM))
    H, W = int(height), int(width)
    colour = (rng.random() < 0.15) if grey is None else not grey
    C = 3 if colour else 1
    ink = (
        np.zeros(C, np.float32)
        if not colour or rng.random() < 0.7
        else rng.uniform(0, 0.35, C).astype(np.float32)
    )
    white = np.ones(C, np.float32)
    canvas = np.ones((H, W, C), np.float32)
    if colour:
        canvas[:] = (1 - rng.uniform(0, 0.05, C)).astype(np.float32)

    polys = panel_layout(rng, H, W)
    border_w = float(rng.uniform(1, 5))
    regions = []
    for poly in polys:
        x0, y0, x1, y1 = _bbox(poly, H, W)
        if x1 - x0 < 8 or y1 - y0 < 8:
            continue
        content = panel_content(rng, y1 - y0, x1 - x0, C, colour, ink)
        if rain_share and rain_rng.random() < rain_share:
            art.rain(content, rain_rng, ink if content.mean() > 0.35 else white)
        if negative_share and negative_rng.random() < negative_share:
            negatives.hard_negatives(content, negative_rng, ink if content.mean() > 0.3 else white)
        local = [(px - x0, py - y0) for px, py in poly]
        inside = tones.poly_mask(y1 - y0, x1 - x0, local)
        tones.paint(canvas, inside, content, x0, y0)
        if len(polys) > 1 or rng.random() < 0.3:
            from PIL import Image, ImageDraw

            im = Image.new("L", (x1 - x0, y1 - y0), 0)
            ImageDraw.Draw(im).line(local + [local[0]], fill=255, width=max(1, int(round(border_w))))
            tones.paint(canvas, art._cov(im, soften=True), ink, x0, y0)
        regions.append((x0, y0, x1, y1, inside))

    mask = np.zeros((H, W), bool)
    no_text = rng.random() < 0.12
    main_script = _choice(rng, SCRIPT_WEIGHTS)
    unit = min(H, W) / 768 * 1.0  # sizes are tuned for a 768 px page at typical scan resolution
    pending: list[tuple] = []  # text painted after the clean snapshot: (lettering, colours, x, y, is_sfx)

    texts: list[tuple[int, int, int, int]] = []  # rects of placed text (x0, y0, x1, y1)
    blobs: list[
        tuple[int, int, int, int]
    ] = []  # rects of placed balloons (shrunk: overlaps at rims are fine)
    if not no_text and regions:
        n_balloons = int(rng.choice([0, 1, 2, 2, 3, 3, 4, 5, 6, 7]))
        for _ in range(n_balloons):
            x0, y0, x1, y1, inside = regions[int(rng.integers(len(regions)))]
            size = max(7, int(_log_uniform(rng, 11, 46) * unit))
            if shout_share and rng.random() < shout_share:
                let = shout(rng, main_script, max(12, int(_log_uniform(rng, 20, 100) * unit)))
            else:
                # faux bold (a stroke in the text colour): shouted lines, heavy scans
                bold = size >= 14 and rng.random() < 0.15
                let = dialogue(rng, main_script, size, "balloon", (1, 0) if bold else (0,))
            th, tw = let.shape
            if not _fits(H, W, th, tw):
                continue
            lw = float(rng.choice([0.8, 1.2, 1.6, 2.0, 2.5, 3.5]))
            b = balloons.make_balloon(rng, tw, th, lw)
            bh, bw = b.fill.shape
            clip = rng.random() < 0.25  # balloon cut by its panel border
            for _try in range(6):
                # the text box stays on the page (and in the panel when clipped); the balloon may run off
                # the page or over panel borders
                if clip:
                    tx, ty = _rint(rng, max(0, x0), min(W, x1) - tw), _rint(rng, max(0, y0), min(H, y1) - th)
                else:
                    tx = _rint(rng, max(0, x0 - tw // 3), min(W - tw, x1 - tw * 2 // 3))
                    ty = _rint(rng, max(0, y0 - th // 3), min(H - th, y1 - th * 2 // 3))
                tx, ty = min(max(tx, 0), W - tw), min(max(ty, 0), H - th)
                bx, by = tx - b.text_box[0], ty - b.text_box[1]
                mx, my = bw // 6, bh // 6
                rect = (bx + mx, by + my, bx + bw - mx, by + bh - my)
                if _free(rect, texts + blobs):
                    break
            else:
                continue
            blobs.append(rect)
            texts.append((tx, ty, tx + tw, ty + th))
            dark = b.shape in ("oval", "round", "box", "spiky") and rng.random() < 0.08
            fill_col = (
                ink
                if dark
                else (white if rng.random() < 0.9 else white * np.float32(rng.uniform(0.85, 0.97)))
            )
            if b.shape == "box" and rng.random() < 0.3:
                fill_col = white * np.float32(rng.uniform(0.75, 0.95))
            b_ink, b_fill = b.ink, b.fill
            if clip:
                window = _window(inside, x0, y0, bx, by, bh, bw)
                b_ink, b_fill = b_ink * window, b_fill * window
            tones.paint(canvas, b_ink, ink, bx, by)
            tones.paint(canvas, b_fill, fill_col, bx, by)
            text_col = white if dark else ink
            pending.append((let, [text_col] * len(let.layers), tx, ty, False))

        # text straight over the art: white-outlined (fuchidori) dialogue, narration, asides
        for _ in range(int(rng.choice([0, 0, 1, 1, 2, 3]))):
            r = rng.random()
            role = "aside" if r < 0.35 else ("title" if r < 0.45 else "free")
            lo, hi = {"aside": (9, 26), "title": (34, 100), "free": (12, 48)}[role]
            size = max(7, int(_log_uniform(rng, lo, hi) * unit))
            script = main_script if rng.random() < 0.8 else _choice(rng, SCRIPT_WEIGHTS)
            outline = rng.random() < 0.75
            s = max(1, int(size * rng.uniform(0.08, 0.2))) if outline else 0
            let = dialogue(rng, script, size, role, (s, 0) if s else (0,))
            if role == "aside" and rng.random() < 0.7:
                ang = float(rng.normal(0, 10))
                let = let.transformed(lambda a, ang=ang: lettering.rotate(a, ang))
            th, tw = let.shape
            if not _fits(H, W, th, tw):
                continue
            for _try in range(6):
                tx, ty = _rint(rng, 0, W - tw), _rint(rng, 0, H - th)
                if _free(
                    (tx - size // 2, ty - size // 2, tx + tw + size // 2, ty + th + size // 2), texts + blobs
                ):
                    break
            else:
                continue
            texts.append((tx, ty, tx + tw, ty + th))
            light_text = rng.random() < 0.12
            cols = ([ink, white] if light_text else [white, ink]) if s else [white if light_text else ink]
            pending.append((let, cols, tx, ty, False))

        # sound effects: over art, panel borders and balloon rims, but not over other text
        for _ in range(int(rng.choice([0, 0, 1, 1, 2]))):
            size = max(16, int(_log_uniform(rng, 40, 190) * unit))
            script = main_script if rng.random() < 0.7 else "ja"
            style = int(rng.integers(5))
            let = _sfx(rng, script, size, style)
            th, tw = let.shape
            if not _fits(H, W, th, tw):
                continue
            for _try in range(6):
                tx, ty = _rint(rng, -tw // 4, W - tw * 3 // 4), _rint(rng, -th // 4, H - th * 3 // 4)
                if _free((tx + tw // 8, ty + th // 8, tx + tw - tw // 8, ty + th - th // 8), texts):
                    break
            else:
                continue
            texts.append((tx, ty, tx + tw, ty + th))
            letter_ink = ink
            if colour and rng.random() < 0.5:  # coloured sound effects on colour pages
                letter_ink = rng.uniform(0, 1, C).astype(np.float32)
            if style == 0:
                cols = [letter_ink]
            elif style == 1:
                cols = [white, letter_ink]
            elif style == 2:
                cols = [ink, white, letter_ink]
            elif style == 3:
                cols = [ink, white]
            else:  # tone-filled letters with an ink outline
                fill = tones.random_tone(th, tw, rng, float(rng.uniform(0.2, 0.6)))[..., None] * white
                cols = [ink, fill]
            pending.append((let, cols, tx, ty, True))

    clean = canvas.copy()
    sfx_mask = np.zeros((H, W), bool)
    for let, cols, tx, ty, is_sfx in pending:
        _paint_lettering(canvas, sfx_mask if is_sfx else mask, let, cols, tx, ty)
    image_u8, clean_u8 = degrade.degrade_pair([canvas, clean], rng)
    return SynthPage(image=image_u8, text_mask=mask | sfx_mask, clean=clean_u8, sfx_mask=sfx_mask & ~mask)
