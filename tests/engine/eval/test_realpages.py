from PIL import Image

from engine.eval.realpages import mimi_strips


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
