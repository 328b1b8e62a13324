"""``kesu eval textseg|inpaint``: print one table; optionally write overlay / side-by-side PNGs."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.eval.realpages import default_realpages


def eval_main(args) -> int:
    from engine.pipeline import Engine

    root = Path(args.realpages) if args.realpages else default_realpages()
    if root is None:
        print("kesu: real pages not found (--realpages DIR or KESU_REALPAGES); scoring synthetic pages only",
              file=sys.stderr)
    overlays = Path(args.overlays) if args.overlays else None
    weights = Path(args.weights_dir) if args.weights_dir else None
    if args.role == "fill":
        from engine.eval import fill

        print(fill.run(root, args.limit, log=lambda m: print(m, file=sys.stderr)))
        return 0
    if args.role == "textseg":
        from engine.eval import textseg

        engine = Engine.load(weights, roles=("textseg",))
        rows = textseg.run(engine, root, overlays, args.limit, log=lambda m: print(m, file=sys.stderr))
        print(textseg.format_table(rows))
    else:
        from engine.eval import inpaint

        engine = Engine.load(weights, roles=("inpaint",))
        rows = inpaint.run(engine, root, overlays, args.limit, log=lambda m: print(m, file=sys.stderr))
        print(inpaint.format_table(rows))
    return 0
