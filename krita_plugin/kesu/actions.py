"""What Detect Text, Inpaint Selection and Clean Page do, independent of Krita and Qt.

Each action has three steps, so that the document is only ever touched at the very end:

1. :func:`prepare` (GUI thread): read the source layer, the selection and the visible mask layers ("Text Mask",
   "SFX Mask") through a :class:`DocumentAdapter`; refuse with a :class:`UserError` saying what to do.
2. :func:`execute` (worker thread): talk to the engine; never touches the document.
3. :func:`apply` (GUI thread): add the new layers; if adding one fails, the ones already added are removed,
   so the document is as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .kesu_protocol import (
    CLEANED_LAYER,
    DEFAULT_TEXT,
    SFX_MASK_LAYER,
    TEXT_MASK_LAYER,
    changed_count,
    clip_to_mask,
    coverage_to_mask,
    layer_to_mask,
    mask_and,
    mask_count,
    mask_layer_masks,
    mask_layer_visible,
    mask_or,
    mask_to_layer,
)
from .pixels import Rect
from .settings import Settings

ACTIONS = ("detect", "inpaint", "clean")
TEXT_MASK_OPACITY = 153  # 60 %: the text stays visible under the mask while the user edits it
# where add_layer puts a new layer: directly above the source, or above the source's mask layers
# (kesu_protocol.cleaned_position); a handle returned by add_layer puts it directly above that layer
ABOVE_SOURCE = "source"
ABOVE_MASKS = "masks"


class UserError(Exception):
    """Something the user can fix (no document, wrong layer type, nothing selected...); ``str`` says how."""


@dataclass
class MaskLayer:
    """A Kesu mask layer ("Text Mask", "SFX Mask") that belongs to the source (kesu_protocol.mask_layers_for):
    ``fill`` when Inpaint Selection fills it (it is visible; kesu_protocol.masks_to_fill), and then its
    ``pixels`` over the source's rect in the source's channel order."""

    name: str
    fill: bool
    pixels: bytes | None = None


@dataclass
class Source:
    """The pixels Kesu works on: ``rect`` in image coordinates, ``pixels`` in ``channels`` order ("BGRA" or
    "LA"), ``name`` of the layer (for messages)."""

    name: str
    rect: Rect
    channels: str
    pixels: bytes


class DocumentAdapter(Protocol):
    """The host side (Krita) as the actions need it; see krita_document.KritaDocument."""

    def source(self) -> Source: ...

    def selection_coverage(self, rect: Rect) -> bytes | None: ...

    def mask_layers(self, rect: Rect) -> list[MaskLayer]: ...

    def add_layer(self, name: str, rect: Rect, pixels: bytes, above: Any, opacity: int,
                  visible: bool = True) -> Any: ...

    def remove_layer(self, handle: Any) -> None: ...

    def refresh(self) -> None: ...


class EngineClient(Protocol):
    def run(self, op: str, pixels: bytes, width: int, height: int, channels: str, mask: bytes | None = None,
            options: dict | None = None, progress: Callable[[float, str], Any] | None = None,
            timeout: float = 600, text: str = DEFAULT_TEXT, kind_masks: bool = False) -> dict: ...

    def close(self) -> None: ...


@dataclass
class JobSpec:
    """Everything the worker thread needs, read from the document beforehand."""

    action: str
    source: Source
    options: dict[str, Any]
    text: str = DEFAULT_TEXT           # the kinds of text erased (kesu_protocol.TEXT_CHOICES)
    hole: bytes | None = None          # inpaint: the area to fill (0/255 per pixel)
    text_mask: bytes | None = None     # inpaint without selection: the visible mask layers' masks together
    mask_names: list[str] = field(default_factory=list)  # ...and those layers' names
    selection: bytes | None = None     # clean with a selection: detection is limited to it
    notes: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """The engine's answer, ready for :func:`apply`. ``mask_layer`` ("Text Mask": dialogue), ``sfx_layer``
    ("SFX Mask": sound effects, only when the page has some) and ``cleaned_layer``: layer pixels or None.
    ``text_pixels``: the dialogue found (detect) or the text erased (clean); ``sfx_pixels``: the sound effects
    found."""

    mask_layer: bytes | None
    cleaned_layer: bytes | None
    text_pixels: int
    changed_pixels: int
    engine_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    sfx_layer: bytes | None = None
    sfx_pixels: int = 0


def prepare(action: str, doc: DocumentAdapter, settings: Settings) -> JobSpec:
    """Read what ``action`` needs from the document (GUI thread). Raises UserError."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; valid: {', '.join(ACTIONS)}")
    src = doc.source()
    spec = JobSpec(action, src, settings.engine_options(), settings.text)
    if action == "detect":  # detection always looks at the whole layer: text is found in context
        return spec
    coverage = doc.selection_coverage(src.rect)
    selection = coverage_to_mask(coverage) if coverage is not None else None
    if selection is not None and mask_count(selection) == 0:
        raise UserError(
            f"The selection does not cover any of the layer \"{src.name}\". Select the text to clean on "
            "this layer, or deselect (Select > Deselect) to work on the whole layer.")
    if action == "clean":
        spec.selection = selection
    elif action == "inpaint":
        if selection is not None:
            spec.hole = selection
        else:
            spec.text_mask, spec.mask_names = _visible_masks(doc.mask_layers(src.rect), src.channels)
    return spec


def _quoted(names: list[str]) -> str:
    return " and ".join(f"\"{n}\"" for n in names)


def _visible_masks(layers: list[MaskLayer], channels: str) -> tuple[bytes, list[str]]:
    """The mask Inpaint Selection fills with nothing selected: the visible mask layers' masks together, and
    their names. UserError when there are none, they are all hidden, or they are empty."""
    if not layers:
        raise UserError(
            "Nothing to inpaint: select the text to remove first (any selection tool), or run "
            "Tools > Scripts > Detect Text to make a \"Text Mask\" layer and run Inpaint Selection "
            "again with nothing selected.")
    shown = [m for m in layers if m.fill]
    if not shown:
        raise UserError(
            f"Nothing to inpaint: the mask layer{'s' if len(layers) > 1 else ''} "
            f"{_quoted([m.name for m in layers])} {'are' if len(layers) > 1 else 'is'} hidden, and only visible "
            "ones are erased. Show the one to erase (its eye in the Layers docker), or select the text, then run "
            "Inpaint Selection again.")
    mask = layer_to_mask(shown[0].pixels, channels)
    for m in shown[1:]:
        mask = mask_or(mask, layer_to_mask(m.pixels, channels))
    names = [m.name for m in shown]
    if mask_count(mask) == 0:
        raise UserError(
            f"The {_quoted(names)} layer{'s are' if len(names) > 1 else ' is'} empty: paint over the text to "
            "remove on it (or select the text), then run Inpaint Selection again.")
    return mask, names


def _scaled(progress: Callable[[float, str], Any], lo: float, hi: float) -> Callable[[float, str], Any]:
    return lambda f, msg: progress(lo + (hi - lo) * f, msg)


def execute(spec: JobSpec, client: EngineClient, progress: Callable[[float, str], Any]) -> Outcome:
    """Run the engine for ``spec`` (worker thread). Raises ProtocolError (from the client) or UserError."""
    src = spec.source
    w, h = src.rect.width, src.rect.height
    common = {"width": w, "height": h, "channels": src.channels, "options": spec.options}
    kinds = {"text": spec.text, "kind_masks": True}  # each kind's mask for its own layer
    if spec.action == "detect":
        r = client.run("detect", src.pixels, mask=None, progress=progress, **common, **kinds)
        layers = mask_layer_masks(r["mask"], r.get("kind_masks") or {})
        return _with_mask_layers(Outcome(None, None, mask_count(layers["dialogue"]), 0, _engine_s(r)), layers,
                                 src.channels)
    if spec.action == "inpaint":
        if spec.hole is not None:  # a selection: filled as it is
            r = client.run("inpaint", src.pixels, mask=spec.hole, progress=progress, **common)
        else:  # a (possibly hand-edited) text mask: grown like a detected one
            r = client.run("clean", src.pixels, mask=spec.text_mask, progress=progress, **common)
        pixels = r["pixels"]
        return Outcome(None, pixels, 0, changed_count(pixels, src.channels), _engine_s(r))
    # clean
    engine_s = 0.0
    if spec.selection is None:
        r = client.run("clean", src.pixels, mask=None, progress=progress, **common, **kinds)
        mask = r["mask"]
        layers = mask_layer_masks(mask, r.get("kind_masks") or {})
    else:
        d = client.run("detect", src.pixels, mask=None, progress=_scaled(progress, 0.0, 0.5), **common, **kinds)
        engine_s += _engine_s(d)
        mask = mask_and(d["mask"], spec.selection)
        layers = {kind: mask_and(m, spec.selection)
                  for kind, m in mask_layer_masks(d["mask"], d.get("kind_masks") or {}).items()}
        layers = mask_layer_masks(layers["dialogue"], layers)  # no "SFX Mask" when none is inside
        if mask_count(mask) == 0:
            return Outcome(None, None, 0, 0, engine_s, sfx_pixels=mask_count(layers.get("sfx", b"")))
        r = client.run("clean", src.pixels, mask=mask, progress=_scaled(progress, 0.5, 1.0), **common)
    engine_s += _engine_s(r)
    n_text = mask_count(mask)
    if n_text == 0:  # nothing erased: nothing added (sound effects left alone are counted for the note)
        return Outcome(None, None, 0, 0, engine_s, sfx_pixels=mask_count(layers.get("sfx", b"")))
    pixels = r["pixels"]
    if spec.selection is not None:
        pixels = clip_to_mask(pixels, src.channels, spec.selection)
    outcome = Outcome(None, pixels, n_text, changed_count(pixels, src.channels), engine_s)
    return _with_mask_layers(outcome, layers, src.channels)


def _with_mask_layers(outcome: Outcome, layers: dict[str, bytes], channels: str) -> Outcome:
    """``outcome`` with the pixels of the mask layers ``layers`` (kesu_protocol.mask_layer_masks) to add."""
    outcome.mask_layer = mask_to_layer(layers["dialogue"], channels)
    if "sfx" in layers:
        outcome.sfx_layer = mask_to_layer(layers["sfx"], channels)
        outcome.sfx_pixels = mask_count(layers["sfx"])
    return outcome


def _engine_s(result: dict) -> float:
    try:
        return float((result.get("stats") or {}).get("engine_s", 0.0))
    except (TypeError, ValueError):
        return 0.0


def apply(spec: JobSpec, outcome: Outcome, doc: DocumentAdapter) -> list[str]:
    """Add the result layers (GUI thread); returns their names, bottom first. All or nothing: a failure
    removes what was added and re-raises.

    "Text Mask" goes directly above the source, "SFX Mask" directly above it (shown only when sound effects are
    erased: kesu_protocol.mask_layer_visible), "Cleaned" above them (Inpaint Selection: above the source's
    mask layers)."""
    added: list[Any] = []
    names: list[str] = []
    src = spec.source
    try:
        below: Any = ABOVE_MASKS if spec.action == "inpaint" else ABOVE_SOURCE
        for name, pixels, kind in ((TEXT_MASK_LAYER, outcome.mask_layer, "dialogue"),
                                   (SFX_MASK_LAYER, outcome.sfx_layer, "sfx")):
            if pixels is not None:
                below = doc.add_layer(name, src.rect, pixels, below, TEXT_MASK_OPACITY,
                                      mask_layer_visible(kind, spec.text))
                added.append(below)
                names.append(name)
        if outcome.cleaned_layer is not None:
            added.append(doc.add_layer(CLEANED_LAYER, src.rect, outcome.cleaned_layer, below, 255))
            names.append(CLEANED_LAYER)
        doc.refresh()
    except BaseException:
        for handle in reversed(added):
            try:
                doc.remove_layer(handle)
            except Exception:
                pass
        raise
    return names


def summary(spec: JobSpec, outcome: Outcome) -> str:
    """A one-line note for the user after a job (shown as a floating message, not a dialog)."""
    name = spec.source.name
    sfx = ""
    if outcome.sfx_layer is not None:
        shown = mask_layer_visible("sfx", spec.text)
        sfx = (f" \"SFX Mask\" added {'' if shown else 'hidden '}({outcome.sfx_pixels} sound-effect pixels"
               f"{'' if shown else '; show it to erase them too'}).")
    if spec.action == "detect":
        if outcome.text_pixels == 0:
            return (f"Kesu found no dialogue on \"{name}\"; an empty \"Text Mask\" layer was added: paint the "
                    f"text on it by hand if you like.{sfx}")
        return f"Kesu: \"Text Mask\" added ({outcome.text_pixels} text pixels on \"{name}\").{sfx}"
    if outcome.cleaned_layer is None:
        where = " inside the selection" if spec.selection is not None else ""
        kept = ""
        if outcome.sfx_pixels:
            kept = (" It left the sound effects it found: turn on \"Include sound effects\" in Kesu Settings to "
                    "erase them.")
        return f"Kesu found no text to erase{where} on \"{name}\"; nothing was changed.{kept}"
    if spec.action == "inpaint" and spec.mask_names:
        return (f"Kesu: \"Cleaned\" added ({outcome.changed_pixels} pixels changed on \"{name}\", from "
                f"{_quoted(spec.mask_names)}).")
    return f"Kesu: \"Cleaned\" added ({outcome.changed_pixels} pixels changed on \"{name}\").{sfx}"
