"""``kesu eval inpaint``: fill text-shaped holes whose truth is known, and score only the hole pixels.

Holes (shapes from the synthetic generator's text-like hole masks) are placed over the artwork of the OpenMantra
dev pages away from the annotated text boxes, and over the held-out clean Mimi and Eunice strips. Methods, on the
same holes: the Kesu model alone, the Kesu pipeline (flat fill where the ring is flat, the model elsewhere), flat
fill forced everywhere (the ring's median colour), the smooth fill alone (what a residual model corrects), and
OpenCV's Telea and Navier-Stokes inpainting (a development dependency only). Each hole is classed by its
surroundings as flat, tone or line art.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from engine.imageio import load_image, save_png_atomic
from engine.pipeline import CleanOptions, Engine
from engine.pipeline.detect import to_grey
from engine.pipeline.fill import FlatFillOptions, flat_fill
from engine.pipeline.smooth_fill import biharmonic_fill, smooth_fill
from engine.workshop.eval.image_metrics import masked_ssim
from engine.workshop.eval.metrics import mean_abs_error, psnr
from engine.workshop.eval.realpages import mimi_strips, openmantra_pages, real_art_files

PATCH = 192
HOLES_PER_PAGE = 3
SEED_BASE = 3_000_000_000


def hole_patch(seed: int, size: int = PATCH) -> np.ndarray:
    from engine.workshop.synth.inpaint import make_hole

    return make_hole(seed, size, size)


def classify(rgb: np.ndarray, hole: np.ndarray) -> str:
    """'flat', 'tone' or 'line art' from the ring of known pixels around the hole."""
    ring = ndimage.binary_dilation(hole, np.ones((9, 9), bool)) & ~hole
    grey = to_grey(rgb).astype(np.float32)
    values = grey[ring]
    if values.size == 0:
        return "line art"
    median = np.median(values)
    if (np.abs(values - median) <= 12).mean() >= 0.97:
        return "flat"
    # screentone: dense small-scale alternation (high Laplacian energy nearly everywhere in the ring)
    lap = np.abs(ndimage.laplace(grey))[ring]
    busy = (lap > 40).mean()
    return "tone" if busy > 0.25 else "line art"


def place_holes(shape, avoid: np.ndarray | None, seed: int, count: int) -> list[tuple[int, int, np.ndarray]]:
    """Up to ``count`` (y, x, hole patch) placements inside the page that do not touch ``avoid``."""
    rng = np.random.default_rng(seed)
    h, w = shape
    out = []
    for attempt in range(200):
        if len(out) == count or h < PATCH or w < PATCH:
            break
        y, x = int(rng.integers(h - PATCH + 1)), int(rng.integers(w - PATCH + 1))
        if avoid is not None and avoid[y:y + PATCH, x:x + PATCH].any():
            continue
        if any(abs(y - oy) < PATCH and abs(x - ox) < PATCH for oy, ox, _ in out):
            continue
        out.append((y, x, hole_patch(seed * 101 + attempt)))
    return out


def median_fill(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Flat fill forced on every region (tolerance and share set so every ring passes)."""
    out, _ = flat_fill(rgb, hole, FlatFillOptions(tolerance=255, min_flat_fraction=0.0, min_ring_pixels=1))
    return out


def methods(engine: Engine, options: CleanOptions | None = None):
    import cv2

    options = options or CleanOptions()

    def opencv(flag):
        def run(rgb, hole):
            return cv2.inpaint(rgb, hole.astype(np.uint8) * 255, 5, flag)
        return run

    network_only = replace(options, use_flat_fill=False, use_repeat_fill=False)
    return {
        "kesu model": lambda rgb, hole: engine.inpaint(rgb, hole, network_only),
        "kesu pipeline": lambda rgb, hole: engine.inpaint(rgb, hole, options),
        "flat fill": median_fill,
        "smooth fill": lambda rgb, hole: np.clip(np.rint(smooth_fill(rgb, hole)), 0, 255).astype(np.uint8),
        "biharmonic fill": lambda rgb, hole: np.clip(np.rint(biharmonic_fill(rgb, hole)), 0, 255).astype(np.uint8),
        "opencv telea": opencv(cv2.INPAINT_TELEA),
        "opencv navier-stokes": opencv(cv2.INPAINT_NS),
    }


def pages(root: Path, limit: int | None):
    """(name, rgb, avoid mask or None) of the evaluation pages."""
    mantra = openmantra_pages(root)

    held_out = set(real_art_files(root / "mimi-and-eunice-clean" / "images", held_out=True))
    strips = [s for s in mimi_strips(root) if s.image in held_out]  # never trained on
    if limit:
        mantra, strips = mantra[:limit], strips[:limit]
    for page in mantra:
        rgb, _ = load_image(page.image)
        avoid = np.zeros(rgb.shape[:2], bool)
        for y0, x0, y1, x1 in page.text_boxes:
            avoid[max(0, y0 - 16):y1 + 16, max(0, x0 - 16):x1 + 16] = True
        yield f"openmantra-{page.image.parent.parent.name}-{page.image.stem}", rgb, avoid
    for strip in strips:
        rgb, _ = load_image(strip.image)
        yield f"mimi-{strip.image.stem}", rgb, None


def run(engine: Engine, root: Path | None, overlays: Path | None, limit: int | None, log=print,
        options: CleanOptions | None = None) -> list[dict]:
    if root is None:
        from engine.errors import InputError

        raise InputError("inpainting is scored on real pages: pass --realpages DIR or set KESU_REALPAGES")
    fns = methods(engine, options)
    scores: dict[tuple[str, str], list[tuple[float, float, float, int]]] = defaultdict(list)
    worst: list[tuple[float, str, list[np.ndarray]]] = []
    for p_index, (name, rgb, avoid) in enumerate(pages(root, limit)):
        for h_index, (y, x, patch) in enumerate(place_holes(rgb.shape[:2], avoid, SEED_BASE + p_index,
                                                           HOLES_PER_PAGE)):
            # the crop keeps the page's context around the hole
            y0, x0 = max(0, y - 64), max(0, x - 64)
            y1, x1 = min(rgb.shape[0], y + PATCH + 64), min(rgb.shape[1], x + PATCH + 64)
            crop = rgb[y0:y1, x0:x1]
            hole = np.zeros(crop.shape[:2], bool)
            hole[y - y0:y - y0 + PATCH, x - x0:x - x0 + PATCH] = patch
            kind = classify(crop, hole)
            outputs = []
            for method, fn in fns.items():
                out = fn(np.ascontiguousarray(crop), hole)
                n = int(hole.sum())
                scores[(method, kind)].append((min(psnr(out, crop, hole), 60.0), mean_abs_error(out, crop, hole),
                                               masked_ssim(out, crop, hole), n))
                outputs.append(out)
            model_psnr = scores[("kesu model", kind)][-1][0]
            worst.append((model_psnr, f"{name}-hole{h_index}-{kind.replace(' ', '')}", [crop] + outputs))
        log(f"  {name}: done")
    if overlays:
        worst.sort(key=lambda t: t[0])
        for model_psnr, label, images in worst[:12]:
            save_png_atomic(side_by_side(images), overlays / f"hardest-{model_psnr:05.1f}dB-{label}.png")
    return summarise(scores, list(fns))


def side_by_side(images: list[np.ndarray]) -> Image.Image:
    """Truth, then each method in the table's order (model, pipeline, flat, smooth, biharmonic, Telea, NS)."""
    h, w = images[0].shape[:2]
    out = np.full((h, (w + 4) * len(images), 3), 255, np.uint8)
    for i, img in enumerate(images):
        out[:, i * (w + 4):i * (w + 4) + w] = img
    return Image.fromarray(out)


def summarise(scores, method_names: list[str]) -> list[dict]:
    rows = []
    kinds = sorted({k for _, k in scores})
    for method in method_names:
        for kind in kinds + ["all"]:
            items = [s for (m, k), v in scores.items() if m == method and (kind == "all" or k == kind) for s in v]
            if not items:
                continue
            arr = np.array(items)
            rows.append({"method": method, "kind": kind, "holes": len(items), "psnr": float(arr[:, 0].mean()),
                         "mae": float(arr[:, 1].mean()), "ssim": float(arr[:, 2].mean())})
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'method':<22} {'background':<10} {'holes':>5} {'PSNR dB':>8} {'MAE':>7} {'SSIM':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['method']:<22} {r['kind']:<10} {r['holes']:>5} {r['psnr']:>8.2f} {r['mae']:>7.2f} "
                     f"{r['ssim']:>7.4f}")
    return "\n".join(lines)
