"""kesu.logs: the log file goes to plugin.json's log_dir (the installer's Kesu log folder), else the config dir."""

from __future__ import annotations

import json

from tests.krita_plugin.conftest import kesu_module

logs = kesu_module("logs")


def test_log_goes_to_the_installers_log_folder(tmp_path, monkeypatch):
    cfg, log_dir = tmp_path / "cfg", tmp_path / "logs"
    cfg.mkdir()
    (cfg / "plugin.json").write_text(json.dumps({"python": "/x", "log_dir": str(log_dir)}))
    monkeypatch.setenv("KESU_CONFIG_DIR", str(cfg))
    logger, path = logs.get_logger()
    logger.error("engine gone: %s", "details")
    for h in logger.handlers:
        h.flush()
    assert path == log_dir / "krita-plugin.log"
    assert "ERROR engine gone: details" in path.read_text(encoding="utf-8")


def test_without_config_the_log_is_in_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KESU_CONFIG_DIR", str(tmp_path))
    assert logs.log_dir() == tmp_path
    (tmp_path / "plugin.json").write_text("{not json")
    assert logs.log_dir() == tmp_path  # a broken config never stops the logging
