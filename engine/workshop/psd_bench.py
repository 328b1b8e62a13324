"""What ``kesu clean --psd`` adds over ``kesu clean``: time and peak memory, side by side, printed.

    python -m engine.workshop.psd_bench                  # the bench page, grey and as RGB, 5 rounds
    python -m engine.workshop.psd_bench --repeats 9 --strip 800x32000

Each output kind runs in its own fresh process (so each peak resident set size is its own), on the same page with
the shipped weights: ``png`` is what ``kesu clean`` writes, ``psd`` what ``kesu clean --psd`` writes, ``psd+png``
both. Every process loads the engine, cleans the page once to warm up, then ``--repeats`` times: clean, then
write (the write timed apart, wall and CPU time). The peak of the write is the resident set size sampled while
writing, over what the process held just before it. Then one more process times the two writers alone,
alternately, on one cleaned page: their minimum is what each costs when nothing else competes for the processor
(on a busy machine the medians of whole cleans swing by seconds). ``--strip WxH`` also times the PSD writer alone (no
engine) on a strip of that size tiled from the page, with its text whitened, for memory on tall pages and PSB.
Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
KINDS = ("png", "psd", "psd+png")


def _write(kind: str, source: Path, rgb, alpha, result, out: Path) -> None:
    """Write the outputs of one page exactly as ``kesu clean`` does for ``kind``."""
    from engine.cli import _psd_bytes
    from engine.imageio import save_bytes_atomic, save_png_atomic, to_pil

    if kind in ("psd", "psd+png"):
        save_bytes_atomic(_psd_bytes(source.read_bytes(), source.name, rgb, alpha, result),
                          out / f"{source.stem}.psd")
    if kind in ("png", "psd+png"):
        save_png_atomic(to_pil(result.image, alpha), out / f"{source.stem}.png")


def worker(kind: str, page: Path, repeats: int) -> dict:
    from engine.bench import PeakMemory
    from engine.imageio import load_image
    from engine.pipeline import CleanOptions, Engine

    engine, options = Engine.load(), CleanOptions()
    rgb, alpha = load_image(page)
    memory = PeakMemory()
    rounds = []
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        result = engine.clean(rgb, options)
        _write(kind, page, rgb, alpha, result, out)  # warm: imports, first allocations
        for _ in range(repeats):
            t = time.perf_counter()
            result = engine.clean(rgb, options)
            clean_s = time.perf_counter() - t
            memory.reset()
            before = memory.peak_mb
            t, c = time.perf_counter(), time.process_time()
            _write(kind, page, rgb, alpha, result, out)
            rounds.append({"clean_s": clean_s, "write_s": time.perf_counter() - t,
                           "write_cpu_s": time.process_time() - c, "write_peak_mb": memory.peak_mb - before})
        sizes = {p.suffix: p.stat().st_size for p in out.iterdir()}
    memory.stop()
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    return {"kind": kind, "rounds": len(rounds), **{k: round(v, 4) for k, v in median.items()},
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "file_bytes": sizes}


def writers_worker(page: Path, repeats: int) -> dict:
    """The PNG and the PSD writers alone, alternately, on one cleaned page: min and median wall and CPU time.

    The minimum is the time the write takes when nothing else competes for the processor."""
    from engine.imageio import load_image
    from engine.pipeline import CleanOptions, Engine

    rgb, alpha = load_image(page)
    result = Engine.load().clean(rgb, CleanOptions())
    times: dict[str, list[tuple[float, float]]] = {"png": [], "psd": []}
    with tempfile.TemporaryDirectory() as folder:
        for kind in ("png", "psd"):  # warm
            _write(kind, page, rgb, alpha, result, Path(folder))
        for _ in range(repeats):
            for kind in ("png", "psd"):
                t, c = time.perf_counter(), time.process_time()
                _write(kind, page, rgb, alpha, result, Path(folder))
                times[kind].append((time.perf_counter() - t, time.process_time() - c))
    out = {}
    for kind, runs in times.items():
        wall, cpu = [r[0] for r in runs], [r[1] for r in runs]
        out[kind] = {"min_s": round(min(wall), 4), "median_s": round(statistics.median(wall), 4),
                     "min_cpu_s": round(min(cpu), 4), "median_cpu_s": round(statistics.median(cpu), 4)}
    return out


def strip_worker(width: int, height: int, page: Path) -> dict:
    """The PSD writer alone on a tall strip tiled from ``page`` (text whitened): time, peak, file size."""
    from PIL import Image

    from engine.bench import PeakMemory
    from engine.pipeline import masks
    from engine.psd import TEXT_MASK_LAYER, file_suffix, layered_document

    grey = np.asarray(Image.open(page).convert("L"))
    text = np.asarray(Image.open(SAMPLES / "bench-page.text.png").convert("L")) > 127
    reps = (-(-height // grey.shape[0]), -(-width // grey.shape[1]))
    strip = np.ascontiguousarray(np.tile(grey, reps)[:height, :width])
    rgb = np.repeat(strip[:, :, None], 3, axis=2)
    text = np.ascontiguousarray(np.tile(text, reps)[:height, :width])
    grown = masks.grow(text, 4)
    cleaned = rgb.copy()
    cleaned[grown] = 255
    memory = PeakMemory()
    memory.reset()
    before = memory.peak_mb
    t = time.perf_counter()
    document = layered_document(rgb, None, cleaned, grown, {TEXT_MASK_LAYER: text}, "strip.png")
    buffer = io.BytesIO()
    document.write(buffer)
    seconds = time.perf_counter() - t
    memory.stop()
    return {"size": f"{width}x{height}", "suffix": file_suffix(width, height), "write_s": round(seconds, 3),
            "write_peak_mb": round(memory.peak_mb - before, 1), "page_rgb_mb": round(rgb.nbytes / 2**20, 1),
            "file_mb": round(len(buffer.getvalue()) / 2**20, 1)}


def _run(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", "engine.workshop.psd_bench", *args], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"psd_bench worker failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.workshop.psd_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per output kind (default 5)")
    p.add_argument("--strip", metavar="WxH", help="also time the PSD writer alone on a strip of this size")
    p.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    p.add_argument("--strip-worker", help=argparse.SUPPRESS)
    p.add_argument("--writers-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--page", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(a.worker, Path(a.page), a.repeats)))
        return 0
    if a.writers_worker:
        print(json.dumps(writers_worker(Path(a.page), a.repeats)))
        return 0
    if a.strip_worker:
        w, _, h = a.strip_worker.partition("x")
        print(json.dumps(strip_worker(int(w), int(h), SAMPLES / "bench-page.png")))
        return 0

    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        pages = {"grey": SAMPLES / "bench-page.png", "RGB": Path(folder) / "bench-page.png"}
        Image.open(pages["grey"]).convert("RGB").save(pages["RGB"])
        for name, page in pages.items():
            size = "x".join(map(str, Image.open(page).size))
            print(f"{page.name} {size}, {name} (load average {os.getloadavg()[0]:.1f}; medians of "
                  f"{a.repeats} rounds, each kind in its own process):")
            base = None
            for kind in KINDS:
                r = _run(["--worker", kind, "--page", str(page), "--repeats", str(a.repeats)])
                base = base or r
                files = ", ".join(f"{s} {b / 2**20:.1f} MB" for s, b in sorted(r["file_bytes"].items()))
                print(f"  {kind:<8} clean {r['clean_s']:6.3f} s  write {r['write_s']:6.3f} s "
                      f"(CPU {r['write_cpu_s']:.3f} s, +{r['write_peak_mb']:5.1f} MB while writing)  "
                      f"process peak RSS {r['peak_rss_mb']:6.0f} MB  [{files}]")
                if kind != "png":
                    print(f"  {'':<8} {kind} adds {r['peak_rss_mb'] - base['peak_rss_mb']:+.0f} MB peak RSS over png")
            w = _run(["--writers-worker", "--page", str(page), "--repeats", str(3 * a.repeats)])
            print(f"  the writers alone, alternately, {3 * a.repeats} times each (min / median):")
            for kind, t in w.items():
                print(f"    {kind}: wall {t['min_s']:.3f} / {t['median_s']:.3f} s, "
                      f"CPU {t['min_cpu_s']:.3f} / {t['median_cpu_s']:.3f} s")
            print(f"    so --psd adds {w['psd']['min_s'] - w['png']['min_s']:+.3f} s over clean, --psd --png "
                  f"{w['psd']['min_s']:+.3f} s (min wall)")
    if a.strip:
        r = _run(["--strip-worker", a.strip])
        print(f"strip {r['size']} ({r['suffix']}, writer alone, RGB page {r['page_rgb_mb']} MB): write "
              f"{r['write_s']:.3f} s, +{r['write_peak_mb']} MB while writing, file {r['file_mb']} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
