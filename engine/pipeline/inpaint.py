"""Inpainting of masked regions with the partial-convolution U-Net, on padded crops pasted back in the mask.

A residual network (``model.residual``) is given a base fill of each crop and corrects it: the fill it was
trained on (``model.base_fill``: the smooth fill or the frequency-selective reconstruction). The base fills (one
core each) are computed on a thread pool while the network works through the crops (or the windows of a large
crop), and the network runs in bfloat16 where the processor computes it natively.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from engine.pipeline.detail import DetailOptions, detail
from engine.pipeline.detect import is_grey
from engine.pipeline.frequency_fill import frequency_fill
from engine.pipeline.masks import Box, expand_box, merge_boxes, regions
from engine.pipeline.precision import bfloat16_is_native, bfloat16_twin
from engine.pipeline.smooth_fill import smooth_fill
from engine.pipeline.tiling import pad_to_multiple, tile_boxes

# the base fills by their names in PConvUNet(base_fill=...): (rgb, hole) -> float32 (h, w, 3) in 0..255
BASE_FILLS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "smooth": smooth_fill,
    "frequency": frequency_fill,
}


def base_fill_of(model: torch.nn.Module) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The fill a residual ``model`` corrects."""
    return BASE_FILLS[getattr(model, "base_fill", "smooth")]


def crop_boxes(hole: np.ndarray, context: int) -> list[Box]:
    """Non-overlapping crops, each holding whole hole regions plus ``context`` pixels around them."""
    height, width = hole.shape
    _, boxes = regions(hole)
    return merge_boxes([expand_box(b, context, height, width) for b in boxes])


def crop_jobs(hole: np.ndarray, context: int, max_window: int, margin: int) -> list[tuple[Box, Box]]:
    """(window, core) box pairs in page coordinates: the network runs on each window and its core is kept.

    A crop up to ``max_window`` on a side is one job (window = core); a larger one is split into windows of
    that size that overlap by ``margin`` (memory stays bounded on any page). Smallest windows first.
    """
    jobs = []
    for y0, x0, y1, x1 in crop_boxes(hole, context):
        if max(y1 - y0, x1 - x0) <= max_window:
            jobs.append(((y0, x0, y1, x1), (y0, x0, y1, x1)))
            continue
        for (cy0, cx0, cy1, cx1), (wy0, wx0, wy1, wx1) in tile_boxes(y1 - y0, x1 - x0, max_window - 2 * margin,
                                                                      margin):
            jobs.append(((y0 + wy0, x0 + wx0, y0 + wy1, x0 + wx1), (y0 + cy0, x0 + cx0, y0 + cy1, x0 + cx1)))
    jobs.sort(key=lambda job: (job[0][2] - job[0][0]) * (job[0][3] - job[0][1]))
    return jobs


def predict_crop(
    model: torch.nn.Module,
    rgb: np.ndarray,
    hole: np.ndarray,
    base_fill: np.ndarray | None = None,
    bfloat16: bool = False,
) -> np.ndarray:
    """Run the U-Net on one crop: uint8 (h, w, 3) + bool (h, w) -> uint8 (h, w, 3) prediction everywhere.

    A residual model corrects ``base_fill`` (float (h, w, 3) in 0..255; made here by the model's own base fill,
    ``base_fill_of``, if not given).
    ``bfloat16`` runs the network in bfloat16 (the output differs from float32 by a few levels at most): pass
    ``model``'s bfloat16 twin (``engine.pipeline.precision.bfloat16_twin``), or it is made here.
    """
    if bfloat16:
        model = bfloat16_twin(model)
    image = torch.from_numpy(rgb.astype(np.float32)).div_(255.0).permute(2, 0, 1)[None]  # a copy: rgb may be read-only
    known = torch.from_numpy(~hole).to(torch.float32)[None, None]
    image, (h, w) = pad_to_multiple(image, model.stride)
    known, _ = pad_to_multiple(known, model.stride)
    base = None
    if getattr(model, "residual", False):  # the network corrects a base fill
        if base_fill is None:
            base_fill = base_fill_of(model)(rgb, hole)
        base = torch.from_numpy(base_fill).div_(255.0).permute(2, 0, 1)[None]
        base, _ = pad_to_multiple(base, model.stride)
    image = image * known
    if bfloat16:
        image = image.to(torch.bfloat16)
    with torch.inference_mode():
        pred = model(image, known, base)[0, :, :h, :w].float()
        out = pred.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    if is_grey(rgb):
        # a grey crop stays grey: no colour tint from the network
        grey = np.rint(out.astype(np.float32).mean(axis=2)).astype(np.uint8)
        out = np.repeat(grey[:, :, None], 3, axis=2)
    return out


def with_detail(rgb: np.ndarray, hole: np.ndarray, pred: np.ndarray, options: DetailOptions) -> np.ndarray:
    """``pred`` (uint8 (h, w, 3), the fill of ``hole`` in the crop ``rgb``) with the fine detail of the known art
    added deep in the hole (engine.pipeline.detail), the same in each channel: grey stays grey."""
    filled = np.where(hole[:, :, None], pred, rgb).astype(np.float32).mean(axis=2)
    extra = detail(filled, hole, options)
    if not extra.any():
        return pred
    return np.clip(np.rint(pred + extra[:, :, None]), 0, 255).astype(np.uint8)


def inpaint(
    model: torch.nn.Module,
    rgb: np.ndarray,
    hole: np.ndarray,
    context: int = 32,
    max_window: int = 768,
    margin: int = 64,
    progress: Callable[[float], None] | None = None,
    bfloat16: bool | None = None,
    workers: int | None = None,
    detail_options: DetailOptions | None = None,
) -> np.ndarray:
    """Fill the pixels of ``hole`` from their surroundings.

    Args:
        rgb: uint8 (H, W, 3). hole: bool (H, W), True = to fill.
        context: known pixels kept around each region in its crop.
        max_window, margin: crops larger than ``max_window`` are processed in windows with this margin.
        bfloat16: run the network in bfloat16; None = where the processor does it natively.
        workers: threads computing the crops' base fills ahead of the network (default: torch's thread count).
        detail_options: deep inside big holes, add the fine detail of the best-matching known art to the
            network's fill (engine.pipeline.detail); None = the network's fill as it is.
    Returns:
        uint8 (H, W, 3): equal to ``rgb`` outside ``hole``.
    """
    if bfloat16 is None:
        bfloat16 = bfloat16_is_native()
    if bfloat16:
        model = bfloat16_twin(model)
    out = rgb.copy()
    jobs = crop_jobs(hole, context, max_window, margin)
    total = sum((c[2] - c[0]) * (c[3] - c[1]) for _, c in jobs) or 1
    done = 0
    residual = getattr(model, "residual", False)
    base_fill = base_fill_of(model)
    threads = max(1, workers or torch.get_num_threads())
    with ThreadPoolExecutor(threads) as pool:
        # the base fills of the next few windows are made while the network works on this one (a bounded
        # look-ahead: memory holds a few windows' fills, not the page's)
        ahead: dict[int, Future] = {}
        try:
            for i, ((wy0, wx0, wy1, wx1), (cy0, cx0, cy1, cx1)) in enumerate(jobs):
                for j in range(i, min(len(jobs), i + threads + 1)):
                    if residual and j not in ahead:
                        y0, x0, y1, x1 = jobs[j][0]
                        ahead[j] = pool.submit(base_fill, rgb[y0:y1, x0:x1], hole[y0:y1, x0:x1])
                base = ahead.pop(i).result() if residual else None
                pred = predict_crop(model, rgb[wy0:wy1, wx0:wx1], hole[wy0:wy1, wx0:wx1], base, bfloat16)
                if detail_options is not None:
                    pred = with_detail(rgb[wy0:wy1, wx0:wx1], hole[wy0:wy1, wx0:wx1], pred, detail_options)
                core_hole = hole[cy0:cy1, cx0:cx1]
                out[cy0:cy1, cx0:cx1][core_hole] = pred[cy0 - wy0:cy1 - wy0, cx0 - wx0:cx1 - wx0][core_hole]
                done += (cy1 - cy0) * (cx1 - cx0)
                if progress is not None:
                    progress(done / total)  # may raise to cancel: the fills not started yet are dropped
        except BaseException:
            for future in ahead.values():
                future.cancel()
            raise
    return out
