"""The plug-in's files: what a GIMP 3 plug-in must be, and the project's import boundary."""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[3] / "gimp_plugin" / "kesu"
ALLOWED_GI = {"Gimp", "GimpUi", "Gegl", "GLib", "GObject"}
OWN = {"kesu_core", "kesu_protocol"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if node.module == "gi.repository":
                out |= {f"gi.repository.{a.name}" for a in node.names}
            else:
                out.add(node.module)
    return out


@pytest.mark.parametrize("name", ["kesu.py", "kesu_core.py"])
def test_only_stdlib_gi_and_own_modules(name):
    bad = set()
    for mod in imports(PLUGIN / name):
        top = mod.split(".")[0]
        if mod.startswith("gi.repository."):
            if mod.rsplit(".", 1)[1] not in ALLOWED_GI:
                bad.add(mod)
        elif top == "gi" or top in OWN or top in sys.stdlib_module_names or top == "__future__":
            continue
        else:
            bad.add(mod)
    assert not bad, f"{name} imports {bad}: plug-ins may use only the stdlib and gi"


def test_core_does_not_import_gi():
    assert not any(m.split(".")[0] == "gi" for m in imports(PLUGIN / "kesu_core.py"))


def test_entry_point_is_a_gimp3_plugin():
    main = PLUGIN / "kesu.py"
    assert main.read_text(encoding="utf-8").startswith("#!/usr/bin/env python3\n")
    assert os.access(main, os.X_OK), "GIMP silently skips a plug-in that is not executable"
    assert "Gimp.main(Kesu.__gtype__, sys.argv)" in main.read_text(encoding="utf-8")
