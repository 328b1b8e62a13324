import numpy as np
import pytest

from engine.pipeline.masks import grow, merge_boxes, regions, threshold


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
