"""The project's own annotation of real pages by kind of text (engine/workshop/eval/annotations/*.json).

A file boxes the text of a set of pages: ``{"set": NAME, "pages": {PAGE: [{"box": [x0, y0, x1, y1], "kind":
KIND}, ...]}}``, PAGE a path relative to the set's folder under the real-pages root, boxes in the page's own
pixels (x1, y1 exclusive). For OpenMantra dev it boxes only what the set's own annotation does not (its
dialogue boxes are lettering); for blackjack it boxes everything. See annotations/README.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ANNOTATIONS = Path(__file__).resolve().parent / "annotations"

# kind -> what it counts as: "lettering" (what a translator replaces: the dialogue mode's text),
# "sfx" (drawn sound effects: the sfx mode's text), "other" (text in the art, neither: signs, labels, page
# numbers; never counted as artwork, never required)
KINDS = {
    "lettering": "lettering",   # dialogue, captions, narration the set's own annotation missed
    "aside": "lettering",       # small hand-written asides, side notes
    "sfx": "sfx",               # drawn sound effects, also small ones (ドキ, ハッ, ...)
    "sign": "other",            # text that belongs to a drawn object: signs, labels, screens, book covers
    "page-number": "other",     # printed page numbers, running heads, credits in the margin
}


@dataclass(frozen=True)
class KindBox:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1
    kind: str

    @property
    def group(self) -> str:
        return KINDS[self.kind]

    @property
    def yxyx(self) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = self.box
        return y0, x0, y1, x1


def load(name: str, folder: Path = ANNOTATIONS) -> dict[str, list[KindBox]]:
    """Page (relative path) -> its boxes, from ``folder/NAME.json``; an unknown kind is an error."""
    data = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    pages: dict[str, list[KindBox]] = {}
    for page, boxes in data["pages"].items():
        out = []
        for b in boxes:
            if b["kind"] not in KINDS:
                raise ValueError(f"{name}.json, {page}: unknown kind {b['kind']!r}; kinds: {', '.join(KINDS)}")
            x0, y0, x1, y1 = (int(v) for v in b["box"])
            if not (x0 < x1 and y0 < y1):
                raise ValueError(f"{name}.json, {page}: empty box {b['box']}")
            out.append(KindBox((x0, y0, x1, y1), b["kind"]))
        pages[page] = out
    return pages


def save(name: str, set_name: str, pages: dict[str, list[KindBox]], folder: Path = ANNOTATIONS) -> Path:
    """Write ``folder/NAME.json`` (pages and boxes sorted, one box per line)."""
    lines = ["{", f'  "set": {json.dumps(set_name)},', '  "pages": {']
    page_items = sorted(pages.items())
    for i, (page, boxes) in enumerate(page_items):
        lines.append(f"    {json.dumps(page)}: [")
        ordered = sorted(boxes, key=lambda b: (b.box[1], b.box[0]))
        rows = [f'      {{"box": {list(b.box)}, "kind": {json.dumps(b.kind)}}}' for b in ordered]
        lines.append(",\n".join(rows))
        lines.append("    ]" + ("," if i < len(page_items) - 1 else ""))
    lines += ["  }", "}", ""]
    path = folder / f"{name}.json"
    path.write_text("\n".join(line for line in lines if line != ""), encoding="utf-8")
    return path
