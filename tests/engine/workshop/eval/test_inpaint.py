"""The inpainting evaluation's parts: background kinds, hole placement, every method, the summary."""

import numpy as np
import pytest

from engine.pipeline import Engine
from engine.pipeline.frequency_fill import frequency_fill
from engine.workshop.eval import inpaint as evaluation
from tests.conftest import make_tiny_weights


def _hole(shape, box):
    hole = np.zeros(shape, bool)
    y0, x0, y1, x1 = box
    hole[y0:y1, x0:x1] = True
    return hole


def test_backgrounds_are_told_apart_by_the_ring_around_the_hole():
    hole = _hole((80, 80), (30, 30, 50, 50))
    flat = np.full((80, 80, 3), 230, np.uint8)
    yy, xx = np.mgrid[0:80, 0:80]
    tone = np.where(((yy % 4) < 2) ^ ((xx % 4) < 2), 40, 230).astype(np.uint8)
    lines = flat.copy()
    lines[:, ::16] = 0
    assert evaluation.classify(flat, hole) == "flat"
    assert evaluation.classify(np.dstack([tone] * 3), hole) == "tone"
    assert evaluation.classify(lines, hole) == "line art"


def test_holes_avoid_the_boxes_do_not_overlap_and_repeat_for_a_seed():
    avoid = np.zeros((600, 700), bool)
    avoid[:, :250] = True
    placed = evaluation.place_holes(avoid.shape, avoid, seed=3, count=3)
    assert len(placed) == 3
    for y, x, patch in placed:
        assert not avoid[y:y + evaluation.PATCH, x:x + evaluation.PATCH].any()
        assert patch.shape == (evaluation.PATCH, evaluation.PATCH) and patch.any()
    for (y, x, _), (oy, ox, _) in zip(placed, placed[1:], strict=False):
        assert abs(y - oy) >= evaluation.PATCH or abs(x - ox) >= evaluation.PATCH
    again = evaluation.place_holes(avoid.shape, avoid, seed=3, count=3)
    assert [(y, x) for y, x, _ in again] == [(y, x) for y, x, _ in placed]
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(placed, again, strict=True))


def test_every_method_fills_only_the_hole(tmp_path, rng):
    engine = Engine.load(make_tiny_weights(tmp_path))
    page = rng.integers(0, 256, (96, 112, 3), dtype=np.uint8)
    hole = _hole(page.shape[:2], (30, 20, 60, 90))
    methods = evaluation.methods(engine)
    assert list(methods) == ["kesu model", "kesu pipeline", "flat fill", "smooth fill", "biharmonic fill",
                             "frequency fill", "opencv telea", "opencv navier-stokes", "opencv fsr"]
    for name, fill in methods.items():
        out = fill(page.copy(), hole)
        assert out.dtype == np.uint8 and out.shape == page.shape, name
        assert np.array_equal(out[~hole], page[~hole]), name


def test_the_summary_averages_per_method_and_kind_and_over_all():
    scores = {("m", "flat"): [(50.0, 1.0, 0.9, 10, 0.2)],
              ("m", "tone"): [(20.0, 3.0, 0.5, 10, 0.4), (30.0, 5.0, 0.7, 10, 0.9)]}
    rows = {(r["method"], r["kind"]): r for r in evaluation.summarise(scores, ["m"])}
    assert rows[("m", "tone")]["psnr"] == 25.0 and rows[("m", "tone")]["holes"] == 2
    assert rows[("m", "all")]["holes"] == 3 and rows[("m", "all")]["psnr"] == pytest.approx(100.0 / 3)
    assert rows[("m", "all")]["mae"] == 3.0
    assert rows[("m", "all")]["texture"] == 0.4  # the median over holes
    assert "texture" in evaluation.format_table(list(rows.values()))


def test_best_per_hole_takes_each_holes_best_method_and_leaves_the_methods_as_they_were():
    scores = {("a", "tone"): [(20.0, 3.0, 0.5, 10, 0.4), (30.0, 5.0, 0.7, 10, 0.9)],
              ("b", "tone"): [(22.0, 2.0, 0.6, 10, 0.3), (25.0, 6.0, 0.6, 10, 0.8)],
              ("a", "flat"): [(50.0, 1.0, 0.9, 10, 0.2)], ("b", "flat"): [(40.0, 2.0, 0.8, 10, 0.1)]}
    both, names = evaluation.best_per_hole(scores, ["a", "b"])
    assert names == ["a", "b", evaluation.BEST_PER_HOLE]
    assert both[(evaluation.BEST_PER_HOLE, "tone")] == [scores[("b", "tone")][0], scores[("a", "tone")][1]]
    assert both[(evaluation.BEST_PER_HOLE, "flat")] == scores[("a", "flat")]
    rows = {(r["method"], r["kind"]): r for r in evaluation.summarise(both, names)}
    assert rows[(evaluation.BEST_PER_HOLE, "all")]["psnr"] == pytest.approx((22 + 30 + 50) / 3)
    assert rows[("a", "all")]["psnr"] == pytest.approx(100 / 3)  # the methods' own rows unchanged


def test_the_evaluation_adds_the_best_per_hole_row_when_asked(monkeypatch, tmp_path):
    page = np.random.default_rng(5).integers(0, 200, (500, 500, 3), dtype=np.uint8)
    monkeypatch.setattr(evaluation, "pages", lambda root, limit: iter([("page", page, None)]))

    def paint(value):
        def fill(rgb, hole):
            out = rgb.copy()
            out[hole] = value
            return out
        return fill

    monkeypatch.setattr(evaluation, "chosen_methods",
                        lambda engine, options, names: {"dark": paint(40), "light": paint(160)})
    plain = evaluation.run(Engine(), tmp_path, None, None, log=lambda *a: None)
    assert {r["method"] for r in plain} == {"dark", "light"}
    rows = evaluation.run(Engine(), tmp_path, None, None, log=lambda *a: None, add_best_per_hole=True)
    by = {r["method"]: r for r in rows if r["kind"] == "all"}
    assert by[evaluation.BEST_PER_HOLE]["psnr"] >= max(by["dark"]["psnr"], by["light"]["psnr"])
    assert by[evaluation.BEST_PER_HOLE]["holes"] == by["dark"]["holes"] > 0


def test_texture_is_one_for_the_truth_and_low_for_a_smear():
    rng = np.random.default_rng(0)
    truth = np.repeat(rng.integers(0, 256, (64, 64, 1), dtype=np.uint8), 3, axis=2)
    hole = _hole((64, 64), (16, 16, 48, 48))
    assert evaluation.texture(truth, truth, hole) == pytest.approx(1.0)
    smear = truth.copy()
    smear[hole] = 128
    assert evaluation.texture(smear, truth, hole) < 0.5


def test_the_frequency_fill_row_is_the_engines_rounded_and_the_opencv_row_is_opencvs():
    import cv2

    rng = np.random.default_rng(2)
    page = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    hole = _hole(page.shape[:2], (20, 20, 40, 44))
    methods = evaluation.methods(Engine())
    expected = np.clip(np.rint(frequency_fill(page, hole)), 0, 255).astype(np.uint8)
    assert np.array_equal(methods["frequency fill"](page, hole), expected)
    opencv = np.zeros_like(page)
    cv2.xphoto.inpaint(page, np.where(hole, 0, 255).astype(np.uint8), opencv, cv2.xphoto.INPAINT_FSR_FAST)
    out = methods["opencv fsr"](page, hole)
    assert np.array_equal(out[hole], opencv[hole]) and np.array_equal(out[~hole], page[~hole])


def test_unknown_methods_are_named():
    from engine.errors import InputError

    with pytest.raises(InputError, match="opencv fsr"):
        evaluation.chosen_methods(Engine(), None, ["no such method"])


def test_big_holes_sit_on_art_off_the_text_and_repeat_for_a_seed():
    rng = np.random.default_rng(1)
    page = np.full((700, 800, 3), 240, np.uint8)
    page[:, 400:] = rng.integers(0, 256, (700, 400, 1), dtype=np.uint8)  # art on the right, paper on the left
    avoid = np.zeros(page.shape[:2], bool)
    avoid[:300, 400:] = True
    placed = evaluation.place_big_holes(page, avoid, seed=5, count=2)
    assert len(placed) == 2
    for y, x, patch in placed:
        assert patch.shape == (evaluation.BIG_PATCH, evaluation.BIG_PATCH) and patch.any()
        assert not avoid[y:y + evaluation.BIG_PATCH, x:x + evaluation.BIG_PATCH].any()
        hole = np.zeros(page.shape[:2], bool)
        hole[y:y + evaluation.BIG_PATCH, x:x + evaluation.BIG_PATCH] = patch
        assert evaluation.big_kind(page, hole) != "flat"
    again = evaluation.place_big_holes(page, avoid, seed=5, count=2)
    assert [(y, x) for y, x, _ in again] == [(y, x) for y, x, _ in placed]


def test_a_ring_of_ink_is_a_black_fill():
    page = np.full((80, 80, 3), 10, np.uint8)
    page[::7] = 200
    assert evaluation.big_kind(page, _hole((80, 80), (30, 30, 50, 50))) == "black fill"


@pytest.mark.parametrize("runner", ["run", "run_big_holes"])
def test_no_method_sees_the_truth_under_the_hole(monkeypatch, tmp_path, runner):
    rng = np.random.default_rng(4)
    page = rng.integers(0, 200, (700, 800, 3), dtype=np.uint8)  # busy art: never white
    monkeypatch.setattr(evaluation, "pages", lambda root, limit: iter([("page", page, None)]))
    seen = []

    def spy(rgb, hole):
        seen.append((rgb.copy(), hole.copy()))
        out = rgb.copy()
        out[hole] = 100
        return out

    monkeypatch.setattr(evaluation, "chosen_methods", lambda engine, options, names: {"spy": spy})
    rows = getattr(evaluation, runner)(Engine(), tmp_path, None, None, log=lambda *a: None)
    assert seen
    for rgb, hole in seen:
        assert hole.any() and (rgb[hole] == evaluation.HIDDEN_VALUE).all()
        assert (rgb[~hole] < 200).all()  # the rest of the crop is the page's
    assert rows and all(row["method"] == "spy" for row in rows)
