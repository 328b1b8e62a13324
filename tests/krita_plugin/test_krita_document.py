"""kesu.krita_document: the Krita adapter against a fake libkis (offsets, groups, colour spaces, placement)."""

from __future__ import annotations

import pytest

from tests.krita_plugin.conftest import kesu_module


def setup_doc(fk, model="RGBA", depth="U8", rect=(0, 0, 4, 3)):
    doc = fk.Document(8, 6, model, depth)
    bpp = 4 if model == "RGBA" else 2
    page = fk.Node("Page", model=model, depth=depth, rect=rect, pixels=bytes(
        (i * 7) % 256 for i in range(rect[2] * rect[3] * bpp)))
    doc.rootNode().addChildNode(page, None)
    doc.setActiveNode(page)
    fk._Krita._app = fk.App([doc])
    return doc, page


def test_no_document(fake_krita):
    kd = kesu_module("krita_document")
    actions = kesu_module("actions")
    with pytest.raises(actions.UserError, match="No document is open"):
        kd.KritaDocument(fake_krita.App([]))


def test_source_reads_the_layer_rect_with_its_offset(fake_krita):
    kd = kesu_module("krita_document")
    doc, page = setup_doc(fake_krita, rect=(-2, 3, 4, 3))
    src = kd.KritaDocument(fake_krita._Krita.instance()).source()
    assert (src.rect.x, src.rect.y, src.rect.width, src.rect.height) == (-2, 3, 4, 3)
    assert src.channels == "BGRA" and src.pixels == bytes(page._pixels) and src.name == "Page"
    assert page.reads == 1 and getattr(page, "projection_reads", 0) == 0


def test_group_is_read_through_its_projection(fake_krita):
    kd = kesu_module("krita_document")
    doc, page = setup_doc(fake_krita)
    group = fake_krita.Node("Group", "grouplayer", rect=(0, 0, 4, 3), pixels=bytes(48))
    doc.rootNode().addChildNode(group, page)
    doc.setActiveNode(group)
    src = kd.KritaDocument(fake_krita._Krita.instance()).source()
    assert src.name == "Group" and group.projection_reads == 1 and getattr(group, "reads", 0) == 0


def test_grey_document_is_la(fake_krita):
    kd = kesu_module("krita_document")
    setup_doc(fake_krita, model="GRAYA")
    assert kd.KritaDocument(fake_krita._Krita.instance()).source().channels == "LA"


@pytest.mark.parametrize("model,depth", [("RGBA", "U16"), ("RGBA", "F32"), ("CMYKA", "U8")])
def test_other_colour_spaces_are_refused_with_the_fix(fake_krita, model, depth):
    kd = kesu_module("krita_document")
    px = kesu_module("pixels")
    setup_doc(fake_krita, model=model, depth=depth)
    with pytest.raises(px.UnsupportedLayout, match="Convert Image Color Space"):
        kd.KritaDocument(fake_krita._Krita.instance()).source()


def test_empty_layer_and_mask_nodes_are_refused(fake_krita):
    kd = kesu_module("krita_document")
    actions = kesu_module("actions")
    doc, page = setup_doc(fake_krita, rect=(0, 0, 0, 0))
    with pytest.raises(actions.UserError, match="is empty"):
        kd.KritaDocument(fake_krita._Krita.instance()).source()
    mask = fake_krita.Node("Transparency", "transparencymask")
    page.addChildNode(mask, None)
    doc.setActiveNode(mask)
    with pytest.raises(actions.UserError, match="not a layer"):
        kd.KritaDocument(fake_krita._Krita.instance()).source()


def test_layers_go_directly_above_the_source_and_cleaned_above_the_mask(fake_krita):
    kd = kesu_module("krita_document")
    px = kesu_module("pixels")
    doc, page = setup_doc(fake_krita)
    top = fake_krita.Node("Lettering guide", rect=(0, 0, 1, 1), pixels=bytes(4))
    doc.rootNode().addChildNode(top, page)
    actions = kesu_module("actions")
    adapter = kd.KritaDocument(fake_krita._Krita.instance())
    src = adapter.source()
    mask = adapter.add_layer("Text Mask", src.rect, bytes(range(48)), actions.ABOVE_SOURCE, 200)
    adapter.add_layer("SFX Mask", src.rect, bytes(48), mask, 200, visible=False)
    adapter.add_layer("Cleaned", src.rect, bytes(48), actions.ABOVE_MASKS, 255)
    assert doc.layer_names() == ["Lettering guide", "Cleaned", "SFX Mask", "Text Mask", "Page"]
    assert doc.nodeByName("Text Mask").opacity == 200 and doc.nodeByName("Text Mask").visible()
    assert not doc.nodeByName("SFX Mask").visible()
    # running again with "Text Mask" active works on the page below it, and finds its masks: the hidden
    # "SFX Mask" is not filled, so its pixels are not read
    doc.setActiveNode(doc.nodeByName("Text Mask"))
    again = kd.KritaDocument(fake_krita._Krita.instance())
    assert again.source().name == "Page"
    rect = px.Rect(0, 0, 4, 3)
    assert again.mask_layers(rect) == [actions.MaskLayer("SFX Mask", False, None),
                                       actions.MaskLayer("Text Mask", True, bytes(range(48)))]
    assert getattr(doc.nodeByName("SFX Mask"), "reads", 0) == 0
    doc.nodeByName("SFX Mask").setVisible(True)
    doc.nodeByName("Text Mask").setVisible(False)
    assert again.mask_layers(rect) == [actions.MaskLayer("SFX Mask", True, bytes(48)),
                                       actions.MaskLayer("Text Mask", False, None)]
    with pytest.raises(ValueError, match="unknown layer place"):
        again.add_layer("Cleaned", src.rect, bytes(48), "elsewhere", 255)


def test_the_layer_rules_are_the_gimp_plugins(fake_krita):
    """kesu_protocol's rules: a renamed "Text Mask #2" counts, and a Kesu layer with no page below is refused."""
    kd = kesu_module("krita_document")
    actions = kesu_module("actions")
    px = kesu_module("pixels")
    doc, page = setup_doc(fake_krita)
    mask = fake_krita.Node("Text Mask #2", rect=(0, 0, 4, 3), pixels=bytes(range(48)))
    doc.rootNode().addChildNode(mask, page)
    doc.setActiveNode(mask)
    adapter = kd.KritaDocument(fake_krita._Krita.instance())
    assert adapter.source().name == "Page"
    assert adapter.mask_layers(px.Rect(0, 0, 4, 3)) == [actions.MaskLayer("Text Mask #2", True, bytes(range(48)))]
    lone = fake_krita.Document(8, 6, "RGBA", "U8")
    only_mask = fake_krita.Node("Text Mask", rect=(0, 0, 4, 3), pixels=bytes(48))
    lone.rootNode().addChildNode(only_mask, None)
    lone.setActiveNode(only_mask)
    fake_krita._Krita._app = fake_krita.App([lone])
    with pytest.raises(actions.UserError, match="no other layer below it"):
        kd.KritaDocument(fake_krita._Krita.instance()).source()


def test_failed_pixel_write_removes_the_new_layer(fake_krita):
    kd = kesu_module("krita_document")
    doc, page = setup_doc(fake_krita)
    adapter = kd.KritaDocument(fake_krita._Krita.instance())
    src = adapter.source()
    orig_create = doc.createNode

    def failing(name, ntype):
        node = orig_create(name, ntype)
        node.fail_set = True
        return node

    doc.createNode = failing
    with pytest.raises(RuntimeError):
        adapter.add_layer("Text Mask", src.rect, bytes(48), kesu_module("actions").ABOVE_SOURCE, 255)
    assert doc.layer_names() == ["Page"]


def test_selection_coverage(fake_krita):
    kd = kesu_module("krita_document")
    px = kesu_module("pixels")
    doc, page = setup_doc(fake_krita, rect=(0, 0, 4, 3))
    adapter = kd.KritaDocument(fake_krita._Krita.instance())
    assert adapter.selection_coverage(px.Rect(0, 0, 4, 3)) is None
    doc.setSelection(fake_krita.Selection((1, 1, 2, 1)))
    cov = adapter.selection_coverage(px.Rect(0, 0, 4, 3))
    assert cov == bytes([0, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 0])
    doc.setSelection(fake_krita.Selection((0, 0, 0, 0)))  # an empty selection counts as none
    assert adapter.selection_coverage(px.Rect(0, 0, 4, 3)) is None


def test_is_open(fake_krita):
    kd = kesu_module("krita_document")
    doc, _ = setup_doc(fake_krita)
    adapter = kd.KritaDocument(fake_krita._Krita.instance())
    assert adapter.is_open()
    fake_krita._Krita._app.docs = []
    assert not adapter.is_open()
