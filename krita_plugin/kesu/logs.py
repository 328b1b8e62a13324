"""The plug-in's log file: ``<log_dir>/krita-plugin.log`` (log_dir from plugin.json, else the config folder)."""

from __future__ import annotations

import logging
from pathlib import Path

from .kesu_protocol import ProtocolError, config_dir, load_plugin_config

LOG_NAME = "krita-plugin.log"
_LOGGER = "kesu.krita"


def log_dir() -> Path:
    """The Kesu log folder the installer chose (plugin.json ``log_dir``), else the Kesu config folder."""
    try:
        folder = load_plugin_config().get("log_dir")
    except ProtocolError:
        folder = None
    return Path(folder) if folder else config_dir()


def get_logger() -> tuple[logging.Logger, Path]:
    """The plug-in logger writing to the log file (created on first use), and that file's path."""
    path = log_dir() / LOG_NAME
    logger = logging.getLogger(_LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not any(getattr(h, "kesu_path", None) == str(path) for h in logger.handlers):
        for h in list(logger.handlers):
            logger.removeHandler(h)
            h.close()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        except OSError:
            handler = logging.StreamHandler()  # Krita's stderr; better than losing the details
        handler.kesu_path = str(path)  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    return logger, path
