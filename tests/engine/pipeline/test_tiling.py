import numpy as np
import pytest
import torch
from scipy import ndimage

from engine.pipeline.tiling import pad_to_multiple, split_length, tile_boxes, tiled_apply


@pytest.mark.parametrize(
    "length,tile,expected",
    [(10, 10, [(0, 10)]), (10, 4, [(0, 3), (3, 7), (7, 10)]), (1, 8, [(0, 1)]), (9, 3, [(0, 3), (3, 6), (6, 9)])],
)
def test_split_length(length, tile, expected):
    assert split_length(length, tile) == expected


def test_cores_partition_the_image():
    cover = np.zeros((37, 53), int)
    for (y0, x0, y1, x1), (wy0, wx0, wy1, wx1) in tile_boxes(37, 53, 16, 5):
        cover[y0:y1, x0:x1] += 1
        assert wy0 <= y0 and wx0 <= x0 and wy1 >= y1 and wx1 >= x1
        assert y0 - wy0 <= 5 and wy1 - y1 <= 5
    assert (cover == 1).all()


def test_tiled_equals_untiled_for_a_local_operation(rng):
    image = rng.random((70, 90)).astype(np.float32)

    def blur(a):  # receptive field 3 px
        return ndimage.uniform_filter(a, size=7, mode="reflect")

    tiled = tiled_apply(blur, image, tile=16, margin=3)
    untiled = blur(image)
    # the windows see reflection at their own borders only where those are image borders
    assert np.allclose(tiled, untiled, atol=1e-6)


def test_progress_reaches_one(rng):
    seen = []
    tiled_apply(lambda a: a, rng.random((20, 20)), 8, 2, progress=seen.append)
    assert seen[-1] == 1.0 and len(seen) == 9


def test_pad_to_multiple_reflects_and_reports_size():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    padded, size = pad_to_multiple(x, 4)
    assert size == (3, 4) and padded.shape == (1, 1, 4, 4)
    assert torch.equal(padded[0, 0, 3], x[0, 0, 1])  # reflection of row 1 about row 2
    same, _ = pad_to_multiple(padded, 4)
    assert same is padded
    tiny, _ = pad_to_multiple(torch.ones(1, 1, 1, 1), 8)
    assert tiny.shape == (1, 1, 8, 8)
