"""kesu.jobs: the worker thread reports progress, results and errors, and honours cancel."""

from __future__ import annotations

import threading

from tests.krita_plugin.conftest import kesu_module

jobs = kesu_module("jobs")


def test_result_and_progress():
    seen = threading.Event()

    def work(progress):
        assert progress(0.25, "Detecting text") is True
        seen.set()
        return {"answer": 42}

    r = jobs.JobRunner(work).start()
    assert r.wait(10)
    snap = r.snapshot()
    assert snap.done and not snap.cancelled and snap.error is None
    assert snap.result == {"answer": 42} and snap.fraction == 0.25 and snap.message == "Detecting text"


def test_error_is_handed_over_not_raised():
    def work(progress):
        raise OSError("engine gone")

    r = jobs.JobRunner(work).start()
    assert r.wait(10)
    snap = r.snapshot()
    assert snap.done and isinstance(snap.error, OSError) and snap.result is None


def test_cancel_makes_progress_answer_false():
    started, answers = threading.Event(), []
    release = threading.Event()

    def work(progress):
        started.set()
        release.wait(10)
        answers.append(progress(0.5, "x"))
        return None

    r = jobs.JobRunner(work).start()
    assert started.wait(10)
    assert not r.snapshot().done  # the GUI is never blocked while the job runs
    r.cancel()
    release.set()
    assert r.wait(10)
    assert answers == [False] and r.snapshot().cancelled


def test_progress_is_clamped_and_monotonic():
    def work(progress):
        progress(0.6, "a")
        progress(0.2, "")  # a late, lower note does not move the bar back
        progress(7.0, "b")

    r = jobs.JobRunner(work).start()
    r.wait(10)
    snap = r.snapshot()
    assert snap.fraction == 1.0 and snap.message == "b"
