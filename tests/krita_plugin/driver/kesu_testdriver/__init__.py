"""Real-host test driver (never shipped): runs the steps of ``$KESU_TEST_PLAN`` in a real Krita, then quits.

It uses the same paths a user does: documents opened in a window, the Kesu actions triggered through
``Krita.instance().action(id).trigger()`` (what the menu entry calls), message boxes read and closed like a
user would. Results go to ``<out>/results.json`` and ``<out>/rc`` (0 = every step ran).
"""

import json
import os
import sys
import time
import traceback

from krita import Extension, Krita, Selection

if int(Krita.instance().version().split(".")[0]) >= 6:  # the running Krita's Qt binding: PyQt6 in Krita 6
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication, QMessageBox, QProgressDialog
else:
    from PyQt5.QtCore import QTimer
    from PyQt5.QtWidgets import QApplication, QMessageBox, QProgressDialog

TICK_MS = 50


def _tree(nodes):
    """Layer tree, top first: [name, type, [children]]."""
    return [[n.name(), n.type(), _tree(n.childNodes())] for n in reversed(nodes)]


class Driver:
    def __init__(self, plan_path):
        with open(plan_path, encoding="utf-8") as f:
            self.plan = json.load(f)
        self.out = self.plan["out"]
        self.steps = list(self.plan["steps"])
        self.results = {"steps": [], "messages": [], "errors": []}
        self.doc = None
        self.docs = {}
        self.in_step = False
        self.waiting = None  # (label, t0) while a Kesu job runs
        self.pending_shot = None
        self.timer = QTimer()
        self.timer.timeout.connect(self.tick)
        # Qt never re-enters a timer's own slot, and a message box opened inside a step runs a nested event
        # loop inside tick(): a second timer closes the boxes.
        self.box_timer = QTimer()
        self.box_timer.timeout.connect(self._close_message_boxes)
        self.deadline = time.monotonic() + float(self.plan.get("timeout", 600))

    def start(self):
        self.timer.start(TICK_MS)
        self.box_timer.start(TICK_MS)

    # -------------------------------------------------------------- main loop
    def tick(self):
        self._close_message_boxes()
        if time.monotonic() > self.deadline:
            self.results["errors"].append("driver timeout")
            self.finish(1)
            return
        if self.waiting is not None:
            from kesu import extension

            if extension.is_busy():
                self._maybe_cancel()
                return
            label, t0 = self.waiting
            self.waiting = None
            self._record(label, t0)
            return
        if self.pending_shot is not None:
            return
        if not self.steps:
            self.finish(0 if not self.results["errors"] else 1)
            return
        step = self.steps.pop(0)
        sys.stderr.write(f"kesu_testdriver: step {step}\n")
        self.in_step = True
        try:
            getattr(self, "do_" + step["do"])(step)
        except Exception:
            self.results["errors"].append(f"step {step}: {traceback.format_exc()}")
            sys.stderr.write(traceback.format_exc())
        finally:
            self.in_step = False

    def _close_message_boxes(self):
        for w in QApplication.topLevelWidgets():
            if isinstance(w, QMessageBox) and w.isVisible():
                sys.stderr.write(f"kesu_testdriver: closing message box {w.windowTitle()!r}\n")
                self.results["messages"].append({"title": w.windowTitle(), "text": w.text(),
                                                 "at_step": len(self.results["steps"])})
                w.done(0)

    def _maybe_cancel(self):
        """Press Cancel on Kesu's progress dialog once it is shown and ``cancel_after`` seconds passed."""
        step = getattr(self, "cancel_step", None)
        if not step or time.monotonic() - self.waiting[1] < step["cancel_after"]:
            return
        for w in QApplication.topLevelWidgets():
            if isinstance(w, QProgressDialog) and w.isVisible():
                self.cancel_step = None
                if step.get("shot"):
                    QApplication.primaryScreen().grabWindow(0).save(step["shot"], "PNG")
                self.results["cancel_label"] = w.labelText()
                w.cancel()
                return

    def _record(self, label, t0):
        from kesu import extension

        doc = self.doc
        self.results["steps"].append({
            "label": label,
            "active": getattr(self, "active_at_trigger", None),
            "seconds": time.monotonic() - t0,
            "history": extension.HISTORY[-1] if extension.HISTORY else None,
            "layers": _tree(doc.topLevelNodes()) if doc is not None else None,
        })

    # -------------------------------------------------------------- steps
    def do_check_actions(self, step):
        app = Krita.instance()
        found = {}
        for action_id in step["ids"]:
            a = app.action(action_id)
            found[action_id] = a.text() if a is not None else None
        self.results["actions"] = found

    def do_open(self, step):
        app = Krita.instance()
        doc = app.openDocument(step["path"])
        if doc is None:
            raise RuntimeError(f"cannot open {step['path']}")
        app.activeWindow().addView(doc)
        app.setActiveDocument(doc)
        doc.waitForDone()
        self.doc = doc
        self.docs[step.get("name", step["path"])] = doc

    def do_close_all(self, step):
        for d in Krita.instance().documents():
            d.setModified(False)
            d.close()
        self.doc = None

    def do_activate(self, step):
        node = self.doc.nodeByName(step["layer"])
        self.doc.setActiveNode(node)

    def do_set_visible(self, step):
        """Show or hide layer ``layer`` (its eye in the Layers docker)."""
        self.doc.nodeByName(step["layer"]).setVisible(step["visible"])
        self.doc.refreshProjection()
        self.doc.waitForDone()

    def do_move(self, step):
        self.doc.nodeByName(step["layer"]).move(step["x"], step["y"])
        self.doc.waitForDone()

    def do_wrap_in_group(self, step):
        """Put layer ``layer`` into a new group ``group`` (a copy moved in, the original removed)."""
        node = self.doc.nodeByName(step["layer"])
        root = self.doc.rootNode()
        group = self.doc.createGroupLayer(step["group"])
        root.addChildNode(group, node)
        copy = node.duplicate()
        group.addChildNode(copy, None)
        node.remove()
        copy.setName(step["layer"])
        self.doc.refreshProjection()
        self.doc.waitForDone()

    def do_convert(self, step):
        self.doc.setColorSpace(step["model"], step["depth"], "")
        self.doc.waitForDone()

    def do_write_json(self, step):
        with open(step["path"], "w", encoding="utf-8") as f:
            json.dump(step["data"], f)

    def do_settings(self, step):
        """Open Tools > Scripts > Kesu Settings..., set the values the step names, press OK (like a user);
        records the values the dialog showed when it opened."""
        def fill():
            for w in QApplication.topLevelWidgets():
                if w.windowTitle() == "Kesu Settings" and w.isVisible():
                    self.results.setdefault("settings_shown", []).append(
                        {"grow": w.grow.value(), "threshold": round(w.threshold.value(), 2),
                         "include_sfx": w.include_sfx.isChecked()})
                    if "grow" in step:
                        w.grow.setValue(step["grow"])
                    if "threshold" in step:
                        w.threshold.setValue(step["threshold"])
                    if "include_sfx" in step:
                        w.include_sfx.setChecked(step["include_sfx"])
                    w.accept()
                    return
            QTimer.singleShot(100, fill)

        QTimer.singleShot(100, fill)
        Krita.instance().action("kesu_settings").trigger()

    def do_select(self, step):
        sel = Selection()
        x, y, w, h = step["rect"]
        sel.select(x, y, w, h, 255)
        self.doc.setSelection(sel)

    def do_deselect(self, step):
        Krita.instance().action("deselect").trigger()

    def do_trigger(self, step):
        from kesu import extension

        active = self.doc.activeNode() if self.doc is not None else None
        self.active_at_trigger = active.name() if active is not None else None
        t0 = time.monotonic()
        Krita.instance().action(step["action"]).trigger()
        self.cancel_step = step if "cancel_after" in step else None
        if extension.is_busy():
            self.waiting = (step["label"], t0)
        else:  # refused at once (message box, already closed by the nested tick)
            self._record(step["label"], t0)

    def do_save(self, step):
        self.doc.setBatchmode(True)
        ok = self.doc.saveAs(step["path"])
        self.doc.waitForDone()
        self.doc.setBatchmode(False)
        if not ok:
            raise RuntimeError(f"saveAs {step['path']} failed")

    def do_screenshot(self, step):
        qwin = Krita.instance().activeWindow().qwindow()
        qwin.showMaximized()
        self.pending_shot = step
        if step.get("menu"):
            QTimer.singleShot(1000, self._menu_step1)
        else:
            QTimer.singleShot(1000, self._grab)

    def _menu_step1(self):
        mb = Krita.instance().activeWindow().qwindow().menuBar()
        tools = [a for a in mb.actions() if a.text().replace("&", "") == "Tools"][0]
        mb.setActiveAction(tools)
        QTimer.singleShot(700, lambda: self._menu_step2(tools))

    def _menu_step2(self, tools):
        menu = tools.menu()
        scripts = [a for a in menu.actions() if a.text().replace("&", "") == "Scripts"][0]
        menu.setActiveAction(scripts)
        scripts.menu().popup(menu.mapToGlobal(menu.actionGeometry(scripts).topRight()))
        QTimer.singleShot(700, self._grab)

    def _grab(self):
        step, self.pending_shot = self.pending_shot, None
        QApplication.primaryScreen().grabWindow(0).save(step["path"], "PNG")
        for w in QApplication.topLevelWidgets():  # close an open menu again
            if w.inherits("QMenu") and w.isVisible():
                w.close()

    # -------------------------------------------------------------- the end
    def finish(self, rc):
        self.timer.stop()
        self.box_timer.stop()
        with open(os.path.join(self.out, "results.json"), "w", encoding="utf-8") as f:
            json.dump(self.results, f, indent=1)
        with open(os.path.join(self.out, "rc"), "w") as f:
            f.write(f"{rc}\n")
        sys.stderr.flush()
        for d in Krita.instance().documents():
            d.setModified(False)
        QTimer.singleShot(0, lambda: Krita.instance().action("file_quit").trigger())


class DriverExtension(Extension):
    def __init__(self, parent):
        super().__init__(parent)
        self.driver = None

    def setup(self):
        plan = os.environ.get("KESU_TEST_PLAN")
        if plan:
            Krita.instance().notifier().windowCreated.connect(lambda: QTimer.singleShot(500, self._go))

    def _go(self):
        if self.driver is None:
            self.driver = Driver(os.environ["KESU_TEST_PLAN"])
            self.driver.start()

    def createActions(self, window):
        pass


Krita.instance().addExtension(DriverExtension(Krita.instance()))
