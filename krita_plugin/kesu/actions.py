"""What Detect Text, Inpaint Selection and Clean Page do, independent of Krita and Qt.

Each action has three steps, so that the document is only ever touched at the very end:

1. :func:`prepare` (GUI thread): read the source layer, the selection and the "Text Mask" layer through a
   :class:`DocumentAdapter`; refuse with a :class:`UserError` saying what to do.
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
    TEXT_MASK_LAYER,
    changed_count,
    clip_to_mask,
    coverage_to_mask,
    layer_to_mask,
    mask_and,
    mask_count,
    mask_to_layer,
)
from .pixels import Rect
from .settings import Settings

ACTIONS = ("detect", "inpaint", "clean")
TEXT_MASK_OPACITY = 153  # 60 %: the text stays visible under the mask while the user edits it


class UserError(Exception):
    """Something the user can fix (no document, wrong layer type, nothing selected...); ``str`` says how."""


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

    def text_mask_pixels(self, rect: Rect) -> bytes | None: ...

    def add_layer(self, name: str, rect: Rect, pixels: bytes, above_text_mask: bool, opacity: int) -> Any: ...

    def remove_layer(self, handle: Any) -> None: ...

    def refresh(self) -> None: ...


class EngineClient(Protocol):
    def run(self, op: str, pixels: bytes, width: int, height: int, channels: str, mask: bytes | None = None,
            options: dict | None = None, progress: Callable[[float, str], Any] | None = None,
            timeout: float = 600) -> dict: ...

    def close(self) -> None: ...


@dataclass
class JobSpec:
    """Everything the worker thread needs, read from the document beforehand."""

    action: str
    source: Source
    options: dict[str, Any]
    hole: bytes | None = None          # inpaint: the area to fill (0/255 per pixel)
    text_mask: bytes | None = None     # inpaint without selection: the "Text Mask" layer's mask
    selection: bytes | None = None     # clean with a selection: detection is limited to it
    notes: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """The engine's answer, ready for :func:`apply`. ``mask``/``cleaned``: layer pixels or None."""

    mask_layer: bytes | None
    cleaned_layer: bytes | None
    text_pixels: int
    changed_pixels: int
    engine_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def prepare(action: str, doc: DocumentAdapter, settings: Settings) -> JobSpec:
    """Read what ``action`` needs from the document (GUI thread). Raises UserError."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; valid: {', '.join(ACTIONS)}")
    src = doc.source()
    spec = JobSpec(action, src, settings.engine_options())
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
            painted = doc.text_mask_pixels(src.rect)
            if painted is None:
                raise UserError(
                    "Nothing to inpaint: select the text to remove first (any selection tool), or run "
                    "Tools > Scripts > Detect Text to make a \"Text Mask\" layer and run Inpaint Selection "
                    "again with nothing selected.")
            mask = layer_to_mask(painted, src.channels)
            if mask_count(mask) == 0:
                raise UserError(
                    "The \"Text Mask\" layer is empty: paint over the text to remove on it (or select the "
                    "text), then run Inpaint Selection again.")
            spec.text_mask = mask
    return spec


def _scaled(progress: Callable[[float, str], Any], lo: float, hi: float) -> Callable[[float, str], Any]:
    return lambda f, msg: progress(lo + (hi - lo) * f, msg)


def execute(spec: JobSpec, client: EngineClient, progress: Callable[[float, str], Any]) -> Outcome:
    """Run the engine for ``spec`` (worker thread). Raises ProtocolError (from the client) or UserError."""
    src = spec.source
    w, h = src.rect.width, src.rect.height
    common = {"width": w, "height": h, "channels": src.channels, "options": spec.options}
    if spec.action == "detect":
        r = client.run("detect", src.pixels, mask=None, progress=progress, **common)
        mask = r["mask"]
        return Outcome(mask_to_layer(mask, src.channels), None, mask_count(mask), 0, _engine_s(r))
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
        r = client.run("clean", src.pixels, mask=None, progress=progress, **common)
        mask = r["mask"]
    else:
        d = client.run("detect", src.pixels, mask=None, progress=_scaled(progress, 0.0, 0.5), **common)
        engine_s += _engine_s(d)
        mask = mask_and(d["mask"], spec.selection)
        if mask_count(mask) == 0:
            return Outcome(None, None, 0, 0, engine_s)
        r = client.run("clean", src.pixels, mask=mask, progress=_scaled(progress, 0.5, 1.0), **common)
    engine_s += _engine_s(r)
    pixels = r["pixels"]
    if spec.selection is not None:
        pixels = clip_to_mask(pixels, src.channels, spec.selection)
    n_text = mask_count(mask)
    if n_text == 0:
        return Outcome(None, None, 0, 0, engine_s)
    return Outcome(mask_to_layer(mask, src.channels), pixels, n_text, changed_count(pixels, src.channels),
                   engine_s)


def _engine_s(result: dict) -> float:
    try:
        return float((result.get("stats") or {}).get("engine_s", 0.0))
    except (TypeError, ValueError):
        return 0.0


def apply(spec: JobSpec, outcome: Outcome, doc: DocumentAdapter) -> list[str]:
    """Add the result layers (GUI thread); returns their names, bottom first. All or nothing: a failure
    removes what was added and re-raises."""
    added: list[Any] = []
    names: list[str] = []
    src = spec.source
    try:
        if outcome.mask_layer is not None:
            added.append(doc.add_layer(TEXT_MASK_LAYER, src.rect, outcome.mask_layer, False, TEXT_MASK_OPACITY))
            names.append(TEXT_MASK_LAYER)
        if outcome.cleaned_layer is not None:
            added.append(doc.add_layer(CLEANED_LAYER, src.rect, outcome.cleaned_layer, True, 255))
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
    if spec.action == "detect":
        if outcome.text_pixels == 0:
            return (f"Kesu found no text on \"{name}\"; an empty \"Text Mask\" layer was added: paint the text "
                    "on it by hand if you like.")
        return f"Kesu: \"Text Mask\" added ({outcome.text_pixels} text pixels on \"{name}\")."
    if outcome.cleaned_layer is None:
        where = " inside the selection" if spec.selection is not None else ""
        return f"Kesu found no text{where} on \"{name}\"; nothing was changed."
    return f"Kesu: \"Cleaned\" added ({outcome.changed_pixels} pixels changed on \"{name}\")."
