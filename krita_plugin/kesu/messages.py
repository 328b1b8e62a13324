"""Turn any failure into what the user reads (a message box) and what goes in the log (stdlib only)."""

from __future__ import annotations

from dataclasses import dataclass

from .actions import UserError
from .kesu_protocol import ProtocolError
from .pixels import UnsupportedLayout
from .settings import SettingsError

TITLES = {
    "not_installed": "Kesu engine not installed",
    "start": "Kesu engine could not start",
    "not_running": "Kesu engine not running",
    "connection": "Kesu engine connection lost",
    "timeout": "Kesu engine timed out",
    "weights": "Kesu model weights problem",
    "version": "Kesu engine version mismatch",
    "config": "Kesu configuration problem",
    "too_large": "Image too large for Kesu",
    "input": "Kesu cannot use this image",
}


@dataclass(frozen=True)
class Report:
    """``title`` and ``text`` for a message box; ``silent`` when nothing should pop up (user cancelled);
    ``log_details``: True when the log has more (a traceback, the engine's log)."""

    title: str
    text: str
    silent: bool = False
    log_details: bool = True


def report_for(error: BaseException, log_file: str, engine_log: str) -> Report:
    """The message for ``error``. Every message ends by saying the document was not changed."""
    unchanged = "Your document was not changed."
    if isinstance(error, (UserError, UnsupportedLayout, SettingsError)):
        return Report("Kesu", f"{error}", log_details=False)
    if isinstance(error, ProtocolError):
        if error.kind in ("cancelled", "stopped"):
            return Report("Kesu", f"Cancelled. {unchanged}", silent=True, log_details=False)
        title = TITLES.get(error.kind, "Kesu engine error")
        return Report(title, f"{error}\n\n{unchanged}\nDetails: {log_file}\nEngine log: {engine_log}")
    return Report(
        "Kesu: unexpected error",
        f"Kesu hit an unexpected problem ({type(error).__name__}: {error}). {unchanged}\n"
        f"Please report it with the log file: {log_file}",
    )
