"""Narrow the full-resolution level of a trained inpainting U-Net, as the start of a faster network.

The first level (``channels[0]``: the first encoder layer's output and the last decoder layer's) does most of the
network's work, at full resolution. This keeps its ``keep`` strongest channels of each of the two layers (by the
norm of the weights that write them times the norm of the weights that read them) and drops the rest, with the
rows and columns that touch them. The result is a weights file for ``PConvUNet(channels=(keep, ...))``, to be
fine-tuned (``kesu train inpaint --init-from OUT --set channels=keep,...``), never used as is.

    python -m engine.train.prune IN.safetensors OUT.safetensors --keep 16
"""

from __future__ import annotations

import argparse
import sys

import torch

from engine.train.common import model_tensors


def _last_decoder(tensors: dict[str, torch.Tensor]) -> str:
    indices = sorted(int(k.split(".")[1]) for k in tensors if k.startswith("decoders.") and k.endswith(".weight"))
    if not indices:
        raise ValueError("not the weights of a PConvUNet: no decoders.N.weight")
    return f"decoders.{indices[-1]}"


def prune_first_level(tensors: dict[str, torch.Tensor], keep: int) -> dict[str, torch.Tensor]:
    """The weights of a PConvUNet (residual or plain) with ``keep`` first-level channels instead of
    ``channels[0]``; every other tensor unchanged."""
    out = dict(tensors)
    enc0, enc1 = tensors["encoders.0.weight"], tensors["encoders.1.weight"]
    last = _last_decoder(tensors)
    dec = tensors[f"{last}.weight"]
    head = "correction" if "correction.weight" in tensors else "head"
    width = enc0.shape[0]
    if not 0 < keep <= width:
        raise ValueError(f"keep must be between 1 and the first level's {width} channels, got {keep}")
    upsampled = dec.shape[1] - width  # the last decoder reads [upsampled features, first-level skip]

    # the first encoder layer's channels: written by its rows, read by the second encoder and the last decoder
    reads = enc1.flatten(2).norm(dim=(0, 2)) + dec[:, upsampled:].flatten(2).norm(dim=(0, 2))
    skip = _strongest(enc0.flatten(1).norm(dim=1) * reads, keep)
    out["encoders.0.weight"] = enc0[skip].clone()
    out["encoders.0.bias"] = tensors["encoders.0.bias"][skip].clone()
    out["encoders.1.weight"] = enc1[:, skip].clone()
    dec = torch.cat([dec[:, :upsampled], dec[:, upsampled + skip]], dim=1)

    # the last decoder layer's channels: written by its rows, read by the output layer's first columns
    head_weight = tensors[f"{head}.weight"]
    features = _strongest(dec.flatten(1).norm(dim=1) * head_weight[:, :width].flatten(2).norm(dim=(0, 2)), keep)
    out[f"{last}.weight"] = dec[features].clone()
    out[f"{last}.bias"] = tensors[f"{last}.bias"][features].clone()
    out[f"{head}.weight"] = torch.cat([head_weight[:, features], head_weight[:, width:]], dim=1).clone()
    return out


def _strongest(score: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices of the ``keep`` largest scores, in their original order."""
    return torch.sort(torch.topk(score, keep).indices).values


def main(argv: list[str] | None = None) -> int:
    from safetensors.torch import load_file, save_file

    parser = argparse.ArgumentParser(prog="python -m engine.train.prune", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", metavar="IN", help="weights of a trained inpainting U-Net (.safetensors)")
    parser.add_argument("target", metavar="OUT", help="where to write the narrowed weights")
    parser.add_argument("--keep", type=int, default=16, help="first-level channels to keep (default 16)")
    args = parser.parse_args(argv)
    try:
        tensors = load_file(args.source)
    except Exception as e:  # safetensors raises its own error types
        print(f"cannot read {args.source}: {e}; pass an inpainting weights file (.safetensors)", file=sys.stderr)
        return 2
    tensors = model_tensors(tensors)
    try:
        pruned = prune_first_level(tensors, args.keep)
    except (KeyError, ValueError) as e:
        print(f"cannot narrow {args.source}: {e}", file=sys.stderr)
        return 2
    save_file({k: v.contiguous() for k, v in pruned.items()}, args.target)
    levels = sum(1 for k in pruned if k.startswith("encoders.") and k.endswith(".weight"))
    channels = [pruned[f"encoders.{i}.weight"].shape[0] for i in range(levels)]
    print(f"wrote {args.target}: first level {tensors['encoders.0.weight'].shape[0]} -> {args.keep} channels; "
          f"fine-tune with --set channels={','.join(map(str, channels))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
