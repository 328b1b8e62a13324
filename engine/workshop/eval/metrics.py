"""Metrics on masks and images. Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class MaskCounts:
    """Pixel counts of a predicted mask against a true one; add them up over a set, then read the scores."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, pred: np.ndarray, truth: np.ndarray) -> MaskCounts:
        if pred.shape != truth.shape:
            raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
        pred, truth = pred.astype(bool), truth.astype(bool)
        self.tp += int(np.count_nonzero(pred & truth))
        self.fp += int(np.count_nonzero(pred & ~truth))
        self.fn += int(np.count_nonzero(~pred & truth))
        return self

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def iou(self) -> float:
        union = self.tp + self.fp + self.fn
        return self.tp / union if union else 1.0

    def scores(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "iou": self.iou}


def psnr(pred: np.ndarray, truth: np.ndarray, where: np.ndarray | None = None) -> float:
    """PSNR in dB of uint8 images, over the pixels of ``where`` (bool (H, W)) or all. inf when equal."""
    diff = pred.astype(np.float64) - truth.astype(np.float64)
    if where is not None:
        diff = diff[where]
    mse = float(np.mean(diff**2)) if diff.size else 0.0
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def mean_abs_error(pred: np.ndarray, truth: np.ndarray, where: np.ndarray | None = None) -> float:
    """Mean absolute error in grey levels (0..255) over ``where`` or all pixels."""
    diff = np.abs(pred.astype(np.float64) - truth.astype(np.float64))
    if where is not None:
        diff = diff[where]
    return float(diff.mean()) if diff.size else 0.0
