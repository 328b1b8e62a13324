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
# a white 6x4 BGRA page with two dark "text" pixels at (1, 1) and (4, 2)
TEXT = {(1, 1), (4, 2)}


def page_bgra():
    out = bytearray()
    for y in range(H):
        for x in range(W):
            out += bytes([0, 0, 0, 255]) if (x, y) in TEXT else bytes([255, 255, 255, 255])
    return bytes(out)


class FakeDoc:
    def __init__(self, selection=None, painted=None, fail_on=None):
        self.src = actions.Source("Page", px.Rect(10, 20, W, H), "BGRA", page_bgra())
        self.selection, self.painted, self.fail_on = selection, painted, fail_on
        self.layers: list[tuple] = []  # (name, rect, pixels, above_text_mask, opacity)
        self.removed: list = []
        self.refreshed = 0

    def source(self):
        return self.src

    def selection_coverage(self, rect):
        assert rect == self.src.rect
        return self.selection

    def text_mask_pixels(self, rect):
        return self.painted

    def add_layer(self, name, rect, pixels, above_text_mask, opacity):
        if name == self.fail_on:
            raise RuntimeError("Krita refused the layer")
        self.layers.append((name, rect, pixels, above_text_mask, opacity))
        return name

    def remove_layer(self, handle):
        self.removed.append(handle)
        self.layers = [x for x in self.layers if x[0] != handle]

    def refresh(self):
        self.refreshed += 1


class FakeClient:
    """detect: dark pixels are text; inpaint/clean: the hole (or detected text) becomes white, opaque."""

    def __init__(self, error=None):
        self.calls, self.error = [], error

    def run(self, op, pixels, width, height, channels, mask=None, options=None, progress=None, timeout=600):
        self.calls.append({"op": op, "mask": mask, "options": options, "size": (width, height),
                           "channels": channels})
        if self.error:
            raise self.error
        if progress:
            progress(0.5, "working")
        detected = bytes(255 if pixels[i * 4] < 128 else 0 for i in range(width * height))
        if op == "detect":
            return {"mask": detected, "pixels": None, "stats": {"engine_s": 0.1}}
        hole = mask if mask is not None else detected
        out = bytearray(width * height * 4)
        for i, m in enumerate(hole):
            if m:
                out[i * 4 : i * 4 + 4] = bytes([255, 255, 255, 255])
        return {"mask": detected if op == "clean" and mask is None else mask, "pixels": bytes(out),
                "stats": {"engine_s": 0.2}}

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
    doc = FakeDoc(selection=bytes([255]) * (W * H))  # a selection does not limit detection
    spec, outcome, names, client = run("detect", doc, settings=st.Settings(7, 0.3, ""))
    assert names == ["Text Mask"]
    (name, rect, pixels, above_mask, _), = doc.layers
    assert rect == px.Rect(10, 20, W, H) and not above_mask
    assert alpha_positions(pixels) == TEXT
    assert pixels[(1 * W + 1) * 4 : (1 * W + 1) * 4 + 4] == bytes([0, 0, 255, 255])  # red in BGRA
    assert client.calls[0]["options"] == {"grow_px": 7, "threshold": 0.3}
    assert client.calls[0]["channels"] == "BGRA" and client.calls[0]["size"] == (W, H)
    assert outcome.text_pixels == 2 and "2 text pixels" in actions.summary(spec, outcome)


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
    assert doc.layers[0][3] is True  # placed above a Text Mask if there is one


def test_inpaint_without_selection_uses_the_painted_text_mask_grown_by_the_engine():
    painted_mask = bytearray(W * H)
    painted_mask[2 * W + 4] = 255  # the user kept only one of the two text pixels
    painted = proto.mask_to_layer(bytes(painted_mask), "BGRA")
    doc = FakeDoc(painted=painted)
    _, _, names, client = run("inpaint", doc)
    assert client.calls[0]["op"] == "clean" and client.calls[0]["mask"] == bytes(painted_mask)
    assert alpha_positions(doc.layers[0][2]) == {(4, 2)}


def test_inpaint_with_nothing_to_use_says_what_to_do():
    with pytest.raises(actions.UserError, match="select the text to remove first"):
        actions.prepare("inpaint", FakeDoc(), st.Settings())
    with pytest.raises(actions.UserError, match="is empty"):
        actions.prepare("inpaint", FakeDoc(painted=bytes(W * H * 4)), st.Settings())
    with pytest.raises(actions.UserError, match="does not cover"):
        actions.prepare("inpaint", FakeDoc(selection=bytes(W * H)), st.Settings())


def test_clean_page_adds_mask_then_cleaned_above():
    doc = FakeDoc()
    spec, outcome, names, _ = run("clean", doc)
    assert names == ["Text Mask", "Cleaned"]
    assert [x[3] for x in doc.layers] == [False, True]
    assert alpha_positions(doc.layers[1][2]) == TEXT
    assert outcome.changed_pixels == 2 and doc.refreshed == 1


def test_clean_page_with_selection_only_changes_inside_it():
    sel = bytearray(W * H)
    for y in range(H):
        for x in range(3):
            sel[y * W + x] = 255  # left half: holds (1, 1) only
    doc = FakeDoc(selection=bytes(sel))
    _, outcome, names, client = run("clean", doc)
    assert [c["op"] for c in client.calls] == ["detect", "clean"]
    assert names == ["Text Mask", "Cleaned"]
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
    assert doc.layers == [] and doc.removed == ["Text Mask"]


def test_grey_layers_go_as_la():
    doc = FakeDoc()
    grey = bytes(v for i in range(W * H) for v in ((0, 255) if (i % W, i // W) in TEXT else (255, 255)))
    doc.src = actions.Source("Grey", px.Rect(0, 0, W, H), "LA", grey)

    class GreyClient(FakeClient):
        def run(self, op, pixels, width, height, channels, **kw):
            assert channels == "LA" and len(pixels) == width * height * 2
            return {"mask": bytes(255 if pixels[i * 2] < 128 else 0 for i in range(width * height)),
                    "pixels": None}

    run("detect", doc, GreyClient())
    mask_layer = doc.layers[0][2]
    assert proto.layer_to_mask(mask_layer, "LA") == bytes(255 if (i % W, i // W) in TEXT else 0 for i in range(W * H))


