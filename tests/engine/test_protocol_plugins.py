"""engine.protocol as the plug-ins and the installer use it: config paths on any OS, the option limits the engine
checks too, the mask operations and the layer rules both plug-ins follow (hand-computed cases)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from engine import protocol as proto
from engine.errors import InputError
from engine.pipeline import CleanOptions

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------- config paths
@pytest.mark.parametrize(
    "platform, env, expected",
    [
        ("linux", {}, "/H/.config/kesu"),
        ("linux", {"XDG_CONFIG_HOME": "/xdg/cfg"}, "/xdg/cfg/kesu"),
        ("linux", {"XDG_CONFIG_HOME": "relative/cfg"}, "/H/.config/kesu"),  # invalid per the XDG spec
        ("linux", {"KESU_CONFIG_DIR": "/over/ride"}, "/over/ride"),
        ("win32", {"APPDATA": "/W/Roaming"}, "/W/Roaming/kesu"),
        ("win32", {}, "/H/AppData/Roaming/kesu"),
        ("darwin", {"XDG_CONFIG_HOME": "/ignored"}, "/H/Library/Application Support/kesu"),
        ("darwin", {"KESU_CONFIG_DIR": "/over/ride"}, "/over/ride"),
    ],
)
def test_config_dir_for_another_system(platform, env, expected):
    assert proto.config_dir(env, platform, Path("/H")) == Path(expected)


def test_the_module_imports_on_the_oldest_python_the_installer_runs_on():
    """install/install.py runs on any Python 3.9+ and loads this file by its path."""
    python39 = Path("/root/.pyenv/versions/3.9.18/bin/python3.9")
    if not python39.is_file():
        pytest.skip("no Python 3.9 on this machine")
    code = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('c', sys.argv[1]); "
            "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); print(m.config_dir({}, 'linux', "
            "__import__('pathlib').Path('/H')), m.RUNTIME_FILES[0])")
    out = subprocess.run([str(python39), "-c", code, str(REPO / "engine" / "protocol.py")], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["/H/.config/kesu", "server.json"]


# ------------------------------------------------------------------------------------------ option limits
def test_the_engine_defaults_are_the_limits_defaults():
    opts = CleanOptions()
    for name, limit in proto.OPTION_LIMITS.items():
        assert getattr(opts, name) == limit.default, name


@pytest.mark.parametrize("name", sorted(proto.OPTION_LIMITS))
def test_the_engine_accepts_exactly_the_limits(name):
    limit = proto.OPTION_LIMITS[name]
    step = 1 if limit.whole else 0.001
    for value in (limit.lo, limit.hi):
        CleanOptions(**{name: int(value) if limit.whole else value})
    for value in (limit.lo - step, limit.hi + step):
        with pytest.raises(InputError, match=f"{limit.label or name} must be .* between"):
            CleanOptions(**{name: value})


@pytest.mark.parametrize("name, value, problem", [
    ("grow_px", 4, None),
    ("grow_px", 4.5, "grow must be a whole number of pixels between 0 and 64, got 4.5"),
    ("grow_px", True, "whole number"),
    ("grow_px", "4", "whole number"),
    ("threshold", 0.5, None),
    ("threshold", 1, "threshold must be a number between 0.01 and 0.99, got 1"),
    ("threshold", "0.5", "a number"),
])  # fmt: skip
def test_option_problem_says_what_is_allowed(name, value, problem):
    got = proto.option_problem(name, value)
    assert got is None if problem is None else problem in got


# ------------------------------------------------------------------------------------------ masks and pixels
def test_mask_to_layer_in_each_channel_order():
    mask = bytes([0, 255, 1])  # any nonzero counts as text
    assert proto.mask_to_layer(mask, "RGBA") == bytes([0, 0, 0, 0, 255, 0, 0, 255, 255, 0, 0, 255])
    assert proto.mask_to_layer(mask, "BGRA") == bytes([0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 255, 255])
    assert proto.mask_to_layer(mask, "LA") == bytes([0, 0, proto.MASK_GREY, 255, proto.MASK_GREY, 255])


def test_layer_to_mask_reads_alpha_from_half_cover():
    # colour is irrelevant (the user may paint in any colour); alpha 0, 127, 128, 255 -> only the last two
    data = bytes([9, 9, 9, 0, 9, 9, 9, 127, 0, 0, 0, 128, 1, 2, 3, 255])
    for channels in ("RGBA", "BGRA"):
        assert proto.layer_to_mask(data, channels) == bytes([0, 0, 255, 255])
    assert proto.layer_to_mask(bytes([5, 200, 5, 3]), "LA") == bytes([255, 0])
    with pytest.raises(ValueError, match="whole number"):
        proto.layer_to_mask(bytes(5), "RGBA")


def test_mask_layer_round_trip():
    mask = bytes([0, 255, 255, 0, 0, 255] * 100)
    for channels in ("RGBA", "BGRA", "LA"):
        assert proto.layer_to_mask(proto.mask_to_layer(mask, channels), channels) == mask


def test_coverage_and_count():
    assert proto.coverage_to_mask(bytes([0, 1, 127, 128, 200, 255])) == bytes([0, 0, 0, 255, 255, 255])
    assert proto.mask_count(bytes([0, 255, 7, 0])) == 2


def test_mask_and():
    assert proto.mask_and(bytes([255, 255, 0, 0]), bytes([255, 0, 255, 0])) == bytes([255, 0, 0, 0])
    assert proto.mask_and(b"", b"") == b""
    with pytest.raises(ValueError, match="different sizes"):
        proto.mask_and(bytes(2), bytes(3))


def test_clip_to_mask_and_changed_count():
    pixels = bytes(range(1, 9))  # two 4-channel pixels
    for channels in ("RGBA", "BGRA"):
        clipped = proto.clip_to_mask(pixels, channels, bytes([0, 255]))
        assert clipped == bytes([0, 0, 0, 0, 5, 6, 7, 8])
        assert proto.changed_count(clipped, channels) == 1
    assert proto.clip_to_mask(bytes([7, 9, 7, 9]), "LA", bytes([255, 0])) == bytes([7, 9, 0, 0])
    with pytest.raises(ValueError):
        proto.clip_to_mask(pixels, "RGBA", bytes(3))


def test_a_page_converts_fast_enough_for_the_gui_thread():
    n = 1654 * 2339
    mask = bytes([0, 255]) * (n // 2) + bytes(n % 2)
    t0 = time.perf_counter()
    back = proto.layer_to_mask(proto.mask_to_layer(mask, "BGRA"), "BGRA")
    assert back == mask
    print(f"mask <-> layer for 1654x2339: {(time.perf_counter() - t0) * 1000:.0f} ms")


# -------------------------------------------------------------------------------------------- layer rules
def test_kesu_layers_include_the_hosts_renamed_copies():
    for name in ("Text Mask", "Text Mask #2", "SFX Mask", "SFX Mask #1", "Cleaned", "Cleaned #1"):
        assert proto.is_kesu_layer(name)
    assert proto.is_text_mask_layer("Text Mask #2") and not proto.is_text_mask_layer("Cleaned")
    assert not proto.is_text_mask_layer("SFX Mask")
    for name in ("Text Masks", "My Text Mask", "SFX Masks", "Page"):
        assert not proto.is_kesu_layer(name)


@pytest.mark.parametrize("name, kind", [
    ("Text Mask", "dialogue"), ("Text Mask #3", "dialogue"), ("SFX Mask", "sfx"), ("SFX Mask #1", "sfx"),
    ("Cleaned", None), ("SFX", None), ("SFX Mask copy", None), ("Page", None),
])  # fmt: skip
def test_mask_layer_kind(name, kind):
    assert proto.mask_layer_kind(name) == kind


def test_every_single_kind_of_text_has_its_mask_layer():
    assert set(proto.MASK_LAYERS) == {c for c in proto.TEXT_CHOICES if c != "all"}
    assert proto.MASK_LAYERS == {"dialogue": "Text Mask", "sfx": "SFX Mask"}
    assert set(proto.KIND_MASK_BLOBS) == set(proto.MASK_LAYERS)


def test_kinds_of_text():
    assert proto.kinds_of_text("dialogue") == ("dialogue",)
    assert proto.kinds_of_text("sfx") == ("sfx",)
    assert proto.kinds_of_text("all") == ("dialogue", "sfx")
    with pytest.raises(ValueError, match="valid: dialogue, sfx, all"):
        proto.kinds_of_text("lettering")


def test_the_sfx_mask_is_shown_only_when_sound_effects_are_erased():
    assert [proto.mask_layer_visible("dialogue", t) for t in ("dialogue", "sfx", "all")] == [True, False, True]
    assert [proto.mask_layer_visible("sfx", t) for t in ("dialogue", "sfx", "all")] == [False, True, True]


def test_mask_layer_masks_of_an_answer():
    text, sfx, empty = bytes([255, 0, 0]), bytes([0, 0, 255]), bytes(3)
    assert proto.mask_layer_masks(text, {"dialogue": text, "sfx": sfx}) == {"dialogue": text, "sfx": sfx}
    # no sound effects on the page: no SFX Mask layer; an empty Text Mask is still made
    assert proto.mask_layer_masks(text, {"dialogue": text, "sfx": empty}) == {"dialogue": text}
    assert proto.mask_layer_masks(empty, {"dialogue": empty, "sfx": empty}) == {"dialogue": empty}
    # an answer without kind masks: its mask is the Text Mask's
    assert proto.mask_layer_masks(sfx, {}) == {"dialogue": sfx}


def test_mask_or():
    assert proto.mask_or(bytes([255, 0, 0, 255]), bytes([0, 0, 255, 255])) == bytes([255, 0, 255, 255])
    with pytest.raises(ValueError):
        proto.mask_or(bytes(2), bytes(3))


def test_source_layer_skips_kesu_layers_downwards():
    names = ["Cleaned", "SFX Mask", "Text Mask", "Background", "Paper"]  # top first
    assert [proto.source_layer_index(names, i) for i in range(5)] == [3, 3, 3, 3, 4]
    assert proto.source_layer_index(["Text Mask #1", "Page"], 0) == 1
    assert proto.source_layer_index(["Background", "Text Mask"], 1) is None
    assert proto.source_layer_index(["SFX Mask"], 0) is None


def test_mask_layers_above_are_the_pages_own_nearest_of_each_kind():
    assert proto.mask_layers_above(["Cleaned", "SFX Mask", "Text Mask", "Background"], 3) == {"dialogue": 2,
                                                                                             "sfx": 1}
    assert proto.mask_layers_above(["Text Mask #2", "Cleaned", "Background"], 2) == {"dialogue": 0}
    assert proto.mask_layers_above(["SFX Mask", "Other", "Background"], 2) == {}  # not through other layers
    assert proto.mask_layers_above(["Background"], 0) == {}
    # a second Detect Text: its masks lie nearer the page than the first one's
    names = ["SFX Mask", "Text Mask", "SFX Mask #1", "Text Mask #1", "Background"]
    assert proto.mask_layers_above(names, 4) == {"dialogue": 3, "sfx": 2}


def test_mask_layers_for_fall_back_to_any_sibling_mask():
    assert proto.mask_layers_for(["Text Mask", "Other", "Background"], 2) == {"dialogue": 0}
    assert proto.mask_layers_for(["Other", "Background", "SFX Mask #2", "Text Mask"], 1) == {"sfx": 2,
                                                                                            "dialogue": 3}
    assert proto.mask_layers_for(["Cleaned", "Text Mask", "Background", "SFX Mask"], 2) == {"dialogue": 1}
    assert proto.mask_layers_for(["Other", "Background"], 1) == {}


def test_masks_to_fill_are_the_visible_ones():
    names = ["Cleaned", "SFX Mask", "Text Mask", "Background"]
    assert proto.masks_to_fill(names, [True, False, True, True], 3) == [2]          # the SFX Mask is hidden
    assert proto.masks_to_fill(names, [True, True, True, True], 3) == [1, 2]        # both: filled together
    assert proto.masks_to_fill(names, [True, True, False, True], 3) == [1]          # only the sound effects
    assert proto.masks_to_fill(names, [True, False, False, True], 3) == []
    assert proto.masks_to_fill(["Background"], [True], 0) == []
    # an older run's visible masks further up are not this page's
    names = ["SFX Mask", "Text Mask", "SFX Mask #1", "Text Mask #1", "Background"]
    assert proto.masks_to_fill(names, [True] * 5, 4) == [2, 3]


def test_cleaned_goes_above_the_pages_masks():
    assert proto.cleaned_position(["SFX Mask", "Text Mask", "Background"], 2) == 0
    assert proto.cleaned_position(["Cleaned", "Text Mask", "Background"], 2) == 1
    assert proto.cleaned_position(["Text Mask", "Other", "Background"], 2) == 2  # not this page's: above the page
    assert proto.cleaned_position(["Background"], 0) == 0
