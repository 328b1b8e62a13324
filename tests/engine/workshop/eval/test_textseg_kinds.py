"""Per-kind evaluation on pages boxed by kind; the annotation format and the boxed-page training targets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.workshop.eval import kinds
from engine.workshop.eval.textseg_kinds import KindCounts, spread
from engine.workshop.train.manga_boxes import targets


def test_the_stored_annotations_load_and_name_known_kinds():
    for name in ("openmantra-dev", "blackjack"):
        pages = kinds.load(name)
        assert pages and all(b.kind in kinds.KINDS for boxes in pages.values() for b in boxes)
    assert len(kinds.load("openmantra-dev")) == 78 and len(kinds.load("blackjack")) == 12


def test_an_unknown_kind_or_empty_box_is_refused(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"set": "x", "pages": {"p.jpg": [{"box": [0, 0, 5, 5],
                                                                                  "kind": "logo"}]}}))
    with pytest.raises(ValueError, match="unknown kind 'logo'"):
        kinds.load("x", tmp_path)
    (tmp_path / "y.json").write_text(json.dumps({"set": "y", "pages": {"p.jpg": [{"box": [5, 0, 5, 5],
                                                                                  "kind": "sfx"}]}}))
    with pytest.raises(ValueError, match="empty box"):
        kinds.load("y", tmp_path)


def test_save_then_load_gives_the_same_boxes(tmp_path):
    pages = {"a.jpg": [kinds.KindBox((1, 2, 30, 40), "sfx"), kinds.KindBox((0, 0, 9, 9), "sign")], "b.jpg": []}
    kinds.save("z", "z", pages, tmp_path)
    loaded = kinds.load("z", tmp_path)
    assert sorted(loaded["a.jpg"], key=lambda b: b.box) == sorted(pages["a.jpg"], key=lambda b: b.box)
    assert loaded["b.jpg"] == []


def test_artwork_is_marked_ink_outside_every_box_and_sfx_recall_counts_ink_in_sfx_boxes():
    grey = np.full((100, 100), 255, np.uint8)
    grey[10:20, 10:20] = 0   # lettering inside a dialogue box
    grey[50:60, 50:60] = 0   # a sound effect
    grey[80:90, 80:90] = 0   # art
    pred = np.zeros((100, 100), bool)
    pred[10:20, 10:20] = True
    pred[50:55, 50:60] = True   # half the sound effect
    pred[80:82, 80:90] = True   # 20 px of art
    counts = KindCounts()
    lettering_box = (5, 5, 25, 25)
    lettering = [np.zeros((20, 20), bool)]
    lettering[0][5:15, 5:15] = True
    art = counts.add(pred, grey, [lettering_box], [kinds.KindBox((45, 45, 65, 65), "sfx")], lettering)
    scores = counts.scores()
    assert art == 20 and scores["art_px_median"] == 20
    assert scores["lettering_recall"] == 1.0 and scores["lettering_boxes_90"] == 1.0
    assert scores["sfx_recall"] == pytest.approx(0.5)
    assert scores["mask_outside_lettering"] == pytest.approx((50 + 20) / (100 + 50 + 20))


def test_spread_takes_pages_over_the_whole_set():
    assert spread(list(range(10)), 4) == [0, 3, 6, 9]
    assert spread(list(range(3)), 4) == [0, 1, 2] and spread(list(range(5)), None) == list(range(5))


def test_boxed_page_targets_score_art_everywhere_and_leave_each_box_open_for_its_kind():
    boxes = [kinds.KindBox((10, 10, 20, 20), "lettering"), kinds.KindBox((30, 30, 40, 40), "sfx"),
             kinds.KindBox((50, 50, 60, 60), "sign")]
    target, scored = targets((80, 80), boxes, 2, margin=0)
    assert not target.any()
    assert scored[0, 15, 15] == 0 and scored[1, 15, 15] == 1      # lettering: "not a sound effect"
    assert scored[0, 35, 35] == 1 and scored[1, 35, 35] == 0      # sound effect: "not lettering"
    assert scored[:, 55, 55].tolist() == [0, 0]                   # a sign: neither
    assert scored[:, 70, 70].tolist() == [1, 1]                   # art: neither kind
