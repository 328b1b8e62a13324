"""Repeat fill: a region inside a regular pattern (dot or line screentone, hatching, a grid, a repeated motif) is
filled by copying the pattern from a whole number of periods away, so the dots and lines go on through the hole.

The pattern's periods are read from the known pixels near the region: the correlation of that neighbourhood with
itself shifted by (dy, dx) has a peak at every shift the pattern repeats by. A crop is taken only when its best
peak correlates at least ``min_correlation``; everything else is left for the inpainting network, which smooths
what it cannot predict. The threshold was chosen on holes drawn on real pages that ``kesu eval inpaint`` does
not score, as the lowest at which every crop it takes is filled better than by the network (docs/results.md).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage

from engine.pipeline.inpaint import crop_jobs
from engine.pipeline.masks import Box


@dataclass(frozen=True)
class RepeatFillOptions:
    max_period: int = 24           # shifts looked at, in pixels along each axis
    band_px: int = 40              # known pixels this near the region are the pattern's sample
    min_correlation: float = 0.9   # the best peak must correlate this well for the crop to be taken
    min_contrast: float = 0.4      # a peak stands this far above the lowest correlation at smaller shifts
    max_window: int = 384          # larger crops are looked at in windows of this size (the pattern may change)
    max_passes: int = 12           # copying steps: each reaches one period further into the region
    max_periods: int = 8           # the best-correlated periods copied along (each both ways)


MIN_OVERLAP = 200  # pixels both known at a shift, for its correlation to count
MIN_VARIANCE = 4.0  # grey levels squared: a flatter sample has no pattern to repeat


def shift_correlation(grey: np.ndarray, sample: np.ndarray, max_shift: int, workers: int = 2) -> np.ndarray:
    """Pearson correlation of the ``sample`` pixels of ``grey`` with the pixels (dy, dx) away.

    Args:
        grey: float (h, w) in grey levels. sample: bool (h, w), the pixels that take part (each pair needs both
            ends in it). workers: threads for the Fourier transforms.
    Returns:
        float32 (2 max_shift + 1, 2 max_shift + 1): entry [max_shift + dy, max_shift + dx]; -1 where the pair
        count is under MIN_OVERLAP or either end is nearly flat.
    """
    h, w = grey.shape
    shape = (fft.next_fast_len(h + max_shift, real=True), fft.next_fast_len(w + max_shift, real=True))
    m = sample.astype(np.float32)
    # centred and scaled so that single precision keeps the sums' differences (a correlation needs 2 digits)
    x = np.where(sample, (grey - grey[sample].mean()) / 64.0, 0.0).astype(np.float32) if sample.any() else m
    fm, fx, fxx = fft.rfft2(np.stack([m, x, x * x]), shape, workers=workers)
    # sum over p of a(p) b(p + d) for the pairs (a, b) = (m, m), (x, m), (x, x), (xx, m)
    sums = fft.irfft2(np.conj(np.stack([fm, fx, fx, fxx])) * np.stack([fm, fm, fx, fm]), shape, workers=workers)
    rows = np.r_[shape[0] - max_shift:shape[0], 0:max_shift + 1]
    cols = np.r_[shape[1] - max_shift:shape[1], 0:max_shift + 1]
    n, s_here, xx, sq_here = sums[:, rows][:, :, cols].astype(np.float64)
    # the sums over p + d of the pairs are the same sums at -d
    s_there, sq_there = s_here[::-1, ::-1], sq_here[::-1, ::-1]
    n = np.maximum(n, 1.0)
    cross = xx - s_here * s_there / n
    var_here = sq_here - s_here ** 2 / n
    var_there = sq_there - s_there ** 2 / n
    floor = MIN_VARIANCE / 64.0 ** 2 * n
    valid = (n >= MIN_OVERLAP) & (var_here >= floor) & (var_there >= floor)
    corr = np.where(valid, cross / np.sqrt(np.maximum(var_here * var_there, 1e-12)), -1.0)
    return np.clip(corr, -1.0, 1.0).astype(np.float32)


def pattern_periods(corr: np.ndarray, min_correlation: float, min_contrast: float) -> list[tuple[float, int, int]]:
    """(correlation, dy, dx) of the shifts a pattern repeats by, best first, one of each opposite pair.

    A period is a local maximum of ``corr`` (``shift_correlation``'s output) at least 2 px from no shift, at
    least ``min_correlation``, and at least ``min_contrast`` above the lowest correlation at smaller shifts (a
    smooth gradient correlates well at short shifts too, but falls steadily with distance: it has no such peak).
    """
    r = corr.shape[0] // 2
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    distance = np.hypot(dy, dx)
    peaks = (corr >= ndimage.maximum_filter(corr, 3) - 1e-5) & (corr >= min_correlation) & (distance >= 2)
    peaks &= (dy > 0) | ((dy == 0) & (dx > 0))  # corr is symmetric: a period and its opposite are one period
    out = []
    for y, x in np.argwhere(peaks):
        inside = (distance <= distance[y, x]) & (corr > -1.0)
        if corr[y, x] - corr[inside].min() >= min_contrast:
            out.append((float(corr[y, x]), int(y - r), int(x - r)))
    out.sort(key=lambda p: (-p[0], abs(p[1]) + abs(p[2])))
    return out


def copy_along_periods(rgb: np.ndarray, hole: np.ndarray, periods, max_passes: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``hole`` pixel by pixel from the pixel one period away (the best-correlated period whose other end is
    known), pass after pass, each pass using the pixels the previous ones filled.

    Returns (uint8 (h, w, 3) with the copied pixels, bool (h, w) the pixels filled).
    """
    h, w = hole.shape
    out = rgb.copy()
    known = ~hole
    ys, xs = np.nonzero(hole)
    shifts = np.array([(s * dy, s * dx) for _, dy, dx in periods for s in (1, -1)])
    for _ in range(max_passes):
        if not len(ys):
            break
        source = np.full(len(ys), -1)
        for index, (dy, dx) in enumerate(shifts):
            sy, sx = ys + dy, xs + dx
            inside = (source < 0) & (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
            inside[inside] = known[sy[inside], sx[inside]]
            source[inside] = index
        took = source >= 0
        if not took.any():
            break
        offsets = shifts[source[took]]
        ty, tx = ys[took], xs[took]
        out[ty, tx] = out[ty + offsets[:, 0], tx + offsets[:, 1]]
        known[ty, tx] = True
        ys, xs = ys[~took], xs[~took]
    return out, hole & known


def window_periods(rgb: np.ndarray, hole: np.ndarray, core: Box, options: RepeatFillOptions):
    """The periods of the pattern around the hole pixels of ``core`` (page coordinates) in the window ``rgb``,
    ``hole`` (the window's own); [] when there is no regular pattern there."""
    cy0, cx0, cy1, cx1 = core
    core_hole = np.zeros_like(hole)
    core_hole[cy0:cy1, cx0:cx1] = hole[cy0:cy1, cx0:cx1]
    if not core_hole.any():
        return []
    near = ndimage.distance_transform_edt(~core_hole) <= options.band_px
    corr = shift_correlation(rgb.mean(axis=2, dtype=np.float32), near & ~hole, options.max_period, workers=1)
    return pattern_periods(corr, options.min_correlation, options.min_contrast)[:options.max_periods]


def repeat_fill(
    rgb: np.ndarray, hole: np.ndarray, options: RepeatFillOptions = RepeatFillOptions(), workers: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Fill the regions of ``hole`` that sit in a regular pattern.

    Args:
        rgb: uint8 (H, W, 3). hole: bool (H, W). workers: threads looking for patterns (one window each).
    Returns:
        (uint8 (H, W, 3): rgb with those regions filled, bool (H, W): the pixels filled).
    """
    # each crop of regions with their sample band around them; larger ones in windows that overlap by the band
    jobs = crop_jobs(hole, options.band_px, options.max_window, options.band_px)

    def periods_of(job):
        (wy0, wx0, wy1, wx1), (cy0, cx0, cy1, cx1) = job
        core = (cy0 - wy0, cx0 - wx0, cy1 - wy0, cx1 - wx0)
        return window_periods(rgb[wy0:wy1, wx0:wx1], hole[wy0:wy1, wx0:wx1], core, options)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        found = list(pool.map(periods_of, jobs))
    out = rgb.copy()
    filled = np.zeros_like(hole)
    for ((wy0, wx0, wy1, wx1), (cy0, cx0, cy1, cx1)), periods in zip(jobs, found, strict=True):
        if not periods:
            continue
        # a window overlapping one filled before takes those pixels as known
        window_hole = hole[wy0:wy1, wx0:wx1] & ~filled[wy0:wy1, wx0:wx1]
        copied, done = copy_along_periods(out[wy0:wy1, wx0:wx1], window_hole, periods, options.max_passes)
        core = np.zeros_like(done)
        core[cy0 - wy0:cy1 - wy0, cx0 - wx0:cx1 - wx0] = True
        done &= core
        out[wy0:wy1, wx0:wx1][done] = copied[done]
        filled[wy0:wy1, wx0:wx1] |= done
    return out, filled
