"""engine.server in this process with a fake engine: pixel layouts, queueing, cancel, refusals (fast).

The real server process with real (tiny) models is tested in test_server.py.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.errors import CancelledError, InputError, WeightsError
from engine.pipeline import CleanResult
from engine.protocol import (
    KIND_MASK_BLOBS,
    MAGIC,
    PREFIX,
    PROTOCOL_VERSION,
    Client,
    ProtocolError,
    read_endpoint,
    recv_message,
    send_message,
)
from engine.server import SUN_PATH_MAX, Server, pixels_to_rgb, result_pixels, socket_path

# ------------------------------------------------------------------------------------------ pixel layouts


@pytest.mark.parametrize(
    ("channels", "pixel", "rgb", "alpha"),
    [
        ("RGBA", [10, 20, 30, 255], [10, 20, 30], 255),
        ("BGRA", [30, 20, 10, 255], [10, 20, 30], 255),
        ("RGB", [10, 20, 30], [10, 20, 30], None),
        ("BGR", [30, 20, 10], [10, 20, 30], None),
        ("L", [77], [77, 77, 77], None),
        ("LA", [77, 255], [77, 77, 77], 255),
        # not opaque: composited over white. 0 * 128/255 + 255 * 127/255 = 127; transparent -> white
        ("RGBA", [0, 0, 0, 128], [127, 127, 127], 128),
        ("BGRA", [0, 0, 255, 0], [255, 255, 255], 0),
        ("LA", [255, 51], [255, 255, 255], 51),
    ],
)
def test_pixels_to_rgb(channels, pixel, rgb, alpha):
    data = bytes(pixel * 6)  # a 3x2 image of that pixel
    out, a = pixels_to_rgb(data, 3, 2, channels)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3) and out.flags.c_contiguous
    assert out.tolist() == [[rgb] * 3] * 2
    if alpha is None:
        assert a is None
    else:
        assert a.shape == (2, 3) and (a == alpha).all()


def test_pixels_to_rgb_refuses_a_wrong_size():
    with pytest.raises(InputError, match="expected 24"):
        pixels_to_rgb(b"\0" * 23, 3, 2, "RGBA")


@pytest.mark.parametrize(
    ("channels", "layout", "inside"),
    [
        ("RGBA", "RGBA", [10, 20, 30, 200]),
        ("RGB", "RGBA", [10, 20, 30, 255]),
        ("BGRA", "BGRA", [30, 20, 10, 200]),
        ("BGR", "BGRA", [30, 20, 10, 255]),
        ("L", "LA", [18, 255]),  # (10*299 + 20*587 + 30*114 + 500) // 1000 = 18650 // 1000 = 18
        ("LA", "LA", [18, 200]),
    ],
)
def test_result_pixels_are_the_request_layout_with_alpha(channels, layout, inside):
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[:] = [10, 20, 30]
    region = np.array([[True, False], [False, True]])
    alpha = np.full((2, 2), 200, np.uint8) if channels in ("RGBA", "BGRA", "LA") else None
    data, got_layout = result_pixels(rgb, region, alpha, channels)
    assert got_layout == layout
    px = np.frombuffer(data, np.uint8).reshape(2, 2, len(layout))
    assert px[0, 0].tolist() == inside and px[1, 1].tolist() == inside
    assert px[0, 1].tolist() == [0] * len(layout) and px[1, 0].tolist() == [0] * len(layout)


def test_result_pixels_never_show_fully_transparent_pixels():
    rgb = np.full((1, 2, 3), 9, np.uint8)
    data, _ = result_pixels(rgb, np.ones((1, 2), bool), np.array([[0, 255]], np.uint8), "RGBA")
    assert list(data) == [0, 0, 0, 0, 9, 9, 9, 255]


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="unix sockets")
def test_socket_path_stays_short_for_a_long_config_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    short = tmp_path / "c"
    if len(str(short / "server.sock")) <= SUN_PATH_MAX:
        assert socket_path(short) == short / "server.sock"
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    path = socket_path(deep)
    assert len(os.fsencode(str(path))) <= SUN_PATH_MAX
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert socket_path(deep) == path and socket_path(tmp_path / ("z" * 120)) != path


# --------------------------------------------------------------------------------------------- fake engine


class FakeEngine:
    """Text = dark pixels, fill = white. ``hold`` keeps a job running (calling progress) until it is set."""

    def __init__(self, hold: threading.Event | None = None, silent_s: float = 0.0,
                 fail: Exception | None = None):
        self.hold = hold
        self.silent_s = silent_s
        self.fail = fail
        self.started = threading.Event()
        self.cancelled = threading.Event()
        self.order: list[int] = []
        self.options = None

    def _work(self, rgb, progress, stage):
        self.started.set()
        self.order.append(int(rgb[0, 0, 0]))
        if self.fail is not None:
            raise self.fail
        try:
            progress(stage, 0.0)
            time.sleep(self.silent_s)  # an engine step that reports nothing for a while
            deadline = time.monotonic() + 10
            while self.hold is not None and not self.hold.is_set() and time.monotonic() < deadline:
                progress(stage, 0.5)
                time.sleep(0.01)
            progress(stage, 1.0)
        except CancelledError:
            self.cancelled.set()
            raise

    def kind_masks(self, rgb, options, progress=None, kinds=None):
        """Dark pixels are lettering, blue ones sound effects."""
        self.options = options
        self._work(rgb, progress, "detect")
        found = {"lettering": rgb.max(axis=2) < 128,
                 "sfx": (rgb[:, :, 2] >= 128) & (rgb[:, :, 0] < 128)}
        return {k: found[k] for k in (options.text_kinds if kinds is None else kinds)}

    def inpaint(self, rgb, hole, options, progress=None):
        self._work(rgb, progress, "inpaint")
        out = rgb.copy()
        out[hole] = 255
        return out

    def clean(self, rgb, options, text_mask=None, progress=None):
        out = self.inpaint(rgb, text_mask, options, progress)
        none = np.zeros_like(text_mask)
        return CleanResult(image=out, text_mask=text_mask, grown_mask=text_mask.copy(), flat_mask=none,
                           repeat_mask=none)


@pytest.fixture
def serve(tmp_path):
    """start(engine, **Server kwargs) -> a running in-process Server; all are stopped afterwards."""
    running = []

    def start(engine, **kwargs):
        cfg = tmp_path / f"cfg{len(running)}"
        cfg.mkdir()
        server = Server(engine, cfg, **kwargs)
        server.bind()
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return server

    yield start
    for server, thread in running:
        server.request_stop("test over")
        thread.join(timeout=5)
        assert not thread.is_alive()


def raw_connect(server: Server) -> socket.socket:
    if server.transport == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(server.address)
    else:
        sock = socket.create_connection(tuple(server.address))
    sock.settimeout(5)
    return sock


def page_bytes(width=8, height=6, value=255, channels="RGBA"):
    """A white page with a dark 2x3 'word'; the first pixel is ``value`` so the fake can tell jobs apart."""
    n = len(channels)
    px = np.full((height, width, n), 255, np.uint8)
    px[2:4, 2:5, :min(n, 3)] = 0
    px[0, 0, 0] = value
    return px.tobytes()


def assert_alive(server: Server) -> None:
    with Client.connect(server.cfg) as client:
        assert client.ping()["protocol"] == PROTOCOL_VERSION


# --------------------------------------------------------------------------------------------------- tests


def test_runtime_files_are_private_and_removed_on_stop(serve):
    server = serve(FakeEngine())
    token = server.cfg / "server.token"
    if sys.platform != "win32":
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
        assert stat.S_IMODE(os.stat(server.address).st_mode) & 0o077 == 0
    endpoint = read_endpoint(server.cfg)
    assert endpoint["pid"] == os.getpid() and endpoint["protocol"] == PROTOCOL_VERSION
    assert endpoint["address"] == server.address
    with Client.connect(server.cfg) as client:
        client.stop()
    deadline = time.monotonic() + 5
    while (token.exists() or read_endpoint(server.cfg)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not token.exists() and read_endpoint(server.cfg) is None
    assert server.stop_reason == "asked by a client"


def test_tcp_listens_on_loopback_only(serve):
    server = serve(FakeEngine(), tcp_port=0)
    assert server.transport == "tcp" and server.address[0] == "127.0.0.1"
    assert server.listener.getsockname()[0] == "127.0.0.1"
    assert_alive(server)


def test_clean_round_trip_in_bgra_leaves_transparent_pixels_alone(serve):
    engine = FakeEngine()
    server = serve(engine)
    px = np.frombuffer(page_bytes(channels="BGRA"), np.uint8).reshape(6, 8, 4).copy()
    px[2:4, 4, 3] = 0  # one column of the word is on fully transparent pixels: never text, never changed
    with Client.connect(server.cfg) as client:
        result = client.run("clean", px.tobytes(), 8, 6, "BGRA", options={"threshold": 0.3, "grow_px": 1})
    assert engine.options.threshold == 0.3 and engine.options.grow_px == 1
    mask = np.frombuffer(result["mask"], np.uint8).reshape(6, 8)
    expected = np.zeros((6, 8), np.uint8)
    expected[2:4, 2:4] = 255
    assert (mask == expected).all()
    assert result["channels"] == "BGRA"
    out = np.frombuffer(result["pixels"], np.uint8).reshape(6, 8, 4)
    assert (out[mask > 0] == [255, 255, 255, 255]).all()  # filled white, opaque
    assert (out[mask == 0] == 0).all()                     # transparent everywhere else
    stats = result["stats"]
    assert stats["op"] == "clean" and stats["engine_s"] >= 0 and stats["server_s"] >= stats["engine_s"]


def kinds_page():
    """8x6 RGB: white, a black 'word' (lettering) at rows 1-2 and a blue 'sound effect' at rows 4-5."""
    px = np.full((6, 8, 3), 255, np.uint8)
    px[1:3, 1:4] = 0
    px[4:6, 4:7] = (0, 0, 255)
    lettering, sfx = np.zeros((6, 8), bool), np.zeros((6, 8), bool)
    lettering[1:3, 1:4] = True
    sfx[4:6, 4:7] = True
    return px, lettering, sfx


@pytest.mark.parametrize("text, kinds", [("dialogue", ("lettering",)), ("sfx", ("sfx",)),
                                         ("all", ("lettering", "sfx"))])
def test_jobs_find_and_erase_the_kinds_of_text_asked_for(serve, text, kinds):
    engine = FakeEngine()
    server = serve(engine)
    px, lettering, sfx = kinds_page()
    expected = np.zeros((6, 8), bool)
    for kind in kinds:
        expected |= {"lettering": lettering, "sfx": sfx}[kind]
    with Client.connect(server.cfg) as client:
        detected = client.run("detect", px.tobytes(), 8, 6, "RGB", text=text)
        cleaned = client.run("clean", px.tobytes(), 8, 6, "RGB", options={"grow_px": 0}, text=text)
    assert engine.options.text_kinds == kinds
    assert np.array_equal(np.frombuffer(detected["mask"], np.uint8).reshape(6, 8) > 0, expected)
    assert detected["kind_masks"] == {}  # not asked for
    alpha = np.frombuffer(cleaned["pixels"], np.uint8).reshape(6, 8, 4)[:, :, 3]
    assert np.array_equal(alpha > 0, expected)  # only the kinds asked for changed


@pytest.mark.parametrize("op", ["detect", "clean"])
def test_kind_masks_come_back_one_per_kind(serve, op):
    server = serve(FakeEngine())
    px, lettering, sfx = kinds_page()
    rgba = np.dstack([px, np.full((6, 8), 255, np.uint8)])
    rgba[5, 6, 3] = 0  # transparent pixels are no kind of text
    sfx_visible = sfx.copy()
    sfx_visible[5, 6] = False
    with Client.connect(server.cfg) as client:
        result = client.run(op, rgba.tobytes(), 8, 6, "RGBA", text="dialogue", kind_masks=True)
    masks = {k: np.frombuffer(v, np.uint8).reshape(6, 8) for k, v in result["kind_masks"].items()}
    assert sorted(masks) == sorted(KIND_MASK_BLOBS)
    assert np.array_equal(masks["dialogue"] > 0, lettering) and np.array_equal(masks["sfx"] > 0, sfx_visible)
    assert set(np.unique(masks["sfx"]).tolist()) == {0, 255}
    assert np.array_equal(np.frombuffer(result["mask"], np.uint8).reshape(6, 8) > 0, lettering)  # erased: dialogue


def test_a_job_without_text_from_an_older_plugin_means_dialogue(serve):
    engine = FakeEngine()
    server = serve(engine)
    px, lettering, _ = kinds_page()
    header = {"v": PROTOCOL_VERSION, "type": "detect", "token": server.token, "id": "old", "width": 8,
              "height": 6, "channels": "RGB", "options": {}}
    with raw_connect(server) as sock:
        send_message(sock, header, {"pixels": px.tobytes()})
        answer, blobs = recv_message(sock)
        while answer["type"] == "progress":
            answer, blobs = recv_message(sock)
    assert answer["type"] == "result" and sorted(blobs) == ["mask"]  # the answer an older plug-in knows
    assert engine.options.text_kinds == ("lettering",)
    assert np.array_equal(np.frombuffer(blobs["mask"], np.uint8).reshape(6, 8) > 0, lettering)


def test_a_given_mask_is_erased_whatever_the_text_choice(serve):
    server = serve(FakeEngine())
    px, lettering, _ = kinds_page()
    hole = np.zeros((6, 8), np.uint8)
    hole[0, 0] = 255
    with Client.connect(server.cfg) as client:
        result = client.run("clean", px.tobytes(), 8, 6, "RGB", mask=hole.tobytes(), options={"grow_px": 0},
                            text="sfx", kind_masks=True)
    assert result["kind_masks"] == {}  # nothing was detected
    assert np.array_equal(np.frombuffer(result["mask"], np.uint8).reshape(6, 8), hole)


def test_bad_text_choices_are_refused_with_the_valid_ones(serve):
    server = serve(FakeEngine())
    px, _, _ = kinds_page()
    with Client.connect(server.cfg) as client:
        with pytest.raises(ProtocolError, match="valid: dialogue, sfx, all") as e:
            client.run("detect", px.tobytes(), 8, 6, "RGB", text="speech")
        assert e.value.kind == "input"
    header = {"v": PROTOCOL_VERSION, "type": "detect", "token": server.token, "width": 8, "height": 6,
              "channels": "RGB"}
    for extra, message in (({"text": "speech"}, "valid: dialogue, sfx, all"),
                           ({"kind_masks": "yes"}, "kind_masks must be true or false"),
                           ({"options": {"text_kinds": ["sfx"]}}, "job's \"text\" field")):
        with raw_connect(server) as sock:
            send_message(sock, dict(header, **extra), {"pixels": px.tobytes()})
            answer, _ = recv_message(sock)
        assert answer["type"] == "error" and answer["kind"] == "input" and message in answer["message"]
    assert_alive(server)


def test_detect_and_inpaint(serve):
    server = serve(FakeEngine())
    with Client.connect(server.cfg) as client:
        detected = client.run("detect", page_bytes(channels="L"), 8, 6, "L")
        assert detected["pixels"] is None
        assert np.frombuffer(detected["mask"], np.uint8).reshape(6, 8)[2:4, 2:5].min() == 255
        hole = np.zeros((6, 8), np.uint8)
        hole[0, 0] = 1
        filled = client.run("inpaint", page_bytes(value=0, channels="L"), 8, 6, "L", mask=hole.tobytes())
    assert filled["mask"] is None and filled["channels"] == "LA"
    out = np.frombuffer(filled["pixels"], np.uint8).reshape(6, 8, 2)
    assert out[0, 0].tolist() == [255, 255] and out[2, 2].tolist() == [0, 0]  # only the hole is in the layer


def test_the_server_gives_freed_memory_back_when_its_queue_is_empty(serve, monkeypatch):
    import engine.server

    released = []
    monkeypatch.setattr(engine.server, "release_freed_memory", lambda: released.append(True) or True)
    server = serve(FakeEngine())
    with Client.connect(server.cfg) as client:
        assert client.ping() and released == []  # no job yet
        client.run("detect", page_bytes(channels="L"), 8, 6, "L")
        client.run("detect", page_bytes(channels="L"), 8, 6, "L")
    deadline = time.monotonic() + 5
    while len(released) < 2 and time.monotonic() < deadline:  # the reply is sent before the clean-up
        time.sleep(0.01)
    assert len(released) == 2


def test_ping_answers_during_a_long_job_and_jobs_run_in_arrival_order(serve):
    hold = threading.Event()
    engine = FakeEngine(hold=hold)
    server = serve(engine)
    results, notes = {}, []

    def job(value, note=None):
        with Client.connect(server.cfg) as client:
            results[value] = client.run("detect", page_bytes(value=value), 8, 6, "RGBA", progress=note)

    first = threading.Thread(target=job, args=(1,))
    first.start()
    assert engine.started.wait(5)
    with Client.connect(server.cfg) as client:
        info = client.status()
    assert info["busy"] is True and info["queued"] == 0
    second = threading.Thread(target=job, args=(2, lambda f, m: notes.append(m)))
    second.start()
    deadline = time.monotonic() + 5
    while not notes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert notes and notes[0] == "Waiting for 1 other job"
    hold.set()
    first.join(5)
    second.join(5)
    assert set(results) == {1, 2} and engine.order == [1, 2]


def test_cancel_stops_the_job_inside_the_engine(serve):
    engine = FakeEngine(hold=threading.Event())  # never released: only a cancel ends it
    server = serve(engine)
    calls = []

    def progress(fraction, message):
        calls.append(message)
        return not engine.started.is_set()

    t0 = time.monotonic()
    with Client.connect(server.cfg) as client, pytest.raises(ProtocolError) as info:
        client.run("clean", page_bytes(), 8, 6, "RGBA", progress=progress)
    assert info.value.kind == "cancelled"
    assert engine.cancelled.wait(2) and time.monotonic() - t0 < 5
    assert_alive(server)


def test_a_client_that_disconnects_mid_job_is_abandoned(serve):
    engine = FakeEngine(hold=threading.Event())
    server = serve(engine)
    sock = raw_connect(server)
    header = {"v": PROTOCOL_VERSION, "type": "detect", "token": server.token, "id": "j1", "width": 8,
              "height": 6, "channels": "RGBA"}
    send_message(sock, header, {"pixels": page_bytes()})
    assert engine.started.wait(5)
    sock.close()
    assert engine.cancelled.wait(5)
    assert_alive(server)


def test_heartbeats_keep_coming_while_the_engine_is_silent(serve):
    server = serve(FakeEngine(silent_s=1.6))
    times = []
    with Client.connect(server.cfg) as client:
        client.run("detect", page_bytes(), 8, 6, "RGBA",
                   progress=lambda f, m: times.append(time.monotonic()))
    gaps = np.diff(times)
    # without heartbeats there would be a 1.6 s gap; they come every HEARTBEAT_S (0.5 s), give or take load
    assert len(times) >= 4 and gaps.max() < 1.3


def refused(server: Server, data: bytes) -> dict:
    """Send raw bytes, return the server's answer, and check that it then hangs up."""
    with raw_connect(server) as sock:
        sock.sendall(data)
        answer, _ = recv_message(sock, timeout=5)
        with pytest.raises(ProtocolError) as info:
            recv_message(sock, timeout=5)
        assert info.value.kind in ("closed", "connection")
    return answer


def frame(header: dict, payload: bytes = b"", magic: bytes = MAGIC, payload_len: int | None = None) -> bytes:
    head = json.dumps(header).encode()
    size = len(payload) if payload_len is None else payload_len
    return PREFIX.pack(magic, len(head), size) + head + payload


def test_wrong_token_is_refused(serve):
    server = serve(FakeEngine())
    answer = refused(server, frame({"v": PROTOCOL_VERSION, "type": "ping", "token": "0" * 64}))
    assert answer["type"] == "error" and answer["kind"] == "auth"
    answer = refused(server, frame({"v": PROTOCOL_VERSION, "type": "ping"}))
    assert answer["kind"] == "auth"
    # a job with a payload: the refusal still reaches the client (the payload is drained, not reset)
    pixels = page_bytes(width=512, height=512)
    header = {"v": PROTOCOL_VERSION, "type": "clean", "token": "x", "width": 512, "height": 512,
              "channels": "RGBA", "blobs": [["pixels", len(pixels)]]}
    assert refused(server, frame(header, pixels))["kind"] == "auth"
    assert_alive(server)


def test_wrong_protocol_version_is_refused_with_a_fix(serve):
    server = serve(FakeEngine())
    answer = refused(server, frame({"v": PROTOCOL_VERSION + 1, "type": "ping", "token": server.token}))
    assert answer["kind"] == "version" and "installer" in answer["message"]
    assert_alive(server)


def test_garbage_and_oversized_frames_are_refused_without_killing_the_server(serve):
    server = serve(FakeEngine())
    assert refused(server, b"GET / HTTP/1.0\r\n\r\n" + b"x" * 100)["kind"] == "protocol"
    answer = refused(server, frame({"type": "clean", "blobs": [["pixels", 1 << 40]]}, payload_len=1 << 40))
    assert answer["kind"] == "too_large" and "MiB" in answer["message"]
    assert refused(server, PREFIX.pack(MAGIC, 5, 0) + b"{oops")["kind"] == "protocol"
    with raw_connect(server) as sock:  # a client that sends half a frame and vanishes
        sock.sendall(PREFIX.pack(MAGIC, 100, 0) + b"{")
    assert_alive(server)


def test_a_bad_request_is_answered_and_the_connection_stays_usable(serve):
    server = serve(FakeEngine())
    with raw_connect(server) as sock:
        base = {"v": PROTOCOL_VERSION, "token": server.token, "id": "a"}
        header = dict(base, type="detect", width=8, height=6, channels="RGBA")
        send_message(sock, header, {"pixels": b"\0" * 7})
        answer, _ = recv_message(sock)
        assert answer["kind"] == "input" and "expected 192" in answer["message"] and answer["id"] == "a"
        send_message(sock, dict(base, type="erase"))
        answer, _ = recv_message(sock)
        assert answer["kind"] == "protocol" and "clean" in answer["message"]
        send_message(sock, dict(base, type="ping"))
        assert recv_message(sock)[0]["type"] == "pong"


def test_unknown_options_are_an_input_error_listing_the_valid_ones(serve):
    server = serve(FakeEngine())
    with Client.connect(server.cfg) as client, pytest.raises(ProtocolError) as info:
        client.run("clean", page_bytes(), 8, 6, "RGBA", options={"treshold": 0.4})
    assert info.value.kind == "input" and "treshold" in str(info.value) and "threshold" in str(info.value)
    assert_alive(server)


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (WeightsError("the weights file x is corrupt; reinstall Kesu"), "weights", "reinstall Kesu"),
        (InputError("the page is empty"), "input", "the page is empty"),
        (RuntimeError("boom"), "engine", "RuntimeError: boom"),
    ],
)
def test_engine_errors_become_structured_errors_and_the_server_keeps_serving(serve, error, kind, text):
    server = serve(FakeEngine(fail=error))
    with Client.connect(server.cfg) as client, pytest.raises(ProtocolError) as info:
        client.run("detect", page_bytes(), 8, 6, "RGBA")
    assert info.value.kind == kind and text in str(info.value)
    assert_alive(server)


def test_idle_timeout_stops_the_server(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    server = Server(FakeEngine(), cfg, idle_timeout=0.4)
    server.bind()
    t0 = time.monotonic()
    assert server.serve_forever().startswith("idle")
    assert 0.4 <= time.monotonic() - t0 < 3
    assert read_endpoint(cfg) is None and not (cfg / "server.token").exists()
    assert server.transport != "unix" or not Path(server.address).exists()


@pytest.mark.skipif(sys.platform == "win32", reason="uses a shell script as the 'interpreter'")
def test_connect_or_start_replaces_a_server_of_another_protocol_version(serve, monkeypatch, tmp_path):
    import engine.server

    # a server from another release, still running after an upgrade
    monkeypatch.setattr(engine.server, "PROTOCOL_VERSION", PROTOCOL_VERSION + 1)
    server = serve(FakeEngine())
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\necho 'kesu serve: error: stand-in for the new engine' >&2\nexit 1\n")
    fake_python.chmod(0o755)
    with pytest.raises(ProtocolError) as info:
        Client.connect_or_start(python=str(fake_python), cfg_dir=server.cfg, start_timeout=20)
    # the old server was asked to stop (stop is understood across versions), then a new one was started
    assert server.stop_reason == "asked by a client"
    assert info.value.kind == "start" and "stand-in for the new engine" in str(info.value)


def test_stop_during_a_job_tells_its_client(serve):
    engine = FakeEngine(hold=threading.Event())
    server = serve(engine)
    errors = []

    def job():
        with Client.connect(server.cfg) as client:
            try:
                client.run("detect", page_bytes(), 8, 6, "RGBA")
            except ProtocolError as e:
                errors.append(e)

    worker = threading.Thread(target=job)
    worker.start()
    assert engine.started.wait(5)
    with Client.connect(server.cfg) as client:
        client.stop()
    worker.join(5)
    assert engine.cancelled.is_set()
    assert len(errors) == 1 and errors[0].kind == "stopped" and "try again" in str(errors[0])


# ------------------------------------------------------------------------------------ crowds and trickles


def _trickle(sock: socket.socket, data: bytes, stop: threading.Event, interval: float = 1.0) -> None:
    """Send ``data`` one byte per ``interval`` until done, stopped, or dropped."""
    try:
        for byte in data:
            if stop.wait(interval):
                return
            sock.sendall(bytes([byte]))
    except OSError:
        pass


@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
def test_idle_and_slow_connections_do_not_lock_real_clients_out(serve, tcp):
    server = serve(FakeEngine(), tcp_port=0 if tcp else None)
    stop = threading.Event()
    crowd, threads = [], []
    try:
        for _ in range(64):  # connect and send nothing
            crowd.append(raw_connect(server))
        slow = frame({"v": PROTOCOL_VERSION, "type": "clean", "token": "guess", "width": 8, "height": 6,
                      "channels": "RGBA", "blobs": [["pixels", 192]]}, b"\0" * 192)
        for _ in range(8):  # a byte a second
            sock = raw_connect(server)
            crowd.append(sock)
            threads.append(threading.Thread(target=_trickle, args=(sock, slow, stop), daemon=True))
            threads[-1].start()
        time.sleep(0.2)
        t0 = time.monotonic()
        with Client.connect(server.cfg) as client:
            assert client.ping(timeout=5)["protocol"] == PROTOCOL_VERSION
            result = client.run("clean", page_bytes(), 8, 6, "RGBA", timeout=5)
        assert result["pixels"] is not None
        assert time.monotonic() - t0 < 5
    finally:
        stop.set()
        for sock in crowd:
            sock.close()
        for thread in threads:
            thread.join(5)


def test_a_connection_that_shows_no_token_is_dropped_within_the_auth_timeout(serve):
    server = serve(FakeEngine())
    stop = threading.Event()
    with raw_connect(server) as idle, raw_connect(server) as slow:
        sender = threading.Thread(target=_trickle, args=(slow, frame({"type": "ping", "token": "x" * 64}),
                                                         stop, 0.2), daemon=True)
        sender.start()
        t0 = time.monotonic()
        for sock in (idle, slow):
            sock.settimeout(10)
            try:
                assert sock.recv(1 << 16) == b""  # the server hung up without a word
            except ConnectionResetError:
                pass
        assert time.monotonic() - t0 < server.auth_timeout + 1.5
        stop.set()
        sender.join(5)
    assert_alive(server)


def test_an_authenticated_request_must_arrive_whole_in_time(serve):
    server = serve(FakeEngine(), request_timeout=1.0)
    stop = threading.Event()
    pixels = page_bytes()
    header = {"v": PROTOCOL_VERSION, "type": "clean", "token": server.token, "id": "slow", "width": 8,
              "height": 6, "channels": "RGBA", "blobs": [["pixels", len(pixels)]]}
    data = frame(header, pixels)
    with raw_connect(server) as sock:
        sock.sendall(data[:-len(pixels)])  # the header at once, then the pixels a byte at a time
        sender = threading.Thread(target=_trickle, args=(sock, pixels, stop, 0.1), daemon=True)
        sender.start()
        t0 = time.monotonic()
        sock.settimeout(10)
        try:
            while sock.recv(1 << 16):
                pass
        except ConnectionResetError:
            pass
        # each byte came well within the 1 s per-receive timeout; the request as a whole did not
        assert time.monotonic() - t0 < 3
        stop.set()
        sender.join(5)
    assert_alive(server)


def test_the_oldest_tokenless_connection_makes_way(serve, monkeypatch):
    import engine.server

    monkeypatch.setattr(engine.server, "MAX_PENDING", 4)
    server = serve(FakeEngine(), auth_timeout=30)
    crowd = [raw_connect(server) for _ in range(4)]
    time.sleep(0.1)
    with Client.connect(server.cfg) as client:
        assert client.ping(timeout=2)["protocol"] == PROTOCOL_VERSION
    crowd[0].settimeout(2)
    assert crowd[0].recv(10) == b""  # dropped for the newcomer
    for sock in crowd:
        sock.close()


def test_status_of_a_server_that_does_not_answer_does_not_blame_model_loading(tmp_path, capsys):
    from engine.server import ServerLock, _status

    cfg = tmp_path / "cfg"
    cfg.mkdir()
    lock = ServerLock(cfg)
    assert lock.acquire()
    try:
        (cfg / "server.token").write_text("t\n")
        (cfg / "server.json").write_text(json.dumps(
            {"pid": 4242, "transport": "unix", "address": str(tmp_path / "gone.sock")}))
        assert _status(cfg) == 1
        out = capsys.readouterr().out
        assert "does not answer" in out and "loading" not in out and "4242" in out
        (cfg / "server.json").unlink()
        assert _status(cfg) == 1
        assert "loading its models" in capsys.readouterr().out  # no server.json yet: it is starting
    finally:
        lock.release()


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"width": True, "height": 6}, "positive integers"),
        ({"channels": ["RGBA"]}, "channel order"),
        ({"width": 150_000_000, "height": 1}, "side longer"),
        ({"options": {"grow_px": 2.5}}, "grow_px"),
        ({"options": {"threshold": "high"}}, "threshold"),
    ],
)
def test_odd_job_fields_are_input_errors_not_engine_failures(serve, fields, text):
    server = serve(FakeEngine())
    with raw_connect(server) as sock:
        header = {"v": PROTOCOL_VERSION, "token": server.token, "id": "a", "type": "clean", "width": 8,
                  "height": 6, "channels": "RGBA", **fields}
        send_message(sock, header, {"pixels": page_bytes()})
        answer, _ = recv_message(sock)
    assert answer["type"] == "error" and answer["kind"] == "input" and text in answer["message"]
    assert_alive(server)


# ----------------------------------------------------------------------------------------------- fuzzing


def _fuzz_value(rng, depth=0):
    choice = rng.randrange(10 if depth < 3 else 7)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 1, 8, 6, 2**31, 2**63, -(2**63), 10**30, 150_000_000])
    if choice == 3:
        return rng.choice([0.5, -1.5, 1e308, 2.5, 0.0])
    if choice == 4:
        return rng.choice(["", "RGBA", "clean", "x" * 100, "\u00fc", "ping", "L"])
    if choice == 5:
        return rng.choice(["detect", "inpaint", "clean", "ping", "status", "cancel", "erase"])
    if choice == 6:
        return rng.choice([[], {}, [["pixels", 3]], [["pixels", -1]], ["pixels"]])
    if choice in (7, 8):
        return [_fuzz_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["threshold", "grow_px", "a", "width"]): _fuzz_value(rng, depth + 1)
            for _ in range(rng.randrange(4))}


def _fuzz_frame(rng, token: str) -> bytes:
    """A frame that is random, or a valid request with random fields, or one of those with bytes mutated."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(64))
    pixels = page_bytes()
    header = {"v": PROTOCOL_VERSION, "type": rng.choice(["clean", "detect", "inpaint", "ping", "cancel"]),
              "token": token if rng.random() < 0.7 else "nope", "id": "f", "width": 8, "height": 6,
              "channels": "RGBA", "options": {}}
    for _ in range(rng.randrange(4)):
        header[rng.choice(["v", "type", "id", "width", "height", "channels", "options", "token", "mask",
                           "blobs"])] = _fuzz_value(rng)
    blobs = {"pixels": pixels}
    if rng.random() < 0.3:
        blobs["mask"] = bytes(48)
    head = dict(header)
    head.setdefault("blobs", [[name, len(data)] for name, data in blobs.items()])
    try:
        raw_head = json.dumps(head).encode()
    except (TypeError, ValueError):
        raw_head = b"{}"
    data = bytearray(PREFIX.pack(MAGIC, len(raw_head), sum(map(len, blobs.values()))) + raw_head
                     + b"".join(blobs.values()))
    if kind >= 2:  # mutate: flip, cut, splice
        for _ in range(rng.randrange(1, 4)):
            op = rng.randrange(3)
            if op == 0 and data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            elif op == 1:
                del data[rng.randrange(len(data) + 1):]
            else:
                at = rng.randrange(len(data) + 1)
                data[at:at] = rng.randbytes(rng.randrange(1, 8))
    return bytes(data)


def test_fuzzed_frames_never_bring_the_server_down(serve, monkeypatch):
    import random

    failures = []
    monkeypatch.setattr(threading, "excepthook", lambda info: failures.append(info.exc_value))
    server = serve(FakeEngine())
    rng = random.Random(28)
    answers: dict[str, int] = {}
    t0 = time.monotonic()
    for _ in range(5000):
        with raw_connect(server) as sock:
            try:
                sock.sendall(_fuzz_frame(rng, server.token))
                sock.shutdown(socket.SHUT_WR)
                while True:  # every answer, until the server hangs up
                    answer, _ = recv_message(sock, timeout=5)
                    key = f"{answer.get('type')}:{answer.get('kind', '')}"
                    answers[key] = answers.get(key, 0) + 1
            except ProtocolError as e:
                assert e.kind in ("closed", "connection"), e  # never a hang
            except OSError:
                pass
    elapsed = time.monotonic() - t0
    assert not failures, failures[:3]
    assert "error:engine" not in answers, answers  # odd input is never reported as an engine bug
    assert answers.get("error:auth", 0) > 100 and answers.get("error:input", 0) > 100, answers
    assert elapsed < 60
    assert_alive(server)
    with Client.connect(server.cfg) as client:
        assert client.run("clean", page_bytes(), 8, 6, "RGBA", timeout=5)["pixels"] is not None
