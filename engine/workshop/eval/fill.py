"""``kesu eval fill``: choose the flat-fill settings by measurement.

Flat fill paints a grown text region with the colour of the ring around it when that ring is "flat". Too strict and
balloons go to the (slower, inexact) model; too loose and a region over a tone or a gradient becomes a flat blot.
Here every region of the grown true text mask of pages with known clean backgrounds is judged for every setting:

- synthetic pages (``engine.workshop.synth``: balloons, tones, art; exact clean twin);
- the clean real strips of Mimi and Eunice with their transcript lettered into the balloons (exact truth = the
  strip itself), when the real pages are available.

A fill is *wrong* when its mean absolute error against the truth exceeds ``GOOD_MAE`` levels (the pages' scan
noise on flat paper stays well below that: see the strictest settings' error).
The table gives, per setting, the share of hole pixels filled and the share of filled pixels that were filled
wrongly; the default settings in ``engine.pipeline.fill`` were chosen from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engine.pipeline.fill import FlatFillOptions, region_rings, ring_colour
from engine.pipeline.masks import grow

TOLERANCES = (4, 8, 12, 16, 24)
FRACTIONS = (0.90, 0.95, 0.97, 0.99)
GOOD_MAE = 3.0          # levels: a fill this close to the truth is indistinguishable on a page
GROW_PX = 4
SYNTH_PAGES = 48
SYNTH_SEED_BASE = 3_000_000_000


def synthetic_cases(count: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    from engine.workshop.synth import make_page

    for i in range(count):
        page = make_page(SYNTH_SEED_BASE + i, 768, 768)
        yield page.image, page.text_mask, page.clean


def mimi_cases(root: Path, limit: int | None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    from engine.imageio import load_image
    from engine.workshop.eval.realpages import mimi_strips
    from engine.workshop.eval.textseg import letter_strip, mimi_font

    strips = [s for s in mimi_strips(root) if s.balloons and s.lines]
    for i, strip in enumerate(strips[:limit] if limit else strips):
        clean, _ = load_image(strip.image)
        page, truth = letter_strip(strip, mimi_font(root), seed=i)
        yield page, truth, clean


def judge(cases, ring_px: int = FlatFillOptions.ring_px) -> dict:
    """Per setting (tolerance, fraction): [hole pixels, filled pixels, wrongly filled pixels, sum of abs error]."""
    table = {(t, f): np.zeros(4) for t in TOLERANCES for f in FRACTIONS}
    pages = 0
    for page, truth, clean in cases:
        pages += 1
        hole = grow(truth, GROW_PX)
        for (y0, x0, y1, x1), region, colours in region_rings(page, hole, ring_px):
            n = int(region.sum())
            for row in table.values():
                row[0] += n
            if len(colours) < FlatFillOptions.min_ring_pixels:
                continue
            colour, difference = ring_colour(colours)
            truth_pixels = clean[y0:y1, x0:x1][region].astype(np.int16)
            error = np.abs(truth_pixels - colour.astype(np.int16)).max(axis=1)
            mae = float(error.mean())
            for t in TOLERANCES:
                flat_share = float((difference <= t).mean())
                for f in FRACTIONS:
                    if flat_share >= f:
                        row = table[(t, f)]
                        row[1] += n
                        row[2] += n if mae > GOOD_MAE else 0
                        row[3] += error.sum()
    return {"pages": pages, "table": table}


def format_table(name: str, result: dict) -> str:
    lines = [f"{name} ({result['pages']} pages): share of hole pixels flat-filled / share of filled pixels wrong "
             f"(off by > {GOOD_MAE:g} levels on average) / mean abs error of filled pixels",
             f"{'tolerance':>9}  " + "  ".join(f"{'fraction ' + format(f, '.2f'):>22}" for f in FRACTIONS)]
    for t in TOLERANCES:
        cells = []
        for f in FRACTIONS:
            holes, filled, wrong, abs_sum = result["table"][(t, f)]
            share, wrong_share, mae = filled / max(1, holes), wrong / max(1, filled), abs_sum / max(1, filled)
            cells.append(f"{share:6.3f} /{wrong_share:6.3f} /{mae:5.2f}")
        lines.append(f"{t:>9}  " + "  ".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)


def run(root: Path | None, limit: int | None, log=print) -> str:
    parts = [format_table("synthetic pages", judge(synthetic_cases(min(limit or SYNTH_PAGES, SYNTH_PAGES))))]
    log(parts[-1])
    if root is not None:
        parts.append(format_table("Mimi and Eunice strips + lettering", judge(mimi_cases(root, limit))))
    return "\n\n".join(parts)
