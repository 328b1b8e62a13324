"""Smooth fill: exact on what is already smooth, untouched outside the hole, defined for any hole."""

import numpy as np

from engine.pipeline.smooth_fill import biharmonic_fill, smooth_fill


def test_a_linear_ramp_is_filled_back_exactly_and_known_pixels_are_untouched():
    y, x = np.mgrid[0:40, 0:50]
    ramp = np.dstack([3.0 * y + 2 * x + 5, 200 - 4.0 * y, np.full((40, 50), 77.0)])
    hole = np.zeros((40, 50), bool)
    hole[10:30, 5:45] = True
    scrambled = ramp.copy()
    scrambled[hole] = 0
    out = smooth_fill(scrambled, hole)
    assert out.dtype == np.float32 and out.shape == ramp.shape
    assert np.abs(out - ramp).max() < 0.01
    assert np.array_equal(out[~hole], ramp[~hole].astype(np.float32))


def test_a_flat_surround_gives_its_colour_and_a_line_crossing_a_thin_hole_is_bridged():
    image = np.full((30, 30), 240, np.uint8)
    image[:, 14:16] = 20  # a vertical line
    hole = np.zeros((30, 30), bool)
    hole[12:15, 2:28] = True  # a thin horizontal hole across it
    out = smooth_fill(image, hole)
    assert out.shape == (30, 30)
    assert np.abs(out[13, 2:8] - 240).max() < 1
    assert out[13, 14] < 180 and out[13, 15] < 180  # the line carries on (fainter) through the hole


def test_a_hole_at_the_image_edge_continues_the_surface():
    image = np.full((20, 20, 3), 90.0)
    hole = np.zeros((20, 20), bool)
    hole[0:4, :] = True
    assert np.abs(smooth_fill(image, hole) - 90).max() < 0.01


def test_each_hole_takes_its_own_surround_and_an_all_hole_image_is_defined():
    assert np.abs(smooth_fill(np.full((20, 20), 50.0), np.ones((20, 20), bool))).max() < 1e-6  # nothing known: 0
    image = np.zeros((20, 20))
    image[:, 10:] = 100
    hole = np.zeros((20, 20), bool)
    hole[2:5, 2:5] = True      # an island whose ring is all 0 ...
    hole[15:18, 15:18] = True  # ... and one whose ring is all 100
    out = smooth_fill(image, hole)
    assert np.abs(out[2:5, 2:5]).max() < 0.01 and np.abs(out[15:18, 15:18] - 100).max() < 0.01


def test_no_hole_returns_the_image_as_float():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = smooth_fill(image, np.zeros((3, 4), bool))
    assert out.dtype == np.float32 and np.array_equal(out, image)


def test_the_biharmonic_fill_restores_a_ramp_and_keeps_a_crossing_line_darker():
    y, x = np.mgrid[0:40, 0:50]
    ramp = np.dstack([3.0 * y + 2 * x + 5, 200 - 4.0 * y])
    hole = np.zeros((40, 50), bool)
    hole[10:30, 5:45] = True
    out = biharmonic_fill(np.where(hole[..., None], 0.0, ramp), hole)
    assert out.dtype == np.float32 and out.shape == ramp.shape
    assert np.abs(out - ramp).max() < 0.01
    assert np.array_equal(out[~hole], ramp[~hole].astype(np.float32))

    image = np.full((30, 30), 240, np.uint8)
    image[:, 13:17] = 20  # a vertical line 4 px wide
    hole = np.zeros((30, 30), bool)
    hole[11:16, 2:28] = True  # a hole 5 px high across it
    harmonic, biharmonic = smooth_fill(image, hole), biharmonic_fill(image, hole)
    assert biharmonic[13, 14] < harmonic[13, 14] - 10  # the line keeps more of its darkness
    assert np.abs(biharmonic[13, 2:4] - 240).max() < 0.5  # flat paper stays flat (it overshoots a little nearer)


def test_the_biharmonic_fill_of_an_all_hole_image_is_defined_and_no_hole_changes_nothing():
    assert np.abs(biharmonic_fill(np.full((20, 20), 50.0), np.ones((20, 20), bool))).max() == 0
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(biharmonic_fill(image, np.zeros((3, 4), bool)), image)
