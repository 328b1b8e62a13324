"""Krita's pixel layouts and rectangles (stdlib only, no Krita, no Qt): unit-tested on their own.

Layer pixels are in Krita's native order for 8-bit integer colour spaces: RGBA/U8 is B, G, R, A and GRAYA/U8 is
grey, alpha. The engine protocol names these "BGRA" and "LA". The mask operations both plug-ins share (a mask is
``width * height`` bytes, 255 = inside) are in ``kesu_protocol``.
"""

from __future__ import annotations

from dataclasses import dataclass

# (Krita colour model, depth) -> the protocol's channel order for pixelData() bytes
LAYOUTS = {("RGBA", "U8"): "BGRA", ("GRAYA", "U8"): "LA"}


class UnsupportedLayout(ValueError):
    """The layer's colour space is not one the plug-in can hand to the engine without conversion."""


@dataclass(frozen=True)
class Rect:
    """An image-space rectangle; ``x``/``y`` may be negative (layer content left of / above the canvas)."""

    x: int
    y: int
    width: int
    height: int

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0


def layout_for(model: str, depth: str) -> str:
    """The protocol channel order of Krita's ``pixelData`` for a colour model/depth, or UnsupportedLayout."""
    try:
        return LAYOUTS[(model, depth)]
    except KeyError:
        raise UnsupportedLayout(
            f"Kesu works on 8-bit RGB or greyscale layers, but this one is {model}/{depth}. Convert the "
            "image with Image > Convert Image Color Space... to RGB/Alpha (or Grayscale/Alpha), 8-bit "
            "integer/channel, then try again (or run Kesu on a converted copy)."
        ) from None
