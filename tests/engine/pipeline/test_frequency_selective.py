import numpy as np
import pytest

from engine.pipeline.frequency_selective import reconstruct


def _waves(shape=(96, 96)) -> np.ndarray:
    """Two Fourier basis functions of a 32 px window: exactly what the model is built of."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    return 128 + 60 * np.cos(2 * np.pi * 3 * xx / 32) + 40 * np.sin(2 * np.pi * (2 * yy + xx) / 32)


def test_it_rebuilds_a_sum_of_its_basis_functions_inside_a_hole():
    truth = _waves()
    known = np.ones(truth.shape, bool)
    known[40:60, 36:52] = False
    out = reconstruct(truth.astype(np.float32), known)
    assert out.dtype == np.float32 and out.shape == truth.shape
    assert np.array_equal(out[known], truth[known].astype(np.float32))
    assert np.abs(out[~known] - truth[~known]).mean() < 2  # the waves span 200 levels


def test_what_the_hole_held_does_not_matter():
    truth = _waves()
    known = np.ones(truth.shape, bool)
    known[30:70, 20:44] = False
    dark, light = truth.astype(np.float32), truth.astype(np.float32)
    dark[~known], light[~known] = 0, 255
    assert np.array_equal(reconstruct(dark, known), reconstruct(light, known))


def test_a_hole_too_big_for_one_window_is_filled_from_its_edges_inwards():
    truth = np.full((128, 128), 90.0)
    truth[:, 64:] = 210.0  # an edge through the hole
    known = np.ones(truth.shape, bool)
    known[24:104, 24:104] = False  # 80 px: blocks in the middle see no known pixel at first
    out = reconstruct(truth.astype(np.float32), known)
    assert np.isfinite(out).all()
    assert np.abs(out[~known] - truth[~known]).mean() < 15
    assert np.abs(out[60:68, 30:56] - 90).max() < 30 and np.abs(out[60:68, 72:98] - 210).max() < 30


def test_a_hole_at_the_image_edge_and_odd_sizes():
    truth = _waves((37, 53))
    known = np.ones(truth.shape, bool)
    known[:9, 40:] = False
    out = reconstruct(truth.astype(np.float32), known)
    assert out.shape == (37, 53) and np.isfinite(out).all()
    assert np.abs(out[~known] - truth[~known]).mean() < 25


def test_it_fills_about_as_well_as_opencvs_implementation_of_the_same_method():
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "xphoto"):
        pytest.skip("OpenCV without its contrib modules")
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:128, 0:128]
    page = np.full((128, 128), 235, np.uint8)
    for _ in range(12):  # line art: straight strokes across the window
        a, b, c = rng.normal(size=3)
        page[np.abs(a * (yy - 64) + b * (xx - 64) + 40 * c) < 2.5 * np.hypot(a, b)] = 20
    page[(yy // 6 + xx // 6) % 2 == 0] -= 40  # a coarse tone behind them
    known = np.ones(page.shape, bool)
    for y in range(20, 108, 22):  # text-like strokes
        known[y:y + 6, 24:104] = False
    opencv = np.zeros_like(page)
    cv2.xphoto.inpaint(page, np.where(known, 255, 0).astype(np.uint8), opencv, cv2.xphoto.INPAINT_FSR_FAST)
    ours = np.clip(np.rint(reconstruct(page, known)), 0, 255)
    ours_error = np.abs(ours[~known] - page[~known]).mean()
    opencv_error = np.abs(opencv[~known].astype(float) - page[~known]).mean()
    assert ours_error < 1.15 * opencv_error + 1, (ours_error, opencv_error)
