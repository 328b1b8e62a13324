"""``kesu bench-server``: what the engine server costs a plug-in on top of the engine's own compute.

Prints, for a page of 1654x2339 (A4 at 200 dpi) sent as RGBA like a plug-in does:
  - warm round trip: total seconds in the client, the engine's compute as the server reports it
    (stats.engine_s), and the protocol overhead = total - engine (target <= 0.15 s);
  - cold start: from no server running to the first result, minus a warm call (target <= 3 s).
A private config folder is used, so a server the user already runs is neither measured nor disturbed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import engine
from engine.protocol import Client, ProtocolError

OVERHEAD_TARGET_S = 0.15
COLD_TARGET_S = 3.0


def bench_page(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A seeded test page, uint8 (H, W, 4) RGBA: white paper, dark strokes, a screentone band."""
    rng = np.random.default_rng(seed)
    px = np.full((height, width, 4), 255, np.uint8)
    band = slice(height // 3, height // 2)
    yy, xx = np.mgrid[band, 0:width]
    px[band][((yy // 5 + xx // 5) % 2 == 0)] = [190, 190, 190, 255]
    for _ in range(400):
        y, x = int(rng.integers(0, height - 40)), int(rng.integers(0, width - 10))
        px[y:y + int(rng.integers(10, 36)), x:x + int(rng.integers(2, 6)), :3] = 0
    return px


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kesu bench-server", description=__doc__.splitlines()[0])
    p.add_argument("--weights-dir", type=Path, default=None,
                   help="weights folder (default: the shipped weights)")
    p.add_argument("--op", choices=("detect", "clean"), default="clean",
                   help="the job to time (default clean)")
    p.add_argument("--repeat", type=int, default=5,
                   help="warm calls to time (default 5; the median is shown)")
    p.add_argument("--width", type=int, default=1654)
    p.add_argument("--height", type=int, default=2339)
    p.add_argument("--page", type=Path, default=None,
                   help="an image file to send instead of the generated page")
    return p


def _timed_run(client: Client, op: str, pixels: bytes, width: int, height: int) -> tuple[float, float, float]:
    """One job: (client total, engine compute, server-side pixel conversion), in seconds."""
    t0 = time.perf_counter()
    result = client.run(op, pixels, width, height, "RGBA")
    total = time.perf_counter() - t0
    return total, float(result["stats"]["engine_s"]), float(result["stats"].get("convert_s", 0.0))


def bench_main(argv: list[str]) -> int:
    """Run the benchmark and print the numbers. Returns the exit code (1 when the server cannot run)."""
    args = _parser().parse_args(argv)
    if args.repeat < 1:
        print("kesu bench-server: --repeat must be at least 1", file=sys.stderr)
        return 2
    if args.page is not None:
        from engine.imageio import load_image

        rgb, alpha = load_image(args.page)
        a = alpha if alpha is not None else np.full(rgb.shape[:2], 255, np.uint8)
        page = np.dstack([rgb, a])
    else:
        page = bench_page(args.width, args.height)
    height, width = page.shape[:2]
    pixels = page.tobytes()

    # the server child must import this same engine package, installed or not
    root = str(Path(engine.__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="kesu-bench-") as tmp:
        cfg = Path(tmp)
        weights = str(args.weights_dir) if args.weights_dir else None
        try:
            t0 = time.perf_counter()
            client = Client.connect_or_start(python=sys.executable, cfg_dir=cfg, weights_dir=weights,
                                             idle_timeout=120)
            started = time.perf_counter() - t0
            cold_total, cold_engine, _ = _timed_run(client, args.op, pixels, width, height)
            cold = started + cold_total
            warm = [_timed_run(client, args.op, pixels, width, height) for _ in range(args.repeat)]
            client.stop()
        except ProtocolError as e:
            print(f"kesu bench-server: error: {e}", file=sys.stderr)
            return 1
        finally:
            _stop_quietly(cfg)

    totals = [t for t, _, _ in warm]
    engines = [e for _, e, _ in warm]
    converts = [c for _, _, c in warm]
    overheads = [t - e for t, e, _ in warm]
    total_med, engine_med, overhead_med = (statistics.median(v) for v in (totals, engines, overheads))
    mb = len(pixels) / 2**20
    print(f"kesu bench-server: {args.op} of a {width}x{height} RGBA page ({mb:.1f} MiB sent), "
          f"{args.repeat} warm calls, median")
    print(f"  warm round trip      {total_med:7.3f} s")
    print(f"  engine compute       {engine_med:7.3f} s   (stats.engine_s)")
    verdict = "ok" if overhead_med <= OVERHEAD_TARGET_S else "OVER TARGET"
    print(f"  protocol overhead    {overhead_med:7.3f} s   (target <= {OVERHEAD_TARGET_S} s: {verdict}; "
          f"min {min(overheads):.3f}, max {max(overheads):.3f})")
    print(f"    of which conversion {statistics.median(converts):6.3f} s   "
          "(raw bytes <-> RGB arrays in the server)")
    extra = cold - total_med
    verdict = "ok" if extra <= COLD_TARGET_S else "OVER TARGET"
    print(f"  cold start to result {cold:7.3f} s   (server up {started:.3f} s, first call "
          f"{cold_total:.3f} s, its engine {cold_engine:.3f} s)")
    print(f"  cold minus warm      {extra:7.3f} s   (target <= {COLD_TARGET_S} s: {verdict})")
    return 0


def _stop_quietly(cfg: Path) -> None:
    """Make sure the benchmark's server is gone before its folder is removed."""
    from engine.server import ServerLock

    try:
        with Client.connect(cfg) as client:
            client.stop()
    except ProtocolError:
        pass
    deadline = time.monotonic() + 15
    while ServerLock.is_held(cfg) and time.monotonic() < deadline:
        time.sleep(0.05)


if __name__ == "__main__":
    raise SystemExit(bench_main(sys.argv[1:]))
