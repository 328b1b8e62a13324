"""Scan-like degradations applied identically to a page and to its clean twin (same parameters, same noise),
so the two differ only where the text layer touched (up to JPEG block effects)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter


def _to_image(a: np.ndarray) -> Image.Image:
    a8 = np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(a8[..., 0] if a8.shape[2] == 1 else a8)


def degrade_pair(images: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Degrade float32 (H, W, C) pages in [0, 1] the same way; returns uint8 (H, W, 3) RGB arrays."""
    H, W, C = images[0].shape
    paper = float(rng.uniform(0.86, 1.0)) if rng.random() < 0.8 else 1.0
    ink = float(rng.uniform(0.0, 0.22)) if rng.random() < 0.8 else 0.0
    gamma = float(np.exp(rng.normal(0, 0.15)))
    uneven = None
    if rng.random() < 0.4:  # uneven paper / scanner light: a smooth multiplicative field
        small = rng.uniform(1 - rng.uniform(0.02, 0.1), 1.0, size=(6, 6)).astype(np.float32)
        uneven = np.asarray(Image.fromarray(small, mode="F").resize((W, H), Image.Resampling.BICUBIC))[
            ..., None
        ]
    tint = None
    if C == 3 and rng.random() < 0.5:
        tint = (1 - rng.uniform(0, 0.06, 3)).astype(np.float32)
    blur = float(rng.uniform(0.3, 1.1)) if rng.random() < 0.45 else 0.0
    scale = float(rng.uniform(0.45, 0.95)) if rng.random() < 0.35 else 1.0
    resample = (
        Image.Resampling.BILINEAR,
        Image.Resampling.BICUBIC,
        Image.Resampling.LANCZOS,
        Image.Resampling.NEAREST,
    )[int(rng.choice(4, p=[0.35, 0.35, 0.2, 0.1]))]
    noise_sigma = float(rng.uniform(1, 7)) if rng.random() < 0.6 else 0.0
    noise = (
        rng.normal(0, noise_sigma, size=(H, W, 1 if C == 1 else 3)).astype(np.float32)
        if noise_sigma
        else None
    )
    quality = int(rng.integers(35, 96)) if rng.random() < 0.75 else None
    out = []
    for a in images:
        a = np.power(np.clip(a, 0, 1), gamma) if abs(gamma - 1) > 0.01 else a
        a = ink + (paper - ink) * a
        if uneven is not None:
            a = a * uneven
        if tint is not None:
            a = a * tint
        im = _to_image(a)
        if blur:
            im = im.filter(ImageFilter.GaussianBlur(blur))
        if scale < 1.0:
            im = im.resize((max(8, int(W * scale)), max(8, int(H * scale))), Image.Resampling.BILINEAR)
            im = im.resize((W, H), resample)
        arr = np.asarray(im)
        if noise is not None:
            arr = np.clip(arr.astype(np.float32) + (noise[..., 0] if arr.ndim == 2 else noise), 0, 255)
            arr = (arr + 0.5).astype(np.uint8)
        if quality is not None:
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
            buf.seek(0)
            arr = np.asarray(Image.open(buf))
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        out.append(np.ascontiguousarray(arr))
    return out
