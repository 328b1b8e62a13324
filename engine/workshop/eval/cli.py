"""``kesu eval textseg|inpaint``: print one table; optionally write overlay / side-by-side PNGs."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from engine.workshop.eval.realpages import default_realpages


def _options(args):
    from engine.pipeline import CleanOptions

    return CleanOptions(allow_bfloat16=not args.float32)


def record(args, role: str, rows: list[dict], weights: Path | None, key: str = "evaluation") -> None:
    """``--record``: keep the table in the weights' manifest, with the command that made it."""
    if not args.record:
        return
    from engine.pipeline.precision import bfloat16_is_native
    from engine.weights import record_metrics

    command = "kesu eval " + role + (f" --limit {args.limit}" if args.limit else "")
    if getattr(args, "big_holes", False):
        command += " --big-holes"
    if getattr(args, "methods", None):
        command += " --methods '" + ",".join(args.methods) + "'"
    if getattr(args, "best_per_hole", False):
        command += " --best-per-hole"
    if getattr(args, "thresholds", None):
        command += " --thresholds " + ",".join(f"{t:g}" for t in args.thresholds)
    if args.float32:
        command += " --float32"
    numbers = "bfloat16" if _options(args).bfloat16 is None and bfloat16_is_native() else "float32"
    record_metrics(role, key, {"command": command, "date": time.strftime("%Y-%m-%d"), "networks_in": numbers,
                                        "rows": rows}, weights)
    print(f"kesu: recorded in the {role} weights' manifest", file=sys.stderr)


def eval_main(args) -> int:
    from engine.pipeline import Engine

    root = Path(args.realpages) if args.realpages else default_realpages()
    if root is None:
        print("kesu: real pages not found (--realpages DIR or KESU_REALPAGES); scoring synthetic pages only",
              file=sys.stderr)
    overlays = Path(args.overlays) if args.overlays else None
    weights = Path(args.weights_dir) if args.weights_dir else None
    if args.role == "fill":
        from engine.workshop.eval import fill

        print(fill.run(root, args.limit, log=lambda m: print(m, file=sys.stderr)))
        return 0
    if args.role == "textseg":
        from engine.workshop.eval import textseg

        engine = Engine.load(weights, roles=("textseg",))
        rows = []
        if not getattr(args, "kinds_only", False):
            rows = textseg.run(engine, root, overlays, args.limit, options=_options(args),
                               log=lambda m: print(m, file=sys.stderr), thresholds=args.thresholds)
            print(textseg.format_table(rows))
        if root is not None:
            from engine.workshop.eval import textseg_kinds

            kind_rows = textseg_kinds.run(engine, root, overlays, args.limit, options=_options(args),
                                          log=lambda m: print(m, file=sys.stderr))
            print(textseg_kinds.format_table(kind_rows))
            rows += kind_rows
        record(args, "textseg", rows, weights)
    else:
        from engine.workshop.eval import inpaint

        engine = Engine.load(weights, roles=("inpaint",))
        big = getattr(args, "big_holes", False)
        chosen = getattr(args, "methods", None)
        runner = inpaint.run_big_holes if big else inpaint.run
        kwargs = {"method_names": chosen} if chosen else {}
        if getattr(args, "best_per_hole", False):
            kwargs["add_best_per_hole"] = True
        rows = runner(engine, root, overlays, args.limit, log=lambda m: print(m, file=sys.stderr),
                      options=_options(args), **kwargs)
        print(inpaint.format_table(rows))
        record(args, "inpaint", rows, weights, key="evaluation_big_holes" if big else "evaluation")
    return 0
