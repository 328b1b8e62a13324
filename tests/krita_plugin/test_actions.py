"""kesu.actions: what each action reads, asks the engine and adds, against a fake document and engine."""

from __future__ import annotations

import pytest

from tests.krita_plugin.conftest import kesu_module

actions = kesu_module("actions")
px = kesu_module("pixels")
st = kesu_module("settings")
proto = kesu_module("kesu_protocol")
ProtocolError = proto.ProtocolError

W, H = 6, 4
# a white 6x4 BGRA page with two dark "text" pixels at (1, 1) and (4, 2) and a blue "sound effect" at (3, 0)
TEXT = {(1, 1), (4, 2)}
SFX = {(3, 0)}


def page_bgra(sfx=True):
    out = bytearray()
    for y in range(H):
        for x in range(W):
            if (x, y) in TEXT:
                out += bytes([0, 0, 0, 255])
            elif sfx and (x, y) in SFX:
                out += bytes([255, 0, 0, 255])  # blue in BGRA
            else:
                out += bytes([255, 255, 255, 255])
    return bytes(out)


def mask_of(positions):
    return bytes(255 if (i % W, i // W) in positions else 0 for i in range(W * H))


class FakeDoc:
    """``masks``: the mask layers that belong to the page, as MaskLayer(name, fill, pixels)."""

    def __init__(self, selection=None, painted=None, fail_on=None, masks=None, sfx=True):
        self.src = actions.Source("Page", px.Rect(10, 20, W, H), "BGRA", page_bgra(sfx))
        self.selection, self.fail_on = selection, fail_on
        self.masks = masks if masks is not None else (
            [] if painted is None else [actions.MaskLayer("Text Mask", True, painted)])
        self.layers: list[tuple] = []  # (name, rect, pixels, above, opacity, visible)
        self.removed: list = []
        self.refreshed = 0

    def source(self):
        return self.src

    def selection_coverage(self, rect):
        assert rect == self.src.rect
        return self.selection

    def mask_layers(self, rect):
        return self.masks

    def add_layer(self, name, rect, pixels, above, opacity, visible=True):
        if name == self.fail_on:
            raise RuntimeError("Krita refused the layer")
        self.layers.append((name, rect, pixels, above, opacity, visible))
        return name

    def remove_layer(self, handle):
        self.removed.append(handle)
        self.layers = [x for x in self.layers if x[0] != handle]

    def refresh(self):
        self.refreshed += 1


class FakeClient:
    """detect: dark pixels are dialogue, blue ones sound effects (the kinds ``text`` names are the mask; with
    ``kind_masks`` each kind's own mask too, unless ``old_engine``); inpaint/clean: the hole (or detected text)
    becomes white, opaque."""

    def __init__(self, error=None, old_engine=False):
        self.calls, self.error, self.old_engine = [], error, old_engine

    def run(self, op, pixels, width, height, channels, mask=None, options=None, progress=None, timeout=600,
            text="dialogue", kind_masks=False):
        self.calls.append({"op": op, "mask": mask, "options": options, "size": (width, height),
                           "channels": channels, "text": text, "kind_masks": kind_masks})
        if self.error:
            raise self.error
        if progress:
            progress(0.5, "working")
        n = width * height
        kinds = {"dialogue": bytes(255 if pixels[i * 4] < 128 else 0 for i in range(n)),
                 "sfx": bytes(255 if pixels[i * 4] >= 128 and pixels[i * 4 + 2] < 128 else 0 for i in range(n))}
        wanted = proto.kinds_of_text(text)
        if self.old_engine:  # an engine that does not tell the kinds apart: all text is dialogue
            kinds = {"dialogue": proto.mask_or(kinds["dialogue"], kinds["sfx"]), "sfx": bytes(n)}
            wanted = ("dialogue",)
        detected = bytes(n)
        for kind in wanted:
            detected = proto.mask_or(detected, kinds[kind])
        answer = {"kind_masks": kinds if kind_masks and not self.old_engine else {}}
        if op == "detect":
            return dict(answer, mask=detected, pixels=None, stats={"engine_s": 0.1})
        hole = mask if mask is not None else detected
        out = bytearray(width * height * 4)
        for i, m in enumerate(hole):
            if m:
                out[i * 4 : i * 4 + 4] = bytes([255, 255, 255, 255])
        return dict(answer, mask=detected if op == "clean" and mask is None else mask, pixels=bytes(out),
                    stats={"engine_s": 0.2})

    def close(self):
        pass


def run(action, doc, client=None, settings=None):
    client = client or FakeClient()
    spec = actions.prepare(action, doc, settings or st.Settings())
    outcome = actions.execute(spec, client, lambda f, m: True)
    names = actions.apply(spec, outcome, doc)
    return spec, outcome, names, client


def alpha_positions(pixels):
    return {(i % W, i // W) for i in range(W * H) if pixels[i * 4 + 3]}


def test_detect_adds_text_mask_over_the_layer_rect_with_the_settings():
    doc = FakeDoc(selection=bytes([255]) * (W * H), sfx=False)  # a selection does not limit detection
    spec, outcome, names, client = run("detect", doc, settings=st.Settings(7, 0.3, ""))
    assert names == ["Text Mask"]  # no sound effects on the page: no "SFX Mask"
    (name, rect, pixels, above, _, visible), = doc.layers
    assert rect == px.Rect(10, 20, W, H) and above == actions.ABOVE_SOURCE and visible
    assert alpha_positions(pixels) == TEXT
    assert pixels[(1 * W + 1) * 4 : (1 * W + 1) * 4 + 4] == bytes([0, 0, 255, 255])  # red in BGRA
    assert client.calls[0]["options"] == {"grow_px": 7, "threshold": 0.3}
    assert client.calls[0]["channels"] == "BGRA" and client.calls[0]["size"] == (W, H)
    assert client.calls[0]["kind_masks"] is True and client.calls[0]["text"] == "dialogue"
    assert outcome.text_pixels == 2 and "2 text pixels" in actions.summary(spec, outcome)
    assert "SFX" not in actions.summary(spec, outcome)


def test_detect_adds_a_hidden_sfx_mask_directly_above_the_text_mask():
    doc = FakeDoc()
    spec, outcome, names, _ = run("detect", doc)
    assert names == ["Text Mask", "SFX Mask"]
    (_, _, text, above_t, opacity_t, shown_t), (_, _, sfx, above_s, opacity_s, shown_s) = doc.layers
    assert alpha_positions(text) == TEXT and alpha_positions(sfx) == SFX
    assert above_t == actions.ABOVE_SOURCE and above_s == "Text Mask"  # the handle of the layer just added
    assert shown_t and not shown_s and opacity_t == opacity_s == actions.TEXT_MASK_OPACITY
    note = actions.summary(spec, outcome)
    assert '"SFX Mask" added hidden (1 sound-effect pixels; show it to erase them too)' in note, note


def test_detect_with_include_sound_effects_shows_the_sfx_mask():
    doc = FakeDoc()
    spec, outcome, names, client = run("detect", doc, settings=st.Settings(include_sfx=True))
    assert client.calls[0]["text"] == "all"
    assert names == ["Text Mask", "SFX Mask"] and [x[5] for x in doc.layers] == [True, True]
    assert "hidden" not in actions.summary(spec, outcome)


def test_detect_with_an_engine_that_sends_no_kind_masks_makes_only_the_text_mask():
    doc = FakeDoc()
    _, _, names, _ = run("detect", doc, FakeClient(old_engine=True))
    assert names == ["Text Mask"] and alpha_positions(doc.layers[0][2]) == TEXT | SFX


def test_inpaint_with_selection_fills_exactly_the_selection():
    sel = bytearray(W * H)
    sel[1 * W + 1] = 255          # selects one text pixel
    sel[0] = 200                  # >= half covered: counts
    sel[5] = 100                  # < half: does not
    doc = FakeDoc(selection=bytes(sel))
    spec, outcome, names, client = run("inpaint", doc)
    assert client.calls[0]["op"] == "inpaint"
    assert names == ["Cleaned"]
    assert alpha_positions(doc.layers[0][2]) == {(1, 1), (0, 0)}
    assert doc.layers[0][3] == actions.ABOVE_MASKS  # placed above the page's mask layers if it has some


def test_inpaint_without_selection_uses_the_painted_text_mask_grown_by_the_engine():
    painted_mask = bytearray(W * H)
    painted_mask[2 * W + 4] = 255  # the user kept only one of the two text pixels
    painted = proto.mask_to_layer(bytes(painted_mask), "BGRA")
    doc = FakeDoc(painted=painted)
    _, _, names, client = run("inpaint", doc)
    assert client.calls[0]["op"] == "clean" and client.calls[0]["mask"] == bytes(painted_mask)
    assert alpha_positions(doc.layers[0][2]) == {(4, 2)}


def test_inpaint_without_selection_fills_every_visible_mask_layer_together():
    text = actions.MaskLayer("Text Mask", True, proto.mask_to_layer(mask_of({(1, 1)}), "BGRA"))
    sfx = actions.MaskLayer("SFX Mask", True, proto.mask_to_layer(mask_of(SFX), "BGRA"))
    doc = FakeDoc(masks=[sfx, text])
    spec, outcome, names, client = run("inpaint", doc)
    assert client.calls[0]["mask"] == mask_of({(1, 1)} | SFX)
    assert alpha_positions(doc.layers[0][2]) == {(1, 1)} | SFX
    assert spec.mask_names == ["SFX Mask", "Text Mask"]
    assert 'from "SFX Mask" and "Text Mask"' in actions.summary(spec, outcome)


def test_inpaint_without_selection_leaves_a_hidden_sfx_mask_alone():
    text = actions.MaskLayer("Text Mask", True, proto.mask_to_layer(mask_of(TEXT), "BGRA"))
    hidden = actions.MaskLayer("SFX Mask", False)  # the adapter reads no pixels of a layer that is not filled
    doc = FakeDoc(masks=[hidden, text])
    _, _, _, client = run("inpaint", doc)
    assert client.calls[0]["mask"] == mask_of(TEXT)


def test_inpaint_with_nothing_to_use_says_what_to_do():
    with pytest.raises(actions.UserError, match="select the text to remove first"):
        actions.prepare("inpaint", FakeDoc(), st.Settings())
    with pytest.raises(actions.UserError, match='"Text Mask" layer is empty'):
        actions.prepare("inpaint", FakeDoc(painted=bytes(W * H * 4)), st.Settings())
    with pytest.raises(actions.UserError, match="does not cover"):
        actions.prepare("inpaint", FakeDoc(selection=bytes(W * H)), st.Settings())
    hidden = [actions.MaskLayer("SFX Mask", False), actions.MaskLayer("Text Mask", False)]
    with pytest.raises(actions.UserError, match='"SFX Mask" and "Text Mask" are hidden.*Show the one to erase'):
        actions.prepare("inpaint", FakeDoc(masks=hidden), st.Settings())
    empty = [actions.MaskLayer("SFX Mask", True, bytes(W * H * 4)),
             actions.MaskLayer("Text Mask", True, bytes(W * H * 4))]
    with pytest.raises(actions.UserError, match='"SFX Mask" and "Text Mask" layers are empty'):
        actions.prepare("inpaint", FakeDoc(masks=empty), st.Settings())


def test_clean_page_adds_mask_then_cleaned_above():
    doc = FakeDoc(sfx=False)
    spec, outcome, names, client = run("clean", doc)
    assert names == ["Text Mask", "Cleaned"]
    assert [x[3] for x in doc.layers] == [actions.ABOVE_SOURCE, "Text Mask"]
    assert alpha_positions(doc.layers[1][2]) == TEXT
    assert outcome.changed_pixels == 2 and doc.refreshed == 1
    assert client.calls[0]["text"] == "dialogue" and client.calls[0]["kind_masks"] is True


def test_clean_page_keeps_sound_effects_by_default_and_shows_them_hidden():
    doc = FakeDoc()
    spec, outcome, names, client = run("clean", doc)
    assert client.calls[0]["text"] == "dialogue"
    assert names == ["Text Mask", "SFX Mask", "Cleaned"]
    assert [x[3] for x in doc.layers] == [actions.ABOVE_SOURCE, "Text Mask", "SFX Mask"]
    assert [x[5] for x in doc.layers] == [True, False, True]
    assert alpha_positions(doc.layers[2][2]) == TEXT  # the sound effect is not erased


def test_clean_page_with_include_sound_effects_erases_them_too():
    doc = FakeDoc()
    _, outcome, names, client = run("clean", doc, settings=st.Settings(include_sfx=True))
    assert client.calls[0]["text"] == "all"
    assert names == ["Text Mask", "SFX Mask", "Cleaned"] and [x[5] for x in doc.layers] == [True, True, True]
    assert alpha_positions(doc.layers[0][2]) == TEXT and alpha_positions(doc.layers[1][2]) == SFX
    assert alpha_positions(doc.layers[2][2]) == TEXT | SFX and outcome.text_pixels == 3


def test_clean_page_on_a_page_with_only_sound_effects_changes_nothing_and_says_why():
    doc = FakeDoc()
    doc.src = actions.Source("Page", px.Rect(0, 0, W, H), "BGRA",
                             bytes(v for i in range(W * H) for v in (
                                 (255, 0, 0, 255) if (i % W, i // W) in SFX else (255, 255, 255, 255))))
    spec, outcome, names, _ = run("clean", doc)
    assert names == [] and doc.layers == []
    note = actions.summary(spec, outcome)
    assert "nothing was changed" in note and "Include sound effects" in note, note


def test_clean_page_with_selection_only_changes_inside_it():
    sel = bytearray(W * H)
    for y in range(H):
        for x in range(3):
            sel[y * W + x] = 255  # left half: holds (1, 1) only
    doc = FakeDoc(selection=bytes(sel))
    _, outcome, names, client = run("clean", doc)
    assert [c["op"] for c in client.calls] == ["detect", "clean"]
    assert names == ["Text Mask", "Cleaned"]  # the sound effect at (3, 0) is outside the selection
    assert alpha_positions(doc.layers[0][2]) == {(1, 1)}
    assert alpha_positions(doc.layers[1][2]) == {(1, 1)}


def test_clean_page_without_text_adds_nothing():
    doc = FakeDoc()
    doc.src = actions.Source("Page", px.Rect(0, 0, W, H), "BGRA", bytes([255]) * (W * H * 4))
    spec, outcome, names, _ = run("clean", doc)
    assert names == [] and doc.layers == []
    assert "nothing was changed" in actions.summary(spec, outcome)


def test_engine_error_leaves_the_document_alone():
    doc = FakeDoc()
    spec = actions.prepare("clean", doc, st.Settings())
    with pytest.raises(ProtocolError):
        actions.execute(spec, FakeClient(error=ProtocolError("engine crashed", "connection")), lambda f, m: True)
    assert doc.layers == [] and doc.refreshed == 0


def test_apply_is_all_or_nothing():
    doc = FakeDoc(fail_on="Cleaned")
    spec = actions.prepare("clean", doc, st.Settings())
    outcome = actions.execute(spec, FakeClient(), lambda f, m: True)
    with pytest.raises(RuntimeError, match="refused"):
        actions.apply(spec, outcome, doc)
    assert doc.layers == [] and doc.removed == ["SFX Mask", "Text Mask"]  # the last added first


def test_grey_layers_go_as_la():
    doc = FakeDoc()
    grey = bytes(v for i in range(W * H) for v in ((0, 255) if (i % W, i // W) in TEXT else (255, 255)))
    doc.src = actions.Source("Grey", px.Rect(0, 0, W, H), "LA", grey)

    class GreyClient(FakeClient):  # an engine before text kinds: no kind masks in its answers
        def run(self, op, pixels, width, height, channels, **kw):
            assert channels == "LA" and len(pixels) == width * height * 2
            return {"mask": bytes(255 if pixels[i * 2] < 128 else 0 for i in range(width * height)),
                    "pixels": None}

    run("detect", doc, GreyClient())
    mask_layer = doc.layers[0][2]
    assert proto.layer_to_mask(mask_layer, "LA") == bytes(255 if (i % W, i // W) in TEXT else 0 for i in range(W * H))


