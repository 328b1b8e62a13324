"""Real-host tests: the installed plug-in in the real GIMP (3.0 and 3.2 in the host chroots), driven through
the PDB.

Each module fixture installs the plug-in into a fresh HOME the way a user's install does
(``install/install.py --host gimp --skip-engine``), runs ``gimp-console-3.x`` in batch mode with
``gimp_batch.py`` following a JSON plan (load a generated page, call the procedures, save .xcf), and the tests
check the saved files from outside with ``harness.read_xcf``. The engine server the plug-in starts is stopped
when the module ends.

- wiring (tiny random weights that call everything text): offsets, alpha, grey, 16-bit, indexed refusal, an
  unreachable engine, and the PDB registration;
- quality (the shipped weights in engine/weights): the mask covers the drawn text, the text is gone, nothing
  outside the grown mask changes; and the warm Detect Text time on a 1654x2339 page (printed, not asserted).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.pipeline import CleanOptions, Engine, masks
from engine.protocol import Client, ProtocolError
from engine.workshop.synth import make_page
from tests.conftest import make_tiny_weights
from tests.hosts import harness
from tests.hosts.harness import host  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.host("gimp")

HERE = Path(__file__).resolve().parent
BATCH = HERE / "gimp_batch.py"
REPO = HERE.parents[2]
PROCS = ["kesu-detect-text", "kesu-inpaint-selection", "kesu-clean-page"]
SEED, PAGE_H, PAGE_W = 1, 1100, 800   # seed 1: a grey page with 2% text pixels, in balloons and over art
GROW = 4
DETECT_THRESHOLD = 0.6                # Detect Text in the quality run: finds less than the default 0.5
CLEAN_SEL = [10, 12, 50, 40]          # x, y, w, h: Clean Page limited to a selection
ERASED = [20, 30, 40, 30]             # x, y, w, h: the part of the Text Mask the "user" erases


# ------------------------------------------------------------------------------------------------ helpers
class Gimp:
    """One HOME with the plug-in installed, and a way to run batch plans in the real GIMP."""

    def __init__(self, host, folder: Path, weights_dir: Path | None, python: str | None = None):  # noqa: F811
        self.host, self.folder = host, folder
        self.home = host.new_home(folder)
        host.install_plugins(self.home, "gimp")
        self.cfg = self.home / ".config" / "kesu"
        config = json.loads((self.cfg / "plugin.json").read_text())
        config["weights_dir"] = str(weights_dir) if weights_dir else None
        if python:
            config["python"] = python
        (self.cfg / "plugin.json").write_text(json.dumps(config))
        self.log_dir = Path(config["log_dir"])
        self.runs = 0

    def run(self, steps: list[dict], timeout: float = 600, display: str | None = None
            ) -> tuple[dict, harness.RunResult]:
        """Run ``steps`` in gimp-console (headless), or in the full GIMP on X ``display``."""
        self.runs += 1
        report = self.folder / f"report{self.runs}.json"
        plan = self.folder / f"plan{self.runs}.json"
        plan.write_text(json.dumps({"steps": steps, "report": str(report)}))
        batch = ["--batch-interpreter=python-fu-eval", "-b", f"exec(open({str(BATCH)!r}).read())", "--quit"]
        env = {"KESU_GIMP_PLAN": str(plan)}
        if display:
            argv = [self.host.gimp_gui, "--no-splash", "--no-fonts", *batch]
            env["DISPLAY"] = display
            env["GDK_CORE_DEVICE_EVENTS"] = "1"  # GTK reads core X events (the robot sends those), not XI2
        else:
            argv = [self.host.gimp_console, "-i", "--no-data", "--no-fonts", *batch]
        r = self.host.run(argv, home=self.home, env=env, timeout=timeout)
        assert report.exists(), f"the batch wrote no report:\n{r.output[-4000:]}"
        data = json.loads(report.read_text())
        assert data["ok"], f"batch failed:\n{data.get('traceback')}\n{r.output[-3000:]}"
        assert r.returncode == 0, r.output[-3000:]
        return data, r

    def stop_engine(self) -> None:
        try:
            Client.connect(self.cfg).stop()
        except ProtocolError:
            pass  # none running

    def log_text(self) -> str:
        path = self.log_dir / "gimp-plugin.log"
        return path.read_text() if path.exists() else ""


def rgb_png(path: Path, rgb: np.ndarray) -> Path:
    h, w = rgb.shape[:2]
    harness.write_png(path, harness.Image(w, h, "RGB", np.ascontiguousarray(rgb, np.uint8).tobytes()))
    return path


def pixels(xcf: harness.Xcf, name: str) -> np.ndarray:
    """A layer's pixels as uint8 (H, W, 4) RGBA (grey replicated)."""
    img = xcf.layer_pixels(name).to_rgba()
    return np.frombuffer(img.data, np.uint8).reshape(img.height, img.width, 4)


def names(xcf: harness.Xcf) -> list[str]:
    return [lay.name for lay in xcf.layers]


def call(proc: str, image: str, **kw) -> dict:
    return {"do": "call", "proc": proc, "image": image, **kw}


def shipped_weights() -> Path:
    """engine/weights (the engine default); ``$KESU_GIMP_TEST_WEIGHTS`` tries another folder (a candidate)."""
    folder = Path(os.environ.get("KESU_GIMP_TEST_WEIGHTS") or REPO / "engine" / "weights")
    if not (folder / "manifest.json").exists():
        harness.skip_or_fail(f"no shipped weights in {folder} (manifest.json missing): the quality checks need "
                             "them")
    return folder


# ------------------------------------------------------------------------------------------ wiring (tiny)
@pytest.fixture(scope="module")
def wiring(host, tmp_path_factory):  # noqa: F811
    """One batch over small images with tiny weights whose detector calls every pixel text."""
    folder = tmp_path_factory.mktemp("gimp-wiring")
    weights = make_tiny_weights(folder / "weights", text_bias=8.0)
    g = Gimp(host, folder, weights)
    page = make_page(SEED, 150, 120)
    src = rgb_png(folder / "small.png", page.image)
    sel = [30, 40, 20, 10]      # x, y, w, h in layer coordinates
    off = [15, 25]              # canvas grown so the layer sits at these offsets
    steps = [
        {"do": "query", "procs": PROCS},
        {"do": "load", "path": str(src), "as": "off"},
        {"do": "transform", "image": "off", "what": "canvas_offset", "offset": off},
        {"do": "transform", "image": "off", "what": "add_alpha"},
        call("kesu-detect-text", "off", key="detect_off"),
        {"do": "transform", "image": "off", "what": "select",
         "rect": [off[0] + sel[0], off[1] + sel[1], sel[2], sel[3]]},
        call("kesu-inpaint-selection", "off", drawable="Background"),
        {"do": "save", "image": "off", "path": str(folder / "off.xcf")},
        {"do": "load", "path": str(src), "as": "grey"},
        {"do": "transform", "image": "grey", "what": "grey"},
        call("kesu-clean-page", "grey", args={"grow-px": 2}),
        {"do": "save", "image": "grey", "path": str(folder / "grey.xcf")},
        {"do": "load", "path": str(src), "as": "u16"},
        {"do": "transform", "image": "u16", "what": "u16"},
        call("kesu-detect-text", "u16"),
        {"do": "load", "path": str(src), "as": "indexed"},
        {"do": "transform", "image": "indexed", "what": "indexed"},
        call("kesu-detect-text", "indexed"),
        {"do": "load", "path": str(src), "as": "none"},
        call("kesu-inpaint-selection", "none"),   # no selection, no Text Mask layer: nothing to inpaint
        {"do": "load", "path": str(src), "as": "edit"},
        call("kesu-detect-text", "edit"),
        {"do": "transform", "image": "edit", "what": "erase", "layer": "Text Mask", "rect": ERASED},
        # the active layer is now the Text Mask: the plug-in works on the page below it
        call("kesu-inpaint-selection", "edit", drawable="Text Mask", args={"grow-px": 2}),
        {"do": "save", "image": "edit", "path": str(folder / "edit.xcf")},
        {"do": "load", "path": str(src), "as": "csel"},
        {"do": "transform", "image": "csel", "what": "select", "rect": CLEAN_SEL},
        call("kesu-clean-page", "csel", args={"grow-px": 3}),
        {"do": "save", "image": "csel", "path": str(folder / "csel.xcf")},
    ]
    try:
        report, run = g.run(steps)
    finally:
        g.stop_engine()
    calls = [s for s in report["steps"] if s["step"]["do"] == "call"]
    return {"g": g, "folder": folder, "report": report, "calls": calls, "page": page, "sel": sel, "off": off,
            "run": run}


def test_procedures_registered_with_menus_and_arguments(wiring):
    procs = wiring["report"]["steps"][0]["procs"]
    labels = {"kesu-detect-text": "Detect Text", "kesu-inpaint-selection": "Inpaint Selection",
              "kesu-clean-page": "Clean Page"}
    for name in PROCS:
        p = procs[name]
        assert p is not None, f"{name} is not registered"
        assert p["menu_paths"] == ["<Image>/Filters/Text Removal"]
        assert p["label"] == labels[name]
        assert p["args"]["grow-px"] == {"type": "ParamSpecInt", "min": 0, "max": 64, "default": 4}
        assert p["args"]["threshold"]["type"] == "ParamSpecDouble"
        assert p["args"]["threshold"]["default"] == 0.5
        assert 0 < p["args"]["threshold"]["min"] < 0.5 < p["args"]["threshold"]["max"] < 1
        assert {"run-mode", "image", "drawables"} <= set(p["args"])
        if name == "kesu-inpaint-selection":  # it fills the selection or the visible mask layers
            assert "text-kinds" not in p["args"]
        else:
            assert p["args"]["text-kinds"]["default"] == "dialogue", p["args"]["text-kinds"]
    # what GIMP recorded when it queried the installed plug-in (its menus come from here at start-up)
    rc = (wiring["g"].host.gimp_profile(wiring["g"].home) / "pluginrc").read_bytes().decode("utf-8", "replace")
    assert '(plug-in-def "${gimp_dir}/plug-ins/kesu/kesu.py"' in rc
    for name in PROCS:
        entry = rc.split(f'(proc-def "{name}"', 1)[1].split("(proc-def", 1)[0]
        assert '(menu-path "<Image>/Filters/Text Removal")' in entry and f'"{labels[name]}"' in entry


def test_offsets_and_alpha_layer(wiring):
    detect, inpaint = wiring["calls"][0], wiring["calls"][1]
    assert detect["status"] == "success", detect["error"]
    assert inpaint["status"] == "success", inpaint["error"]
    xcf = harness.read_xcf(wiring["folder"] / "off.xcf")
    assert names(xcf) == ["Cleaned", "Text Mask", "Background"]
    bg, tm, cl = xcf.layer("Background"), xcf.layer("Text Mask"), xcf.layer("Cleaned")
    off, sel = wiring["off"], wiring["sel"]
    assert bg.offsets == tuple(off) and tm.offsets == tuple(off)
    assert (tm.width, tm.height) == (bg.width, bg.height) == (120, 150)
    # the forced detector marks every pixel: an opaque mask over the whole layer, in the mask colour
    mask = pixels(xcf, "Text Mask")
    assert (mask[:, :, 3] == 255).all() and (mask[:, :, :3] == [255, 0, 0]).all()
    # the original is untouched (its alpha channel added by the test is opaque)
    bgpx = pixels(xcf, "Background")
    assert np.array_equal(bgpx[:, :, :3], wiring["page"].image) and (bgpx[:, :, 3] == 255).all()
    # Cleaned: a crop around the selection; changed pixels exactly inside the selection
    cx, cy = cl.offsets[0] - off[0], cl.offsets[1] - off[1]
    assert cx <= sel[0] and cy <= sel[1] and cx + cl.width >= sel[0] + sel[2]
    alpha = np.zeros((150, 120), bool)
    alpha[cy:cy + cl.height, cx:cx + cl.width] = pixels(xcf, "Cleaned")[:, :, 3] > 0
    want = np.zeros_like(alpha)
    want[sel[1]:sel[1] + sel[3], sel[0]:sel[0] + sel[2]] = True
    assert np.array_equal(alpha, want)


def test_grey_image_clean_page(wiring):
    clean = wiring["calls"][2]
    assert clean["status"] == "success", clean["error"]
    xcf = harness.read_xcf(wiring["folder"] / "grey.xcf")
    assert names(xcf) == ["Cleaned", "Text Mask", "Background"]
    assert xcf.layer("Background").type == 2                     # grey, no alpha: as loaded
    assert xcf.layer("Text Mask").type == 3 and xcf.layer("Cleaned").type == 3   # grey + alpha
    assert (pixels(xcf, "Cleaned")[:, :, 3] == 255).all()         # everything was "text": all changed


def test_sixteen_bit_image_is_converted(wiring):
    detect = wiring["calls"][3]
    assert detect["status"] == "success", detect["error"]
    assert [lay["name"] for lay in detect["layers"]] == ["Text Mask", "Background"]


def test_indexed_image_is_refused_clearly_and_unchanged(wiring):
    res = wiring["calls"][4]
    assert res["status"] == "execution-error"
    assert "indexed" in res["error"] and "Image > Mode > RGB" in res["error"]
    assert [lay["name"] for lay in res["layers"]] == ["Background"] and not res["dirty"]


def test_inpaint_without_selection_or_mask_says_what_to_do(wiring):
    res = wiring["calls"][5]
    assert res["status"] == "execution-error"
    assert "Detect Text" in res["error"] and "select" in res["error"]
    assert [lay["name"] for lay in res["layers"]] == ["Background"] and not res["dirty"]


def test_inpaint_uses_the_edited_text_mask(wiring):
    """With nothing selected, Inpaint Selection fills the Text Mask as the user left it, grown by grow-px."""
    res = wiring["calls"][7]
    assert res["status"] == "success", res["error"]
    xcf = harness.read_xcf(wiring["folder"] / "edit.xcf")
    assert names(xcf) == ["Cleaned", "Text Mask", "Background"]
    mask = pixels(xcf, "Text Mask")[:, :, 3] >= 128
    x, y, w, h = ERASED
    assert not mask[y:y + h, x:x + w].any() and mask.sum() == 120 * 150 - w * h
    changed = pixels(xcf, "Cleaned")[:, :, 3] > 0
    assert np.array_equal(changed, masks.grow(mask, 2))
    assert not changed[y + 2:y + h - 2, x + 2:x + w - 2].any()
    assert np.array_equal(pixels(xcf, "Background")[:, :, :3], wiring["page"].image)


def test_clean_page_in_a_selection_changes_only_the_selection(wiring):
    res = wiring["calls"][8]
    assert res["status"] == "success", res["error"]
    xcf = harness.read_xcf(wiring["folder"] / "csel.xcf")
    assert names(xcf) == ["Cleaned", "Text Mask", "Background"]
    x, y, w, h = CLEAN_SEL
    want = np.zeros((150, 120), bool)
    want[y:y + h, x:x + w] = True
    # everything is "text" to this detector: the mask is the selection, and growing it by 3 px is clipped
    assert np.array_equal(pixels(xcf, "Text Mask")[:, :, 3] >= 128, want)
    assert np.array_equal(pixels(xcf, "Cleaned")[:, :, 3] > 0, want)


def test_plugin_log_has_the_runs(wiring):
    text = wiring["g"].log_text()
    assert "kesu-detect-text on 'Background' 120x150" in text
    assert "indexed" in text   # failures are logged with details


# ------------------------------------------------------------------------------- profile migration 3.0 -> 3.x
@pytest.mark.host("gimp", min_version="3.2")
def test_profile_migration_from_gimp_3_0_carries_the_plugin(host, tmp_path):  # noqa: F811
    """A user of GIMP 3.0 (Kesu in ~/.config/GIMP/3.0) upgrades: the new GIMP's first start copies the 3.0
    profile, Kesu included, and its procedures are registered; re-running the installer updates that copy."""
    home = host.new_home(tmp_path)
    old = home / ".config/GIMP/3.0"
    old.mkdir(parents=True)
    (old / "gimprc").write_text("(default-threshold 17)\n")  # a setting of the user's, to see it migrate
    r = host.install_plugins(home, "gimp")
    assert (old / "plug-ins/kesu/kesu.py").is_file() and not host.gimp_profile(home).exists(), r.output
    check = ("assert Gimp.get_pdb().lookup_procedure('kesu-detect-text') is not None, 'not registered'; "
             "print('kesu-detect-text registered')")
    r = host.run([host.gimp_console, "-i", "--no-data", "--no-fonts", "--batch-interpreter=python-fu-eval",
                  "-b", check, "--quit"], home=home, timeout=300).check()
    new = host.gimp_profile(home)
    assert "default-threshold 17" in (new / "gimprc").read_text(), "GIMP did not migrate the 3.0 profile"
    assert os.access(new / "plug-ins/kesu/kesu.py", os.X_OK), r.output[-3000:]
    assert "kesu-detect-text registered" in r.output
    r = host.install_plugins(home, "gimp")
    assert "GIMP's copy of" in r.output and f"GIMP {host.version} (native)" in r.output, r.output


# ------------------------------------------------------------------------------------- engine unreachable
def test_engine_missing_leaves_image_unchanged(host, tmp_path):  # noqa: F811
    g = Gimp(host, tmp_path, None, python=str(tmp_path / "no-such-env" / "bin" / "python"))
    src = rgb_png(tmp_path / "page.png", make_page(SEED, 120, 100).image)
    report, _ = g.run([
        {"do": "load", "path": str(src), "as": "a"},
        call("kesu-detect-text", "a"),
        call("kesu-clean-page", "a"),
        {"do": "save", "image": "a", "path": str(tmp_path / "a.xcf")},
    ])
    for res in [s for s in report["steps"] if s["step"]["do"] == "call"]:
        assert res["status"] == "execution-error"
        assert "does not exist" in res["error"] and "installer" in res["error"], res["error"]
        assert "The image was not changed" in res["error"] and "gimp-plugin.log" in res["error"]
        assert [lay["name"] for lay in res["layers"]] == ["Background"]
        assert not res["dirty"], "a failed run must not leave an undo step"
    assert names(harness.read_xcf(tmp_path / "a.xcf")) == ["Background"]
    assert "no-such-env" in g.log_text()


def test_engine_failing_to_start_leaves_image_unchanged(host, tmp_path):  # noqa: F811
    """The interpreter exists but the engine cannot run (its weights folder is gone): the server exits at once."""
    missing = tmp_path / "deleted-weights"
    g = Gimp(host, tmp_path, missing)
    src = rgb_png(tmp_path / "page.png", make_page(SEED, 120, 100).image)
    report, _ = g.run([
        {"do": "load", "path": str(src), "as": "a"},
        {"do": "transform", "image": "a", "what": "select", "rect": [10, 10, 30, 20]},
        call("kesu-inpaint-selection", "a"),
    ])
    res = report["steps"][-1]
    assert res["status"] == "execution-error"
    assert "could not start" in res["error"] and str(missing) in res["error"], res["error"]
    assert "server.log" in res["error"]          # where the engine's own explanation is
    assert [lay["name"] for lay in res["layers"]] == ["Background"] and not res["dirty"]
    with pytest.raises(ProtocolError):
        Client.connect(g.cfg)                    # and no half-started server is left behind


# ------------------------------------------------------------------------------- quality (shipped weights)
@pytest.fixture(scope="module")
def quality(host, tmp_path_factory):  # noqa: F811
    weights = shipped_weights()
    folder = tmp_path_factory.mktemp("gimp-quality")
    if weights != REPO / "engine" / "weights":  # a candidate folder: copy it where the chroot sees it
        weights = Path(shutil.copytree(weights, folder / "weights"))
    g = Gimp(host, folder, None if weights == REPO / "engine" / "weights" else weights)
    page = make_page(SEED, PAGE_H, PAGE_W)
    src = rgb_png(folder / "page.png", page.image)
    big = rgb_png(folder / "big.png", make_page(SEED + 1, 2339, 1654).image)
    ys, xs = np.nonzero(page.text_mask)
    # a selection around one glyph cluster: the box of the text pixels nearest the first text pixel
    y0, x0 = int(ys[0]), int(xs[np.argmin(np.abs(ys - ys[0]) + np.abs(xs - xs[0]))])
    sel = [max(0, x0 - 8), max(0, y0 - 8), 60, 40]
    steps = [
        {"do": "load", "path": str(src), "as": "a"},
        call("kesu-detect-text", "a", args={"grow-px": GROW, "threshold": DETECT_THRESHOLD}),
        {"do": "save", "image": "a", "path": str(folder / "detect.xcf")},
        call("kesu-inpaint-selection", "a", drawable="Background", args={"grow-px": GROW}),
        {"do": "save", "image": "a", "path": str(folder / "inpaint_mask.xcf")},
        {"do": "load", "path": str(src), "as": "b"},
        {"do": "transform", "image": "b", "what": "select", "rect": sel},
        call("kesu-inpaint-selection", "b"),
        {"do": "save", "image": "b", "path": str(folder / "inpaint_sel.xcf")},
        {"do": "load", "path": str(src), "as": "c"},
        call("kesu-clean-page", "c", args={"grow-px": GROW}),
        {"do": "save", "image": "c", "path": str(folder / "clean.xcf")},
        {"do": "load", "path": str(big), "as": "big"},
        call("kesu-detect-text", "big"),
        {"do": "load", "path": str(big), "as": "big2"},
        call("kesu-detect-text", "big2"),
    ]
    try:
        report, run = g.run(steps, timeout=900)
    finally:
        g.stop_engine()
    calls = [s for s in report["steps"] if s["step"]["do"] == "call"]
    for c in calls:
        assert c["status"] == "success", f"{c['step']['proc']}: {c['error']}"
    return {"folder": folder, "page": page, "calls": calls, "sel": sel, "run": run, "g": g, "weights": weights}


def _mask_of(xcf: harness.Xcf) -> np.ndarray:
    return pixels(xcf, "Text Mask")[:, :, 3] >= 128


def _composite(xcf: harness.Xcf) -> np.ndarray:
    """Cleaned over Background (both at offset 0 here), RGB uint8."""
    bg = pixels(xcf, "Background")[:, :, :3].astype(np.float64)
    cl = pixels(xcf, "Cleaned").astype(np.float64)
    a = cl[:, :, 3:] / 255.0
    return np.round(cl[:, :, :3] * a + bg * (1 - a)).astype(np.uint8)


def _mask_layers(quality, image: np.ndarray, threshold: float = 0.5) -> list[str]:
    """The mask layers Detect Text and Clean Page add for ``image`` with the quality run's weights, top first:
    the "SFX Mask" only when the engine, in-process, finds sound effects there."""
    engine = Engine.load(quality["weights"])
    options = CleanOptions(threshold=threshold, grow_px=GROW)
    has_sfx = engine.kind_masks(image, options, kinds=("sfx",))["sfx"].any()
    return ["SFX Mask", "Text Mask"] if has_sfx else ["Text Mask"]


def test_detect_text_mask_covers_the_text(quality):
    xcf = harness.read_xcf(quality["folder"] / "detect.xcf")
    assert names(xcf) == [*_mask_layers(quality, quality["page"].image, DETECT_THRESHOLD), "Background"]
    truth = quality["page"].text_mask
    assert np.array_equal(pixels(xcf, "Background")[:, :, :3], quality["page"].image)
    found = _mask_of(xcf)
    # the threshold argument reaches the engine: 0.6 marks less than Clean Page's default 0.5 on the same page
    default = _mask_of(harness.read_xcf(quality["folder"] / "clean.xcf"))
    # (not a subset: snapping to the ink decides the fringe of each mask by its own levels; 1.4% of the pixels
    # at 0.6 were outside the mask at 0.5 with textseg v5). That this is the engine's own mask at 0.6 is below.
    assert found.sum() < default.sum()
    # the tight mask misses anti-aliased fringe pixels; within a 2 px tolerance it must find the text
    # exactly what the engine finds on these pixels with these weights and this threshold: nothing lost on the
    # way through GEGL, the protocol and the new layer
    engine = Engine.load(quality["weights"])
    direct = engine.text_mask(quality["page"].image, CleanOptions(threshold=DETECT_THRESHOLD, grow_px=GROW))
    agree = (direct == found).mean()
    # and it covers most of the drawn text with the SFX Mask (if any): the tight mask misses anti-aliased fringe
    # pixels, so 2 px tolerance
    every_kind = found | (pixels(xcf, "SFX Mask")[:, :, 3] >= 128 if "SFX Mask" in names(xcf) else False)
    recall = (masks.grow(every_kind, 2) & truth).sum() / truth.sum()
    precision = (found & masks.grow(truth, 3)).sum() / max(1, found.sum())
    print(f"\nDetect Text on {PAGE_W}x{PAGE_H} (threshold {DETECT_THRESHOLD}): recall {recall:.3f} (2 px tolerance), "
          f"precision {precision:.3f} (3 px), same as the engine in-process on {agree:.4%} of the pixels")
    assert agree >= 0.999, f"the Text Mask differs from the engine's own mask on {1 - agree:.2%} of the pixels"
    assert recall >= 0.5, f"the Text Mask covers only {recall:.1%} of the drawn text"
    # on this page: textseg.mnv2w10.v5 at 0.6, snapped, recall 0.951, precision 0.625; at 0.5 (not snapped then):
    # v4 0.862 / 0.739; v3 0.928 / 0.589 (it marked a
    # clip-art bee's stripes, a brush-drawn shape and an outlined sound effect's fringe); v2 0.863 / 0.836.
    # Sanity bars with a margin; quality is `kesu eval textseg` on real pages
    assert precision >= 0.5, f"only {precision:.1%} of the Text Mask is on or near text"


def _text_gone(quality, xcf, where):
    page = quality["page"]
    clean = page.clean.astype(np.int16)
    before = np.abs(page.image.astype(np.int16) - clean)[where].mean()
    after = np.abs(_composite(xcf).astype(np.int16) - clean)[where].mean()
    return before, after


def test_inpaint_from_text_mask_removes_the_text(quality):
    res = quality["calls"][1]
    layers = ["Cleaned", *_mask_layers(quality, quality["page"].image, DETECT_THRESHOLD), "Background"]
    assert [lay["name"] for lay in res["layers"]] == layers
    xcf = harness.read_xcf(quality["folder"] / "inpaint_mask.xcf")
    assert names(xcf) == layers
    assert np.array_equal(pixels(xcf, "Background")[:, :, :3], quality["page"].image)
    found = _mask_of(xcf)
    changed = pixels(xcf, "Cleaned")[:, :, 3] > 0
    assert not (changed & ~masks.grow(found, GROW)).any(), "pixels outside the grown mask changed"
    before, after = _text_gone(quality, xcf, quality["page"].text_mask & found)
    print(f"\nInpaint (Text Mask): mean |page - clean| in the text {before:.1f} -> {after:.1f}")
    assert after < 0.35 * before


def test_inpaint_selection_changes_only_the_selection(quality):
    xcf = harness.read_xcf(quality["folder"] / "inpaint_sel.xcf")
    assert names(xcf) == ["Cleaned", "Background"]
    x, y, w, h = quality["sel"]
    cl = xcf.layer("Cleaned")
    cx, cy = cl.offsets
    alpha = np.zeros(quality["page"].text_mask.shape, bool)
    alpha[cy:cy + cl.height, cx:cx + cl.width] = pixels(xcf, "Cleaned")[:, :, 3] > 0
    want = np.zeros_like(alpha)
    want[y:y + h, x:x + w] = True
    assert np.array_equal(alpha, want)
    assert np.array_equal(pixels(xcf, "Background")[:, :, :3], quality["page"].image)


def test_clean_page_removes_the_text_and_nothing_else(quality):
    xcf = harness.read_xcf(quality["folder"] / "clean.xcf")
    assert names(xcf) == ["Cleaned", *_mask_layers(quality, quality["page"].image), "Background"]
    page = quality["page"]
    assert np.array_equal(pixels(xcf, "Background")[:, :, :3], page.image)
    found = _mask_of(xcf)
    changed = pixels(xcf, "Cleaned")[:, :, 3] > 0
    grown = masks.grow(found, GROW)
    assert not (changed & ~grown).any(), "pixels outside the grown mask changed"
    assert changed.sum() >= 0.9 * grown.sum()
    before, after = _text_gone(quality, xcf, page.text_mask & found)
    print(f"\nClean Page: mean |page - clean| in the found text {before:.1f} -> {after:.1f}")
    assert after < 0.35 * before


def test_warm_detect_time_on_a_full_page(quality):
    first, warm = quality["calls"][-2], quality["calls"][-1]
    log = quality["g"].log_text()
    lines = [line for line in log.splitlines() if "kesu-detect-text on 'Background' 1654x2339" in line]
    print(f"\nDetect Text 1654x2339 through the PDB: first {first['seconds']:.2f} s, warm {warm['seconds']:.2f} s"
          f"\n  plug-in log: {lines[-1].split('kesu-detect-text', 1)[1] if lines else '?'}")
    big = make_page(SEED + 1, 2339, 1654).image
    assert [lay["name"] for lay in warm["layers"]] == [*_mask_layers(quality, big), "Background"]
    assert len(lines) == 2



def test_gui_gimp_runs_with_last_values(host, tmp_path):  # noqa: F811
    """The full GIMP under Xvfb (an image window, GIMP's progress bar): the last-values path of the menu's
    Repeat command. The settings dialog itself needs a person (or an input robot the chroot lacks)."""
    g = Gimp(host, tmp_path, make_tiny_weights(tmp_path / "weights", text_bias=8.0))
    src = rgb_png(tmp_path / "page.png", make_page(SEED, 120, 100).image)
    try:
        with host.xvfb() as display:
            report, _ = g.run([
                {"do": "load", "path": str(src), "as": "a"},
                {"do": "display", "image": "a"},
                call("kesu-clean-page", "a", args={"threshold": 0.3, "grow-px": 7}),
                call("kesu-clean-page", "a", mode="last-vals", drawable="Background"),
                {"do": "save", "image": "a", "path": str(tmp_path / "a.xcf")},
            ], display=display, timeout=300)
    finally:
        g.stop_engine()
    calls = [s for s in report["steps"] if s["step"]["do"] == "call"]
    assert [c["status"] for c in calls] == ["success", "success"], [c["error"] for c in calls]
    # the second run's layers go directly above the page, under the first run's
    assert names(harness.read_xcf(tmp_path / "a.xcf")) == ["Cleaned", "Text Mask", "Cleaned #1", "Text Mask #1",
                                                           "Background"]
    log = g.log_text()
    assert "kesu-clean-page: noninteractive (grow 7 px, threshold 0.30, text dialogue)" in log
    # GIMP keeps "last values" only from interactive (dialog) runs, so Repeat here uses the defaults
    assert "kesu-clean-page: with-last-vals (grow 4 px, threshold 0.50, text dialogue)" in log


def run_pressing_keys(host, g: Gimp, display: str, steps: list[dict], keys: list[tuple[str, str]],  # noqa: F811
                      robot: list[harness.RunResult]) -> dict:
    """Run ``steps`` in the full GIMP on ``display`` while a small X robot (xkeys.py) presses each of ``keys``
    ((dialog title, key), in order) in the dialogs; each robot run goes into ``robot``. A failed run says what the
    robot saw. Returns the run's report."""
    def press():
        for title, key in keys:
            robot.append(host.run(["python3", str(HERE / "xkeys.py"), title, key, "120"], home=g.home,
                                  env={"DISPLAY": display}, timeout=150))

    t = threading.Thread(target=press)
    t.start()
    try:
        report, _ = g.run(steps, display=display, timeout=300)
    except AssertionError as e:
        t.join()
        raise AssertionError(f"{e}\nrobot: {[r.output for r in robot]}") from e
    finally:
        t.join()
    return report


def test_gui_dialog_cancel_and_ok(host, tmp_path):  # noqa: F811
    """Interactive runs in the full GIMP: the settings dialog appears; Escape cancels (image unchanged),
    Return runs with the dialog's values. A small X robot (xkeys.py) presses the keys."""
    g = Gimp(host, tmp_path, make_tiny_weights(tmp_path / "weights", text_bias=8.0))
    src = rgb_png(tmp_path / "page.png", make_page(SEED, 120, 100).image)
    robot: list[harness.RunResult] = []
    try:
        with host.xvfb() as display:
            report = run_pressing_keys(host, g, display, [
                {"do": "load", "path": str(src), "as": "a"},
                {"do": "display", "image": "a"},
                call("kesu-detect-text", "a", mode="interactive"),
                call("kesu-clean-page", "a", mode="interactive"),
                {"do": "save", "image": "a", "path": str(tmp_path / "a.xcf")},
            ], [("Kesu: Detect Text", "Escape"), ("Kesu: Clean Page", "Return")], robot)
    finally:
        g.stop_engine()
    assert [r.returncode for r in robot] == [0, 0], [r.output for r in robot]
    cancelled, ok = [s for s in report["steps"] if s["step"]["do"] == "call"]
    assert cancelled["status"] == "cancel" and not cancelled["dirty"]
    assert [lay["name"] for lay in cancelled["layers"]] == ["Background"]
    assert ok["status"] == "success", ok["error"]
    assert names(harness.read_xcf(tmp_path / "a.xcf")) == ["Cleaned", "Text Mask", "Background"]
    assert "kesu-clean-page: interactive (grow 4 px, threshold 0.50, text dialogue)" in g.log_text()


# ------------------------------------------------------------ kinds of text (issue 31), the stand-in engine
def kinds_gimp(host, folder: Path) -> Gimp:  # noqa: F811
    """A HOME whose engine is the stand-in that tells the kinds of text apart by ink colour
    (tests/hosts/kinds_engine.py: the shipped detector calls all text dialogue), with tiny weights."""
    from tests.hosts.kinds_engine import write_launcher

    if harness.engine_python() is None:
        harness.skip_or_fail("no engine environment (.venv, or $KESU_ENGINE_PYTHON) for the stand-in engine")
    launcher = write_launcher(folder / "engine-python", harness.engine_python())
    return Gimp(host, folder, make_tiny_weights(folder / "weights", text_bias=3.0), python=str(launcher))


def alpha(xcf: harness.Xcf, layer) -> np.ndarray:
    """Where a layer (a name, or an XcfLayer) is opaque, over its own rectangle (all at offset 0 here)."""
    img = xcf.layer_pixels(layer).to_rgba()
    return np.frombuffer(img.data, np.uint8).reshape(img.height, img.width, 4)[:, :, 3] > 0


@pytest.fixture(scope="module")
def kinds(host, tmp_path_factory):  # noqa: F811
    from tests.hosts.kinds_engine import kinds_page

    folder = tmp_path_factory.mktemp("gimp-kinds")
    g = kinds_gimp(host, folder)
    rgb, lettering, sfx = kinds_page()
    src = rgb_png(folder / "page.png", rgb)
    steps = [
        {"do": "load", "path": str(src), "as": "d"},
        call("kesu-detect-text", "d"),
        {"do": "save", "image": "d", "path": str(folder / "detect.xcf")},
        call("kesu-inpaint-selection", "d", drawable="Background"),
        {"do": "save", "image": "d", "path": str(folder / "inpaint_sfx_hidden.xcf")},
        {"do": "transform", "image": "d", "what": "visible", "layer": "SFX Mask", "visible": True},
        call("kesu-inpaint-selection", "d", drawable="Background"),
        {"do": "save", "image": "d", "path": str(folder / "inpaint_sfx_shown.xcf")},
        {"do": "transform", "image": "d", "what": "visible", "layer": "SFX Mask", "visible": False},
        {"do": "transform", "image": "d", "what": "visible", "layer": "Text Mask", "visible": False},
        call("kesu-inpaint-selection", "d", drawable="Background"),
        {"do": "load", "path": str(src), "as": "c"},
        call("kesu-clean-page", "c"),
        {"do": "save", "image": "c", "path": str(folder / "clean_default.xcf")},
        {"do": "load", "path": str(src), "as": "a"},
        call("kesu-clean-page", "a", args={"text-kinds": "all"}),
        {"do": "save", "image": "a", "path": str(folder / "clean_all.xcf")},
        {"do": "load", "path": str(src), "as": "s"},
        call("kesu-detect-text", "s", args={"text-kinds": "sfx"}),
        {"do": "save", "image": "s", "path": str(folder / "detect_sfx.xcf")},
    ]
    try:
        report, _ = g.run(steps)
    finally:
        g.stop_engine()
    calls = {}
    for s in report["steps"]:
        if s["step"]["do"] == "call":
            calls.setdefault(s["step"]["proc"], []).append(s)
    return {"g": g, "folder": folder, "calls": calls, "rgb": rgb, "lettering": lettering, "sfx": sfx}


def test_detect_text_adds_a_hidden_sfx_mask_above_the_text_mask(kinds):
    assert kinds["calls"]["kesu-detect-text"][0]["status"] == "success"
    xcf = harness.read_xcf(kinds["folder"] / "detect.xcf")
    assert names(xcf) == ["SFX Mask", "Text Mask", "Background"]
    sfx, text = xcf.layer("SFX Mask"), xcf.layer("Text Mask")
    assert not sfx.visible and text.visible
    assert sfx.opacity == pytest.approx(0.6, abs=0.01) and text.opacity == pytest.approx(0.6, abs=0.01)
    assert np.array_equal(alpha(xcf, "Text Mask"), kinds["lettering"])
    assert np.array_equal(alpha(xcf, "SFX Mask"), kinds["sfx"])
    assert (pixels(xcf, "SFX Mask")[kinds["sfx"]][:, :3] == [255, 0, 0]).all()
    assert np.array_equal(pixels(xcf, "Background")[:, :, :3], kinds["rgb"])
    assert "sound-effect pixels 1400" in kinds["g"].log_text()


def test_inpaint_selection_erases_under_visible_masks_only(kinds):
    lettering, sfx = kinds["lettering"], kinds["sfx"]
    first, second, hidden = kinds["calls"]["kesu-inpaint-selection"]
    assert first["status"] == second["status"] == "success", (first["error"], second["error"])
    xcf = harness.read_xcf(kinds["folder"] / "inpaint_sfx_hidden.xcf")
    assert names(xcf) == ["Cleaned", "SFX Mask", "Text Mask", "Background"]  # above the page's masks
    changed = alpha(xcf, "Cleaned")
    assert (changed | ~lettering).all(), "the visible Text Mask was not erased"
    assert not (changed & sfx).any(), "the hidden SFX Mask was erased"
    xcf = harness.read_xcf(kinds["folder"] / "inpaint_sfx_shown.xcf")
    assert names(xcf) == ["Cleaned", "Cleaned #1", "SFX Mask", "Text Mask", "Background"]
    assert xcf.layer("SFX Mask").visible
    changed = alpha(xcf, "Cleaned #1")  # the second run's, directly above the masks
    assert (changed | ~(lettering | sfx)).all(), "the visible SFX Mask was not erased with the Text Mask"
    assert np.array_equal(pixels(xcf, "Background")[:, :, :3], kinds["rgb"])
    # both masks hidden: nothing to fill, the image is left as it was
    assert hidden["status"] == "execution-error"
    assert '"SFX Mask" and "Text Mask" are hidden' in hidden["error"], hidden["error"]
    assert not hidden["dirty"] and len(hidden["layers"]) == 5
    assert "kesu-inpaint-selection: filling ['SFX Mask', 'Text Mask']" in kinds["g"].log_text()


def test_clean_page_text_kinds(kinds):
    lettering, sfx = kinds["lettering"], kinds["sfx"]
    default, everything = kinds["calls"]["kesu-clean-page"]
    assert default["status"] == everything["status"] == "success", (default["error"], everything["error"])
    xcf = harness.read_xcf(kinds["folder"] / "clean_default.xcf")  # dialogue: the sound effect stays
    assert names(xcf) == ["Cleaned", "SFX Mask", "Text Mask", "Background"]
    assert not xcf.layer("SFX Mask").visible and xcf.layer("Text Mask").visible
    changed = alpha(xcf, "Cleaned")
    assert (changed | ~lettering).all() and not (changed & sfx).any()
    xcf = harness.read_xcf(kinds["folder"] / "clean_all.xcf")  # "all": the sound effect goes too
    assert names(xcf) == ["Cleaned", "SFX Mask", "Text Mask", "Background"]
    assert xcf.layer("SFX Mask").visible and xcf.layer("Text Mask").visible
    assert (alpha(xcf, "Cleaned") | ~(lettering | sfx)).all()
    log = kinds["g"].log_text()
    assert "kesu-clean-page: noninteractive (grow 4 px, threshold 0.50, text all)" in log


def test_detect_text_kinds_sfx_shows_only_the_sfx_mask(kinds):
    xcf = harness.read_xcf(kinds["folder"] / "detect_sfx.xcf")
    assert names(xcf) == ["SFX Mask", "Text Mask", "Background"]
    assert xcf.layer("SFX Mask").visible and not xcf.layer("Text Mask").visible


def test_gui_text_kinds_setting_round_trips(host, tmp_path):  # noqa: F811
    """GIMP keeps a procedure's dialog values between sessions (plug-in-settings/GimpProcedureConfigRun-<name>.last,
    written after an interactive run). A file saved by an older Kesu (no text-kinds) still loads, text-kinds
    taking its default; one saying "all" opens the dialog on it, OK runs with it and GIMP saves it again; the
    next session's Repeat (last values) uses it."""
    from tests.hosts.kinds_engine import kinds_page

    g = kinds_gimp(host, tmp_path)
    rgb, lettering, sfx = kinds_page()
    src = rgb_png(tmp_path / "page.png", rgb)
    last = host.gimp_profile(g.home) / "plug-in-settings" / "GimpProcedureConfigRun-kesu-clean-page.last"
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_text("# settings\n\n(grow-px 7)\n(threshold 0.29999999999999999)\n\n# end of settings\n")
    robot: list[harness.RunResult] = []
    try:
        with host.xvfb() as display:
            report, _ = g.run([
                {"do": "load", "path": str(src), "as": "old"},
                call("kesu-clean-page", "old", mode="last-vals"),
            ], display=display, timeout=300)
            assert report["steps"][-1]["status"] == "success", report["steps"][-1]["error"]
            # the user chose "Dialogue and sound effects" in an earlier session
            last.write_text(last.read_text().replace("(threshold", '(text-kinds "all")\n(threshold'))

            report = run_pressing_keys(host, g, display, [
                {"do": "load", "path": str(src), "as": "a"},
                {"do": "display", "image": "a"},
                call("kesu-clean-page", "a", mode="interactive"),
            ], [("Kesu: Clean Page", "Return")], robot)
            assert report["steps"][-1]["status"] == "success", report["steps"][-1]["error"]
            saved = last.read_text()
            report, _ = g.run([
                {"do": "load", "path": str(src), "as": "b"},
                call("kesu-clean-page", "b", mode="last-vals"),
                {"do": "save", "image": "b", "path": str(tmp_path / "b.xcf")},
            ], display=display, timeout=300)
    finally:
        g.stop_engine()
    assert [r.returncode for r in robot] == [0], [r.output for r in robot]
    log = g.log_text()
    assert "kesu-clean-page: with-last-vals (grow 7 px, threshold 0.30, text dialogue)" in log
    assert "kesu-clean-page: interactive (grow 7 px, threshold 0.30, text all)" in log
    assert '(text-kinds "all")' in saved, saved
    assert "kesu-clean-page: with-last-vals (grow 7 px, threshold 0.30, text all)" in log
    xcf = harness.read_xcf(tmp_path / "b.xcf")
    assert xcf.layer("SFX Mask").visible and (alpha(xcf, "Cleaned") | ~(lettering | sfx)).all()
