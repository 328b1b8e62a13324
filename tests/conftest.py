"""Shared fixtures: tiny random-initialised weights folders (no real weights needed for the fast tests)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

PLUGIN_CLIENT = Path(__file__).resolve().parents[1] / "engine" / "protocol.py"


def load_plugin_client(name: str):
    """The one plug-in client (engine/protocol.py) loaded under ``name``, the module name it has inside an
    installed plug-in (the installer copies it there; git holds only engine/protocol.py)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, PLUGIN_CLIENT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


TINY_TEXTSEG = {"in_channels": 1, "width": 0.35, "rfb_channels": 32, "decoder_channels": 16}
TINY_UNET = {"in_channels": 3, "channels": [8, 16, 16], "first_kernel": 3}


def make_tiny_weights(folder, seed: int = 0, text_bias: float | tuple[float, ...] | None = None,
                      out_channels: int = 1):
    """Write a weights folder with tiny random models. ``out_channels``: the detector's kinds of text (1, or 2:
    lettering and sound effects). ``text_bias`` forces the detector's output logit (one for every channel, or
    one per channel)."""
    from engine.models import build_model
    from engine.weights import save_weights

    torch.manual_seed(seed)
    kwargs = dict(TINY_TEXTSEG, out_channels=out_channels) if out_channels != 1 else TINY_TEXTSEG
    seg = build_model("textseg", **kwargs)
    if text_bias is not None:
        with torch.no_grad():
            seg.decoder.head.weight.zero_()
            seg.decoder.head.bias.copy_(torch.as_tensor(text_bias, dtype=torch.float32).expand(out_channels))
    save_weights(seg, "textseg", "textseg.tiny.test", "textseg", kwargs, folder)
    save_weights(build_model("pconv_unet", **TINY_UNET), "inpaint", "inpaint.tiny.test", "pconv_unet",
                 TINY_UNET, folder)
    return folder


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    return make_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture()
def rng():
    return np.random.default_rng(1234)


def pytest_generate_tests(metafunc):
    """Real-host tests run once per host version their marker names (``[krita-5.2]``, ``[krita-6.0]``, ...)."""
    if "host" in metafunc.fixturenames:
        from tests.hosts import harness

        harness.parametrize_host(metafunc)


def pytest_collection_modifyitems(config, items):
    """Tag real-host tests in the JUnit report so CI can prove they ran on every host version (``.ci/run``
    reads the tags: ``kesu_host_test`` and ``kesu_host``, e.g. ``krita-6.0``)."""
    for item in items:
        if item.get_closest_marker("host") is not None:
            item.user_properties.append(("kesu_host_test", "1"))
            callspec = getattr(item, "callspec", None)
            app = callspec.params.get("host") if callspec is not None else None
            if app is not None:
                item.user_properties.append(("kesu_host", app.id))
