"""Model registry: ``build_model(arch, **kwargs)``; an unknown name lists the valid ones."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from engine.models.pconv import PartialConv2d, PConvUNet
from engine.models.textseg import TextSegNet

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "textseg": TextSegNet,
    "pconv_unet": PConvUNet,
}


def build_model(arch: str, **kwargs) -> nn.Module:
    """Build a model by architecture name with the given constructor arguments."""
    try:
        builder = ARCHITECTURES[arch]
    except KeyError:
        valid = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown model architecture {arch!r}; valid names: {valid}") from None
    return builder(**kwargs)


__all__ = ["ARCHITECTURES", "build_model", "PartialConv2d", "PConvUNet", "TextSegNet"]
