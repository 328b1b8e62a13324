"""``kesu train ROLE``: run (or resume) a training run; ``--release NAME`` ships its best weights."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.errors import EngineError


def _log(message: str) -> None:
    print(message, flush=True)


def train_main(args) -> int:
    if args.role == "textseg":
        from engine.train import textseg as trainer
    else:
        from engine.train import inpaint as trainer  # type: ignore[no-redef]
    run_dir = trainer.default_run_dir(args.run)
    if args.release:
        release(args.role, run_dir, args.release, trainer)
        return 0
    cfg = None
    if args.steps:
        cfg = trainer.CONFIG_CLASS(total_steps=args.steps)
    trainer.train(run_dir, cfg, args.minutes, log=_log)
    return 0


def release(role: str, run_dir: Path, name: str, trainer) -> None:
    """Copy a run's best weights into engine/weights/ with their config and metrics in the manifest."""
    from safetensors.torch import load_file

    from engine.models import build_model
    from engine.weights import SHIPPED_DIR, save_weights

    best = run_dir / "best.json"
    if not best.exists():
        raise EngineError(f"{run_dir} has no best weights yet; train longer (validation runs every few hundred steps)")
    info = json.loads(best.read_text())
    cfg = trainer.CONFIG_CLASS(**info["config"])
    arch, kwargs = trainer.ARCH, cfg.model_kwargs()
    model = build_model(arch, **kwargs)
    model.load_state_dict(load_file(str(run_dir / "best.safetensors")))
    extra = {
        "training": {"run": run_dir.name, "step": info["step"], "commit": info.get("commit"),
                     "data": trainer.TRAINING_DATA, "config": info["config"]},
        "metrics": {"synthetic_validation": info.get("val")},
    }
    path = save_weights(model, role, name, arch, kwargs, SHIPPED_DIR, extra)
    print(f"released {path} (step {info['step']}, validation {info.get('val')})", file=sys.stderr)
