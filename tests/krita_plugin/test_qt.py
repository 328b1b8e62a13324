"""kesu/qt.py picks the running Krita's Qt binding: PyQt5 in Krita 5, PyQt6 from Krita 6 on."""

from __future__ import annotations

import sys

import pytest

from tests.krita_plugin import fake_krita as fk
from tests.krita_plugin.conftest import PKG_NAME, kesu_module, load_kesu


@pytest.mark.parametrize(("version", "binding"), [("5.2.9", "PyQt5"), ("5.3.4", "PyQt5"), ("6.0.4", "PyQt6")])
def test_binding_follows_the_krita_version(monkeypatch, version, binding):
    load_kesu()  # the package first, outside "Krita" (it registers nothing then)
    monkeypatch.setitem(sys.modules, "krita", fk.krita_module())
    monkeypatch.setattr(fk.App, "krita_version", version)
    for b in ("PyQt5", "PyQt6"):
        for name, mod in fk.pyqt5_modules(b).items():
            monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delitem(sys.modules, f"{PKG_NAME}.qt", raising=False)
    qt = kesu_module("qt")
    assert qt.QtCore.BINDING == binding
    assert qt.QByteArray is qt.QtCore.QByteArray and qt.Qt is qt.QtCore.Qt
