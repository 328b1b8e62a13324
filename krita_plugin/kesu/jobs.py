"""Run one blocking engine job on a worker thread and let the GUI poll it (stdlib only, no Qt).

The GUI thread starts a :class:`JobRunner`, then polls ``snapshot()`` from a timer to move a progress bar;
Cancel calls ``cancel()``: the next progress note from the engine answers "stop" (the protocol then cancels
the job on the server), and the GUI drops whatever comes back. Nothing here touches the document.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Progress = Callable[[float, str], bool]
Work = Callable[[Progress], Any]


@dataclass(frozen=True)
class Snapshot:
    """What the GUI shows: ``fraction`` in [0, 1], ``message``, ``done``; when done, ``result`` or ``error``."""

    fraction: float
    message: str
    done: bool
    cancelled: bool
    result: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


class JobRunner:
    """Runs ``work(progress)`` on a daemon thread. ``progress(fraction, message)`` returns False once cancelled."""

    def __init__(self, work: Work, first_message: str = "Starting") -> None:
        self._work = work
        self._lock = threading.Lock()
        self._fraction = 0.0
        self._message = first_message
        self._done = False
        self._cancel = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        self._t0 = 0.0
        self._t1: float | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> JobRunner:
        if self._thread is not None:
            raise RuntimeError("a JobRunner runs once")
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="kesu-job", daemon=True)
        self._thread.start()
        return self

    def _progress(self, fraction: float, message: str) -> bool:
        with self._lock:
            self._fraction = max(self._fraction, min(1.0, max(0.0, float(fraction))))
            if message:
                self._message = message
        return not self._cancel.is_set()

    def _run(self) -> None:
        try:
            result = self._work(self._progress)
            with self._lock:
                self._result = result
        except BaseException as e:  # handed to the GUI thread, which reports it
            with self._lock:
                self._error = e
        finally:
            with self._lock:
                self._done = True
                self._t1 = time.monotonic()

    def cancel(self) -> None:
        """Ask the job to stop; the GUI should stop waiting at once (the result, if any, is dropped)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def snapshot(self) -> Snapshot:
        with self._lock:
            end = self._t1 if self._t1 is not None else time.monotonic()
            return Snapshot(self._fraction, self._message, self._done, self._cancel.is_set(), self._result,
                            self._error, end - self._t0)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ended (tests and scripts only; the GUI polls). True when it ended."""
        if self._thread is None:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()
