"""kesu.pixels: byte-level conversions between Krita layers, masks and selections (hand-computed cases)."""

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


def test_mask_to_layer_bgra_is_red_where_text_and_transparent_elsewhere():
    out = px.mask_to_layer(bytes([0, 255, 1, 0]), "BGRA")
    assert out == bytes([0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 255, 255, 0, 0, 0, 0])


def test_mask_to_layer_grey():
    assert px.mask_to_layer(bytes([255, 0]), "LA") == bytes([px.MASK_GREY, 255, 0, 0])


def test_layer_to_mask_uses_alpha_half_cover():
    # BGRA pixels with alpha 0, 127, 128, 255 -> only the last two count as painted
    data = bytes([9, 9, 9, 0, 9, 9, 9, 127, 0, 0, 0, 128, 1, 2, 3, 255])
    assert px.layer_to_mask(data, "BGRA") == bytes([0, 0, 255, 255])
    assert px.layer_to_mask(bytes([5, 200, 5, 3]), "LA") == bytes([255, 0])


def test_roundtrip_mask_layer_mask():
    mask = bytes([0, 255, 255, 0, 0, 255] * 100)
    for ch in ("BGRA", "LA"):
        assert px.layer_to_mask(px.mask_to_layer(mask, ch), ch) == mask


def test_coverage_and_and_count():
    assert px.coverage_to_mask(bytes([0, 64, 128, 255])) == bytes([0, 0, 255, 255])
    a, b = bytes([255, 255, 0, 0]), bytes([255, 0, 255, 0])
    assert px.mask_and(a, b) == bytes([255, 0, 0, 0])
    assert px.mask_and(b"", b"") == b""
    assert px.mask_count(bytes([0, 255, 7, 0])) == 2
    with pytest.raises(ValueError, match="different sizes"):
        px.mask_and(a, b[:2])


def test_big_page_conversion_is_fast_enough_for_the_gui_thread():
    import time

    n = 1654 * 2339
    mask = bytes([0, 255]) * (n // 2) + bytes(n % 2)
    t0 = time.perf_counter()
    layer = px.mask_to_layer(mask, "BGRA")
    back = px.layer_to_mask(layer, "BGRA")
    dt = time.perf_counter() - t0
    assert back == mask and len(layer) == 4 * n
    print(f"mask <-> layer for 1654x2339: {dt * 1000:.0f} ms")


def test_rect():
    assert px.Rect(-5, 3, 10, 2).area == 20
    assert px.Rect(0, 0, 0, 9).is_empty() and not px.Rect(0, 0, 1, 1).is_empty()
