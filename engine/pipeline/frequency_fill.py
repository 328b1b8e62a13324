"""The frequency-selective reconstruction as a base fill (``engine.pipeline.frequency_selective``).

Each block around the hole is modelled as a sparse sum of Fourier basis functions fitted to its known pixels, so
lines, edges and screentone dots are carried into the hole instead of being averaged away as the smooth fill
(``engine.pipeline.smooth_fill``) does. It is the base fill that the inpainting network corrects when the network
was trained on it (``PConvUNet(base_fill="frequency")``); see docs/results.md for the measurements that chose it.

It costs about 30-45 us per hole pixel on one core, several times the smooth fill. A hole region whose surroundings are
flat (every pixel of its ring within ``FLAT_RING_SPREAD`` levels) has nothing to continue, and both fills give it
the flat colour: such regions take the smooth fill, and only the others pay for the reconstruction. A colour page
is reconstructed in luma and two chroma channels (YCbCr), a grey one (R = G = B) as one channel.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from engine.pipeline.detect import is_grey
from engine.pipeline.frequency_selective import CHROMA_LEVELS, LUMA_LEVELS, reconstruct
from engine.pipeline.smooth_fill import smooth_fill

FLAT_RING_SPREAD = 24  # levels between the darkest and the lightest pixel of a flat ring (each channel)
RING_PX = 2


def frequency_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill ``hole`` by frequency-selective reconstruction.

    Args:
        image: uint8 (H, W, 3) or (H, W); values inside ``hole`` are ignored. A grey RGB image (R = G = B) is
            filled as one channel (a third of the work).
        hole: bool (H, W), True = unknown.
    Returns:
        float32 array shaped like ``image``: equal to it outside ``hole``, the reconstruction inside.
    """
    values = np.asarray(image)
    if values.dtype != np.uint8:
        values = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    flat = values.ndim == 2
    grey = flat or is_grey(values)
    src = np.ascontiguousarray(values if flat else values[..., 0] if grey else values)
    out = values.astype(np.float32)
    if not hole.any():
        return out
    if hole.all():  # nothing known to reconstruct from: as the smooth fill, zero
        out[:] = 0.0
        return out
    busy = _busy_regions(src, hole)
    calm = hole & ~busy
    if calm.any():  # the flat-ringed regions: the smooth fill, which the reconstruction then sees as known
        smooth = smooth_fill(src, hole)
        src = src.copy()
        src[calm] = np.clip(np.rint(smooth[calm]), 0, 255).astype(np.uint8)
        out[calm] = smooth[calm] if flat or not grey else smooth[calm][:, None]
    if busy.any():
        filled = _reconstruct(src, ~busy)
        out[busy] = filled[busy] if flat or not grey else filled[busy][:, None]
    return out


def _reconstruct(src: np.ndarray, known: np.ndarray) -> np.ndarray:
    """One channel as it is; three in luma and chroma (ITU-R BT.601 YCbCr), each with its own block thresholds."""
    if src.ndim == 2:
        return reconstruct(src, known, LUMA_LEVELS)
    r, g, b = (src[..., c].astype(np.float32) for c in range(3))
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    blue, red = 0.564 * (b - luma) + 128, 0.713 * (r - luma) + 128
    luma = reconstruct(luma, known, LUMA_LEVELS)
    blue = reconstruct(blue, known, CHROMA_LEVELS) - 128
    red = reconstruct(red, known, CHROMA_LEVELS) - 128
    return np.stack([luma + 1.403 * red, luma - 0.714 * red - 0.344 * blue, luma + 1.773 * blue], axis=2)


def _busy_regions(src: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The hole regions (8-connected) whose ring of ``RING_PX`` known pixels is not flat, or that have no ring."""
    labels, count = ndimage.label(hole, np.ones((3, 3), bool))
    # each ring pixel belongs to a region it touches (to one of them where two regions' rings meet)
    near = ndimage.grey_dilation(labels, size=2 * RING_PX + 1)
    ring = (near > 0) & ~hole
    index = np.arange(1, count + 1)
    channels = src[..., None] if src.ndim == 2 else src
    spread = np.zeros(count)
    for c in range(channels.shape[2]):
        lo = ndimage.minimum(channels[..., c], near * ring, index)
        hi = ndimage.maximum(channels[..., c], near * ring, index)
        spread = np.maximum(spread, np.asarray(hi, float) - np.asarray(lo, float))
    has_ring = np.bincount((near * ring).ravel(), minlength=count + 1)[1:] > 0
    busy_label = np.concatenate([[False], (spread > FLAT_RING_SPREAD) | ~has_ring])
    return busy_label[labels]
