"""What ``kesu clean --ray`` costs: plain ``clean`` and ``--ray local`` side by side, and the driver's own cost.

    python -m engine.workshop.cluster_bench side-by-side PAGES... [--rounds 2] [--ray-threads 1]
        plain `kesu clean` and `kesu clean --ray local` in turn, each in a fresh process, on the same pages: pages per
        second once started (cluster or engine start-up reported apart), whole wall time, peak memory of each worker.
    python -m engine.workshop.cluster_bench driver PAGES... [--workers 8] [--repeat 5]
        the driver alone: workers that return a stored result (one page cleaned once beforehand), so the driver's
        reading, sending, receiving and atomic writing is all that is timed; prints its CPU and wall time per page.

Prints numbers; it asserts nothing. Outputs go to a temporary folder that is removed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.cli import build_parser, clean_outputs, clean_page, run_in_turn, run_pages
from engine.cluster import RunStats, run_on_ray, usage


class StoredResultWorker:
    """A stand-in for ``PageWorker`` that answers every page with the same stored outputs at once."""

    def __init__(self, files: list[bytes]):
        self.files = files

    def ready(self) -> dict:
        from engine import __version__

        return {"pid": os.getpid(), "version": __version__, "error": None, **usage()}

    def run(self, data: bytes, name: str):
        return "done", self.files

    def usage(self) -> dict:
        return usage()


def _clean_args(pages: list[str], out: str, extra: list[str]):
    return build_parser().parse_args(["clean", *pages, "-o", out, "-q", *extra])


def one_run(mode: str, pages: list[str], threads: int | None) -> dict:
    """One ``clean`` run in this process, timed; ``mode`` is plain or ray (a --ray local cluster)."""
    with tempfile.TemporaryDirectory(prefix="kesu-cluster-bench-") as out:
        extra = ["--threads", str(threads)] if threads else []
        started = time.perf_counter()
        if mode == "plain":
            from engine.cli import _engine

            args = _clean_args(pages, out, extra)
            engine = _engine(args, ("textseg", "inpaint"))
            ready, cpu = time.perf_counter(), time.process_time()

            def work(job, paths):
                from engine.imageio import read_image_bytes, save_bytes_atomic

                for path, data in zip(paths, clean_page(engine, args, read_image_bytes(job.source), str(job.source)),
                                      strict=True):
                    save_bytes_atomic(data, path)

            rc = run_pages(args, lambda job: clean_outputs(args, job), run_in_turn(work), "clean")
            end = time.perf_counter()
            count = len(list(Path(out).glob("*.png")))
            return {"mode": mode, "rc": rc, "pages": count, "start_s": ready - started, "pages_s": end - ready,
                    "pages_per_s": count / (end - ready), "wall_s": end - started,
                    "cpu_s_per_page": (time.process_time() - cpu) / count,
                    "peak_mb": [usage()["peak_memory"] / 2**20]}
        args = _clean_args(pages, out, extra + ["--ray", "local"])
        stats = RunStats()
        cpu = time.process_time()
        rc = run_pages(args, lambda job: clean_outputs(args, job), run_on_ray(args, clean_page, stats=stats), "clean")
        driver_cpu = time.process_time() - cpu
        end = time.perf_counter()
        count = len(list(Path(out).glob("*.png")))
        steady = count - stats.pages_before_ready
        return {"mode": mode, "rc": rc, "pages": count, "workers": stats.workers, "threads": stats.threads,
                "start_s": stats.start_seconds, "pages_s": stats.pages_seconds,
                "pages_per_s": steady / stats.steady_seconds if stats.steady_seconds else float("nan"),
                "pages_after_start": steady, "wall_s": end - started,
                "cpu_s_per_page": (stats.page_cpu_seconds + driver_cpu) / count,
                "driver_cpu_s_per_page": driver_cpu / count,
                "peak_mb": [m / 2**20 for m in stats.peak_memory]}


def side_by_side(pages: list[str], rounds: int, plain_threads: int | None, ray_threads: int) -> None:
    print(f"{len(pages)} pages, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    results = {"plain": [], "ray": []}
    for r in range(rounds):
        for mode, threads in (("plain", plain_threads), ("ray", ray_threads)):
            command = [sys.executable, "-m", "engine.workshop.cluster_bench", "one", mode, *pages]
            if threads:
                command += ["--threads", str(threads)]
            line = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            result = json.loads(line)
            results[mode].append(result)
            peak = ", ".join(f"{m:.0f}" for m in result["peak_mb"])
            extra = f", {result['workers']} workers x {result['threads']} threads" if mode == "ray" else ""
            print(f"round {r + 1} {mode:5s}: {result['pages_per_s']:.3f} pages/s once started "
                  f"(start-up {result['start_s']:.1f} s, pages {result['pages_s']:.1f} s, wall {result['wall_s']:.1f} s"
                  f"{extra}); CPU {result['cpu_s_per_page']:.2f} s/page (workers once ready + driver); peak memory "
                  f"MB per process: {peak}", flush=True)
    plain = sum(r["pages_per_s"] for r in results["plain"]) / rounds
    ray = sum(r["pages_per_s"] for r in results["ray"]) / rounds
    print(f"mean pages/s once started: plain {plain:.3f}, --ray local {ray:.3f} ({100 * (ray / plain - 1):+.1f}%)")
    plain = sum(r["cpu_s_per_page"] for r in results["plain"]) / rounds
    ray = sum(r["cpu_s_per_page"] for r in results["ray"]) / rounds
    print(f"mean CPU s/page: plain {plain:.3f}, --ray local {ray:.3f} ({100 * (ray / plain - 1):+.1f}%)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


def driver_cost(pages: list[str], workers: int, repeat: int) -> None:
    import ray

    from engine.cli import _engine

    first = build_parser().parse_args(["clean", pages[0], "-o", "unused"])
    stored = clean_page(_engine(first, ("textseg", "inpaint")), first, Path(pages[0]).read_bytes(), pages[0])
    ray.init(num_cpus=workers, object_store_memory=256 << 20, include_dashboard=False, logging_level="WARNING")
    try:
        for r in range(repeat):
            with tempfile.TemporaryDirectory(prefix="kesu-driver-bench-") as out:
                args = _clean_args(pages, out, ["--threads", "1", "--ray", "local"])
                stats = RunStats()
                execute = run_on_ray(args, clean_page, worker_class=StoredResultWorker, worker_args=(stored,),
                                     stats=stats)
                cpu, wall = time.process_time(), time.perf_counter()
                run_pages(args, lambda job, a=args: clean_outputs(a, job), execute, "clean")
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                steady = len(pages) - stats.pages_before_ready
                print(f"run {r + 1}: {len(pages)} pages ({sum(len(x) for x in stored) / 2**20:.1f} MB of stored "
                      f"output each), {stats.workers} stored-result workers: driver CPU {1000 * cpu / len(pages):.1f}"
                      f" ms/page (start-up included), wall {1000 * stats.steady_seconds / max(steady, 1):.1f} "
                      f"ms/page once started", flush=True)
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cluster_bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("side-by-side")
    p.add_argument("pages", nargs="+")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--plain-threads", type=int, help="plain clean's threads (default: all cores)")
    p.add_argument("--ray-threads", type=int, default=1, help="threads of each --ray worker (default 1)")
    p = sub.add_parser("one", help="one timed run in this process (what side-by-side starts)")
    p.add_argument("mode", choices=["plain", "ray"])
    p.add_argument("pages", nargs="+")
    p.add_argument("--threads", type=int)
    p = sub.add_parser("driver")
    p.add_argument("pages", nargs="+")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if args.command == "one":
        print(json.dumps(one_run(args.mode, args.pages, args.threads)))
    elif args.command == "side-by-side":
        side_by_side(args.pages, args.rounds, args.plain_threads, args.ray_threads)
    else:
        driver_cost(args.pages, args.workers, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
