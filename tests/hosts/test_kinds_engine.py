"""The stand-in engine of the real-host kinds tests (tests/hosts/kinds_engine.py), started the way the plug-ins
start an engine: its masks are exactly the test page's kinds, and the rest is the real server."""

from __future__ import annotations

import numpy as np
import pytest

from engine.protocol import Client
from tests.conftest import make_tiny_weights
from tests.hosts import harness
from tests.hosts.kinds_engine import kinds_by_colour, kinds_page, write_launcher


def test_kinds_by_colour_on_the_test_page():
    rgb, lettering, sfx = kinds_page()
    prob = kinds_by_colour(rgb)
    assert np.array_equal(prob["lettering"] > 0.5, lettering) and np.array_equal(prob["sfx"] > 0.5, sfx)
    assert lettering.sum() > 500 and sfx.sum() > 500 and not (lettering & sfx).any()
    grey = np.repeat(rgb.mean(axis=2, keepdims=True).round().astype(np.uint8), 3, axis=2)
    assert not (kinds_by_colour(grey)["sfx"] > 0).any()  # a grey page has no colour: no sound effects


def test_the_launcher_runs_the_stand_in_server(tmp_path):
    python = harness.engine_python()
    if python is None:
        pytest.skip("no engine environment (.venv) to run the stand-in with")
    launcher = write_launcher(tmp_path / "engine-python", python)
    rgb, lettering, sfx = kinds_page()
    h, w = lettering.shape
    client = Client.connect_or_start(python=str(launcher), cfg_dir=tmp_path / "cfg",
                                     weights_dir=str(make_tiny_weights(tmp_path / "w")), start_timeout=120)
    try:
        with client:
            found = client.run("detect", rgb.tobytes(), w, h, "RGB", kind_masks=True)
        masks = {k: np.frombuffer(m, np.uint8).reshape(h, w) > 0 for k, m in found["kind_masks"].items()}
        assert np.array_equal(masks["dialogue"], lettering) and np.array_equal(masks["sfx"], sfx)
        assert np.array_equal(np.frombuffer(found["mask"], np.uint8).reshape(h, w) > 0, lettering)
        with Client.connect(tmp_path / "cfg") as again:
            cleaned = again.run("clean", rgb.tobytes(), w, h, "RGB", text="all", options={"grow_px": 0})
        changed = np.frombuffer(cleaned["pixels"], np.uint8).reshape(h, w, 4)[:, :, 3] > 0
        assert np.array_equal(changed, lettering | sfx)
    finally:
        with Client.connect(tmp_path / "cfg") as last:
            last.stop()
    assert "kinds of text by ink colour" in (tmp_path / "cfg" / "server.log").read_text()
