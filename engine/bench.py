"""``kesu bench``: per-stage time and peak memory of the pipeline on the bundled bench page, and (from a checkout)
the PartialConv2d speed against the straightforward reference. Numbers are printed, never asserted.

The bench page (``engine/samples/bench-page.png``, 1654x2339, with its true text in ``bench-page.text.png``) was
made by Kesu's synthetic generator; other sizes are cut from it, mirrored where they are larger.

Each page size runs in a fresh subprocess so that its peak memory (resident set size) is its own.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class PeakMemory:
    """Samples this process's resident set size every few milliseconds; ``peak_mb`` since the last reset."""

    def __init__(self, interval: float = 0.002):
        self.interval, self.peak, self._stop = interval, 0, False
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _run(self) -> None:
        while not self._stop:
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def reset(self) -> None:
        self.peak = self._rss()

    @property
    def peak_mb(self) -> float:
        return max(self.peak, self._rss()) / 2**20

    def stop(self) -> None:
        self._stop = True


def _random_engine():
    """The shipped architectures (as the weights' manifest gives them) with random weights."""
    import torch

    from engine.models import build_model
    from engine.pipeline import Engine
    from engine.weights import manifest_entry

    torch.manual_seed(0)
    seg_entry, unet_entry = manifest_entry("textseg"), manifest_entry("inpaint")
    seg = build_model(seg_entry["arch"], **seg_entry["kwargs"]).eval()
    unet = build_model(unet_entry["arch"], **unet_entry["kwargs"]).eval()
    return Engine(seg.to(memory_format=torch.channels_last), unet)


SAMPLES = Path(__file__).resolve().parent / "samples"


@dataclass
class BenchPage:
    image: np.ndarray  # (H, W, 3) uint8
    text_mask: np.ndarray  # (H, W) bool: the page's true text


def bench_page(width: int, height: int, variant: int = 0) -> BenchPage:
    """The bundled bench page at ``width`` x ``height``: cut from it, mirrored where larger. ``variant`` 1-4 flip
    and shift it, a differently laid-out page of the same art and text (where the 5% inpainting is timed too)."""
    from PIL import Image

    grey = np.asarray(Image.open(SAMPLES / "bench-page.png").convert("L"))
    text = np.asarray(Image.open(SAMPLES / "bench-page.text.png").convert("L")) > 127
    if variant:
        flips = [(), (1,), (0,), (0, 1)][(variant - 1) % 4]
        grey, text = np.flip(grey, flips) if flips else grey, np.flip(text, flips) if flips else text
        shift = (97 * variant, 61 * variant)
        grey, text = np.roll(grey, shift, (0, 1)), np.roll(text, shift, (0, 1))
    # a smaller page is the window centred on the text nearest the page's centre (so it always holds some text)
    ys, xs = np.nonzero(text)
    nearest = int(np.argmin((ys - text.shape[0] / 2) ** 2 + (xs - text.shape[1] / 2) ** 2))
    y0 = min(max(int(ys[nearest]) - height // 2, 0), max(grey.shape[0] - height, 0))
    x0 = min(max(int(xs[nearest]) - width // 2, 0), max(grey.shape[1] - width, 0))
    grey, text = grey[y0:], text[y0:]
    grey, text = grey[:, x0:], text[:, x0:]
    reps = (-(-height // grey.shape[0]), -(-width // grey.shape[1]))
    grey = np.pad(grey, [(0, grey.shape[0] * (reps[0] - 1)), (0, grey.shape[1] * (reps[1] - 1))], mode="symmetric")
    text = np.pad(text, [(0, text.shape[0] * (reps[0] - 1)), (0, text.shape[1] * (reps[1] - 1))], mode="symmetric")
    grey, text = grey[:height, :width], text[:height, :width]
    return BenchPage(np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2)), np.ascontiguousarray(text))


# variants of the bench page on which the 5% inpainting is timed besides the page itself
FIVE_PERCENT_PAGES = (1, 2, 3, 4)
OTHER_PAGES_UP_TO = 4_000_000  # pixels: a long strip is timed on its own page only


def worker(width: int, height: int, weights_dir: str | None, random_weights: bool, threads: int | None,
           float32: bool = False) -> dict:
    """Time every stage of ``clean`` on one generated page (in this process). Returns the numbers."""
    import torch

    from engine.allocator import keep_freed_memory
    from engine.pipeline import CleanOptions, Engine, masks, tight_mask
    from engine.pipeline.detect import detect_probability, to_grey
    from engine.pipeline.fill import FlatFillOptions, flat_fill
    from engine.pipeline.inpaint import crop_boxes, inpaint
    from engine.pipeline.precision import bfloat16_is_native
    from engine.pipeline.repeat_fill import repeat_fill
    from engine.pipeline.surroundings import split_by_surroundings

    if threads:
        torch.set_num_threads(threads)
    keep_freed_memory()  # as Engine.load does; the random-weights engine does not go through it
    memory = PeakMemory()
    stages: dict[str, dict[str, float]] = {}

    def stage(name, fn):
        memory.reset()
        t = time.perf_counter()
        value = fn()
        stages[name] = {"seconds": round(time.perf_counter() - t, 3), "peak_mb": round(memory.peak_mb, 1)}
        return value

    page = bench_page(width, height)
    rgb = page.image
    base_mb = memory.peak_mb
    options = CleanOptions(allow_bfloat16=not float32)
    bf16 = options.bfloat16  # None: where native (the default), False: float32
    if random_weights:
        engine = stage("load models", _random_engine)
    else:
        engine = stage("load models", lambda: Engine.load(Path(weights_dir) if weights_dir else None))
    seg, unet = engine.textseg, engine.inpainter
    detect_probability(seg, rgb[:256, :256], bfloat16=bf16)  # first call allocates; the warm path is what users repeat
    t_total = time.perf_counter()
    prob = stage("detect", lambda: detect_probability(seg, rgb, short_side=options.detect_short_side, bfloat16=bf16))
    text = stage("threshold+snap", lambda: tight_mask(prob, rgb, options))
    # telling lettering, sound effects and artwork apart (part of every detection since issue 31); the stages
    # below erase all the text found, as before, so that their times compare with earlier runs
    stage("tell the kinds apart", lambda: split_by_surroundings(text, masks.grow(text, options.grow_px), prob,
                                                               to_grey(rgb)))
    if random_weights:
        text = page.text_mask  # random weights detect noise; erase the page's true text instead
    grown = stage("grow", lambda: masks.grow(text, options.grow_px))
    filled_rgb, filled = stage("flat fill", lambda: flat_fill(rgb, grown, FlatFillOptions()))
    rest = grown & ~filled
    repeated_rgb, repeated = stage("repeat fill", lambda: repeat_fill(filled_rgb, rest))
    rest &= ~repeated
    stage("inpaint", lambda: inpaint(unet, repeated_rgb, rest, bfloat16=bf16))
    total = time.perf_counter() - t_total
    # a page of the same size again: what a warm server or the next page of a chapter costs
    stage("detect, same size again",
          lambda: detect_probability(seg, rgb, short_side=options.detect_short_side, bfloat16=bf16))
    # a typical page has about 5% of its pixels in text: the page's true text, grown until it is that much,
    # all of it given to the smooth fill and the network (as if every letter sat on artwork)
    five = grown_to_share(page.text_mask, 0.05)
    stage("inpaint 5% by the model", lambda: inpaint(unet, rgb, five, bfloat16=bf16))

    def repeat_then_model(image, hole):
        copied, repeated = repeat_fill(image, hole)
        return inpaint(unet, copied, hole & ~repeated, bfloat16=bf16)

    # the same, as the pipeline does it: the regions in a regular pattern repeat it, the network fills the rest
    stage("  the same, repeat fill first", lambda: repeat_then_model(rgb, five))
    # and with two big sound effects erased besides (two rows of three bold glyph-like shapes about 100 px tall)
    with_sfx = five | two_sound_effects(height, width)
    stage(f"  + 2 sound effects ({100 * with_sfx.mean():.1f}%)", lambda: repeat_then_model(rgb, with_sfx))
    # the same two over the page's artwork (the halftoned figure), where the network has work to do on all of them
    over_art = five | two_sound_effects(height, width, SOUND_EFFECTS_OVER_THE_ART)
    stage(f"  + 2 sound effects over the art ({100 * over_art.mean():.1f}%)",
          lambda: repeat_then_model(rgb, over_art))
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the bench page's, as always
    # the network's cost follows the area of the crops around the text, which differs from page to page at the
    # same 5%: the same on other generated pages (nothing warmed for their crops' sizes); page-sized runs only
    for seed in FIVE_PERCENT_PAGES if width * height <= OTHER_PAGES_UP_TO else ():
        other = bench_page(width, height, seed)
        hole = grown_to_share(other.text_mask, 0.05)
        crops = sum((y1 - y0) * (x1 - x0) for y0, x0, y1, x1 in crop_boxes(hole, options.context_px)) / 1e6
        stage(f"  page {seed}: {100 * hole.mean():.1f}%, {crops:.2f} Mpx of crops",
              lambda other=other, hole=hole: inpaint(unet, other.image, hole, bfloat16=bf16))
        stage(f"  page {seed}, repeat fill first",
              lambda other=other, hole=hole: repeat_then_model(other.image, hole))
    memory.stop()
    return {
        "size": f"{width}x{height}", "weights": "random" if random_weights else "shipped",
        "stages": stages, "clean_seconds": round(total, 3),
        "mask_percent": round(100 * float(grown.mean()), 2),
        "model_inpainted_percent": round(100 * float(rest.mean()), 2),
        "five_percent_mask": round(100 * float(five.mean()), 2),
        "page_mb_before_models": round(base_mb, 1),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "peak_rss_mb_with_other_pages": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": torch.get_num_threads(),
        "networks_in": "bfloat16" if bf16 is None and bfloat16_is_native() else "float32",
    }


# where two_sound_effects puts its two rows (fractions of the page's height and width): on the bench page the
# first lies half over the halftoned figure and the second on paper; the second pair lies over the figure
SOUND_EFFECTS_ON_THE_PAGE = ((0.3, 0.3), (0.65, 0.6))
SOUND_EFFECTS_OVER_THE_ART = ((0.1, 0.2), (0.23, 0.3))


def two_sound_effects(height: int, width: int, centres=SOUND_EFFECTS_ON_THE_PAGE) -> np.ndarray:
    """The holes two big erased sound effects leave: two rows of three bold glyph-like shapes 90-110 px tall (thick
    strokes, grown by a 6 px outline), centred at ``centres`` (fractions of the page's height and width). Drawn
    without fonts (the bench ships in the wheel); fixed, so every run times the same holes."""
    from PIL import Image, ImageDraw
    from scipy import ndimage

    rng = np.random.default_rng(11)
    im = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(im)
    for fy, fx in centres:
        for k in range(3):
            size = rng.uniform(90, 110)
            gx, gy = fx * width + (k - 1) * size * 0.95, fy * height + rng.normal(0, 8)
            for _ in range(4):
                points = [(float(gx + rng.uniform(-0.45, 0.45) * size), float(gy + rng.uniform(-0.45, 0.45) * size))
                          for _ in range(2 + int(rng.integers(2)))]
                draw.line(points, fill=255, width=int(size * 0.16), joint="curve")
    return ndimage.binary_dilation(np.asarray(im) > 0, iterations=6)


def grown_to_share(mask, share: float):
    """``mask`` grown by the fewest pixels that make it at least ``share`` of the image (or by 64 at most)."""
    from engine.pipeline import masks

    grown = mask
    for pixels in range(65):
        grown = masks.grow(mask, pixels)
        if grown.mean() >= share or not mask.any():
            break
    return grown


def pconv_speed(threads: int | None, repeats: int = 3) -> dict:
    """Forward+backward of one 64->64 3x3 layer on 4x64x256x256: efficient vs reference; equal outputs."""
    import torch

    from engine.allocator import keep_freed_memory
    from engine.models.pconv import PartialConv2d
    from engine.workshop.pconv_reference import reference_partial_conv  # the development tree's

    if threads:
        torch.set_num_threads(threads)
    keep_freed_memory()  # both run as they would in training and in the engine
    torch.manual_seed(0)
    b, c, h, w = 4, 64, 256, 256
    conv = PartialConv2d(c, c, 3, 1, 1)
    mask = (torch.rand(b, 1, h, w) > 0.25).float()
    mask[:, :, 64:160, 40:200] = 0
    x = torch.randn(b, c, h, w) * mask
    mask_multi = mask.expand(b, c, h, w).contiguous()

    def efficient():
        xi = x.clone().requires_grad_(True)
        y, _ = conv(xi, mask)
        y.sum().backward()
        return y.detach()

    def reference():
        xi = x.clone().requires_grad_(True)
        y, _ = reference_partial_conv(xi, mask_multi, conv.weight, conv.bias, 1, 1)
        y.sum().backward()
        return y.detach()

    def plain():  # the convolution alone: the floor any partial convolution of this shape pays
        xi = x.clone().requires_grad_(True)
        y = torch.nn.functional.conv2d(xi, conv.weight, conv.bias, 1, 1)
        y.sum().backward()
        return y.detach()

    def timed(fn):
        fn()
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return best

    diff = float((efficient() - reference()).abs().max())
    t_eff, t_ref, t_plain = timed(efficient), timed(reference), timed(plain)
    return {"efficient_s": round(t_eff, 3), "reference_s": round(t_ref, 3), "speedup": round(t_ref / t_eff, 2),
            "plain_conv_s": round(t_plain, 3),
            "max_abs_diff": diff, "threads": torch.get_num_threads()}


def _has_workshop() -> bool:
    import importlib.util

    return importlib.util.find_spec("engine.workshop") is not None


def _sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        w, _, h = part.lower().partition("x")
        out.append((int(w), int(h)))
    return out


def run_bench(args) -> int:
    for width, height in _sizes(args.size):
        cmd = [sys.executable, "-m", "engine.bench", "--worker", f"{width}x{height}"]
        if args.weights_dir:
            cmd += ["--weights-dir", args.weights_dir]
        if args.random_weights:
            cmd += ["--random-weights"]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        if args.float32:
            cmd += ["--float32"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "bench worker failed",
                  file=sys.stderr)
            return 1
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"page {result['size']} ({result['weights']} weights, {result['threads']} threads, networks in "
              f"{result['networks_in']}): "
              f"clean {result['clean_seconds']:.2f} s, peak RSS {result['peak_rss_mb']:.0f} MB, "
              f"mask {result['mask_percent']}% of the page, {result['model_inpainted_percent']}% inpainted by "
              f"the model; the 5% mask is {result['five_percent_mask']}%")
        for name, s in result["stages"].items():
            print(f"  {name:<24} {s['seconds']:7.3f} s   peak {s['peak_mb']:7.0f} MB")
        if result["peak_rss_mb_with_other_pages"] > result["peak_rss_mb"]:
            print(f"  (peak RSS with the other pages {result['peak_rss_mb_with_other_pages']:.0f} MB)")
    if not args.no_pconv and not _has_workshop():
        print("PartialConv2d against its reference: only from a checkout with the development tree")
    elif not args.no_pconv:
        r = pconv_speed(args.threads)
        print(f"PartialConv2d fwd+bwd 4x64x256x256 ({r['threads']} threads): efficient {r['efficient_s']:.3f} s, "
              f"reference {r['reference_s']:.3f} s, speed-up {r['speedup']:.2f}x, max |diff| {r['max_abs_diff']:.1e}; "
              f"a plain Conv2d of that shape {r['plain_conv_s']:.3f} s")
    return 0


def _worker_main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m engine.bench")
    p.add_argument("--worker", required=True)
    p.add_argument("--weights-dir")
    p.add_argument("--random-weights", action="store_true")
    p.add_argument("--threads", type=int)
    p.add_argument("--float32", action="store_true")
    a = p.parse_args(argv)
    (width, height), = _sizes(a.worker)
    print(json.dumps(worker(width, height, a.weights_dir, a.random_weights, a.threads, a.float32)))
    return 0


if __name__ == "__main__":
    from engine.errors import EngineError

    try:
        raise SystemExit(_worker_main(sys.argv[1:]))
    except EngineError as e:
        print(f"kesu: {e}", file=sys.stderr)
        raise SystemExit(1) from None
