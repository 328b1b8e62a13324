"""Pure byte-level pixel helpers (stdlib only, no Krita, no Qt): unit-tested on their own.

Everything works on whole ``bytes`` objects with C-speed primitives (slicing with a step, ``bytes.translate``,
big-integer AND) so a 1654x2339 page takes milliseconds, not the seconds a Python loop per pixel would.

Conventions:
  * a *mask* is ``width * height`` bytes, 255 = inside (text / hole), 0 = outside;
  * layer pixels are in Krita's native order for 8-bit integer colour spaces: RGBA/U8 is B, G, R, A and
    GRAYA/U8 is grey, alpha. The engine protocol names these "BGRA" and "LA".
"""

from __future__ import annotations

from dataclasses import dataclass

# (Krita colour model, depth) -> the protocol's channel order for pixelData() bytes
LAYOUTS = {("RGBA", "U8"): "BGRA", ("GRAYA", "U8"): "LA"}
BYTES_PER_PIXEL = {"BGRA": 4, "LA": 2}

# what the "Text Mask" layer shows: a clear red on colour documents, mid grey on grey ones
MASK_RGB = (255, 0, 0)
MASK_GREY = 128
# a painted mask / selection pixel counts when at least half covered (soft brush edges and feathered
# selections then behave like the visible stroke)
COVER_THRESHOLD = 128


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


def _threshold_table(cut: int) -> bytes:
    """A translate table mapping values >= cut to 255 and the rest to 0."""
    return bytes(255 if v >= cut else 0 for v in range(256))


_COVERED = _threshold_table(COVER_THRESHOLD)


def _value_table(value: int) -> bytes:
    """A translate table mapping 0 to 0 and anything else to ``value``."""
    return bytes([0]) + bytes([value]) * 255


def coverage_to_mask(coverage: bytes) -> bytes:
    """One coverage byte per pixel (a selection's pixelData, or an alpha plane) -> a 0/255 mask."""
    return bytes(coverage).translate(_COVERED)


def alpha_plane(pixels: bytes, channels: str) -> bytes:
    """The alpha bytes of BGRA or LA pixels (the last channel)."""
    n = BYTES_PER_PIXEL[channels]
    return bytes(pixels[n - 1 :: n])


def layer_to_mask(pixels: bytes, channels: str) -> bytes:
    """A painted mask layer's pixels -> mask: a pixel is inside where it is at least half opaque."""
    return coverage_to_mask(alpha_plane(pixels, channels))


def mask_to_layer(mask: bytes, channels: str) -> bytes:
    """Mask (0/255 per pixel) -> "Text Mask" layer pixels: the mask colour, opaque inside, transparent zeros
    elsewhere, in ``channels`` order ("BGRA" or "LA")."""
    mask = bytes(mask).translate(_value_table(255))  # any nonzero counts as inside
    n = BYTES_PER_PIXEL[channels]
    out = bytearray(len(mask) * n)
    if channels == "BGRA":
        r, g, b = MASK_RGB
        out[0::4] = mask.translate(_value_table(b))
        out[1::4] = mask.translate(_value_table(g))
        out[2::4] = mask.translate(_value_table(r))
        out[3::4] = mask
    else:
        out[0::2] = mask.translate(_value_table(MASK_GREY))
        out[1::2] = mask
    return bytes(out)


def mask_and(a: bytes, b: bytes) -> bytes:
    """Pixel-wise AND of two 0/255 masks of the same length."""
    if len(a) != len(b):
        raise ValueError(f"masks of different sizes ({len(a)} and {len(b)} bytes)")
    n = len(a)
    if n == 0:
        return b""
    return (int.from_bytes(a, "little") & int.from_bytes(b, "little")).to_bytes(n, "little")


def mask_count(mask: bytes) -> int:
    """How many pixels of a mask are inside (nonzero)."""
    return len(mask) - bytes(mask).count(0)
