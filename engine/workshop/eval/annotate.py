"""Annotating text by kind on real pages, by looking (the tool that made engine/workshop/eval/annotations/).

``python -m engine.workshop.eval.annotate show SET PAGE OUT.png`` draws the page with the boxes it already has
(the set's own dialogue boxes in green, this project's boxes in a colour per kind) and numbered candidate
regions in red: the pieces of the detector's mask outside every box, and clusters of dark ink of about the size
of lettering outside every box and every detector piece. A faint grid every 100 page pixels helps to read
coordinates for text no candidate covers. Candidates are written beside OUT as JSON.

``python -m engine.workshop.eval.annotate record SET PAGE OUT.png "3:sfx 5:sign" [--add "x0,y0,x1,y1:kind" ...]``
adds the named candidates (with their kinds) and the typed boxes to ``annotations/SET.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from engine.workshop.eval import kinds

SETS = {  # set name -> folder under the real-pages root
    "openmantra-dev": "openmantra-dev",
    "blackjack": "blackjack",
}
KIND_COLOURS = {"lettering": (0, 90, 255), "aside": (0, 170, 255), "sfx": (255, 140, 0), "sign": (170, 0, 200),
                "page-number": (120, 120, 120)}
INK = 128


def own_boxes(set_name: str, page: str, root: Path) -> list[tuple[int, int, int, int]]:
    """The set's own text boxes (x0, y0, x1, y1): OpenMantra's dialogue boxes; none for the others."""
    if set_name != "openmantra-dev":
        return []
    data = json.loads((root / "openmantra-dev" / "annotation.json").read_text(encoding="utf-8"))
    for book in data:
        for p in book["pages"]:
            if p["image_paths"]["ja"] == page:
                return [(t["x"], t["y"], t["x"] + t["w"], t["y"] + t["h"]) for t in p["text"]]
    raise ValueError(f"{page} is not an OpenMantra dev page")


def pages_of(set_name: str, root: Path) -> list[str]:
    folder = root / SETS[set_name]
    if set_name == "openmantra-dev":
        data = json.loads((folder / "annotation.json").read_text(encoding="utf-8"))
        return [p["image_paths"]["ja"] for book in data for p in book["pages"]]
    return sorted(p.name for p in folder.glob("*.jpg"))


def _boxes_of(labels: np.ndarray, count: int) -> list[tuple[int, int, int, int]]:
    out = []
    for sl in ndimage.find_objects(labels, count):
        if sl is not None:
            out.append((sl[1].start, sl[0].start, sl[1].stop, sl[0].stop))
    return out


def candidates(grey: np.ndarray, detected: np.ndarray, taken: list[tuple[int, int, int, int]],
               ink_clusters: bool = False) -> list[list[int]]:
    """Boxes (x0, y0, x1, y1) of regions that may be text no box holds: detector pieces outside the boxes (merged
    when within 12 px), then clusters of small ink pieces (each at most 1/12 of the page's short side, merged when
    within 6 px) outside boxes and detector pieces, when ``ink_clusters`` (on busy art they are too many to
    help)."""
    H, W = grey.shape
    outside = np.ones((H, W), bool)
    for x0, y0, x1, y1 in taken:
        outside[max(0, y0 - 3):y1 + 3, max(0, x0 - 3):x1 + 3] = False
    det = detected & outside
    det = ndimage.binary_opening(det, iterations=1)
    grown = ndimage.binary_dilation(det, iterations=12)
    labels, n = ndimage.label(grown)
    found = [b for b in _boxes_of(labels * ndimage.binary_dilation(det, iterations=1), n)]
    found = [list(b) for b in found if (b[2] - b[0]) * (b[3] - b[1]) >= 60]
    if not ink_clusters:
        return found
    covered = outside.copy()
    for x0, y0, x1, y1 in found:
        covered[y0:y1, x0:x1] = False
    ink = grey < INK
    labels, n = ndimage.label(ink, structure=np.ones((3, 3)))
    limit = min(H, W) / 12
    small = np.zeros_like(ink)
    for i, sl in enumerate(ndimage.find_objects(labels, n), start=1):
        h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        if max(h, w) <= limit and max(h, w) >= 4:
            small[sl] |= labels[sl] == i
    small &= covered
    clusters, m = ndimage.label(ndimage.binary_dilation(small, iterations=6))
    for b in _boxes_of(clusters, m):
        x0, y0, x1, y1 = b
        area = int(small[y0:y1, x0:x1].sum())
        if area >= 40 and min(x1 - x0, y1 - y0) >= 12 and max(x1 - x0, y1 - y0) <= min(H, W) / 3:
            found.append([x0 + 6, y0 + 6, x1 - 6, y1 - 6])
    return found


def render(grey: np.ndarray, own: list, annotated: list[kinds.KindBox], cands: list[list[int]]) -> Image.Image:
    img = Image.fromarray(grey).convert("RGB")
    draw = ImageDraw.Draw(img)
    H, W = grey.shape
    font = ImageFont.load_default(size=max(14, min(H, W) // 60))
    small = ImageFont.load_default(size=max(10, min(H, W) // 110))
    for x in range(100, W, 100):
        draw.line([(x, 0), (x, H)], fill=(200, 230, 255), width=1)
        draw.text((x + 2, 2), str(x), fill=(0, 120, 255), font=small)
    for y in range(100, H, 100):
        draw.line([(0, y), (W, y)], fill=(200, 230, 255), width=1)
        draw.text((2, y + 2), str(y), fill=(0, 120, 255), font=small)
    for x0, y0, x1, y1 in own:
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=(0, 190, 0), width=3)
    for b in annotated:
        x0, y0, x1, y1 = b.box
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=KIND_COLOURS[b.kind], width=3)
        draw.text((x0, y1), b.kind, fill=KIND_COLOURS[b.kind], font=small)
    for i, (x0, y0, x1, y1) in enumerate(cands):
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=(255, 0, 40), width=2)
        draw.text((x0 + 1, y0 - font.size - 1 if y0 > font.size else y1), str(i), fill=(255, 0, 40), font=font,
                  stroke_width=2, stroke_fill=(255, 255, 255))
    return img


def _detected(path: Path) -> np.ndarray:
    from engine.imageio import load_image
    from engine.pipeline import Engine

    engine = Engine.load(roles=("textseg",))
    rgb, _ = load_image(path)
    return engine.text_mask(rgb)


def show(set_name: str, page: str, out: Path, root: Path, scale: float = 1.0, detect: bool = True) -> int:
    path = root / SETS[set_name] / page
    grey = np.asarray(Image.open(path).convert("L"))
    cache = out.with_suffix(".candidates.json")
    if cache.exists():
        cands = json.loads(cache.read_text())
    elif not detect:
        cands = []
        cache.write_text("[]")
    else:
        own = own_boxes(set_name, page, root)
        annotated = _load_page(set_name, page)
        cands = candidates(grey, _detected(path), own + [b.box for b in annotated])
        cache.write_text(json.dumps(cands))
    img = render(grey, own_boxes(set_name, page, root), _load_page(set_name, page), cands)
    if scale != 1.0:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    img.save(out)
    return len(cands)


def _load_page(set_name: str, page: str) -> list[kinds.KindBox]:
    if not (kinds.ANNOTATIONS / f"{set_name}.json").exists():
        return []
    return kinds.load(set_name).get(page, [])


def record(set_name: str, page: str, out: Path, picks: str, added: list[str]) -> list[kinds.KindBox]:
    cands = json.loads(out.with_suffix(".candidates.json").read_text())
    pages = kinds.load(set_name) if (kinds.ANNOTATIONS / f"{set_name}.json").exists() else {}
    boxes = list(pages.get(page, []))
    for item in picks.split():
        number, _, kind = item.partition(":")
        boxes.append(kinds.KindBox(tuple(cands[int(number)]), kind))
    for item in added:
        coords, _, kind = item.partition(":")
        boxes.append(kinds.KindBox(tuple(int(v) for v in coords.split(",")), kind))
    for b in boxes:
        if b.kind not in kinds.KINDS:
            raise SystemExit(f"unknown kind {b.kind!r}; kinds: {', '.join(kinds.KINDS)}")
    pages[page] = boxes
    kinds.save(set_name, set_name, pages)
    return boxes


def main(argv=None) -> int:
    from engine.workshop.eval.realpages import default_realpages

    parser = argparse.ArgumentParser(prog="python -m engine.workshop.eval.annotate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["show", "record", "pages"])
    parser.add_argument("set", choices=sorted(SETS))
    parser.add_argument("page", nargs="?")
    parser.add_argument("out", nargs="?", type=Path)
    parser.add_argument("picks", nargs="?", default="")
    parser.add_argument("--add", action="append", default=[], help="x0,y0,x1,y1:kind (page pixels)")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--no-detect", action="store_true", help="show: no detector candidates (faster)")
    args = parser.parse_args(argv)
    root = default_realpages()
    if args.action == "pages":
        print("\n".join(pages_of(args.set, root)))
    elif args.action == "show":
        print(f"{show(args.set, args.page, args.out, root, args.scale, not args.no_detect)} candidates -> {args.out}")
    else:
        boxes = record(args.set, args.page, args.out, args.picks, args.add)
        print(f"{args.page}: {len(boxes)} boxes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
