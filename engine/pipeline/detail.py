"""Detail for the deep inside of big holes, copied from the art around them.

Deep inside a hole the size of a sound effect, every fill Kesu has (the frequency-selective reconstruction, the
network's correction of it) can only guess the art's broad shapes: hatching, hair strands and tone fade to a smooth
patch. Here the fill keeps its broad shapes and gains the fine detail of the known art that looks most like them:
for each 8 px block deep in the hole, the known 16 px window whose blurred content best matches the blurred fill
around the block gives its fine detail (what its blur removed), scaled by ``gain``. Near the hole's edge the fill
already continues the real lines, so the detail fades in from ``deep_px - ramp_px`` to ``deep_px`` pixels deep.

Measured on the big holes of ``kesu eval inpaint --big-holes`` and on the text-shaped holes (docs/results.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage


@dataclass(frozen=True)
class DetailOptions:
    sigma: float = 2.0        # the blur (Gaussian, px) that splits broad shapes from fine detail
    deep_px: float = 14.0     # hole pixels this deep get the full detail...
    ramp_px: float = 4.0      # ...fading in over this many pixels before it
    gain: float = 0.7         # the share of the matched detail added
    block: int = 8            # the blocks that get one source each
    window: int = 16          # the windows compared (the block and its surroundings)
    max_candidates: int = 20_000  # known windows looked at, at most (a coarser grid on large crops)
    chunk: int = 256          # blocks compared at a time (bounds the memory of the comparison)


def _blur_known(grey: np.ndarray, known: np.ndarray, sigma: float) -> np.ndarray:
    """The blur of the known pixels alone (normalised convolution: the hole does not darken its edge)."""
    weight = ndimage.gaussian_filter(known.astype(np.float32), sigma)
    return ndimage.gaussian_filter(np.where(known, grey, 0).astype(np.float32), sigma) / np.maximum(weight, 1e-6)


def detail(grey: np.ndarray, hole: np.ndarray, options: DetailOptions = DetailOptions()) -> np.ndarray:
    """The fine detail to add to a filled grey crop: float32 (h, w), zero outside the deep part of ``hole``.

    Args:
        grey: float (h, w) in grey levels, the hole already filled (its broad shapes guide the match).
        hole: bool (h, w), True = filled pixels; the others are the art the detail is copied from.
    """
    height, width = grey.shape
    o = options
    depth = ndimage.distance_transform_edt(hole) if hole.any() else np.zeros(grey.shape)
    out = np.zeros(grey.shape, np.float32)
    if depth.max() <= o.deep_px - o.ramp_px or min(height, width) < o.window:
        return out
    known = ~hole
    broad_known = _blur_known(grey, known, o.sigma)
    fine = np.where(known, grey - broad_known, 0).astype(np.float32)
    broad_fill = ndimage.gaussian_filter(grey.astype(np.float32), o.sigma)

    # the sources: windows wholly in the known art, on a grid fine enough to find a match and coarse enough to
    # bound the work
    whole = ndimage.minimum_filter(known, size=o.window, mode="constant", cval=False)
    half = o.window // 2
    centres = np.zeros_like(whole)
    centres[half:height - half + 1, half:width - half + 1] = whole[half:height - half + 1, half:width - half + 1]
    step = max(1, int(np.ceil(np.sqrt(centres.sum() / o.max_candidates))))
    cy, cx = np.nonzero(centres[::step, ::step])
    cy, cx = cy * step - half, cx * step - half  # top-left corners of the source windows
    if cy.size == 0:
        return out
    sources = sliding_window_view(broad_known, (o.window, o.window))[cy, cx].reshape(cy.size, -1)
    source_norms = (sources * sources).sum(axis=1)

    # the targets: blocks with a pixel deep enough, whose window lies inside the crop
    margin = (o.window - o.block) // 2
    deep = depth > o.deep_px - o.ramp_px
    blocks = [(y, x) for y in range(margin, height - o.block - margin + 1, o.block)
              for x in range(margin, width - o.block - margin + 1, o.block) if deep[y:y + o.block, x:x + o.block].any()]
    if not blocks:
        return out
    fill_windows = sliding_window_view(broad_fill, (o.window, o.window))
    fine_blocks = sliding_window_view(fine, (o.block, o.block))
    strength = np.clip((depth - (o.deep_px - o.ramp_px)) / o.ramp_px, 0, 1).astype(np.float32) * o.gain
    for start in range(0, len(blocks), o.chunk):
        part = blocks[start:start + o.chunk]
        targets = np.stack([fill_windows[y - margin, x - margin].ravel() for y, x in part])
        # squared distance to every source, less the targets' own norms (the same for every source)
        best = np.argmin(source_norms[None, :] - 2 * targets @ sources.T, axis=1)
        for (y, x), k in zip(part, best, strict=True):
            block = np.s_[y:y + o.block, x:x + o.block]
            out[block] = strength[block] * fine_blocks[cy[k] + margin, cx[k] + margin]
    return out  # zero outside the hole: its strength there is 0 (no depth)
