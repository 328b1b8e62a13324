"""The clean pipeline: detect -> threshold -> snap to the ink -> grow -> flat fill -> repeat fill -> inpaint (the
frequency-selective reconstruction, the network's correction, detail deep in big holes) -> paste back inside the
mask.

Every function here works on arrays (uint8 (H, W, 3) RGB, bool (H, W) masks, float32 (H, W) probabilities);
files are read and written by ``engine.imageio`` and the CLI.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from engine.allocator import keep_freed_memory
from engine.errors import InputError
from engine.pipeline import masks
from engine.pipeline.detail import DetailOptions
from engine.pipeline.detect import detect_probabilities, to_grey, working_scale
from engine.pipeline.fill import FlatFillOptions, flat_fill
from engine.pipeline.inpaint import inpaint as inpaint_holes
from engine.pipeline.repeat_fill import repeat_fill
from engine.pipeline.surroundings import split_by_surroundings
from engine.protocol import OPTION_LIMITS, option_problem

Progress = Callable[[str, float], None]
StageTimer = Callable[[str, float], None]  # (stage name, seconds), called as each stage ends

# The kinds of text the detector tells apart, in the order of its output channels. A model with one channel
# calls everything it finds lettering.
#   lettering: dialogue, captions, narration, asides, typeset or hand-lettered, also over art with a white outline
#   sfx: sound effects, drawn and stylised text that is part of the artwork
TEXT_KINDS = ("lettering", "sfx")
# what users choose (the command line's --text, the server's "text" field) -> the kinds it means
TEXT_CHOICES = {"dialogue": ("lettering",), "sfx": ("sfx",), "all": TEXT_KINDS}


@dataclass(frozen=True)
class CleanOptions:
    """What a user can set. Sizes are in pixels of the input page."""

    # text probability at which a pixel is text (chosen with `kesu eval textseg --thresholds`). The limits and
    # defaults of the options a user sets are in engine.protocol.OPTION_LIMITS, shared with the plug-ins.
    threshold: float = OPTION_LIMITS["threshold"].default
    # the thresholded mask takes in the pixels this near it that look like its ink and drops those beside the
    # ink that look like paper (masks.snap_to_ink); None: 3 px at the detector's working scale (more on a page
    # it scales down); 0: off
    snap_px: int | None = None
    grow_px: int = OPTION_LIMITS["grow_px"].default  # the text mask is grown by this much before erasing
    # pages are detected with their shorter side scaled to at most this
    detect_short_side: int = OPTION_LIMITS["detect_short_side"].default
    flat_tolerance: int = 8       # flat fill: levels a ring pixel may differ from the ring's colour
    flat_fraction: float = 0.97   # flat fill: share of the ring that must be that colour
    use_flat_fill: bool = True
    # regions inside a regular pattern (screentone, hatching, a grid) continue it by copying it from a whole
    # number of periods away (engine/pipeline/repeat_fill.py); the network fills the rest
    use_repeat_fill: bool = True
    # deep inside big holes, the network's fill gains the fine detail of the best-matching known art (hatching,
    # hair, tone) instead of staying a smooth patch (engine/pipeline/detail.py)
    add_detail: bool = True
    # inpainting: known pixels around each region in its crop (chosen with `kesu eval inpaint`: more context
    # scored no better and gives the network more to compute)
    context_px: int = 32
    # run the networks in bfloat16 where the processor computes it natively (faster; masks and fills as good as
    # float32's on `kesu eval`): False = always float32
    allow_bfloat16: bool = True
    # the kinds of text (TEXT_KINDS) that are detected and erased; default: lettering only, sound effects stay
    text_kinds: tuple[str, ...] = ("lettering",)
    # tell the kinds apart (and artwork from text) by what surrounds the text (engine/pipeline/surroundings.py);
    # False: each kind is what the detector's own channel for it marks
    check_surroundings: bool = True

    def __post_init__(self) -> None:
        for name, limit in OPTION_LIMITS.items():
            value = getattr(self, name)
            problem = None if value is None and limit.default is None else option_problem(name, value)
            if problem:
                raise InputError(problem)
        kinds = self.text_kinds
        if isinstance(kinds, str) or not isinstance(kinds, (tuple, list)) or not kinds:
            raise InputError(f"text_kinds must be a list of one or more of {', '.join(TEXT_KINDS)}, got {kinds!r}")
        unknown = [k for k in kinds if k not in TEXT_KINDS]
        if unknown:
            raise InputError(f"unknown kind(s) of text {', '.join(map(repr, unknown))}; valid: {', '.join(TEXT_KINDS)}")
        # a fixed order and no repeats, whatever order the kinds were given in
        object.__setattr__(self, "text_kinds", tuple(k for k in TEXT_KINDS if k in kinds))

    @property
    def bfloat16(self) -> bool | None:
        """What the pipeline's ``bfloat16`` arguments take: None (where native) if allowed, else False."""
        return None if self.allow_bfloat16 else False

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> CleanOptions:
        """Options from a plain dict (server requests); unknown keys are an error that lists the valid ones."""
        values = dict(values or {})
        names = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise InputError(f"unknown option(s) {', '.join(unknown)}; valid options: {', '.join(names)}")
        for name, value in values.items():
            _check_option_type(name, names[name], value)
        try:
            return cls(**values)
        except TypeError as e:
            raise InputError(f"bad options: {e}") from e


def _check_option_type(name: str, annotation: str, value: Any) -> None:
    """Refuse a value of the wrong JSON type for an option (annotations are strings: ``from __future__``)."""
    if value is None and "None" in annotation:
        return
    if annotation.startswith("bool"):
        ok, what = type(value) is bool, "true or false"
    elif annotation.startswith("int"):
        ok, what = type(value) is int, "a whole number"
    elif annotation.startswith("float"):
        ok = type(value) in (int, float) and math.isfinite(value)
        what = "a number"
    else:
        ok, what = True, ""
    if not ok:
        raise InputError(f"option {name} must be {what}, got {value!r}")


@dataclass
class CleanResult:
    image: np.ndarray        # uint8 (H, W, 3): the cleaned page
    text_mask: np.ndarray    # bool (H, W): the tight text mask (of the kinds erased)
    grown_mask: np.ndarray   # bool (H, W): the pixels that were allowed to change
    flat_mask: np.ndarray    # bool (H, W): the part of grown_mask the flat fill took
    repeat_mask: np.ndarray  # bool (H, W): the part the repeat fill took; the rest went to the network
    # bool (H, W) tight mask of each kind erased (empty when the text mask was given rather than detected)
    kind_masks: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Erased:
    image: np.ndarray        # uint8 (H, W, 3): the page with the hole filled
    flat_mask: np.ndarray    # bool (H, W): the part of the hole the flat fill took
    repeat_mask: np.ndarray  # bool (H, W): the part the repeat fill took; the rest went to the network


def check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise InputError(f"the engine takes uint8 (H, W, 3) RGB images, got {got}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputError(f"the image has zero size ({rgb.shape[1]}x{rgb.shape[0]})")


def check_mask(mask: np.ndarray, rgb: np.ndarray, what: str = "mask") -> None:
    if not isinstance(mask, np.ndarray) or mask.dtype != bool or mask.shape != rgb.shape[:2]:
        got = f"{mask.dtype} {mask.shape}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise InputError(f"the {what} must be bool {rgb.shape[:2]} like the image, got {got}")


DETECT_SNAP_PX = 3  # snap_to_ink's radius at the detector's working scale (chosen with `kesu eval textseg`)
CONFIDENT = 0.8     # text probability from which snap_to_ink never trims a pixel (and takes the ink's grey)


def snap_radius(height: int, width: int, options: CleanOptions) -> int:
    """snap_to_ink's radius in pixels of a page of this size."""
    if options.snap_px is not None:
        return options.snap_px
    return round(DETECT_SNAP_PX / working_scale(height, width, options.detect_short_side))


def tight_mask(prob: np.ndarray, rgb: np.ndarray, options: CleanOptions) -> np.ndarray:
    """bool (H, W) text mask of a page from its text probability: threshold, then fit to the glyphs' ink."""
    mask = masks.threshold(prob, options.threshold)
    radius = snap_radius(*prob.shape, options)
    if not radius:
        return mask
    confident = prob >= max(CONFIDENT, options.threshold)
    return masks.snap_to_ink(mask, to_grey(rgb), radius, confident)


def _timed(on_stage: StageTimer | None, name: str, run: Callable[[], Any]) -> Any:
    """``run()``, its time handed to ``on_stage(name, seconds)`` when there is one."""
    if on_stage is None:
        return run()
    start = time.perf_counter()
    value = run()
    on_stage(name, time.perf_counter() - start)
    return value


def _stage(progress: Progress | None, name: str, start: float, end: float) -> Callable[[float], None] | None:
    if progress is None:
        return None
    return lambda f: progress(name, start + (end - start) * f)


class Engine:
    """The loaded models and the operations on pages. Build it with ``Engine.load``."""

    def __init__(self, textseg=None, inpainter=None, weights_dir: Path | None = None):
        self.textseg = textseg
        self.inpainter = inpainter
        self.weights_dir = weights_dir

    @classmethod
    def load(cls, weights_dir: Path | None = None, roles: tuple[str, ...] = ("textseg", "inpaint")) -> Engine:
        """Load the models of ``roles`` from a weights folder (default: the shipped weights).

        Raises WeightsError naming the file and the fix when a model is missing or corrupt. A role not asked
        for is loaded when first needed.
        """
        keep_freed_memory()  # models allocate tens of MB per layer: reuse them (engine/allocator.py)
        engine = cls(weights_dir=weights_dir)
        for role in roles:
            engine._model(role)
        return engine

    def _model(self, role: str):
        import torch

        from engine.weights import load_model

        attr = {"textseg": "textseg", "inpaint": "inpainter"}[role]
        model = getattr(self, attr)
        if model is None:
            model = load_model(role, self.weights_dir)
            if role == "textseg":
                model = model.to(memory_format=torch.channels_last)
            setattr(self, attr, model)
        return model

    def model_kinds(self) -> tuple[str, ...]:
        """The kinds of text the loaded detector tells apart (its output channels), in TEXT_KINDS order."""
        return TEXT_KINDS[: getattr(self._model("textseg"), "out_channels", 1)]

    def detect_kinds(
        self, rgb: np.ndarray, options: CleanOptions = CleanOptions(), progress: Progress | None = None
    ) -> dict[str, np.ndarray]:
        """Each kind's text probability float32 (H, W) in [0, 1], for the kinds the detector tells apart."""
        check_rgb(rgb)
        prob = detect_probabilities(
            self._model("textseg"), rgb, short_side=options.detect_short_side,
            progress=_stage(progress, "detect", 0.0, 1.0), bfloat16=options.bfloat16,
        )
        return dict(zip(TEXT_KINDS, prob, strict=False))

    def detect(self, rgb: np.ndarray, options: CleanOptions = CleanOptions(), progress: Progress | None = None):
        """Text probability float32 (H, W) in [0, 1] of a uint8 (H, W, 3) page: that of the most likely of
        ``options.text_kinds`` (zero everywhere when the detector knows none of them)."""
        prob = self.detect_kinds(rgb, options, progress)
        wanted = [prob[k] for k in options.text_kinds if k in prob]
        if not wanted:
            return np.zeros(rgb.shape[:2], np.float32)
        return wanted[0] if len(wanted) == 1 else np.maximum.reduce(wanted)

    def kind_masks(
        self,
        rgb: np.ndarray,
        options: CleanOptions = CleanOptions(),
        progress: Progress | None = None,
        kinds: tuple[str, ...] | None = None,
    ) -> dict[str, np.ndarray]:
        """The tight mask bool (H, W) of each kind of ``kinds`` (default ``options.text_kinds``), told apart as
        :func:`kind_tight_masks` does."""
        return kind_tight_masks(self.detect_kinds(rgb, options, progress), rgb, options, kinds)

    def text_mask(self, rgb: np.ndarray, options: CleanOptions = CleanOptions(), progress: Progress | None = None):
        """The tight text mask bool (H, W) of a page: the union of the masks of ``options.text_kinds``."""
        return union(self.kind_masks(rgb, options, progress).values(), rgb.shape[:2])

    def inpaint(
        self,
        rgb: np.ndarray,
        hole: np.ndarray,
        options: CleanOptions = CleanOptions(),
        progress: Progress | None = None,
        on_stage: StageTimer | None = None,
    ) -> np.ndarray:
        """Fill ``hole`` (bool (H, W), used as given): flat fill where the ring is flat, the pattern repeated where
        the surroundings repeat regularly, the model elsewhere. ``on_stage(name, seconds)`` is told the time of
        each stage that runs ("flat fill", "repeat fill", "network").

        Returns uint8 (H, W, 3), byte-identical to ``rgb`` outside ``hole``.
        """
        return self._erase(rgb, hole, options, progress, on_stage).image

    def _erase(self, rgb: np.ndarray, hole: np.ndarray, options: CleanOptions, progress: Progress | None,
               on_stage: StageTimer | None) -> Erased:
        check_rgb(rgb)
        check_mask(hole, rgb, "hole mask")
        out, filled, repeated = rgb, np.zeros_like(hole), np.zeros_like(hole)
        if options.use_flat_fill:
            flat = FlatFillOptions(tolerance=options.flat_tolerance, min_flat_fraction=options.flat_fraction)
            out, filled = _timed(on_stage, "flat fill", lambda: flat_fill(rgb, hole, flat))
        rest = hole & ~filled
        if options.use_repeat_fill and rest.any():
            out, repeated = _timed(on_stage, "repeat fill", lambda: repeat_fill(out, rest))
            rest &= ~repeated
        if rest.any():
            out = _timed(on_stage, "network", lambda: inpaint_holes(
                self._model("inpaint"), out, rest, context=options.context_px,
                progress=_stage(progress, "inpaint", 0.0, 1.0), bfloat16=options.bfloat16,
                detail_options=DetailOptions() if options.add_detail else None))
        # the invariant, enforced rather than hoped for: nothing outside the hole changes
        return Erased(np.where(hole[:, :, None], out, rgb), filled, repeated)

    def clean(
        self,
        rgb: np.ndarray,
        options: CleanOptions = CleanOptions(),
        text_mask: np.ndarray | None = None,
        progress: Progress | None = None,
        on_stage: StageTimer | None = None,
    ) -> CleanResult:
        """Detect the text of ``options.text_kinds`` (unless ``text_mask`` is given), grow it, and erase it.

        ``on_stage(name, seconds)`` is told the time of each stage that runs, in order: "detect",
        "threshold+snap", "grow", then those of :meth:`inpaint` (``kesu bench --pages`` prints them).
        """
        check_rgb(rgb)
        kinds: dict[str, np.ndarray] = {}
        if text_mask is None:
            detect_progress = None if progress is None else (lambda stage, f: progress(stage, 0.6 * f))
            prob = _timed(on_stage, "detect", lambda: self.detect_kinds(rgb, options, detect_progress))
            kinds = _timed(on_stage, "threshold+snap", lambda: kind_tight_masks(prob, rgb, options))
            text_mask = union(kinds.values(), rgb.shape[:2])
        else:
            check_mask(text_mask, rgb, "text mask")
        grown = _timed(on_stage, "grow", lambda: masks.grow(text_mask, options.grow_px))
        erase_progress = None if progress is None else (lambda stage, f: progress(stage, 0.6 + 0.4 * f))
        erased = self._erase(rgb, grown, options, erase_progress, on_stage)
        return CleanResult(erased.image, text_mask, grown, erased.flat_mask, erased.repeat_mask, kinds)


def kind_tight_masks(
    prob: dict[str, np.ndarray], rgb: np.ndarray, options: CleanOptions, kinds: tuple[str, ...] | None = None
) -> dict[str, np.ndarray]:
    """The tight mask bool (H, W) of each kind of ``kinds`` (default ``options.text_kinds``) from the kinds'
    probabilities ``prob``.

    With ``options.check_surroundings`` (the default) the text found is split by what surrounds it
    (engine/pipeline/surroundings.py, which also hears a two-channel detector's own call): lettering in calm
    surroundings, sound effects drawn over the art, and artwork, which is in no kind's mask. Without it each
    kind is its own channel's mask, and a kind the detector does not tell apart (not in ``prob``) has an empty
    mask."""
    kinds = options.text_kinds if kinds is None else kinds
    tight = {k: tight_mask(prob[k], rgb, options) for k in prob}
    if not options.check_surroundings:
        return {k: tight[k] if k in tight else np.zeros(rgb.shape[:2], bool) for k in kinds}
    text = union(tight.values(), rgb.shape[:2])
    probability = np.maximum.reduce(list(prob.values())) if len(prob) > 1 else next(iter(prob.values()))
    split = split_by_surroundings(text, masks.grow(text, options.grow_px), probability, to_grey(rgb),
                                  kinds=prob if len(prob) > 1 else None)
    return {k: split[k] for k in kinds}


def union(kind_masks, shape: tuple[int, int]) -> np.ndarray:
    """bool ``shape``: the pixels in any of ``kind_masks`` (none given: an empty mask)."""
    out = None
    for mask in kind_masks:
        out = mask.copy() if out is None else out | mask
    return np.zeros(shape, bool) if out is None else out


__all__ = ["TEXT_CHOICES", "TEXT_KINDS", "CleanOptions", "CleanResult", "Engine", "StageTimer", "check_rgb",
           "check_mask", "kind_tight_masks", "snap_radius", "tight_mask", "union"]
