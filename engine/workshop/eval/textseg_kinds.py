"""``kesu eval textseg``, per kind of text: what each mode marks on real manga whose every piece of text is boxed
(engine/workshop/eval/annotations/, see kinds.py).

Modes (as ``--text`` on the command line): ``dialogue`` marks the lettering, ``all`` the lettering and the sound
effects, ``sfx`` the sound effects, each as the engine makes them (engine.pipeline.kind_tight_masks: the text
found, told apart by its surroundings; see engine/pipeline/surroundings.py).

Per set and mode:
- ``lettering_recall``/``lettering_boxes_90``: the lettering (ink pieces wholly inside a lettering box) covered,
  and the share of lettering boxes with 90% of it covered. On OpenMantra the lettering boxes are the set's own
  dialogue boxes (so the numbers compare with the earlier rows); on blackjack, ours.
- ``mask_outside_lettering``: the share of the mask outside every lettering box (ours and the set's).
- ``art_px_median``/``art_px_worst``: artwork marked per page: dark ink (grey < 128) in the mask outside every
  box of any kind (boxes grown by ``BOX_TOLERANCE`` px), in the page's own pixels.
- ``sfx_recall``: the dark ink inside sound-effect boxes that the mask covers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.imageio import load_image
from engine.pipeline import TEXT_CHOICES, TEXT_KINDS, CleanOptions, Engine, kind_tight_masks, union
from engine.pipeline.detect import detect_probabilities, to_grey
from engine.workshop.eval import kinds
from engine.workshop.eval.textseg import INK_LEVEL, lettering_ink, overlay

MODES = ("dialogue", "all")
BOX_TOLERANCE = 4  # hand-drawn boxes are tight: ink this near a box is not counted as artwork
HELD_OUT_BLACKJACK = ("black_jack_v01_pdf145.jpg", "black_jack_v01_pdf171.jpg", "black_jack_v01_pdf201.jpg")


def kind_probabilities(model: torch.nn.Module, rgb: np.ndarray, short_side: int, tile: int = 1024,
                       margin: int = 96) -> np.ndarray:
    """float32 (K, H, W): each output channel's probability over a page, as detection makes it, in float32."""
    return detect_probabilities(model, rgb, short_side, tile, margin, bfloat16=False)


def mode_masks_from(prob: dict[str, np.ndarray], rgb: np.ndarray, options: CleanOptions,
                    modes=MODES) -> dict[str, np.ndarray]:
    """Each mode's mask as the engine makes it from each kind's probability ``prob``, all from one split
    (kind_tight_masks: the kinds told apart by their surroundings unless ``options.check_surroundings`` is off)."""
    found = kind_tight_masks(prob, rgb, options, TEXT_KINDS)
    return {m: union([found[k] for k in TEXT_CHOICES[m]], rgb.shape[:2]) for m in modes}


@dataclass
class KindCounts:
    lettering_total: int = 0
    lettering_covered: int = 0
    lettering_boxes: int = 0
    lettering_boxes_covered: int = 0
    mask_total: int = 0
    mask_outside_lettering: int = 0
    sfx_total: int = 0
    sfx_covered: int = 0
    aside_total: int = 0
    aside_covered: int = 0
    art_px: list[int] = field(default_factory=list)

    def add(self, pred: np.ndarray, grey: np.ndarray, lettering_boxes, boxes: list[kinds.KindBox],
            lettering: list[np.ndarray]) -> int:
        """Count one page (boxes as (y0, x0, y1, x1) for the lettering ones); returns its artwork px."""
        H, W = grey.shape
        ink = grey < INK_LEVEL
        for (y0, x0, y1, x1), letters in zip(lettering_boxes, lettering, strict=True):
            n, c = int(letters.sum()), int((letters & pred[y0:y1, x0:x1]).sum())
            self.lettering_total += n
            self.lettering_covered += c
            if n:
                self.lettering_boxes += 1
                self.lettering_boxes_covered += c >= 0.9 * n
        in_lettering = np.zeros((H, W), bool)
        for y0, x0, y1, x1 in lettering_boxes:
            in_lettering[y0:y1, x0:x1] = True
        in_any = in_lettering.copy()
        sfx_ink, aside_ink = np.zeros((H, W), bool), np.zeros((H, W), bool)
        for b in boxes:
            y0, x0, y1, x1 = b.yxyx
            if b.group == "lettering":
                in_lettering[y0:y1, x0:x1] = True
                aside_ink[y0:y1, x0:x1] |= ink[y0:y1, x0:x1]
            elif b.group == "sfx":
                sfx_ink[y0:y1, x0:x1] |= ink[y0:y1, x0:x1]
        grown = in_any.copy()
        for b in boxes:
            y0, x0, y1, x1 = b.yxyx
            t = BOX_TOLERANCE
            grown[max(0, y0 - t):y1 + t, max(0, x0 - t):x1 + t] = True
        for y0, x0, y1, x1 in lettering_boxes:
            t = BOX_TOLERANCE
            grown[max(0, y0 - t):y1 + t, max(0, x0 - t):x1 + t] = True
        self.mask_total += int(pred.sum())
        self.mask_outside_lettering += int((pred & ~in_lettering).sum())
        self.sfx_total += int(sfx_ink.sum())
        self.sfx_covered += int((sfx_ink & pred).sum())
        self.aside_total += int(aside_ink.sum())
        self.aside_covered += int((aside_ink & pred).sum())
        art = int((pred & ink & ~grown).sum())
        self.art_px.append(art)
        return art

    def scores(self) -> dict:
        art = np.array(self.art_px or [0])
        return {
            "lettering_recall": self.lettering_covered / max(1, self.lettering_total),
            "lettering_boxes_90": self.lettering_boxes_covered / max(1, self.lettering_boxes),
            "mask_outside_lettering": self.mask_outside_lettering / max(1, self.mask_total),
            "art_px_median": float(np.median(art)),
            "art_px_worst": int(art.max()),
            "pages_over_2000": int((art > 2000).sum()),
            "sfx_recall": self.sfx_covered / max(1, self.sfx_total) if self.sfx_total else float("nan"),
            "added_lettering_recall": self.aside_covered / max(1, self.aside_total) if self.aside_total
            else float("nan"),
        }


def _openmantra(root: Path):
    from engine.workshop.eval.realpages import openmantra_pages

    boxes = kinds.load("openmantra-dev")
    for page in openmantra_pages(root):
        rel = page.image.relative_to(root / "openmantra-dev").as_posix()
        yield f"openmantra-{rel.replace('/', '-')}", page.image, list(page.text_boxes), boxes.get(rel, [])


def _blackjack(root: Path, held_out_only: bool):
    boxes = kinds.load("blackjack")
    for name, page_boxes in sorted(boxes.items()):
        if held_out_only and name not in HELD_OUT_BLACKJACK:
            continue
        lettering = [b.yxyx for b in page_boxes if b.group == "lettering"]
        others = [b for b in page_boxes if b.group != "lettering"]
        yield f"blackjack-{Path(name).stem}", root / "blackjack" / name, lettering, others


class MaskCache:
    """The modes' masks of each page. The detector's probabilities (the slow part: a minute a page on a busy
    machine) are kept, when a folder is given ($KESU_KINDS_CACHE), on disk under the weights' identity, as
    float16; the masks are made from them on every run (kind_tight_masks: well under a second a page), so a
    change to the thresholds or to the kinds' split needs no new detection."""

    def __init__(self, engine: Engine, options: CleanOptions, folder: Path | None):
        self.engine, self.options, self.memory = engine, options, {}
        self.folder = None
        if folder is not None:
            import hashlib

            model = engine._model("textseg")
            digest = hashlib.sha256()
            for name, tensor in sorted(model.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().numpy().tobytes())
            self.folder = Path(folder) / f"{digest.hexdigest()[:16]}-s{options.detect_short_side}"
            self.folder.mkdir(parents=True, exist_ok=True)

    def probabilities(self, tag: str, rgb: np.ndarray) -> np.ndarray:
        path = self.folder / f"{tag}.npy" if self.folder else None
        if path is not None and path.exists():
            prob = np.load(path).astype(np.float32)
            if prob.shape[1:] == rgb.shape[:2]:
                return prob
        prob = kind_probabilities(self.engine._model("textseg"), rgb, self.options.detect_short_side)
        if path is not None:
            np.save(path, prob.astype(np.float16))
        return prob

    def masks(self, tag: str, rgb: np.ndarray) -> dict[str, np.ndarray]:
        if tag not in self.memory:
            prob = dict(zip(TEXT_KINDS, self.probabilities(tag, rgb), strict=False))
            self.memory[tag] = mode_masks_from(prob, rgb, self.options)
        return self.memory[tag]


def spread(pages: list, limit: int | None) -> list:
    """At most ``limit`` pages, evenly spaced over the set (both titles of OpenMantra, not the first pages)."""
    if not limit or len(pages) <= limit:
        return pages
    return [pages[round(i * (len(pages) - 1) / (limit - 1))] for i in range(limit)] if limit > 1 else pages[:1]


def score_set(cache: MaskCache, pages, write: Callable | None, log=print) -> dict:
    counts = {m: KindCounts() for m in MODES}
    per_page = []
    for tag, path, lettering_boxes, boxes in pages:
        rgb, _ = load_image(path)
        grey = to_grey(rgb)
        lettering = lettering_ink(grey, lettering_boxes)
        masks = cache.masks(tag, rgb)
        row = {"page": tag}
        log(f"  {tag}")
        for m in MODES:
            row[m] = counts[m].add(masks[m], grey, lettering_boxes, boxes, lettering)
        per_page.append(row)
        if write:
            shown = [b.yxyx for b in boxes] + list(lettering_boxes)
            write(f"kinds-{tag}", overlay(rgb, masks["dialogue"], shown, colour=(255, 0, 64)),
                  overlay(rgb, masks["all"] & ~masks["dialogue"], shown, colour=(255, 150, 0)))
    return {"counts": counts, "per_page": per_page}


def run(engine: Engine, root: Path, overlays: Path | None, limit: int | None, options: CleanOptions | None = None,
        log=print) -> list[dict]:
    """Rows per set and mode (needs the annotations and the real pages)."""
    from engine.imageio import save_png_atomic

    options = replace(options or CleanOptions(), allow_bfloat16=False)

    def write(name, dialogue_img, sfx_img):
        both = Image.new("RGB", (dialogue_img.width * 2, dialogue_img.height))
        both.paste(dialogue_img, (0, 0))
        both.paste(sfx_img, (dialogue_img.width, 0))
        save_png_atomic(both, overlays / f"{name}.png")

    import os

    cache = MaskCache(engine, options, Path(os.environ["KESU_KINDS_CACHE"]) if os.environ.get("KESU_KINDS_CACHE")
                      else None)
    rows = []
    sets = [("real manga (blackjack, held-out 3 pages)", list(_blackjack(root, True))),
            ("real manga (OpenMantra dev, every text boxed)", list(_openmantra(root))),
            ("real manga (blackjack, all 12 pages)", list(_blackjack(root, False)))]
    for name, pages in sets:
        pages = spread(pages, limit)
        if not pages:
            continue
        result = score_set(cache, pages, write if overlays else None, log)
        for m in MODES:
            row = {"set": name, "mode": m, "pages": len(pages), **result["counts"][m].scores()}
            rows.append(row)
            log(json.dumps(row))
        if overlays:
            (overlays / f"kinds-{name.split('(')[1].split(',')[0]}-pages.json").write_text(
                json.dumps(result["per_page"], indent=1))
    return rows


COLUMNS = ["lettering_recall", "lettering_boxes_90", "mask_outside_lettering", "art_px_median", "art_px_worst",
           "pages_over_2000", "sfx_recall", "added_lettering_recall"]


def format_table(rows: list[dict]) -> str:
    titles = ["letters", "lboxes90", "outside", "art_med", "art_max", "art>2000", "sfx_rec", "added_rec"]
    head = f"{'set':<50} {'mode':>8} {'pages':>5} " + " ".join(f"{c:>9}" for c in titles)
    lines = [head, "-" * len(head)]
    for row in rows:
        cells = " ".join(f"{row[c]:>9.4f}" if isinstance(row[c], float) and row[c] < 10 else f"{row[c]:>9g}"
                         for c in COLUMNS)
        lines.append(f"{row['set']:<50} {row['mode']:>8} {row['pages']:>5} {cells}")
    return "\n".join(lines)
