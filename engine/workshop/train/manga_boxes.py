"""Real manga pages whose text is boxed by kind (engine/workshop/eval/kinds.py) as training pages.

Everything outside the boxes is artwork: a negative for every channel. Inside a box, only what its kind says is
scored: a lettering box tells the sound-effect channel "not a sound effect" and leaves the lettering channel
unscored (the box holds glyphs and the paper around them, not a mask); a sound-effect box does the same the
other way round; a box of other text (signs, page numbers) is not scored at all. Boxes are grown by
``BOX_MARGIN`` px for this, as hand-drawn boxes are tight.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.workshop.eval import kinds

BOX_MARGIN = 4
DETECT_SHORT_SIDE = 1024  # pages are detected at this short side: train near that scale


def targets(shape: tuple[int, int], boxes: list[kinds.KindBox], out_channels: int, margin: int = BOX_MARGIN):
    """(target float32 (K, H, W), scored float32 (K, H, W)) of a boxed page: all-zero targets (the page's text is
    never a positive: the boxes are not masks), scored everywhere but where a box's kind leaves it open."""
    H, W = shape
    target = np.zeros((out_channels, H, W), np.float32)
    scored = np.ones((out_channels, H, W), np.float32)
    for b in boxes:
        x0, y0, x1, y1 = b.box
        x0, y0, x1, y1 = max(0, x0 - margin), max(0, y0 - margin), min(W, x1 + margin), min(H, y1 + margin)
        if out_channels == 1 or b.group == "other":
            scored[:, y0:y1, x0:x1] = 0
        else:
            scored[0 if b.group == "lettering" else 1, y0:y1, x0:x1] = 0
    return target, scored


class BoxedPages:
    """Pages of one folder with their boxes; ``page(rng, K)`` gives one scaled near detection size."""

    def __init__(self, folder: str, annotation: str, held_out=()):
        path = Path(annotation)
        boxes = kinds.load(path.stem, path.parent)
        self.folder = Path(folder)
        self.pages = [(name, b) for name, b in sorted(boxes.items()) if Path(name).name not in set(held_out)]
        if not self.pages:
            raise ValueError(f"{annotation} boxes no page outside the held-out ones")
        self._cache: dict[str, np.ndarray] = {}

    def _grey(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = np.asarray(Image.open(self.folder / name).convert("L"))
        return self._cache[name]

    def page(self, rng: np.random.Generator, out_channels: int):
        """(grey uint8 (h, w), target (K, h, w), scored (K, h, w)) of a random page, scaled so its short side
        is near the detector's working size (x0.8 to x1.25)."""
        name, boxes = self.pages[int(rng.integers(len(self.pages)))]
        grey = self._grey(name)
        _, scored = targets(grey.shape, boxes, out_channels)
        scale = DETECT_SHORT_SIDE / min(grey.shape) * float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
        size = (round(grey.shape[1] * scale), round(grey.shape[0] * scale))
        grey = np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.LANCZOS))
        scored = np.stack([np.asarray(Image.fromarray(s).resize(size, Image.Resampling.NEAREST)) for s in scored])
        return grey, np.zeros_like(scored), scored  # the targets are all zero (see targets)
