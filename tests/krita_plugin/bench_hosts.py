"""Benchmark: warm Detect Text, click to layer, in each real Krita of the host chroots, side by side.

    sudo .venv/bin/python -m tests.krita_plugin.bench_hosts [--hosts krita-5.2,krita-6.0] [--rounds 2] [--warm 3]

Each round runs every Krita in turn (A B A B ...), so a change in the machine's load hits all of them alike. A run:
a fresh HOME with Kesu installed the user's way, real Krita under Xvfb opens a 1654x2339 synthetic page, runs
Detect Text once (cold: it starts the engine) and then ``--warm`` more times through the menu action. Printed per
host: each warm click-to-layer time (the driver's clock: action triggered -> layer added) and, from the plug-in's
log, the engine job's share and Krita's own (read the layer + add the Text Mask). Needs root and the chroots
(``tests/hosts/setup_hosts.sh``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from tests.hosts import harness
from tests.krita_plugin import krita_session as ks

PAGE_SEED, PAGE_H, PAGE_W = 22, 2339, 1654  # the bench page of test_krita_host.py
DONE = re.compile(r"detect done in ([\d.]+) s \(read layer ([\d.]+) s, engine job ([\d.]+) s of which model "
                  r"([\d.]+) s, add layers ([\d.]+) s\)")


def one_run(app: harness.HostApp, page: Path, folder: Path, warm: int) -> list[dict]:
    """Detect Text 1 + ``warm`` times in a fresh Krita ``app``; per warm run: click-to-layer and the log's split."""
    folder.mkdir(parents=True)
    page = Path(shutil.copy(page, folder / page.name))  # inside the folder the chroot sees
    py = harness.engine_python()
    binds = [harness.REPO, folder, *(harness.python_binds(py) if py else [])]
    with harness.HostChroot(binds, app=app) as host:
        home = host.new_home(folder)
        cfg = ks.install(host, home)
        steps = [{"do": "open", "path": str(page)}]
        steps += [{"do": "trigger", "action": "kesu_detect_text", "label": f"d{i}"} for i in range(warm + 1)]
        try:
            run = ks.run_krita(host, home, folder / "out", steps, timeout=900)
        finally:
            ks.stop_engine(cfg)
    log = next((home / ".local/share/kesu/logs").glob("krita-plugin.log")).read_text(encoding="utf-8")
    split = [tuple(map(float, m.groups())) for m in DONE.finditer(log)]
    out = []
    for i in range(1, warm + 1):
        step = run.step(f"d{i}")
        if not step["history"]["ok"]:
            raise RuntimeError(f"{app.id}: Detect Text failed: {step['history']}")
        _total, read, engine, _model, add = split[i]
        out.append({"click": step["seconds"], "engine": engine, "krita": read + add})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", default="krita-5.2,krita-6.0", help="host ids, comma-separated")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warm", type=int, default=3, help="warm Detect Text runs per Krita start")
    args = ap.parse_args(argv)
    apps = {a.id: a for a in harness.host_apps("krita")}
    wanted = [apps[h] for h in args.hosts.split(",")]
    for app in wanted:
        reason = harness.skip_reason(harness.chroot_root(app.chroot))
        if reason:
            print(f"{app.id}: cannot run: {reason}", file=sys.stderr)
            return 1
    from engine.workshop.synth import make_page

    results: dict[str, list[dict]] = {a.id: [] for a in wanted}
    with tempfile.TemporaryDirectory(prefix="kesu-bench-krita-") as tmp:
        page = Path(tmp) / "bench.png"
        ks.write_page_png(page, make_page(PAGE_SEED, PAGE_H, PAGE_W, grey=False).image)
        for r in range(args.rounds):
            for app in wanted:
                runs = one_run(app, page, Path(tmp) / f"{app.id}-{r}", args.warm)
                results[app.id] += runs
                print(f"round {r + 1} {app.id}: click to layer " + ", ".join(f"{x['click']:.2f}" for x in runs)
                      + " s (engine job " + ", ".join(f"{x['engine']:.2f}" for x in runs) + " s)", flush=True)
    print(f"\nWarm Detect Text on {PAGE_W}x{PAGE_H}, click to layer (median of {args.rounds} x {args.warm} runs):")
    for app in wanted:
        rs = results[app.id]
        med = {k: statistics.median(x[k] for x in rs) for k in ("click", "engine", "krita")}
        print(f"  {app.id} ({app.qt}): {med['click']:.2f} s, of which engine job {med['engine']:.2f} s, "
              f"Krita read layer + add layer {med['krita']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
