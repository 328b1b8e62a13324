"""Smooth fill: each hole pixel becomes the average of its four neighbours (a discrete Laplace equation).

The hole takes the smoothest surface that meets the known pixels around it: lines that cross a thin hole are
bridged, gradients continue, flat areas stay exact. It cannot make texture; the inpainting network adds that on
top (its output is this fill plus a learned correction). One sparse factorisation per call, solved for every
channel at once.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

# A hole component that touches no known pixel has no boundary to meet: this small pull towards the mean of the
# known pixels makes it solvable (that mean is then its value) and is negligible everywhere else.
_ANCHOR = 1e-6


def smooth_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Solve the Laplace equation inside ``hole`` with the known pixels as boundary.

    Args:
        image: (H, W, C) or (H, W), any numeric type; values inside ``hole`` are ignored.
        hole: bool (H, W), True = unknown.
    Returns:
        float32 array shaped like ``image``: equal to it outside ``hole``, the smooth fill inside.
    """
    values = np.asarray(image, dtype=np.float64)
    flat = values.ndim == 2
    if flat:
        values = values[..., None]
    out = values.copy()
    ys, xs = np.nonzero(hole)
    n = len(ys)
    if n:
        known = ~hole
        fallback = values[known].mean(axis=0) if known.any() else np.zeros(values.shape[2])
        height, width = hole.shape
        index = np.full(hole.shape, -1, dtype=np.int64)
        index[ys, xs] = np.arange(n)
        rows, cols = [np.arange(n)], [np.arange(n)]
        entries = []
        degree = np.full(n, _ANCHOR)
        rhs = np.tile(_ANCHOR * fallback, (n, 1))
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            ny, nx = ys + dy, xs + dx
            inside = np.nonzero((ny >= 0) & (ny < height) & (nx >= 0) & (nx < width))[0]
            degree[inside] += 1.0
            neighbour = index[ny[inside], nx[inside]]
            unknown = neighbour >= 0
            rows.append(inside[unknown])
            cols.append(neighbour[unknown])
            entries.append(np.full(int(unknown.sum()), -1.0))
            boundary = inside[~unknown]
            rhs[boundary] += values[ny[boundary], nx[boundary]]
        matrix = sparse.csc_matrix(
            (np.concatenate([degree, *entries]), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n),
            dtype=np.float32,
        )
        # the matrix is symmetric and diagonally dominant: a symmetric ordering and no pivoting factor it in
        # two thirds of the time of the general defaults (measured on 5%-of-a-page crops), same solution; single
        # precision takes a fifth less again and is within 0.05 of a level of the double-precision fill
        lu = splu(matrix, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        out[ys, xs] = lu.solve(rhs.astype(np.float32))
    out = out.astype(np.float32)
    return out[..., 0] if flat else out
