"""Text segmentation network: MobileNetV2 encoder + scSE, receptive-field-block pooling, DeepLabV3+ decoder.

Building blocks and their papers:
- MobileNetV2 inverted residuals (Sandler et al. 2018) with a width multiplier; the output-stride 16 and 32
  stages use dilation instead of stride (DeepLabV3, Chen et al. 2017), so the encoder stops at stride 8.
- Concurrent spatial and channel squeeze & excitation, scSE (Roy et al. 2018), after each encoder stage.
- Receptive Field Block pooling (Liu et al. 2018, RFBNet) with separable k x 1 / 1 x k convolutions of kernel
  3, 5 and 7 followed by atrous 3x3 convolutions.
- DeepLabV3+ decoder (Chen et al. 2018): x2 upsampling of the pooled features, concatenation with the stride-4
  encoder features, then upsampling to the input size.

Input: float (B, C, H, W), C = 1 (grey) or 3, values in [0, 1]; H and W multiples of ``TextSegNet.stride``.
Output: logits (B, out_channels, H, W); ``torch.sigmoid`` gives each kind's probability, independently:
channel 0 = lettering (dialogue, captions, narration, asides: what a translator replaces), channel 1 (when
``out_channels`` is 2) = sound effects (drawn, stylised text that is part of the artwork). A 1-channel model
calls all text lettering.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (expansion t, output channels c, repeats n, stride s) of MobileNetV2
MOBILENET_V2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# Normalisation of the grey input (measured on synthetic and real manga pages: mostly paper white).
INPUT_MEAN = 0.5
INPUT_STD = 0.5


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` without going below 90% of it (as MobileNetV2)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel=3, stride=1, dilation=1, groups=1, padding=None):
        if padding is None:
            padding = (kernel - 1) // 2 * dilation if isinstance(kernel, int) else None
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, dilation: int = 1):
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU(cin, hidden, 1))
        layers += [
            ConvBNReLU(hidden, hidden, 3, stride, dilation=dilation, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class SCSE(nn.Module):
    """Concurrent spatial and channel squeeze & excitation (Roy et al. 2018), combined by addition."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(8, channels // reduction)
        self.channel_gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )
        self.spatial_gate = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.channel_gate(x) + x * self.spatial_gate(x)


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 feature extractor that returns [stride-4 features, stride-8 (dilated) deep features]."""

    def __init__(self, in_channels: int = 1, width: float = 1.0):
        super().__init__()
        stem_channels = make_divisible(32 * width)
        self.stem = ConvBNReLU(in_channels, stem_channels, 3, 2)
        blocks: list[nn.Module] = []
        cin, current_stride, dilation = stem_channels, 2, 1
        self.low_level_index = -1
        for t, c, n, s in MOBILENET_V2_SETTINGS:
            cout = make_divisible(c * width)
            for i in range(n):
                stride = s if i == 0 else 1
                block_dilation = dilation
                if stride == 2 and current_stride >= 8:
                    # output stride 16 and 32 stages: dilate instead of striding
                    dilation *= 2
                    stride = 1
                    block_dilation = dilation // 2 if i == 0 else dilation
                elif stride == 2:
                    current_stride *= 2
                blocks.append(InvertedResidual(cin, cout, stride, t, block_dilation))
                cin = cout
            if current_stride == 4 and c == 24:
                self.low_level_index = len(blocks) - 1
        self.blocks = nn.ModuleList(blocks)
        self.low_level_channels = make_divisible(24 * width)
        self.out_channels = cin
        self.low_level_se = SCSE(self.low_level_channels)
        self.out_se = SCSE(self.out_channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        # A 1-channel input is both NCHW- and channels-last-contiguous, so the stem's output would come out
        # NCHW and every later convolution would miss oneDNN's channels-last path (much slower on the CPU).
        x = self.stem(x).contiguous(memory_format=torch.channels_last)
        low = x
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.low_level_index:
                low = self.low_level_se(x)
        return [low, self.out_se(x)]


class SeparableConv(nn.Sequential):
    """k x 1 then 1 x k depthwise convolutions and a pointwise mix (the EffNet factorisation)."""

    def __init__(self, channels: int, kernel: int):
        pad = kernel // 2
        super().__init__(
            nn.Conv2d(channels, channels, (kernel, 1), padding=(pad, 0), groups=channels, bias=False),
            nn.Conv2d(channels, channels, (1, kernel), padding=(0, pad), groups=channels, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )


class ReceptiveFieldBlock(nn.Module):
    """RFB pooling: branches of 1x1 reduce -> separable k (3, 5, 7) -> atrous 3x3 (rate 1, 3, 5) and a 1x1
    branch, concatenated and projected.

    DeepLab's global image-pooling branch is left out on purpose: it would make a tile's output depend on the
    rest of the page, and the pipeline detects on tiles."""

    def __init__(self, cin: int, cout: int, kernels=(3, 5, 7), rates=(1, 3, 5)):
        super().__init__()
        mid = cout // 2
        self.branches = nn.ModuleList()
        for k, r in zip(kernels, rates, strict=True):
            self.branches.append(
                nn.Sequential(
                    ConvBNReLU(cin, mid, 1),
                    SeparableConv(mid, k),
                    ConvBNReLU(mid, mid, 3, dilation=r, groups=mid),
                    ConvBNReLU(mid, mid, 1),
                )
            )
        self.shortcut = ConvBNReLU(cin, mid, 1)
        self.project = ConvBNReLU(mid * (len(kernels) + 1), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [b(x) for b in self.branches] + [self.shortcut(x)]
        return self.project(torch.cat(parts, dim=1))


class DeepLabV3PlusDecoder(nn.Module):
    def __init__(self, low_channels: int, pooled_channels: int, channels: int = 64, out_channels: int = 1):
        super().__init__()
        low_out = max(16, channels // 2)
        self.low_project = ConvBNReLU(low_channels, low_out, 1)
        self.fuse = nn.Sequential(
            ConvBNReLU(pooled_channels + low_out, channels, 3),
            ConvBNReLU(channels, channels, 3),
        )
        self.head = nn.Conv2d(channels, out_channels, 1)

    def forward(self, low: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(pooled, size=low.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse(torch.cat([up, self.low_project(low)], dim=1))
        return self.head(x)


class TextSegNet(nn.Module):
    """Text segmentation network (see the module docstring).

    Args:
        in_channels: 1 for grey input (the pipeline converts colour pages to luma), 3 for RGB.
        width: MobileNetV2 width multiplier (1.0 loads the ImageNet backbone; 0.5 is twice as fast).
        rfb_channels: channels of the pooled features.
        decoder_channels: channels of the decoder.
        out_channels: 1 (text) or 2 (lettering, sound effects): the kinds of text told apart.
    """

    stride = 8

    def __init__(
        self,
        in_channels: int = 1,
        width: float = 1.0,
        rfb_channels: int = 128,
        decoder_channels: int = 64,
        out_channels: int = 1,
    ):
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"TextSegNet takes 1 (grey) or 3 (RGB) input channels, got {in_channels}")
        if out_channels not in (1, 2):
            raise ValueError(f"TextSegNet gives 1 (text) or 2 (lettering, sound effects) channels, got {out_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.encoder = MobileNetV2Encoder(in_channels, width)
        self.pool = ReceptiveFieldBlock(self.encoder.out_channels, rfb_channels)
        self.decoder = DeepLabV3PlusDecoder(
            self.encoder.low_level_channels, rfb_channels, decoder_channels, out_channels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"TextSegNet expects float (B, {self.in_channels}, H, W), got shape {tuple(x.shape)}"
            )
        if x.shape[-2] % self.stride or x.shape[-1] % self.stride:
            raise ValueError(
                f"TextSegNet needs H and W divisible by {self.stride}, got {tuple(x.shape[-2:])}: pad by "
                "reflection (engine.pipeline.tiling.pad_to_multiple) and crop the output"
            )
        size = x.shape[-2:]
        low, deep = self.encoder((x - INPUT_MEAN) / INPUT_STD)
        logits = self.decoder(low, self.pool(deep))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
