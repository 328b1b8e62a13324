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


# snap_to_ink's trimming (chosen with `kesu eval textseg` on probability maps of every evaluation page)
TRIM_CONTRAST = 0.3   # a mask pixel this little of the way from the background's grey to the text's looks like paper
OUTLINE_CONTRAST = 0.5  # ...unless it lies this far beyond the background on the other side: a white outline
TRIM_BESIDE = 2 / 3   # trimmed pixels lie within this share of the snap radius of pixels that look like ink


def snap_to_ink(mask: np.ndarray, grey: np.ndarray, radius: int, confident: np.ndarray | None = None) -> np.ndarray:
    """The tight mask fitted to the glyphs' ink: the pixels up to ``radius`` away that look like its ink join
    it, and (given ``confident``) the pixels of the mask beside the ink that look like the paper leave it.

    The detector's probabilities come from features at a quarter of its working resolution, so a threshold
    leaves the edges of the glyphs just outside the mask and the gaps between strokes inside it. Each connected
    group of the mask (within ``radius``) has a text level (the mean grey under the mask) and a background level
    (the mean grey of the ring around it); a ring pixel joins the mask when its grey is nearer the text level.
    Works for dark text on light paper and light text on black balloons alike.

    Trimming: with the text level taken from the ``confident`` pixels instead (nearer the ink's own grey), a
    mask pixel whose grey lies less than ``TRIM_CONTRAST`` of the way from the background to the text leaves the
    mask when it is not confident itself and lies beside pixels that do look like ink (the counters of glyphs,
    the gaps between them, the rim a coarse threshold leaves). A pixel far beyond the background on the side
    away from the text stays: that is the white outline (fuchidori) round dark text on artwork.

    Args:
        mask: bool (H, W) tight text mask.
        grey: uint8 (H, W) page in grey.
        radius: pixels (>= 0); 0 returns a copy of ``mask``.
        confident: bool (H, W), the pixels the detector is sure of (e.g. probability >= 0.8), never trimmed;
            None: no trimming.
    Returns:
        bool (H, W). A superset of ``mask`` without ``confident``; with it, the mask may also lose pixels.
    """
    if radius < 0:
        raise ValueError(f"snap radius must be >= 0 pixels, got {radius}")
    if mask.shape != grey.shape:
        raise ValueError(f"mask {mask.shape} and grey page {grey.shape} differ in size")
    if confident is not None and confident.shape != mask.shape:
        raise ValueError(f"confident pixels {confident.shape} and mask {mask.shape} differ in size")
    if radius == 0 or not mask.any():
        return mask.copy()
    near = grow(mask, radius)
    labels, count = ndimage.label(near, structure=_EIGHT_CONNECTED)
    # work on the mask's and the ring's pixels only (a few percent of a page), by flat index
    inside, ring = np.flatnonzero(mask), np.flatnonzero(near & ~mask)
    flat_labels, flat_grey = labels.ravel(), grey.ravel().astype(np.float32)

    def level(pixels: np.ndarray) -> np.ndarray:
        """Mean grey of the given pixels in each group (NaN where a group has none)."""
        total = np.bincount(flat_labels[pixels], weights=flat_grey[pixels], minlength=count + 1)
        n = np.bincount(flat_labels[pixels], minlength=count + 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return total / n

    text_level, ring_level = level(inside), level(ring)
    group, value = flat_labels[ring], flat_grey[ring]
    nearer_text = np.abs(value - text_level[group]) < np.abs(value - ring_level[group])
    out = mask.copy()
    out.ravel()[ring[nearer_text]] = True
    if confident is None:
        return out

    sure = np.flatnonzero(confident & near)
    ink_level = level(sure)
    ink_level = np.where(np.isnan(ink_level), text_level, ink_level)  # a group with no confident pixel
    pixels = np.flatnonzero(near)
    background = ring_level[flat_labels[pixels]]
    with np.errstate(invalid="ignore", divide="ignore"):
        contrast = (flat_grey[pixels] - background) / (ink_level[flat_labels[pixels]] - background)
    looks_inky = np.zeros(mask.size, bool)
    looks_inky[pixels[contrast >= TRIM_CONTRAST]] = True
    beside = grow(looks_inky.reshape(mask.shape), max(1, round(TRIM_BESIDE * radius))).ravel()
    paper_like = pixels[(contrast < TRIM_CONTRAST) & (contrast > -OUTLINE_CONTRAST)]  # NaN contrast: neither
    trimmed = paper_like[mask.ravel()[paper_like] & ~confident.ravel()[paper_like] & beside[paper_like]]
    out.ravel()[trimmed] = False
    return out


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
