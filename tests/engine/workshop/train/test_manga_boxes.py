"""Boxed manga pages as training targets: the boxes open what their kind leaves unknown, and a sound effect's
letters, told from the art by lying wholly inside their box, can be positives."""

import json

import numpy as np
from PIL import Image

from engine.workshop.eval.kinds import KindBox
from engine.workshop.train import manga_boxes


def _page():
    """White page: a sound-effect box (x 20-60, y 10-50) holding a letter blob and crossed by a speed line that runs
    out of it, a lettering box further down, and artwork (a blob) outside every box."""
    grey = np.full((100, 100), 255, np.uint8)
    grey[20:35, 28:40] = 0           # the sound effect's letter, wholly inside its box
    grey[44, 0:100] = 0              # a speed line through the box and out of it
    grey[70:80, 70:80] = 0           # artwork
    boxes = [KindBox((20, 10, 60, 50), "sfx"), KindBox((10, 60, 40, 90), "lettering")]
    return grey, boxes


def test_without_the_page_the_targets_are_zero_and_the_boxes_open_only_their_kind():
    grey, boxes = _page()
    target, scored = manga_boxes.targets(grey.shape, boxes, 2, margin=0)
    assert not target.any()
    assert scored[0, 20, 30] == 1 and scored[1, 20, 30] == 0      # sfx box: "not lettering", sfx open
    assert scored[0, 70, 20] == 0 and scored[1, 70, 20] == 1      # lettering box: the other way round
    assert scored[:, 75, 75].tolist() == [1, 1]                   # artwork: a negative for both
    one, scored_one = manga_boxes.targets(grey.shape, boxes, 1, margin=0)
    assert not one.any() and scored_one[0, 20, 30] == 0 and scored_one[0, 70, 20] == 0


def test_the_letters_wholly_inside_a_sound_effect_box_are_its_positives():
    grey, boxes = _page()
    for channels, sfx in ((2, 1), (1, 0)):
        target, scored = manga_boxes.targets(grey.shape, boxes, channels, margin=0, grey=grey)
        letter = grey[20:35, 28:40] == 0
        assert target[sfx, 20:35, 28:40][letter].all() and scored[sfx, 20:35, 28:40][letter].all()
        assert target.sum() == letter.sum()                       # the speed line and the artwork are not text
        assert scored[sfx, 44, 30] == 0                           # the line inside the box stays open
        assert scored[sfx, 44, 80] == 1 and target[sfx, 44, 80] == 0  # and is a negative outside it
        if channels == 2:
            assert not target[0].any()


def test_a_boxed_page_is_scaled_with_its_positives(tmp_path):
    grey, boxes = _page()
    Image.fromarray(grey).save(tmp_path / "p.png")
    annotation = {"set": "pages", "pages": {"p.png": [{"box": list(b.box), "kind": b.kind} for b in boxes]}}
    (tmp_path / "pages.json").write_text(json.dumps(annotation), encoding="utf-8")
    pages = manga_boxes.BoxedPages(str(tmp_path), str(tmp_path / "pages.json"))
    scaled, target, scored = pages.page(np.random.default_rng(0), 2, sfx_letters=True)
    assert target.shape == scored.shape == (2, *scaled.shape)
    assert target[1].sum() > 0 and not target[0].any()
    assert (scaled[target[1] > 0] < 128).mean() > 0.9            # the positives stay on the letter's ink
    _, plain, _ = pages.page(np.random.default_rng(0), 2)
    assert not plain.any()
