"""Frequency-selective reconstruction of one channel (Seiler and Kaup; Genser et al.'s block sizes and iterations).

The image is cut into blocks. Each block that holds unknown pixels is modelled, over a 32x32 window around it, as a
sparse sum of Fourier basis functions fitted to the window's known pixels: one at a time, the basis function that
removes most of the weighted residual is added (half of its projection, which makes up for the basis functions
not being orthogonal on the known pixels). Pixels near the block weigh more (``rho`` to the power of the
distance), reconstructed pixels half as much as known ones. The model's values fill the block's unknown pixels.

- Blocks of 16 px whose known surroundings are calm (a low spread) are modelled whole; the others are split into
  8 px, then 4 px blocks, modelled with more basis functions (up to ``MAX_BASIS``, in proportion to the spread).
- Blocks with fewer unknown neighbours go first, so that a block deep in a hole is modelled from its neighbours'
  reconstruction. Blocks modelled at the same time never touch each other.
- Where little of a block's window is known (deep in a hole the size of a sound effect), its spread is measured
  over a 64x64 window, and where almost nothing is, it is modelled over one. Without this, such a block has no
  spread to judge, is split down to 4 px, and its tiny blocks are extrapolated from one another's guesses: the
  grey smear of big holes.

This is the method and the parameters of OpenCV contrib's ``cv2.xphoto.inpaint`` (``INPAINT_FSR_FAST``), with
three changes: the wide windows; the spread judged on the reconstruction so far (OpenCV judges it on the image as
given, so the text under the hole sways its choices); and the selection loop compiled by numba, a third of
OpenCV's time. docs/results.md has the measurements.
"""

from __future__ import annotations

import functools
import math

import numpy as np

WINDOW = 32  # the side of the window each block is modelled over (its Fourier basis)
WIDE_WINDOW = 64  # the window of a block with little known around it (deep inside a big hole)
# Where less than WIDE_SPREAD_BELOW of a block's window is known, its spread (which decides whether it is split,
# and into how many basis functions it is modelled) is measured over the wide window; where less than
# WIDE_MODEL_BELOW is, it is also modelled over the wide window (four times the work).
WIDE_SPREAD_BELOW = 0.5
WIDE_MODEL_BELOW = 0.1
# (block side, rho of the spatial weighting, the spread under which a block of that side is modelled whole);
# the last level models every block left
LUMA_LEVELS = ((16, 0.80, 0.014), (8, 0.70, 0.030), (4, 0.66, math.inf))
CHROMA_LEVELS = ((16, 0.80, 0.006), (8, 0.70, 0.010), (4, 0.66, math.inf))
RECONSTRUCTED_WEIGHT = 0.5
ORTHOGONALITY_CORRECTION = 0.5
BASIS_PER_SPREAD = 1000  # basis functions per unit of spread (standard deviation / 255) of the known pixels
MIN_BASIS, MAX_BASIS = 20, 100
_MARGIN = max(WINDOW, WIDE_WINDOW) // 2  # zero-weight margin around the image: every window lies inside it


@functools.cache
def _frequency_weight_squared(size: int) -> np.ndarray:
    """Low frequencies are preferred: 1 at zero frequency, falling linearly with the distance from it."""
    u = size / 2 - np.abs(np.arange(size) - size / 2)
    v = np.arange(size // 2 + 1)  # the columns of a real signal's half spectrum
    return ((1 - np.sqrt(u[:, None] ** 2 + v[None, :] ** 2) * math.sqrt(2) / size) ** 2).astype(np.float32)


@functools.cache
def _spatial_weighting(rho: float, size: int) -> np.ndarray:
    """Pixels weigh ``rho`` to the power of their distance from the window's centre."""
    offset = np.arange(size) + 0.5 - size / 2
    return (rho ** np.sqrt(offset[:, None] ** 2 + offset[None, :] ** 2)).astype(np.float32)


def reconstruct(channel: np.ndarray, known: np.ndarray, levels=LUMA_LEVELS) -> np.ndarray:
    """Fill the pixels of ``channel`` (H, W) where ``known`` is False.

    Returns:
        float32 (H, W): ``channel`` where known, the reconstruction elsewhere. Where nothing at all is known the
        result is 0.
    """
    h, w = channel.shape
    padded_h = -(-h // levels[0][0]) * levels[0][0] + 2 * _MARGIN
    padded_w = -(-w // levels[0][0]) * levels[0][0] + 2 * _MARGIN
    image = np.zeros((padded_h, padded_w), np.float32)
    weight = np.zeros((padded_h, padded_w), np.float32)  # 1 known, RECONSTRUCTED_WEIGHT reconstructed, 0 not
    inside = np.zeros((padded_h, padded_w), bool)
    core = (slice(_MARGIN, _MARGIN + h), slice(_MARGIN, _MARGIN + w))
    weight[core] = known
    image[core] = np.where(known, channel, 0)
    inside[core] = True
    todo = None  # the blocks of this level's grid still to model
    for level, (side, rho, calm_spread) in enumerate(levels):
        finest = level == len(levels) - 1
        grid = ((padded_h - 2 * _MARGIN) // side, (padded_w - 2 * _MARGIN) // side)
        unknown = ((weight == 0) & inside)[_MARGIN:_MARGIN + grid[0] * side, _MARGIN:_MARGIN + grid[1] * side]
        unknown_blocks = unknown.reshape(grid[0], side, grid[1], side).any(axis=(1, 3))
        todo = unknown_blocks if todo is None else todo & unknown_blocks
        if not todo.any():
            break
        ys, xs = np.nonzero(todo)
        spread = np.full(grid, np.nan, np.float32)
        if finest:
            now, later = todo, None
        else:
            windows = _windows(image, weight, ys, xs, side, WINDOW)
            spread[ys, xs] = _block_spread(image, weight, ys, xs, side, *windows)
            calm = spread < calm_spread  # NaN (nothing known around) is not calm
            now = todo & calm
            later = np.zeros((grid[0] * 2, grid[1] * 2), bool)
            split_y, split_x = np.nonzero(todo & ~calm)
            for dy in (0, 1):
                for dx in (0, 1):
                    later[split_y * 2 + dy, split_x * 2 + dx] = True
        _model_blocks(image, weight, inside, now, unknown_blocks, spread, side, rho, measure_spread=finest)
        todo = later
        if todo is None:
            break
    return image[core].copy()


def _model_blocks(image, weight, inside, blocks, unknown_blocks, spread, side, rho, measure_spread) -> None:
    """Model ``blocks`` (bool grid) in waves, those with the fewest unknown neighbours first."""
    grid = blocks.shape
    around = np.pad(unknown_blocks.astype(np.int64), 1, constant_values=1)  # outside the image counts as unknown
    unknown_neighbours = sum(around[1 + dy:1 + dy + grid[0], 1 + dx:1 + dx + grid[1]]
                             for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
    unknown_neighbours[~unknown_blocks] = -1
    remaining = blocks.copy()
    while remaining.any():
        fewest = unknown_neighbours[remaining].min()
        ys, xs = _apart(*np.nonzero(remaining & (unknown_neighbours == fewest)))
        values, weights = _windows(image, weight, ys, xs, side, WINDOW)
        block_spread = _block_spread(image, weight, ys, xs, side, values, weights) if measure_spread else spread[ys, xs]
        basis = np.clip(np.nan_to_num(np.rint(block_spread * BASIS_PER_SPREAD), nan=0.0), MIN_BASIS, MAX_BASIS)
        basis = basis.astype(np.int64)
        wide = (weights > 0).mean((1, 2)) < WIDE_MODEL_BELOW
        for window, chosen in ((WINDOW, ~wide), (WIDE_WINDOW, wide)):
            if not chosen.any():
                continue
            if window == WINDOW:
                chosen_values, chosen_weights = values[chosen], weights[chosen]
            else:
                chosen_values, chosen_weights = _windows(image, weight, ys[chosen], xs[chosen], side, window)
            model = _fit(chosen_values, chosen_weights * _spatial_weighting(rho, window), basis[chosen])
            border = (window - side) // 2
            _write(image, weight, inside, ys[chosen], xs[chosen], side,
                   model[:, border:border + side, border:border + side])
        remaining[ys, xs] = False
        unknown_neighbours[ys, xs] = -1
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    ny, nx = ys + dy, xs + dx
                    inside_grid = (ny >= 0) & (ny < grid[0]) & (nx >= 0) & (nx < grid[1])
                    np.subtract.at(unknown_neighbours, (ny[inside_grid], nx[inside_grid]), 1)


def _apart(ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The blocks, in raster order, that touch no block taken before them (8-neighbours)."""
    taken: set[tuple[int, int]] = set()
    kept_y, kept_x = [], []
    # np.nonzero gives raster order: only these four neighbours can have been taken before
    for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
        if (y - 1, x - 1) in taken or (y - 1, x) in taken or (y - 1, x + 1) in taken or (y, x - 1) in taken:
            continue
        taken.add((y, x))
        kept_y.append(y)
        kept_x.append(x)
    return np.array(kept_y, np.int64), np.array(kept_x, np.int64)


def _windows(image, weight, ys, xs, side, window):
    """The (N, window, window) windows centred on the blocks, of the values and of the weights."""
    border = (window - side) // 2
    offsets = np.arange(window)
    rows = (_MARGIN + ys * side - border)[:, None, None] + offsets[None, :, None]
    cols = (_MARGIN + xs * side - border)[:, None, None] + offsets[None, None, :]
    return image[rows, cols], weight[rows, cols]


def _block_spread(image, weight, ys, xs, side, values, weights) -> np.ndarray:
    """``_spread`` of each block's window (``values``, ``weights``: the blocks' ``WINDOW`` windows), over the wide
    window where little of that window is known."""
    spread = _spread(values, weights)
    wide = (weights > 0).mean((1, 2)) < WIDE_SPREAD_BELOW
    if wide.any():
        spread[wide] = _spread(*_windows(image, weight, ys[wide], xs[wide], side, WIDE_WINDOW))
    return spread


def _spread(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The standard deviation / 255 of each window's known and reconstructed pixels; NaN where there are none."""
    seen = weights > 0
    count = seen.sum((1, 2))
    mean = (values * seen).sum((1, 2)) / np.maximum(count, 1)
    variance = (((values - mean[:, None, None]) ** 2) * seen).sum((1, 2)) / np.maximum(count, 1)
    return np.where(count > 0, np.clip(np.sqrt(variance) / 255, 0, 1), np.nan).astype(np.float32)


def _write(image, weight, inside, ys, xs, side, blocks) -> None:
    """Put the blocks' modelled values into their unknown pixels, which become reconstructed."""
    offsets = np.arange(side)
    rows = np.broadcast_to((_MARGIN + ys * side)[:, None, None] + offsets[None, :, None], blocks.shape)
    cols = np.broadcast_to((_MARGIN + xs * side)[:, None, None] + offsets[None, None, :], blocks.shape)
    fill = (weight[rows, cols] == 0) & inside[rows, cols]
    image[rows[fill], cols[fill]] = blocks[fill]
    weight[rows[fill], cols[fill]] = RECONSTRUCTED_WEIGHT


def _fit(values: np.ndarray, weights: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """The sparse Fourier model of each (N, S, S) window, fitted to its weighted pixels."""
    total = np.maximum(weights.sum((1, 2)), 1e-12).astype(np.float32)
    residual = np.fft.rfft2(weights * values).astype(np.complex64)  # the weighted residual of the empty model
    weights_spectrum = np.fft.fft2(weights).astype(np.complex64)
    coefficients = np.zeros_like(residual)
    size = values.shape[-1]
    _compiled_select()(residual, weights_spectrum, total, basis, _frequency_weight_squared(size),
                       np.float32(ORTHOGONALITY_CORRECTION), coefficients)
    return np.fft.irfft2(coefficients * (size * size), s=(size, size)).astype(np.float32)


@functools.cache
def _compiled_select():
    """``_select`` compiled by numba, imported on first use (it takes a moment); compiled once per machine into
    numba's cache beside this module or in the user's cache folder, else once per process."""
    import numba

    try:
        return numba.njit(cache=True, nogil=True, fastmath=True)(_select)
    except RuntimeError:  # no writable cache folder anywhere: compile in each process instead (a second or two)
        return numba.njit(nogil=True, fastmath=True)(_select)


def _select(residual, weights_spectrum, total, basis, frequency_weight_squared, correction, coefficients):
    """Add basis functions to each window's model until it has ``basis`` of them (a conjugate pair counts two).

    ``residual`` (N, S, S / 2 + 1): the spectrum of the weighted residual, updated in place: adding ``c`` times the
    basis function of frequency k subtracts ``c`` times the weights' spectrum shifted by k (and its conjugate's).
    """
    size = weights_spectrum.shape[1]
    half = residual.shape[2]
    middle = size // 2
    for b in range(residual.shape[0]):
        r = residual[b]
        spectrum = weights_spectrum[b]
        model = coefficients[b]
        count = 0
        while count < basis[b]:
            best = -1.0
            bu = 0
            bv = 0
            for u in range(size):
                for v in range(half):
                    z = r[u, v]
                    score = (z.real * z.real + z.imag * z.imag) * frequency_weight_squared[u, v]
                    if score > best:
                        best = score
                        bu = u
                        bv = v
            if (bv == 0 or bv == middle) and bu > middle:  # the same frequency's conjugate: take the first half
                bu = size - bu
            c = correction * r[bu, bv] / total[b]
            model[bu, bv] += c
            if bu % middle == 0 and bv % middle == 0:  # a real basis function: no conjugate
                for u in range(size):
                    su = (u - bu) % size
                    for v in range(half):
                        r[u, v] -= c * spectrum[su, (v - bv) % size]
                count += 1
            else:
                cc = c.conjugate()
                if bv == 0 or bv == middle:  # the conjugate lies in the half spectrum too
                    model[(size - bu) % size, bv] += cc
                for u in range(size):
                    su = (u - bu) % size
                    au = (u + bu) % size
                    for v in range(half):
                        r[u, v] -= c * spectrum[su, (v - bv) % size] + cc * spectrum[au, (v + bv) % size]
                count += 2
