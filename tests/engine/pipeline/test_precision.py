"""bfloat16 only where the processor has it: the answer follows oneDNN's, and a build without oneDNN says no."""

import torch

from engine.pipeline import precision


def test_bfloat16_follows_onednn_and_is_asked_once(monkeypatch):
    precision.bfloat16_is_native.cache_clear()
    calls = []

    def supported():
        calls.append(1)
        return True

    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", supported)
    try:
        assert precision.bfloat16_is_native() is True
        assert precision.bfloat16_is_native() is True
        assert len(calls) == 1
    finally:
        precision.bfloat16_is_native.cache_clear()


def test_without_onednn_or_its_query_the_networks_stay_in_float32(monkeypatch):
    precision.bfloat16_is_native.cache_clear()
    try:
        monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
        assert precision.bfloat16_is_native() is False
        precision.bfloat16_is_native.cache_clear()
        monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)

        def missing():
            raise RuntimeError("no such operator")

        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", missing)
        assert precision.bfloat16_is_native() is False
    finally:
        precision.bfloat16_is_native.cache_clear()
