"""``kesu train ROLE``: run (or resume) a training run; ``--release NAME`` ships its best (or last) weights."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.allocator import keep_freed_memory
from engine.errors import EngineError
from engine.workshop.train.common import STATE_ROOT


def _log(message: str) -> None:
    print(message, flush=True)


def train_main(args) -> int:
    if args.role == "textseg":
        from engine.workshop.train import textseg as trainer
    else:
        from engine.workshop.train import inpaint as trainer  # type: ignore[no-redef]
    run_dir = STATE_ROOT / args.role / args.run
    if args.release:
        if not getattr(args, "release_dir", None):
            raise EngineError("--release needs --release-dir DIR: a candidate folder to evaluate with "
                              "`kesu eval --weights-dir DIR`, or engine/weights to ship the weights in the source tree")
        folder = Path(args.release_dir)
        release(args.role, run_dir, args.release, trainer, getattr(args, "checkpoint", "best"), folder)
        return 0
    changes = {}
    if args.steps:
        changes["total_steps"] = args.steps
    if getattr(args, "init_from", None):
        changes["init_weights"] = str(Path(args.init_from).resolve())
    if getattr(args, "residual", False):
        changes["residual"] = True
    settings = {}
    for item in getattr(args, "set", None) or []:
        name, _, value = item.partition("=")
        settings[name.strip()] = value.strip()
    defaults = trainer.CONFIG_CLASS()
    for name in [*changes, *settings]:
        if not hasattr(defaults, name):
            raise EngineError(f"kesu train {args.role} has no setting {name!r}; drop that option")
    changes.update({name: _typed(getattr(defaults, name), name, value) for name, value in settings.items()})
    cfg = trainer.CONFIG_CLASS(**changes) if changes else None
    keep_freed_memory()  # every step frees and reallocates the same large activations
    trainer.train(run_dir, cfg, args.minutes, log=_log, explicit=set(changes))
    return 0


def _typed(current, name: str, value: str):
    """``value`` converted to the type of the setting ``name``, whose default is ``current`` (a number, a flag or a
    tuple of whole numbers written ``16,64,64``, or a text: a path, names)."""
    if current is None or isinstance(current, str):  # a path or a list of names
        if name.endswith(("_dir", "_path")) and not Path(value).exists():
            raise EngineError(f"--set {name}={value}: no such file or folder")
        return value
    try:
        if isinstance(current, bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        if isinstance(current, (int, float)):
            return type(current)(value)
        if isinstance(current, tuple) and all(isinstance(v, int) for v in current):
            numbers = tuple(int(v) for v in value.split(","))
            if not numbers or min(numbers) < 1:
                raise ValueError(value)
            return numbers
    except ValueError:
        kind = "list of whole numbers, e.g. 16,64,64" if isinstance(current, tuple) else type(current).__name__
        raise EngineError(f"--set {name}={value}: expected a {kind}") from None
    raise EngineError(f"--set cannot change {name!r} (a {type(current).__name__}); only numbers, flags, texts "
                      "and lists of whole numbers")


def _validation_at(run_dir: Path, step: int) -> dict | None:
    """The validation scores the run's log holds for exactly ``step`` (None if it was not validated then)."""
    log = run_dir / "log.jsonl"
    found = None
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            record = json.loads(line) if line.strip() else {}
            if record.get("step") == step and "val" in record:
                found = record["val"]
    return found


def release(role: str, run_dir: Path, name: str, trainer, checkpoint: str = "best", folder: Path | None = None) -> None:
    """Copy a run's best (or last saved) weights into engine/weights/ (or ``folder``, e.g. to evaluate a candidate
    with ``kesu eval --weights-dir`` before shipping it) with their config and metrics."""
    from safetensors.torch import load_file

    from engine.models import build_model
    from engine.weights import SHIPPED_DIR, save_weights

    if checkpoint == "best":
        meta, weights = run_dir / "best.json", run_dir / "best.safetensors"
        missing = "has no best weights yet; train longer (validation runs every few hundred steps)"
    else:
        meta, weights = run_dir / "state.json", run_dir / "state.safetensors"
        missing = "has no saved state; train first"
    if not meta.exists() or not weights.exists():
        raise EngineError(f"{run_dir} {missing}")
    info = json.loads(meta.read_text())
    cfg = trainer.CONFIG_CLASS(**info["config"])
    arch, kwargs = trainer.ARCH, cfg.model_kwargs()
    model = build_model(arch, **kwargs)
    tensors = load_file(str(weights))
    if checkpoint == "last":  # the state file also holds the optimiser: keep the model's tensors only
        tensors = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(tensors)
    validation = info.get("val") if checkpoint == "best" else _validation_at(run_dir, info["step"])
    extra = {
        "training": {"run": run_dir.name, "step": info["step"], "checkpoint": checkpoint,
                     "commit": info.get("commit"), "data": trainer.TRAINING_DATA, "config": info["config"]},
        "metrics": {"synthetic_validation": validation},
    }
    path = save_weights(model, role, name, arch, kwargs, folder or SHIPPED_DIR, extra)
    print(f"released {path} ({checkpoint} checkpoint, step {info['step']}, validation {validation})", file=sys.stderr)
