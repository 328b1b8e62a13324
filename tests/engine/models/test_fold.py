"""Batch-norm folding: the folded model computes what the unfolded one did, without any BatchNorm2d left."""

from __future__ import annotations

import torch
from torch import nn

from engine.models import build_model
from engine.models.fold import fold_batchnorm


def _randomise_statistics(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_folded_textseg_equals_the_original():
    torch.manual_seed(0)
    model = build_model("textseg", width=0.5, rfb_channels=32, decoder_channels=16).eval()
    _randomise_statistics(model)
    x = torch.rand(2, 1, 64, 96)
    with torch.no_grad():
        expected = model(x)
        folded = fold_batchnorm(model)
        got = folded(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()


def test_partial_convolutions_are_left_alone():
    model = build_model("pconv_unet", in_channels=3, channels=[8, 16], first_kernel=3).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fold_batchnorm(model)
    after = model.state_dict()
    convs = [k for k in before if k.endswith("weight") and before[k].ndim == 4]
    assert convs and all(torch.equal(before[k], after[k]) for k in convs)
