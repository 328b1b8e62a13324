"""Make the README's sample page and its before/after picture with the installed weights.

    python -m engine.workshop.make_demo    # writes engine/samples/demo-page.png and demo-before-after.png

The page comes from Kesu's own synthetic generator (no real pages enter the repository). The picture shows, left
to right: the page, the text mask Kesu found (red over a faded page), and the ``kesu clean`` result.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "samples"
PANEL_WIDTH = 520
GAP = 12


def mask_overlay(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The page faded to light grey, with the mask in red on top."""
    faded = (255 - (255 - rgb.astype(np.float32)) * 0.35).astype(np.uint8)
    out = faded.copy()
    out[mask] = (220, 30, 30)
    return out


def side_by_side(panels: list[np.ndarray], labels: list[str]) -> Image.Image:
    """Panels scaled to PANEL_WIDTH, in one row on white, each with a label above."""
    scaled = []
    for p in panels:
        img = Image.fromarray(p)
        h = round(img.height * PANEL_WIDTH / img.width)
        scaled.append(img.resize((PANEL_WIDTH, h), Image.Resampling.LANCZOS))
    label_h = 28
    height = max(s.height for s in scaled) + label_h
    sheet = Image.new("RGB", (len(scaled) * PANEL_WIDTH + (len(scaled) - 1) * GAP, height), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (s, label) in enumerate(zip(scaled, labels, strict=True)):
        x = i * (PANEL_WIDTH + GAP)
        sheet.paste(s, (x, label_h))
        draw.text((x + 4, 6), label, fill=(0, 0, 0))
    return sheet


def main() -> int:
    sys.path.insert(0, str(HERE.parents[1]))
    from engine.pipeline import Engine
    from engine.workshop.synth import make_page

    page = SAMPLES / "demo-page.png"
    if not page.exists():
        Image.fromarray(make_page(1013, 1400, 1000, grey=True).image).convert("L").save(page)
    rgb = np.asarray(Image.open(page).convert("RGB"))
    result = Engine.load().clean(rgb)
    sheet = side_by_side(
        [rgb, mask_overlay(rgb, result.grown_mask), result.image],
        ["page (synthetic)", "text mask found (grown)", "kesu clean"],
    )
    out = SAMPLES / "demo-before-after.png"
    sheet.save(out, optimize=True)
    print(f"wrote {out} ({sheet.width}x{sheet.height}); {result.grown_mask.mean():.1%} of the page masked")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
