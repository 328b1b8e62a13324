"""Load the Krita plug-in package from krita_plugin/kesu for unit tests (outside Krita it registers nothing).

It is loaded under its own name (not ``kesu``) so it can never clash with the GIMP plug-in's modules in the
same pytest process.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

from tests.conftest import load_plugin_client

PKG_DIR = Path(__file__).resolve().parents[2] / "krita_plugin" / "kesu"
PKG_NAME = "kesu_krita_under_test"


def load_kesu():
    """The plug-in package (``__init__`` finds no ``krita`` module, so it only defines the package)."""
    if PKG_NAME in sys.modules:
        return sys.modules[PKG_NAME]
    spec = importlib.util.spec_from_file_location(PKG_NAME, PKG_DIR / "__init__.py",
                                                  submodule_search_locations=[str(PKG_DIR)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[PKG_NAME] = mod
    # the installer copies the plug-in client into the package as kesu_protocol.py: load the one source there
    mod.kesu_protocol = load_plugin_client(f"{PKG_NAME}.kesu_protocol")
    spec.loader.exec_module(mod)
    return mod


def kesu_module(name: str):
    load_kesu()
    return importlib.import_module(f"{PKG_NAME}.{name}")


@pytest.fixture()
def fake_krita(monkeypatch):
    """Install the fake ``krita`` and ``PyQt5`` modules, then (re)import the Krita-facing modules."""
    from tests.krita_plugin import fake_krita as fk

    monkeypatch.setitem(sys.modules, "krita", fk.krita_module())
    for name, mod in fk.pyqt5_modules().items():
        monkeypatch.setitem(sys.modules, name, mod)
    load_kesu()
    for sub in ("qt", "krita_document"):
        sys.modules.pop(f"{PKG_NAME}.{sub}", None)
    yield fk
    for sub in ("qt", "krita_document"):
        sys.modules.pop(f"{PKG_NAME}.{sub}", None)
