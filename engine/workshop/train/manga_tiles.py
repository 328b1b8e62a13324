"""Tiles of real manga pages with their text marked, for training the inpainting network on real screentone.

``python -m engine.workshop.train.manga_tiles OUT --pages DIR`` cuts square tiles out of every page in DIR (your own
chapters, raw or cleaned); without ``--pages`` it takes the development pages of the real-pages folder that
``kesu eval inpaint`` does not use (the mokuro pages, the SickZil cleaned pages, the comic-text-detector page).
Text is what Kesu's own detector finds, plus, for the development pages, what their own files mark (OCR boxes,
difference masks, a peer's mask), grown by a margin. It is stored as the tile's transparency (alpha 0), and
training keeps the holes off it, so the network is only asked to paint art, while text stays in the known
surroundings as on a real page. A tile is kept when most of it is free of text. Train on them with
``KESU_MANGA_ART_DIR=OUT kesu train inpaint --set manga_art_share=0.3 ...``.

Mind the pages' licence before shipping weights trained on them: the development pages are for research and
evaluation only, so the shipped weights are not trained on them. Tiles stay outside the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from scipy import ndimage

from engine.errors import InputError

TILE = 256
STRIDE = 64
MARGIN = 12
MIN_FREE = 0.6


def free_tile_origins(avoid: np.ndarray, size: int = TILE, stride: int = STRIDE,
                      min_free: float = 1.0) -> list[tuple[int, int]]:
    """(y, x) of every ``size`` square on a ``stride`` grid of the page of which at least ``min_free`` holds no
    ``avoid`` pixel (1.0: none at all)."""
    height, width = avoid.shape
    if height < size or width < size:
        return []
    table = np.zeros((height + 1, width + 1), np.int64)
    table[1:, 1:] = avoid.astype(np.int64).cumsum(0).cumsum(1)
    out = []
    for y in range(0, height - size + 1, stride):
        for x in range(0, width - size + 1, stride):
            count = table[y + size, x + size] - table[y, x + size] - table[y + size, x] + table[y, x]
            if count <= (1.0 - min_free) * size * size:
                out.append((y, x))
    return out


def _boxes_mask(shape: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for y0, x0, y1, x1 in boxes:
        mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    return mask


def manga_pages(root: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, rgb, known text mask) of the real manga pages that the inpainting evaluation does not use."""
    from engine.imageio import load_image

    for json_path in sorted((root / "mokuro").glob("*.json")):
        image = json_path.with_suffix(".jpg")
        if not image.exists():
            continue
        rgb, _ = load_image(image)
        blocks = json.loads(json_path.read_text(encoding="utf-8")).get("blocks", [])
        boxes = [(int(b["box"][1]), int(b["box"][0]), int(b["box"][3]), int(b["box"][2])) for b in blocks]
        yield f"mokuro-{image.stem}", rgb, _boxes_mask(rgb.shape[:2], boxes)
    for clean in sorted((root / "sickzil-pairs").glob("*_szmc_clean.png")):
        diff = clean.with_name(clean.name.replace("_szmc_clean", "_diffmask"))
        rgb, _ = load_image(clean)
        known = load_image(diff)[0][..., 0] > 0 if diff.exists() else np.zeros(rgb.shape[:2], bool)
        yield f"sickzil-{clean.stem.replace('_szmc_clean', '')}", rgb, known
    for mask_path in sorted((root / "comic-text-detector").glob("*-mask.png")):
        image = mask_path.with_name(mask_path.name.replace("-mask.png", ".jpg"))
        if not image.exists():
            continue
        rgb, _ = load_image(image)
        yield f"ctd-{image.stem}", rgb, load_image(mask_path)[0][..., 0] > 0


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def folder_pages(folder: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, rgb, no known text) of every image in ``folder`` (sorted; the detector marks the text)."""
    from engine.imageio import load_image

    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            rgb, _ = load_image(path)
            yield f"{folder.name}-{path.stem}", rgb, np.zeros(rgb.shape[:2], bool)


def cut_tiles(pages: Iterable[tuple[str, np.ndarray, np.ndarray]], out: Path,
              detect_text: Callable[[np.ndarray], np.ndarray], size: int = TILE,
              stride: int = STRIDE, margin: int = MARGIN, min_free: float = MIN_FREE, log=print) -> int:
    """Write the tiles of every (name, rgb, known text) page to ``out`` (RGBA: alpha 0 on text); returns how many
    were written."""
    from PIL import Image

    from engine.imageio import save_png_atomic

    out.mkdir(parents=True, exist_ok=True)
    written = 0
    found_pages = 0
    for name, rgb, known in pages:
        found_pages += 1
        text = known | detect_text(rgb)
        avoid = ndimage.binary_dilation(text, np.ones((3, 3), bool), iterations=margin)
        rgba = np.dstack([rgb, np.where(avoid, 0, 255).astype(np.uint8)])
        origins = free_tile_origins(avoid, size, stride, min_free)
        for y, x in origins:
            save_png_atomic(Image.fromarray(rgba[y:y + size, x:x + size], "RGBA"),
                            out / f"{name}-y{y:04d}-x{x:04d}.png")
        written += len(origins)
        log(f"{name}: {len(origins)} tiles ({(~avoid).mean():.0%} of the page is away from text)")
    if not found_pages:
        raise InputError("no pages were found to cut tiles from: pass --pages DIR (a folder of page images) or "
                         "--realpages DIR (holding mokuro/, sickzil-pairs/, comic-text-detector/)")
    return written


def main(argv: list[str] | None = None) -> int:
    from engine.pipeline import Engine
    from engine.workshop.eval.realpages import default_realpages

    parser = argparse.ArgumentParser(prog="python -m engine.workshop.train.manga_tiles",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder for the tiles (created)")
    parser.add_argument("--pages", type=Path, action="append", metavar="DIR",
                        help="a folder of page images to cut (repeatable)")
    parser.add_argument("--realpages", type=Path, default=None,
                        help="without --pages: the real pages folder ($KESU_REALPAGES)")
    args = parser.parse_args(argv)
    if args.pages:
        missing = [str(d) for d in args.pages if not d.is_dir()]
        if missing:
            raise InputError(f"--pages: no such folder: {', '.join(missing)}")
        pages = (page for folder in args.pages for page in folder_pages(folder))
    else:
        root = args.realpages or default_realpages()
        if root is None:
            raise InputError("the real pages were not found: pass --pages DIR, --realpages DIR or set KESU_REALPAGES")
        pages = manga_pages(root)
    engine = Engine.load(roles=("textseg",))
    count = cut_tiles(pages, args.out, engine.text_mask)
    print(f"{count} tiles in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
