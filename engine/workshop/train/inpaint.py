"""``kesu train inpaint``: the partial-convolution U-Net on clean backgrounds with text-shaped holes.

Backgrounds come from the synthetic generator (tones, hatching, line art, clip art, halftoned photos, panels)
and, when the folder is given, from clean real comic strips (a held-out fifth of them is kept for evaluation),
and, when that folder is given, from tiles of real manga pages whose text is marked
(``engine.workshop.train.manga_tiles``):
holes there are kept off the text, so the network learns real screentone and hatching without painting letters.
Loss: L1 in the holes (weighted) and outside, optionally squared error in the holes, L1 of image gradients in the
holes (keeps lines and dots sharp), and total variation across the hole border.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.models import build_model
from engine.pipeline.inpaint import BASE_FILLS
from engine.workshop.eval.metrics import mean_abs_error, psnr
from engine.workshop.train.common import (
    RealArt,
    init_from_weights,
    resolve_config,
    run_loop,
    with_real_art_from_env,
)
from engine.workshop.train.state import load_state

VALIDATION_SEED_BASE = 2_000_000_000
# A folder of manga tiles (engine.workshop.train.manga_tiles, text marked) to train on besides the strips and
# synthetic data.
MANGA_ART_ENV = "KESU_MANGA_ART_DIR"


@dataclass
class InpaintConfig:
    channels: tuple[int, ...] = (32, 64, 64, 64, 64, 64)
    first_kernel: int = 5
    crop: int = 256
    batch: int = 4
    lr: float = 5e-4
    weight_decay: float = 0.0
    total_steps: int = 30000
    warmup_steps: int = 200
    hole_weight: float = 6.0
    hole_l2_weight: float = 0.0       # squared error in the holes: what PSNR scores (L1 alone favours sharp guesses)
    valid_weight: float = 1.0
    gradient_weight: float = 2.0
    tv_weight: float = 0.05
    real_art_dir: str | None = None   # clean real strips (PNG); every 5th file is held out for evaluation
    real_art_share: float = 0.3
    # tiles of real manga pages, text transparent (python -m engine.workshop.train.manga_tiles)
    manga_art_dir: str | None = None
    manga_art_share: float = 0.0      # the share of samples drawn from them (real_art_share + this <= 1)
    val_samples: int = 48
    val_every: int = 500
    save_every: int = 100
    seed: int = 0
    best_metric: str = "hole_psnr"
    residual: bool = False            # the network corrects a base fill (see base_fill)
    base_fill: str = "smooth"         # what a residual network corrects: "smooth" or "frequency" (engine.pipeline)
    init_weights: str | None = None   # a new run starts from this weights file (tensors of equal name and shape)
    far_blocks: int = 0               # SpectralBlocks at the bottleneck (engine.models.pconv): reach beyond the U-Net
    big_hole_share: float = 0.0       # share of samples with a sound effect's hole (synth.inpaint.glyph_hole)
    texture_weight: float = 0.0       # the fill's local gradient energy (8 px cells) matched to the truth's, in holes
    far_lr_scale: float = 1.0         # the far blocks' learning rate over the rest's (new layers in a fine-tune)
    big_val_samples: int = 16         # validation samples with a sound effect's hole (when big_hole_share > 0)

    def model_kwargs(self) -> dict:
        kwargs = {"in_channels": 3, "channels": list(self.channels), "first_kernel": self.first_kernel}
        if self.residual:
            kwargs["residual"] = True
            if self.base_fill != "smooth":
                kwargs["base_fill"] = self.base_fill
        if self.far_blocks:
            kwargs["far_blocks"] = self.far_blocks
        return kwargs


def with_manga_art_from_env(cfg: InpaintConfig | None) -> InpaintConfig | None:
    """``cfg`` with ``manga_art_dir`` from ``$KESU_MANGA_ART_DIR`` unless already set."""
    import os
    from dataclasses import replace

    if os.environ.get(MANGA_ART_ENV) and (cfg is None or cfg.manga_art_dir is None):
        return replace(cfg or InpaintConfig(), manga_art_dir=os.environ[MANGA_ART_ENV])
    return cfg


def _load_tile(path: Path) -> np.ndarray:
    """A manga tile as RGBA (alpha 0 on text, which holes must not cover)."""
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGBA"))


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


class SampleStream:
    """Batches of (image (B,3,c,c) in [0,1], known (B,1,c,c) 1 = known pixel). Resumable by ``next_seed``."""

    def __init__(self, cfg: InpaintConfig, next_seed: int = 0):
        self.cfg = cfg
        self.next_seed = next_seed
        self.real = RealArt(cfg.real_art_dir, _load_rgb)
        self.manga = RealArt(cfg.manga_art_dir if cfg.manga_art_share > 0 else None, _load_tile)

    @staticmethod
    def _real_crop(source: RealArt, rng: np.random.Generator, size: int) -> np.ndarray:
        art = source.pick(rng)
        if art.shape[0] < size or art.shape[1] < size:  # a short strip: mirror it out to the crop size
            pad_y, pad_x = max(0, size - art.shape[0]), max(0, size - art.shape[1])
            art = np.pad(art, ((0, pad_y), (0, pad_x), (0, 0)), mode="symmetric")
        y = int(rng.integers(art.shape[0] - size + 1))
        x = int(rng.integers(art.shape[1] - size + 1))
        return art[y:y + size, x:x + size]

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        from engine.workshop.synth import make_inpaint_sample
        from engine.workshop.synth.inpaint import glyph_hole

        seed = self.next_seed
        self.next_seed += 1
        c = self.cfg.crop
        s = make_inpaint_sample(seed, c, c)
        image, hole = s.image, s.hole
        # its own stream, so the art drawn for a seed is the same whatever the share of big holes
        if self.cfg.big_hole_share and np.random.default_rng((seed, 0xB16)).random() < self.cfg.big_hole_share:
            hole = glyph_hole(seed, c, c)
        rng = np.random.default_rng(seed)
        if self.real or self.manga:
            draw = rng.random()  # one draw: below real_art_share a strip, in the top manga_art_share a manga tile
            if self.real and draw < self.cfg.real_art_share:
                image = self._real_crop(self.real, rng, c)
            elif self.manga and draw >= 1.0 - self.cfg.manga_art_share:
                tile = self._real_crop(self.manga, rng, c)
                return np.ascontiguousarray(tile[..., :3]), hole & (tile[..., 3] > 0)  # holes paint art only
        return image, hole

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        items = [self.sample() for _ in range(self.cfg.batch)]
        return to_tensors(items, self.cfg.base_fill if self.cfg.residual else None)


def to_tensors(items, base_fill: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(image (B,3,c,c) in [0,1], known (B,1,c,c), the ``base_fill`` of each hole (B,3,c,c) when one is named (a
    residual network's, engine.pipeline.inpaint.BASE_FILLS), else None)."""
    image = torch.from_numpy(np.stack([i[0] for i in items])).float().div_(255.0).permute(0, 3, 1, 2)
    known = torch.from_numpy(~np.stack([i[1] for i in items])).float()[:, None]
    base = None
    if base_fill is not None:
        fill = BASE_FILLS[base_fill]
        # the fills release the GIL (a sparse solve, OpenCV): the batch's are made side by side
        with ThreadPoolExecutor(max(1, min(len(items), torch.get_num_threads()))) as pool:
            fills = list(pool.map(lambda item: fill(item[0], item[1]), items))
        base = torch.from_numpy(np.stack(fills)).div_(255.0)
        base = base.permute(0, 3, 1, 2).contiguous()
    return image.contiguous(), known, base


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def inpaint_loss(pred: torch.Tensor, target: torch.Tensor, known: torch.Tensor, cfg: InpaintConfig):
    hole = 1.0 - known
    hole_share = hole.mean().clamp(min=1e-3)
    l1 = (pred - target).abs()
    loss = cfg.hole_weight * (l1 * hole).mean() / hole_share + cfg.valid_weight * (l1 * known).mean()
    if cfg.hole_l2_weight:
        loss = loss + cfg.hole_l2_weight * (l1.square() * hole).mean() / hole_share
    comp = pred * hole + target * known
    gx_p, gy_p = _gradients(comp)
    gx_t, gy_t = _gradients(target)
    near_hole = F.max_pool2d(hole, 3, 1, 1)
    hx, hy = near_hole[..., :, 1:], near_hole[..., 1:, :]
    grad = ((gx_p - gx_t).abs() * hx).mean() + ((gy_p - gy_t).abs() * hy).mean()
    tv = (gx_p.abs() * hx).mean() + (gy_p.abs() * hy).mean()
    loss = loss + cfg.gradient_weight * grad / hole_share + cfg.tv_weight * tv / hole_share
    if cfg.texture_weight:
        loss = loss + cfg.texture_weight * texture_loss(comp, target, hole)
    return loss


def _gradient_energy(x: torch.Tensor) -> torch.Tensor:
    gx, gy = _gradients(x.mean(dim=1, keepdim=True))
    return F.pad(gx.abs(), (0, 1, 0, 0)) + F.pad(gy.abs(), (0, 0, 0, 1))


def texture_loss(comp: torch.Tensor, target: torch.Tensor, hole: torch.Tensor, cell: int = 8) -> torch.Tensor:
    """How far the fill's gradient energy, averaged over ``cell`` px squares, is from the truth's, in the cells that
    are mostly hole: a smear is punished for lacking the art's busyness even where the exact strokes cannot be
    guessed (the per-pixel losses alone favour the mean, a blur)."""
    weight = F.avg_pool2d(hole, cell)
    diff = (F.avg_pool2d(_gradient_energy(comp), cell) - F.avg_pool2d(_gradient_energy(target), cell)).abs()
    return (diff * weight).sum() / weight.sum().clamp(min=1.0)


def validation_set(cfg: InpaintConfig):
    """(image, hole, big) samples: ``val_samples`` text-shaped holes, then, when the run trains on sound effects'
    holes, ``big_val_samples`` of those (scored apart as big_psnr)."""
    from engine.workshop.synth import make_inpaint_sample
    from engine.workshop.synth.inpaint import glyph_hole

    out = []
    for i in range(cfg.val_samples):
        s = make_inpaint_sample(VALIDATION_SEED_BASE + i, cfg.crop, cfg.crop)
        out.append((s.image, s.hole, False))
    for i in range(cfg.big_val_samples if cfg.big_hole_share > 0 else 0):
        s = make_inpaint_sample(VALIDATION_SEED_BASE + 10_000 + i, cfg.crop, cfg.crop)
        out.append((s.image, glyph_hole(VALIDATION_SEED_BASE + 10_000 + i, cfg.crop, cfg.crop), True))
    return out


def validate(model: torch.nn.Module, samples) -> dict:
    psnrs, maes, big = [], [], []
    for image, hole, is_big in samples:
        x, known, base = to_tensors([(image, hole)], model.base_fill if getattr(model, "residual", False) else None)
        pred = model(x * known, known, base)
        out = (pred[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
        if is_big:
            big.append(min(psnr(out, image, hole), 60.0))
            continue
        psnrs.append(min(psnr(out, image, hole), 60.0))
        maes.append(mean_abs_error(out, image, hole))
    scores = {"hole_psnr": float(np.mean(psnrs)), "hole_mae": float(np.mean(maes))}
    if big:
        scores["big_psnr"] = float(np.mean(big))
    return scores


def train(run_dir: Path, cfg: InpaintConfig | None, minutes: float | None, log=print,
          explicit: Collection[str] = ()) -> dict:
    """Train (or resume) the run in ``run_dir`` for ``minutes`` (None: until total_steps). Returns its info."""
    cfg = resolve_config(run_dir, InpaintConfig, with_manga_art_from_env(with_real_art_from_env(cfg, InpaintConfig)),
                         explicit)
    if cfg.real_art_share + cfg.manga_art_share > 1.0:
        from engine.errors import EngineError

        raise EngineError(f"real_art_share {cfg.real_art_share} + manga_art_share {cfg.manga_art_share} is over 1: "
                          "lower one of them with --set")
    torch.manual_seed(cfg.seed)
    model = build_model("pconv_unet", **cfg.model_kwargs())
    far = [p for name, p in model.named_parameters() if name.startswith("far.")]
    rest = [p for name, p in model.named_parameters() if not name.startswith("far.")]
    groups = [{"params": rest, "lr": cfg.lr, "base_lr": cfg.lr}]
    if far:
        groups.append({"params": far, "lr": cfg.lr * cfg.far_lr_scale, "base_lr": cfg.lr * cfg.far_lr_scale})
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    info = load_state(run_dir, model, optimizer)
    if info is None:
        info = {"step": 0, "next_seed": 0, "samples": 0}
        log(f"new run {run_dir} with {asdict(cfg)}")
        if cfg.init_weights:
            init_from_weights(model, cfg.init_weights, log)
    else:
        log(f"resuming {run_dir} at step {info['step']} (best validation {info.get('best')})")
    info["config"] = asdict(cfg)
    stream = SampleStream(cfg, info["next_seed"])
    val = validation_set(cfg)

    def next_batch():
        batch = stream.batch()
        info["next_seed"] = stream.next_seed
        return batch

    def compute_loss(batch):
        image, known, base = batch
        return inpaint_loss(model(image * known, known, base), image, known, cfg)

    return run_loop(run_dir, cfg, model, optimizer, next_batch, compute_loss, lambda: validate(model, val), info,
                    minutes, log)


CONFIG_CLASS = InpaintConfig
ARCH = "pconv_unet"
TRAINING_DATA = ("engine.workshop.synth.make_inpaint_sample backgrounds with text-shaped holes (seeds counted up "
                 "from 0), "
                 "plus clean real comic strips when a real-art folder was given, and tiles of real manga pages "
                 "(engine.workshop.train.manga_tiles; holes kept off their text) when a manga-art folder was given; "
                 "big_hole_share of the samples with a sound effect's hole instead (engine.workshop.synth.inpaint."
                 "glyph_hole: one to three bold outlined glyphs 60-120 px)")
