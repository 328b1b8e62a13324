import numpy as np
import pytest

from engine.pipeline import CleanOptions, Engine
from engine.pipeline.repeat_fill import (
    RepeatFillOptions,
    copy_along_periods,
    pattern_periods,
    repeat_fill,
    shift_correlation,
)
from engine.workshop.synth.tones import dot_tone


def _dot_tone_page(size=(200, 240), period=6.0, angle=45.0, seed=3):
    rng = np.random.default_rng(seed)
    tone = dot_tone(*size, coverage=0.3, period=period, angle=angle, rng=rng)
    grey = np.rint(tone * 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _text_hole(shape):
    """Glyph-like strokes: a vertical column of bars and a cross, as grown lettering leaves them."""
    hole = np.zeros(shape, bool)
    for y in range(60, 150, 22):
        hole[y:y + 12, 100:130] = True
    hole[90:100, 60:180] = True
    return hole


def test_vertical_stripes_repeat_by_their_period():
    page = np.full((80, 90), 200.0)
    page[:, ::6] = 20.0
    page[:, 1::6] = 60.0
    corr = shift_correlation(page, np.ones(page.shape, bool), max_shift=12)
    periods = pattern_periods(corr, min_correlation=0.85, min_contrast=0.4)
    # stripes repeat every 6 px across and by any shift along them: every period found is one of those
    assert periods and all(dx % 6 == 0 and corr > 0.99 for corr, _, dx in periods)
    assert {p[1:] for p in periods} >= {(0, 6), (0, 12)}
    assert all(dy > 0 or (dy == 0 and dx > 0) for _, dy, dx in periods)  # one of each opposite pair


def test_a_smooth_gradient_has_no_period():
    y, x = np.mgrid[0:100, 0:100]
    gradient = (x * 2.0 + y).astype(float)
    corr = shift_correlation(gradient, np.ones((100, 100), bool), max_shift=16)
    assert corr[16, 16] == pytest.approx(1.0)   # it does correlate with itself at short shifts...
    assert pattern_periods(corr, 0.85, 0.4) == []  # ...but falls steadily with distance: no peak


def test_hole_pixels_are_left_out_of_the_correlation():
    page = np.full((80, 80), 200.0)
    page[:, ::5] = 0.0
    sample = np.ones(page.shape, bool)
    sample[20:60, 20:60] = False
    page[20:60, 20:60] = np.random.default_rng(0).uniform(0, 255, (40, 40))  # garbage where the hole is
    periods = pattern_periods(shift_correlation(page, sample, 10), 0.85, 0.4)
    assert periods and all(dx % 5 == 0 for _, _, dx in periods) and (0, 5) in {p[1:] for p in periods}


def test_dot_screentone_keeps_its_dots_through_a_text_hole():
    page = _dot_tone_page()
    hole = _text_hole(page.shape[:2])
    out, filled = repeat_fill(page, hole)
    assert np.array_equal(filled, hole)
    assert np.array_equal(out[~hole], page[~hole])
    error = np.abs(out[hole].astype(int) - page[hole].astype(int))
    assert error.mean() < 4.0                  # the copies are in phase with the screen
    truth_contrast = page[hole][:, 0].std()
    assert out[hole][:, 0].std() > 0.8 * truth_contrast  # dots, not a mean grey


def test_colour_line_tone_is_copied_in_colour():
    rng = np.random.default_rng(5)
    from engine.workshop.synth.tones import line_tone

    cov = line_tone(160, 160, 0.35, period=5.0, angle=30.0, rng=rng)[:, :, None]
    page = np.rint(cov * np.array([250, 230, 200]) + (1 - cov) * np.array([40, 20, 120])).astype(np.uint8)
    hole = np.zeros((160, 160), bool)
    hole[60:100, 70:82] = True
    out, filled = repeat_fill(page, hole)
    assert filled[hole].all()
    assert np.abs(out[hole].astype(int) - page[hole].astype(int)).mean() < 6.0


def test_noise_and_flat_areas_are_left_for_the_network():
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)
    flat = np.full((120, 120, 3), 240, np.uint8)
    hole = np.zeros((120, 120), bool)
    hole[40:80, 50:70] = True
    for page in (noise, flat):
        out, filled = repeat_fill(page, hole)
        assert not filled.any() and np.array_equal(out, page)


def test_a_crop_larger_than_a_window_is_filled_window_by_window():
    page = _dot_tone_page((420, 900), period=5.0, angle=15.0)
    hole = np.zeros(page.shape[:2], bool)
    hole[150:170, 40:860] = True                # a long caption line across several windows
    options = RepeatFillOptions(max_window=256)
    out, filled = repeat_fill(page, hole, options)
    assert np.array_equal(filled, hole)
    assert np.abs(out[hole].astype(int) - page[hole].astype(int)).mean() < 4.0


def test_copying_reaches_into_the_hole_pass_by_pass():
    page = np.zeros((20, 40, 3), np.uint8)
    page[:, ::4] = 255                          # period 4 along x
    hole = np.zeros((20, 40), bool)
    hole[5:15, 8:32] = True
    one, done_one = copy_along_periods(page, hole, [(1.0, 0, 4)], max_passes=1)
    assert done_one[5, 8:12].all() and not done_one[5, 16:24].any()  # one period in from each side
    full, done = copy_along_periods(page, hole, [(1.0, 0, 4)], max_passes=12)
    assert done[hole].all() and np.array_equal(full, page)


def test_engine_uses_the_repeat_fill_unless_told_not_to(tiny_weights):
    engine = Engine.load(tiny_weights)
    page = _dot_tone_page()
    hole = _text_hole(page.shape[:2])
    with_repeat = engine.inpaint(page, hole)
    assert np.array_equal(with_repeat, repeat_fill(page, hole)[0])
    without = engine.inpaint(page, hole, CleanOptions(use_repeat_fill=False))
    assert not np.array_equal(without[hole], with_repeat[hole])  # the (random) network filled it instead
    assert np.array_equal(without[~hole], page[~hole])


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (40, 2), (300, 300)])
def test_a_page_too_small_or_all_masked_has_nothing_to_copy_from(shape):
    page = np.zeros(shape + (3,), np.uint8)
    page[:, ::3] = 255
    hole = np.ones(shape, bool)
    out, filled = repeat_fill(page, hole)
    assert not filled.any() and np.array_equal(out, page)
