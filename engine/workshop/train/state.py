"""Resumable training state without pickle: tensors in safetensors, everything else in JSON.

A run folder holds ``state.safetensors`` (model + optimizer moments), ``state.json`` (step, config, optimizer
scalars, metrics, git commit) written together, ``best.safetensors`` + ``best.json`` (the best model so far by the
validation score) and ``log.jsonl``.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from engine.errors import EngineError


def git_commit() -> str:
    """The checkout's commit (with ``-dirty`` when there are uncommitted changes), or ``unknown``."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit or "unknown") + ("-dirty" if dirty else "")


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json(path: Path, data: Any) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")

    _atomic(path, write)


def save_state(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, info: dict) -> None:
    """Write the model, the optimizer and ``info`` (step, config, ...) of a run, tensors first, JSON last."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for index, state in opt_state["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value) and value.ndim > 0:
                tensors[f"optim.{index}.{name}"] = value.detach().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = float(value)
    _atomic(run_dir / "state.safetensors", lambda tmp: save_file(tensors, tmp))
    info = dict(info, optimizer_groups=opt_state["param_groups"], optimizer_scalars=scalars,
                commit=git_commit(), saved_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
    _write_json(run_dir / "state.json", info)


def load_state(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict | None:
    """Restore a run saved by ``save_state``; returns its info, or None when the folder holds no state."""
    if not (run_dir / "state.json").exists():
        return None
    info = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
    tensors = load_file(str(run_dir / "state.safetensors"))
    try:
        model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError as e:
        raise EngineError(
            f"the run in {run_dir} holds a model of another shape than the settings given now ({e}); resume it "
            "without changing its model settings, or start a new run with --run NAME"
        ) from e
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in info.get("optimizer_scalars", {}).items():
        for name, value in values.items():
            state.setdefault(int(index), {})[name] = torch.tensor(value)
    optimizer.load_state_dict({"state": state, "param_groups": info["optimizer_groups"]})
    return info


def save_best(run_dir: Path, model: torch.nn.Module, info: dict) -> None:
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    _atomic(run_dir / "best.safetensors", lambda tmp: save_file(state, tmp))
    _write_json(run_dir / "best.json", dict(info, commit=git_commit()))


def append_log(run_dir: Path, record: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "log.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
