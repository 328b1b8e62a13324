"""``kesu eval textseg``: text-mask quality on synthetic pages, real art with exact truth, and real manga."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engine.eval.metrics import MaskCounts
from engine.eval.realpages import mimi_strips, openmantra_pages, sickzil_pairs
from engine.imageio import load_image, save_png_atomic
from engine.pipeline import CleanOptions, Engine
from engine.pipeline.detect import to_grey
from engine.train.textseg import VALIDATION_SEED_BASE

SYNTH_VALIDATION_PAGES = 64
INK_LEVEL = 128             # OpenMantra: ink = grey below this inside the annotated boxes
BOX_COVERED = 0.90          # a box counts as covered when this share of its ink is masked


def overlay(rgb: np.ndarray, mask: np.ndarray, boxes=(), colour=(255, 0, 64)) -> Image.Image:
    """The page in grey with the mask in colour and the given (y0, x0, y1, x1) boxes outlined in green."""
    grey = to_grey(rgb).astype(np.float32)
    out = np.repeat(grey[:, :, None], 3, axis=2)
    out[mask] = 0.45 * out[mask] + 0.55 * np.array(colour, np.float32)
    img = Image.fromarray(out.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for y0, x0, y1, x1 in boxes:
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=(0, 200, 0), width=2)
    return img


def synthetic_set(engine: Engine, options: CleanOptions, limit: int | None) -> dict:
    from engine.synth import make_page

    counts = MaskCounts()
    count = min(limit or SYNTH_VALIDATION_PAGES, SYNTH_VALIDATION_PAGES)
    for i in range(count):
        page = make_page(VALIDATION_SEED_BASE + i, 768, 768)
        counts.add(engine.text_mask(page.image, options), page.text_mask)
    return {"set": "synthetic validation", "pages": count, **counts.scores()}


def mimi_font(root: Path) -> str:
    return str(root / "mimi-and-eunice-clean" / "fonts" / "NinaImprovedMedium.ttf")


def letter_strip(strip, font: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A clean strip with its transcript lettered into its balloon rectangles: (page, exact text mask)."""
    from engine.synth import draw_text_in_box

    rgb, _ = load_image(strip.image)
    truth = np.zeros(rgb.shape[:2], bool)
    texts = iter(strip.lines)
    for k, (_, (y0, x0, y1, x1)) in enumerate(strip.balloons):
        line = next(texts, None)
        if line is None:
            break
        rgb, mask = draw_text_in_box(rgb, (x0, y0, x1, y1), line[1].replace("*", ""), font, seed + k)
        truth |= mask
    return rgb, truth


def gutter_columns(rgb: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """bool (H, W): the white gutters between a strip's panels (and 6 px around them), where the strips carry a
    printed credit line that is real text but not in our truth; they are left out of the score."""
    column_white = (to_grey(rgb) >= 235).mean(axis=0) >= 0.75
    column_white = np.convolve(column_white.astype(float), np.ones(13), mode="same") > 0
    ignore = np.repeat(column_white[None, :], rgb.shape[0], axis=0)
    return ignore & ~truth


def mimi_set(engine, options, root: Path, limit, write: Callable | None) -> dict:
    strips = [s for i, s in enumerate(mimi_strips(root)) if i % 5 == 0 and s.balloons and s.lines]
    strips = strips[:limit] if limit else strips
    counts = MaskCounts()
    font = mimi_font(root)
    for i, strip in enumerate(strips):
        page, truth = letter_strip(strip, font, seed=i)
        pred = engine.text_mask(page, options)
        scored = ~gutter_columns(page, truth)
        counts.add(pred[scored], truth[scored])
        if write:
            write(f"mimi-{strip.image.stem}", overlay(page, pred))
    return {"set": "real art + lettering (Mimi and Eunice, held-out fifth)", "pages": len(strips), **counts.scores()}


def openmantra_set(engine, options, root: Path, limit, write: Callable | None) -> dict:
    pages = openmantra_pages(root)
    pages = pages[:limit] if limit else pages
    ink_total = ink_covered = boxes = boxes_covered = 0
    mask_total = mask_outside = 0
    for page in pages:
        rgb, _ = load_image(page.image)
        pred = engine.text_mask(rgb, options)
        grey = to_grey(rgb)
        inside = np.zeros_like(pred)
        for y0, x0, y1, x1 in page.text_boxes:
            inside[y0:y1, x0:x1] = True
            ink = grey[y0:y1, x0:x1] < INK_LEVEL
            covered = ink & pred[y0:y1, x0:x1]
            n_ink, n_cov = int(ink.sum()), int(covered.sum())
            if n_ink:
                boxes += 1
                boxes_covered += n_cov >= BOX_COVERED * n_ink
        ink_all = (grey < INK_LEVEL) & inside
        ink_total += int(ink_all.sum())
        ink_covered += int((ink_all & pred).sum())
        mask_total += int(pred.sum())
        mask_outside += int((pred & ~inside).sum())
        if write:
            write(f"openmantra-{page.image.parent.parent.name}-{page.image.stem}", overlay(rgb, pred, page.text_boxes))
    return {
        "set": "real manga (OpenMantra dev, dialogue boxes)", "pages": len(pages),
        "ink_recall": ink_covered / max(1, ink_total),
        "boxes_90": boxes_covered / max(1, boxes),
        "mask_outside_boxes": mask_outside / max(1, mask_total),
    }


def sickzil_set(engine, options, root: Path, limit, write: Callable | None) -> dict:
    pairs = sickzil_pairs(root)
    pairs = pairs[:limit] if limit else pairs
    counts = MaskCounts()
    for orig, diff in pairs:
        rgb, _ = load_image(orig)
        truth = np.asarray(Image.open(diff).convert("L")) > 0
        pred = engine.text_mask(rgb, options)
        counts.add(pred, truth)
        if write:
            write(f"sickzil-{orig.stem}", overlay(rgb, pred))
    return {"set": "SickZil pairs (difference masks, pseudo-truth)", "pages": len(pairs), **counts.scores()}


def look_pages(engine, options, root: Path, write: Callable) -> int:
    """Overlays (no truth) for the other real pages, to look at."""
    patterns = ["climate-frogs-en/*.png", "panelcleaner/*_orig.png", "mokuro/*.jpg", "comic-text-detector/*[0-9].jpg",
                "mic/ori.png"]
    count = 0
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            rgb, _ = load_image(path)
            write(f"look-{path.parent.name}-{path.stem}", overlay(rgb, engine.text_mask(rgb, options)))
            count += 1
    return count


def run(engine: Engine, root: Path | None, overlays: Path | None, limit: int | None,
        options: CleanOptions | None = None, log=print) -> list[dict]:
    def write(name: str, img: Image.Image) -> None:
        save_png_atomic(img, overlays / f"{name}.png")

    writer = write if overlays else None
    options = options or CleanOptions()
    rows = [synthetic_set(engine, options, limit)]
    log(_format_row(rows[-1]))
    if root is not None:
        for fn in (mimi_set, openmantra_set, sickzil_set):
            rows.append(fn(engine, options, root, limit, writer))
            log(_format_row(rows[-1]))
        if overlays:
            look_pages(engine, options, root, write)
    return rows


COLUMNS = ["precision", "recall", "f1", "iou", "ink_recall", "boxes_90", "mask_outside_boxes"]


def _format_row(row: dict) -> str:
    return f"  {row['set']}: " + ", ".join(f"{k} {row[k]:.4f}" for k in COLUMNS if k in row)


def format_table(rows: list[dict]) -> str:
    head = f"{'set':<56} {'pages':>5} " + " ".join(f"{c:>10}" for c in ["precision", "recall", "F1", "IoU",
                                                                            "ink_rec", "boxes90", "outside"])
    lines = [head, "-" * len(head)]
    for row in rows:
        cells = " ".join(f"{row[c]:>10.4f}" if c in row else f"{'':>10}" for c in COLUMNS)
        lines.append(f"{row['set']:<56} {row['pages']:>5} {cells}")
    return "\n".join(lines)
