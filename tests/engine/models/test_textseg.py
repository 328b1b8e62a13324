import pytest
import torch

from engine.models import ARCHITECTURES, build_model
from engine.models.textseg import TextSegNet, make_divisible


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("width", [0.35, 1.0])
def test_shapes_and_backward(in_channels, width):
    net = TextSegNet(in_channels, width, rfb_channels=32, decoder_channels=16)
    x = torch.rand(2, in_channels, 64, 40)
    logits = net(x)
    assert logits.shape == (2, 1, 64, 40)
    logits.mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_encoder_returns_stride_4_and_stride_8_features():
    net = TextSegNet(1, 1.0)
    low, deep = net.encoder(torch.rand(1, 1, 64, 64))
    assert low.shape[-2:] == (16, 16) and low.shape[1] == 24
    assert deep.shape[-2:] == (8, 8) and deep.shape[1] == 320


def test_errors_say_the_fix():
    net = TextSegNet(1, 0.35)
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.rand(1, 1, 60, 64))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        net(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="1 \\(grey\\) or 3"):
        TextSegNet(2)


def test_registry_lists_valid_names():
    assert set(ARCHITECTURES) == {"textseg", "pconv_unet"}
    with pytest.raises(ValueError, match="valid names: pconv_unet, textseg"):
        build_model("unet++")


@pytest.mark.parametrize("value,expected", [(32, 32), (32 * 0.35, 16), (24 * 0.5, 16), (320 * 1.4, 448), (4, 8)])
def test_make_divisible(value, expected):
    assert make_divisible(value) == expected


def test_two_output_channels_lettering_and_sound_effects():
    net = TextSegNet(1, 0.35, rfb_channels=32, decoder_channels=16, out_channels=2)
    assert net.out_channels == 2
    assert net(torch.rand(1, 1, 32, 48)).shape == (1, 2, 32, 48)
    assert TextSegNet(1, 0.35).out_channels == 1
    with pytest.raises(ValueError, match="1 \\(text\\) or 2"):
        TextSegNet(1, 0.35, out_channels=3)
