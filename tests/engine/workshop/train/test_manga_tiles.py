"""Text-free tiles of real manga pages: the grid search and the cutting, on pages made here."""

import json

import numpy as np
import pytest
from PIL import Image

from engine.errors import InputError
from engine.workshop.train.manga_tiles import cut_tiles, folder_pages, free_tile_origins, manga_pages


def test_free_tiles_hold_no_avoided_pixel_and_every_free_grid_square_is_found():
    avoid = np.zeros((300, 400), bool)
    avoid[100, 250] = True
    origins = free_tile_origins(avoid, size=100, stride=50)
    expected = [(y, x) for y in range(0, 201, 50) for x in range(0, 301, 50)
                if not avoid[y:y + 100, x:x + 100].any()]
    assert origins == expected
    assert (0, 0) in origins and (50, 200) not in origins and (0, 300) in origins
    assert free_tile_origins(np.zeros((50, 400), bool), size=100) == []
    # allowed a share of avoided pixels, the square over the one pixel comes back
    assert (50, 200) in free_tile_origins(avoid, size=100, stride=50, min_free=0.99)


def test_cut_tiles_marks_the_ocr_boxes_and_the_detected_text_as_transparent(tmp_path):
    root = tmp_path / "realpages"
    (root / "mokuro").mkdir(parents=True)
    page = np.full((400, 300, 3), 180, np.uint8)
    Image.fromarray(page).save(root / "mokuro" / "p1.jpg", quality=95)
    # an OCR box at the top left (x0, y0, x1, y1), and the detector finds text at the bottom right
    (root / "mokuro" / "p1.json").write_text(json.dumps({"blocks": [{"box": [0, 0, 60, 60]}]}))

    def detect(rgb):
        found = np.zeros(rgb.shape[:2], bool)
        found[380:390, 280:290] = True
        return found

    text = np.zeros((400, 300), bool)
    text[:68, :68] = True                 # the box grown by the margin
    text[372:398, 272:298] = True         # the detected text grown by the margin
    count = cut_tiles(manga_pages(root), tmp_path / "tiles", detect, size=128, stride=32, margin=8, min_free=0.9,
                      log=lambda m: None)
    names = sorted(p.name for p in (tmp_path / "tiles").glob("*.png"))
    assert count == len(names) == len(free_tile_origins(text, 128, 32, 0.9))
    assert not any(n.endswith("-y0000-x0000.png") for n in names)  # 68x68 of 128x128 is text: not 90% free
    for name in names:
        y, x = int(name.split("-y")[1][:4]), int(name.split("-x")[1][:4])
        tile = np.asarray(Image.open(tmp_path / "tiles" / name))
        assert tile.shape == (128, 128, 4)
        assert np.array_equal(tile[..., 3] == 0, text[y:y + 128, x:x + 128])
        assert np.abs(tile[..., :3].astype(int) - 180).max() <= 2


def test_a_folder_of_pages_is_cut_with_the_detector_alone(tmp_path):
    (tmp_path / "chapter").mkdir()
    Image.fromarray(np.full((300, 300, 3), 90, np.uint8)).save(tmp_path / "chapter" / "p01.png")
    (tmp_path / "chapter" / "notes.txt").write_text("not a page")
    count = cut_tiles(folder_pages(tmp_path / "chapter"), tmp_path / "tiles", lambda rgb: np.zeros(rgb.shape[:2], bool),
                      size=128, stride=64, log=lambda m: None)
    assert count == 9 and (tmp_path / "tiles" / "chapter-p01-y0064-x0128.png").exists()


def test_cut_tiles_says_where_the_pages_should_be(tmp_path):
    with pytest.raises(InputError, match="--pages"):
        cut_tiles(manga_pages(tmp_path), tmp_path / "tiles", lambda rgb: np.zeros(rgb.shape[:2], bool),
                  log=lambda m: None)
