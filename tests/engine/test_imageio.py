import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from engine.errors import InputError
from engine.imageio import GREY_MODES, MAX_PIXELS, load_image, load_mask, normalise, peek_image


def _save(tmp_path, img, name="page.png", **kwargs):
    path = tmp_path / name
    img.save(path, **kwargs)
    return path


def test_rgb_round_trip(tmp_path, rng):
    arr = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    rgb, alpha = load_image(_save(tmp_path, Image.fromarray(arr)))
    assert rgb.dtype == np.uint8 and rgb.shape == (7, 5, 3) and alpha is None
    assert np.array_equal(rgb, arr)


def test_rgba_keeps_alpha(tmp_path, rng):
    arr = rng.integers(0, 256, (4, 6, 4), dtype=np.uint8)
    rgb, alpha = load_image(_save(tmp_path, Image.fromarray(arr, "RGBA")))
    assert np.array_equal(rgb, arr[..., :3]) and np.array_equal(alpha, arr[..., 3])


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grey_becomes_three_equal_channels(tmp_path, mode):
    img = Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8)).convert(mode)
    rgb, alpha = load_image(_save(tmp_path, img))
    assert alpha is None and rgb.shape == (2, 2, 3)
    assert np.array_equal(rgb[..., 0], [[0, 255], [255, 0]]) and (rgb[..., 0] == rgb[..., 2]).all()


def test_la_keeps_alpha(tmp_path):
    img = Image.fromarray(np.dstack([np.full((2, 2), 90, np.uint8), np.array([[0, 255], [128, 7]], np.uint8)]),
                          "LA")
    rgb, alpha = load_image(_save(tmp_path, img))
    assert (rgb == 90).all() and np.array_equal(alpha, [[0, 255], [128, 7]])


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (3, 1))
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.putdata([0, 1, 0])
    img.info["transparency"] = 1
    rgb, alpha = load_image(_save(tmp_path, img, transparency=1))
    assert rgb[0, 0].tolist() == [255, 0, 0] and alpha.tolist() == [[255, 0, 255]]


def test_sixteen_bit_grey_keeps_the_high_byte(tmp_path):
    arr = np.array([[0, 65535], [257 * 100, 257 * 7]], dtype=np.uint16)
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16")
    rgb, _ = load_image(_save(tmp_path, img))
    assert rgb[..., 0].tolist() == [[0, 255], [100, 7]]


def test_cmyk_is_converted(tmp_path):
    img = Image.new("CMYK", (2, 2), (0, 0, 0, 0))
    rgb, alpha = load_image(_save(tmp_path, img, name="page.jpg", quality=100))
    assert alpha is None and (rgb > 240).all()


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(InputError, match="not an image Kesu can read"):
        load_image(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_image(path)


def test_truncated_file(tmp_path, rng):
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(InputError, match="damaged or truncated"):
        load_image(path)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("engine.imageio.MAX_PIXELS", 100)
    path = _save(tmp_path, Image.new("L", (20, 20)))
    with pytest.raises(InputError, match="too large"):
        load_image(path)


def test_zero_size_and_unsupported_mode():
    with pytest.raises(InputError, match="zero size"):
        normalise(SimpleNamespace(size=(0, 10), mode="RGB"))
    with pytest.raises(InputError, match="unsupported image mode 'XYZ'"):
        normalise(SimpleNamespace(size=(2, 2), mode="XYZ"))
    assert MAX_PIXELS >= 800 * 20000


def test_missing_and_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match="is a folder"):
        load_image(tmp_path)


def test_mask_must_match_the_image(tmp_path):
    path = _save(tmp_path, Image.fromarray(np.array([[0, 255, 0]], np.uint8)), name="m.png")
    assert load_mask(path, (3, 1)).tolist() == [[False, True, False]]
    with pytest.raises(InputError, match="masks must have the image's size"):
        load_mask(path, (4, 1))


def test_saved_png_gets_the_usual_file_mode(tmp_path):
    import os

    from engine.imageio import save_png_atomic

    old = os.umask(0o022)
    try:
        save_png_atomic(Image.new("L", (2, 2)), tmp_path / "out.png")
    finally:
        os.umask(old)
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == 0o644


def test_a_line_longer_than_any_page_is_refused_with_a_reason():
    from engine.imageio import MAX_SIDE

    with pytest.raises(InputError, match="a side longer than the 1,048,576 px"):
        normalise(SimpleNamespace(size=(150_000_000, 1), mode="L"), "line.png")
    assert MAX_SIDE >= 100_000  # a webtoon chapter of 100,000 px still goes


def test_frames_after_the_first_are_read(tmp_path):
    from engine.imageio import frame_count

    frames = [Image.new("L", (4, 3), v) for v in (10, 20, 30)]
    path = tmp_path / "scan.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert frame_count(path) == 3
    assert [int(load_image(path, i)[0][0, 0, 0]) for i in range(3)] == [10, 20, 30]
    with pytest.raises(InputError, match="no frame 4"):
        load_image(path, 3)


@pytest.mark.parametrize("mode", ["L", "LA", "I;16", "RGB", "RGBA", "P"])
def test_peek_image_reads_size_and_mode_without_decoding(tmp_path, mode):
    path = tmp_path / "p.png"
    Image.new(mode, (7, 5)).save(path)
    assert peek_image(path) == (7, 5, mode) == peek_image(path.read_bytes())
    assert (mode in GREY_MODES) == (mode in ("L", "LA", "I;16"))


def test_peek_image_of_a_file_that_is_no_image_is_none(tmp_path):
    (tmp_path / "x.png").write_text("not an image")
    assert peek_image(tmp_path / "x.png") is None
    assert peek_image(tmp_path / "missing.png") is None

