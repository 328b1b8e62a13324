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


def test_the_bfloat16_twin_is_made_once_and_remade_when_the_weights_change():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)).eval()
    twin = precision.bfloat16_twin(model)
    assert twin is not model and all(t.dtype == torch.bfloat16 for t in twin.state_dict().values()
                                     if t.is_floating_point())
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the model itself is left alone
    assert precision.bfloat16_twin(model) is twin
    assert precision.bfloat16_twin(twin) is twin  # a twin is its own twin
    x = torch.rand(1, 1, 8, 8)
    assert torch.allclose(twin(x.bfloat16()).float(), model(x), atol=0.05)
    with torch.no_grad():
        model[0].weight.add_(1.0)  # e.g. a training step
    remade = precision.bfloat16_twin(model)
    assert remade is not twin
    assert torch.allclose(remade[0].weight.float(), model[0].weight, atol=0.02)


def test_a_model_made_under_inference_mode_gets_a_twin_too():
    with torch.inference_mode():
        model = torch.nn.Conv2d(1, 2, 3)
    twin = precision.bfloat16_twin(model)
    assert twin.weight.dtype == torch.bfloat16 and precision.bfloat16_twin(model) is twin
