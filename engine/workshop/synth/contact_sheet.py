"""Contact sheets for looking at the generator: ``python -m engine.workshop.synth.contact_sheet -o sheet.png``.

Pages: each cell is the page | the page with the text mask in red. ``--inpaint``: image | image with the hole.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image


def overlay(image: np.ndarray, mask: np.ndarray, colour=(255, 0, 0), alpha: float = 0.6) -> np.ndarray:
    """uint8 (H, W, 3): ``image`` with ``mask`` (bool (H, W)) blended in ``colour``."""
    out = image.astype(np.float32)
    out[mask] = out[mask] * (1 - alpha) + np.asarray(colour, np.float32) * alpha
    return out.astype(np.uint8)


def sheet(n: int, seed: int, size: int, inpaint: bool, cols: int) -> tuple[Image.Image, list[float]]:
    from engine.workshop.synth import make_inpaint_sample, make_page

    cells, times = [], []
    for i in range(n):
        t = time.perf_counter()
        if inpaint:
            s = make_inpaint_sample(seed + i, size, size)
            image, mask = s.image, s.hole
        else:
            p = make_page(seed + i, size, size)
            image, mask = p.image, p.text_mask
        times.append(time.perf_counter() - t)
        cells.append(np.concatenate([image, np.full((size, 4, 3), 255, np.uint8), overlay(image, mask)], 1))
    rows = []
    gap = np.full((cells[0].shape[0], 12, 3), 80, np.uint8)
    for r in range(0, n, cols):
        row = cells[r : r + cols]
        row += [np.zeros_like(cells[0])] * (cols - len(row))
        rows.append(np.concatenate([x for c in row for x in (c, gap)][:-1], 1))
        rows.append(np.full((12, rows[-1].shape[1], 3), 80, np.uint8))
    return Image.fromarray(np.concatenate(rows[:-1], 0)), times


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-o", "--output", required=True, help="PNG file to write")
    ap.add_argument("--n", type=int, default=16, help="number of samples")
    ap.add_argument("--seed", type=int, default=0, help="first seed")
    ap.add_argument("--size", type=int, default=None, help="px per side (default 768, inpaint 256)")
    ap.add_argument("--cols", type=int, default=4)
    ap.add_argument("--inpaint", action="store_true", help="inpainting samples instead of pages")
    args = ap.parse_args(argv)
    size = args.size or (256 if args.inpaint else 768)
    img, times = sheet(args.n, args.seed, size, args.inpaint, args.cols)
    img.save(args.output)
    print(
        f"wrote {args.output}: {args.n} samples, {np.mean(times) * 1000:.0f} ms mean, "
        f"{np.max(times) * 1000:.0f} ms max per sample"
    )


if __name__ == "__main__":
    main()
