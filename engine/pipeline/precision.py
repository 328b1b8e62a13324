"""Which number format the networks run in: bfloat16 where the processor computes it natively, else float32."""

from __future__ import annotations

import copy
import functools
import weakref

import torch


@functools.cache
def bfloat16_is_native() -> bool:
    """Whether this processor computes bfloat16 convolutions natively (AVX-512 BF16, AMX).

    There the detector takes about 55% and the inpainting network about 70% of their float32 time (measured with
    `kesu bench`); elsewhere bfloat16 is emulated and slower than float32, which is then used.
    """
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


# model -> (its parameters' version counters when the twin was made, the twin)
_TWINS: weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple[int, ...], torch.nn.Module]] = (
    weakref.WeakKeyDictionary()
)


def bfloat16_twin(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` with its parameters and buffers in bfloat16, made once and reused while the model's
    parameters are unchanged (their in-place version counters say so).

    Run on bfloat16 inputs, the network's features stay in bfloat16 from layer to layer; under autocast each
    layer would convert its input and weights from float32 and back again (a third of the inpainting network's
    time went to those copies).
    """
    if all(p.dtype == torch.bfloat16 for p in model.parameters()):
        return model  # already a twin
    versions = _versions(model)
    cached = _TWINS.get(model)
    if cached is not None and cached[0] == versions:
        return cached[1]
    twin = copy.deepcopy(model).to(torch.bfloat16).eval()
    twin.requires_grad_(False)
    _TWINS[model] = (versions, twin)
    return twin


def _versions(model: torch.nn.Module) -> tuple[int, ...]:
    """The in-place version counters of ``model``'s parameters; () for a model made under ``torch.inference_mode``,
    whose tensors keep none (it is taken as frozen)."""
    try:
        return tuple(p._version for p in model.parameters())
    except RuntimeError:  # "Inference tensors do not track version counter"
        return ()
