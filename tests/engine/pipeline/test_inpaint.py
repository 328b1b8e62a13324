"""Inpainting on crops: the base fills made ahead on threads and bfloat16 change nothing a user would see; a
network is given the base fill it was trained on."""

import numpy as np
import pytest
import torch

from engine.models import build_model
from engine.pipeline.frequency_fill import frequency_fill
from engine.pipeline.inpaint import base_fill_of, crop_boxes, crop_jobs, inpaint, predict_crop
from engine.pipeline.precision import bfloat16_is_native
from engine.pipeline.smooth_fill import smooth_fill


@pytest.fixture(scope="module")
def residual_model():
    torch.manual_seed(0)
    model = build_model("pconv_unet", in_channels=3, channels=[8, 16, 16], first_kernel=3, residual=True)
    with torch.no_grad():  # a correction that is not zero, so the network's part shows in the output
        model.correction.weight.normal_(0.0, 0.3)
    return model.eval()


def _page_with_holes(rng):
    """Textured art with four separate holes of different sizes: four crops."""
    page = rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)
    hole = np.zeros((160, 200), bool)
    hole[10:20, 10:60] = True
    hole[100:150, 10:40] = True
    hole[20:40, 120:190] = True
    hole[110:118, 130:150] = True
    return page, hole


def test_filling_ahead_on_threads_gives_the_same_bytes_as_one_crop_at_a_time(residual_model, rng):
    page, hole = _page_with_holes(rng)
    boxes = crop_boxes(hole, context=8)
    assert len(boxes) == 4
    expected = page.copy()
    for y0, x0, y1, x1 in boxes:  # each crop on its own, its smooth fill computed inline
        crop_hole = hole[y0:y1, x0:x1]
        pred = predict_crop(residual_model, page[y0:y1, x0:x1], crop_hole)
        expected[y0:y1, x0:x1][crop_hole] = pred[crop_hole]
    for workers in (1, 2, 3):
        out = inpaint(residual_model, page, hole, context=8, bfloat16=False, workers=workers)
        assert np.array_equal(out, expected), workers


def test_a_crop_larger_than_the_window_is_split_into_windows_whose_cores_tile_it(rng):
    _, hole = _page_with_holes(rng)
    jobs = crop_jobs(hole, context=8, max_window=40, margin=6)
    covered = np.zeros(hole.shape, int)
    for (wy0, wx0, wy1, wx1), (cy0, cx0, cy1, cx1) in jobs:
        assert wy1 - wy0 <= 40 and wx1 - wx0 <= 40
        assert wy0 <= cy0 < cy1 <= wy1 and wx0 <= cx0 < cx1 <= wx1
        covered[cy0:cy1, cx0:cx1] += 1
    crops = np.zeros(hole.shape, int)
    for y0, x0, y1, x1 in crop_boxes(hole, context=8):
        crops[y0:y1, x0:x1] += 1
    assert np.array_equal(covered, crops)  # every crop pixel in exactly one core
    assert len(jobs) > 4
    areas = [(w[2] - w[0]) * (w[3] - w[1]) for w, _ in jobs]
    assert areas == sorted(areas)


def test_windows_of_a_large_crop_give_the_same_bytes_on_any_number_of_threads(residual_model, rng):
    page, hole = _page_with_holes(rng)
    one = inpaint(residual_model, page, hole, context=8, max_window=40, margin=6, bfloat16=False, workers=1)
    two = inpaint(residual_model, page, hole, context=8, max_window=40, margin=6, bfloat16=False, workers=2)
    assert np.array_equal(one, two)
    assert np.array_equal(one[~hole], page[~hole]) and not np.array_equal(one[hole], page[hole])


def test_the_crops_smooth_fill_can_be_given_and_is_what_the_network_corrects(residual_model, rng):
    page, hole = _page_with_holes(rng)
    inline = predict_crop(residual_model, page, hole)
    given = predict_crop(residual_model, page, hole, smooth_fill(page, hole))
    assert np.array_equal(inline, given)
    flat = predict_crop(residual_model, page, hole, np.full(page.shape, 128, np.float32))
    assert not np.array_equal(flat[hole], inline[hole])


def test_bfloat16_differs_from_float32_by_a_few_levels_and_never_outside_the_hole(residual_model, rng):
    page, hole = _page_with_holes(rng)
    full = inpaint(residual_model, page, hole, context=8, bfloat16=False)
    half = inpaint(residual_model, page, hole, context=8, bfloat16=True)
    assert np.array_equal(half[~hole], page[~hole])
    difference = np.abs(full.astype(int) - half.astype(int))[hole]
    assert 0 < difference.max() <= 8 and difference.mean() < 1.0  # it did run in bfloat16, and stayed close


def test_by_default_bfloat16_is_used_exactly_where_it_is_native(residual_model, rng):
    page, hole = _page_with_holes(rng)
    default = inpaint(residual_model, page, hole, context=8)
    assert np.array_equal(default, inpaint(residual_model, page, hole, context=8, bfloat16=bfloat16_is_native()))


def test_a_progress_callback_that_cancels_stops_the_work_at_once(residual_model, rng):
    page, hole = _page_with_holes(rng)
    seen = []

    def cancel(fraction):
        seen.append(fraction)
        raise KeyboardInterrupt  # what a cancelled job raises from its progress callback

    with pytest.raises(KeyboardInterrupt):
        inpaint(residual_model, page, hole, context=8, workers=1, progress=cancel)
    assert len(seen) == 1  # stopped after the first crop


def test_a_network_trained_on_the_frequency_fill_is_given_that_fill(rng):
    model = build_model("pconv_unet", in_channels=3, channels=[8, 16, 16], first_kernel=3, residual=True,
                        base_fill="frequency").eval()
    assert base_fill_of(model) is frequency_fill
    page = np.repeat(np.where((np.arange(96) // 4) % 2 == 0, 30, 220).astype(np.uint8)[None, :, None], 96, 0)
    page = np.repeat(page, 3, axis=2)
    hole = np.zeros(page.shape[:2], bool)
    hole[40:56, 40:56] = True
    # an untrained residual network (its correction starts at zero) returns its base fill
    out = inpaint(model, page, hole, context=16, bfloat16=False)
    expected = np.clip(np.rint(frequency_fill(page[24:72, 24:72], hole[24:72, 24:72])), 0, 255)  # the crop
    assert np.abs(out[24:72, 24:72].astype(int) - expected).max() <= 1
    assert np.abs(out[hole].astype(int) - page[hole]).mean() < 40  # the stripes go on; a smear is ~95 off
    with pytest.raises(ValueError, match="unknown base fill"):
        build_model("pconv_unet", in_channels=3, channels=[8, 16], residual=True, base_fill="telea")
