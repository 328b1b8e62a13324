import numpy as np
import pytest
import torch

from engine import bench_pages
from engine.cli import main
from engine.pipeline import CleanOptions, Engine
from engine.workshop.synth import make_page


@pytest.fixture(scope="module")
def engine():
    return Engine.load()  # the shipped weights: a random detector finds no text to time


@pytest.mark.parametrize("options", [CleanOptions(), CleanOptions(use_repeat_fill=False, allow_bfloat16=False)])
def test_time_page_runs_clean_stage_by_stage(engine, options):
    page = make_page(7, 512, 384)
    numbers, cleaned = bench_pages.time_page(engine, page.image, options)
    # the stages it times are the pipeline's, in its order: the page comes out as Engine.clean makes it
    assert np.array_equal(cleaned, engine.clean(page.image, options).image)
    stages = list(numbers["seconds"])
    assert stages[:4] == ["detect", "threshold+snap", "grow", "flat fill"]
    assert ("repeat fill" in stages) == options.use_repeat_fill
    assert stages[-1] == "5% by the network"
    assert numbers["mask_percent"] > 0 and numbers["flat_percent"] > 0  # the generated page's balloons
    parts = numbers["flat_percent"] + numbers["repeat_percent"] + numbers["network_percent"]
    assert parts == pytest.approx(numbers["mask_percent"])
    assert numbers["five_percent"] >= 5.0 and numbers["five_crop_mpx"] > 0
    assert numbers["clean_seconds"] >= numbers["erase_seconds"] + numbers["seconds"]["detect"]
    line = bench_pages.page_line("p.png", page.image.shape[:2], numbers)
    assert line.startswith("p.png 384x512: clean ") and "5%: " in line


def test_summary_counts_the_pages_within_a_second():
    def result(erase, five):
        return {"clean_seconds": erase + 0.5, "erase_seconds": erase, "seconds": {"5% by the network": five}}

    lines = bench_pages.summary_lines([result(0.2, 0.9), result(1.5, 1.2), result(0.4, 2.0)])
    assert lines == ["3 pages: clean median 0.90 s, max 2.00 s; erase median 0.40 s, max 1.50 s, 2 within 1 s",
                     "the detected text grown to 5%, all by the network: median 1.20 s, max 2.00 s, 1 of 3 within 1 s"]


def test_bench_pages_names_inputs_it_cannot_use(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a page")
    assert main(["bench", "--pages", str(tmp_path / "missing.png")]) == 1
    assert "missing.png: no such file or folder" in capsys.readouterr().err
    assert main(["bench", "--pages", str(tmp_path)]) == 1
    assert "no images in this folder" in capsys.readouterr().err


def test_bench_pages_prints_a_line_per_page_and_goes_on_past_a_damaged_one(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(make_page(8, 256, 192).image).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    threads = torch.get_num_threads()
    try:
        assert main(["bench", "--pages", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--threads", "1"]) == 1
    finally:
        torch.set_num_threads(threads)  # the command sets it for its (normally own) process
    out, err = capsys.readouterr()
    assert "a.png 192x256: clean " in out and out.strip().splitlines()[-2].startswith("1 pages: clean median ")
    assert "b.png" in err and "kesu: " in err
