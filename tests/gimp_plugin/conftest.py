"""The GIMP plug-in imports ``kesu_protocol``, which the installer copies beside it from engine/protocol.py: the
unit tests load that one source under the plug-in's module name."""

from __future__ import annotations

from tests.conftest import load_plugin_client

load_plugin_client("kesu_protocol")
