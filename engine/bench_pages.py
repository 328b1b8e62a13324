"""``kesu bench --pages IN ...``: the time of each stage of ``clean`` on your own pages, with how much of each
page each fill took. Numbers are printed, never asserted.

The generated bench page says how fast the code is; real pages say how fast a chapter is, because the
inpainting network's cost follows the area of the crops around the text it is left, and that depends on where
the text sits and on what (a balloon, a screen, line art). Per page it also times the worst case of the same
layout: the detected text grown to 5% of the page and all of it given to the network.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

FIVE_PERCENT = 0.05


def crop_megapixels(hole: np.ndarray, context: int) -> float:
    from engine.pipeline.inpaint import crop_boxes

    return sum((y1 - y0) * (x1 - x0) for y0, x0, y1, x1 in crop_boxes(hole, context)) / 1e6


def time_page(engine, rgb: np.ndarray, options) -> tuple[dict, np.ndarray]:
    """Every stage of ``Engine.clean`` on one page, timed as it runs them, and the shares each fill took; then the
    same layout's detected text grown to 5% and all of it given to the network.

    Returns the numbers and the cleaned page (``Engine.clean``'s own).
    """
    from engine.bench import grown_to_share
    from engine.pipeline.inpaint import inpaint

    seconds: dict[str, float] = {}
    result = engine.clean(rgb, options, on_stage=seconds.__setitem__)
    grown = result.grown_mask
    rest = grown & ~result.flat_mask & ~result.repeat_mask
    five = grown_to_share(result.text_mask, FIVE_PERCENT)
    if five.any():
        start = time.perf_counter()
        inpaint(engine.inpainter, rgb, five, context=options.context_px, bfloat16=options.bfloat16)
        seconds["5% by the network"] = time.perf_counter() - start
    pixels = grown.size
    numbers = {
        "seconds": seconds,
        "clean_seconds": sum(s for name, s in seconds.items() if name != "5% by the network"),
        "erase_seconds": sum(seconds.get(name, 0.0) for name in ("flat fill", "repeat fill", "network")),
        "mask_percent": 100 * grown.sum() / pixels,
        "flat_percent": 100 * result.flat_mask.sum() / pixels,
        "repeat_percent": 100 * result.repeat_mask.sum() / pixels,
        "network_percent": 100 * rest.sum() / pixels,
        "network_crop_mpx": crop_megapixels(rest, options.context_px) if rest.any() else 0.0,
        "five_percent": 100 * five.mean(),
        "five_crop_mpx": crop_megapixels(five, options.context_px) if five.any() else 0.0,
    }
    return numbers, result.image


def page_line(name: str, size: tuple[int, int], r: dict) -> str:
    s = r["seconds"]
    five = (f"; 5%: {s['5% by the network']:.2f} s ({r['five_crop_mpx']:.2f} Mpx)"
            if "5% by the network" in s else "")
    return (f"{name} {size[1]}x{size[0]}: clean {r['clean_seconds']:.2f} s (detect {s['detect']:.2f}, erase "
            f"{r['erase_seconds']:.2f}: network {s.get('network', 0.0):.2f} s on {r['network_crop_mpx']:.2f} Mpx); "
            f"mask {r['mask_percent']:.1f}% = flat {r['flat_percent']:.1f} + repeat {r['repeat_percent']:.1f} "
            f"+ network {r['network_percent']:.1f}{five}")


def summary_lines(results: list[dict]) -> list[str]:
    def spread(values: list[float]) -> str:
        return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s"

    lines = [f"{len(results)} pages: clean {spread([r['clean_seconds'] for r in results])}; "
             f"erase {spread([r['erase_seconds'] for r in results])}, "
             f"{sum(r['erase_seconds'] <= 1.0 for r in results)} within 1 s"]
    fives = [r["seconds"]["5% by the network"] for r in results if "5% by the network" in r["seconds"]]
    if fives:
        lines.append(f"the detected text grown to 5%, all by the network: {spread(fives)}, "
                     f"{sum(f <= 1.0 for f in fives)} of {len(fives)} within 1 s")
    return lines


def run_pages_bench(paths: list[Path], engine, options, threads: int | None = None) -> int:
    """Time ``engine`` (with ``options``) on each page of ``paths``; prints a line per page and a summary."""
    import torch

    from engine.errors import EngineError
    from engine.imageio import load_image
    from engine.pipeline.detect import detect_probability
    from engine.pipeline.precision import bfloat16_is_native

    if threads:
        torch.set_num_threads(threads)
    precision = "bfloat16" if options.bfloat16 is None and bfloat16_is_native() else "float32"
    print(f"{len(paths)} pages, {torch.get_num_threads()} threads, networks in {precision}", flush=True)
    warm = np.full((256, 256, 3), 255, np.uint8)
    detect_probability(engine.textseg, warm, bfloat16=options.bfloat16)  # the first call allocates
    results = []
    failed = 0
    for path in paths:
        try:
            rgb, _ = load_image(path)
        except EngineError as e:
            print(f"kesu: {e}", file=sys.stderr)
            failed += 1
            continue
        result, _ = time_page(engine, rgb, options)
        results.append(result)
        print(page_line(path.name, rgb.shape[:2], result), flush=True)
    if results:
        for line in summary_lines(results):
            print(line)
    return 1 if failed else 0
