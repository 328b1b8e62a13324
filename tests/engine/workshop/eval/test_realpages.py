import numpy as np
from PIL import Image

from engine.workshop.eval.realpages import erase_gutter_credits, mimi_strips, real_art_files


def test_mimi_strips_skip_the_no_balloon_marker(tmp_path):
    folder = tmp_path / "mimi-and-eunice-clean"
    for sub in ("images", "word-bubbles", "transcripts"):
        (folder / sub).mkdir(parents=True)
    for stem in ("1", "2"):
        Image.new("L", (40, 20), 255).save(folder / "images" / f"{stem}.png")
    (folder / "word-bubbles" / "1.tsv").write_text("head\nhead\nMIMI\t2\t3\t12\t9 }}hi\n")
    (folder / "word-bubbles" / "2.tsv").write_text("head\nhead\nNOBODY\t-1\t-1\t-1\t-1 }}No dialog in this strip\n")
    (folder / "transcripts" / "1.txt").write_text("title\nMIMI: Hello there\n")
    (folder / "transcripts" / "2.txt").write_text("title\n")
    strips = {s.image.stem: s for s in mimi_strips(tmp_path)}
    assert strips["1"].balloons == [("MIMI", (3, 2, 9, 12))]
    assert strips["1"].lines == [("MIMI", "Hello there")]
    assert strips["2"].balloons == []


def test_real_art_files_hold_out_every_fifth(tmp_path):
    for i in range(7):
        Image.new("L", (4, 4), 255).save(tmp_path / f"{i:03}.png")
    assert [p.name for p in real_art_files(tmp_path, held_out=True)] == ["000.png", "005.png"]
    assert [p.name for p in real_art_files(tmp_path, held_out=False)] == ["001.png", "002.png", "003.png",
                                                                          "004.png", "006.png"]


def test_erase_gutter_credits_whitens_the_credit_but_not_the_panels():
    strip = np.full((300, 1200), 255, np.uint8)
    for x0, x1 in ((10, 380), (410, 780), (810, 1190)):  # three grey panels with a black outline
        strip[10:290, x0:x1] = 180
        strip[100:110, x0 + 20:x1 - 20] = 0
    strip[40:260:6, 392:398] = 0  # the credit's letters in the first gutter (centre 0.33 of the width)
    cleaned = erase_gutter_credits(strip)
    assert (cleaned[:, 381:409] == 255).all()
    assert (cleaned[:, :381] == strip[:, :381]).all() and (cleaned[:, 409:] == strip[:, 409:]).all()
