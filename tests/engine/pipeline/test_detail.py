import numpy as np

from engine.pipeline.detail import DetailOptions, detail
from engine.pipeline.detect import is_grey
from engine.pipeline.inpaint import with_detail


def hatched(size: int = 96) -> np.ndarray:
    """Grey art: a dark horizontal line every 4 px (its detail is all in the vertical gradient)."""
    grey = np.full((size, size), 230.0, np.float32)
    grey[::4] = 40.0
    return grey


def square_hole(size: int, y0: int, y1: int) -> np.ndarray:
    hole = np.zeros((size, size), bool)
    hole[y0:y1, y0:y1] = True
    return hole


def test_thin_holes_and_known_pixels_get_no_detail():
    grey = hatched()
    thin = np.zeros(grey.shape, bool)
    thin[40:46, 10:80] = True                       # 6 px tall: never deeper than 3 px
    assert not detail(grey, thin).any()
    big = square_hole(96, 24, 72)
    extra = detail(np.where(big, grey.mean(), grey), big)
    assert extra.any() and not extra[~big].any()


def test_a_smooth_fill_deep_in_a_big_hole_gains_the_arts_own_detail():
    grey = hatched()
    hole = square_hole(96, 24, 72)
    smooth = np.where(hole, grey[~hole].mean(), grey)   # a flat patch where the hatching was
    extra = detail(smooth, hole, DetailOptions(gain=1.0))
    deep = np.zeros_like(hole)
    deep[36:60, 36:60] = True                        # at least 12 px deep: the full detail
    gy, gx = np.gradient(extra)
    assert np.abs(gy[deep]).mean() > 20               # lines come back...
    assert np.abs(gy[deep]).mean() > 5 * np.abs(gx[deep]).mean()   # ...running the way the art's run
    half = detail(smooth, hole, DetailOptions(gain=0.5))
    assert np.allclose(half, extra / 2, atol=1e-3)


def test_detail_is_the_same_in_every_channel_so_grey_stays_grey():
    grey = hatched().astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    hole = square_hole(96, 24, 72)
    pred = rgb.copy()
    pred[hole] = 135
    out = with_detail(rgb, hole, pred, DetailOptions())
    assert is_grey(out)
    assert (out[~hole] == pred[~hole]).all() and (out[hole] != 135).any()
