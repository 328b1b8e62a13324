"""Which detected text is lettering, which is drawn into the art: judged by what surrounds it.

Lettering sits in balloons, caption boxes and on white outlines: the ring of page just around it is calm (no
lines, no tone). Sound effects are drawn over the art, and the artwork a detector mistakes for text (eyes, hands,
ornaments) is art itself: the ring around them is busy. So every text region (the text mask, grown and joined
into blocks) is judged by the share of its ring that is busy, and by how sure the detector is of it:

- a calm ring (busy share < ``calm_share``): lettering;
- a ring partly busy (< ``busy_share``) around text the detector is very sure of (mean probability >
  ``sure_text``): lettering too (a caption over a gradient, lettering near a balloon's edge);
- but never text drawn much bolder than the page's lettering (strokes over ``bold_ratio`` times as wide as those
  of the page's calm, sure text): sound effects are drawn big and bold, even on a flat background;
- anything else is drawn text: a sound effect when the detector is fairly sure of it (mean probability >
  ``drawn_text``), else artwork, which no mode erases;
- a stack of parallel bars side by side (a speaker grille, slats, a block of hatching: ``min_bars`` or more
  strokes of about one length and direction, and little else) is artwork wherever it stands: lettering puts
  strokes end to end along a line, never five alike side by side;
- a detector that tells the kinds apart itself (two channels) has the last word on drawn text: a region whose
  sound-effect probability is on average above its lettering probability is drawn text wherever it stands.

Measured with ``kesu eval textseg --kinds-only`` on the OpenMantra dev pages and the blackjack pages, whose every
piece of text is boxed (docs/results.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from engine.pipeline.masks import grow

INK_LEVEL = 128  # grey below this is dark ink (the strokes whose width is compared)
MIN_BAR_PIXELS = 6  # smaller ink pieces of a region are specks, not strokes


@dataclass(frozen=True)
class SurroundingsCheck:
    ring_px: int = 3              # width of the ring looked at around each grown text region
    busy_level: float = 16.0      # a ring pixel is busy where the page's gradient (Sobel, per level) is above this
    calm_share: float = 0.10      # a ring with less busy than this is calm: lettering
    busy_share: float = 0.35      # ...with less than this, lettering when the detector is very sure of it
    sure_text: float = 0.83       # "very sure": the region's mean text probability
    drawn_text: float = 0.6       # a region in busy surroundings is a sound effect above this, artwork below
    join_fraction: float = 0.0    # regions nearer than this share of the page's shorter side are one block
    bold_ratio: float = 2.0       # strokes this many times as wide as the page's lettering's are drawn text
    inked_share: float = 0.2      # a mask under this share dark ink has its strokes measured on the ink alone
    min_bars: int = 5             # this many parallel bars side by side, and little else, are a pattern: artwork
    bar_elongation: float = 3.0   # a bar is at least this many times as long as it is wide
    bar_share: float = 0.6        # the bars hold at least this share of the region's text


@dataclass(frozen=True)
class Region:
    window: tuple[int, int, int, int]  # y0, x0, y1, x1 of the region and its ring
    text: np.ndarray                   # bool: the region's text pixels inside the window
    busy: float                        # share of the ring that is busy
    probability: float                 # mean text probability over the region's text pixels
    stroke: float                      # its dark ink's stroke width: twice the 90th percentile of the depth
    detected_as_sfx: bool = False      # a two-channel detector calls it a sound effect rather than lettering
    bar_stack: bool = False            # its text is a stack of parallel bars side by side (``is_bar_stack``)

    def calm_and_sure(self, check: SurroundingsCheck) -> bool:
        return self.busy < check.calm_share and self.probability > check.sure_text

    def kind(self, check: SurroundingsCheck, lettering_stroke: float | None = None) -> str:
        """"lettering", "sfx" or "art"; ``lettering_stroke``: the stroke width of the page's lettering, if known."""
        if self.bar_stack:
            return "art"
        calm = self.busy < check.calm_share or (self.busy < check.busy_share and self.probability > check.sure_text)
        bold = lettering_stroke is not None and self.stroke > check.bold_ratio * lettering_stroke
        if calm and not bold and not self.detected_as_sfx:
            return "lettering"
        return "sfx" if self.probability > check.drawn_text else "art"


def busy_pixels(grey: np.ndarray, level: float) -> np.ndarray:
    """bool: where the page's gradient (Sobel magnitude, in grey levels per pixel) is above ``level``."""
    g = grey.astype(np.float32)
    magnitude = np.hypot(ndimage.sobel(g, 0), ndimage.sobel(g, 1)) / 8.0
    return magnitude > level


def is_bar_stack(text: np.ndarray, check: SurroundingsCheck = SurroundingsCheck()) -> bool:
    """Whether ``text`` (bool) is a stack of bars: ``check.min_bars`` or more strokes of about one direction and
    length lying side by side at a regular spacing (their centres spread across the bars, not along them), and
    little else (a grille, slats, hatching). A row of exclamation marks is not one: each bar has its dot."""
    labels, count = ndimage.label(text, np.ones((3, 3), bool))
    if count < check.min_bars:
        return False
    bars, others = [], 0  # bars: (pixels, centre, unit direction, length)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        ys, xs = np.nonzero(labels[box] == index)
        if ys.size < MIN_BAR_PIXELS:
            continue  # a speck: neither a bar nor anything else
        points = np.stack([ys + box[0].start, xs + box[1].start], axis=1).astype(np.float64)
        centre = points.mean(axis=0)
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov((points - centre).T) + 1e-6 * np.eye(2))
        length, width = 4 * np.sqrt(eigenvalues[1]), 4 * np.sqrt(eigenvalues[0])  # about a bar's full extents
        if length >= check.bar_elongation * max(width, 1.0):
            bars.append((ys.size, centre, eigenvectors[:, 1], length))
        else:
            others += 1
    if (len(bars) < check.min_bars or others > len(bars) // 2
            or sum(b[0] for b in bars) < check.bar_share * text.sum()):
        return False
    # one sense for every direction (an eigenvector's sign is arbitrary), then the bars that follow the median
    directions = np.array([b[2] if (b[2][0], b[2][1]) >= (0, 0) else -b[2] for b in bars])
    direction = np.median(directions, axis=0)
    direction /= max(float(np.linalg.norm(direction)), 1e-9)
    lengths = np.array([b[3] for b in bars])
    keep = (np.abs(directions @ direction) > np.cos(np.radians(15))) & \
        (np.abs(lengths - np.median(lengths)) <= 0.5 * np.median(lengths))
    if keep.sum() < check.min_bars:
        return False
    centres = np.array([b[1] for b in bars])[keep]
    along = centres @ direction
    across = np.sort(centres @ np.array([-direction[1], direction[0]]))
    gaps = np.diff(across)
    side_by_side = np.ptp(along) <= 0.5 * np.median(lengths[keep]) and np.ptp(across) > np.ptp(along)
    return bool(side_by_side and gaps.min() > 0 and gaps.max() <= 2 * gaps.min())


def window_busy(grey: np.ndarray, window: tuple[int, int, int, int], level: float) -> np.ndarray:
    """busy_pixels of a window of the page, its gradient computed with the page's pixels around it."""
    y0, x0, y1, x1 = window
    top, left = max(0, y0 - 1), max(0, x0 - 1)
    busy = busy_pixels(grey[top:y1 + 1, left:x1 + 1], level)
    return busy[y0 - top:y0 - top + y1 - y0, x0 - left:x0 - left + x1 - x0]


def text_regions(text: np.ndarray, grown: np.ndarray, probability: np.ndarray, grey: np.ndarray,
                 check: SurroundingsCheck = SurroundingsCheck(),
                 kinds: dict[str, np.ndarray] | None = None) -> list[Region]:
    """The text blocks of a page: ``grown`` (the text mask as erasing grows it) joined across small gaps, each
    with the busy share of the ring just outside its grown pixels and its text's mean probability. ``kinds``: a
    two-channel detector's probability of each kind ("lettering", "sfx"), if it has them."""
    height, width = text.shape
    join = max(1, round(min(height, width) * check.join_fraction))
    blocks, _ = ndimage.label(grow(grown, join))
    pad = check.ring_px + 1
    found = []
    for index, box in enumerate(ndimage.find_objects(blocks), start=1):
        if box is None:
            continue
        y0, x0 = max(0, box[0].start - pad), max(0, box[1].start - pad)
        y1, x1 = min(height, box[0].stop + pad), min(width, box[1].stop + pad)
        block = blocks[y0:y1, x0:x1] == index
        region_text = text[y0:y1, x0:x1] & block
        if not region_text.any():
            continue
        region_grown = grown[y0:y1, x0:x1] & block
        ring = grow(region_grown, check.ring_px) & ~grown[y0:y1, x0:x1]
        # text that leaves no page around it (a page all text) cannot be judged by its surroundings: lettering
        busy_share = float(window_busy(grey, (y0, x0, y1, x1), check.busy_level)[ring].mean()) if ring.any() else 0.0
        # the strokes of the mask, or of its dark ink where the mask is mostly paper (hollow, outlined letters)
        ink = text[y0:y1, x0:x1] & (grey[y0:y1, x0:x1] < INK_LEVEL)
        inked = region_text & ink
        if inked.sum() >= check.inked_share * region_text.sum():
            ink, inked = text[y0:y1, x0:x1], region_text
        depth = ndimage.distance_transform_edt(np.pad(ink, 1))[1:-1, 1:-1]
        said_sfx = False
        if kinds is not None and "sfx" in kinds and "lettering" in kinds:
            said_sfx = bool(kinds["sfx"][y0:y1, x0:x1][region_text].mean()
                            > kinds["lettering"][y0:y1, x0:x1][region_text].mean())
        found.append(Region((y0, x0, y1, x1), region_text, busy_share,
                            float(probability[y0:y1, x0:x1][region_text].mean()),
                            float(2 * np.percentile(depth[inked], 90)) if inked.any() else 0.0, said_sfx,
                            is_bar_stack(region_text, check)))
    return found


def split_by_surroundings(text: np.ndarray, grown: np.ndarray, probability: np.ndarray, grey: np.ndarray,
                          check: SurroundingsCheck = SurroundingsCheck(),
                          kinds: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """``text`` (bool (H, W)) split into {"lettering", "sfx", "art"} bool masks by :class:`Region.kind`."""
    out = {kind: np.zeros_like(text) for kind in ("lettering", "sfx", "art")}
    found = text_regions(text, grown, probability, grey, check, kinds)
    reference = [r.stroke for r in found if r.calm_and_sure(check) and not r.detected_as_sfx]
    lettering_stroke = float(np.median(reference)) if reference else None
    for region in found:
        y0, x0, y1, x1 = region.window
        out[region.kind(check, lettering_stroke)][y0:y1, x0:x1] |= region.text
    return out
