"""Text detection over a page of any size: grey working image, tiles with margins, probability map."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from engine.pipeline.precision import bfloat16_is_native, bfloat16_twin
from engine.pipeline.tiling import pad_to_multiple, tiled_apply

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
THIN_SIDE = 64  # a page narrower than this (at the working scale) is a strip: see detect_probability


def is_grey(rgb: np.ndarray) -> bool:
    """True when every pixel of an (H, W, 3) image has R = G = B."""
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (H, W) luma (ITU-R BT.601)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if is_grey(rgb):
        return rgb[:, :, 0].copy()
    return np.clip(np.rint(rgb.astype(np.float32) @ LUMA), 0, 255).astype(np.uint8)


def working_scale(height: int, width: int, short_side: int) -> float:
    """Scale at which the page is detected: its shorter side at most ``short_side`` (never upscaled).

    The model was trained on pages lettered at the size of a ~1000 px wide page; a webtoon strip 800 px wide
    and 20000 px long is detected at full size (in tiles).
    """
    return min(1.0, short_side / min(height, width))


def predict_probabilities(model: torch.nn.Module, grey: np.ndarray, bfloat16: bool = False) -> np.ndarray:
    """Run the segmentation model on one uint8 (h, w) window -> float32 (h, w, kinds): each kind's probability.

    A model gives one channel per kind of text it tells apart (``model.out_channels``; see
    ``engine.pipeline.TEXT_KINDS`` for their order). ``bfloat16`` runs the network in bfloat16: on a processor
    that does so natively about half the time, probabilities within a few hundredths of float32's. Pass
    ``model``'s bfloat16 twin (``engine.pipeline.precision.bfloat16_twin``), or it is made here.
    """
    x = torch.from_numpy(np.ascontiguousarray(grey, np.float32)).div_(255.0)[None, None]
    x, (h, w) = pad_to_multiple(x, model.stride)
    x = x.contiguous(memory_format=torch.channels_last)
    if bfloat16:
        model = bfloat16_twin(model)
        x = x.to(torch.bfloat16)
    with torch.inference_mode():
        logits = model(x)
    return torch.sigmoid(logits[0, :, :h, :w].float()).permute(1, 2, 0).numpy()


def predict_probability(model: torch.nn.Module, grey: np.ndarray, bfloat16: bool = False) -> np.ndarray:
    """float32 (h, w) probability that a pixel is text of any kind (the most likely kind's probability)."""
    return predict_probabilities(model, grey, bfloat16).max(axis=2)


def detect_probabilities(
    model: torch.nn.Module,
    rgb: np.ndarray,
    short_side: int = 1024,
    tile: int = 1024,
    margin: int = 96,
    progress: Callable[[float], None] | None = None,
    bfloat16: bool | None = None,
) -> np.ndarray:
    """Each kind's text probability at every pixel of an RGB page.

    Args:
        rgb: uint8 (H, W, 3).
        short_side: the page is detected with its shorter side scaled down to at most this.
        tile, margin: window core size and context margin at the working scale (memory stays bounded).
        bfloat16: run the model in bfloat16; None = where the processor does so natively.
    Returns:
        float32 (kinds, H, W) in [0, 1], one plane per output channel of the model.
    """
    if bfloat16 is None:
        bfloat16 = bfloat16_is_native()
    if bfloat16:
        model = bfloat16_twin(model)
    grey = to_grey(rgb)
    height, width = grey.shape
    scale = working_scale(height, width, short_side)
    if scale != 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.LANCZOS))
    lying = grey.shape[0] > grey.shape[1] and grey.shape[1] < THIN_SIDE
    if lying:
        # a strip a few pixels wide: detected lying down, where the network's channels-last convolutions run
        # along the rows (a standing 3-px strip costs as much per row as a page row)
        grey = grey.T
    short = min(grey.shape)
    if short < tile:
        # few, long windows of about a tile's area rather than one tile-sized window per short stretch
        padded = -(-short // 8) * 8
        tile = max(tile, (tile + 2 * margin) ** 2 // padded - 2 * margin)
    prob = tiled_apply(lambda window: predict_probabilities(model, window, bfloat16), grey, tile, margin, progress)
    if lying:
        prob = prob.transpose(1, 0, 2)
    kinds = prob.shape[2]
    out = np.empty((kinds, height, width), np.float32)
    for k in range(kinds):
        plane = prob[:, :, k]
        if scale != 1.0:
            plane = np.asarray(Image.fromarray(np.ascontiguousarray(plane), "F").resize(
                (width, height), Image.Resampling.BILINEAR))
        np.clip(plane, 0.0, 1.0, out=out[k])
    return out


def detect_probability(
    model: torch.nn.Module,
    rgb: np.ndarray,
    short_side: int = 1024,
    tile: int = 1024,
    margin: int = 96,
    progress: Callable[[float], None] | None = None,
    bfloat16: bool | None = None,
) -> np.ndarray:
    """float32 (H, W) in [0, 1]: the probability that a pixel is text of any kind (see detect_probabilities)."""
    prob = detect_probabilities(model, rgb, short_side, tile, margin, progress, bfloat16)
    return prob[0] if len(prob) == 1 else prob.max(axis=0)
