"""Tiling geometry and padding: pure functions on shapes and arrays.

Boxes are end-exclusive integer tuples ``(y0, x0, y1, x1)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

Box = tuple[int, int, int, int]


def split_length(length: int, tile: int) -> list[tuple[int, int]]:
    """Split ``[0, length)`` into contiguous cores of at most ``tile``, as even as possible."""
    if length <= 0 or tile <= 0:
        raise ValueError(f"length and tile must be positive, got {length} and {tile}")
    count = -(-length // tile)
    edges = [round(i * length / count) for i in range(count + 1)]
    return [(edges[i], edges[i + 1]) for i in range(count)]


def tile_boxes(height: int, width: int, tile: int, margin: int) -> Iterator[tuple[Box, Box]]:
    """Yield (core, window) box pairs covering the image.

    The cores partition the image; each window is its core grown by ``margin`` on every side, clipped to the
    image. Run a model on the window and keep the core: the result equals the untiled one wherever the model's
    receptive field is at most ``margin``.
    """
    for y0, y1 in split_length(height, tile):
        for x0, x1 in split_length(width, tile):
            window = (max(0, y0 - margin), max(0, x0 - margin), min(height, y1 + margin), min(width, x1 + margin))
            yield (y0, x0, y1, x1), window


def tiled_apply(
    fn: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    tile: int,
    margin: int,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Apply ``fn`` (an (h, w, ...) array -> (h, w) array) window by window, stitching the cores.

    Memory is bounded by the window size whatever the image size.
    """
    height, width = image.shape[:2]
    boxes = list(tile_boxes(height, width, tile, margin))
    out: np.ndarray | None = None
    for i, ((y0, x0, y1, x1), (wy0, wx0, wy1, wx1)) in enumerate(boxes):
        result = fn(image[wy0:wy1, wx0:wx1])
        if out is None:
            out = np.empty((height, width) + result.shape[2:], dtype=result.dtype)
        out[y0:y1, x0:x1] = result[y0 - wy0 : y1 - wy0, x0 - wx0 : x1 - wx0]
        if progress is not None:
            progress((i + 1) / len(boxes))
    assert out is not None
    return out


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) at the bottom and right by reflection to multiples of ``multiple``.

    Returns the padded tensor and the original (H, W) to crop back to. Falls back to replicate padding where
    the image is too small to reflect.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)
