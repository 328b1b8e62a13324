import numpy as np

from engine.pipeline import frequency_fill as frequency_fill_module
from engine.pipeline.detect import is_grey
from engine.pipeline.frequency_fill import frequency_fill
from engine.pipeline.smooth_fill import smooth_fill


def _stripes(period: int = 8) -> np.ndarray:
    _, xx = np.mgrid[0:96, 0:96]
    return np.where((xx // (period // 2)) % 2 == 0, 30, 220).astype(np.uint8)


def _box(shape, y0, x0, y1, x1) -> np.ndarray:
    hole = np.zeros(shape, bool)
    hole[y0:y1, x0:x1] = True
    return hole


def test_it_keeps_the_known_pixels_and_continues_stripes_a_smooth_fill_averages_away():
    grey = _stripes()
    page = np.repeat(grey[..., None], 3, axis=2)
    hole = _box(grey.shape, 40, 40, 56, 56)
    out = frequency_fill(page, hole)
    assert out.dtype == np.float32 and out.shape == page.shape
    assert np.array_equal(out[~hole], page[~hole].astype(np.float32))
    error = np.abs(out[hole] - page[hole]).mean()
    smooth_error = np.abs(smooth_fill(page, hole)[hole] - page[hole]).mean()
    assert error < 40 and smooth_error > 70  # the stripes are 190 levels apart: a smear is ~95 off


def test_a_grey_page_stays_grey_and_a_two_dimensional_one_keeps_its_shape():
    grey = _stripes()
    hole = _box(grey.shape, 30, 10, 50, 80)
    out = frequency_fill(np.repeat(grey[..., None], 3, axis=2), hole)
    assert is_grey(out)
    flat = frequency_fill(grey, hole)
    assert flat.shape == grey.shape
    assert np.array_equal(flat, out[..., 0])


def test_a_colour_page_is_filled_per_channel():
    grey = _stripes()
    page = np.stack([grey, 255 - grey, np.full_like(grey, 90)], axis=2)
    hole = _box(grey.shape, 40, 40, 56, 56)
    out = frequency_fill(page, hole)
    assert np.abs(out[..., 2][hole] - 90).max() < 3
    assert np.abs(out[..., 0][hole] + out[..., 1][hole] - 255).mean() < 20


def test_no_hole_and_nothing_known_are_handled():
    page = np.full((32, 32, 3), 77, np.uint8)
    assert np.array_equal(frequency_fill(page, np.zeros((32, 32), bool)), page.astype(np.float32))
    assert (frequency_fill(page, np.ones((32, 32), bool)) == 0).all()


def test_regions_with_a_flat_ring_take_the_smooth_fill_and_only_the_others_are_reconstructed(monkeypatch):
    page = np.full((96, 192), 200, np.uint8)
    page[:, 96:] = _stripes()  # the right half striped, the left half flat
    hole = _box(page.shape, 40, 30, 56, 50) | _box(page.shape, 40, 130, 56, 150)
    reconstructed = []
    real_reconstruct = frequency_fill_module.reconstruct

    def recording(channel, known, levels):
        reconstructed.append(~known)
        return real_reconstruct(channel, known, levels)

    monkeypatch.setattr(frequency_fill_module, "reconstruct", recording)
    out = frequency_fill(page, hole)
    assert len(reconstructed) == 1
    assert np.array_equal(reconstructed[0], _box(page.shape, 40, 130, 56, 150))
    assert np.abs(out[40:56, 30:50] - 200).max() < 0.5
    assert np.abs(out[40:56, 130:150] - page[40:56, 130:150]).mean() < 40
