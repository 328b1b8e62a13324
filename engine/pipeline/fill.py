"""Flat fill: a masked region whose surrounding ring is one colour (a balloon, a box) gets that colour.

Exact on flat backgrounds and costs no model time; regions on tone or art are left for the inpainting model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from engine.pipeline.masks import expand_box, regions


@dataclass(frozen=True)
class FlatFillOptions:
    ring_px: int = 3                 # width of the ring looked at around each region
    tolerance: int = 12              # a ring pixel is "the same colour" within this many levels per channel
    min_flat_fraction: float = 0.97  # share of ring pixels that must be the same colour
    min_ring_pixels: int = 12        # a region with a smaller visible ring is not judged flat


def flat_fill(
    rgb: np.ndarray, mask: np.ndarray, options: FlatFillOptions = FlatFillOptions()
) -> tuple[np.ndarray, np.ndarray]:
    """Fill every flat-surrounded region of ``mask``.

    Args:
        rgb: uint8 (H, W, 3). mask: bool (H, W), the grown text mask.
    Returns:
        (filled uint8 (H, W, 3): rgb with the flat regions filled, filled bool (H, W): the pixels filled).
    """
    height, width = mask.shape
    out = rgb.copy()
    filled = np.zeros_like(mask)
    labels, boxes = regions(mask)
    ring_structure = np.ones((2 * options.ring_px + 1,) * 2, dtype=bool)
    for index, box in enumerate(boxes, start=1):
        y0, x0, y1, x1 = expand_box(box, options.ring_px, height, width)
        region = labels[y0:y1, x0:x1] == index
        ring = ndimage.binary_dilation(region, ring_structure) & ~mask[y0:y1, x0:x1]
        colours = rgb[y0:y1, x0:x1][ring]
        if len(colours) < options.min_ring_pixels:
            continue
        median = np.median(colours, axis=0)
        same = np.abs(colours.astype(np.int16) - median.astype(np.int16)).max(axis=1) <= options.tolerance
        if same.mean() >= options.min_flat_fraction:
            out[y0:y1, x0:x1][region] = np.rint(median).astype(np.uint8)
            filled[y0:y1, x0:x1] |= region
    return out, filled
