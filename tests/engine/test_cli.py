import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from engine.cli import expand_inputs, main
from tests.conftest import make_tiny_weights


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return str(make_tiny_weights(tmp_path_factory.mktemp("w"), text_bias=10.0))


def _page(path, size=(40, 32), value=200):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def test_version_does_not_import_torch():
    code = "import sys; from engine.cli import main\ntry: main(['--version'])\nexcept SystemExit: pass\n" \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "kesu 0.1.0" in out.stdout and out.stdout.strip().endswith("False")


def test_without_weights_says_so_plainly(tmp_path, capsys):
    page = _page(tmp_path / "a.png")
    rc = main(["clean", str(page), "-o", str(tmp_path / "out"), "--weights-dir", str(tmp_path / "none")])
    assert rc == 1
    assert "no text detection weights are installed" in capsys.readouterr().err
    assert not (tmp_path / "out" / "a.png").exists()


def test_detect_writes_tight_mask_with_the_input_size(tmp_path, weights):
    page = _page(tmp_path / "in" / "p1.png", (37, 29))
    out = tmp_path / "out"
    assert main(["detect", str(page), "-o", str(out), "--weights-dir", weights, "--prob", "-q"]) == 0
    mask = Image.open(out / "p1.mask.png")
    assert mask.mode == "L" and mask.size == (37, 29) and set(np.unique(np.asarray(mask))) == {255}
    assert Image.open(out / "p1.prob.png").size == (37, 29)


@pytest.fixture(scope="module")
def lettering_weights(tmp_path_factory):
    """A 2-channel detector that calls every pixel lettering and none a sound effect."""
    return str(make_tiny_weights(tmp_path_factory.mktemp("w2"), text_bias=(10.0, -10.0), out_channels=2))


def _mask(path):
    return set(np.unique(np.asarray(Image.open(path))).tolist())


@pytest.mark.parametrize("text, expected", [("dialogue", {255}), ("sfx", {0}), ("all", {255})])
def test_detect_text_picks_the_kinds(tmp_path, lettering_weights, text, expected):
    page = _page(tmp_path / "p.png")
    out = tmp_path / "out"
    args = ["detect", str(page), "-o", str(out), "--weights-dir", lettering_weights, "-q", "--text", text]
    assert main(args) == 0
    assert _mask(out / "p.mask.png") == expected
    assert not (out / "p.sfx.mask.png").exists()


def test_save_kinds_writes_each_other_kind_beside_the_mask(tmp_path, lettering_weights):
    page = _page(tmp_path / "p.png")
    common = [str(page), "--weights-dir", lettering_weights, "-q", "--save-kinds"]
    assert main(["detect", *common, "-o", str(tmp_path / "d")]) == 0
    assert _mask(tmp_path / "d" / "p.mask.png") == {255} and _mask(tmp_path / "d" / "p.sfx.mask.png") == {0}
    assert not (tmp_path / "d" / "p.dialogue.mask.png").exists()
    assert main(["detect", *common, "-o", str(tmp_path / "a"), "--text", "all"]) == 0
    assert _mask(tmp_path / "a" / "p.mask.png") == {255}
    assert _mask(tmp_path / "a" / "p.dialogue.mask.png") == {255} and _mask(tmp_path / "a" / "p.sfx.mask.png") == {0}
    # the kinds' masks are Kesu's own files: a folder scan does not take them as pages
    jobs, _ = expand_inputs([str(tmp_path / "a")], recursive=False)
    assert jobs == []


def test_one_kind_weights_find_no_sound_effects(tmp_path, weights):
    page = _page(tmp_path / "p.png")
    out = tmp_path / "out"
    assert main(["detect", str(page), "-o", str(out), "--weights-dir", weights, "-q", "--text", "sfx"]) == 0
    assert _mask(out / "p.mask.png") == {0}
    assert main(["clean", str(page), "-o", str(out), "--weights-dir", weights, "-q", "--text", "sfx"]) == 0
    assert np.array_equal(np.asarray(Image.open(out / "p.png")), np.asarray(Image.open(page)))


def test_clean_erases_only_the_kinds_asked_for(tmp_path, lettering_weights):
    page = tmp_path / "p.png"
    rgb = np.full((32, 40, 3), 230, np.uint8)
    rgb[10:20, 10:30] = 0
    Image.fromarray(rgb).save(page)
    common = [str(page), "--weights-dir", lettering_weights, "-q", "--save-mask"]
    assert main(["clean", *common, "-o", str(tmp_path / "s"), "--text", "sfx"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "s" / "p.png")), rgb)  # no sound effects: unchanged
    assert _mask(tmp_path / "s" / "p.mask.png") == {0}
    assert main(["clean", *common, "-o", str(tmp_path / "d")]) == 0  # default: dialogue
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "d" / "p.png")), rgb)


def test_help_says_what_each_kind_holds(capsys):
    for command in ("detect", "clean"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "{dialogue,sfx,all}" in text and "captions, narration" in text and "sound effects" in text
        assert ("<stem>.sfx.mask.png" in text) == (command == "detect")  # --save-kinds is detect's


def test_float32_runs_the_networks_in_float32(tmp_path, weights, monkeypatch):
    import engine.pipeline as pipeline

    seen = []
    real = pipeline.detect_probabilities

    def spy(*args, **kwargs):
        seen.append(kwargs["bfloat16"])
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "detect_probabilities", spy)
    page = _page(tmp_path / "p.png")
    assert main(["clean", str(page), "-o", str(tmp_path / "a"), "--weights-dir", weights, "-q", "--float32"]) == 0
    assert main(["clean", str(page), "-o", str(tmp_path / "b"), "--weights-dir", weights, "-q"]) == 0
    assert seen == [False, None]  # float32 asked for; by default bfloat16 where the processor has it


def calls_to(monkeypatch, module, name: str) -> list:
    """A list that gains an item each time ``module.name`` is called (the function still runs)."""
    calls = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def test_no_repeat_fill_turns_the_repeat_fill_off(tmp_path, weights, monkeypatch):
    import engine.pipeline as pipeline

    calls = calls_to(monkeypatch, pipeline, "repeat_fill")
    striped = np.full((32, 40, 3), 230, np.uint8)
    striped[:, ::4] = 20                        # not flat: the flat fill leaves the hole to what comes after it
    page = tmp_path / "p.png"
    Image.fromarray(striped).save(page)
    mask = np.zeros((32, 40), np.uint8)
    mask[10:20, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "p.mask.png")
    args = [str(page), "--weights-dir", weights, "-q"]
    assert main(["inpaint", *args, "-o", str(tmp_path / "a"), "--no-repeat-fill"]) == 0
    assert calls == []
    assert main(["inpaint", *args, "-o", str(tmp_path / "b")]) == 0
    assert calls == [1]


def test_no_detail_leaves_big_holes_as_the_network_fills_them(tmp_path, weights, monkeypatch):
    import engine.pipeline.inpaint as inpaint

    calls = calls_to(monkeypatch, inpaint, "with_detail")
    striped = np.full((64, 64, 3), 230, np.uint8)
    striped[::4] = 20                           # not flat: the network fills the hole
    page = tmp_path / "p.png"
    Image.fromarray(striped).save(page)
    mask = np.zeros((64, 64), np.uint8)
    mask[12:52, 12:52] = 255                    # 20 px deep: deep enough for detail
    Image.fromarray(mask).save(tmp_path / "p.mask.png")
    args = [str(page), "--weights-dir", weights, "-q", "--no-repeat-fill"]
    assert main(["inpaint", *args, "-o", str(tmp_path / "a"), "--no-detail"]) == 0
    assert calls == []
    assert main(["inpaint", *args, "-o", str(tmp_path / "b")]) == 0
    assert calls


def test_clean_skip_overwrite_and_save_mask(tmp_path, weights, capsys):
    page = _page(tmp_path / "p.png")
    out = tmp_path / "out"
    args = ["clean", str(page), "-o", str(out), "--weights-dir", weights, "--save-mask"]
    assert main(args) == 0
    assert (out / "p.png").exists() and (out / "p.mask.png").exists()
    (out / "p.png").write_bytes(b"sentinel")
    assert main(args) == 0
    assert (out / "p.png").read_bytes() == b"sentinel"
    assert "1 skipped" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert Image.open(out / "p.png").size == (40, 32)


def test_bad_file_is_reported_and_the_rest_processed(tmp_path, weights, capsys):
    folder = tmp_path / "chapter"
    _page(folder / "001.png")
    (folder / "002.png").write_text("not an image")
    _page(folder / "003.png")
    out = tmp_path / "out"
    rc = main(["detect", str(folder), "-o", str(out), "--weights-dir", weights])
    err = capsys.readouterr().err
    assert rc == 1
    assert "002.png: not an image" in err and "2 done, 1 failed" in err
    assert (out / "001.mask.png").exists() and (out / "003.mask.png").exists()


def test_folders_recursive_keep_their_structure(tmp_path, weights):
    _page(tmp_path / "book" / "ch1" / "01.png")
    _page(tmp_path / "book" / "ch2" / "01.png")
    _page(tmp_path / "book" / "ch2" / "01.mask.png")  # Kesu's own output is not a page
    out = tmp_path / "out"
    assert main(["detect", str(tmp_path / "book"), "-r", "-o", str(out), "--weights-dir", weights, "-q"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "ch1/01.mask.png", "ch2/01.mask.png"]


def test_folder_without_recursion_hints_at_r(tmp_path, capsys):
    _page(tmp_path / "book" / "ch1" / "01.png")
    jobs, errors = expand_inputs([str(tmp_path / "book")], recursive=False)
    assert not jobs and "pass -r" in errors[0]


def test_globs_and_missing_inputs(tmp_path):
    _page(tmp_path / "a1.png")
    _page(tmp_path / "a2.jpg")
    jobs, errors = expand_inputs([str(tmp_path / "a*"), str(tmp_path / "zzz.png")], recursive=False)
    assert [j.source.name for j in jobs] == ["a1.png", "a2.jpg"]
    assert errors == [f"{tmp_path / 'zzz.png'}: no such file or folder"]


def test_an_empty_input_name_is_an_error_not_the_current_folder(tmp_path, monkeypatch):
    _page(tmp_path / "here.png")
    monkeypatch.chdir(tmp_path)
    jobs, errors = expand_inputs(["", " "], recursive=False)
    assert jobs == [] and len(errors) == 2 and all("an empty input name" in e for e in errors)


def test_same_output_name_is_refused_not_overwritten(tmp_path, weights, capsys):
    a, b = _page(tmp_path / "x" / "p.png", value=10), _page(tmp_path / "y" / "p.png", value=20)
    rc = main(["detect", str(a), str(b), "-o", str(tmp_path / "out"), "--weights-dir", weights])
    assert rc == 1 and "same output name" in capsys.readouterr().err


def test_inpaint_reads_the_mask_beside_the_page(tmp_path, weights, capsys):
    page = _page(tmp_path / "p.png")
    mask = np.zeros((32, 40), np.uint8)
    mask[10:20, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "p.mask.png")
    out = tmp_path / "out"
    assert main(["inpaint", str(page), "-o", str(out), "--weights-dir", weights, "-q"]) == 0
    cleaned = np.asarray(Image.open(out / "p.png"))
    assert (cleaned[mask == 0] == 200).all()
    _page(tmp_path / "q.png")
    assert main(["inpaint", str(tmp_path / "q.png"), "-o", str(out), "--weights-dir", weights]) == 1
    assert "no mask" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["clean"])
    assert e.value.code == 2
    assert main([]) == 2


@pytest.fixture
def train_state(tmp_path, monkeypatch):
    """Training state in a temporary folder, never the checkout's .train-state/."""
    from engine.workshop.train import cli as train_cli

    root = tmp_path / "train-state"
    monkeypatch.setattr(train_cli, "STATE_ROOT", root)
    return root


def test_train_refuses_an_option_its_role_does_not_have(capsys, train_state):
    assert main(["train", "textseg", "--run", "never-created", "--residual"]) != 0
    assert "no setting 'residual'" in capsys.readouterr().err
    assert not (train_state / "textseg" / "never-created").exists()


@pytest.mark.parametrize("setting, message", [
    ("hole_l2_weight=abc", "expected a float"),
    ("no_such_thing=1", "no setting 'no_such_thing'"),
    ("residual=maybe", "expected a bool"),
    ("real_art_dir=/no/such/folder", "no such file or folder"),
    ("channels=16,sixty-four", "expected a list of whole numbers"),
    ("channels=16,0,64", "expected a list of whole numbers"),
])
def test_train_set_refuses_bad_settings_before_touching_a_run(capsys, train_state, setting, message):
    assert main(["train", "inpaint", "--run", "never-created", "--set", setting]) != 0
    assert message in capsys.readouterr().err
    assert not (train_state / "inpaint" / "never-created").exists()


def test_train_set_converts_to_the_settings_type():
    from engine.workshop.train.cli import _typed
    from engine.workshop.train.inpaint import InpaintConfig

    defaults = InpaintConfig()
    assert _typed(defaults.hole_l2_weight, "hole_l2_weight", "40") == 40.0
    assert _typed(defaults.val_every, "val_every", "250") == 250
    assert _typed(defaults.residual, "residual", "true") is True
    assert _typed(defaults.channels, "channels", "16,64,64") == (16, 64, 64)


def test_train_without_the_development_tree_says_where_it_lives(monkeypatch, capsys):
    """An installed wheel has no engine.workshop: `kesu train` and `kesu eval` say so instead of a traceback."""
    import importlib

    real = importlib.import_module

    def without_workshop(name, *args):
        if name.startswith("engine.workshop"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_workshop)
    from engine.cli import main

    assert main(["train", "textseg", "--run", "x", "--steps", "1"]) == 1
    assert "development tree" in capsys.readouterr().err
    assert main(["eval", "inpaint"]) == 1
    assert "development tree" in capsys.readouterr().err


# ------------------------------------------------------------------------------ outputs that cannot be written


def test_a_folder_where_an_output_should_be_fails_that_page_only(tmp_path, weights, capsys):
    a, b = _page(tmp_path / "in" / "a.png"), _page(tmp_path / "in" / "b.png")
    out = tmp_path / "out"
    (out / "a.png").mkdir(parents=True)
    rc = main(["clean", str(a), str(b), "-o", str(out), "--weights-dir", weights])
    err = capsys.readouterr().err
    assert rc == 1 and "a.png" in err and "is a folder" in err and "1 done, 1 failed" in err
    assert "Traceback" not in err
    assert (out / "b.png").is_file() and (out / "a.png").is_dir()


def test_output_under_a_regular_file_is_a_per_page_error_with_a_summary(tmp_path, weights, capsys):
    a, b = _page(tmp_path / "a.png"), _page(tmp_path / "b.png")
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    rc = main(["detect", str(a), str(b), "-o", str(blocker / "sub"), "--weights-dir", weights])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("cannot write") == 2 and "0 done, 2 failed" in err


def test_a_full_disk_fails_the_page_and_leaves_nothing_half_written(tmp_path, weights, capsys, monkeypatch):
    import errno
    import os

    real_fdopen = os.fdopen
    calls = []

    class FullDisk:
        """A temporary file that takes a few bytes, then reports the disk full."""

        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[:10])
            raise OSError(errno.ENOSPC, "No space left on device")

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        calls.append(1)
        return FullDisk(f) if len(calls) == 2 else f  # the second output of page a (its mask)

    a, b = _page(tmp_path / "in" / "a.png"), _page(tmp_path / "in" / "b.png")
    monkeypatch.setattr(os, "fdopen", fdopen)
    out = tmp_path / "out"
    rc = main(["clean", str(a), str(b), "-o", str(out), "--weights-dir", weights, "--save-mask"])
    err = capsys.readouterr().err
    assert rc == 1 and "No space left on device" in err and "free some space" in err and "1 done, 1 failed" in err
    assert sorted(p.name for p in out.iterdir()) == ["b.mask.png", "b.png"]  # no a.png alone, no temporary


def test_partly_there_outputs_are_reported_not_redone(tmp_path, weights, capsys):
    page = _page(tmp_path / "p.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "p.png").write_bytes(b"retouched by hand")
    rc = main(["clean", str(page), "-o", str(out), "--weights-dir", weights, "--save-mask"])
    err = capsys.readouterr().err
    assert rc == 1 and "p.png already there but not p.mask.png" in err and "--overwrite" in err
    assert (out / "p.png").read_bytes() == b"retouched by hand" and not (out / "p.mask.png").exists()


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_input_is_never_an_output(tmp_path, weights, capsys, overwrite):
    page = _page(tmp_path / "p.png")
    before = page.read_bytes()
    args = ["clean", str(page), "-o", str(tmp_path), "--weights-dir", weights] + (["--overwrite"] if overwrite else [])
    assert main(args) == 1
    assert "would replace the input" in capsys.readouterr().err
    assert page.read_bytes() == before


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path, weights):
    import os
    import time

    page = _page(tmp_path / "p.png")
    out = tmp_path / "out"
    out.mkdir()
    stale, fresh = out / ".p.k2j_9x0a.png.tmp", out / ".q.abcdefgh.png.tmp"
    other = out / ".notes.tmp"
    for path in (stale, fresh, other):
        path.write_bytes(b"x")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    os.utime(other, (hour_ago, hour_ago))
    assert main(["clean", str(page), "-o", str(out), "--weights-dir", weights, "-q"]) == 0
    assert not stale.exists()
    assert fresh.exists() and other.exists()  # maybe another run's, and not Kesu's kind


# ------------------------------------------------------------------------------------------ multi-frame files


def test_every_frame_of_a_multi_page_tiff_is_a_page(tmp_path, weights, capsys):
    frames = [Image.fromarray(np.full((20 + i, 30, 3), 50 * i + 20, np.uint8)) for i in range(3)]
    scan = tmp_path / "scan.tif"
    frames[0].save(scan, save_all=True, append_images=frames[1:])
    out = tmp_path / "out"
    assert main(["detect", str(scan), "-o", str(out), "--weights-dir", weights]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["scan-001.mask.png", "scan-002.mask.png", "scan-003.mask.png"]
    assert [Image.open(out / f"scan-00{i + 1}.mask.png").size for i in range(3)] == [(30, 20), (30, 21), (30, 22)]
    assert "3 done" in capsys.readouterr().err
    # inpaint finds each frame's mask by the frame's name
    assert main(["inpaint", str(scan), "-o", str(tmp_path / "filled"), "--weights-dir", weights, "--mask-dir",
                 str(out), "-q"]) == 0
    assert len(list((tmp_path / "filled").glob("scan-00?.png"))) == 3


def test_every_frame_of_an_animated_gif_is_a_page(tmp_path, weights):
    frames = [Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (0, 128, 255)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    out = tmp_path / "out"
    assert main(["clean", str(gif), "-o", str(out), "--weights-dir", weights, "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["anim-001.png", "anim-002.png", "anim-003.png"]


def test_the_help_says_what_happens_to_frames():
    from engine.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["clean"].format_help()
    assert "multi-page TIFF" in help_text and "<stem>-001.png" in help_text


# ------------------------------------------------------------------------------------- clean --psd
def _noisy_page(path, size=(40, 32), seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr[:, :, 0] if mode == "L" else arr, mode).save(path)
    return path


def test_clean_psd_layers_and_merged_image_match_the_png_and_mask(tmp_path, weights):
    pytest.importorskip("psd_tools")
    from psd_tools import PSDImage

    page = _noisy_page(tmp_path / "p.png", mode="RGBA")
    out = tmp_path / "out"
    assert main(["clean", str(page), "-o", str(out), "--weights-dir", weights, "-q", "--psd", "--png",
                 "--save-mask"]) == 0
    doc = PSDImage.open(out / "p.psd")
    assert [(layer.name, layer.visible) for layer in doc] == [("p.png", True), ("Text Mask", False),
                                                             ("Cleaned", True)]
    source = np.asarray(Image.open(page))
    png = np.asarray(Image.open(out / "p.png"))
    mask = np.asarray(Image.open(out / "p.mask.png")) > 0
    np.testing.assert_array_equal(np.asarray(doc[0].topil()), source)          # the page, alpha kept
    np.testing.assert_array_equal(np.asarray(doc[1].topil())[:, :, 3] > 0, mask)
    cleaned = np.asarray(doc[2].topil())
    changed = cleaned[:, :, 3] > 0
    assert changed.any()
    np.testing.assert_array_equal(cleaned[changed], png[changed])              # the cleaned colour, alpha kept
    # unchanged: pixels the engine left alone, and fully transparent ones (which the plug-ins never change)
    assert ((png == source).all(axis=2) | (source[:, :, 3] == 0))[~changed].all()
    merged = np.asarray(doc.topil())                                           # read back un-matted
    opaque = png[:, :, 3] == 255
    np.testing.assert_array_equal(merged[opaque], png[opaque])


def test_clean_psd_alone_skip_and_overwrite(tmp_path, weights, capsys):
    pytest.importorskip("psd_tools")
    page = _noisy_page(tmp_path / "p.png")
    out = tmp_path / "out"
    args = ["clean", str(page), "-o", str(out), "--weights-dir", weights, "--psd"]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["p.psd"]   # no PNG, no temporary file left
    (out / "p.psd").write_bytes(b"sentinel")
    assert main(args) == 0
    assert (out / "p.psd").read_bytes() == b"sentinel"
    assert "1 skipped" in capsys.readouterr().err
    # asking for the PNG too: a page's outputs are all or none, so the lone PSD needs --overwrite
    assert main(args + ["--png"]) == 1
    assert "p.psd already there but not p.png" in capsys.readouterr().err
    assert main(args + ["--png", "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["p.png", "p.psd"]
    assert (out / "p.psd").read_bytes()[:4] == b"8BPS"


def test_clean_psd_of_a_grey_page_is_a_grey_document(tmp_path, weights):
    pytest.importorskip("psd_tools")
    from psd_tools import PSDImage
    from psd_tools.constants import ColorMode

    page = _noisy_page(tmp_path / "g.png", mode="L")
    out = tmp_path / "out"
    assert main(["clean", str(page), "-o", str(out), "--weights-dir", weights, "-q", "--psd", "--png"]) == 0
    doc = PSDImage.open(out / "g.psd")
    assert doc.color_mode == ColorMode.GRAYSCALE and doc.channels == 1
    np.testing.assert_array_equal(np.asarray(doc[0].topil())[:, :, 0], np.asarray(Image.open(page)))
    png = np.asarray(Image.open(out / "g.png")).astype(np.uint32)
    grey = (png[:, :, 0] * 299 + png[:, :, 1] * 587 + png[:, :, 2] * 114 + 500) // 1000
    np.testing.assert_array_equal(np.asarray(doc.topil()), grey)


def test_clean_psd_recursive_and_a_bad_page_among_good_ones(tmp_path, weights, capsys):
    pytest.importorskip("psd_tools")
    _noisy_page(tmp_path / "book" / "ch1" / "01.png")
    (tmp_path / "book" / "ch1" / "02.png").write_text("not an image")
    _noisy_page(tmp_path / "book" / "ch2" / "01.png")
    out = tmp_path / "out"
    assert main(["clean", str(tmp_path / "book"), "-r", "-o", str(out), "--weights-dir", weights, "--psd"]) == 1
    assert "02.png: not an image" in capsys.readouterr().err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "ch1/01.psd", "ch2/01.psd"]


def test_clean_psd_over_the_psd_limit_writes_a_psb_and_says_so(tmp_path, weights, capsys, monkeypatch):
    pytest.importorskip("psd_tools")
    import engine.psd

    monkeypatch.setattr(engine.psd, "PSD_MAX_SIDE", 35)   # the 40 px wide page stands for a 30001 px strip
    page = _noisy_page(tmp_path / "strip.png")
    out = tmp_path / "out"
    assert main(["clean", str(page), "-o", str(out), "--weights-dir", weights, "--psd"]) == 0
    assert "strip.psb is a PSB" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["strip.psb"]
    assert (out / "strip.psb").read_bytes()[:6] == b"8BPS\x00\x02"


def test_clean_psd_failing_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, weights, capsys,
                                                                           monkeypatch):
    pytest.importorskip("psd_tools")
    import engine.psd

    page = _noisy_page(tmp_path / "p.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "p.psd").write_bytes(b"the old file")

    def broken(*args, **kwargs):
        raise engine.psd.InputError("p.png: the layered file could not be built")

    monkeypatch.setattr(engine.psd, "layered_document", broken)
    assert main(["clean", str(page), "-o", str(out), "--weights-dir", weights, "--psd", "--overwrite"]) == 1
    assert "could not be built" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["p.psd"]
    assert (out / "p.psd").read_bytes() == b"the old file"


def test_clean_psd_without_psd_tools_names_the_install_command_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "psd_tools", None)  # as if not installed
    page = _noisy_page(tmp_path / "p.png")
    # no weights either: the missing package is reported before any model loads
    rc = main(["clean", str(page), "-o", str(tmp_path / "out"), "--weights-dir", str(tmp_path / "none"), "--psd"])
    err = capsys.readouterr().err
    assert rc == 1 and "-m pip install 'psd-tools" in err and "kesu[psd]" in err
    assert "weights" not in err and not (tmp_path / "out").exists()


def test_clean_psd_has_a_hidden_mask_layer_per_kind_when_sound_effects_are_erased(tmp_path, monkeypatch):
    pytest.importorskip("psd_tools")
    from psd_tools import PSDImage

    from engine.pipeline import Engine

    def two_kinds(self, rgb, options=None, progress=None):  # lettering on the left, a sound effect on the right
        lettering, sfx = np.zeros(rgb.shape[:2], np.float32), np.zeros(rgb.shape[:2], np.float32)
        lettering[4:28, 2:16], sfx[4:28, 40:56] = 1.0, 1.0
        return {"lettering": lettering, "sfx": sfx}

    monkeypatch.setattr(Engine, "detect_kinds", two_kinds)
    weights = str(make_tiny_weights(tmp_path / "w2", out_channels=2))
    pixels = np.full((32, 64, 3), 255, np.uint8)  # white paper with dark strokes where the two kinds are
    pixels[6:26:4, 3:15] = 0
    pixels[6:26, 42:54:3] = 0
    page = tmp_path / "p.png"
    Image.fromarray(pixels).save(page)
    out, masks = tmp_path / "out", tmp_path / "masks"
    assert main(["clean", str(page), "-o", str(out), "--weights-dir", weights, "-q", "--psd", "--text", "all"]) == 0
    assert main(["detect", str(page), "-o", str(masks), "--weights-dir", weights, "-q", "--text", "all",
                 "--save-kinds"]) == 0
    doc = PSDImage.open(out / "p.psd")
    assert [(layer.name, layer.visible) for layer in doc] == [("p.png", True), ("Text Mask", False),
                                                             ("SFX Mask", False), ("Cleaned", True)]
    for layer, kind in ((doc[1], "dialogue"), (doc[2], "sfx")):
        expected = np.asarray(Image.open(masks / f"p.{kind}.mask.png")) > 0
        assert expected.any()
        np.testing.assert_array_equal(np.asarray(layer.topil())[:, :, 3] > 0, expected)
    # the default (dialogue) keeps the single Text Mask layer
    assert main(["clean", str(page), "-o", str(tmp_path / "d"), "--weights-dir", weights, "-q", "--psd"]) == 0
    assert [layer.name for layer in PSDImage.open(tmp_path / "d" / "p.psd")] == ["p.png", "Text Mask", "Cleaned"]
