"""The straightforward partial convolution (the common formulation), kept to test and benchmark the fast one.

The mask has as many channels as the input, its window sum is a full C_out x C_in convolution with a kernel of
ones, and the renormalisation uses torch.where. The pipeline never uses this.
"""

import torch
import torch.nn.functional as F


def reference_partial_conv(x, mask_multi, weight, bias, stride, padding, dilation=1):
    """x (B,C,H,W), mask_multi (B,C,H,W) of 0/1 -> (y, new_mask (B,C_out,H',W'))."""
    out = F.conv2d(x * mask_multi, weight, bias, stride, padding, dilation)
    with torch.no_grad():
        ones = torch.ones_like(weight)
        mask_sum = F.conv2d(mask_multi, ones, None, stride, padding, dilation)
    if bias is not None:
        out_bias = bias.view(1, -1, 1, 1).expand_as(out)
    else:
        out_bias = torch.zeros_like(out)
    holes = mask_sum == 0
    mask_sum_safe = torch.where(holes, torch.ones_like(mask_sum), mask_sum)
    window = weight.shape[1] * weight.shape[2] * weight.shape[3]
    out_pre = (out - out_bias) * window / mask_sum_safe + out_bias
    out = torch.where(holes, torch.zeros_like(out), out_pre)
    new_mask = torch.where(holes, torch.zeros_like(mask_sum), torch.ones_like(mask_sum))
    return out, new_mask
