"""``kesu eval textseg``: text-mask quality on synthetic pages, real art with exact truth, and real manga."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engine.imageio import load_image, save_png_atomic
from engine.pipeline import TEXT_KINDS, CleanOptions, Engine
from engine.pipeline.detect import to_grey
from engine.pipeline.masks import regions
from engine.pipeline.precision import bfloat16_is_native
from engine.workshop.eval.metrics import MaskCounts
from engine.workshop.eval.realpages import mimi_strips, openmantra_pages, real_art_files, sickzil_pairs
from engine.workshop.train.textseg import VALIDATION_SEED_BASE

SYNTH_VALIDATION_PAGES = 64
INK_LEVEL = 128             # OpenMantra: ink = grey below this inside the annotated boxes
BOX_COVERED = 0.90          # a box counts as covered when this share of its ink is masked
VISIBLE_LEVELS = 4          # synthetic: a text pixel is visible when it changes the page by more than this


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


class Predictor:
    """Text probability of a page from the engine's network, made a tight mask at each level of the sweep.

    ``mode``: which text (TEXT_CHOICES): "all" (both kinds: these sets' truth holds all text), "dialogue"
    (lettering) or "sfx"."""

    def __init__(self, engine: Engine, options: CleanOptions, thresholds: Sequence[float], mode: str = "all"):
        self.engine, self.options, self.thresholds, self.mode = engine, options, list(thresholds), mode

    def kind_probabilities(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """Each kind's text probability, as the engine computes it for users where the network has one kind or
        the processor computes bfloat16 natively; else the float32 probabilities of both channels."""
        from engine.workshop.eval.textseg_kinds import kind_probabilities

        one_kind = len(self.engine.model_kinds()) == 1
        if one_kind or (self.options.bfloat16 is None and bfloat16_is_native()):  # the engine's path, as users get it
            return self.engine.detect_kinds(rgb, self.options)
        prob = kind_probabilities(self.engine._model("textseg"), rgb, self.options.detect_short_side)
        return dict(zip(TEXT_KINDS, prob, strict=False))

    def masks(self, rgb: np.ndarray, mode: str | None = None,
              prob: dict[str, np.ndarray] | None = None) -> dict[float, np.ndarray]:
        """Threshold -> the mask of ``mode`` (default: the predictor's) at each level, as the engine makes it:
        thresholded, snapped to the ink, the kinds told apart (kind_tight_masks). ``prob``: the page's
        kind_probabilities, if already computed."""
        from engine.workshop.eval.textseg_kinds import mode_masks_from

        prob = self.kind_probabilities(rgb) if prob is None else prob
        mode = mode or self.mode
        return {t: mode_masks_from(prob, rgb, replace(self.options, threshold=t), (mode,))[mode]
                for t in self.thresholds}

    @property
    def shown(self) -> float:
        """The level whose masks the overlays show: the engine's own threshold if swept, else the first."""
        return self.options.threshold if self.options.threshold in self.thresholds else self.thresholds[0]


def _rows(base: dict, counts_per_level: dict) -> list[dict]:
    """One table row per threshold from its counts (anything with ``scores()``)."""
    return [{**base, "threshold": t, **counts.scores()} for t, counts in counts_per_level.items()]


def visible_truth(image: np.ndarray, clean: np.ndarray, truth: np.ndarray, levels: int = VISIBLE_LEVELS):
    """The pixels of ``truth`` where the lettering changed the page: ``image`` and its ``clean`` twin (uint8
    (H, W, 3), degraded alike) differ there by more than ``levels`` grey levels in some channel.

    The rest of the truth (a black glyph over a black area, a white outline over white paper, the faint rim a
    blur leaves) cannot be seen on the page; a detector that marks exactly the visible part scores the
    ``visible_f1`` of the synthetic rows, a ceiling for any detector that goes by what the page shows.
    """
    diff = np.abs(image.astype(np.int16) - clean.astype(np.int16)).max(axis=2)
    return truth & (diff > levels)


def synthetic_set(predict: Predictor, limit: int | None) -> list[dict]:
    from engine.workshop.eval.textseg_kinds import mode_masks_from
    from engine.workshop.synth import make_page

    counts = {t: MaskCounts() for t in predict.thresholds}
    kinds = {"dialogue": MaskCounts(), "sfx": MaskCounts()}  # each mode against its own kind's truth
    visible = MaskCounts()
    count = min(limit or SYNTH_VALIDATION_PAGES, SYNTH_VALIDATION_PAGES)
    for i in range(count):
        page = make_page(VALIDATION_SEED_BASE + i, 768, 768)
        visible.add(visible_truth(page.image, page.clean, page.text_mask), page.text_mask)
        prob = predict.kind_probabilities(page.image)
        for t, pred in predict.masks(page.image, prob=prob).items():
            counts[t].add(pred, page.text_mask)
        by_mode = mode_masks_from(prob, page.image, predict.options, ("dialogue", "sfx"))  # one split for both
        for mode, truth in (("dialogue", page.lettering_mask), ("sfx", page.sfx_mask)):
            kinds[mode].add(by_mode[mode], truth)
    rows = _rows({"set": "synthetic validation", "pages": count, "visible_f1": visible.f1}, counts)
    for mode, kind_counts in kinds.items():
        rows.append({"set": f"synthetic validation, {mode} mode vs its kind", "pages": count,
                     "threshold": predict.options.threshold, **kind_counts.scores()})
    return rows


def mimi_font(root: Path) -> str:
    return str(root / "mimi-and-eunice-clean" / "fonts" / "NinaImprovedMedium.ttf")


def letter_strip(strip, font: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A clean strip with its transcript lettered into its balloon rectangles: (page, exact text mask)."""
    from engine.workshop.synth import draw_text_in_box

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


def mimi_set(predict: Predictor, root: Path, limit, write: Callable | None) -> list[dict]:
    held_out = set(real_art_files(root / "mimi-and-eunice-clean" / "images", held_out=True))  # never trained on
    strips = [s for s in mimi_strips(root) if s.image in held_out and s.balloons and s.lines]
    strips = strips[:limit] if limit else strips
    counts = {t: MaskCounts() for t in predict.thresholds}
    font = mimi_font(root)
    for i, strip in enumerate(strips):
        page, truth = letter_strip(strip, font, seed=i)
        scored = ~gutter_columns(page, truth)
        preds = predict.masks(page, "dialogue")  # all of this truth is lettering: the default mode's
        for t, pred in preds.items():
            counts[t].add(pred[scored], truth[scored])
        if write:
            write(f"mimi-{strip.image.stem}", overlay(page, preds[predict.shown]))
    base = {"set": "real art + lettering (Mimi and Eunice, held-out fifth), dialogue", "pages": len(strips)}
    return _rows(base, counts)


def lettering_ink(grey: np.ndarray, text_boxes) -> list[np.ndarray]:
    """Per box, bool (h, w) of its lettering: the dark ink pieces that lie wholly inside the box.

    A box around the lettering also holds ink that is not text: the balloon's outline, a panel border, hair or
    a black background that cross it. Those pieces run out of the box; the glyphs (8-connected pieces of ink,
    grey < INK_LEVEL, over the whole page) stay inside it.
    """
    labels, pieces = regions(grey < INK_LEVEL)  # piece i + 1 spans pieces[i]
    out = []
    for y0, x0, y1, x1 in text_boxes:
        window = labels[y0:y1, x0:x1]
        ids = np.unique(window[window > 0])
        inside = [i for i in ids if pieces[i - 1][0] >= y0 and pieces[i - 1][1] >= x0
                  and pieces[i - 1][2] <= y1 and pieces[i - 1][3] <= x1]
        out.append(np.isin(window, inside))
    return out


@dataclass
class InkCounts:
    """Real manga with box annotations only: how much of the dark ink inside the boxes the mask covers.

    Two measures: all dark ink inside the boxes (``ink_recall``, ``boxes_90``: the issue's), and the lettering
    alone (``lettering_recall``, ``lettering_boxes_90``: ink pieces wholly inside a box; see lettering_ink).
    """

    ink_total: int = 0
    ink_covered: int = 0
    boxes: int = 0
    boxes_covered: int = 0
    lettering_total: int = 0
    lettering_covered: int = 0
    lettering_boxes: int = 0
    lettering_boxes_covered: int = 0
    mask_total: int = 0
    mask_outside: int = 0

    def add(self, pred: np.ndarray, grey: np.ndarray, text_boxes, lettering: list[np.ndarray] | None = None) -> None:
        """Count one page. ``lettering``: lettering_ink(grey, text_boxes), if already computed."""
        lettering = lettering if lettering is not None else lettering_ink(grey, text_boxes)
        inside, letters_all = np.zeros_like(pred), np.zeros_like(pred)
        for (y0, x0, y1, x1), letters in zip(text_boxes, lettering, strict=True):
            inside[y0:y1, x0:x1] = True
            letters_all[y0:y1, x0:x1] |= letters
            covered = pred[y0:y1, x0:x1]
            ink = grey[y0:y1, x0:x1] < INK_LEVEL
            n_ink, n_cov = int(ink.sum()), int((ink & covered).sum())
            if n_ink:
                self.boxes += 1
                self.boxes_covered += n_cov >= BOX_COVERED * n_ink
            n_letters, n_letters_cov = int(letters.sum()), int((letters & covered).sum())
            if n_letters:
                self.lettering_boxes += 1
                self.lettering_boxes_covered += n_letters_cov >= BOX_COVERED * n_letters
        ink_all = (grey < INK_LEVEL) & inside
        self.ink_total += int(ink_all.sum())
        self.ink_covered += int((ink_all & pred).sum())
        self.lettering_total += int(letters_all.sum())
        self.lettering_covered += int((letters_all & pred).sum())
        self.mask_total += int(pred.sum())
        self.mask_outside += int((pred & ~inside).sum())

    def scores(self) -> dict[str, float]:
        return {
            "ink_recall": self.ink_covered / max(1, self.ink_total),
            "boxes_90": self.boxes_covered / max(1, self.boxes),
            "lettering_recall": self.lettering_covered / max(1, self.lettering_total),
            "lettering_boxes_90": self.lettering_boxes_covered / max(1, self.lettering_boxes),
            "mask_outside_boxes": self.mask_outside / max(1, self.mask_total),
        }


def openmantra_set(predict: Predictor, root: Path, limit, write: Callable | None) -> list[dict]:
    pages = openmantra_pages(root)
    pages = pages[:limit] if limit else pages
    counts = {t: InkCounts() for t in predict.thresholds}
    for page in pages:
        rgb, _ = load_image(page.image)
        grey = to_grey(rgb)
        lettering = lettering_ink(grey, page.text_boxes)
        preds = predict.masks(rgb)
        for t, pred in preds.items():
            counts[t].add(pred, grey, page.text_boxes, lettering)
        if write:
            write(f"openmantra-{page.image.parent.parent.name}-{page.image.stem}",
                  overlay(rgb, preds[predict.shown], page.text_boxes))
    base = {"set": "real manga (OpenMantra dev, dialogue boxes)", "pages": len(pages)}
    return _rows(base, counts)


def sickzil_set(predict: Predictor, root: Path, limit, write: Callable | None) -> list[dict]:
    pairs = sickzil_pairs(root)
    pairs = pairs[:limit] if limit else pairs
    counts = {t: MaskCounts() for t in predict.thresholds}
    for orig, diff in pairs:
        rgb, _ = load_image(orig)
        truth = np.asarray(Image.open(diff).convert("L")) > 0
        preds = predict.masks(rgb)
        for t, pred in preds.items():
            counts[t].add(pred, truth)
        if write:
            write(f"sickzil-{orig.stem}", overlay(rgb, preds[predict.shown]))
    base = {"set": "SickZil pairs (difference masks, pseudo-truth)", "pages": len(pairs)}
    return _rows(base, counts)


def look_pages(predict: Predictor, root: Path, write: Callable) -> int:
    """Overlays (no truth) for the other real pages, to look at."""
    patterns = ["climate-frogs-en/*.png", "panelcleaner/*_orig.png", "mokuro/*.jpg", "comic-text-detector/*[0-9].jpg",
                "mic/ori.png"]
    count = 0
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            rgb, _ = load_image(path)
            write(f"look-{path.parent.name}-{path.stem}", overlay(rgb, predict.masks(rgb)[predict.shown]))
            count += 1
    return count


def run(engine: Engine, root: Path | None, overlays: Path | None, limit: int | None,
        options: CleanOptions | None = None, log=print, thresholds: Sequence[float] | None = None) -> list[dict]:
    """Score every set at each threshold (default: the engine's own); one row per set and threshold."""
    def write(name: str, img: Image.Image) -> None:
        save_png_atomic(img, overlays / f"{name}.png")

    writer = write if overlays else None
    options = options or CleanOptions()
    predict = Predictor(engine, options, thresholds or [options.threshold])
    rows = synthetic_set(predict, limit)
    for row in rows:
        log(_format_row(row))
    if root is not None:
        for fn in (mimi_set, openmantra_set, sickzil_set):
            new = fn(predict, root, limit, writer)
            for row in new:
                log(_format_row(row))
            rows += new
        if overlays:
            look_pages(predict, root, write)
    return rows


COLUMNS = ["precision", "recall", "f1", "iou", "visible_f1", "ink_recall", "boxes_90", "lettering_recall",
           "lettering_boxes_90", "mask_outside_boxes"]


def _format_row(row: dict) -> str:
    return f"  {row['set']} @ {row['threshold']:g}: " + ", ".join(f"{k} {row[k]:.4f}" for k in COLUMNS if k in row)


def format_table(rows: list[dict]) -> str:
    titles = ["precision", "recall", "F1", "IoU", "visibleF1", "ink_rec", "boxes90", "letters", "lboxes90", "outside"]
    head = f"{'set':<56} {'pages':>5} {'thresh':>6} " + " ".join(f"{c:>10}" for c in titles)
    lines = [head, "-" * len(head)]
    for row in rows:
        cells = " ".join(f"{row[c]:>10.4f}" if c in row else f"{'':>10}" for c in COLUMNS)
        lines.append(f"{row['set']:<56} {row['pages']:>5} {row['threshold']:>6g} {cells}")
    return "\n".join(lines)
