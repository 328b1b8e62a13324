"""kesu/qt.py picks the running Krita's Qt binding: PyQt5 in Krita 5, PyQt6 from Krita 6 on."""

from __future__ import annotations

import sys

import pytest

from tests.krita_plugin.conftest import PKG_NAME, kesu_module


@pytest.mark.parametrize(("version", "binding"), [("5.2.9", "PyQt5"), ("5.3.4", "PyQt5"), ("6.0.4", "PyQt6")])
def test_binding_follows_the_krita_version(fake_krita, monkeypatch, version, binding):
    monkeypatch.setattr(fake_krita.App, "krita_version", version)
    for b in ("PyQt5", "PyQt6"):
        for name, mod in fake_krita.pyqt5_modules(b).items():
            monkeypatch.setitem(sys.modules, name, mod)
    sys.modules.pop(f"{PKG_NAME}.qt", None)
    qt = kesu_module("qt")
    assert qt.QtCore.BINDING == binding
    assert qt.QByteArray is qt.QtCore.QByteArray and qt.Qt is qt.QtCore.Qt
