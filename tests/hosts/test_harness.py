"""Tests of the real-host harness: the stdlib readers (fast, everywhere) and, in the chroot, that files saved
by a real GIMP 3 and a real Krita read back with the right layer names, order, offsets and pixels."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.hosts import harness
from tests.hosts.harness import host  # noqa: F401  (session fixture)


def _checker(w: int, h: int) -> harness.Image:
    """RGBA test pattern whose every pixel differs from its neighbours (catches row/column mix-ups)."""
    data = bytearray()
    for y in range(h):
        for x in range(w):
            data += bytes(((x * 37) & 255, (y * 53) & 255, (x * y) & 255, 255 if (x + y) % 3 else 128))
    return harness.Image(w, h, "RGBA", bytes(data))


def test_png_roundtrip_all_modes(tmp_path: Path) -> None:
    img = _checker(13, 7)
    harness.write_png(tmp_path / "a.png", img)
    back = harness.read_png(tmp_path / "a.png")
    assert (back.width, back.height, back.mode) == (13, 7, "RGBA")
    assert back.data == img.data
    grey = harness.Image(5, 3, "L", bytes(range(15)))
    assert harness.decode_png(harness.encode_png(grey)).data == grey.data
    assert harness.decode_png(harness.encode_png(grey)).to_rgba().pixel(4, 2) == (14, 14, 14, 255)


@pytest.mark.parametrize("ftype", [1, 2, 3, 4])
def test_png_filters_decode(ftype: int) -> None:
    """Hand-filter two rows with each PNG filter type and check the reader undoes it."""
    bpp, rows = 3, [bytes([10, 20, 30, 40, 50, 60]), bytes([15, 25, 35, 45, 55, 65])]
    raw, prev = b"", bytes(6)
    for row in rows:
        enc = bytearray()
        for x, v in enumerate(row):
            a = row[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                pred = a
            elif ftype == 2:
                pred = b
            elif ftype == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            enc.append((v - pred) & 255)
        raw += bytes([ftype]) + enc
        prev = row
    assert harness._unfilter(raw, 2, 2, bpp) == b"".join(rows)


def test_png_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        harness.decode_png(b"GIF89a....")


def test_lzf_literal_and_backref() -> None:
    # literal "abc" (ctrl 2), then a back reference of length 6 at distance 3 (overlapping copy).
    stream = bytes([2]) + b"abc" + bytes([(4 << 5) | 0, 2])
    assert harness._lzf_decompress(stream, 9) == b"abcabcabc"
    with pytest.raises(ValueError, match="expected"):
        harness._lzf_decompress(stream, 10)


def test_skip_or_fail_respects_require(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KESU_REQUIRE_HOSTS", "1")
    with pytest.raises(pytest.fail.Exception, match="required"):
        harness.skip_or_fail("no chroot")
    monkeypatch.delenv("KESU_REQUIRE_HOSTS")
    with pytest.raises(pytest.skip.Exception, match="no chroot"):
        harness.skip_or_fail("no chroot")


# ------------------------------------------------------------------------------------------ real hosts
GIMP_SCRIPT = """
import os
from gi.repository import Gio
out = os.environ["OUT"]
img = Gimp.Image.new(40, 30, Gimp.ImageBaseType.RGB)
bg = Gimp.Layer.new(img, "Background", 40, 30, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
img.insert_layer(bg, None, 0)
buf = bg.get_buffer()
buf.set(Gegl.Rectangle.new(0, 0, 40, 30), "R'G'B' u8", bytes([200, 100, 50]) * (40 * 30))
buf.flush()
top = Gimp.Layer.new(img, "Top", 10, 8, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
img.insert_layer(top, None, 0)
top.set_offsets(5, 4)
data = bytes(b for y in range(8) for x in range(10) for b in (x * 20, y * 30, 7, 255 if x < 5 else 0))
buf = top.get_buffer()
buf.set(Gegl.Rectangle.new(0, 0, 10, 8), "R'G'B'A u8", data)
buf.flush()
Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(out + "/t.xcf"), None)
"""


@pytest.mark.host("gimp")
def test_real_gimp_xcf_reads_back(host: harness.HostChroot, tmp_path: Path) -> None:  # noqa: F811
    home = host.new_home(tmp_path)
    (tmp_path / "t.py").write_text(GIMP_SCRIPT)
    r = host.run(
        [host.gimp_console, "-i", "--no-data", "--no-fonts", "--batch-interpreter=python-fu-eval",
         "-b", f"exec(open('{tmp_path}/t.py').read())", "--quit"],
        home=home, env={"OUT": str(tmp_path)}, timeout=300,
    ).check()  # fmt: skip
    x = harness.read_xcf(tmp_path / "t.xcf")
    assert (x.width, x.height) == (40, 30), r.output
    assert [lay.name for lay in x.layers] == ["Top", "Background"]
    top = x.layer("Top")
    assert top.offsets == (5, 4) and (top.width, top.height) == (10, 8)
    px = x.layer_pixels(top)
    assert px.mode == "RGBA"
    assert px.pixel(3, 2) == (60, 60, 7, 255) and px.pixel(7, 1)[3] == 0
    bg = x.layer_pixels("Background")
    assert bg.mode == "RGB" and bg.pixel(39, 29) == (200, 100, 50)


KRITA_RUNNER = """
import os
from krita import Krita

if int(Krita.instance().version().split(".")[0]) >= 6:  # the running Krita's Qt binding
    from PyQt6.QtCore import QByteArray
else:
    from PyQt5.QtCore import QByteArray


def main(*args):
    out = os.environ["OUT"]
    try:
        app = Krita.instance()
        app.setBatchmode(True)
        doc = app.createDocument(40, 30, "t", "RGBA", "U8", "", 72.0)
        doc.setBatchmode(True)
        bg = doc.topLevelNodes()[0]
        bg.setName("Background")
        bg.setPixelData(QByteArray(bytes([50, 100, 200, 255]) * (40 * 30)), 0, 0, 40, 30)  # B, G, R, A
        top = doc.createNode("Top", "paintlayer")
        doc.rootNode().addChildNode(top, None)
        px = bytes(b for y in range(8) for x in range(10) for b in (7, y * 30, x * 20, 255 if x < 5 else 0))
        top.setPixelData(QByteArray(px), 0, 0, 10, 8)
        top.move(5, 4)
        doc.refreshProjection()
        doc.waitForDone()
        ok = doc.saveAs(out + "/t.kra")
        doc.waitForDone()
        doc.close()
        open(out + "/rc", "w").write("0" if ok else "save failed")
    except Exception as e:  # kritarunner exits 0 even when this raises: report through the rc file
        open(out + "/rc", "w").write(repr(e))
"""


@pytest.mark.host("krita")
def test_real_krita_kra_reads_back(host: harness.HostChroot, tmp_path: Path) -> None:  # noqa: F811
    home = host.new_home(tmp_path)
    (tmp_path / "kesu_harness_runner.py").write_text(textwrap.dedent(KRITA_RUNNER))
    r = host.run(
        ["kritarunner", "-s", "kesu_harness_runner", "-f", "main"],
        home=home, env={"OUT": str(tmp_path), "PYTHONPATH": str(tmp_path), "QT_QPA_PLATFORM": "offscreen"},
        timeout=180,
    ).check()  # fmt: skip
    assert (tmp_path / "rc").read_text() == "0", r.output
    k = harness.read_kra(tmp_path / "t.kra")
    assert (k.width, k.height) == (40, 30)
    layers = [(lay.name, lay.nodetype) for lay in k.layers]
    assert layers == [("Top", "paintlayer"), ("Background", "paintlayer")]
    top = k.layer_pixels("Top")  # whole canvas, RGBA, offset applied
    assert top.pixel(5 + 3, 4 + 2) == (60, 60, 7, 255)
    assert top.pixel(4, 4)[3] == 0 and top.pixel(5 + 7, 4 + 1)[3] == 0
    assert k.layer_pixels("Background").pixel(39, 29) == (200, 100, 50, 255)
    merged = k.merged_image().to_rgba()
    assert merged.pixel(8, 6) == (60, 60, 7, 255) and merged.pixel(0, 0) == (200, 100, 50, 255)


class _RunningServer:
    returncode = None

    def poll(self):
        return None


def _scripted_runs(monkeypatch: pytest.MonkeyPatch, results: list[harness.RunResult]) -> list[list[str]]:
    calls: list[list[str]] = []

    def run_once(self, argv, home, env, timeout, cwd, stdin):
        calls.append(list(argv))
        return results[len(calls) - 1]

    monkeypatch.setattr(harness.HostChroot, "_run_once", run_once)
    monkeypatch.setattr(harness.time, "sleep", lambda seconds: None)
    return calls


def test_a_program_that_could_not_reach_the_x_server_at_once_runs_again_with_what_was_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    chroot = harness.HostChroot(root=tmp_path)
    (tmp_path / "xvfb.log").write_text("Xvfb says hello")
    chroot._displays[":9412"] = (_RunningServer(), tmp_path / "xvfb.log")
    refused = harness.RunResult(["krita"], -6, "", "qt.qpa.xcb: could not connect to display :9412", 0.2, False)
    started = harness.RunResult(["krita"], 0, "ok", "", 20.0, False)
    calls = _scripted_runs(monkeypatch, [refused, started])
    result = chroot.run(["krita"], env={"DISPLAY": ":9412"})
    assert len(calls) == 2 and result.returncode == 0
    assert "could not connect to :9412" in result.stderr and "running" in result.stderr
    assert "refuses" in result.stderr and "Xvfb says hello" in result.stderr


def test_other_failures_and_other_displays_are_not_run_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    chroot = harness.HostChroot(root=tmp_path)
    chroot._displays[":9412"] = (_RunningServer(), tmp_path / "xvfb.log")
    crashed = harness.RunResult(["krita"], 1, "", "Segmentation fault", 0.2, False)
    calls = _scripted_runs(monkeypatch, [crashed])
    assert chroot.run(["krita"], env={"DISPLAY": ":9412"}).returncode == 1 and len(calls) == 1
    not_ours = harness.RunResult(["krita"], -6, "", "could not connect to display :7", 0.2, False)
    calls = _scripted_runs(monkeypatch, [not_ours])
    assert chroot.run(["krita"], env={"DISPLAY": ":7"}).returncode == -6 and len(calls) == 1


def test_readers_are_stdlib_only() -> None:
    """The readers must stay stdlib-only (they run in CI before any venv exists)."""
    src = Path(harness.__file__).read_text()
    for banned in ("import numpy", "import PIL", "from PIL", "import torch"):
        assert banned not in src


# A throw-away plug-in pair (not Kesu's): proves that what install/install.py puts in a fresh HOME is found
# and loaded by the real hosts (own folder + executable for GIMP, pykrita + kritarc flag for Krita).
PROBE_KRITA = """
import os
from krita import Extension, Krita

if int(Krita.instance().version().split(".")[0]) >= 6:  # the running Krita's Qt binding
    from PyQt6.QtCore import QTimer
else:
    from PyQt5.QtCore import QTimer


class Probe(Extension):
    def setup(self):
        # quit through File > Quit once the window is up (QApplication.exit() crashes Krita)
        quit_action = lambda: Krita.instance().action("file_quit").trigger()  # noqa: E731
        Krita.instance().notifier().windowCreated.connect(lambda: QTimer.singleShot(500, quit_action))

    def createActions(self, window):
        window.createAction("kesu_probe_action", "Kesu probe", "tools/scripts")
        open(os.environ["KESU_PROBE_OUT"], "w").write("loaded " + Krita.instance().version())


Krita.instance().addExtension(Probe(Krita.instance()))
"""
PROBE_GIMP = """#!/usr/bin/env python3
import sys
import gi
gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GLib


class Probe(Gimp.PlugIn):
    def do_query_procedures(self):
        return ["python-fu-kesu-probe"]

    def do_create_procedure(self, name):
        proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
        proc.set_image_types("*")
        proc.set_menu_label("Kesu probe")
        proc.add_menu_path("<Image>/Filters/Text Removal")
        return proc

    def run(self, procedure, run_mode, image, drawables, config, data):
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


Gimp.main(Probe.__gtype__, sys.argv)
"""


def _probe_source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "krita_plugin/kesu").mkdir(parents=True)
    (src / "gimp_plugin/kesu").mkdir(parents=True)
    (src / "krita_plugin/kesu.desktop").write_text(
        "[Desktop Entry]\nType=Service\nServiceTypes=Krita/PythonPlugin\nX-KDE-Library=kesu\n"
        "X-Python-2-Compatible=false\nName=Kesu probe\n"
    )
    (src / "krita_plugin/kesu/__init__.py").write_text(PROBE_KRITA)
    (src / "gimp_plugin/kesu/kesu.py").write_text(PROBE_GIMP)  # not executable: the installer must fix that
    (src / "engine").mkdir()  # the plug-in client the installer copies into both plug-ins
    (src / "engine/protocol.py").write_bytes((harness.REPO / "engine/protocol.py").read_bytes())
    return src


@pytest.mark.host("gimp")
def test_installer_layout_loads_in_real_gimp(host: harness.HostChroot, tmp_path: Path) -> None:  # noqa: F811
    home = host.new_home(tmp_path)
    r = host.install_plugins(home, "gimp", engine="/usr/bin/python3", source=_probe_source(tmp_path))
    assert (home / ".config/kesu/plugin.json").is_file()
    # a HOME where GIMP never ran: the installer picks the installed GIMP's own profile folder
    assert (host.gimp_profile(home) / "plug-ins/kesu/kesu.py").is_file(), r.output
    # GIMP: the procedure is registered under the menu path and callable through the PDB
    check = "assert Gimp.get_pdb().lookup_procedure('python-fu-kesu-probe') is not None, 'not registered'"
    r = host.run(
        [host.gimp_console, "-i", "--no-data", "--no-fonts", "--batch-interpreter=python-fu-eval",
         "-b", check, "--quit"],
        home=home, timeout=300,
    ).check()  # fmt: skip
    pluginrc = (host.gimp_profile(home) / "pluginrc").read_bytes()  # holds binary icon data
    assert b'(menu-path "<Image>/Filters/Text Removal")' in pluginrc, r.output


@pytest.mark.host("krita")
def test_installer_layout_loads_in_real_krita(host: harness.HostChroot, tmp_path: Path) -> None:  # noqa: F811
    home = host.new_home(tmp_path)
    host.install_plugins(home, "krita", engine="/usr/bin/python3", source=_probe_source(tmp_path))
    assert (home / ".config/kesu/plugin.json").is_file()
    # Krita: the enabled plug-in loads and creates its action in a real window
    out = tmp_path / "krita-loaded"
    with host.xvfb() as display:
        # a first start in a fresh HOME builds Krita's resource database: 20 s here when idle, minutes when busy
        r = host.run(["krita", "--nosplash"], home=home, env={"DISPLAY": display, "KESU_PROBE_OUT": str(out)},
                     timeout=600)  # fmt: skip
    assert out.is_file(), f"exit {r.returncode}, timed out {r.timed_out} after {r.seconds:.0f}s:\n{r.output[-3000:]}"
    assert out.read_text().startswith(f"loaded {host.version}."), out.read_text()
    assert r.returncode == 0 and not r.timed_out, r.output[-3000:]
