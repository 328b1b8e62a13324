import numpy as np

from engine.pipeline.detect import is_grey, to_grey


def test_a_page_is_grey_only_when_every_pixel_has_equal_channels():
    page = np.repeat(np.arange(12, dtype=np.uint8).reshape(3, 4, 1), 3, axis=2)
    assert is_grey(page)
    assert np.array_equal(to_grey(page), page[..., 0])
    page[2, 3, 1] += 1
    assert not is_grey(page)
