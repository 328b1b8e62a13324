"""The real engine server process (``python -m engine.server``) with tiny random-initialised models.

Started the way the plug-ins start it (``Client.connect_or_start``: detached, its log in the config folder).
Three server processes in all; about 15 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.pipeline import CleanOptions, Engine
from engine.protocol import (
    MAGIC,
    PREFIX,
    PROTOCOL_VERSION,
    Client,
    ProtocolError,
    read_endpoint,
    recv_message,
)
from engine.server import ServerLock, serve_main

REPO = Path(__file__).resolve().parents[2]
W, H = 320, 448

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals to kill the server")


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    import torch

    from engine.models import build_model
    from engine.weights import save_weights

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    seg = {"width": 0.25, "rfb_channels": 16, "decoder_channels": 16}
    save_weights(build_model("textseg", **seg), "textseg", "textseg.tiny", "textseg", seg, folder)
    unet = {"channels": [8, 16, 16]}
    save_weights(build_model("pconv_unet", **unet), "inpaint", "inpaint.tiny", "pconv_unet", unet, folder)
    return folder


@pytest.fixture(scope="module", autouse=True)
def child_env():
    # the server is started as `python -m engine.server`: make `engine` importable without an install
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        yield


def start(cfg: Path, weights: Path, idle_timeout: float = 120) -> Client:
    return Client.connect_or_start(python=sys.executable, cfg_dir=cfg, weights_dir=str(weights),
                                   idle_timeout=idle_timeout, start_timeout=60)


def kill_if_running(cfg: Path) -> None:
    endpoint = read_endpoint(cfg)
    if ServerLock.is_held(cfg) and endpoint:
        os.kill(endpoint["pid"], signal.SIGKILL)


@pytest.fixture(scope="module")
def server(weights_dir, tmp_path_factory):
    cfg = tmp_path_factory.mktemp("cfg")
    with start(cfg, weights_dir) as client:
        info = client.server_info
    yield {"cfg": cfg, "pid": info["pid"], "weights": weights_dir}
    kill_if_running(cfg)


def page(w: int = W, h: int = H) -> np.ndarray:
    """A seeded page, RGBA uint8 (h, w, 4): white paper, dark 'letters', a screentone patch."""
    rng = np.random.default_rng(5)
    px = np.full((h, w, 4), 255, np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    px[(yy // 6 + xx // 6) % 2 == 0, :3] = 200  # tone, top half
    px[h // 2:, :, :3] = 255
    for _ in range(40 * (w * h) // (W * H)):
        y, x = rng.integers(10, h - 30), rng.integers(10, w - 20)
        px[y:y + int(rng.integers(12, 24)), x:x + int(rng.integers(2, 5)), :3] = 0
    return px


def connect(cfg: Path) -> Client:
    return Client.connect(cfg)


def test_started_detached_with_models_and_a_private_token(server):
    cfg = server["cfg"]
    with connect(cfg) as client:
        info = client.ping()
    assert info["protocol"] == PROTOCOL_VERSION and info["pid"] == server["pid"] != os.getpid()
    assert info["models"] == {"textseg": "textseg.tiny", "inpaint": "inpaint.tiny"}
    assert os.getsid(info["pid"]) != os.getsid(0)  # its own session: it outlives the plug-in that started it
    assert (cfg / "server.token").stat().st_mode & 0o077 == 0
    assert "listening on" in (cfg / "server.log").read_text()


def test_detect_returns_the_same_mask_as_the_engine_in_process(server):
    px = page()
    engine = Engine.load(server["weights"])
    prob = engine.detect(np.ascontiguousarray(px[:, :, :3]))
    # random weights give probabilities in a narrow band (a few distinct values in bfloat16): pick a threshold
    # halfway between two of them, so no pixel sits on the edge, that marks about a third of the page
    values = np.unique(prob)
    assert len(values) >= 2
    middles = (values[:-1] + values[1:]) / 2
    middles = middles[np.linspace(0, len(middles) - 1, min(200, len(middles))).astype(int)]
    threshold = float(min(middles, key=lambda t: abs((prob >= t).mean() - 0.3)))
    expected = engine.text_mask(np.ascontiguousarray(px[:, :, :3]), CleanOptions(threshold=threshold))
    assert 0 < expected.mean() < 1
    with connect(server["cfg"]) as client:
        result = client.run("detect", px.tobytes(), W, H, "RGBA", options={"threshold": threshold})
    mask = np.frombuffer(result["mask"], np.uint8).reshape(H, W)
    assert set(np.unique(mask).tolist()) <= {0, 255}
    assert np.array_equal(mask == 255, expected)
    assert result["pixels"] is None and result["stats"]["engine_s"] > 0


def test_clean_reports_progress_and_returns_a_layer(server):
    notes = []
    px = page()[:, :, [2, 1, 0, 3]]  # as Krita sends it: BGRA
    with connect(server["cfg"]) as client:
        result = client.run("clean", px.tobytes(), W, H, "BGRA", options={"threshold": 0.2, "grow_px": 2},
                            progress=lambda f, m: notes.append((f, m)))
    fractions = [f for f, _ in notes]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert "Detecting text" in {m for _, m in notes}
    out = np.frombuffer(result["pixels"], np.uint8).reshape(H, W, 4)
    assert result["channels"] == "BGRA"
    changed = out[:, :, 3] > 0
    assert (out[~changed] == 0).all()
    assert changed.any() and (out[changed, 3] == 255).all()


def test_cancel_stops_the_job_and_the_server_keeps_serving(server):
    cfg = server["cfg"]
    w, h = 3 * W, 3 * H  # big enough that the job is still running when the cancel arrives
    with connect(cfg) as client, pytest.raises(ProtocolError) as info:
        client.run("clean", page(w, h).tobytes(), w, h, "RGBA", options={"threshold": 0.2},
                   progress=lambda f, m: False)
    assert info.value.kind == "cancelled"
    line = f"clean {w}x{h}: cancelled"
    deadline = time.monotonic() + 5
    while line not in (cfg / "server.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert line in (cfg / "server.log").read_text()
    with connect(cfg) as client:
        assert client.ping()["pid"] == server["pid"]


def raw_exchange(cfg: Path, data: bytes) -> dict:
    endpoint = read_endpoint(cfg)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(endpoint["address"])
        sock.sendall(data)
        header, _ = recv_message(sock, timeout=10)
    return header


def test_wrong_token_garbage_and_oversized_frames_are_refused(server):
    cfg = server["cfg"]
    head = json.dumps({"v": PROTOCOL_VERSION, "type": "ping", "token": "f" * 64}).encode()
    answer = raw_exchange(cfg, PREFIX.pack(MAGIC, len(head), 0) + head)
    assert answer["type"] == "error" and answer["kind"] == "auth"
    assert raw_exchange(cfg, b"\x00\xff garbage " * 50)["kind"] == "protocol"
    head = json.dumps({"type": "clean", "blobs": [["pixels", 1 << 36]]}).encode()
    assert raw_exchange(cfg, PREFIX.pack(MAGIC, len(head), 1 << 36) + head)["kind"] == "too_large"
    with connect(cfg) as client:
        assert client.ping()["pid"] == server["pid"]


def test_a_second_start_finds_the_running_server(server):
    cfg = server["cfg"]
    command = [sys.executable, "-m", "engine.server", "--config-dir", str(cfg),
               "--weights-dir", str(server["weights"])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "already running" in done.stdout and str(server["pid"]) in done.stdout
    with start(cfg, server["weights"]) as client:
        assert client.server_info["pid"] == server["pid"]


def test_status_and_stop(server, capsys):
    cfg = server["cfg"]
    assert serve_main(["--status", "--config-dir", str(cfg)]) == 0
    assert f"pid {server['pid']}" in capsys.readouterr().out
    assert serve_main(["--stop", "--config-dir", str(cfg)]) == 0
    assert not ServerLock.is_held(cfg) and read_endpoint(cfg) is None
    assert serve_main(["--status", "--config-dir", str(cfg)]) == 3
    assert "no Kesu engine server is running" in capsys.readouterr().out


def test_killed_mid_job_is_a_clear_error_then_a_fresh_start_idles_out(weights_dir, tmp_path_factory):
    cfg = tmp_path_factory.mktemp("cfg-kill")
    try:
        client = start(cfg, weights_dir)
        pid = client.server_info["pid"]

        def kill_on_first_note(fraction, message):
            os.kill(pid, signal.SIGKILL)

        t0 = time.monotonic()
        with client, pytest.raises(ProtocolError) as info:
            client.run("clean", page().tobytes(), W, H, "RGBA", progress=kill_on_first_note)
        assert info.value.kind == "connection" and "server.log" in str(info.value)
        assert time.monotonic() - t0 < 10
        # the crash left its files behind; a new start must see through them
        assert read_endpoint(cfg)["pid"] == pid
        with start(cfg, weights_dir, idle_timeout=1) as client:
            assert client.server_info["pid"] != pid
        deadline = time.monotonic() + 15
        while ServerLock.is_held(cfg) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not ServerLock.is_held(cfg), "the server did not exit after its idle timeout"
        assert read_endpoint(cfg) is None
        assert "idle for 1 s" in (cfg / "server.log").read_text()
    finally:
        kill_if_running(cfg)


def test_a_two_kind_model_answers_each_kind_and_erases_only_those_asked_for(tmp_path):
    from tests.conftest import make_tiny_weights

    # every pixel is lettering, none a sound effect
    weights = make_tiny_weights(tmp_path / "weights", text_bias=(10.0, -10.0), out_channels=2)
    cfg = tmp_path / "cfg"
    px = page(96, 64)
    try:
        with start(cfg, weights) as client:
            found = client.run("detect", px.tobytes(), 96, 64, "RGBA", text="sfx", kind_masks=True)
            sfx_only = client.run("clean", px.tobytes(), 96, 64, "RGBA", text="sfx")
            dialogue = client.run("clean", px.tobytes(), 96, 64, "RGBA")
    finally:
        kill_if_running(cfg)
    assert set(found["kind_masks"]) == {"dialogue", "sfx"}
    assert set(found["kind_masks"]["dialogue"]) == {255} and set(found["kind_masks"]["sfx"]) == {0}
    assert set(found["mask"]) == {0}  # the kinds asked for: sound effects, of which there are none
    assert set(sfx_only["mask"]) == {0} and set(sfx_only["pixels"]) == {0}  # nothing changed, no error
    assert set(dialogue["mask"]) == {255} and dialogue["pixels"][3::4].count(0) == 0  # all of it erased
