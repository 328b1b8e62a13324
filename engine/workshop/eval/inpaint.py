"""``kesu eval inpaint``: fill text-shaped holes whose truth is known, and score only the hole pixels.

Holes (shapes from the synthetic generator's text-like hole masks) are placed over the artwork of the OpenMantra
dev pages away from the annotated text boxes, and over the held-out clean Mimi and Eunice strips. Methods, on the
same holes: the Kesu model alone, the Kesu pipeline (flat fill where the ring is flat, the model elsewhere), flat
fill forced everywhere (the ring's median colour), the smooth fill alone (what the earlier residual models
corrected), Kesu's frequency-selective reconstruction alone (the base fill that the residual models since v11
correct), and OpenCV's Telea, Navier-Stokes and frequency-selective reconstruction (FSR, opencv-contrib's
``xphoto``, ``INPAINT_FSR_FAST``, the same method as Kesu's frequency fill) inpainting. Each hole is classed by its
surroundings as flat, tone or line art.

Every method is given the crop with the hole's pixels white (``hidden``), never the truth: OpenCV's FSR decides
how to split its blocks from the spread of pixels it then treats as unknown, so the truth left under the hole
raised its scores (23 big holes: 13.47 -> 13.88 dB).

Besides PSNR, MAE and SSIM in the holes, ``texture``: the mean gradient magnitude of the fill inside the hole over
that of the truth, the median over holes (a smear scores about 0.3, a fill as busy as the art about 1).

``--big-holes`` scores sound-effect-sized holes instead (``big_holes``): one to three bold outlined glyphs 60-120 px
(``engine.workshop.synth.inpaint.glyph_hole``) over the art of the same pages, never over flat paper.
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
from engine.pipeline.detect import is_grey, to_grey
from engine.pipeline.fill import FlatFillOptions, flat_fill
from engine.pipeline.frequency_fill import frequency_fill
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


HIDDEN_VALUE = 255  # what the methods see in the hole: the white of erased lettering


def hidden(crop: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The crop as the methods get it: its hole white, so that no method can see the truth it is scored on."""
    out = np.array(crop, copy=True)
    out[hole] = HIDDEN_VALUE
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
        "frequency fill": lambda rgb, hole: np.clip(np.rint(frequency_fill(rgb, hole)), 0, 255).astype(np.uint8),
        "opencv telea": opencv(cv2.INPAINT_TELEA),
        "opencv navier-stokes": opencv(cv2.INPAINT_NS),
        "opencv fsr": opencv_fsr_fill,
    }


def opencv_fsr_fill(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """OpenCV contrib's frequency-selective reconstruction (``INPAINT_FSR_FAST``) of the whole hole, as uint8.

    A grey page (R = G = B) is reconstructed as one channel, as Kesu's frequency fill does.
    """
    import cv2

    if not hasattr(cv2, "xphoto"):
        raise SystemExit("the OpenCV row needs OpenCV's contrib modules (cv2.xphoto): pip uninstall "
                         "opencv-python-headless opencv-python, then pip install opencv-contrib-python-headless")
    grey = is_grey(rgb)
    src = np.ascontiguousarray(rgb[..., 0] if grey else rgb)
    known = np.where(hole, 0, 255).astype(np.uint8)  # xphoto takes the mask of the KNOWN pixels
    filled = np.zeros_like(src)
    cv2.xphoto.inpaint(src, known, filled, cv2.xphoto.INPAINT_FSR_FAST)
    out = rgb.copy()
    out[hole] = filled[hole][:, None] if grey else filled[hole]
    return out


def texture(out: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    """Mean gradient magnitude (grey, central differences) of ``out`` inside ``hole`` over that of ``truth``."""
    def energy(img):
        gy, gx = np.gradient(to_grey(img).astype(np.float32))
        return float(np.hypot(gx, gy)[hole].mean())

    return energy(out) / max(energy(truth), 1e-3)


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


def chosen_methods(engine: Engine, options: CleanOptions | None, names) -> dict:
    """The named methods of ``methods`` (all of them for None), in the order given; an unknown name is an error."""
    every = methods(engine, options)
    if names is None:
        return every
    unknown = [n for n in names if n not in every]
    if unknown:
        from engine.errors import InputError

        raise InputError(f"unknown inpainting method(s) {', '.join(unknown)}; choose from: {', '.join(every)}")
    return {name: every[name] for name in names}


def run(engine: Engine, root: Path | None, overlays: Path | None, limit: int | None, log=print,
        options: CleanOptions | None = None, method_names=None, add_best_per_hole: bool = False) -> list[dict]:
    if root is None:
        from engine.errors import InputError

        raise InputError("inpainting is scored on real pages: pass --realpages DIR or set KESU_REALPAGES")
    fns = chosen_methods(engine, options, method_names)
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
            given = hidden(crop, hole)
            for method, fn in fns.items():
                out = fn(given.copy(), hole)
                n = int(hole.sum())
                scores[(method, kind)].append((min(psnr(out, crop, hole), 60.0), mean_abs_error(out, crop, hole),
                                               masked_ssim(out, crop, hole), n, texture(out, crop, hole)))
                outputs.append(out)
            model_psnr = scores[(next(iter(fns)), kind)][-1][0]
            worst.append((model_psnr, f"{name}-hole{h_index}-{kind.replace(' ', '')}", [crop] + outputs))
        log(f"  {name}: done")
    if overlays:
        worst.sort(key=lambda t: t[0])
        for model_psnr, label, images in worst[:12]:
            save_png_atomic(side_by_side(images), overlays / f"hardest-{model_psnr:05.1f}dB-{label}.png")
    return _table(scores, list(fns), add_best_per_hole)


def side_by_side(images: list[np.ndarray]) -> Image.Image:
    """Truth, then each method in the table's order (model, pipeline, flat, smooth, biharmonic, Telea, NS)."""
    h, w = images[0].shape[:2]
    out = np.full((h, (w + 4) * len(images), 3), 255, np.uint8)
    for i, img in enumerate(images):
        out[:, i * (w + 4):i * (w + 4) + w] = img
    return Image.fromarray(out)


BEST_PER_HOLE = "best per hole"


def best_per_hole(scores, method_names: list[str]):
    """``scores`` with a row more: for each hole, the scores of the method with the highest PSNR on it.

    It needs the truth, so it is no method: it bounds what choosing between the methods hole by hole could gain.
    Each method's list of a kind holds the same holes in the same order (every method fills every hole).
    """
    out = dict(scores)
    for kind in sorted({k for _, k in scores}):
        per_method = [scores[(m, kind)] for m in method_names]
        out[(BEST_PER_HOLE, kind)] = [max(hole, key=lambda s: s[0]) for hole in zip(*per_method, strict=True)]
    return out, [*method_names, BEST_PER_HOLE]


def _table(scores, method_names: list[str], add_best_per_hole: bool) -> list[dict]:
    if add_best_per_hole:
        scores, method_names = best_per_hole(scores, method_names)
    return summarise(scores, method_names)


def summarise(scores, method_names: list[str]) -> list[dict]:
    rows = []
    kinds = sorted({k for _, k in scores})
    for method in method_names:
        for kind in kinds + ["all"]:
            items = [s for (m, k), v in scores.items() if m == method and (kind == "all" or k == kind) for s in v]
            if not items:
                continue
            arr = np.array(items)
            row = {"method": method, "kind": kind, "holes": len(items), "psnr": float(arr[:, 0].mean()),
                   "mae": float(arr[:, 1].mean()), "ssim": float(arr[:, 2].mean())}
            if arr.shape[1] > 4:
                row["texture"] = float(np.median(arr[:, 4]))
            rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'method':<22} {'background':<10} {'holes':>5} {'PSNR dB':>8} {'MAE':>7} {'SSIM':>7} {'texture':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['method']:<22} {r['kind']:<10} {r['holes']:>5} {r['psnr']:>8.2f} {r['mae']:>7.2f} "
                     f"{r['ssim']:>7.4f} {r.get('texture', float('nan')):>7.3f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- big holes
BIG_PATCH = 256          # the area a glyph group is drawn in (its holes are 60-120 px glyphs)
BIG_CONTEXT = 64
BIG_PER_PAGE = 2
BIG_SEED_BASE = 3_100_000_000
BIG_METHODS = ("kesu pipeline", "kesu model", "smooth fill", "frequency fill", "opencv fsr", "opencv telea")
SHEET_ROWS = 6


def big_kind(rgb: np.ndarray, hole: np.ndarray) -> str:
    """'black fill' where the ring is mostly dark ink, else ``classify``'s kind."""
    ring = ndimage.binary_dilation(hole, np.ones((9, 9), bool)) & ~hole
    if ring.any() and (to_grey(rgb)[ring] < 80).mean() > 0.4:
        return "black fill"
    return classify(rgb, hole)


def place_big_holes(rgb: np.ndarray, avoid: np.ndarray | None, seed: int,
                    count: int = BIG_PER_PAGE) -> list[tuple[int, int, np.ndarray]]:
    """Up to ``count`` (y, x, hole) glyph groups over art (never where the ring is flat), off ``avoid``."""
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    out = []
    for attempt in range(300):
        if len(out) == count or h < BIG_PATCH or w < BIG_PATCH:
            break
        y, x = int(rng.integers(h - BIG_PATCH + 1)), int(rng.integers(w - BIG_PATCH + 1))
        if avoid is not None and avoid[y:y + BIG_PATCH, x:x + BIG_PATCH].any():
            continue
        if any(abs(y - oy) < BIG_PATCH and abs(x - ox) < BIG_PATCH for oy, ox, _ in out):
            continue
        from engine.workshop.synth.inpaint import glyph_hole

        patch = glyph_hole(seed * 1009 + attempt, BIG_PATCH, BIG_PATCH, centre=(BIG_PATCH / 2, BIG_PATCH / 2))
        if big_kind(rgb[y:y + BIG_PATCH, x:x + BIG_PATCH], patch) == "flat":
            continue
        out.append((y, x, patch))
    return out


def run_big_holes(engine: Engine, root: Path | None, overlays: Path | None, limit: int | None, log=print,
                  options: CleanOptions | None = None, method_names=BIG_METHODS,
                  add_best_per_hole: bool = False) -> list[dict]:
    """Score sound-effect-sized holes over the art of the evaluation pages; with ``overlays``, write sheets of
    every hole (truth, holed, then each method) and of the 12 the pipeline fills worst."""
    if root is None:
        from engine.errors import InputError

        raise InputError("inpainting is scored on real pages: pass --realpages DIR or set KESU_REALPAGES")
    fns = chosen_methods(engine, options, method_names)
    method_names = list(fns)
    scores: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    rows_of_sheets: list[tuple[float, str, np.ndarray]] = []
    for p_index, (name, rgb, avoid) in enumerate(pages(root, limit)):
        for h_index, (y, x, patch) in enumerate(place_big_holes(rgb, avoid, BIG_SEED_BASE + p_index)):
            y0, x0 = max(0, y - BIG_CONTEXT), max(0, x - BIG_CONTEXT)
            y1, x1 = min(rgb.shape[0], y + BIG_PATCH + BIG_CONTEXT), min(rgb.shape[1], x + BIG_PATCH + BIG_CONTEXT)
            crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
            hole = np.zeros(crop.shape[:2], bool)
            hole[y - y0:y - y0 + BIG_PATCH, x - x0:x - x0 + BIG_PATCH] = patch
            kind = big_kind(crop, hole)
            outputs = []
            n = int(hole.sum())
            given = hidden(crop, hole)
            for method, fn in fns.items():
                out = fn(given.copy(), hole)
                scores[(method, kind)].append((min(psnr(out, crop, hole), 60.0), mean_abs_error(out, crop, hole),
                                               masked_ssim(out, crop, hole), n, texture(out, crop, hole)))
                outputs.append(out)
            holed = crop.copy()
            holed[hole] = (255, 0, 255)
            # the sheet shows the glyph area with a little context
            sy0, sx0 = y - y0 - 16, x - x0 - 16
            view = [img[max(0, sy0):sy0 + BIG_PATCH + 32, max(0, sx0):sx0 + BIG_PATCH + 32]
                    for img in [crop, holed] + outputs]
            first = scores[(method_names[0], kind)][-1][0]
            label = f"{name} hole{h_index} {kind} {first:.1f} dB"
            rows_of_sheets.append((first, label, np.asarray(side_by_side(view))))
        log(f"  {name}: done")
    if overlays:
        for i in range(0, len(rows_of_sheets), SHEET_ROWS):
            save_png_atomic(_sheet([r[2] for r in rows_of_sheets[i:i + SHEET_ROWS]]),
                            overlays / f"big-holes-{i // SHEET_ROWS:03d}.png")
        hardest = sorted(rows_of_sheets, key=lambda r: r[0])[:12]
        for i in range(0, len(hardest), SHEET_ROWS):
            save_png_atomic(_sheet([r[2] for r in hardest[i:i + SHEET_ROWS]]),
                            overlays / f"big-holes-hardest-{i // SHEET_ROWS + 1}.png")
        (overlays / "big-holes-hardest.txt").write_text("\n".join(r[1] for r in hardest) + "\n", encoding="utf-8")
    return _table(scores, list(fns), add_best_per_hole)


def _sheet(rows: list[np.ndarray]) -> Image.Image:
    """Rows stacked with a white gap (rows narrower than the widest are padded white)."""
    width = max(r.shape[1] for r in rows)
    height = sum(r.shape[0] + 6 for r in rows)
    out = np.full((height, width, 3), 255, np.uint8)
    y = 0
    for r in rows:
        out[y:y + r.shape[0], :r.shape[1]] = r
        y += r.shape[0] + 6
    return Image.fromarray(out)
