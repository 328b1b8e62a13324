import numpy as np
import torch

from engine import bench
from engine.pipeline.precision import bfloat16_is_native


def test_grown_to_share_grows_as_little_as_needed():
    mask = np.zeros((100, 100), bool)
    mask[50, 50] = True
    grown = bench.grown_to_share(mask, 0.05)  # 500 pixels: a 23x23 square (529) is the first to reach it
    assert grown.sum() == 23 * 23 and grown[50, 50]
    empty = np.zeros((10, 10), bool)
    assert not bench.grown_to_share(empty, 0.05).any()


def test_worker_times_every_stage_on_a_small_page():
    threads = torch.get_num_threads()
    try:
        result = bench.worker(320, 256, None, random_weights=True, threads=1)
    finally:
        torch.set_num_threads(threads)  # the worker sets it for its (normally own) process
    names = list(result["stages"])
    assert names[:11] == ["load models", "detect", "threshold+snap", "tell the kinds apart", "grow", "flat fill",
                          "repeat fill", "inpaint", "detect, same size again", "inpaint 5% by the model",
                          "  the same, repeat fill first"]
    assert names[11].startswith("  + 2 sound effects (")  # the 5% mask with two big sound effects erased too
    assert names[12].startswith("  + 2 sound effects over the art (")  # the same two over the page's artwork
    # the 5% inpainting again on the other pages, each named with its share and crop area, then with the repeat
    # fill first
    others = names[13:]
    assert len(others) == 2 * len(bench.FIVE_PERCENT_PAGES)
    assert all(f"page {seed}: " in name and "Mpx of crops" in name
               for seed, name in zip(bench.FIVE_PERCENT_PAGES, others[::2], strict=True))
    assert all(name == f"  page {seed}, repeat fill first"
               for seed, name in zip(bench.FIVE_PERCENT_PAGES, others[1::2], strict=True))
    assert all(s["seconds"] >= 0 and s["peak_mb"] > 0 for s in result["stages"].values())
    assert result["five_percent_mask"] >= 5.0
    assert result["size"] == "320x256" and result["weights"] == "random"
    assert result["networks_in"] == ("bfloat16" if bfloat16_is_native() else "float32")


def test_float32_is_what_the_worker_reports_when_asked_for():
    threads = torch.get_num_threads()
    try:
        result = bench.worker(192, 160, None, random_weights=True, threads=1, float32=True)
    finally:
        torch.set_num_threads(threads)
    assert result["networks_in"] == "float32"


def test_bench_page_is_the_bundled_page_cut_or_mirrored_to_size():
    full = bench.bench_page(1654, 2339)
    assert full.image.shape == (2339, 1654, 3) and full.text_mask.shape == (2339, 1654)
    assert 0.01 < full.text_mask.mean() < 0.05  # the generated page's true text
    small = bench.bench_page(300, 200)  # a window of the page around the text nearest its centre
    assert small.text_mask.any()
    assert small.image.shape == (200, 300, 3)
    strip = bench.bench_page(800, 5000)  # taller than the page: mirrored below it
    assert strip.image.shape == (5000, 800, 3)
    assert (strip.image[2339:2339 + 100, :, 0] == full.image[2338:2238:-1, :800, 0]).all()
    variants = [bench.bench_page(640, 480, v) for v in bench.FIVE_PERCENT_PAGES]
    assert all(not np.array_equal(v.image, small.image) for v in variants)
    assert all(v.text_mask.any() for v in variants)


def test_two_sound_effects_are_two_big_glyph_groups_apart():
    from scipy import ndimage

    hole = bench.two_sound_effects(1200, 900)
    assert hole.shape == (1200, 900)
    grouped, count = ndimage.label(ndimage.binary_dilation(hole, iterations=20))
    assert count == 2  # two groups, each of one to three glyphs
    for label in (1, 2):
        ys, xs = np.nonzero((grouped == label) & hole)
        assert max(np.ptp(ys), np.ptp(xs)) >= 60  # sound-effect sized
    assert np.array_equal(hole, bench.two_sound_effects(1200, 900))
    assert bench.two_sound_effects(300, 200).shape == (300, 200)  # a page smaller than the area still works
