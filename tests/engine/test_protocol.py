"""engine.protocol: framing, config files, and the Client against a small fake server (stdlib only, fast)."""

from __future__ import annotations

import ast
import json
import os
import select
import socket
import struct
import sys
import threading
import time
from pathlib import Path

import pytest

from engine import protocol
from engine.protocol import (
    MAGIC,
    PREFIX,
    PROTOCOL_VERSION,
    Client,
    ProtocolError,
    config_dir,
    load_plugin_config,
    recv_message,
    send_message,
)

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------------------- framing


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_frame_round_trip_keeps_header_and_raw_blobs(pair):
    a, b = pair
    pixels = bytes(range(256)) * 3
    blobs = {"pixels": bytearray(pixels), "empty": b"", "no": None}
    send_message(a, {"type": "x", "n": 1, "text": "ü"}, blobs)
    header, blobs = recv_message(b, timeout=2)
    assert header["type"] == "x" and header["n"] == 1 and header["text"] == "ü"
    assert header["blobs"] == [["pixels", len(pixels)], ["empty", 0]]
    assert bytes(blobs["pixels"]) == pixels and bytes(blobs["empty"]) == b""
    assert "no" not in blobs


def _raw(header: dict, payload_len: int | None = None, magic: bytes = MAGIC) -> bytes:
    head = json.dumps(header).encode()
    size = sum(s for _, s in header.get("blobs", [])) if payload_len is None else payload_len
    return PREFIX.pack(magic, len(head), size) + head


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "protocol"),                   # not our magic
        (PREFIX.pack(MAGIC, protocol.MAX_HEADER_BYTES + 1, 0), "too_large"),   # header too long
        (_raw({"blobs": []}, payload_len=1 << 40), "too_large"),             # 1 TiB claimed
        (PREFIX.pack(MAGIC, 5, 0) + b"{nope", "protocol"),                    # not JSON
        (PREFIX.pack(MAGIC, 2, 0) + b"[]", "protocol"),                       # not an object
        (_raw({"blobs": [["a", 3]]}, payload_len=4) + b"abcd", "protocol"),  # blob list != payload
        (_raw({"blobs": [["a", -1]]}, payload_len=0), "protocol"),           # negative size
        (_raw({"blobs": [["a", 1], ["a", 1]]}) + b"xy", "protocol"),         # duplicate names
        (_raw({"blobs": [["a", 10]]}) + b"short", "connection"),             # closed mid-frame
        (b"", "closed"),                                                     # clean end
    ],
)
def test_recv_refuses_bad_frames_with_a_kind(pair, data, kind):
    a, b = pair
    a.sendall(data)
    a.shutdown(socket.SHUT_WR)
    with pytest.raises(ProtocolError) as info:
        recv_message(b, timeout=2)
    assert info.value.kind == kind


def test_recv_refuses_an_oversized_payload_before_reading_it(pair):
    a, b = pair
    # only the prefix and header are sent: if the receiver tried to read 1 TiB it would time out instead
    a.sendall(_raw({"type": "clean", "blobs": [["pixels", 1 << 40]]}))
    t0 = time.monotonic()
    with pytest.raises(ProtocolError) as info:
        recv_message(b, timeout=5)
    assert info.value.kind == "too_large" and "MiB" in str(info.value)
    assert time.monotonic() - t0 < 1


def test_check_header_runs_before_the_payload(pair):
    a, b = pair
    send_message(a, {"token": "bad"}, {"pixels": b"x" * 1000})

    def check(header):
        raise ProtocolError("refused", "auth")

    with pytest.raises(ProtocolError) as info:
        recv_message(b, timeout=2, check_header=check)
    assert info.value.kind == "auth"
    assert len(b.recv(2000)) > 0  # the payload is still unread in the socket


def test_recv_times_out_instead_of_hanging(pair):
    _, b = pair
    t0 = time.monotonic()
    with pytest.raises(ProtocolError) as info:
        recv_message(b, timeout=0.2)
    assert info.value.kind == "timeout"
    assert time.monotonic() - t0 < 2


def test_a_declared_payload_is_not_allocated_before_its_data_arrives(pair):
    import tracemalloc

    a, b = pair
    size = 256 << 20
    a.sendall(_raw({"type": "clean", "blobs": [["pixels", size]]}) + b"x" * 1000)
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError) as info:
            recv_message(b, timeout=0.3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.kind == "timeout"
    assert peak < 4 << 20  # a buffer grows with what came, not with what was announced


def test_a_slow_sender_is_cut_off_by_the_whole_message_deadline(pair):
    a, b = pair
    data = _raw({"type": "ping", "blobs": [["pixels", 50]]}) + b"x" * 50

    def trickle():
        try:
            for byte in data:
                a.sendall(bytes([byte]))
                time.sleep(0.05)  # every receive makes progress well within the 0.5 s timeout
        except OSError:
            pass

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    t0 = time.monotonic()
    with pytest.raises(ProtocolError) as info:
        recv_message(b, timeout=0.5, whole_timeout=True)
    assert info.value.kind == "timeout" and time.monotonic() - t0 < 2


def test_the_header_deadline_counts_from_the_call(pair):
    a, b = pair
    a.sendall(_raw({"type": "ping"})[:10])  # a header begun and never finished
    t0 = time.monotonic()
    with pytest.raises(ProtocolError) as info:
        recv_message(b, timeout=30, header_timeout=0.3)
    assert info.value.kind == "timeout" and time.monotonic() - t0 < 1.5


def test_a_deeply_nested_header_is_a_protocol_error(pair):
    a, b = pair
    head = b"[" * 100_000 + b"]" * 100_000
    sender = threading.Thread(target=a.sendall, args=(PREFIX.pack(MAGIC, len(head), 0) + head,), daemon=True)
    sender.start()  # more than the socket buffer holds
    with pytest.raises(ProtocolError) as info:
        recv_message(b, timeout=2)
    sender.join(5)
    assert info.value.kind == "protocol" and "nested" in str(info.value)


def test_send_refuses_a_payload_over_the_limit_without_sending(pair, monkeypatch):
    a, b = pair
    monkeypatch.setattr(protocol, "MAX_PAYLOAD_BYTES", 100)
    with pytest.raises(ProtocolError) as info:
        send_message(a, {"type": "clean"}, {"pixels": b"x" * 101})
    assert info.value.kind == "too_large"
    b.setblocking(False)
    with pytest.raises(BlockingIOError):
        b.recv(1)


# ------------------------------------------------------------------------------------------- config files


def test_config_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("KESU_CONFIG_DIR", str(tmp_path / "k"))
    assert config_dir() == tmp_path / "k"


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG layout is Linux's")
def test_config_dir_follows_xdg_and_ignores_a_relative_value(monkeypatch, tmp_path):
    monkeypatch.delenv("KESU_CONFIG_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_dir() == tmp_path / "kesu"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert config_dir() == Path.home() / ".config" / "kesu"


def test_load_plugin_config(tmp_path):
    assert load_plugin_config(tmp_path) == {}
    (tmp_path / "plugin.json").write_text('{"python": "/x/python", "weights_dir": null}')
    assert load_plugin_config(tmp_path) == {"python": "/x/python", "weights_dir": None}
    (tmp_path / "plugin.json").write_text("{broken")
    with pytest.raises(ProtocolError) as info:
        load_plugin_config(tmp_path)
    assert info.value.kind == "config" and "plugin.json" in str(info.value) and "installer" in str(info.value)
    (tmp_path / "plugin.json").write_text("[1, 2]")
    with pytest.raises(ProtocolError, match="not a JSON object"):
        load_plugin_config(tmp_path)


def test_protocol_module_imports_only_the_stdlib():
    tree = ast.parse((REPO / "engine" / "protocol.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports: the file is copied into the plug-ins"
            names.add((node.module or "").split(".")[0])
    assert names - {"__future__"} <= set(sys.stdlib_module_names), names - set(sys.stdlib_module_names)


# ------------------------------------------------------------------------------------- client, fake server

TOKEN = "t" * 64


class FakeServer:
    """A loopback TCP server speaking the frame format, driven by ``script(sock, header, blobs)``."""

    def __init__(self, cfg: Path, script):
        self.cfg = cfg
        self.script = script
        self.seen: list[dict] = []
        self.dropped = False
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(5)
        cfg.mkdir(parents=True, exist_ok=True)
        (cfg / "server.token").write_text(TOKEN + "\n")
        port = self.listener.getsockname()[1]
        endpoint = {"pid": os.getpid(), "transport": "tcp", "address": ["127.0.0.1", port]}
        (cfg / "server.json").write_text(json.dumps(endpoint))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        with sock:
            while True:
                try:
                    header, blobs = recv_message(sock, timeout=5)
                except ProtocolError:
                    return
                self.seen.append(header)
                try:
                    if self.script(sock, header, blobs) is False:
                        return
                except OSError:
                    self.dropped = True  # the client closed the connection on us
                    return

    def close(self):
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def fake(tmp_path):
    servers = []

    def make(script):
        server = FakeServer(tmp_path / "cfg", script)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def pong(sock, header, blobs):
    send_message(sock, {"type": "pong", "protocol": PROTOCOL_VERSION, "models": {"textseg": "t"}})


def test_ping_sends_the_token_and_version(fake, tmp_path):
    server = fake(pong)
    with Client.connect(tmp_path / "cfg") as client:
        info = client.ping()
    assert info["protocol"] == PROTOCOL_VERSION and info["models"] == {"textseg": "t"}
    assert server.seen[0]["token"] == TOKEN and server.seen[0]["v"] == PROTOCOL_VERSION
    assert server.seen[0]["type"] == "ping"


def test_run_reports_progress_and_returns_raw_bytes(fake, tmp_path):
    def script(sock, header, blobs):
        assert header["type"] == "clean" and header["channels"] == "BGRA"
        assert bytes(blobs["pixels"]) == b"\x01\x02\x03\x04" * 6 and "mask" not in blobs
        for i in range(3):
            send_message(sock, {"type": "progress", "id": header["id"], "fraction": i / 2,
                                "message": f"s{i}"})
        send_message(sock, {"type": "result", "id": header["id"], "channels": "BGRA",
                            "stats": {"engine_s": 0.1}}, {"mask": b"\xff" * 6, "pixels": b"\x09" * 24})

    fake(script)
    notes = []
    with Client.connect(tmp_path / "cfg") as client:
        result = client.run("clean", b"\x01\x02\x03\x04" * 6, 3, 2, "BGRA", options={"threshold": 0.4},
                            progress=lambda f, m: notes.append((f, m)))
    assert notes == [(0.0, "s0"), (0.5, "s1"), (1.0, "s2")]
    assert result["mask"] == b"\xff" * 6 and result["pixels"] == b"\x09" * 24
    assert result["channels"] == "BGRA" and result["stats"] == {"engine_s": 0.1}


def test_progress_returning_false_sends_cancel_on_the_same_connection(fake, tmp_path):
    def script(sock, header, blobs):
        if header["type"] == "clean":
            send_message(sock, {"type": "progress", "id": header["id"], "fraction": 0.1, "message": "m"})
        elif header["type"] == "cancel":
            send_message(sock, {"type": "error", "id": header["id"], "kind": "cancelled",
                                "message": "cancelled"})

    server = fake(script)
    with Client.connect(tmp_path / "cfg") as client, pytest.raises(ProtocolError) as info:
        client.run("clean", b"\0" * 4, 1, 1, "RGBA", progress=lambda f, m: False)
    assert info.value.kind == "cancelled"
    assert [h["type"] for h in server.seen] == ["clean", "cancel"]
    assert server.seen[1]["id"] == server.seen[0]["id"] and server.seen[1]["token"] == TOKEN


def test_server_dying_mid_job_is_a_clear_error_not_a_hang(fake, tmp_path):
    def script(sock, header, blobs):
        send_message(sock, {"type": "progress", "id": header["id"], "fraction": 0.2, "message": "m"})
        return False  # drop the connection, as a crashed server would

    fake(script)
    t0 = time.monotonic()
    with Client.connect(tmp_path / "cfg") as client, pytest.raises(ProtocolError) as info:
        client.run("detect", b"\0" * 3, 1, 1, "RGB")
    assert info.value.kind == "connection" and "log" in str(info.value)
    assert time.monotonic() - t0 < 5


def test_a_silent_server_times_out(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(protocol, "SILENCE_TIMEOUT_S", 0.3)
    fake(lambda sock, header, blobs: None)  # reads the job, never answers
    t0 = time.monotonic()
    with Client.connect(tmp_path / "cfg") as client, pytest.raises(ProtocolError) as info:
        client.run("detect", b"\0" * 3, 1, 1, "RGB")
    assert info.value.kind == "timeout" and "stopped answering" in str(info.value)
    assert time.monotonic() - t0 < 3


def test_the_job_timeout_cancels(fake, tmp_path):
    def script(sock, header, blobs):
        if header["type"] == "detect":
            # keep the client busy with progress until something (the cancel) arrives
            while not select.select([sock], [], [], 0.05)[0]:
                send_message(sock, {"type": "progress", "id": header["id"], "fraction": 0.0, "message": "m"})

    server = fake(script)
    with Client.connect(tmp_path / "cfg") as client, pytest.raises(ProtocolError) as info:
        client.run("detect", b"\0" * 3, 1, 1, "RGB", timeout=0.3)
    assert info.value.kind == "timeout" and "did not finish within" in str(info.value)
    server.thread.join(timeout=5)
    # the fake streams progress until the client sends something or hangs up: either ends a real job (a
    # cancel frame, or the connection dropped; on TCP the reset may overtake the cancel)
    assert not server.thread.is_alive()
    assert server.seen[0]["type"] == "detect" and [h["type"] for h in server.seen[1:]] in ([], ["cancel"])


def test_an_error_answer_raises_with_its_kind_and_message(fake, tmp_path):
    answer = {"type": "error", "kind": "weights", "message": "reinstall Kesu"}
    fake(lambda sock, h, b: send_message(sock, answer))
    with Client.connect(tmp_path / "cfg") as client, pytest.raises(ProtocolError) as info:
        client.run("detect", b"\0" * 3, 1, 1, "RGB")
    assert info.value.kind == "weights" and str(info.value) == "reinstall Kesu"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"op": "erase"}, "unknown operation"),
        ({"channels": "ARGB"}, "unknown channel order"),
        ({"pixels": b"\0" * 5}, "expected 4"),
        ({"mask": b"\0" * 2}, "expected 1"),
        ({"op": "inpaint"}, "needs a mask"),
        ({"width": 0}, "positive"),
    ],
)
def test_run_checks_its_arguments_before_sending(fake, tmp_path, kwargs, match):
    server = fake(pong)
    args = {"op": "detect", "pixels": b"\0" * 4, "width": 1, "height": 1, "channels": "RGBA"} | kwargs
    with Client.connect(tmp_path / "cfg") as client, pytest.raises(ProtocolError, match=match) as info:
        client.run(**args)
    assert info.value.kind == "input" and server.seen == []


def test_connect_without_a_server(tmp_path):
    with pytest.raises(ProtocolError) as info:
        Client.connect(tmp_path)
    assert info.value.kind == "not_running"


def test_connect_refuses_a_non_loopback_address(tmp_path):
    (tmp_path / "server.token").write_text(TOKEN)
    (tmp_path / "server.json").write_text(json.dumps({"transport": "tcp", "address": ["192.0.2.1", 9]}))
    with pytest.raises(ProtocolError, match="not a loopback address"):
        Client.connect(tmp_path)


def test_connect_to_a_stale_endpoint_is_not_running(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there now
    (tmp_path / "server.token").write_text(TOKEN)
    (tmp_path / "server.json").write_text(json.dumps({"transport": "tcp", "address": ["127.0.0.1", port]}))
    with pytest.raises(ProtocolError) as info:
        Client.connect(tmp_path)
    assert info.value.kind == "not_running"


def test_connect_or_start_without_an_engine_says_to_install(tmp_path):
    with pytest.raises(ProtocolError) as info:
        Client.connect_or_start(cfg_dir=tmp_path)
    assert info.value.kind == "not_installed" and "installer" in str(info.value)
    (tmp_path / "plugin.json").write_text(json.dumps({"python": str(tmp_path / "no-such-python")}))
    with pytest.raises(ProtocolError, match="does not exist") as info:
        Client.connect_or_start(cfg_dir=tmp_path)
    assert info.value.kind == "not_installed"


@pytest.mark.skipif(sys.platform == "win32", reason="uses a shell script as the 'interpreter'")
def test_connect_or_start_reports_why_the_server_could_not_start(tmp_path):
    fake_python = tmp_path / "python"
    fake_python.write_text(
        "#!/bin/sh\necho 'kesu serve: error: no text detection weights are installed' >&2\nexit 1\n")
    fake_python.chmod(0o755)
    t0 = time.monotonic()
    with pytest.raises(ProtocolError) as info:
        Client.connect_or_start(python=str(fake_python), cfg_dir=tmp_path / "cfg", start_timeout=20)
    assert info.value.kind == "start"
    assert "no text detection weights are installed" in str(info.value) and "server.log" in str(info.value)
    assert time.monotonic() - t0 < 10
    # the server's stderr went to the log, not to the void
    assert "weights are installed" in (tmp_path / "cfg" / "server.log").read_text()


def test_server_command_is_loopback_or_unix_only():
    cmd = protocol.server_command("/py", "/cfg", weights_dir="/w", idle_timeout=5, tcp=True)
    assert cmd[:3] == ["/py", "-m", "engine.server"]
    assert cmd[cmd.index("--config-dir") + 1] == "/cfg" and cmd[cmd.index("--weights-dir") + 1] == "/w"
    assert "--tcp" in cmd and not any("0.0.0.0" in part for part in cmd)
    assert struct.calcsize("!4sIQ") == PREFIX.size == 16
