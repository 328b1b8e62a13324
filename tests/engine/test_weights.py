import json

import pytest
import torch

from engine.errors import WeightsError
from engine.weights import installed_roles, load_model, manifest_entry, read_manifest, sha256_of
from tests.conftest import make_tiny_weights


def test_round_trip_gives_the_same_outputs(tmp_path):
    make_tiny_weights(tmp_path, seed=3)
    manifest = read_manifest(tmp_path)
    assert set(manifest) == {"textseg", "inpaint"}
    entry = manifest["textseg"]
    assert entry["sha256"] == sha256_of(tmp_path / entry["file"])
    a, b = load_model("textseg", tmp_path), load_model("textseg", tmp_path)
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    assert not a.training


def test_no_weights_installed_is_plain(tmp_path):
    with pytest.raises(WeightsError, match="no text detection weights are installed.*kesu train textseg"):
        manifest_entry("textseg", tmp_path)


def test_corrupt_file_is_named(tmp_path):
    make_tiny_weights(tmp_path)
    path = tmp_path / read_manifest(tmp_path)["inpaint"]["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=f"{path.name} is corrupt.*reinstall"):
        load_model("inpaint", tmp_path)


def test_missing_file_is_named(tmp_path):
    make_tiny_weights(tmp_path)
    path = tmp_path / read_manifest(tmp_path)["textseg"]["file"]
    path.unlink()
    with pytest.raises(WeightsError, match=f"{path.name} is missing"):
        load_model("textseg", tmp_path)


def test_unreadable_safetensors_with_matching_hash_is_named(tmp_path):
    make_tiny_weights(tmp_path)
    manifest = read_manifest(tmp_path)
    path = tmp_path / manifest["textseg"]["file"]
    path.write_bytes(b"not a safetensors file")
    manifest["textseg"]["sha256"] = sha256_of(path)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match=f"{path.name} cannot be read"):
        load_model("textseg", tmp_path)


def test_weights_of_another_shape_are_refused(tmp_path):
    make_tiny_weights(tmp_path)
    manifest = read_manifest(tmp_path)
    manifest["textseg"]["kwargs"]["width"] = 1.0
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="does not fit the textseg model"):
        load_model("textseg", tmp_path)


@pytest.mark.parametrize(
    ("change", "text"),
    [
        (lambda entry: entry.pop("arch") and None, "names no architecture"),
        (lambda entry: entry["kwargs"].update(colour_depth=3), "does not describe a model this Kesu builds"),
        (lambda entry: entry.update(arch="transformer"), "does not describe a model this Kesu builds"),
        (lambda entry: entry.update(kwargs=[1, 2]), "kwargs"),
        (lambda entry: "textseg.safetensors", "is str, not an object"),
    ],
    ids=["no-arch", "unknown-kwargs", "unknown-arch", "kwargs-list", "string-entry"],
)
def test_a_manifest_entry_that_cannot_be_used_is_a_weights_error(tmp_path, change, text):
    make_tiny_weights(tmp_path)
    manifest = read_manifest(tmp_path)
    replaced = change(manifest["textseg"])
    if isinstance(replaced, str):
        manifest["textseg"] = replaced
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match=text) as info:
        installed_roles(tmp_path)
        load_model("textseg", tmp_path)
    assert "manifest.json" in str(info.value) and "'textseg'" in str(info.value)


def test_serve_with_a_broken_manifest_exits_with_a_message(tmp_path, capsys):
    from engine.server import serve_main

    make_tiny_weights(tmp_path / "w")
    manifest = read_manifest(tmp_path / "w")
    del manifest["textseg"]["arch"]
    (tmp_path / "w" / "manifest.json").write_text(json.dumps(manifest))
    rc = serve_main(["--weights-dir", str(tmp_path / "w"), "--config-dir", str(tmp_path / "cfg")])
    assert rc == 1 and "names no architecture" in capsys.readouterr().err


def test_broken_manifest_is_named(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(WeightsError, match="manifest.json cannot be read"):
        read_manifest(tmp_path)


def test_record_metrics_keeps_the_weights_loadable(tmp_path):
    from engine.weights import record_metrics

    make_tiny_weights(tmp_path)
    record_metrics("textseg", "evaluation", {"rows": [{"set": "x", "f1": 0.5}]}, tmp_path)
    assert read_manifest(tmp_path)["textseg"]["metrics"]["evaluation"]["rows"][0]["f1"] == 0.5
    load_model("textseg", tmp_path)


def test_record_metrics_without_weights_says_so(tmp_path):
    from engine.weights import record_metrics

    with pytest.raises(WeightsError, match="no textseg weights are listed"):
        record_metrics("textseg", "evaluation", {}, tmp_path)


def test_a_new_release_replaces_the_role_s_old_file(tmp_path):
    from engine.models import build_model
    from engine.weights import save_weights
    from tests.conftest import TINY_TEXTSEG

    make_tiny_weights(tmp_path)
    old = tmp_path / read_manifest(tmp_path)["textseg"]["file"]
    save_weights(build_model("textseg", **TINY_TEXTSEG), "textseg", "textseg.next", "textseg", TINY_TEXTSEG, tmp_path)
    assert not old.exists()
    assert (tmp_path / "textseg.next.safetensors").exists()
    assert (tmp_path / read_manifest(tmp_path)["inpaint"]["file"]).exists()
