import numpy as np

from engine.workshop.eval.fill import FRACTIONS, TOLERANCES, judge


def _case(background: np.ndarray):
    truth = np.zeros(background.shape[:2], bool)
    truth[20:30, 20:40] = True
    page = background.copy()
    page[truth] = 0
    return page, truth, background


def test_flat_background_is_filled_right_at_every_setting():
    flat = np.full((60, 60, 3), 240, np.uint8)
    result = judge([_case(flat)])
    for t in TOLERANCES:
        for f in FRACTIONS:
            holes, filled, wrong, abs_sum = result["table"][(t, f)]
            assert filled == holes > 0
            assert wrong == 0 and abs_sum == 0


def test_tone_fill_counts_as_wrong_when_loose_and_is_skipped_when_strict():
    yy, xx = np.mgrid[:60, :60]
    tone = np.where((yy % 4 < 2) & (xx % 4 < 2), 230, 250).astype(np.uint8)  # a faint dot tone
    result = judge([_case(np.dstack([tone] * 3))])
    holes, filled, wrong, _ = result["table"][(4, 0.99)]
    assert filled == 0 and holes > 0
    holes, filled, wrong, _ = result["table"][(24, 0.90)]
    assert filled == holes and wrong == filled  # a flat blot over the tone is off by 5 levels on average
