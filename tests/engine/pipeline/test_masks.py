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


def _box_glyph(size=30, paper=250):
    """A page of ``paper`` grey with a square glyph: 2 px dark strokes (grey 0) round a 4x4 paper-grey counter."""
    grey = np.full((size, size), paper, np.uint8)
    grey[8:16, 8:16] = 0
    grey[10:14, 10:14] = paper
    return grey


def test_trim_drops_the_counter_beside_the_strokes_and_keeps_the_strokes():
    grey = _box_glyph()
    blob = np.zeros(grey.shape, bool)
    blob[8:16, 8:16] = True                     # the detector's blob covers the counter too
    strokes = blob & (grey == 0)
    fitted = snap_to_ink(blob, grey, 3, confident=strokes)
    assert (fitted == strokes).all()            # the counter's pixels all lie within 2 px of a stroke
    assert (snap_to_ink(blob, grey, 3) == blob).all()   # without confident pixels nothing is trimmed


def test_trim_keeps_confident_pixels_and_paper_far_from_any_ink():
    grey = np.full((40, 40), 250, np.uint8)
    grey[5:35, 5:7] = 0                         # one stroke down the left of a wide blob
    blob = np.zeros(grey.shape, bool)
    blob[5:35, 5:35] = True
    confident = grey == 0
    confident[20, 20] = True                    # the detector is sure of this paper-grey pixel too
    fitted = snap_to_ink(blob, grey, 3, confident=confident)
    assert fitted[5:35, 5:7].all() and fitted[20, 20]
    assert not fitted[5:35, 7:9].any()          # paper beside the stroke leaves the mask
    assert fitted[5:35, 9:35].sum() == 30 * 26  # paper further than 2 px from any ink stays: no guessing


def test_trim_keeps_a_white_outline_round_dark_text_on_grey_art():
    grey = np.full((30, 30), 128, np.uint8)     # mid-grey artwork
    grey[8:22, 8:22] = 255                      # the white outline (fuchidori)...
    grey[10:20, 10:20] = 0                      # ...round a dark glyph
    mask = grey != 128
    fitted = snap_to_ink(mask, grey, 3, confident=grey == 0)
    assert (fitted == mask).all()


def test_confident_pixels_must_match_the_mask_in_size():
    grey = _box_glyph()
    with pytest.raises(ValueError, match="differ in size"):
        snap_to_ink(grey == 0, grey, 3, confident=np.zeros((5, 5), bool))
