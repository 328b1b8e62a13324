"""The GIMP plug-in's logic that needs no GIMP: settings, geometry, engine jobs, messages.

Stdlib only, so it is unit-tested without GIMP (``tests/gimp_plugin/kesu/test_kesu_core.py``). ``kesu.py`` is
the thin GObject-introspection glue around it. What both plug-ins share (the option limits, mask operations,
which layers are Kesu's) is in ``kesu_protocol``, the plug-in client the installer copies beside this file.

Conventions: pixels are raw bytes, rows top to bottom; RGBA is GIMP's ``"R'G'B'A u8"`` (non-linear 8-bit);
a mask is one byte per pixel, 255 = text/hole and 0 = keep. Rectangles are ``Rect(x, y, w, h)`` in image
coordinates unless a name says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import kesu_protocol as proto  # the installer copies it beside this file (this folder is sys.path[0])

MENU_PATH = "<Image>/Filters/Text Removal"
MASK_LAYER_OPACITY = 60.0       # see the page through the mask
INPAINT_MARGIN_PX = 96          # known pixels sent around a selection, so the inpainter sees the context
LOG_FILE = "gimp-plugin.log"


@dataclass(frozen=True)
class ProcSpec:
    """One PDB procedure: name, menu label, engine operation ("detect", "inpaint", "clean") and help."""

    name: str
    label: str
    op: str
    blurb: str
    help: str


PROCEDURES = (
    ProcSpec("kesu-detect-text", "Detect Text", "detect",
             "Find the lettering and add it as an editable \"Text Mask\" layer",
             "Adds a \"Text Mask\" layer above the active layer: red where Kesu found dialogue. Paint on it to "
             "add text it missed, erase what it should leave; then run Inpaint Selection with nothing selected. "
             "When the page has sound effects, an \"SFX Mask\" layer with them goes directly above it, hidden "
             "unless text-kinds includes them: show it to erase them too."),
    ProcSpec("kesu-inpaint-selection", "Inpaint Selection", "inpaint",
             "Erase what is selected (or what the visible mask layers mark) into a new \"Cleaned\" layer",
             "Fills the selection (or, with nothing selected, the visible \"Text Mask\" and \"SFX Mask\" "
             "layers together, grown by grow-px; a hidden one is left alone) from its surroundings. The result "
             "is a new \"Cleaned\" layer holding only the changed pixels; the active layer is not touched."),
    ProcSpec("kesu-clean-page", "Clean Page", "clean",
             "Detect the lettering and erase it: adds \"Text Mask\" and \"Cleaned\" layers",
             "Detect Text and Inpaint in one step: erases the kinds of text text-kinds names (dialogue unless "
             "asked). Adds a \"Text Mask\" layer (and an \"SFX Mask\" when the page has sound effects, shown "
             "when they are erased) and above them a \"Cleaned\" layer with only the changed pixels; the active "
             "layer is not touched."),
)
# the procedures with a "text-kinds" argument: which kinds of text are erased (Inpaint Selection erases what is
# selected or what the visible mask layers mark, so it has none)
TEXT_KINDS_PROCEDURES = ("kesu-detect-text", "kesu-clean-page")
TEXT_KINDS_LABELS = {  # the "text-kinds" choice: kesu_protocol.TEXT_CHOICES and what the dialog shows for each
    "dialogue": "Dialogue",
    "sfx": "Sound effects",
    "all": "Dialogue and sound effects",
}
PROCEDURE_BY_NAME = {p.name: p for p in PROCEDURES}


class KesuError(Exception):
    """A problem the user can act on; ``str(e)`` says what happened and what to do."""


# -------------------------------------------------------------------------------------------------- settings


GROW_PX = proto.GROW_PX             # the engine's limits: lo, hi, default
THRESHOLD = proto.THRESHOLD


@dataclass(frozen=True)
class Settings:
    """What the user sets: ``grow_px`` (pixels added around the text before erasing), ``threshold``
    (text probability at which a pixel counts as text; lower finds more), ``text`` (the kinds of text erased,
    kesu_protocol.TEXT_CHOICES: sound effects are kept unless asked)."""

    grow_px: int = int(GROW_PX.default)
    threshold: float = THRESHOLD.default
    text: str = proto.DEFAULT_TEXT

    def __post_init__(self) -> None:
        for name in ("grow_px", "threshold"):
            problem = proto.option_problem(name, getattr(self, name))
            if problem:
                raise KesuError(problem)
        if self.text not in proto.TEXT_CHOICES:
            raise KesuError(f"text-kinds must be one of {', '.join(proto.TEXT_CHOICES)}, got {self.text!r}")

    def engine_options(self, op: str) -> dict[str, Any]:
        """The server's options for ``op`` (only the ones that matter to it)."""
        if op == "detect":
            return {"threshold": float(self.threshold)}
        if op == "inpaint":
            return {}  # a selection is filled as it is
        return {"threshold": float(self.threshold), "grow_px": int(self.grow_px)}


# -------------------------------------------------------------------------------------------------- geometry


class Rect(NamedTuple):
    x: int
    y: int
    w: int
    h: int

    @property
    def empty(self) -> bool:
        return self.w <= 0 or self.h <= 0

    def intersect(self, other: Rect) -> Rect:
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1, y1 = min(self.x + self.w, other.x + other.w), min(self.y + self.h, other.y + other.h)
        return Rect(x0, y0, max(0, x1 - x0), max(0, y1 - y0))

    def grow(self, px: int) -> Rect:
        return Rect(self.x - px, self.y - px, self.w + 2 * px, self.h + 2 * px)

    def relative_to(self, origin: Rect) -> Rect:
        """This rectangle in the coordinates of ``origin``'s top-left corner."""
        return Rect(self.x - origin.x, self.y - origin.y, self.w, self.h)


def bounds_rect(x1: int, y1: int, x2: int, y2: int) -> Rect:
    """GIMP's selection bounds (end-exclusive corners) as a Rect."""
    return Rect(x1, y1, x2 - x1, y2 - y1)


def inpaint_rect(layer: Rect, selection: Rect, margin: int = INPAINT_MARGIN_PX) -> Rect:
    """The part of ``layer`` to send for inpainting a selection: its bounds plus ``margin``, within the layer.

    Raises KesuError when the selection does not touch the layer.
    """
    if selection.intersect(layer).empty:
        raise KesuError("the selection does not overlap the active layer: select the text to erase on this "
                        "layer (or select nothing to use the \"Text Mask\" layer) and try again")
    return selection.grow(margin).intersect(layer)


# ------------------------------------------------------------------------------------------------- planning


class Plan(NamedTuple):
    """What Inpaint Selection does: ``source`` "selection" or "masks", and the engine op for it."""

    source: str
    op: str


def _quoted(names: Sequence[str]) -> str:
    return " and ".join(f"\"{n}\"" for n in names)


def plan_inpaint(has_selection: bool, mask_layers: Sequence[str] = (), shown: Sequence[str] = ()) -> Plan:
    """A selection is filled as it is; without one, the visible mask layers ``shown`` (of the page's
    ``mask_layers``: kesu_protocol.mask_layers_for, masks_to_fill) are grown by grow-px and filled together
    (the engine's "clean" with a given mask). KesuError saying what to do when there is nothing to fill."""
    if has_selection:
        return Plan("selection", "inpaint")
    if not mask_layers:
        raise KesuError("nothing to inpaint: select the text to erase, or run Filters > Text Removal > Detect "
                        "Text first (with nothing selected, Inpaint Selection uses the \"Text Mask\" layer)")
    if not shown:
        many = len(mask_layers) > 1
        raise KesuError(f"nothing to inpaint: the mask layer{'s' if many else ''} {_quoted(mask_layers)} "
                        f"{'are' if many else 'is'} hidden, and only visible ones are erased: show the one to "
                        "erase (its eye in the Layers dialog), or select the text, and try again")
    return Plan("masks", "clean")


def empty_masks_message(shown: Sequence[str]) -> str:
    """What to say when the visible mask layers ``shown`` mark nothing over the page."""
    many = len(shown) > 1
    return (f"the {_quoted(shown)} layer{'s are' if many else ' is'} empty over the active layer: paint the text "
            "to erase on it (or select it) and try again")


def check_image_mode(base_type: str, drawable_kind: str) -> None:
    """Refuse what Kesu cannot work on, saying what to do.

    ``base_type``: "RGB", "GRAY" or "INDEXED"; ``drawable_kind``: "layer", "group", "mask" or "channel".
    Any precision is fine: pixels are read and written through 8-bit formats that GEGL converts.
    """
    if base_type == "INDEXED":
        raise KesuError("Kesu works on RGB and grayscale images, and this one is indexed: convert it with "
                        "Image > Mode > RGB (or Grayscale), then try again")
    if base_type not in ("RGB", "GRAY"):
        raise KesuError(f"unsupported image mode {base_type}: convert the image to RGB and try again")
    if drawable_kind == "group":
        raise KesuError("the active layer is a layer group: select the paint layer that holds the page and "
                        "try again")
    if drawable_kind in ("mask", "channel"):
        raise KesuError("the active drawable is a layer mask or channel: select the layer that holds the page "
                        "(click its thumbnail) and try again")
    if drawable_kind != "layer":
        raise KesuError("select the layer that holds the page and try again")


def source_index(names: list[str], active: int) -> int:
    """The index (top first, within one parent) of the layer to work on: the active one, or when that is one
    of Kesu's own ("Text Mask", "Cleaned"), the first other layer below it. Raises KesuError when there is none.
    """
    index = proto.source_layer_index(names, active)
    if index is None:
        raise KesuError("the active layer is a Kesu \"Text Mask\" or \"Cleaned\" layer with no page below it: "
                        "select the layer that holds the page and try again")
    return index


# --------------------------------------------------------------------------------------------------- engine

Connect = Callable[[], Any]          # -> a kesu_protocol.Client (a context manager with .run(...))
Progress = Callable[[float, str], Any]


@dataclass
class EngineResult:
    mask: bytes | None
    pixels: bytes | None
    seconds: float                  # the whole round trip, as the plug-in waited for it
    engine_s: float = 0.0           # of which the engine computed (the server's own measure)
    kind_masks: dict[str, bytes] = field(default_factory=dict)  # each kind's own mask, when asked for

    def mask_layers(self) -> dict[str, bytes]:
        """The masks of the "Text Mask" and (when the page has sound effects) "SFX Mask" layers to add."""
        return proto.mask_layer_masks(self.mask, self.kind_masks)


def run_engine(
    connect: Connect,
    op: str,
    pixels: bytes,
    width: int,
    height: int,
    settings: Settings,
    mask: bytes | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] | None = None,
    channels: str = "RGBA",
    kind_masks: bool = False,
) -> EngineResult:
    """Send one job (``channels`` "RGBA" or "RGB": a layer without alpha) to the engine and check the answer.

    The job erases (or detects) the kinds of text ``settings.text`` names; ``kind_masks`` also asks for each
    kind's own mask (detect, and clean without a given mask).

    Errors become KesuError with the engine's advice (the protocol's messages already say what to do). Nothing
    in the image is touched here. The answer's pixels are always RGBA.
    """
    import time

    clock = clock or time.monotonic
    if len(pixels) != width * height * len(channels) or channels not in ("RGBA", "RGB"):
        raise ValueError(f"{len(pixels)} bytes for {width}x{height} {channels}")
    t0 = clock()
    try:
        with connect() as client:
            answer = client.run(op, pixels, width, height, channels, mask=mask,
                                options=settings.engine_options(op), progress=progress, text=settings.text,
                                kind_masks=kind_masks)
    except Exception as e:
        kind = getattr(e, "kind", None)
        if kind is None:
            raise
        raise KesuError(engine_message(str(e), kind)) from e
    out_mask, out_pixels = answer.get("mask"), answer.get("pixels")
    if op in ("detect", "clean") and (out_mask is None or len(out_mask) != width * height):
        raise KesuError("the Kesu engine returned no usable text mask; update Kesu (re-run the installer)")
    if op in ("inpaint", "clean"):
        if out_pixels is None or len(out_pixels) != width * height * 4 or answer.get("channels") != "RGBA":
            raise KesuError("the Kesu engine returned no usable pixels; update Kesu (re-run the installer)")
    stats = answer.get("stats") or {}
    kinds = {kind: m for kind, m in (answer.get("kind_masks") or {}).items() if len(m) == width * height}
    return EngineResult(out_mask, out_pixels, clock() - t0, float(stats.get("engine_s") or 0.0), kinds)


def engine_message(message: str, kind: str) -> str:
    """The user-facing text for a protocol error of ``kind``."""
    if kind == "cancelled":
        return "cancelled; the image was not changed"
    text = message.rstrip(".")
    if kind == "weights":
        return f"the Kesu engine has no usable model weights: {text}"
    return f"the Kesu engine failed: {text}" if kind == "engine" else text


def failure_message(action: str, reason: str, log_file: str) -> str:
    """What GIMP shows when a procedure fails: what failed, why/what to do, where the details are."""
    reason = reason[:1].upper() + reason[1:] if reason else "Unknown error"
    return f"Kesu {action} failed. {reason.rstrip('.')}.\nThe image was not changed. Details: {log_file}"
