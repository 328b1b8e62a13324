"""kesu.pixels: Krita's pixel layouts and rectangles (the shared mask operations: tests/engine/test_protocol.py)."""

from __future__ import annotations

import pytest

from tests.krita_plugin.conftest import kesu_module

px = kesu_module("pixels")


def test_layouts_of_supported_and_refused_colour_spaces():
    assert px.layout_for("RGBA", "U8") == "BGRA"
    assert px.layout_for("GRAYA", "U8") == "LA"
    for model, depth in [("RGBA", "U16"), ("RGBA", "F32"), ("CMYKA", "U8"), ("LABA", "U16"), ("GRAYA", "F16")]:
        with pytest.raises(px.UnsupportedLayout, match="Convert Image Color Space"):
            px.layout_for(model, depth)


def test_rect():
    assert px.Rect(-5, 3, 10, 2).area == 20
    assert px.Rect(0, 0, 0, 9).is_empty() and not px.Rect(0, 0, 1, 1).is_empty()
