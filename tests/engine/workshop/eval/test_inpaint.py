"""The inpainting evaluation's parts: background kinds, hole placement, every method, the summary."""

import numpy as np
import pytest

from engine.pipeline import Engine
from engine.workshop.eval import inpaint as evaluation
from tests.conftest import make_tiny_weights


def _hole(shape, box):
    hole = np.zeros(shape, bool)
    y0, x0, y1, x1 = box
    hole[y0:y1, x0:x1] = True
    return hole


def test_backgrounds_are_told_apart_by_the_ring_around_the_hole():
    hole = _hole((80, 80), (30, 30, 50, 50))
    flat = np.full((80, 80, 3), 230, np.uint8)
    yy, xx = np.mgrid[0:80, 0:80]
    tone = np.where(((yy % 4) < 2) ^ ((xx % 4) < 2), 40, 230).astype(np.uint8)
    lines = flat.copy()
    lines[:, ::16] = 0
    assert evaluation.classify(flat, hole) == "flat"
    assert evaluation.classify(np.dstack([tone] * 3), hole) == "tone"
    assert evaluation.classify(lines, hole) == "line art"


def test_holes_avoid_the_boxes_do_not_overlap_and_repeat_for_a_seed():
    avoid = np.zeros((600, 700), bool)
    avoid[:, :250] = True
    placed = evaluation.place_holes(avoid.shape, avoid, seed=3, count=3)
    assert len(placed) == 3
    for y, x, patch in placed:
        assert not avoid[y:y + evaluation.PATCH, x:x + evaluation.PATCH].any()
        assert patch.shape == (evaluation.PATCH, evaluation.PATCH) and patch.any()
    for (y, x, _), (oy, ox, _) in zip(placed, placed[1:], strict=False):
        assert abs(y - oy) >= evaluation.PATCH or abs(x - ox) >= evaluation.PATCH
    again = evaluation.place_holes(avoid.shape, avoid, seed=3, count=3)
    assert [(y, x) for y, x, _ in again] == [(y, x) for y, x, _ in placed]
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(placed, again, strict=True))


def test_every_method_fills_only_the_hole(tmp_path, rng):
    pytest.importorskip("cv2")
    engine = Engine.load(make_tiny_weights(tmp_path))
    page = rng.integers(0, 256, (96, 112, 3), dtype=np.uint8)
    hole = _hole(page.shape[:2], (30, 20, 60, 90))
    methods = evaluation.methods(engine)
    assert list(methods) == ["kesu model", "kesu pipeline", "flat fill", "smooth fill", "biharmonic fill",
                             "opencv telea", "opencv navier-stokes"]
    for name, fill in methods.items():
        out = fill(page.copy(), hole)
        assert out.dtype == np.uint8 and out.shape == page.shape, name
        assert np.array_equal(out[~hole], page[~hole]), name


def test_the_summary_averages_per_method_and_kind_and_over_all():
    scores = {("m", "flat"): [(50.0, 1.0, 0.9, 10)], ("m", "tone"): [(20.0, 3.0, 0.5, 10), (30.0, 5.0, 0.7, 10)]}
    rows = {(r["method"], r["kind"]): r for r in evaluation.summarise(scores, ["m"])}
    assert rows[("m", "tone")]["psnr"] == 25.0 and rows[("m", "tone")]["holes"] == 2
    assert rows[("m", "all")]["holes"] == 3 and rows[("m", "all")]["psnr"] == pytest.approx(100.0 / 3)
    assert rows[("m", "all")]["mae"] == 3.0
