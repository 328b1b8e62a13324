"""``letter_over_art``: synthetic lettering painted onto a given clean background (e.g. a real comic strip whose
text the author erased), so the detector learns real line art, thick outlines and real tones as hard negatives.

Some pages get no text at all (pure negatives). Dialogue goes into empty light areas, as in a balloon; free text
gets a white outline (fuchidori) over the art; sound effects overlap anything. The background is never changed
outside the lettering, before the scan degradations that page and clean twin share.
"""

from __future__ import annotations

import numpy as np

from engine.workshop.synth import degrade, page
from engine.workshop.synth.page import SynthPage

_STREAM = 0x0A27
NO_TEXT_SHARE = 0.3


def _light_spot(rng: np.random.Generator, dark_sum: np.ndarray, h: int, w: int, pad: int, taken) -> tuple | None:
    """Top-left (x, y) of an h x w box (plus ``pad`` around) with no dark pixel and no overlap, or None."""
    H, W = dark_sum.shape[0] - 1, dark_sum.shape[1] - 1
    for _try in range(40):
        x, y = page._rint(rng, pad, W - w - pad), page._rint(rng, pad, H - h - pad)
        x0, y0, x1, y1 = x - pad, y - pad, x + w + pad, y + h + pad
        if x0 < 0 or y0 < 0 or x1 > W or y1 > H:
            return None
        dark = dark_sum[y1, x1] - dark_sum[y0, x1] - dark_sum[y1, x0] + dark_sum[y0, x0]
        if dark == 0 and page._free((x0, y0, x1, y1), taken):
            return x, y
    return None


def letter_over_art(art: np.ndarray, seed: int, text_scale: float = 1.0) -> SynthPage:
    """Paint seeded lettering over ``art`` (uint8 (H, W) grey or (H, W, 3) RGB); same inputs, same bytes.

    ``text_scale`` multiplies the font sizes (1.0: sizes of a 768-px page at typical scan resolution).
    """
    if art.dtype != np.uint8 or art.ndim not in (2, 3) or min(art.shape[:2]) < 32:
        raise ValueError(f"art must be a uint8 grey or RGB image of at least 32x32 px, got {art.dtype} {art.shape}")
    rng = np.random.default_rng((int(seed) & 0xFFFFFFFFFFFF, _STREAM))
    canvas = art.astype(np.float32)[..., None] / 255 if art.ndim == 2 else art.astype(np.float32) / 255
    H, W, C = canvas.shape
    ink, white = np.zeros(C, np.float32), np.ones(C, np.float32)
    mask = np.zeros((H, W), bool)
    sfx_mask = np.zeros((H, W), bool)
    clean = canvas.copy()
    if rng.random() >= NO_TEXT_SHARE:
        dark = (canvas.mean(axis=2) < 0.75).astype(np.int32)
        dark_sum = np.zeros((H + 1, W + 1), np.int64)
        dark_sum[1:, 1:] = dark.cumsum(0).cumsum(1)
        script = page._choice(rng, page.SCRIPT_WEIGHTS)
        taken: list[tuple[int, int, int, int]] = []
        for _ in range(int(rng.choice([1, 2, 2, 3, 4, 5]))):
            kind = rng.random()
            if kind < 0.55:  # dialogue in an empty light area (an erased balloon, the sky, paper)
                size = max(7, int(page._log_uniform(rng, 10, 44) * text_scale))
                let = page.dialogue(rng, script, size, "balloon")
                h, w = let.shape
                spot = _light_spot(rng, dark_sum, h, w, max(2, size // 3), taken)
                if spot is None:
                    continue
                cols = [ink] * len(let.layers)
                is_sfx = False
            elif kind < 0.85:  # white-outlined text or an aside straight over the art
                role = "aside" if rng.random() < 0.4 else "free"
                size = max(7, int(page._log_uniform(rng, 10, 40) * text_scale))
                s = max(1, int(size * rng.uniform(0.08, 0.2))) if rng.random() < 0.7 else 0
                let = page.dialogue(rng, script, size, role, (s, 0) if s else (0,))
                h, w = let.shape
                if not page._fits(H, W, h, w):
                    continue
                spot = page._rint(rng, 0, W - w), page._rint(rng, 0, H - h)
                cols = [white, ink] if s else [ink]
                is_sfx = False
            else:  # a sound effect
                size = max(16, int(page._log_uniform(rng, 40, 160) * text_scale))
                style = int(rng.integers(4))
                let = page._sfx(rng, script, size, style)
                h, w = let.shape
                if not page._fits(H, W, h, w):
                    continue
                spot = page._rint(rng, -w // 4, W - w * 3 // 4), page._rint(rng, -h // 4, H - h * 3 // 4)
                cols = {0: [ink], 1: [white, ink], 2: [ink, white, ink], 3: [ink, white]}[style]
                is_sfx = True
            x, y = spot
            if not page._free((x, y, x + w, y + h), taken):
                continue
            if page._paint_lettering(canvas, sfx_mask if is_sfx else mask, let, cols, x, y):
                taken.append((x, y, x + w, y + h))
    image_u8, clean_u8 = degrade.degrade_pair([canvas, clean], rng)
    return SynthPage(image=image_u8, text_mask=mask | sfx_mask, clean=clean_u8, sfx_mask=sfx_mask & ~mask)
