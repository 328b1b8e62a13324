"""The Krita side of :class:`kesu.actions.DocumentAdapter`: the active document through Krita's Python API.

Only this module and ``extension.py`` import ``krita`` and PyQt; the unit tests drive it with a fake
``krita`` module.
"""

from __future__ import annotations

from typing import Any

from .actions import ABOVE_MASKS, ABOVE_SOURCE, MaskLayer, Source, UserError
from .kesu_protocol import cleaned_position, mask_layers_for, masks_to_fill, source_layer_index
from .pixels import Rect, layout_for
from .qt import QByteArray

# node types whose pixels are their own paint device; everything else (groups, file/filter/fill/clone/vector
# layers) is read through its projection, i.e. what it shows
PAINT_TYPES = ("paintlayer",)
MASK_TYPES = ("transparencymask", "filtermask", "transformmask", "selectionmask", "colorizemask")


def same_node(a: Any, b: Any) -> bool:
    """Whether two libkis Node wrappers are the same layer (wrappers are made afresh on every call)."""
    return a is not None and b is not None and a.uniqueId() == b.uniqueId()


def siblings_top_first(node: Any) -> tuple[list[Any], int | None]:
    """``node`` and its siblings, top first (the order of kesu_protocol's layer rules), and its index there."""
    parent = node.parentNode()
    if parent is None:
        return [node], 0
    siblings = list(reversed(parent.childNodes()))
    return siblings, next((i for i, n in enumerate(siblings) if same_node(n, node)), None)


class KritaDocument:
    """The active document of ``app`` (``Krita.instance()``); UserError when there is none."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.doc = app.activeDocument()
        if self.doc is None:
            raise UserError("No document is open: open a page (File > Open), click the layer with the text, "
                            "then run the Kesu action again.")
        self._source_node: Any = None

    # ------------------------------------------------------------------ reading
    def _source_node_pick(self) -> Any:
        node = self.doc.activeNode()
        if node is None:
            raise UserError("No layer is active: click the layer with the text in the Layers docker, then try "
                            "again.")
        if node.type() in MASK_TYPES:
            raise UserError(f"The active item \"{node.name()}\" is a {node.type()}, not a layer: click the "
                            "layer with the text in the Layers docker, then try again.")
        siblings, idx = siblings_top_first(node)
        if idx is not None:
            pick = source_layer_index([n.name() for n in siblings], idx)
            if pick is None:
                raise UserError(f"The active layer \"{node.name()}\" is a Kesu layer with no other layer below it: "
                                "click the layer with the text in the Layers docker, then try again.")
            node = siblings[pick]
        return node

    def source(self) -> Source:
        node = self._source_node_pick()
        doc_layout = layout_for(self.doc.colorModel(), self.doc.colorDepth())
        node_layout = layout_for(node.colorModel(), node.colorDepth())
        if node_layout != doc_layout:
            raise UserError(
                f"The layer \"{node.name()}\" ({node.colorModel()}/{node.colorDepth()}) is not in the image's "
                f"colour space ({self.doc.colorModel()}/{self.doc.colorDepth()}): convert the layer "
                "(Layer > Convert > Convert Layer Color Space...) and try again.")
        b = node.bounds()
        rect = Rect(b.x(), b.y(), b.width(), b.height())
        if rect.is_empty():
            raise UserError(f"The layer \"{node.name()}\" is empty: there is nothing to look for text in.")
        if node.type() in PAINT_TYPES:
            data = node.pixelData(rect.x, rect.y, rect.width, rect.height)
        else:
            data = node.projectionPixelData(rect.x, rect.y, rect.width, rect.height)
        pixels = bytes(data)
        expected = rect.area * (4 if doc_layout == "BGRA" else 2)
        if len(pixels) != expected:
            raise UserError(f"Krita gave {len(pixels)} bytes for the layer \"{node.name()}\" "
                            f"({rect.width}x{rect.height}), expected {expected}; the layer type "
                            f"{node.type()} is not supported.")
        self._source_node = node
        return Source(node.name(), rect, doc_layout, pixels)

    def selection_coverage(self, rect: Rect) -> bytes | None:
        sel = self.doc.selection()
        if sel is None or sel.width() <= 0 or sel.height() <= 0:
            return None
        return bytes(sel.pixelData(rect.x, rect.y, rect.width, rect.height))

    def mask_layers(self, rect: Rect) -> list[MaskLayer]:
        """The mask paint layers that belong to the source (kesu_protocol.mask_layers_for), top first; the
        pixels of those Inpaint Selection fills (the visible ones: kesu_protocol.masks_to_fill) over ``rect``."""
        if self._source_node is None:
            return []
        siblings, idx = siblings_top_first(self._source_node)
        if idx is None:
            return []
        names = [n.name() for n in siblings]
        fill = set(masks_to_fill(names, [bool(n.visible()) for n in siblings], idx))
        out = []
        for i in sorted(mask_layers_for(names, idx).values()):
            node = siblings[i]
            if node.type() not in PAINT_TYPES:
                continue
            pixels = bytes(node.pixelData(rect.x, rect.y, rect.width, rect.height)) if i in fill else None
            out.append(MaskLayer(node.name(), i in fill, pixels))
        return out

    # ------------------------------------------------------------------ writing
    def is_open(self) -> bool:
        """False when the document was closed while a job ran."""
        root = self.doc.rootNode()
        return any(same_node(d.rootNode(), root) for d in self.app.documents())

    def add_layer(self, name: str, rect: Rect, pixels: bytes, above: Any, opacity: int,
                  visible: bool = True) -> Any:
        """A new paint layer directly above the source (``above`` = ABOVE_SOURCE), above the source's mask
        layers (ABOVE_MASKS: kesu_protocol.cleaned_position) or directly above ``above``, a layer this returned."""
        src = self._source_node
        if src is None:
            raise RuntimeError("add_layer before source()")
        parent = src.parentNode() or self.doc.rootNode()
        if isinstance(above, str):  # a place, not a layer (libkis Nodes are never compared with strings)
            if above == ABOVE_MASKS:
                siblings, idx = siblings_top_first(src)
                above = siblings[cleaned_position([n.name() for n in siblings], idx)] if idx is not None else src
            elif above == ABOVE_SOURCE:
                above = src
            else:
                raise ValueError(f"unknown layer place {above!r}")
        layer = self.doc.createNode(name, "paintlayer")
        if layer is None:
            raise RuntimeError(f"Krita could not create the layer {name!r}")
        if not parent.addChildNode(layer, above):
            raise RuntimeError(f"Krita could not add the layer {name!r} to the document")
        try:
            layer.setPixelData(QByteArray(pixels), rect.x, rect.y, rect.width, rect.height)
            if opacity != 255:
                layer.setOpacity(opacity)
            if not visible:
                layer.setVisible(False)
        except BaseException:
            layer.remove()
            raise
        return layer

    def remove_layer(self, handle: Any) -> None:
        handle.remove()

    def refresh(self) -> None:
        self.doc.refreshProjection()
