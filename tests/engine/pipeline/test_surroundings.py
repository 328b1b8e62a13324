import numpy as np
import pytest

from engine.pipeline import CleanOptions, kind_tight_masks
from engine.pipeline.masks import grow
from engine.pipeline.surroundings import SurroundingsCheck, is_bar_stack, split_by_surroundings, text_regions


def glyphs(page: np.ndarray, text: np.ndarray, y: int, x: int, stroke: int = 2, count: int = 3) -> None:
    """Draw ``count`` glyph-like crosses (ink 0) of ``stroke`` px at (y, x) onward, marking them in ``text``."""
    size = 12 + 2 * stroke
    for k in range(count):
        x0 = x + k * (12 + 4 * stroke)
        page[y:y + size, x0 + 6:x0 + 6 + stroke] = 0
        page[y + 6:y + 6 + stroke, x0:x0 + size] = 0
        text[y:y + size, x0:x0 + size] |= page[y:y + size, x0:x0 + size] == 0


def hatching(page: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> None:
    """Busy artwork: a line every 3 px."""
    page[y0:y1, x0:x1] = 255
    page[y0:y1:3, x0:x1] = 40


@pytest.fixture
def page():
    grey = np.full((160, 300), 255, np.uint8)
    text = np.zeros(grey.shape, bool)
    glyphs(grey, text, 20, 20)                 # lettering on white paper
    glyphs(grey, text, 20, 160)                # more lettering: the page's lettering strokes are 2 px
    hatching(grey, 80, 160, 0, 300)
    glyphs(grey, text, 110, 20)                # text drawn over the hatching
    return grey, text


def split(grey, text, probability=0.9, check=None):
    prob = np.where(text, probability, 0.0).astype(np.float32)
    return split_by_surroundings(text, grow(text, 2), prob, grey, check or SurroundingsCheck())


def test_text_on_calm_paper_is_lettering_and_text_over_busy_art_is_not(page):
    grey, text = page
    kinds = split(grey, text)
    assert kinds["lettering"][:60].sum() == text[:60].sum()      # every pixel of the paper's text
    assert not kinds["lettering"][80:].any()                    # none of the text over the hatching
    assert kinds["sfx"][80:].sum() == text[80:].sum()           # a sure detection over art: a sound effect
    for a, b in [("lettering", "sfx"), ("lettering", "art"), ("sfx", "art")]:
        assert not (kinds[a] & kinds[b]).any()


def test_unsure_text_over_busy_art_is_artwork(page):
    grey, text = page
    kinds = split(grey, text, probability=0.4)
    assert not kinds["sfx"].any()
    assert kinds["art"][80:].sum() == text[80:].sum()
    assert kinds["lettering"][:60].sum() == text[:60].sum()     # calm paper's text is lettering however unsure


def test_text_much_bolder_than_the_pages_lettering_is_drawn_even_on_paper(page):
    grey, text = page
    glyphs(grey, text, 20, 100, stroke=8, count=1)              # one bold glyph on the paper, beside the lettering
    kinds = split(grey, text)
    bold = np.zeros_like(text)
    bold[20:48, 100:128] = text[20:48, 100:128]
    assert bold.any() and kinds["sfx"][bold].all()
    assert not kinds["lettering"][bold].any()
    no_bold_rule = split(grey, text, check=SurroundingsCheck(bold_ratio=100.0))
    assert no_bold_rule["lettering"][bold].all()


def test_regions_report_their_ring_and_strokes(page):
    grey, text = page
    prob = np.where(text, 0.9, 0.0).astype(np.float32)
    regions = text_regions(text, grow(text, 2), prob, grey)
    calm = [r for r in regions if r.window[0] < 60]
    busy = [r for r in regions if r.window[0] >= 80]
    assert calm and busy
    assert all(r.busy < 0.05 for r in calm) and all(r.busy > 0.5 for r in busy)
    assert all(r.probability == pytest.approx(0.9) for r in regions)
    assert all(1.5 <= r.stroke <= 4 for r in regions)


def test_a_page_without_text_gives_empty_masks():
    grey = np.full((50, 60), 255, np.uint8)
    empty = np.zeros(grey.shape, bool)
    kinds = split(grey, empty)
    assert all(not m.any() for m in kinds.values())


def test_the_engine_splits_a_one_kind_detector_by_surroundings_and_keeps_channels_without_the_check(page):
    grey, text = page
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    prob = {"lettering": np.where(grow(text, 1), 0.95, 0.02).astype(np.float32)}
    both = ("lettering", "sfx")
    found = kind_tight_masks(prob, rgb, CleanOptions(), both)
    assert found["lettering"][:60].any() and not found["lettering"][80:].any()
    assert found["sfx"][80:].any() and not found["sfx"][:60].any()
    plain = kind_tight_masks(prob, rgb, CleanOptions(check_surroundings=False), both)
    assert plain["lettering"][80:].any() and not plain["sfx"].any()  # one channel: everything is lettering


def test_text_that_leaves_no_page_around_it_is_lettering():
    grey = np.zeros((40, 40), np.uint8)
    hatching(grey, 0, 40, 0, 40)
    text = np.ones(grey.shape, bool)
    kinds = split(grey, text)
    assert kinds["lettering"].all()


def test_a_two_channel_detector_has_the_last_word_on_drawn_text(page):
    grey, text = page
    prob = np.where(text, 0.9, 0.0).astype(np.float32)
    said = {"lettering": prob.copy(), "sfx": np.zeros_like(prob)}
    said["sfx"][:60, 150:] = np.where(text[:60, 150:], 0.95, 0.0)   # the right-hand lettering on paper: "sfx"
    said["lettering"][:60, 150:] = 0.1
    kinds = split_by_surroundings(text, grow(text, 2), np.maximum(said["lettering"], said["sfx"]), grey,
                                  kinds=said)
    assert kinds["sfx"][:60, 150:].sum() == text[:60, 150:].sum()
    assert kinds["lettering"][:60, :150].sum() == text[:60, :150].sum()


def test_hollow_letters_that_the_mask_fills_are_measured_by_their_ink(page):
    grey, text = page
    hollow = np.zeros_like(text)
    grey[16:56, 96:136] = 0                     # an outlined letter: a 1 px dark outline around paper
    grey[17:55, 97:135] = 255
    hollow[16:56, 96:136] = True                # the mask fills it whole (mostly paper)
    kinds = split(grey, text | hollow)
    assert kinds["lettering"][hollow].all()
    filled_by_ink = split(grey, text | hollow, check=SurroundingsCheck(inked_share=0.0))
    assert not filled_by_ink["lettering"][hollow].any()   # measured on the mask, it would count as bold


def bars(grey: np.ndarray, text: np.ndarray, y: int, x: int, count: int, length: int = 40, along_x: bool = True,
         step: int = 8) -> None:
    """``count`` bars 4 px thick, ``length`` long, ``step`` px apart (ink 0), marked in ``text``: side by side when
    ``along_x`` (horizontal bars stacked down the page), else vertical bars one under another (end to end)."""
    for k in range(count):
        if along_x:
            bar = np.s_[y + k * step:y + k * step + 4, x:x + length]
        else:
            bar = np.s_[y + k * (length + 4):y + k * (length + 4) + length, x:x + 4]
        grey[bar] = 0
        text[bar] = True


def test_a_stack_of_parallel_bars_on_paper_is_artwork_in_every_mode(page):
    grey, text = page
    grille = np.zeros_like(text)
    bars(grey, grille, 8, 110, count=6, step=8)                # a speaker grille on the paper beside the lettering
    kinds = split(grey, text | grille)
    assert kinds["art"][grille].all()
    assert not (kinds["lettering"] | kinds["sfx"])[grille].any()
    assert kinds["lettering"][:60].sum() == text[:60].sum()    # the lettering beside it is still lettering
    few = np.zeros_like(text)
    bars(grey, few, 8, 250, count=3, length=30)                  # three bars (a 三) are no pattern
    assert split(grey, text | grille | few)["lettering"][few].all()


def test_bars_end_to_end_are_not_a_stack():
    grey = np.full((260, 60), 255, np.uint8)
    text = np.zeros(grey.shape, bool)
    bars(grey, text, 4, 28, count=5, length=40, along_x=False)   # a column of long dashes: ――――
    assert not is_bar_stack(text)
    side_by_side = np.zeros_like(text)
    bars(np.full_like(grey, 255), side_by_side, 4, 4, count=5, length=40)
    assert is_bar_stack(side_by_side)


def test_a_row_of_exclamation_marks_is_not_a_stack():
    grey = np.full((60, 120), 255, np.uint8)
    shout = np.zeros(grey.shape, bool)
    for k in range(6):                                          # !!!!!! : six bars, each with its dot
        shout[8:36, 8 + k * 16:12 + k * 16] = True
        shout[40:45, 8 + k * 16:12 + k * 16] = True
    assert not is_bar_stack(shout)
    grille = shout.copy()
    grille[40:45] = False
    assert is_bar_stack(grille)                                 # the same bars without their dots: a grille


def test_bars_at_irregular_spacing_are_not_a_stack():
    text = np.zeros((80, 120), bool)
    for x in (8, 16, 24, 60, 68, 76):                           # 川川: two groups of three strokes
        text[8:48, x:x + 3] = True
    assert not is_bar_stack(text)
