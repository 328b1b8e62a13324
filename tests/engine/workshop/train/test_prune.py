"""Narrowing a level of an inpainting U-Net: the weights fit the narrower network, keeping every channel changes
nothing, and the channels kept are the strong ones."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.models.pconv import PConvUNet
from engine.workshop.train.prune import main, prune_level


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, 32, 32, generator=g)
    mask = torch.ones(1, 1, 32, 32)
    mask[..., 8:20, 6:26] = 0
    return image * mask, mask, torch.rand(1, 3, 32, 32, generator=g)


def _trained_like(residual=True):
    torch.manual_seed(0)
    net = PConvUNet(3, (8, 16, 16), first_kernel=3, residual=residual)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return net


@pytest.mark.parametrize("residual", [True, False])
def test_the_narrowed_weights_load_into_the_narrower_network(residual):
    net = _trained_like(residual)
    pruned = prune_level(net.state_dict(), 0, 4)
    narrow = PConvUNet(3, (4, 16, 16), first_kernel=3, residual=residual)
    narrow.load_state_dict(pruned)  # strict: every name and shape fits
    image, mask, base = _inputs()
    out = narrow(image, mask, base if residual else None)
    assert out.shape == image.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("level,width", [(0, 8), (1, 16)])
def test_keeping_every_channel_changes_nothing(level, width):
    net = _trained_like()
    same = PConvUNet(3, (8, 16, 16), first_kernel=3, residual=True)
    same.load_state_dict(prune_level(net.state_dict(), level, width))
    image, mask, base = _inputs()
    assert torch.allclose(same(image, mask, base), net(image, mask, base), atol=1e-6)


@pytest.mark.parametrize("residual", [True, False])
def test_two_levels_narrowed_in_turn_load_into_the_narrower_network(residual):
    net = _trained_like(residual)
    pruned = prune_level(prune_level(net.state_dict(), 0, 4), 1, 10)
    narrow = PConvUNet(3, (4, 10, 16), first_kernel=3, residual=residual)
    narrow.load_state_dict(pruned)
    image, mask, base = _inputs()
    out = narrow(image, mask, base if residual else None)
    assert out.shape == image.shape and torch.isfinite(out).all()


def test_a_dead_half_resolution_channel_is_dropped():
    net = _trained_like()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["encoders.1.weight"][3] = 0  # writes nothing
    state["decoders.0.weight"][11] = 0  # the level-1 decoder layer: writes nothing
    pruned = prune_level(state, 1, 15)
    assert not (pruned["encoders.1.weight"].flatten(1).abs().sum(1) == 0).any()
    assert not (pruned["decoders.0.weight"].flatten(1).abs().sum(1) == 0).any()
    assert pruned["encoders.2.weight"].shape[1] == 15 and pruned["decoders.1.weight"].shape[1] == 15 + 8


def test_the_strong_channels_are_kept_and_a_dead_one_dropped():
    net = _trained_like()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["encoders.0.weight"][2] = 0  # a first-layer channel that writes nothing
    state["decoders.1.weight"][5] = 0  # a last-decoder channel that writes nothing
    pruned = prune_level(state, 0, 7)
    first, kept_rows = state["encoders.0.weight"], pruned["encoders.0.weight"]
    kept_encoder = [i for i in range(8) if any(torch.equal(kept_rows[j], first[i]) for j in range(7))]
    assert 2 not in kept_encoder and len(kept_encoder) == 7
    assert not (pruned["decoders.1.weight"].flatten(1).abs().sum(1) == 0).any()


def test_refuses_an_impossible_width_and_a_file_of_another_role(tmp_path, capsys):
    net = _trained_like()
    with pytest.raises(ValueError, match="between 1 and level 0's 8"):
        prune_level(net.state_dict(), 0, 9)
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        prune_level(net.state_dict(), 2, 4)  # the deepest level has no skip to narrow
    other = tmp_path / "other.safetensors"
    save_file({"stem.0.weight": torch.zeros(4, 1, 3, 3)}, str(other))
    assert main([str(other), str(tmp_path / "out.safetensors"), "--keep", "4"]) == 2
    assert "cannot narrow" in capsys.readouterr().err
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a weights file")
    assert main([str(broken), str(tmp_path / "out.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and str(broken) in err  # the bad file is named


def test_the_command_writes_a_file_for_the_narrower_network(tmp_path, capsys):
    net = _trained_like()
    source = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(source))
    target = tmp_path / "narrow.safetensors"
    assert main([str(source), str(target), "--keep", "4"]) == 0
    assert "--set channels=4,16,16" in capsys.readouterr().out
    again = tmp_path / "narrower.safetensors"
    assert main([str(target), str(again), "--level", "1", "--keep", "12"]) == 0
    assert "--set channels=4,12,16" in capsys.readouterr().out
    narrow = PConvUNet(3, (4, 16, 16), first_kernel=3, residual=True)
    narrow.load_state_dict(load_file(str(target)))


def test_a_training_state_gives_only_its_network(tmp_path):
    net = _trained_like()
    state = {f"model.{k}": v.contiguous() for k, v in net.state_dict().items()}
    state["optimizer.0.exp_avg"] = torch.zeros(3)  # what else a state.safetensors holds
    source = tmp_path / "state.safetensors"
    save_file(state, str(source))
    target = tmp_path / "narrow.safetensors"
    assert main([str(source), str(target), "--keep", "4"]) == 0
    narrowed = load_file(str(target))
    assert not any(k.startswith(("model.", "optimizer.")) for k in narrowed)
    PConvUNet(3, (4, 16, 16), first_kernel=3, residual=True).load_state_dict(narrowed)
