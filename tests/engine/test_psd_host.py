"""Real-host tests of ``kesu clean --psd``'s files: GIMP 3.0 imports them and Krita 5.2 opens them (the trixie
chroot, tests/hosts/README.md), each saves its own format, and the layers are checked from outside: names,
order, visibility and pixels against what engine.psd was given. Both also open a PSB (a strip over 30000 px):
names, visibility and size."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from tests.hosts import harness
from tests.hosts.harness import host  # noqa: F401  (the session fixture)

pytest.importorskip("psd_tools", reason="psd-tools (the kesu[psd] extra) is not installed")

from engine import psd  # noqa: E402
from engine.server import result_pixels  # noqa: E402

H, W = 40, 56
NAMES = ["page.png", "Text Mask", "Cleaned"]  # bottom up, as written
STRIP_H = psd.PSD_MAX_SIDE + 1


def _pages() -> dict[str, dict]:
    """Two small pages, an RGB one with alpha and a grey one, with what each layer must hold (RGBA / LA)."""
    rng = np.random.default_rng(7)
    text = np.zeros((H, W), bool)
    text[6:14, 8:30] = True
    text[24:33, 30:50] = True
    grown = np.zeros_like(text)
    grown[4:16, 6:32] = True
    grown[22:35, 28:52] = True
    pages = {}
    for kind in ("rgba", "grey"):
        grey = kind == "grey"
        original = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        if grey:
            original = np.repeat(original[:, :, :1], 3, axis=2)
        alpha = None
        if not grey:
            alpha = np.full((H, W), 255, np.uint8)
            alpha[:, :5] = 0
            alpha[:, 5:10] = 128
        cleaned = original.copy()
        cleaned[grown] = 230 if grey else (230, 220, 210)
        doc = psd.layered_document(original, alpha, cleaned, grown, {"Text Mask": text}, "page.png", grey=grey)
        layout = "LA" if grey else "RGBA"
        page_layer = np.dstack([original[:, :, :1] if grey else original,
                                np.full((H, W), 255, np.uint8) if alpha is None else alpha])
        mask_layer = np.zeros((H, W, len(layout)), np.uint8)
        mask_layer[text] = (psd.MASK_GREY, 255) if grey else (*psd.MASK_RGB, 255)
        raw, _ = result_pixels(cleaned, grown, alpha, "L" if grey else "RGBA")
        pages[kind] = {"doc": doc, "grey": grey, "layers": dict(zip(NAMES, [
            page_layer, mask_layer, np.frombuffer(raw, np.uint8).reshape(H, W, len(layout))], strict=True))}
    return pages


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("psd-hosts")
    pages = _pages()
    for kind, page in pages.items():
        with open(folder / f"{kind}.psd", "wb") as f:
            page["doc"].write(f)
    # a strip over the PSD format's 30000 px: a PSB
    strip = np.full((STRIP_H, 4, 3), 200, np.uint8)
    text = np.zeros(strip.shape[:2], bool)
    text[STRIP_H - 9:STRIP_H - 3, 1:3] = True
    cleaned = strip.copy()
    cleaned[text] = 255
    with open(folder / "strip.psb", "wb") as f:
        psd.layered_document(strip, None, cleaned, text, {"Text Mask": text}, "page.png").write(f)
    return folder, pages


def _as_rgba(expected: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 4) of an RGBA or LA array (grey replicated), the form the harness readers give."""
    if expected.shape[2] == 4:
        return expected
    return np.dstack([expected[:, :, 0]] * 3 + [expected[:, :, 1]])


def _assert_same_pixels(got: harness.Image, expected: np.ndarray, what: str) -> None:
    """Alpha everywhere; colour where a pixel is not fully transparent (a host may drop hidden colour there)."""
    got_rgba = got.to_rgba()
    arr = np.frombuffer(got_rgba.data, np.uint8).reshape(got_rgba.height, got_rgba.width, 4)
    want = _as_rgba(expected)
    np.testing.assert_array_equal(arr[:, :, 3], want[:, :, 3], err_msg=f"{what}: alpha")
    seen = want[:, :, 3] > 0
    np.testing.assert_array_equal(arr[seen][:, :3], want[seen][:, :3], err_msg=f"{what}: colour")


GIMP_IMPORT = """
import json, os
from gi.repository import Gio
folder = os.environ["FOLDER"]
report = {}
for kind in ("rgba", "grey"):
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(f"{folder}/{kind}.psd"))
    report[kind] = {"base": int(image.get_base_type()), "precision": int(image.get_precision()),
                    "layers": [[lay.get_name(), lay.get_visible()] for lay in image.get_layers()]}
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(f"{folder}/{kind}.xcf"), None)
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(f"{folder}/strip.psb"))
report["strip"] = {"size": [image.get_width(), image.get_height()],
                   "layers": [[lay.get_name(), lay.get_visible()] for lay in image.get_layers()]}
json.dump(report, open(f"{folder}/gimp.json", "w"))
"""


@pytest.mark.host("gimp")
def test_gimp_imports_the_layers_with_their_names_and_pixels(host, files):  # noqa: F811
    folder, pages = files
    home = host.new_home(folder / "gimp")
    script = folder / "gimp_import.py"
    script.write_text(GIMP_IMPORT)
    r = host.run([host.gimp_console, "-i", "--no-data", "--no-fonts", "--batch-interpreter=python-fu-eval",
                  "-b", f"exec(open({str(script)!r}).read())", "--quit"],
                 home=home, env={"FOLDER": str(folder)}, timeout=300)
    assert (folder / "gimp.json").exists(), r.output[-4000:]
    report = json.loads((folder / "gimp.json").read_text())
    for kind, page in pages.items():
        # GIMP lists layers top first
        assert report[kind]["layers"] == [[n, n != "Text Mask"] for n in reversed(NAMES)], r.output[-3000:]
        assert report[kind]["base"] == (1 if page["grey"] else 0)   # GIMP_GRAY / GIMP_RGB
        xcf = harness.read_xcf(folder / f"{kind}.xcf")
        assert (xcf.width, xcf.height) == (W, H)
        for name, expected in page["layers"].items():
            layer = xcf.layer(name)
            assert layer.offsets == (0, 0) and (layer.width, layer.height) == (W, H)
            assert layer.visible == (name != "Text Mask")
            _assert_same_pixels(xcf.layer_pixels(layer), expected, f"GIMP {kind} {name}")
    assert report["strip"] == {"size": [4, STRIP_H], "layers": [[n, n != "Text Mask"] for n in reversed(NAMES)]}


KRITA_OPEN = """
import json, os
from krita import Krita


def main(*args):
    folder = os.environ["FOLDER"]
    report = {}
    try:
        app = Krita.instance()
        app.setBatchmode(True)
        for kind in ("rgba", "grey"):
            doc = app.openDocument(f"{folder}/{kind}.psd")
            doc.setBatchmode(True)
            doc.waitForDone()
            report[kind] = {"model": doc.colorModel(), "depth": doc.colorDepth(),
                            "layers": [[n.name(), n.visible()] for n in doc.topLevelNodes()]}
            report[kind]["saved"] = doc.saveAs(f"{folder}/{kind}.kra")
            doc.waitForDone()
            doc.close()
        doc = app.openDocument(f"{folder}/strip.psb")
        doc.waitForDone()
        report["strip"] = {"size": [doc.width(), doc.height()],
                           "layers": [[n.name(), n.visible()] for n in doc.topLevelNodes()]}
        doc.close()
    except Exception as e:  # kritarunner exits 0 even when this raises: report it through the file
        report["error"] = repr(e)
    json.dump(report, open(f"{folder}/krita.json", "w"))
"""


@pytest.mark.host("krita")
def test_krita_opens_the_layers_with_their_names_and_pixels(host, files):  # noqa: F811
    folder, pages = files
    home = host.new_home(folder / "krita")
    (folder / "kesu_psd_open.py").write_text(textwrap.dedent(KRITA_OPEN))
    r = host.run(["kritarunner", "-s", "kesu_psd_open", "-f", "main"], home=home,
                 env={"FOLDER": str(folder), "PYTHONPATH": str(folder), "QT_QPA_PLATFORM": "offscreen"},
                 timeout=180)
    assert (folder / "krita.json").exists(), r.output[-4000:]
    report = json.loads((folder / "krita.json").read_text())
    assert "error" not in report, report
    for kind, page in pages.items():
        assert report[kind]["saved"], report
        assert report[kind]["model"] == ("GRAYA" if page["grey"] else "RGBA") and report[kind]["depth"] == "U8"
        assert report[kind]["layers"] == [[n, n != "Text Mask"] for n in NAMES]   # Krita lists bottom first
        kra = harness.read_kra(folder / f"{kind}.kra")
        assert (kra.width, kra.height) == (W, H)
        for name, expected in page["layers"].items():
            layer = kra.layer(name)
            assert layer.visible == (name != "Text Mask")
            _assert_same_pixels(kra.layer_pixels(layer), expected, f"Krita {kind} {name}")
    assert report["strip"] == {"size": [4, STRIP_H], "layers": [[n, n != "Text Mask"] for n in NAMES]}
