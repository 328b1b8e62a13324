"""The plug-in imports only the stdlib, krita and PyQt; its protocol module is not kept in git beside it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "krita_plugin" / "kesu"


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_stdlib_krita_and_pyqt():
    allowed = set(sys.stdlib_module_names) | {"krita", "PyQt5", "PyQt6"}
    files = sorted(PKG.glob("*.py"))
    assert len(files) >= 8
    for f in files:
        bad = imported_roots(f) - allowed
        assert not bad, f"{f.name} imports {bad}"


def test_pure_modules_do_not_import_krita_or_qt():
    for name in ("pixels", "settings", "jobs", "actions", "messages"):
        roots = imported_roots(PKG / f"{name}.py")
        assert not roots & {"krita", "PyQt5", "PyQt6"}, name


def test_the_client_is_imported_from_the_copy_the_installer_makes():
    # engine/protocol.py is the one source; install/install.py copies it in as kesu_protocol.py
    assert not (PKG / "kesu_protocol.py").exists()
    users = [f.name for f in PKG.glob("*.py") if "from .kesu_protocol import" in f.read_text(encoding="utf-8")]
    assert {"actions.py", "extension.py", "settings.py"} <= set(users)


def test_desktop_file_names_the_package():
    text = (REPO / "krita_plugin" / "kesu.desktop").read_text(encoding="utf-8")
    assert "ServiceTypes=Krita/PythonPlugin" in text and "X-KDE-Library=kesu\n" in text
    assert (PKG / "__init__.py").is_file()
