import numpy as np
import pytest

from engine.pipeline.masks import grow, merge_boxes, regions, snap_to_ink, threshold


def test_threshold():
    assert threshold(np.array([0.2, 0.5, 0.9]), 0.5).tolist() == [False, True, True]
    with pytest.raises(ValueError):
        threshold(np.zeros(3), 1.5)


def test_grow_is_a_square_of_side_2r_plus_1():
    mask = np.zeros((7, 7), bool)
    mask[3, 3] = True
    grown = grow(mask, 2)
    expected = np.zeros((7, 7), bool)
    expected[1:6, 1:6] = True
    assert np.array_equal(grown, expected)
    assert np.array_equal(grow(mask, 0), mask) and grow(mask, 0) is not mask
    with pytest.raises(ValueError):
        grow(mask, -1)


def test_regions_are_eight_connected():
    mask = np.array([[1, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 1]], bool)
    labels, boxes = regions(mask)
    assert labels.max() == 2
    assert sorted(boxes) == [(0, 0, 2, 2), (1, 3, 3, 4)]


@pytest.mark.parametrize(
    "boxes,expected",
    [
        ([(0, 0, 2, 2), (5, 5, 6, 6)], [(0, 0, 2, 2), (5, 5, 6, 6)]),
        ([(0, 0, 4, 4), (3, 3, 6, 6)], [(0, 0, 6, 6)]),
        ([(0, 0, 2, 2), (2, 2, 3, 3)], [(0, 0, 2, 2), (2, 2, 3, 3)]),  # touching is not overlapping
        ([(0, 0, 3, 10), (0, 5, 10, 7), (8, 0, 10, 3)], [(0, 0, 10, 10)]),  # chain merges transitively
    ],
)
def test_merge_boxes(boxes, expected):
    assert sorted(merge_boxes(boxes)) == expected


def _glyph_page():
    """A 12x12 white page with a dark 4x4 glyph (grey 0) whose one-pixel fringe is grey 90 (anti-aliasing)."""
    grey = np.full((12, 12), 250, np.uint8)
    grey[3:9, 3:9] = 90
    grey[4:8, 4:8] = 0
    return grey


def test_snap_takes_in_the_glyph_fringe_and_nothing_of_the_paper():
    grey = _glyph_page()
    tight = np.zeros((12, 12), bool)
    tight[5:7, 5:7] = True  # the detector's core of the glyph
    snapped = snap_to_ink(tight, grey, 2)
    # text level 0; the ring (6x6 less the 2x2) holds 12 pixels of 0 and 20 of 90: level 56.25. The zeros are
    # nearer the text's level and join, the fringe's 90s are nearer the ring's and stay out
    assert snapped[4:8, 4:8].all() and snapped.sum() == 16
    # from the whole dark core the ring (radius 1) holds only the fringe: text 0, ring 90 -> none join
    core = grey == 0
    assert (snap_to_ink(core, grey, 1) == core).all()
    # the paper never joins
    assert not (snap_to_ink(tight, grey, 3) & (grey == 250)).any()


def test_snap_works_for_light_text_on_black():
    grey = 255 - _glyph_page()
    tight = np.zeros((12, 12), bool)
    tight[5:7, 5:7] = True
    snapped = snap_to_ink(tight, grey, 2)
    assert snapped[4:8, 4:8].all() and not (snapped & (grey == 5)).any()


def test_snap_radius_zero_and_empty_mask_change_nothing_and_bad_input_is_named():
    grey = _glyph_page()
    tight = np.zeros((12, 12), bool)
    assert not snap_to_ink(tight, grey, 3).any()
    tight[5, 5] = True
    assert (snap_to_ink(tight, grey, 0) == tight).all()
    with pytest.raises(ValueError, match=">= 0"):
        snap_to_ink(tight, grey, -1)
    with pytest.raises(ValueError, match="differ in size"):
        snap_to_ink(tight, grey[:5], 1)
