"""Real manga pages whose text is boxed by kind (engine/workshop/eval/kinds.py) as training pages.

Everything outside the boxes is artwork: a negative for every channel. Inside a box, only what its kind says is
scored: a lettering box tells the sound-effect channel "not a sound effect" and leaves the lettering channel
unscored (the box holds glyphs and the paper around them, not a mask); a sound-effect box does the same the
other way round; a box of other text (signs, page numbers) is not scored at all. Boxes are grown by
``BOX_MARGIN`` px for this, as hand-drawn boxes are tight.

With ``sfx_letters``, a sound effect's letters become positives where the box tells them apart from the art: the
bold ink pieces (grey < ``INK_LEVEL``, 8-connected) that lie wholly inside the grown box are the sound-effect
channel's (the only channel of a one-channel detector) and scored; ink that runs out of the box is the art the
letters sit on or touch, and stays unscored with the rest of the box, as do thin pieces (hatching, dots).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.workshop.eval import kinds

BOX_MARGIN = 4
INK_LEVEL = 128  # as the evaluation counts ink (engine.workshop.eval.textseg)
MIN_LETTER_STROKE = 5  # px: a sound effect's letter has a stroke at least this wide somewhere
DETECT_SHORT_SIDE = 1024  # pages are detected at this short side: train near that scale


def targets(shape: tuple[int, int], boxes: list[kinds.KindBox], out_channels: int, margin: int = BOX_MARGIN,
            grey: np.ndarray | None = None):
    """(target float32 (K, H, W), scored float32 (K, H, W)) of a boxed page: scored everywhere but where a box's
    kind leaves it open. The targets are all zero (the boxes are not masks) unless the page's ``grey`` is given:
    then the ink pieces wholly inside a sound-effect box are that channel's positives (``sfx_letters``)."""
    H, W = shape
    target = np.zeros((out_channels, H, W), np.float32)
    scored = np.ones((out_channels, H, W), np.float32)
    sfx_channel = 0 if out_channels == 1 else 1
    letters = []
    for b in boxes:
        x0, y0, x1, y1 = b.box
        x0, y0, x1, y1 = max(0, x0 - margin), max(0, y0 - margin), min(W, x1 + margin), min(H, y1 + margin)
        if out_channels == 1 or b.group == "other":
            scored[:, y0:y1, x0:x1] = 0
        else:
            scored[0 if b.group == "lettering" else 1, y0:y1, x0:x1] = 0
        if grey is not None and b.group == "sfx":
            letters.append(((y0, x0, y1, x1), sfx_letters(grey[y0:y1, x0:x1])))
    for (y0, x0, y1, x1), inside in letters:  # after every box is opened: a positive is scored wherever it lies
        target[sfx_channel, y0:y1, x0:x1][inside] = 1.0
        scored[sfx_channel, y0:y1, x0:x1][inside] = 1.0
    return target, scored


def sfx_letters(grey_box: np.ndarray) -> np.ndarray:
    """bool mask of the ink pieces of a (grown) sound-effect box that do not reach its edge and are bold: a stroke
    at least ``MIN_LETTER_STROKE`` px wide somewhere (the hatching, hair and screentone dots the box also holds are
    thinner)."""
    from scipy import ndimage

    ink = grey_box < INK_LEVEL
    labels, count = ndimage.label(ink, np.ones((3, 3), bool))
    if not count:
        return ink
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    half_width = ndimage.maximum(ndimage.distance_transform_edt(ink), labels, np.arange(1, count + 1))
    keep = np.concatenate([[False], np.asarray(half_width) >= MIN_LETTER_STROKE / 2])
    keep[edge] = False
    return keep[labels]


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

    def page(self, rng: np.random.Generator, out_channels: int, sfx_letters: bool = False):
        """(grey uint8 (h, w), target (K, h, w), scored (K, h, w)) of a random page, scaled so its short side
        is near the detector's working size (x0.8 to x1.25). ``sfx_letters``: the sound effects' letters are
        positives (see ``targets``)."""
        name, boxes = self.pages[int(rng.integers(len(self.pages)))]
        grey = self._grey(name)
        target, scored = targets(grey.shape, boxes, out_channels, grey=grey if sfx_letters else None)
        scale = DETECT_SHORT_SIDE / min(grey.shape) * float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
        size = (round(grey.shape[1] * scale), round(grey.shape[0] * scale))
        grey = np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.LANCZOS))
        scored = np.stack([np.asarray(Image.fromarray(s).resize(size, Image.Resampling.NEAREST)) for s in scored])
        target = np.stack([np.asarray(Image.fromarray(t).resize(size, Image.Resampling.NEAREST)) for t in target])
        return grey, target, scored
