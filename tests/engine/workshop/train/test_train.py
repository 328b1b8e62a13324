"""Training runs: resumable to the exact same weights, pickle-free state, schedule, data edge cases."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from engine.errors import EngineError
from engine.workshop.train import inpaint, textseg
from engine.workshop.train.common import warmup_cosine

TINY = {"width": 0.35, "rfb_channels": 16, "decoder_channels": 8, "page_size": 128, "crop": 64,
        "crops_per_page": 2, "batch": 2, "warmup_steps": 100, "pretrained": False, "val_pages": 1,
        "val_every": 2, "save_every": 1}


def _run(run_dir, steps):
    cfg = textseg.TextSegConfig(total_steps=steps, **TINY)
    return textseg.train(run_dir, cfg, minutes=None, log=lambda m: None)


@pytest.mark.slow
def test_a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path):
    torch.set_num_threads(1)
    _run(tmp_path / "straight", 4)
    _run(tmp_path / "resumed", 2)
    info = _run(tmp_path / "resumed", 4)
    assert info["step"] == 4
    a = load_file(str(tmp_path / "straight" / "state.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "state.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.slow
def test_run_folder_holds_no_pickle_and_records_config_log_and_best(tmp_path):
    _run(tmp_path, 2)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"state.safetensors", "state.json", "best.safetensors", "best.json", "log.jsonl"} <= names
    assert not any(n.endswith((".pt", ".pth", ".pkl", ".ckpt")) for n in names)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["step"] == 2 and state["config"]["crop"] == 64 and "commit" in state
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["config"]["crop"] == 64 and "f1" in best["val"]
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert any("val" in record for record in log)


def test_warmup_then_cosine_down_to_the_floor():
    values = [warmup_cosine(s, 100, 10) for s in range(101)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[9:], values[10:], strict=False))
    assert values[100] == pytest.approx(0.02)


def test_inpaint_samples_from_real_art_smaller_than_the_crop(tmp_path):
    folder = tmp_path / "art"
    folder.mkdir()
    for i in range(6):  # every 5th file is held out: files 1..4 are trained on
        Image.fromarray(np.full((40 + i, 300, 3), 200, np.uint8)).save(folder / f"{i:03}.png")
    cfg = inpaint.InpaintConfig(crop=64, batch=2, real_art_dir=str(folder), real_art_share=1.0)
    stream = inpaint.SampleStream(cfg)
    image, known, base = stream.batch()
    assert image.shape == (2, 3, 64, 64) and known.shape == (2, 1, 64, 64) and base is None
    assert torch.allclose(image, torch.full_like(image, 200 / 255))


def test_inpaint_samples_split_between_strips_manga_tiles_and_synthetic_pages(tmp_path):
    for name, level in (("strips", 100), ("manga", 200)):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(3):
            Image.fromarray(np.full((64, 64, 3), level, np.uint8)).save(folder / f"{i:03}.png")
    tile = np.full((64, 64, 4), 200, np.uint8)
    tile[..., 3] = 255
    tile[:, :32, 3] = 0  # text on the left half of every manga tile
    for i in range(3):
        Image.fromarray(tile, "RGBA").save(tmp_path / "manga" / f"{i:03}.png")
    cfg = inpaint.InpaintConfig(crop=64, batch=1, real_art_dir=str(tmp_path / "strips"), real_art_share=0.3,
                                manga_art_dir=str(tmp_path / "manga"), manga_art_share=0.3)
    stream = inpaint.SampleStream(cfg)
    samples = [stream.sample() for _ in range(60)]
    levels = [int(image[0, 0, 0]) for image, _ in samples]
    strips, manga = levels.count(100), levels.count(200)
    assert 8 <= strips <= 30 and 8 <= manga <= 30 and strips + manga < 60
    manga_holes = [hole for image, hole in samples if image[0, 0, 0] == 200]
    assert all(image.shape == (64, 64, 3) for image, _ in samples)
    assert not any(hole[:, :32].any() for hole in manga_holes) and any(hole.any() for hole in manga_holes)
    # a manga folder given no share changes nothing
    plain = inpaint.SampleStream(replace(cfg, manga_art_dir=None, manga_art_share=0.0))
    with_dir = inpaint.SampleStream(replace(cfg, manga_art_share=0.0))
    assert [int(plain.sample()[0][0, 0, 0]) for _ in range(20)] == [int(with_dir.sample()[0][0, 0, 0])
                                                                     for _ in range(20)]


def test_inpaint_shares_over_one_are_refused(tmp_path):
    cfg = inpaint.InpaintConfig(real_art_share=0.6, manga_art_share=0.5)
    with pytest.raises(EngineError, match="is over 1"):
        inpaint.train(tmp_path / "run", cfg, minutes=0.0)


@pytest.mark.slow
def test_a_residual_inpaint_run_starts_from_a_plain_models_weights_and_sees_the_smooth_fill(tmp_path):
    from engine.models import build_model
    from engine.pipeline.smooth_fill import smooth_fill
    from engine.weights import save_weights

    torch.set_num_threads(1)
    kwargs = {"in_channels": 3, "channels": [8, 16], "first_kernel": 3}
    plain = build_model("pconv_unet", **kwargs)
    weights = save_weights(plain, "inpaint", "inpaint.plain.test", "pconv_unet", kwargs, tmp_path / "weights")
    cfg = inpaint.InpaintConfig(channels=(8, 16), first_kernel=3, crop=64, batch=2, total_steps=2, val_samples=1,
                                val_every=1, save_every=1, residual=True, init_weights=str(weights))
    image, known, base = inpaint.SampleStream(cfg).batch()
    hole = known[0, 0].numpy() == 0
    expected = smooth_fill((image[0].permute(1, 2, 0).numpy() * 255).round(), hole) / 255
    assert torch.allclose(base[0].permute(1, 2, 0), torch.from_numpy(expected), atol=1e-4)
    said = []
    info = inpaint.train(tmp_path / "run", cfg, minutes=None, log=said.append)
    assert info["step"] == 2 and "hole_psnr" in json.loads((tmp_path / "run" / "best.json").read_text())["val"]
    assert any("tensors copied" in m and "correction.weight" in m for m in said), said
    state = load_file(str(tmp_path / "run" / "state.safetensors"))
    assert "model.correction.weight" in state and "model.head.weight" not in state


def test_init_from_weights_refuses_an_unrelated_or_corrupt_file(tmp_path):
    from engine.errors import WeightsError
    from engine.models import build_model
    from engine.workshop.train.common import init_from_weights

    model = build_model("pconv_unet", in_channels=3, channels=[8, 16], first_kernel=3)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not weights")
    with pytest.raises(WeightsError, match="corrupt.safetensors"):
        init_from_weights(model, str(corrupt), print)
    from safetensors.torch import save_file

    save_file({"something.else": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(WeightsError, match="shares no tensor"):
        init_from_weights(model, str(tmp_path / "other.safetensors"), print)


def test_textseg_crops_from_real_art_are_lettered_strips(tmp_path):
    folder = tmp_path / "art"
    folder.mkdir()
    for i in range(2):  # file 000 is held out: only the dark grey 001 may be used
        Image.fromarray(np.full((300, 900), 10 + 90 * i, np.uint8)).save(folder / f"{i:03}.png")
    cfg = textseg.TextSegConfig(page_size=128, crop=64, batch=8, real_art_dir=str(folder), real_art_share=1.0)
    x, y, scored = textseg.CropStream(cfg).batch()
    assert x.shape == (8, 1, 64, 64) and y.shape == (8, 1, 64, 64) and bool((scored == 1).all())
    background = x[y == 0]
    # the held-out strip is grey 10 (0.04); the trained-on one is grey 100 (0.39), shifted by scan degradations
    assert 0.2 < float(background.median()) < 0.6


@pytest.mark.slow
def test_release_ships_the_best_or_the_last_checkpoint(tmp_path, monkeypatch):
    import engine.weights
    from engine.workshop.train.cli import release

    torch.set_num_threads(1)
    run_dir = tmp_path / "run"
    _run(run_dir, 3)  # validated at steps 2 and 3; the state is step 3
    monkeypatch.setattr(engine.weights, "SHIPPED_DIR", tmp_path / "weights")
    release("textseg", run_dir, "textseg.last", textseg, "last")
    manifest = json.loads((tmp_path / "weights" / "manifest.json").read_text())
    entry = manifest["textseg"]
    assert entry["training"]["step"] == 3 and entry["training"]["checkpoint"] == "last"
    assert entry["metrics"]["synthetic_validation"] is not None
    shipped = load_file(str(tmp_path / "weights" / "textseg.last.safetensors"))
    state = load_file(str(run_dir / "state.safetensors"))
    assert all(torch.equal(v, state[f"model.{k}"]) for k, v in shipped.items())
    release("textseg", run_dir, "textseg.best", textseg, "best")
    entry = json.loads((tmp_path / "weights" / "manifest.json").read_text())["textseg"]
    assert entry["training"]["checkpoint"] == "best" and entry["file"] == "textseg.best.safetensors"
    # a candidate goes into a folder of its own; the shipped folder keeps what it had
    release("textseg", run_dir, "textseg.candidate", textseg, "best", tmp_path / "candidate")
    assert json.loads((tmp_path / "candidate" / "manifest.json").read_text())["textseg"]["name"] == "textseg.candidate"
    assert json.loads((tmp_path / "weights" / "manifest.json").read_text())["textseg"]["name"] == "textseg.best"


@pytest.mark.slow
def test_resuming_a_run_with_another_model_shape_says_to_start_a_new_run(tmp_path):
    from engine.errors import EngineError

    torch.set_num_threads(1)
    small = {"channels": (8, 16), "first_kernel": 3, "crop": 64, "batch": 1, "val_samples": 1, "save_every": 1}
    inpaint.train(tmp_path, inpaint.InpaintConfig(total_steps=1, **small), minutes=None, log=lambda m: None)
    with pytest.raises(EngineError, match="start a new run"):
        inpaint.train(tmp_path, inpaint.InpaintConfig(total_steps=2, residual=True, **small), minutes=None,
                      log=lambda m: None)


def test_resuming_keeps_the_saved_config_except_what_was_set_even_to_the_default(tmp_path):
    from engine.workshop.train.common import resolve_config

    defaults = textseg.TextSegConfig()
    saved = {**vars(defaults), "shout_share": 0.5, "lr": 0.01}
    (tmp_path / "state.json").write_text(json.dumps({"config": saved}))
    assert resolve_config(tmp_path, textseg.TextSegConfig, None).shout_share == 0.5
    asked = textseg.TextSegConfig(shout_share=defaults.shout_share, total_steps=99)
    resumed = resolve_config(tmp_path, textseg.TextSegConfig, asked, explicit={"shout_share", "total_steps"})
    assert resumed.shout_share == defaults.shout_share   # set on the command line to the default: taken
    assert resumed.total_steps == 99 and resumed.lr == 0.01  # the rest stays as saved
    assert resolve_config(tmp_path, textseg.TextSegConfig, asked).shout_share == 0.5  # not named: saved wins


def test_zoomed_crop_resizes_the_grey_and_keeps_text_where_half_a_pixel_was():
    grey = np.zeros((4, 4), np.uint8)
    grey[:2, :2] = 200
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    mask[2, 2] = True  # a quarter of the output pixel (1, 1): not text
    g, m = textseg.zoomed(grey, mask, 2)
    assert g.shape == (2, 2) and g.dtype == np.uint8 and g[0, 0] > 150 and g[1, 1] < 50
    assert m.tolist() == [[True, False], [False, False]]


def test_crop_zoom_draws_smaller_text_from_its_own_stream():
    plain = textseg.TextSegConfig(page_size=192, crop=64, batch=8)
    zoom = textseg.TextSegConfig(page_size=192, crop=64, batch=8, crop_zoom_min=0.5, crop_zoom_max=0.5)
    x0, y0, _ = textseg.CropStream(plain).batch()
    x1, y1, _ = textseg.CropStream(zoom).batch()
    x2, y2, _ = textseg.CropStream(zoom).batch()
    assert x1.shape == x0.shape and y1.shape == y0.shape
    assert torch.equal(x1, x2) and torch.equal(y1, y2)  # same seed, same batch
    assert not torch.equal(x1, x0)


def test_two_channel_targets_split_lettering_from_sound_effects():
    text = np.array([[True, True, False]])
    sfx = np.array([[False, True, False]])
    assert textseg.kind_targets(text, sfx, 1).tolist() == [[[1, 1, 0]]]
    assert textseg.kind_targets(text, sfx, 2).tolist() == [[[1, 0, 0]], [[0, 1, 0]]]


def test_two_channel_crops_carry_both_kinds_and_zoom_keeps_them_apart():
    cfg = textseg.TextSegConfig(page_size=256, crop=64, batch=8, out_channels=2, crop_zoom_min=0.6,
                                crop_zoom_max=0.9, shout_share=0.2)
    x, y, scored = textseg.CropStream(cfg).batch()
    assert y.shape == (8, 2, 64, 64) and scored.shape == y.shape
    assert not bool((y[:, 0] * y[:, 1]).any())  # a pixel is one kind or the other


def test_unscored_pixels_do_not_move_the_loss():
    logits = torch.zeros(1, 2, 4, 4)
    target = torch.zeros(1, 2, 4, 4)
    scored = torch.ones(1, 2, 4, 4)
    scored[0, 1, 0, 0] = 0  # a pixel left out of the sound-effect channel
    base = textseg.segmentation_loss(logits, target, 2.0, 0.5, scored)
    wrong = logits.clone()
    wrong[0, 1, 0, 0] = 20.0  # a very confident sound effect where the target says none
    assert torch.isclose(textseg.segmentation_loss(wrong, target, 2.0, 0.5, scored), base, atol=1e-6)
    scored[0, 1, 0, 0] = 1
    assert textseg.segmentation_loss(wrong, target, 2.0, 0.5, scored) > \
        textseg.segmentation_loss(logits, target, 2.0, 0.5, scored) + 0.1


def test_a_two_channel_run_starts_from_one_channel_weights_on_both_channels(tmp_path):
    from safetensors.torch import save_file

    from engine.models.textseg import TextSegNet

    one = TextSegNet(1, 0.35, rfb_channels=32, decoder_channels=16)
    path = tmp_path / "one.safetensors"
    save_file({k: v.contiguous() for k, v in one.state_dict().items()}, str(path))
    two = TextSegNet(1, 0.35, rfb_channels=32, decoder_channels=16, out_channels=2)
    textseg.init_from_textseg_weights(two, str(path), log=lambda m: None)
    one.eval()
    two.eval()
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        a, b = one(x), two(x)
    assert torch.allclose(b[:, :1], a, atol=1e-5) and torch.allclose(b[:, 1:], a, atol=1e-5)


def test_a_frozen_encoder_stays_as_it_was(tmp_path):
    cfg = textseg.TextSegConfig(width=0.35, rfb_channels=32, decoder_channels=16, out_channels=2,
                                freeze_encoder=True, pretrained=False)
    model, optimizer = textseg.build(cfg)
    model.train()
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    loss = textseg.segmentation_loss(model(torch.rand(2, 1, 32, 32)), torch.zeros(2, 2, 32, 32), 2.0, 0.5)
    loss.backward()
    optimizer.step()
    assert not model.encoder.training
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())


def test_the_texture_loss_punishes_a_smear_and_not_the_truth():
    torch.manual_seed(0)
    target = torch.rand(1, 3, 32, 32)
    hole = torch.zeros(1, 1, 32, 32)
    hole[..., 8:24, 8:24] = 1
    smear = target * (1 - hole) + 0.5 * hole
    assert inpaint.texture_loss(target, target, hole) == 0
    assert inpaint.texture_loss(smear, target, hole) > 0.1
    # it asks for as much detail, not the same detail: noise of the same strength costs far less than a smear
    other = target * (1 - hole) + torch.rand(1, 3, 32, 32) * hole
    assert inpaint.texture_loss(other, target, hole) < 0.5 * inpaint.texture_loss(smear, target, hole)


def test_a_share_of_samples_get_a_sound_effects_hole_and_the_art_stays_the_same():
    cfg = inpaint.InpaintConfig(crop=128, batch=1)
    stream = inpaint.SampleStream(replace(cfg, big_hole_share=0.5))
    samples = [stream.sample() for _ in range(12)]
    plain_stream = inpaint.SampleStream(cfg)
    plain = [plain_stream.sample() for _ in range(12)]
    changed = [not np.array_equal(a[1], b[1]) for a, b in zip(samples, plain, strict=True)]
    assert 2 <= sum(changed) <= 10
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(samples, plain, strict=True))


def test_far_blocks_train_with_their_own_learning_rate_and_a_big_hole_validation(tmp_path):
    torch.set_num_threads(1)
    cfg = inpaint.InpaintConfig(channels=(8, 16, 16), first_kernel=3, crop=64, batch=1, total_steps=1, val_samples=1,
                                val_every=1, save_every=1, residual=True, far_blocks=1, far_lr_scale=4.0,
                                big_hole_share=0.5, big_val_samples=1, texture_weight=1.0)
    info = inpaint.train(tmp_path / "run", cfg, minutes=None, log=lambda m: None)
    assert info["step"] == 1 and "big_psnr" in info["last_val"]
    groups = json.loads((tmp_path / "run" / "state.json").read_text())["optimizer_groups"]
    assert [g["base_lr"] for g in groups] == [cfg.lr, 4.0 * cfg.lr]
    state = load_file(str(tmp_path / "run" / "state.safetensors"))
    assert "model.far.0.spectral.weight" in state
