"""Krita glue: the Extension, its four actions under Tools > Scripts, the progress dialog, the message boxes
and the settings dialog. The logic lives in actions.py / jobs.py / settings.py (no Krita there)."""

from __future__ import annotations

import time
import traceback
from typing import Any

from krita import Extension, Krita

from . import actions, settings
from .jobs import JobRunner
from .kesu_protocol import Client, ProtocolError, log_path, log_tail
from .krita_document import KritaDocument
from .logs import get_logger
from .messages import report_for
from .qt import Qt, QtGui, QTimer, QtWidgets

MENU = "tools/scripts"
ACTIONS = {  # action id -> (menu text, what it does)
    "kesu_detect_text": ("Detect Text", "detect"),
    "kesu_inpaint_selection": ("Inpaint Selection", "inpaint"),
    "kesu_clean_page": ("Clean Page", "clean"),
}
SETTINGS_ACTION = "kesu_settings"
POLL_MS = 50
PROGRESS_DELAY_MS = 400       # quick (warm) jobs finish before the progress dialog would flash up
ENGINE_START_TIMEOUT_S = 180  # the first start imports torch and loads the models


def _enum(owner: Any, scope: str, name: str) -> Any:
    """``owner.scope.name`` (PyQt6 scoped enums) or ``owner.name`` (PyQt5)."""
    group = getattr(owner, scope, None)
    if group is not None and hasattr(group, name):
        return getattr(group, name)
    return getattr(owner, name)


def _exec(dialog: Any) -> Any:
    return dialog.exec() if hasattr(dialog, "exec") else dialog.exec_()


class KritaSettingsStore:
    """Settings kept in Krita's own config (kritarc, group "kesu"): remembered between sessions."""

    GROUP = "kesu"

    def read(self, key: str) -> str | None:
        value = Krita.instance().readSetting(self.GROUP, key, "")
        return value or None

    def write(self, key: str, value: str) -> None:
        Krita.instance().writeSetting(self.GROUP, key, value)


# Public state for scripts and the real-host tests: whether a job runs, and what the last ones did.
_STATE: dict[str, Any] = {"busy": False}
HISTORY: list[dict[str, Any]] = []


def is_busy() -> bool:
    """True while a Kesu job is running (its progress dialog may not be visible yet)."""
    return bool(_STATE["busy"])


class KesuExtension(Extension):
    def __init__(self, parent: Any) -> None:
        super().__init__(parent)
        self._runner: JobRunner | None = None
        self._timer: QTimer | None = None
        self._dialog: Any = None
        self._job: dict[str, Any] = {}

    def setup(self) -> None:
        pass

    def createActions(self, window: Any) -> None:  # noqa: N802 (Krita's name)
        for action_id, (text, what) in ACTIONS.items():
            act = window.createAction(action_id, text, MENU)
            act.triggered.connect(lambda _checked=False, w=what: self.run_action(w))
        act = window.createAction(SETTINGS_ACTION, "Kesu Settings...", MENU)
        act.triggered.connect(self.show_settings)

    # ------------------------------------------------------------------ helpers
    def _parent(self) -> Any:
        win = Krita.instance().activeWindow()
        return win.qwindow() if win is not None else None

    def _message(self, title: str, text: str, critical: bool) -> None:
        icon = _enum(QtWidgets.QMessageBox, "Icon", "Critical" if critical else "Warning")
        box = QtWidgets.QMessageBox(icon, title, text, _enum(QtWidgets.QMessageBox, "StandardButton", "Ok"),
                                    self._parent())
        _exec(box)

    def _notice(self, text: str) -> None:
        """A short non-modal note on the canvas (Krita's floating message)."""
        try:
            view = Krita.instance().activeWindow().activeView()
            view.showFloatingMessage(text, QtGui.QIcon(), 6000, 1)
        except Exception:
            pass  # purely informative

    def _fail(self, what: str, error: BaseException) -> None:
        logger, log_file = get_logger()
        detail = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        if isinstance(error, ProtocolError):
            tail = log_tail()
            logger.error("%s failed (%s): %s\nengine log tail:\n%s", what, error.kind, error, tail)
        else:
            logger.error("%s failed: %s", what, detail)
        report = report_for(error, str(log_file), str(log_path()))
        HISTORY.append({"action": what, "ok": False, "silent": report.silent, "message": report.text})
        if report.silent:
            self._notice(report.text)
        else:
            self._message(report.title, report.text, critical=isinstance(error, ProtocolError))

    # ------------------------------------------------------------------ the three actions
    def run_action(self, what: str) -> None:
        """Detect Text / Inpaint Selection / Clean Page: read the document, start the job, return."""
        if _STATE["busy"]:
            self._message("Kesu", "Kesu is still working on the previous job: wait for it or cancel it.", False)
            return
        logger, _ = get_logger()
        t0 = time.monotonic()
        try:
            user = settings.load(KritaSettingsStore())
            doc = KritaDocument(Krita.instance())
            spec = actions.prepare(what, doc, user)
        except Exception as e:
            self._fail(what, e)
            return
        src = spec.source
        logger.info("%s on %r: %dx%d at (%d,%d) %s, options %s, text %s", what, src.name, src.rect.width,
                    src.rect.height, src.rect.x, src.rect.y, src.channels, spec.options, spec.text)
        python = user.engine_python or None

        def work(progress: Any) -> actions.Outcome:
            progress(0.0, "Connecting to the Kesu engine (its first start loads the models)")
            client = Client.connect_or_start(python=python, start_timeout=ENGINE_START_TIMEOUT_S)
            with client:
                return actions.execute(spec, client, progress)

        self._job = {"what": what, "spec": spec, "doc": doc, "t0": t0, "read_s": time.monotonic() - t0}
        self._runner = JobRunner(work).start()
        _STATE["busy"] = True
        dialog = QtWidgets.QProgressDialog(f"Kesu: {ACTION_TITLES[what]}...", "Cancel", 0, 1000, self._parent())
        dialog.setWindowTitle("Kesu")
        dialog.setWindowModality(_enum(Qt, "WindowModality", "WindowModal"))
        dialog.setMinimumDuration(PROGRESS_DELAY_MS)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.setValue(0)
        self._dialog = dialog
        self._timer = QTimer()
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._timer.start()

    def _end_job(self) -> None:
        """Stop polling and close the progress dialog. ``busy`` stays set until the job's layers are added
        and its outcome recorded (adding layers may run Krita's event loop)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._dialog is not None:
            self._dialog.close()
            self._dialog.deleteLater()
            self._dialog = None
        self._runner = None

    def _poll(self) -> None:
        if self._runner is None:
            return
        try:
            self._poll_job()
        finally:
            if self._runner is None:
                _STATE["busy"] = False

    def _poll_job(self) -> None:
        runner, dialog = self._runner, self._dialog
        snap = runner.snapshot()
        what = self._job["what"]
        if dialog is not None and dialog.wasCanceled() and not snap.done:
            runner.cancel()  # the engine is told at its next progress note; the answer is dropped
            self._end_job()
            get_logger()[0].info("%s cancelled by the user after %.1f s", what, snap.seconds)
            HISTORY.append({"action": what, "ok": False, "silent": True, "message": "cancelled"})
            self._notice("Kesu: cancelled. Your document was not changed.")
            return
        if not snap.done:
            if dialog is not None:
                dialog.setLabelText(f"Kesu: {ACTION_TITLES[what]}\n{snap.message}")
                dialog.setValue(int(snap.fraction * 1000))
            return
        job = self._job
        self._end_job()
        if snap.error is not None:
            self._fail(what, snap.error)
            return
        doc: KritaDocument = job["doc"]
        try:
            if not doc.is_open():
                raise actions.UserError("The document was closed while Kesu was working; nothing was added.")
            t_apply = time.monotonic()
            names = actions.apply(job["spec"], snap.result, doc)
        except Exception as e:
            self._fail(what, e)
            return
        seconds = time.monotonic() - job["t0"]
        note = actions.summary(job["spec"], snap.result)
        get_logger()[0].info(
            "%s done in %.2f s (read layer %.2f s, engine job %.2f s of which model %.2f s, add layers %.2f s): "
            "added %s; %s", what, seconds, job["read_s"], snap.seconds, snap.result.engine_seconds,
            time.monotonic() - t_apply, names, note)
        HISTORY.append({"action": what, "ok": True, "layers": names, "seconds": seconds, "message": note})
        self._notice(note)

    # ------------------------------------------------------------------ settings
    def show_settings(self) -> None:
        store = KritaSettingsStore()
        current = settings.load(store)
        dialog = SettingsDialog(current, self._parent())
        if _exec(dialog):
            try:
                settings.save(store, dialog.value())
            except settings.SettingsError as e:
                self._message("Kesu settings", str(e), False)


ACTION_TITLES = {"detect": "Detect Text", "inpaint": "Inpaint Selection", "clean": "Clean Page"}


class SettingsDialog(QtWidgets.QDialog):
    """Grow (px), threshold, "Include sound effects", and the engine's Python interpreter (empty = the one the
    installer set up)."""

    def __init__(self, current: settings.Settings, parent: Any = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Kesu Settings")
        form = QtWidgets.QFormLayout(self)
        self.grow = QtWidgets.QSpinBox()
        self.grow.setRange(*settings.GROW_RANGE)
        self.grow.setSuffix(" px")
        self.grow.setValue(current.grow_px)
        self.grow.setToolTip("Pixels added around the detected text before it is erased")
        form.addRow("Grow", self.grow)
        self.threshold = QtWidgets.QDoubleSpinBox()
        self.threshold.setRange(*settings.THRESHOLD_RANGE)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.threshold.setValue(current.threshold)
        self.threshold.setToolTip("Text probability at which a pixel counts as text (lower finds more)")
        form.addRow("Threshold", self.threshold)
        self.include_sfx = QtWidgets.QCheckBox("Include sound effects")
        self.include_sfx.setChecked(current.include_sfx)
        self.include_sfx.setToolTip(
            "Clean Page erases sound effects (text drawn as part of the artwork) as well as dialogue, and Detect "
            "Text shows their \"SFX Mask\" layer. Off: they are kept, and their mask is added hidden")
        form.addRow("", self.include_sfx)
        row = QtWidgets.QHBoxLayout()
        self.engine = QtWidgets.QLineEdit(current.engine_python)
        self.engine.setPlaceholderText("the engine the Kesu installer set up")
        browse = QtWidgets.QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        row.addWidget(self.engine)
        row.addWidget(browse)
        form.addRow("Engine Python", row)
        buttons = QtWidgets.QDialogButtonBox(
            _enum(QtWidgets.QDialogButtonBox, "StandardButton", "Ok")
            | _enum(QtWidgets.QDialogButtonBox, "StandardButton", "Cancel"))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "The Kesu engine's Python interpreter")
        if path:
            self.engine.setText(path)

    def value(self) -> settings.Settings:
        return settings.Settings(self.grow.value(), round(self.threshold.value(), 2), self.engine.text(),
                                 self.include_sfx.isChecked())
