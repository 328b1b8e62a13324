"""Unit tests of the GIMP plug-in's pure logic (gimp_plugin/kesu/kesu_core.py): no GIMP needed."""

from __future__ import annotations

import pytest

from engine.protocol import ProtocolError
from gimp_plugin.kesu import kesu_core as core
from gimp_plugin.kesu.kesu_core import KesuError, Rect, Settings


# ------------------------------------------------------------------------------------------------ settings
def test_settings_defaults_match_the_engine_defaults():
    from engine.pipeline import CleanOptions

    s = Settings()
    assert (s.grow_px, s.threshold) == (CleanOptions().grow_px, CleanOptions().threshold)


@pytest.mark.parametrize("kw", [{"grow_px": -1}, {"grow_px": 65}, {"threshold": 0.0}, {"threshold": 0.995}])
def test_settings_out_of_range_say_the_range(kw):
    with pytest.raises(KesuError, match="must be .* between"):
        Settings(**kw)


def test_settings_limits_are_accepted_by_the_engine():
    from engine.pipeline import CleanOptions

    for grow, thr in [(core.GROW_PX.lo, core.THRESHOLD.lo), (core.GROW_PX.hi, core.THRESHOLD.hi)]:
        opts = Settings(int(grow), thr).engine_options("clean")
        CleanOptions.from_dict(opts)  # raises on a value the engine refuses


@pytest.mark.parametrize("op,keys", [("detect", {"threshold"}), ("inpaint", set()),
                                     ("clean", {"threshold", "grow_px"})])
def test_engine_options_per_op(op, keys):
    assert set(Settings(7, 0.3).engine_options(op)) == keys


def test_settings_text_kinds():
    assert Settings().text == "dialogue"  # sound effects are kept unless asked
    assert Settings(text="all").text == "all"
    with pytest.raises(KesuError, match="text-kinds must be one of dialogue, sfx, all"):
        Settings(text="everything")


def test_text_kinds_choice_is_the_engines():
    from engine.protocol import TEXT_CHOICES

    assert tuple(core.TEXT_KINDS_LABELS) == TEXT_CHOICES
    assert set(core.TEXT_KINDS_PROCEDURES) == {"kesu-detect-text", "kesu-clean-page"}


def test_procedures_are_the_promised_ones():
    assert [p.name for p in core.PROCEDURES] == ["kesu-detect-text", "kesu-inpaint-selection", "kesu-clean-page"]
    assert [p.label for p in core.PROCEDURES] == ["Detect Text", "Inpaint Selection", "Clean Page"]
    assert core.MENU_PATH == "<Image>/Filters/Text Removal"


# ------------------------------------------------------------------------------------------------ geometry
@pytest.mark.parametrize("a,b,want", [
    (Rect(0, 0, 10, 10), Rect(5, 5, 10, 10), Rect(5, 5, 5, 5)),
    (Rect(0, 0, 10, 10), Rect(10, 0, 5, 5), Rect(10, 0, 0, 5)),   # touching: empty
    (Rect(-3, -4, 10, 10), Rect(0, 0, 4, 4), Rect(0, 0, 4, 4)),
])
def test_intersect(a, b, want):
    assert a.intersect(b) == want
    assert b.intersect(a) == want


def test_bounds_rect_is_end_exclusive():
    assert core.bounds_rect(2, 3, 12, 5) == Rect(2, 3, 10, 2)


def test_inpaint_rect_adds_margin_inside_the_layer():
    layer = Rect(100, 50, 400, 300)         # a layer with offsets
    sel = Rect(120, 60, 20, 20)
    assert core.inpaint_rect(layer, sel, margin=30) == Rect(100, 50, 70, 60)   # clipped at the layer's corner
    assert core.inpaint_rect(layer, Rect(300, 200, 10, 10), margin=5) == Rect(295, 195, 20, 20)


def test_inpaint_rect_refuses_a_selection_off_the_layer():
    with pytest.raises(KesuError, match="does not overlap"):
        core.inpaint_rect(Rect(100, 50, 400, 300), Rect(0, 0, 100, 50))


def test_relative_to():
    assert Rect(110, 60, 5, 6).relative_to(Rect(100, 50, 400, 300)) == Rect(10, 10, 5, 6)


# ------------------------------------------------------------------------------------------------ planning
def test_plan_inpaint():
    assert core.plan_inpaint(True, ["Text Mask"], ["Text Mask"]) == ("selection", "inpaint")  # a selection wins
    assert core.plan_inpaint(True, [], []) == ("selection", "inpaint")
    # the visible masks are grown by the engine
    assert core.plan_inpaint(False, ["SFX Mask", "Text Mask"], ["Text Mask"]) == ("masks", "clean")
    with pytest.raises(KesuError, match="Detect Text"):
        core.plan_inpaint(False, [], [])
    with pytest.raises(KesuError, match='the mask layer "SFX Mask" is hidden.*show the one to erase'):
        core.plan_inpaint(False, ["SFX Mask"], [])
    with pytest.raises(KesuError, match='layers "SFX Mask" and "Text Mask" are hidden'):
        core.plan_inpaint(False, ["SFX Mask", "Text Mask"], [])


def test_empty_masks_message():
    assert core.empty_masks_message(["Text Mask"]).startswith('the "Text Mask" layer is empty over')
    assert core.empty_masks_message(["SFX Mask", "Text Mask"]).startswith(
        'the "SFX Mask" and "Text Mask" layers are empty over')


@pytest.mark.parametrize("base,kind,match", [
    ("INDEXED", "layer", "Image > Mode > RGB"),
    ("RGB", "group", "layer group"),
    ("GRAY", "mask", "layer mask"),
    ("RGB", "channel", "layer mask or channel"),
])
def test_check_image_mode_refuses_clearly(base, kind, match):
    with pytest.raises(KesuError, match=match):
        core.check_image_mode(base, kind)


@pytest.mark.parametrize("base", ["RGB", "GRAY"])
def test_check_image_mode_accepts_rgb_and_grey(base):
    core.check_image_mode(base, "layer")


def test_source_index_skips_kesu_layers():
    names = ["Cleaned", "Text Mask", "Background", "Paper"]
    assert core.source_index(names, 0) == 2
    assert core.source_index(names, 1) == 2
    assert core.source_index(names, 3) == 3
    assert core.source_index(["Text Mask #1", "Page"], 0) == 1
    with pytest.raises(KesuError, match="no page below"):
        core.source_index(["Background", "Text Mask"], 1)


# -------------------------------------------------------------------------------------------------- engine
class FakeClient:
    """Stands in for kesu_protocol.Client: records the request, answers with ``answer`` or raises ``error``."""

    def __init__(self, answer=None, error=None):
        self.answer, self.error, self.calls, self.closed = answer, error, [], False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True

    def run(self, op, pixels, width, height, channels, mask=None, options=None, progress=None, text="dialogue",
            kind_masks=False):
        self.calls.append(dict(op=op, n=len(pixels), size=(width, height), channels=channels, mask=mask,
                               options=options, text=text, kind_masks=kind_masks))
        if progress:
            progress(0.5, "Detecting text")
        if self.error:
            raise self.error
        return self.answer


def test_run_engine_sends_rgba_with_options_and_returns_mask():
    client = FakeClient({"mask": bytes(6), "pixels": None, "channels": None})
    seen = []
    res = core.run_engine(lambda: client, "detect", bytes(2 * 3 * 4), 2, 3, Settings(5, 0.4),
                          progress=lambda f, m: seen.append((f, m)))
    assert client.calls == [dict(op="detect", n=24, size=(2, 3), channels="RGBA", mask=None,
                                 options={"threshold": 0.4}, text="dialogue", kind_masks=False)]
    assert client.closed and res.mask == bytes(6) and seen == [(0.5, "Detecting text")]
    assert res.kind_masks == {} and res.mask_layers() == {"dialogue": bytes(6)}


def test_run_engine_asks_for_the_kinds_and_keeps_their_masks():
    text, sfx = bytes([255, 0, 0, 0, 0, 0]), bytes([0, 0, 0, 0, 255, 255])
    client = FakeClient({"mask": proto_or(text, sfx), "pixels": None, "channels": None,
                         "kind_masks": {"dialogue": text, "sfx": sfx, "odd": bytes(5)}})
    res = core.run_engine(lambda: client, "detect", bytes(24), 2, 3, Settings(text="all"), kind_masks=True)
    assert client.calls[0]["text"] == "all" and client.calls[0]["kind_masks"] is True
    assert res.kind_masks == {"dialogue": text, "sfx": sfx}  # a mask of the wrong size is dropped
    assert res.mask_layers() == {"dialogue": text, "sfx": sfx}
    # a page without sound effects gets no "SFX Mask"
    client.answer["kind_masks"]["sfx"] = bytes(6)
    res = core.run_engine(lambda: client, "detect", bytes(24), 2, 3, Settings(), kind_masks=True)
    assert res.mask_layers() == {"dialogue": text}


def proto_or(a, b):
    return bytes(x | y for x, y in zip(a, b, strict=True))


def test_run_engine_sends_rgb_for_layers_without_alpha():
    client = FakeClient({"mask": bytes(6), "pixels": bytes(24), "channels": "RGBA"})
    res = core.run_engine(lambda: client, "clean", bytes(18), 2, 3, Settings(), channels="RGB")
    assert client.calls[0]["channels"] == "RGB" and client.calls[0]["n"] == 18 and res.pixels == bytes(24)
    with pytest.raises(ValueError):
        core.run_engine(lambda: client, "clean", bytes(24), 2, 3, Settings(), channels="RGB")


def test_run_engine_checks_the_answer():
    client = FakeClient({"mask": bytes(6), "pixels": bytes(5), "channels": "RGBA"})
    with pytest.raises(KesuError, match="no usable pixels"):
        core.run_engine(lambda: client, "clean", bytes(24), 2, 3, Settings())


@pytest.mark.parametrize("kind,msg,want", [
    ("not_installed", "the Kesu engine is not installed; run the Kesu installer", "run the Kesu installer"),
    ("weights", "textseg.main.safetensors is missing", "no usable model weights"),
    ("cancelled", "cancelled", "the image was not changed"),
])
def test_run_engine_turns_protocol_errors_into_user_messages(kind, msg, want):
    client = FakeClient(error=ProtocolError(msg, kind))
    with pytest.raises(KesuError, match=want):
        core.run_engine(lambda: client, "detect", bytes(24), 2, 3, Settings())
    assert client.closed


def test_run_engine_lets_bugs_through():
    with pytest.raises(ZeroDivisionError):
        core.run_engine(lambda: FakeClient(error=ZeroDivisionError()), "detect", bytes(24), 2, 3, Settings())


def test_connect_failure_is_a_user_message():
    def connect():
        raise ProtocolError("the Kesu engine interpreter /nope does not exist; re-run the Kesu installer",
                            "not_installed")

    with pytest.raises(KesuError, match="/nope does not exist"):
        core.run_engine(connect, "detect", bytes(24), 2, 3, Settings())


def test_failure_message_names_the_log_and_says_unchanged():
    m = core.failure_message("Detect Text", "the engine is not installed; run the installer.", "/x/gimp.log")
    assert m.startswith("Kesu Detect Text failed. The engine is not installed; run the installer.")
    assert "The image was not changed" in m and m.endswith("/x/gimp.log")
