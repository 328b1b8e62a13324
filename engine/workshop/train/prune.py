"""Narrow one level of a trained inpainting U-Net, as the start of a faster network.

The full-resolution level (``channels[0]``: the first encoder layer's output and the last decoder layer's) does most
of the network's work, the half-resolution level (``channels[1]``) most of the rest. This keeps a level's ``keep``
strongest channels of each of its two layers (by the norm of the weights that write them times the norm of the
weights that read them) and drops the rest, with the rows and columns that touch them. The result is a weights file
for the narrower ``PConvUNet``, to be fine-tuned (``kesu train inpaint --init-from OUT --set channels=...``, the
command prints the list), never used as is. Narrow two levels by running it twice.

    python -m engine.workshop.train.prune IN.safetensors OUT.safetensors --keep 16
    python -m engine.workshop.train.prune OUT.safetensors OUT2.safetensors --level 1 --keep 48
"""

from __future__ import annotations

import argparse
import sys

import torch

from engine.workshop.train.common import model_tensors


def channels_of(tensors: dict[str, torch.Tensor]) -> list[int]:
    """The ``channels`` of the PConvUNet these weights are for (its encoder layers' widths)."""
    levels = sum(1 for k in tensors if k.startswith("encoders.") and k.endswith(".weight"))
    return [tensors[f"encoders.{i}.weight"].shape[0] for i in range(levels)]


def prune_level(tensors: dict[str, torch.Tensor], level: int, keep: int) -> dict[str, torch.Tensor]:
    """The weights of a PConvUNet (residual or plain) with ``keep`` channels at ``level`` instead of
    ``channels[level]``; every other tensor unchanged.

    A level's channels are two sets: the encoder layer's output (read by the next encoder and, as the skip, by
    the decoder layer of the same level) and that decoder layer's output (read by the next decoder, or by the
    output layer after the last one). Each keeps its ``keep`` strongest."""
    out = dict(tensors)
    depth = len(channels_of(tensors)) - 1
    # a PConvUNet of depth d has decoders 0 .. d-1
    if depth < 1 or f"decoders.{depth - 1}.weight" not in tensors or f"decoders.{depth}.weight" in tensors:
        raise ValueError("not the weights of a PConvUNet: its encoders and decoders do not match")
    if not 0 <= level < depth:
        raise ValueError(f"level must be between 0 and {depth - 1} (the deepest level has no skip), got {level}")
    encoder, reader = f"encoders.{level}", f"encoders.{level + 1}"
    decoder = f"decoders.{depth - 1 - level}"
    width = tensors[f"{encoder}.weight"].shape[0]
    if not 0 < keep <= width:
        raise ValueError(f"keep must be between 1 and level {level}'s {width} channels, got {keep}")
    enc, enc_next, dec = tensors[f"{encoder}.weight"], tensors[f"{reader}.weight"], tensors[f"{decoder}.weight"]
    upsampled = dec.shape[1] - width  # a decoder reads [upsampled features, skip from its level's encoder]

    # the encoder layer's channels: written by its rows, read by the next encoder and by the decoder's skip columns
    reads = enc_next.flatten(2).norm(dim=(0, 2)) + dec[:, upsampled:].flatten(2).norm(dim=(0, 2))
    skip = _strongest(enc.flatten(1).norm(dim=1) * reads, keep)
    out[f"{encoder}.weight"] = enc[skip].clone()
    out[f"{encoder}.bias"] = tensors[f"{encoder}.bias"][skip].clone()
    out[f"{reader}.weight"] = enc_next[:, skip].clone()
    dec = torch.cat([dec[:, :upsampled], dec[:, upsampled + skip]], dim=1)

    # the decoder layer's channels: written by its rows, read by the first columns of the layer after it
    if level == 0:
        after = "correction" if "correction.weight" in tensors else "head"
    else:
        after = f"decoders.{depth - level}"
    after_weight = out[f"{after}.weight"]
    features = _strongest(dec.flatten(1).norm(dim=1) * after_weight[:, :width].flatten(2).norm(dim=(0, 2)), keep)
    out[f"{decoder}.weight"] = dec[features].clone()
    out[f"{decoder}.bias"] = tensors[f"{decoder}.bias"][features].clone()
    out[f"{after}.weight"] = torch.cat([after_weight[:, features], after_weight[:, width:]], dim=1).clone()
    return out


def _strongest(score: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices of the ``keep`` largest scores, in their original order."""
    return torch.sort(torch.topk(score, keep).indices).values


def main(argv: list[str] | None = None) -> int:
    from safetensors.torch import load_file, save_file

    parser = argparse.ArgumentParser(prog="python -m engine.workshop.train.prune", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", metavar="IN", help="weights of a trained inpainting U-Net (.safetensors)")
    parser.add_argument("target", metavar="OUT", help="where to write the narrowed weights")
    parser.add_argument("--level", type=int, default=0, help="level to narrow: 0 full resolution (default), 1 half...")
    parser.add_argument("--keep", type=int, default=16, help="channels of that level to keep (default 16)")
    args = parser.parse_args(argv)
    try:
        tensors = load_file(args.source)
    except Exception as e:  # safetensors raises its own error types
        print(f"cannot read {args.source}: {e}; pass an inpainting weights file (.safetensors)", file=sys.stderr)
        return 2
    tensors = model_tensors(tensors)
    try:
        pruned = prune_level(tensors, args.level, args.keep)
    except (KeyError, ValueError) as e:
        print(f"cannot narrow {args.source}: {e}", file=sys.stderr)
        return 2
    save_file({k: v.contiguous() for k, v in pruned.items()}, args.target)
    before = channels_of(tensors)[args.level]
    print(f"wrote {args.target}: level {args.level} {before} -> {args.keep} channels; "
          f"fine-tune with --set channels={','.join(map(str, channels_of(pruned)))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
