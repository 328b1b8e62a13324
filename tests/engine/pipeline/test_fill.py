import numpy as np

from engine.pipeline.fill import flat_fill


def test_text_in_a_flat_balloon_is_filled_exactly():
    page = np.full((40, 60, 3), 80, np.uint8)       # grey art around
    page[5:35, 5:55] = (250, 248, 245)              # balloon interior
    mask = np.zeros((40, 60), bool)
    mask[15:25, 15:45] = True
    page[mask] = 0                                   # the lettering
    out, filled = flat_fill(page, mask)
    assert np.array_equal(filled, mask)
    assert (out[mask] == (250, 248, 245)).all()
    assert np.array_equal(out[~mask], page[~mask])


def test_text_over_texture_is_left_for_the_model(rng):
    page = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:20] = True
    out, filled = flat_fill(page, mask)
    assert not filled.any() and np.array_equal(out, page)


def test_region_touching_a_balloon_outline_is_not_flat():
    page = np.full((30, 30, 3), 255, np.uint8)
    page[:, 14:16] = 0                               # an outline crossing the ring
    mask = np.zeros((30, 30), bool)
    mask[10:20, 8:13] = True
    _, filled = flat_fill(page, mask)
    assert not filled.any()
