"""Readers for the real evaluation pages (kept outside the repository; see ``--realpages``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1), end-exclusive


def default_realpages() -> Path | None:
    """$KESU_REALPAGES, else ../shared/data/realpages beside the checkout when it exists."""
    env = os.environ.get("KESU_REALPAGES")
    if env:
        return Path(env)
    guess = Path(__file__).resolve().parents[4] / "shared" / "data" / "realpages"
    return guess if guess.is_dir() else None


@dataclass
class MantraPage:
    image: Path
    text_boxes: list[Box]


def openmantra_pages(root: Path) -> list[MantraPage]:
    """OpenMantra pages with their human dialogue/caption boxes."""
    folder = root / "openmantra-dev"
    data = json.loads((folder / "annotation.json").read_text(encoding="utf-8"))
    pages = []
    for book in data:
        for page in book["pages"]:
            boxes = [(t["y"], t["x"], t["y"] + t["h"], t["x"] + t["w"]) for t in page["text"]]
            pages.append(MantraPage(folder / page["image_paths"]["ja"], boxes))
    return pages


@dataclass
class Strip:
    image: Path
    balloons: list[tuple[str, Box]]  # (speaker, box)
    lines: list[tuple[str, str]]     # (speaker, text) in reading order


def mimi_strips(root: Path) -> list[Strip]:
    """Clean Mimi and Eunice strips with their balloon rectangles and transcript lines."""
    folder = root / "mimi-and-eunice-clean"
    strips = []
    for image in sorted((folder / "images").glob("*.png")):
        tsv, txt = folder / "word-bubbles" / f"{image.stem}.tsv", folder / "transcripts" / f"{image.stem}.txt"
        if not tsv.exists() or not txt.exists():
            continue
        balloons = []
        for line in tsv.read_text(encoding="utf-8", errors="replace").splitlines()[2:]:
            parts = line.split("}}")[0].split("\t")
            # only non-negative corners: "-1 -1 -1 -1" marks a strip without balloons
            if len(parts) >= 5 and all(p.strip().isdigit() for p in parts[1:5]):
                x0, y0, x1, y1 = (int(p) for p in parts[1:5])
                balloons.append((parts[0], (min(y0, y1), min(x0, x1), max(y0, y1), max(x0, x1))))
        lines = []
        for line in txt.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
            speaker, sep, text = line.partition(":")
            if sep and text.strip():
                lines.append((speaker.strip(), text.strip()))
        strips.append(Strip(image, balloons, lines))
    return strips


def real_art_files(folder: str | Path, held_out: bool) -> list[Path]:
    """PNG files of a clean-art folder, sorted; every 5th is held out for evaluation, the rest may be trained on."""
    files = sorted(Path(folder).glob("*.png"))
    return [f for i, f in enumerate(files) if (i % 5 == 0) == held_out]


def erase_gutter_credits(grey: np.ndarray) -> np.ndarray:
    """A copy of a grey Mimi and Eunice strip with the credit line in its panel gutters painted white.

    The clean strips keep a small vertical credit ("Original comic from ...") in a white gutter between panels:
    real text that no truth mask marks. Gutters are narrow runs of mostly white columns (gaps of a few columns,
    where the credit's letters are, bridged) near the two panel boundaries of the 3-panel strips.
    """
    out = grey.copy()
    W = grey.shape[1]
    white_columns = (grey > 240).mean(axis=0) > 0.85
    runs: list[list[int]] = []
    for x in np.flatnonzero(white_columns):
        if runs and x - runs[-1][1] <= 12:
            runs[-1][1] = int(x)
        else:
            runs.append([int(x), int(x)])
    for x0, x1 in runs:
        centre = (x0 + x1) / 2 / W
        if x1 - x0 <= 80 and (0.30 < centre < 0.36 or 0.64 < centre < 0.70):
            out[:, x0:x1 + 1] = 255
    return out


def sickzil_pairs(root: Path) -> list[tuple[Path, Path]]:
    folder = root / "sickzil-pairs"
    return [(p, p.with_name(p.name.replace("_orig", "_diffmask"))) for p in sorted(folder.glob("*_orig.png"))]
