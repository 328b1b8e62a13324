"""Mask operations: threshold, grow, connected regions. Pure numpy/scipy on bool (H, W) arrays."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1), end-exclusive

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def threshold(prob: np.ndarray, level: float) -> np.ndarray:
    """float (H, W) probabilities -> bool (H, W) mask of ``prob >= level``."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"threshold must be between 0 and 1 (exclusive), got {level}")
    return prob >= level


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate a bool mask by ``pixels`` in every direction (a square of side 2*pixels+1, like a max-pool).

    Growing catches the anti-aliased and JPEG-smeared fringe around the letters, which the tight mask leaves.
    """
    if pixels < 0:
        raise ValueError(f"grow must be >= 0 pixels, got {pixels}")
    if pixels == 0 or not mask.any():
        return mask.copy()
    return ndimage.maximum_filter(mask.view(np.uint8), size=2 * pixels + 1, mode="constant").view(bool)


def regions(mask: np.ndarray) -> tuple[np.ndarray, list[Box]]:
    """Label 8-connected regions. Returns (labels int32 (H, W), boxes) where region i+1 has box ``boxes[i]``."""
    labels, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    boxes = [(s[0].start, s[1].start, s[0].stop, s[1].stop) for s in ndimage.find_objects(labels, count)]
    return labels.astype(np.int32, copy=False), boxes


def expand_box(box: Box, margin: int, height: int, width: int) -> Box:
    y0, x0, y1, x1 = box
    return max(0, y0 - margin), max(0, x0 - margin), min(height, y1 + margin), min(width, x1 + margin)


def merge_boxes(boxes: list[Box]) -> list[Box]:
    """Merge overlapping boxes until none overlap (the union box of each overlapping group)."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        out: list[Box] = []
        for box in sorted(merged):
            for i, other in enumerate(out):
                if box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]:
                    out[i] = (min(box[0], other[0]), min(box[1], other[1]), max(box[2], other[2]),
                              max(box[3], other[3]))
                    changed = True
                    break
            else:
                out.append(box)
        merged = out
    return merged
