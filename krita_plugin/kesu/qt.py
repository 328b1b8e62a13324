"""The Qt binding of the running Krita: PyQt5 for Krita 5, PyQt6 for Krita 6 (never both in one process)."""

from __future__ import annotations

try:
    from krita import Krita

    _MAJOR = int(str(Krita.instance().version()).split(".")[0])
except Exception:  # outside Krita (unit tests) or an odd version string
    _MAJOR = 5

if _MAJOR >= 6:  # Krita 6 (Qt 6)
    from PyQt6 import QtCore, QtGui, QtWidgets
else:
    from PyQt5 import QtCore, QtGui, QtWidgets

QByteArray = QtCore.QByteArray
QTimer = QtCore.QTimer
Qt = QtCore.Qt

__all__ = ["QtCore", "QtGui", "QtWidgets", "QByteArray", "QTimer", "Qt"]
