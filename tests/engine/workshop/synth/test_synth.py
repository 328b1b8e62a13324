"""The synthetic generator: determinism, shapes, exact masks, clean twins, hole fractions, box lettering."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from engine.errors import InputError
from engine.workshop.synth import InpaintSample, SynthPage, draw_text_in_box, fonts, make_inpaint_sample, make_page

SIZE = 256  # small pages keep the file fast; the generator scales its text sizes with the page


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    im = Image.fromarray(mask.astype(np.uint8) * 255)
    for _ in range(px):
        im = im.filter(ImageFilter.MaxFilter(3))
    return np.asarray(im) > 0


@pytest.fixture(scope="module")
def pages() -> list[SynthPage]:
    return [make_page(s, SIZE, SIZE) for s in range(12)]


def test_same_seed_same_bytes():
    a, b = make_page(5, SIZE, SIZE), make_page(5, SIZE, SIZE)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.clean.tobytes() == b.clean.tobytes()
    assert np.array_equal(a.text_mask, b.text_mask)
    c = make_page(6, SIZE, SIZE)
    assert a.image.tobytes() != c.image.tobytes()


def test_inpaint_same_seed_same_bytes():
    a, b, c = make_inpaint_sample(3), make_inpaint_sample(3), make_inpaint_sample(4)
    assert a.image.tobytes() == b.image.tobytes() and np.array_equal(a.hole, b.hole)
    assert a.image.tobytes() != c.image.tobytes()


def test_shapes_and_dtypes(pages):
    for p in pages:
        assert p.image.shape == (SIZE, SIZE, 3) and p.image.dtype == np.uint8
        assert p.clean.shape == (SIZE, SIZE, 3) and p.clean.dtype == np.uint8
        assert p.text_mask.shape == (SIZE, SIZE) and p.text_mask.dtype == bool
    rect = make_page(1, 200, 300)
    assert rect.image.shape == (200, 300, 3) and rect.text_mask.shape == (200, 300)


def test_grey_flag():
    g = make_page(2, SIZE, SIZE, grey=True).image
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])
    c = make_page(2, SIZE, SIZE, grey=False).image
    assert not (np.array_equal(c[..., 0], c[..., 1]) and np.array_equal(c[..., 1], c[..., 2]))


def test_most_pages_have_text_and_some_do_not():
    with_text = [make_page(s, SIZE, SIZE).text_mask.any() for s in range(40)]
    assert sum(with_text) >= 25  # text pages dominate
    assert sum(with_text) < 40  # but hard negatives (no text at all) exist


def test_image_equals_clean_outside_the_text(pages):
    for p in pages:
        diff = np.abs(p.image.astype(int) - p.clean.astype(int)).max(axis=2)
        # blur/resizing spread the text a few pixels and JPEG rings within its 8x8 blocks
        outside = ~_dilate(p.text_mask, 12)
        assert (diff[outside] > 12).mean() < 0.002
        if p.text_mask.any():
            assert (diff[p.text_mask] > 12).mean() > 0.2  # the text really changed those pixels


def test_text_mask_is_tight_not_boxes(pages):
    # glyph masks leave holes (counters, gaps between strokes): much of the mask's bounding box is not text
    shares = []
    for p in pages:
        m = p.text_mask
        if m.sum() > 200:
            ys, xs = np.nonzero(m)
            shares.append(m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].mean())
    assert shares and np.median(shares) < 0.6


def test_hole_fraction_in_range():
    for s in range(25):
        sample = make_inpaint_sample(s, 256, 256)
        assert isinstance(sample, InpaintSample)
        assert sample.image.shape == (256, 256, 3) and sample.image.dtype == np.uint8
        assert sample.hole.dtype == bool
        assert 0.03 <= sample.hole.mean() <= 0.30, (s, sample.hole.mean())


def test_draw_text_in_box_mask_inside_box():
    image = np.full((120, 200, 3), 255, np.uint8)
    font = fonts.available("en")[0].path
    box = (30, 20, 170, 100)
    out, mask = draw_text_in_box(image, box, "HELLO THERE, HOW ARE YOU TODAY?", font, seed=1)
    assert out.shape == image.shape and mask.dtype == bool and mask.any()
    x0, y0, x1, y1 = box
    outside = mask.copy()
    outside[y0:y1, x0:x1] = False
    assert not outside.any()
    changed = np.abs(out.astype(int) - image.astype(int)).max(axis=2) > 0
    assert not changed[
        ~_dilate(np.pad(np.ones((y1 - y0, x1 - x0), bool), ((y0, 120 - y1), (x0, 200 - x1))), 0)
    ].any()
    assert (out[mask] < 192).all()  # black text at >= 25% coverage is visibly darker
    assert image.min() == 255  # the input is not modified


def test_draw_text_in_box_errors():
    image = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(InputError, match="font not found"):
        draw_text_in_box(image, (0, 0, 40, 40), "hi", "/nonexistent.ttf", 0)
    with pytest.raises(InputError, match="too small"):
        draw_text_in_box(image, (10, 10, 11, 11), "hi", fonts.available("en")[0].path, 0)


def test_vertical_fonts_have_vertical_forms():
    # the table must not offer fonts without `vert` for vertical Japanese
    ja = fonts.available("ja")
    assert sum(fonts.supports_vertical(f) for f in ja) >= len(ja) // 2
    nanum = [f for f in fonts.available("ko") if "NanumGothic.ttf" in f.path]
    if nanum:  # a Korean face without vertical forms is detected as such
        assert not fonts.supports_vertical(nanum[0])


def test_every_font_package_is_in_the_dev_apt_list():
    from pathlib import Path

    listed = set()
    for line in (Path(__file__).parents[4] / "install" / "dev-apt-packages.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            listed.add(line)
    missing = {f.package for f in fonts.FONT_TABLE} - listed
    assert not missing, f"add these to install/dev-apt-packages.txt: {sorted(missing)}"
    for package in ("libreoffice-help-ja", "fortunes", "fortunes-zh", "openclipart-png", "tuxpaint-data"):
        assert package in listed


def test_vertical_columns_run_right_to_left():
    from engine.workshop.synth import lettering

    spec = next(f for f in fonts.available("ja") if fonts.supports_vertical(f))
    rng = np.random.default_rng(0)
    first_only = lettering.block(rng, spec, 30, ["あいうえお", ""], True, spacing=1.5).layers[0]
    second_only = lettering.block(rng, spec, 30, ["", "かきくけこ"], True, spacing=1.5).layers[0]
    assert first_only.shape == second_only.shape
    cols_first = np.nonzero(first_only.max(axis=0) > 0.5)[0]
    cols_second = np.nonzero(second_only.max(axis=0) > 0.5)[0]
    assert cols_first.min() > cols_second.max()  # the first column is to the right of the second


def _art(seed: int) -> np.ndarray:
    """A stand-in for a clean real strip: grey panels with thick black outlines."""
    rng = np.random.default_rng(seed)
    art = np.full((SIZE, SIZE), 200, np.uint8)
    for _ in range(6):
        y, x = rng.integers(0, SIZE - 40, 2)
        art[y:y + 40, x:x + 8] = 0
    return art


def test_letter_over_art_same_seed_same_bytes_and_mask_on_changed_pixels():
    from engine.workshop.synth.overart import letter_over_art

    pages = [letter_over_art(_art(s), s) for s in range(8)]
    again = letter_over_art(_art(3), 3)
    assert again.image.tobytes() == pages[3].image.tobytes()
    lettered = [p for p in pages if p.text_mask.any()]
    blank = [p for p in pages if not p.text_mask.any()]
    assert lettered and blank  # some pages carry text, some are pure negatives
    for p in blank:
        assert p.image.tobytes() == p.clean.tobytes()
    for p in lettered:
        changed = np.abs(p.image.astype(int) - p.clean.astype(int)).max(axis=2) > 40
        # pixels the lettering changed strongly lie on (or within JPEG/blur reach of) the mask
        assert (changed & ~_dilate(p.text_mask, 8)).sum() <= 0.002 * changed.size


def test_letter_over_art_refuses_a_float_image():
    from engine.workshop.synth.overart import letter_over_art

    with pytest.raises(ValueError, match="uint8"):
        letter_over_art(np.zeros((64, 64), np.float32), 0)


def test_holes_do_not_depend_on_the_background_generator(monkeypatch):
    from engine.workshop.synth import inpaint

    before = [make_inpaint_sample(s, 96, 96).hole for s in range(4)]

    def other_background(rng, H, W, colour):  # a generator that draws different amounts of randomness
        rng.random(1000)
        return np.zeros((H, W, 3), np.uint8)

    monkeypatch.setattr(inpaint, "_background", other_background)
    after = [make_inpaint_sample(s, 96, 96).hole for s in range(4)]
    assert all((a == b).all() for a, b in zip(before, after, strict=True))


def test_shouts_are_off_by_default_so_the_validation_pages_stay_the_same():
    for seed in (3, 11):
        a, b = make_page(seed, 256, 256), make_page(seed, 256, 256, shout_share=0.0)
        assert (a.image == b.image).all() and (a.text_mask == b.text_mask).all()


@pytest.mark.parametrize("script", ["ja", "en", "ko", "zh"])
def test_a_shout_is_one_or_two_short_lines_of_large_type(script):
    from engine.workshop.synth.page import shout

    let = shout(np.random.default_rng(5), script, 64)
    h, w = let.shape
    assert max(h, w) >= 64                   # at least one glyph of the asked size
    assert min(h, w) <= 2 * 64 * 1.6 + 64    # at most two lines (line pitch under 1.6 sizes, plus outline)
    assert let.mask().mean() > 0.05          # ink, not an empty box


def test_pages_with_shouts_have_more_text():
    plain = np.mean([make_page(s, 384, 384).text_mask.mean() for s in range(12)])
    shouted = np.mean([make_page(s, 384, 384, shout_share=1.0).text_mask.mean() for s in range(12)])
    assert shouted > plain


def test_rain_is_off_by_default_and_is_art_not_text():
    for seed in (3, 11):
        plain, explicit = make_page(seed, 256, 256), make_page(seed, 256, 256, rain_share=0.0)
        assert (plain.image == explicit.image).all() and (plain.text_mask == explicit.text_mask).all()
    changed = 0
    for seed in range(6):
        plain, rainy = make_page(seed, 256, 256), make_page(seed, 256, 256, rain_share=1.0)
        assert (plain.text_mask == rainy.text_mask).all()  # same lettering: rain draws from its own stream
        changed += int((plain.image != rainy.image).any())
    assert changed >= 4


def test_rain_draws_short_parallel_dashes_in_ink():
    from engine.workshop.synth import art

    canvas = np.ones((200, 200, 1), np.float32)
    art.rain(canvas, np.random.default_rng(2), np.zeros(1, np.float32))
    inked = canvas[..., 0] < 0.5
    assert 0.005 < inked.mean() < 0.3
    from scipy import ndimage

    labels, count = ndimage.label(inked)
    assert count >= 10
    sizes = ndimage.sum(inked, labels, range(1, count + 1))
    assert np.median(sizes) < 200  # dashes, not strokes across the panel


def test_sound_effects_are_their_own_part_of_the_text_mask(pages):
    for page in pages:
        assert not (page.sfx_mask & ~page.text_mask).any()
        assert (page.lettering_mask | page.sfx_mask == page.text_mask).all()
        assert not (page.lettering_mask & page.sfx_mask).any()
    assert any(page.sfx_mask.any() for page in pages)
    assert any(page.lettering_mask.any() for page in pages)


def test_lettering_over_art_tells_sound_effects_apart():
    from engine.workshop.synth.overart import letter_over_art

    art = np.full((384, 384), 235, np.uint8)
    found = [letter_over_art(art, s) for s in range(24)]
    assert any(p.sfx_mask.any() for p in found) and any(p.lettering_mask.any() for p in found)
    assert all(not (p.sfx_mask & ~p.text_mask).any() for p in found)


def test_hard_negatives_are_off_by_default_and_are_art_not_text():
    for seed in (3, 11):
        plain, explicit = make_page(seed, 256, 256), make_page(seed, 256, 256, negative_share=0.0)
        assert (plain.image == explicit.image).all() and (plain.sfx_mask == explicit.sfx_mask).all()
    changed = 0
    for seed in range(6):
        plain, busy = make_page(seed, 256, 256), make_page(seed, 256, 256, negative_share=1.0)
        # the same lettering (negatives draw from their own stream); only where new ink under it changes whether
        # a piece is visible enough to count as text (page.MIN_VISIBILITY) may the masks differ
        differ = int((busy.text_mask ^ plain.text_mask).sum())
        assert differ <= 0.05 * max(1, int((busy.text_mask | plain.text_mask).sum()))
        changed += int((plain.image != busy.image).any())
    assert changed >= 4


@pytest.mark.parametrize("painter", range(8))
def test_each_hard_negative_draws_ink(painter):
    from engine.workshop.synth import negatives

    inked = 0.0
    for seed in range(4):  # some draw partly off the canvas: at least one of four lands on it
        canvas = np.ones((240, 240, 1), np.float32)
        negatives.PAINTERS[painter](canvas, np.random.default_rng(seed), np.zeros(1, np.float32))
        inked = max(inked, float((canvas[..., 0] < 0.5).mean()))
    assert 0.0005 < inked < 0.5


def test_glyph_holes_are_one_to_three_big_outlined_glyphs_and_repeat_for_a_seed():
    from scipy import ndimage

    from engine.workshop.synth.inpaint import glyph_hole

    heights = []
    for seed in range(8):
        hole = glyph_hole(seed, 320, 320)
        assert hole.dtype == bool and hole.shape == (320, 320)
        assert 0.02 < hole.mean() < 0.6
        ys, xs = np.nonzero(hole)
        heights.append(max(np.ptp(ys), np.ptp(xs)))
        assert np.array_equal(hole, glyph_hole(seed, 320, 320))
        # outlined: no pinholes, the letters' counters are closed by the outline at most a few px wide
        assert ndimage.label(hole)[1] <= 12
    assert min(heights) >= 50 and max(heights) <= 320
    centred = glyph_hole(3, 256, 256, centre=(128, 128))
    ys, xs = np.nonzero(centred)
    assert abs((ys.min() + ys.max()) / 2 - 128) < 40 and abs((xs.min() + xs.max()) / 2 - 128) < 40
