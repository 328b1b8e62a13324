"""engine.psd: the layered Photoshop file of a cleaned page, read back with psd-tools (layer names, order,
visibility, sizes, every layer's pixels against what the plug-ins would add, and the merged image)."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from engine import psd
from engine.errors import InputError
from engine.protocol import mask_to_layer
from engine.server import result_pixels

psd_tools = pytest.importorskip("psd_tools", reason="psd-tools (the kesu[psd] extra) is not installed")
from psd_tools import PSDImage  # noqa: E402
from psd_tools.constants import ColorMode  # noqa: E402


def _page(rng, h=37, w=53, alpha=False):
    """A random page, its tight text mask, the grown mask, and a cleaned page that differs only inside it."""
    original = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    text = np.zeros((h, w), bool)
    text[5:12, 8:30] = True
    text[20:30, 35:50] = True
    grown = text.copy()
    grown[4:13, 7:31] = True
    grown[19:31, 34:51] = True
    cleaned = original.copy()
    cleaned[grown] = rng.integers(0, 256, (int(grown.sum()), 3), dtype=np.uint8)
    page_alpha = None
    if alpha:
        page_alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
        page_alpha[:, :4] = 0      # fully transparent, partly inside the grown mask
        page_alpha[:, -4:] = 255
    return original, page_alpha, cleaned, text, grown


def _write_and_open(document) -> tuple[PSDImage, bytes]:
    buffer = io.BytesIO()
    document.write(buffer)
    data = buffer.getvalue()
    return PSDImage.open(io.BytesIO(data)), data


def _stored_merged_planes(data: bytes) -> tuple[np.ndarray, int]:
    """The merged image's planes as stored (H, W, C), and the layer count, through psd-tools' low-level reader."""
    from psd_tools.psd import PSD

    record = PSD.read(io.BytesIO(data))
    h, w, n = record.header.height, record.header.width, record.header.channels
    raw = record.image_data.get_data(record.header, split=False)
    planes = np.frombuffer(raw, np.uint8).reshape(n, h, w).transpose(1, 2, 0)
    return planes, record.layer_and_mask_information.layer_info.layer_count


def _pixels(layer) -> np.ndarray:
    """A layer's stored pixels as uint8 (H, W, C) with alpha last."""
    return np.asarray(layer.topil())


def _plugin_mask_layer(mask: np.ndarray, grey: bool) -> np.ndarray:
    """The plug-ins' "Text Mask" pixels (engine.protocol.mask_to_layer, the plug-ins' shared client) as RGBA or
    LA."""
    h, w = mask.shape
    raw = mask_to_layer((mask * 255).astype(np.uint8).tobytes(), "LA" if grey else "RGBA")
    return np.frombuffer(raw, np.uint8).reshape(h, w, 2 if grey else 4)


def _plugin_cleaned_layer(cleaned, grown, alpha, grey):
    """The plug-ins' "Cleaned" pixels for the same page (what the engine server answers), as RGBA or LA."""
    raw, layout = result_pixels(cleaned, grown, alpha, "L" if grey else ("RGB" if alpha is None else "RGBA"))
    return np.frombuffer(raw, np.uint8).reshape(*grown.shape, len(layout))


@pytest.mark.parametrize("grey", [False, True], ids=["rgb", "grey"])
@pytest.mark.parametrize("with_alpha", [False, True], ids=["opaque", "alpha"])
def test_layers_names_order_visibility_and_pixels(rng, grey, with_alpha):
    original, alpha, cleaned, text, grown = _page(rng, alpha=with_alpha)
    if grey:
        original = np.repeat(original[:, :, :1], 3, axis=2)   # a grey page as the reader gives it
        cleaned = np.where(grown[:, :, None], cleaned, original)
    h, w = text.shape
    doc, data = _write_and_open(psd.layered_document(original, alpha, cleaned, grown, {"Text Mask": text},
                                                     "page 001.png", grey=grey))

    assert doc.color_mode == (ColorMode.GRAYSCALE if grey else ColorMode.RGB)
    assert doc.depth == 8 and doc.size == (w, h) and doc.version == 1
    assert [layer.name for layer in doc] == ["page 001.png", "Text Mask", "Cleaned"]  # bottom up
    assert [layer.visible for layer in doc] == [True, False, True]
    assert all(layer.kind == "pixel" and layer.bbox == (0, 0, w, h) for layer in doc)
    assert all(layer.opacity == 255 and not layer.has_mask() for layer in doc)

    page, mask_layer, cleaned_layer = (_pixels(layer) for layer in doc)
    colour = original[:, :, :1] if grey else original
    np.testing.assert_array_equal(page[:, :, :-1], colour)
    np.testing.assert_array_equal(page[:, :, -1], 255 if alpha is None else alpha)
    np.testing.assert_array_equal(mask_layer, _plugin_mask_layer(text, grey))
    np.testing.assert_array_equal(cleaned_layer, _plugin_cleaned_layer(cleaned, grown, alpha, grey))

    # the merged image: the cleaned page (grey: its BT.601 grey)
    expected = psd.luma(cleaned) if grey else cleaned
    if alpha is None:
        assert doc.channels == (1 if grey else 3)
        np.testing.assert_array_equal(np.asarray(doc.topil()), expected)
    else:
        assert doc.channels == (2 if grey else 4)
        planes, layer_count = _stored_merged_planes(data)
        # stored over white, as Photoshop stores a transparent document's merged image, with the alpha after it
        a = alpha.astype(np.int64)[:, :, None]
        over_white = (expected.reshape(h, w, -1).astype(np.int64) * a + 255 * (255 - a) + 127) // 255
        np.testing.assert_array_equal(planes, np.dstack([over_white, alpha]))
        # the alpha channel is the merged image's transparency, not an extra "Alpha 1" channel
        assert layer_count == -3
        # psd-tools reads the colour back (un-matted) to within rounding where the page is not transparent
        back = np.asarray(doc.topil()).astype(np.int64).reshape(h, w, -1)
        seen = alpha >= 128
        assert np.abs(back[:, :, :-1] - expected.reshape(h, w, -1))[seen].max() <= 1


def test_hiding_cleaned_shows_the_original_and_the_layers_composite_to_the_cleaned_page(rng):
    original, _, cleaned, text, grown = _page(rng)
    doc, _ = _write_and_open(psd.layered_document(original, None, cleaned, grown, {"Text Mask": text}, "p.png"))
    page, _, cleaned_layer = (_pixels(layer).astype(np.int32) for layer in doc)
    a = cleaned_layer[:, :, 3:] // 255
    composite = cleaned_layer[:, :, :3] * a + page[:, :, :3] * (1 - a)   # opaque layers: Normal blending
    np.testing.assert_array_equal(composite, cleaned)
    assert set(np.unique(a)) == {0, 1} and (a[:, :, 0] == grown).all()


def test_one_hidden_layer_per_text_kind_in_the_order_given(rng):
    original, _, cleaned, text, grown = _page(rng)
    sfx = np.zeros_like(text)
    sfx[30:35, 2:20] = True
    doc, _ = _write_and_open(psd.layered_document(original, None, cleaned, grown,
                                                  {"Text Mask": text, "SFX Mask": sfx}, "p.png"))
    assert [(layer.name, layer.visible) for layer in doc] == [
        ("p.png", True), ("Text Mask", False), ("SFX Mask", False), ("Cleaned", True)]
    np.testing.assert_array_equal(_pixels(doc[2]), _plugin_mask_layer(sfx, grey=False))


def test_no_text_gives_empty_mask_and_cleaned_layers(rng):
    original, _, _, text, _ = _page(rng)
    nothing = np.zeros_like(text)
    doc, _ = _write_and_open(psd.layered_document(original, None, original, nothing, {"Text Mask": nothing},
                                                  "p.png"))
    assert [layer.name for layer in doc] == ["p.png", "Text Mask", "Cleaned"]
    assert not _pixels(doc[1]).any() and not _pixels(doc[2]).any()
    np.testing.assert_array_equal(np.asarray(doc.topil()), original)


def test_unicode_and_long_names(rng):
    original, _, cleaned, text, grown = _page(rng, 8, 9)
    text, grown = text[:8, :9], grown[:8, :9]
    for name in ["ページ-003.png", "x" * 300]:
        doc, _ = _write_and_open(psd.layered_document(original, None, cleaned, grown, {"Text Mask": text}, name))
        assert doc[0].name == name[: psd.MAX_NAME_CHARS]


def test_over_30000_px_is_a_psb(rng):
    h, w = psd.PSD_MAX_SIDE + 1, 3
    original = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    text = np.zeros((h, w), bool)
    text[h - 10:h - 2, 1] = True
    cleaned = original.copy()
    cleaned[text] = 255
    _, data = _write_and_open(psd.layered_document(original, None, cleaned, text, {"Text Mask": text}, "s.png"))
    assert data[:6] == b"8BPS\x00\x02"  # version 2: PSB
    # psd-tools' high-level reader renders nothing over 30000 px, so this reads the stored records
    from psd_tools.constants import ChannelID, Tag
    from psd_tools.psd import PSD

    record = PSD.read(io.BytesIO(data))
    assert (record.header.version, record.header.width, record.header.height) == (2, w, h)
    planes, _ = _stored_merged_planes(data)
    np.testing.assert_array_equal(planes, cleaned)
    info = record.layer_and_mask_information.layer_info
    names = [layer.tagged_blocks.get_data(Tag.UNICODE_LAYER_NAME) for layer in info.layer_records]
    assert names == ["s.png", "Text Mask", "Cleaned"]
    layer, channels = info.layer_records[2], info.channel_image_data[2]
    assert (layer.top, layer.left, layer.bottom, layer.right) == (0, 0, h, w)
    stored = {c.id: np.frombuffer(d.get_data(w, h, 8, 2), np.uint8).reshape(h, w)
              for c, d in zip(layer.channel_info, channels, strict=True)}
    rgba = np.dstack([stored[ChannelID(i)] for i in range(3)] + [stored[ChannelID.TRANSPARENCY_MASK]])
    np.testing.assert_array_equal(rgba, _plugin_cleaned_layer(cleaned, text, None, False))


@pytest.mark.parametrize("size, suffix", [((30000, 10), ".psd"), ((10, 30000), ".psd"), ((30001, 10), ".psb"),
                                          ((800, 30001), ".psb"), ((1654, 2339), ".psd")])
def test_file_suffix(size, suffix):
    assert psd.file_suffix(*size) == suffix


def test_beyond_the_psb_limit_is_refused_clearly():
    tall = np.zeros((psd.PSB_MAX_SIDE + 1, 1, 3), np.uint8)
    flat = np.zeros(tall.shape[:2], bool)
    with pytest.raises(InputError, match="split the page"):
        psd.layered_document(tall, None, tall, flat, {"Text Mask": flat}, "t.png")


def test_mismatched_arrays_are_refused(rng):
    original, _, cleaned, text, grown = _page(rng)
    with pytest.raises(InputError, match="Text Mask"):
        psd.layered_document(original, None, cleaned, grown, {"Text Mask": text[1:]}, "p.png")
    with pytest.raises(InputError, match="changed pixels"):
        psd.layered_document(original, None, cleaned, grown.astype(np.uint8), {"Text Mask": text}, "p.png")
    with pytest.raises(InputError, match="cleaned page"):
        psd.layered_document(original, None, cleaned[1:], grown, {"Text Mask": text}, "p.png")


def test_luma_rounds_like_the_plug_ins(rng):
    rgb = rng.integers(0, 256, (2100, 3, 3), dtype=np.uint8)   # more rows than one band
    raw, _ = result_pixels(rgb, np.ones(rgb.shape[:2], bool), None, "L")
    np.testing.assert_array_equal(psd.luma(rgb), np.frombuffer(raw, np.uint8).reshape(2100, 3, 2)[:, :, 0])


def test_without_psd_tools_the_message_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "psd_tools", None)  # import psd_tools now raises ImportError
    with pytest.raises(psd.MissingPsdSupport) as e:
        psd.require_psd_tools()
    assert f"{sys.executable} -m pip install '{psd.PSD_REQUIREMENT}'" in str(e.value)
    assert "kesu[psd]" in str(e.value)
