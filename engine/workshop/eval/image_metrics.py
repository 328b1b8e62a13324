"""SSIM restricted to a region, on grey uint8 images (Wang et al. 2004, uniform 7x7 window)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from engine.pipeline.detect import to_grey


def ssim_map(a: np.ndarray, b: np.ndarray, window: int = 7) -> np.ndarray:
    """Per-pixel SSIM of two uint8 (H, W) or (H, W, 3) images (colour is compared as luma)."""
    if a.ndim == 3:
        a, b = to_grey(a), to_grey(b)
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = ndimage.uniform_filter(a, window), ndimage.uniform_filter(b, window)
    var_a = ndimage.uniform_filter(a * a, window) - mu_a**2
    var_b = ndimage.uniform_filter(b * b, window) - mu_b**2
    cov = ndimage.uniform_filter(a * b, window) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def masked_ssim(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """Mean SSIM over the pixels of ``where`` (bool (H, W))."""
    values = ssim_map(a, b)[where]
    return float(values.mean()) if values.size else 1.0
