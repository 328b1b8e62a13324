"""Partial convolutions (Liu et al. 2018, "Image Inpainting for Irregular Holes Using Partial Convolutions")
and the U-Net built from them.

The usual implementation convolves a mask with as many channels as the input using a full ``C_out x C_in``
kernel of ones, then renormalises with several ``torch.where`` calls. Here the mask has ONE channel, so its
window sum is a ``1 -> 1`` convolution with a fixed kernel, and the renormalisation is a single multiply by a
precomputed ratio. For a mask that is the same on every input channel the result is identical to the usual
formulation (the channel count cancels in ``sum(1) / sum(M)``); tests prove it against a reference.

Feature maps are kept at zero in holes: a partial convolution outputs exactly 0 where its window saw no valid
pixel, and the activations used here map 0 to 0, so layers after the first need not multiply by the mask again.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MaskCache = dict
# the fills a residual network can correct (made by engine.pipeline.smooth_fill and engine.pipeline.frequency_fill)
BASE_FILLS = ("smooth", "frequency")


def mask_ratio(
    mask: torch.Tensor, kernel_size: int, stride: int, padding: int, dilation: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Renormalisation ratio and updated mask of a partial convolution.

    Args:
        mask: float (B, 1, H, W), 1 = valid, 0 = hole (fractional values allowed: a channel-weighted mask).
    Returns:
        ratio (B, 1, H', W'): ``k*k / window_sum`` where the window saw something valid, else 0.
        new_mask (B, 1, H', W'): 1 where the window saw something valid, else 0.
    """
    ones = mask.new_ones(1, 1, kernel_size, kernel_size)
    window_sum = F.conv2d(mask, ones, stride=stride, padding=padding, dilation=dilation)
    new_mask = (window_sum > 1e-6).to(mask.dtype)
    ratio = (kernel_size * kernel_size) / window_sum.clamp(min=1e-6) * new_mask
    return ratio, new_mask


def _cached_mask_ratio(
    mask: torch.Tensor, geometry: tuple[int, int, int, int], cache: MaskCache | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mask_ratio(mask, *geometry)``, computed once per mask and geometry while ``cache`` lives."""
    key = (id(mask), *geometry)
    if cache is not None and key in cache:
        return cache[key][1:]
    with torch.no_grad():
        ratio, new_mask = mask_ratio(mask, *geometry)
    if cache is not None:
        # keep a reference to `mask` so its id cannot be reused while the cache lives
        cache[key] = (mask, ratio, new_mask)
    return ratio, new_mask


class PartialConv2d(nn.Conv2d):
    """A partial convolution with a one-channel mask.

    ``forward(x, mask)`` takes x float (B, C_in, H, W) and mask float (B, 1, H, W) (1 = valid) and returns
    ``(y, new_mask)``. Set ``mask_input=True`` on a layer whose input is not already zero in the holes (the first
    layer of a network). A ``cache`` dict shared by the layers of one forward pass lets layers of equal geometry
    that see the same mask reuse one ratio.
    """

    def __init__(self, *args, mask_input: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if self.groups != 1 or self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("PartialConv2d supports groups=1, integer padding and zero padding only")
        if self.kernel_size[0] != self.kernel_size[1]:
            raise ValueError("PartialConv2d needs a square kernel")
        self.mask_input = mask_input

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, mask: torch.Tensor, cache: MaskCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        geometry = (self.kernel_size[0], self.stride[0], self.padding[0], self.dilation[0])
        ratio, new_mask = _cached_mask_ratio(mask, geometry, cache)
        if self.mask_input:
            x = x * mask.to(x.dtype)
        y = F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation)
        return self._renormalised(y, ratio, new_mask), new_mask

    def _renormalised(self, y: torch.Tensor, ratio: torch.Tensor, new_mask: torch.Tensor) -> torch.Tensor:
        # the masks may be float32 under bfloat16 features: the features keep their type
        ratio = ratio.to(y.dtype)
        if self.bias is None:
            return y * ratio
        # (W^T(X*M)) * ratio + b where valid, 0 in holes: ratio is already 0 in holes, the bias is masked.
        return torch.addcmul(self.bias.view(1, -1, 1, 1) * new_mask.to(y.dtype), y, ratio)

    def forward_upsampled(  # type: ignore[override]
        self, low: torch.Tensor, skip: torch.Tensor, mask: torch.Tensor, cache: MaskCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward(cat([nearest 2x upsampling of low, skip]), mask)`` without building either: the upsampled
        part is convolved at ``low``'s resolution (``upsampled_conv3x3``). A 3x3, stride 1, padding 1 layer only;
        ``mask`` is the merged one-channel mask of the concatenation, at ``skip``'s resolution."""
        if self.kernel_size[0] != 3 or self.stride[0] != 1 or self.padding[0] != 1 or self.dilation[0] != 1:
            raise ValueError("forward_upsampled needs a 3x3 layer with stride 1 and padding 1")
        if self.mask_input:
            raise ValueError("forward_upsampled needs a layer whose input is not masked (mask_input=False)")
        ratio, new_mask = _cached_mask_ratio(mask, (3, 1, 1, 1), cache)
        c_low = low.shape[1]
        y = upsampled_conv3x3(low, self.weight[:, :c_low])
        y = y + F.conv2d(skip, self.weight[:, c_low:], None, 1, 1)
        return self._renormalised(y, ratio, new_mask), new_mask


def upsampled_conv3x3(low: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``conv2d(interpolate(low, scale_factor=2, mode="nearest"), weight, padding=1)`` for a 3x3 ``weight``,
    computed at ``low``'s resolution.

    After a nearest 2x upsampling, the 3x3 window of an output pixel covers only 2x2 distinct input pixels, which
    depend on the pixel's phase (row and column even or odd): each phase is a 2x2 convolution of ``low`` with the
    3x3 kernel's rows and columns summed in pairs. One 2x2 convolution with the four phases' kernels stacked does
    4 of the 9 multiplications per output pixel; the phases are then interleaved (pixel shuffle).
    """
    batch, _, height, width = low.shape
    c_out = weight.shape[0]
    # rows: an even output row sees input rows (i-1, i) with kernel rows (0, 1+2); an odd one (i, i+1) with (0+1, 2)
    even_rows = torch.stack([weight[:, :, 0], weight[:, :, 1] + weight[:, :, 2]], dim=2)
    odd_rows = torch.stack([weight[:, :, 0] + weight[:, :, 1], weight[:, :, 2]], dim=2)

    def by_columns(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        even = torch.stack([rows[..., 0], rows[..., 1] + rows[..., 2]], dim=-1)
        odd = torch.stack([rows[..., 0] + rows[..., 1], rows[..., 2]], dim=-1)
        return even, odd

    kernels = torch.cat([*by_columns(even_rows), *by_columns(odd_rows)], dim=0)  # (4 c_out, c_in, 2, 2)
    # out[p, q] sees input rows (p-1, p) and columns (q-1, q) of low (zero outside)
    out = F.conv2d(F.pad(low, (1, 1, 1, 1)), kernels)
    phases = [out[:, :c_out, :height, :width], out[:, c_out:2 * c_out, :height, 1:],
              out[:, 2 * c_out:3 * c_out, 1:, :width], out[:, 3 * c_out:, 1:, 1:]]
    stacked = torch.stack(phases, dim=2).reshape(batch, 4 * c_out, height, width)
    return F.pixel_shuffle(stacked, 2)


class SpectralBlock(nn.Module):
    """A residual block that sees the whole feature map (the fast Fourier convolution of LaMa, Suvorov et al.
    2022, in its simplest form): a 1x1 convolution in the frequency domain mixes every position with every other,
    beside a 3x3 convolution dilated by ``dilation`` (at the bottleneck of a 5-level U-Net, 2 reaches 64 px, 4
    reaches 128 px further); their sum is added to the input through a 1x1 layer that starts at zero, so a new block
    is the identity. The FFT runs in float32 whatever the features' type."""

    def __init__(self, channels: int, dilation: int = 2):
        super().__init__()
        half = channels // 2
        self.reduce = nn.Conv2d(channels, half, 1)
        self.spectral = nn.Conv2d(2 * half, 2 * half, 1)
        self.local = nn.Conv2d(channels, half, 3, padding=dilation, dilation=dilation)
        self.expand = nn.Conv2d(2 * half, channels, 1)
        nn.init.zeros_(self.expand.weight)
        nn.init.zeros_(self.expand.bias)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.reduce(x))
        height, width = h.shape[-2:]
        spectrum = torch.fft.rfft2(h.float(), norm="ortho")
        mixed = self.act(self.spectral(torch.cat([spectrum.real, spectrum.imag], dim=1).to(x.dtype)))
        real, imag = mixed.float().chunk(2, dim=1)
        far = torch.fft.irfft2(torch.complex(real, imag), s=(height, width), norm="ortho").to(x.dtype)
        near = self.act(self.local(x))
        return x + self.expand(torch.cat([far + h, near], dim=1))


# The base fill is kept this far inside (0, 1) so that its logit is finite: 0.26 levels of 255, lost in rounding.
_BASE_EPS = 1e-3


class PConvUNet(nn.Module):
    """U-Net of partial convolutions for inpainting.

    Input: image float (B, C, H, W) in [0, 1] and mask float (B, 1, H, W) with 1 = known pixel, 0 = hole;
    H and W must be multiples of ``2 ** depth`` (``stride`` says so; the pipeline pads by reflection).
    Output: float (B, C, H, W), the network's prediction everywhere (the caller keeps known pixels).
    A bfloat16 network (``engine.pipeline.precision.bfloat16_twin``) takes a bfloat16 image with the mask and
    base fill in float32: features stay bfloat16, masks and the output float32.

    Args:
        in_channels: 1 (grey) or 3 (RGB).
        channels: feature channels per level, e.g. (32, 64, 64, 64): the encoder halves the resolution at each
            level after the first; the decoder mirrors it with skip connections (nearest upsampling).
        first_kernel: kernel size of the first layer (larger sees around thin strokes).
        residual: the network corrects a given base fill instead of painting the hole from nothing: the output
            layer also sees ``base`` (e.g. engine.pipeline.smooth_fill) and the output is
            ``sigmoid(logit(base) + correction)``. The output layer starts at zero, so an untrained network
            returns the base exactly.
        far_blocks: ``SpectralBlock``s at the bottleneck (dilated 2, 4, 8, ...), which see the whole crop: a hole
            wider than the U-Net's reach (about 100 px) is filled from features of all its surroundings. After them
            the bottleneck counts as known everywhere. 0: the plain U-Net.
        base_fill: which fill a residual network was trained to correct, so the pipeline makes the same:
            ``"smooth"`` (engine.pipeline.smooth_fill) or ``"frequency"`` (engine.pipeline.frequency_fill).
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: tuple[int, ...] = (32, 64, 64, 64, 64),
        first_kernel: int = 5,
        residual: bool = False,
        far_blocks: int = 0,
        base_fill: str = "smooth",
    ):
        super().__init__()
        if len(channels) < 2:
            raise ValueError("PConvUNet needs at least two levels of channels")
        if base_fill not in BASE_FILLS:
            raise ValueError(f"unknown base fill {base_fill!r}: choose from {', '.join(BASE_FILLS)}")
        self.base_fill = base_fill
        self.in_channels = in_channels
        self.channels = tuple(channels)
        self.depth = len(channels) - 1
        self.stride = 2**self.depth
        self.encoders = nn.ModuleList()
        prev = in_channels
        for level, ch in enumerate(channels):
            if level == 0:
                conv = PartialConv2d(prev, ch, first_kernel, 1, first_kernel // 2, mask_input=True)
            else:
                conv = PartialConv2d(prev, ch, 3, 2, 1)
            self.encoders.append(conv)
            prev = ch
        self.far_blocks = far_blocks
        self.far = nn.ModuleList([SpectralBlock(prev, dilation=2 ** (i + 1)) for i in range(far_blocks)])
        self.decoders = nn.ModuleList()
        for level in range(self.depth - 1, -1, -1):
            skip = channels[level]
            self.decoders.append(PartialConv2d(prev + skip, skip, 3, 1, 1))
            prev = skip
        # The output layer also sees the input image and mask (as in Liu et al.), and the base fill if residual.
        # A residual network's output layer ("correction") is a different layer from a plain one's ("head").
        self.residual = residual
        if residual:
            self.correction = PartialConv2d(prev + 2 * in_channels, in_channels, 3, 1, 1)
            nn.init.zeros_(self.correction.weight)
            nn.init.zeros_(self.correction.bias)
        else:
            self.head = PartialConv2d(prev + in_channels, in_channels, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        if self.residual and base is None:
            raise ValueError(f"this PConvUNet is residual: pass the base fill ({self.base_fill} fill)")
        if image.shape[-2] % self.stride or image.shape[-1] % self.stride:
            raise ValueError(
                f"PConvUNet needs H and W divisible by {self.stride}, got {tuple(image.shape[-2:])}: "
                "pad the input by reflection (engine.pipeline.tiling.pad_to_multiple) and crop the output"
            )
        cache: MaskCache = {}
        feats, masks = [], []
        x, m = image, mask
        for conv in self.encoders:
            x, m = conv(x, m, cache)
            x = self.act(x)
            feats.append(x)
            masks.append(m)
        if self.far_blocks:
            for block in self.far:
                x = block(x)
            m = torch.ones_like(m)  # the far blocks leave no position of the bottleneck unknown
        for i, conv in enumerate(self.decoders):
            level = self.depth - 1 - i
            skip, skip_mask = feats[level], masks[level]
            m = F.interpolate(m, scale_factor=2.0, mode="nearest")
            m = _merge_masks(m, x.shape[1], skip_mask, skip.shape[1])
            # the same as conv(cat([upsampled x, skip]), m) with neither the upsampled x nor the concatenation built
            x, m = conv.forward_upsampled(x, skip, m, cache)
            x = self.act(x)
        m = _merge_masks(m, x.shape[1], mask, image.shape[1])
        x = torch.cat([x, image * mask.to(image.dtype)], dim=1)
        out_dtype = torch.promote_types(x.dtype, torch.float32)  # float32 for bfloat16 features
        if not self.residual:
            x, _ = self.head(x, m, cache)
            return torch.sigmoid(x.to(out_dtype))
        m = _merge_masks(m, x.shape[1], torch.ones_like(mask), base.shape[1])
        correction, _ = self.correction(torch.cat([x, base.to(x.dtype)], dim=1), m, cache)
        # in float32 at least: only the correction of the base fill is rounded to the features' type, not the fill
        base = base.to(out_dtype).clamp(_BASE_EPS, 1.0 - _BASE_EPS)
        return torch.sigmoid(torch.logit(base) + correction.to(out_dtype))


def _merge_masks(mask_a: torch.Tensor, channels_a: int, mask_b: torch.Tensor, channels_b: int) -> torch.Tensor:
    """One-channel mask of a concatenation: the channel-weighted mean of the parts' masks.

    A full multi-channel mask would be ``cat([mask_a] * channels_a + [mask_b] * channels_b)``; its window sum
    over channels equals ``(channels_a + channels_b)`` times the window sum of this mean, so the ratio is the same.
    """
    if mask_a is mask_b:
        return mask_a
    return (mask_a * channels_a + mask_b * channels_b) / (channels_a + channels_b)
