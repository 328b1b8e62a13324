import argparse

import numpy as np
import pytest

from engine.cli import _thresholds
from engine.workshop.eval.textseg import InkCounts, Predictor, format_table, lettering_ink, run, visible_truth


class FixedProbability:
    """Stands in for the engine: a left-to-right ramp of text probability, the same for every page."""

    def model_kinds(self):
        return ("lettering",)

    def detect_kinds(self, rgb, options):
        h, w = rgb.shape[:2]
        return {"lettering": np.broadcast_to(np.linspace(0.0, 1.0, w, dtype=np.float32), (h, w))}


def test_ink_counts_score_boxes_and_outside_share():
    grey = np.full((40, 40), 255, np.uint8)
    grey[5:15, 5:15] = 0        # box A: 100 ink pixels
    grey[25:35, 25:35] = 0      # box B: 100 ink pixels
    pred = np.zeros((40, 40), bool)
    pred[5:15, 5:15] = True     # A fully covered
    pred[25:35, 25:29] = True   # B 40% covered
    pred[0:2, 0:10] = True      # 20 mask pixels outside every box
    counts = InkCounts()
    counts.add(pred, grey, [(5, 5, 15, 15), (25, 25, 35, 35)])
    scores = counts.scores()
    assert scores["ink_recall"] == pytest.approx(140 / 200)
    assert scores["boxes_90"] == pytest.approx(0.5)
    assert scores["mask_outside_boxes"] == pytest.approx(20 / 160)


def test_lettering_is_the_ink_wholly_inside_a_box_not_the_outline_crossing_it():
    grey = np.full((60, 60), 255, np.uint8)
    grey[20:30, 20:26] = 0      # a glyph inside the box: 60 pixels
    grey[10:50, 12] = 0         # a balloon outline running through the box and out of it
    box = (15, 10, 40, 40)
    (letters,) = lettering_ink(grey, [box])
    assert letters.shape == (25, 30)
    assert letters.sum() == 60 and letters[5:15, 10:16].all()
    pred = np.zeros((60, 60), bool)
    pred[20:30, 20:26] = True   # the mask covers the glyph, not the outline
    counts = InkCounts()
    counts.add(pred, grey, [box])
    scores = counts.scores()
    assert scores["lettering_recall"] == 1.0 and scores["lettering_boxes_90"] == 1.0
    assert scores["ink_recall"] == pytest.approx(60 / (60 + 25))   # the outline's 25 pixels inside the box count
    assert scores["boxes_90"] == 0.0


def test_visible_truth_drops_text_drawn_in_the_colour_beneath_it():
    clean = np.full((20, 40, 3), 255, np.uint8)
    clean[:, 20:] = 0                       # right half: a black area
    image = clean.copy()
    image[5:15, 5:10] = 0                   # a black glyph on white: changes the page
    image[5:15, 25:30] = 0                  # a black glyph on black: changes nothing
    image[5:15, 10:12] = 252                # a faint rim, 3 levels: below what counts as visible
    truth = np.zeros((20, 40), bool)
    truth[5:15, 5:12] = truth[5:15, 25:30] = True
    visible = visible_truth(image, clean, truth)
    assert visible.sum() == 50 and visible[5:15, 5:10].all()


def test_synthetic_rows_carry_the_visible_truth_ceiling():
    rows = run(FixedProbability(), None, None, limit=2, log=lambda m: None, thresholds=[0.5])
    assert 0.5 < rows[0]["visible_f1"] < 1.0   # generated pages hold some text that cannot be seen
    assert "visibleF1" in format_table(rows)


def test_sweep_gives_one_row_per_threshold_and_recall_falls_as_the_level_rises():
    rows = run(FixedProbability(), None, None, limit=2, log=lambda m: None, thresholds=[0.2, 0.5, 0.8])
    modes = [r for r in rows if r["set"] != "synthetic validation"]
    assert [r["set"] for r in modes] == ["synthetic validation, dialogue mode vs its kind",
                                         "synthetic validation, sfx mode vs its kind"]
    rows = [r for r in rows if r["set"] == "synthetic validation"]
    assert [r["threshold"] for r in rows] == [0.2, 0.5, 0.8]
    recalls = [r["recall"] for r in rows]
    assert recalls[0] > recalls[1] > recalls[2]
    table = format_table(rows)
    assert "0.2" in table and "0.8" in table and "synthetic validation" in table


def test_overlays_show_the_engines_threshold_when_it_is_swept():
    from engine.pipeline import CleanOptions

    assert Predictor(None, CleanOptions(threshold=0.4), [0.3, 0.4]).shown == 0.4
    assert Predictor(None, CleanOptions(threshold=0.5), [0.3, 0.4]).shown == 0.3


@pytest.mark.parametrize("text", ["0", "1.5", "a,b", ""])
def test_threshold_list_rejects_levels_outside_zero_one(text):
    with pytest.raises(argparse.ArgumentTypeError):
        _thresholds(text)


def test_threshold_list_parses():
    assert _thresholds("0.3,0.5") == [0.3, 0.5]
