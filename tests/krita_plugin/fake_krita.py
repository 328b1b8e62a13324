"""A small fake of Krita's Python API (libkis) and the bits of PyQt5 the document adapter uses.

Layers keep their pixels in image coordinates (a dict per pixel row span would be overkill): each node has a
canvas-sized BGRA (or grey+alpha) buffer plus an offset, like Krita's paint devices.
"""

from __future__ import annotations

import itertools
import types

_ids = itertools.count(1)


class QRect:
    def __init__(self, x: int, y: int, w: int, h: int) -> None:
        self._r = (x, y, w, h)

    def x(self) -> int:
        return self._r[0]

    def y(self) -> int:
        return self._r[1]

    def width(self) -> int:
        return self._r[2]

    def height(self) -> int:
        return self._r[3]


class Node:
    """A layer with pixels over ``rect`` = (x, y, w, h) in image coordinates (empty when w == 0)."""

    def __init__(self, name, ntype="paintlayer", model="RGBA", depth="U8", rect=(0, 0, 0, 0), pixels=b""):
        self._name, self._type, self._model, self._depth = name, ntype, model, depth
        self._rect = rect
        self._bpp = 4 if model == "RGBA" else 2 if model == "GRAYA" else 8
        self._pixels = bytearray(pixels) if pixels else bytearray(rect[2] * rect[3] * self._bpp)
        self._children: list[Node] = []
        self._parent: Node | None = None
        self._id = next(_ids)
        self.opacity = 255
        self._visible = True
        self.doc = None

    # libkis API
    def name(self):
        return self._name

    def type(self):
        return self._type

    def colorModel(self):  # noqa: N802
        return self._model

    def colorDepth(self):  # noqa: N802
        return self._depth

    def uniqueId(self):  # noqa: N802
        return self._id

    def bounds(self):
        return QRect(*self._rect)

    def parentNode(self):  # noqa: N802
        return self._parent

    def childNodes(self):  # noqa: N802 (bottom first, as in Krita)
        return list(self._children)

    def _read(self, x, y, w, h):
        rx, ry, rw, rh = self._rect
        out = bytearray(w * h * self._bpp)
        for row in range(h):
            yy = y + row
            if not ry <= yy < ry + rh:
                continue
            for col in range(w):
                xx = x + col
                if rx <= xx < rx + rw:
                    s = ((yy - ry) * rw + (xx - rx)) * self._bpp
                    d = (row * w + col) * self._bpp
                    out[d : d + self._bpp] = self._pixels[s : s + self._bpp]
        return bytes(out)

    def pixelData(self, x, y, w, h):  # noqa: N802
        self.reads = getattr(self, "reads", 0) + 1
        return self._read(x, y, w, h)

    def projectionPixelData(self, x, y, w, h):  # noqa: N802
        self.projection_reads = getattr(self, "projection_reads", 0) + 1
        return self._read(x, y, w, h)

    def setPixelData(self, data, x, y, w, h):  # noqa: N802
        if getattr(self, "fail_set", False):
            raise RuntimeError("setPixelData failed")
        self._rect = (x, y, w, h)
        self._pixels = bytearray(bytes(data))

    def setOpacity(self, value):  # noqa: N802
        self.opacity = value

    def visible(self):
        return self._visible

    def setVisible(self, value):  # noqa: N802
        self._visible = bool(value)

    def addChildNode(self, child, above):  # noqa: N802
        child._parent = self
        if above is None:
            self._children.append(child)
        else:
            idx = next(i for i, n in enumerate(self._children) if n is above)
            self._children.insert(idx + 1, child)
        return True

    def remove(self):
        if self._parent is not None:
            self._parent._children = [n for n in self._parent._children if n is not self]
            self._parent = None
        return True


class Selection:
    def __init__(self, rect=(0, 0, 0, 0), value=255):
        self._node = Node("sel", model="SEL", rect=rect)
        self._node._bpp = 1
        self._node._pixels = bytearray([value]) * (rect[2] * rect[3])

    def width(self):
        return self._node._rect[2]

    def height(self):
        return self._node._rect[3]

    def pixelData(self, x, y, w, h):  # noqa: N802
        return self._node._read(x, y, w, h)


class Document:
    def __init__(self, width, height, model="RGBA", depth="U8"):
        self._w, self._h, self._model, self._depth = width, height, model, depth
        self._root = Node("root", "grouplayer", model, depth)
        self._active = None
        self._selection = None
        self.refreshed = 0
        self.fail_create = False

    def colorModel(self):  # noqa: N802
        return self._model

    def colorDepth(self):  # noqa: N802
        return self._depth

    def rootNode(self):  # noqa: N802
        return self._root

    def topLevelNodes(self):  # noqa: N802
        return self._root.childNodes()

    def activeNode(self):  # noqa: N802
        return self._active

    def setActiveNode(self, node):  # noqa: N802
        self._active = node

    def selection(self):
        return self._selection

    def setSelection(self, sel):  # noqa: N802
        self._selection = sel

    def createNode(self, name, ntype):  # noqa: N802
        if self.fail_create:
            return None
        return Node(name, ntype, self._model, self._depth)

    def nodeByName(self, name):  # noqa: N802
        stack = list(self._root._children)
        while stack:
            n = stack.pop()
            if n.name() == name:
                return n
            stack.extend(n._children)
        return None

    def refreshProjection(self):  # noqa: N802
        self.refreshed += 1

    def layer_names(self):
        """Top-level names, top first (for assertions)."""
        return [n.name() for n in reversed(self._root._children)]


class App:
    def __init__(self, docs=()):
        self.docs = list(docs)
        self.active = self.docs[0] if self.docs else None

    def activeDocument(self):  # noqa: N802
        return self.active

    def documents(self):
        return list(self.docs)

    def version(self):
        return self.krita_version

    krita_version = "5.2.9"


class _Krita:
    _app = App()

    @classmethod
    def instance(cls):
        return cls._app


def krita_module() -> types.ModuleType:
    mod = types.ModuleType("krita")
    mod.Krita = _Krita
    mod.Extension = object
    mod.Selection = Selection
    return mod


def pyqt5_modules(binding: str = "PyQt5") -> dict[str, types.ModuleType]:
    """Fake ``PyQt5`` (or ``PyQt6``: ``binding``) package modules; ``BINDING`` names which one was imported."""
    core = types.ModuleType(f"{binding}.QtCore")
    core.QByteArray = bytes
    core.QTimer = object
    core.Qt = types.SimpleNamespace()
    core.BINDING = binding
    gui = types.ModuleType(f"{binding}.QtGui")
    widgets = types.ModuleType(f"{binding}.QtWidgets")
    pkg = types.ModuleType(binding)
    pkg.QtCore, pkg.QtGui, pkg.QtWidgets = core, gui, widgets
    return {binding: pkg, f"{binding}.QtCore": core, f"{binding}.QtGui": gui, f"{binding}.QtWidgets": widgets}
