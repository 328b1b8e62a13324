"""The GIMP plug-in's logic that needs no GIMP: settings, pixel/mask conversion, geometry, engine jobs, messages.

Stdlib only, so it is unit-tested without GIMP (``tests/gimp_plugin/kesu/test_kesu_core.py``). ``kesu.py`` is
the thin GObject-introspection glue around it.

Conventions: pixels are raw bytes, rows top to bottom; RGBA is GIMP's ``"R'G'B'A u8"`` (non-linear 8-bit);
a mask is one byte per pixel, 255 = text/hole and 0 = keep. Rectangles are ``Rect(x, y, w, h)`` in image
coordinates unless a name says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

MENU_PATH = "<Image>/Filters/Text Removal"
TEXT_MASK_LAYER = "Text Mask"
CLEANED_LAYER = "Cleaned"
KESU_LAYERS = (TEXT_MASK_LAYER, CLEANED_LAYER)
MASK_RGB = (255, 0, 0)          # the colour of text in the "Text Mask" layer (paint more, erase to remove)
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
             "Adds a \"Text Mask\" layer above the active layer: red where Kesu found text. Paint on it to add "
             "text it missed, erase what it should leave; then run Inpaint Selection with nothing selected."),
    ProcSpec("kesu-inpaint-selection", "Inpaint Selection", "inpaint",
             "Erase what is selected (or what the \"Text Mask\" layer marks) into a new \"Cleaned\" layer",
             "Fills the selection (or, with nothing selected, the \"Text Mask\" layer grown by grow-px) from "
             "its surroundings. The result is a new \"Cleaned\" layer holding only the changed pixels; the "
             "active layer is not touched."),
    ProcSpec("kesu-clean-page", "Clean Page", "clean",
             "Detect the lettering and erase it: adds \"Text Mask\" and \"Cleaned\" layers",
             "Detect Text and Inpaint in one step. Adds a \"Text Mask\" layer and above it a \"Cleaned\" layer "
             "with only the changed pixels; the active layer is not touched."),
)
PROCEDURE_BY_NAME = {p.name: p for p in PROCEDURES}


class KesuError(Exception):
    """A problem the user can act on; ``str(e)`` says what happened and what to do."""


# -------------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Range:
    lo: float
    hi: float
    default: float


GROW_PX = Range(0, 64, 4)           # the engine's limits (engine.pipeline.CleanOptions)
THRESHOLD = Range(0.05, 0.95, 0.5)


@dataclass(frozen=True)
class Settings:
    """What the user sets: ``grow_px`` (pixels added around the text before erasing), ``threshold``
    (text probability at which a pixel counts as text; lower finds more)."""

    grow_px: int = int(GROW_PX.default)
    threshold: float = THRESHOLD.default

    def __post_init__(self) -> None:
        if not GROW_PX.lo <= self.grow_px <= GROW_PX.hi:
            raise KesuError(f"grow-px must be between {GROW_PX.lo:.0f} and {GROW_PX.hi:.0f} pixels, "
                            f"got {self.grow_px}")
        if not THRESHOLD.lo <= self.threshold <= THRESHOLD.hi:
            raise KesuError(f"threshold must be between {THRESHOLD.lo} and {THRESHOLD.hi}, got {self.threshold}")

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


# ---------------------------------------------------------------------------------------------- pixel bytes

_BINARY = bytes(255 if v >= 128 else 0 for v in range(256))


def binarize(values: bytes, table: bytes = _BINARY) -> bytes:
    """0/255 mask from 8-bit values (>= 128 -> 255): a selection, or a layer's alpha."""
    return bytes(values).translate(table)


def alpha_of(rgba: bytes) -> bytes:
    """The alpha channel of RGBA bytes."""
    if len(rgba) % 4:
        raise ValueError(f"{len(rgba)} bytes is not a whole number of RGBA pixels")
    return bytes(rgba[3::4])


def mask_from_rgba_layer(rgba: bytes) -> bytes:
    """The mask a (possibly user-edited) "Text Mask" layer holds: text where it is at least half opaque."""
    return binarize(alpha_of(rgba))


def mask_to_rgba(mask: bytes, rgb: tuple[int, int, int] = MASK_RGB) -> bytes:
    """RGBA pixels for the "Text Mask" layer: ``rgb`` and opaque where ``mask`` is nonzero, transparent elsewhere."""
    m = binarize(mask, bytes([0] + [255] * 255))
    out = bytearray(len(m) * 4)
    for c, value in enumerate(rgb):
        out[c::4] = m.translate(bytes([0] + [value] * 255))
    out[3::4] = m
    return bytes(out)


def mask_and(a: bytes, b: bytes) -> bytes:
    """Pixel-wise AND of two 0/255 masks of the same size (big-integer AND: fast for whole pages)."""
    if len(a) != len(b):
        raise ValueError(f"masks of {len(a)} and {len(b)} pixels")
    return (int.from_bytes(a, "little") & int.from_bytes(b, "little")).to_bytes(len(a), "little")


def clip_rgba(rgba: bytes, mask: bytes) -> bytes:
    """RGBA pixels kept where the 0/255 ``mask`` is set, transparent zeros elsewhere."""
    if len(rgba) != 4 * len(mask):
        raise ValueError(f"{len(rgba)} bytes of RGBA for a mask of {len(mask)} pixels")
    m = binarize(mask, bytes([0] + [255] * 255))
    wide = bytearray(len(rgba))
    for c in range(4):
        wide[c::4] = m
    return mask_and(bytes(rgba), bytes(wide))


def count_set(mask: bytes) -> int:
    """How many pixels of a mask are set (nonzero)."""
    return len(mask) - bytes(mask).count(0)


def crop(pixels: bytes, width: int, bpp: int, r: Rect) -> bytes:
    """Rows ``r`` of an image ``width`` pixels wide (``bpp`` bytes per pixel), r relative to the image."""
    out = bytearray()
    for y in range(r.y, r.y + r.h):
        start = (y * width + r.x) * bpp
        out += pixels[start:start + r.w * bpp]
    return bytes(out)


# ------------------------------------------------------------------------------------------------- planning


class Plan(NamedTuple):
    """What Inpaint Selection does: ``source`` "selection" or "text-mask", and the engine op for it."""

    source: str
    op: str


def plan_inpaint(has_selection: bool, has_text_mask_layer: bool) -> Plan:
    """A selection is filled as it is; without one, the "Text Mask" layer is grown by grow-px and filled
    (the engine's "clean" with a given mask); with neither, a KesuError saying what to do."""
    if has_selection:
        return Plan("selection", "inpaint")
    if has_text_mask_layer:
        return Plan("text-mask", "clean")
    raise KesuError("nothing to inpaint: select the text to erase, or run Filters > Text Removal > Detect Text "
                    "first (with nothing selected, Inpaint Selection uses the \"Text Mask\" layer)")


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
    """The index (top first, within one parent) of the layer to work on.

    When the active layer is one of Kesu's own ("Text Mask", "Cleaned"; e.g. just made by Detect Text), the
    page is the first other layer below it. Raises KesuError when there is none.
    """
    i = active
    while i < len(names) and _is_kesu_layer(names[i]):
        i += 1
    if i >= len(names):
        raise KesuError("the active layer is a Kesu \"Text Mask\" or \"Cleaned\" layer with no page below it: "
                        "select the layer that holds the page and try again")
    return i


def text_mask_index(names: list[str], source: int) -> int | None:
    """Index of the "Text Mask" layer that belongs to the layer at ``source``: the nearest one above it
    (through other Kesu layers), else None."""
    i = source - 1
    while i >= 0 and _is_kesu_layer(names[i]):
        if _is_text_mask(names[i]):
            return i
        i -= 1
    return None


def _is_kesu_layer(name: str) -> bool:
    return any(name == n or name.startswith(n + " #") for n in KESU_LAYERS)


def _is_text_mask(name: str) -> bool:
    return name == TEXT_MASK_LAYER or name.startswith(TEXT_MASK_LAYER + " #")


# --------------------------------------------------------------------------------------------------- engine

Connect = Callable[[], Any]          # -> a kesu_protocol.Client (a context manager with .run(...))
Progress = Callable[[float, str], Any]


@dataclass
class EngineResult:
    mask: bytes | None
    pixels: bytes | None
    seconds: float                  # the whole round trip, as the plug-in waited for it
    engine_s: float = 0.0           # of which the engine computed (the server's own measure)


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
) -> EngineResult:
    """Send one job (``channels`` "RGBA" or "RGB": a layer without alpha) to the engine and check the answer.

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
                                options=settings.engine_options(op), progress=progress)
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
    return EngineResult(out_mask, out_pixels, clock() - t0, float(stats.get("engine_s") or 0.0))


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
