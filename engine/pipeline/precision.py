"""Which number format the networks run in: bfloat16 where the processor computes it natively, else float32."""

from __future__ import annotations

import functools

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
