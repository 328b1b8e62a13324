"""The wire protocol between the editor plug-ins and the Kesu engine server, and a blocking client.

The one plug-in client: stdlib only, and runnable on Python 3.10+ (what Krita 5.2 bundles); importable on
3.9+, as the installer loads it by its path. It holds the wire protocol, the client, the config paths, the server
start-up, the limits of the options a user sets (``engine.pipeline.CleanOptions`` checks against them), and the
mask and layer rules both plug-ins follow. Only this file is in git: ``install/install.py`` copies it into each
plug-in as ``kesu_protocol.py`` (Krita ``pykrita/kesu/``, GIMP ``plug-ins/kesu/``).

Transport: a unix socket (Linux, macOS) or TCP on a loopback address (Windows, or ``kesu serve --tcp``); never
any other address. The server writes where it listens into ``<config_dir>/server.json`` and a random token
into ``<config_dir>/server.token`` (mode 0600); every request carries the token.

Frame (both directions)::

    magic b"KESU" | header length: uint32 big-endian | payload length: uint64 big-endian
    header: UTF-8 JSON object
    payload: the raw bytes of the blobs listed in header["blobs"] = [[name, size], ...], back to back

No pickle, no image encoding: pixels travel as raw bytes with width, height and channel order. The header of
every request has ``"v"`` (PROTOCOL_VERSION), ``"type"`` and ``"token"``.

Requests (client -> server):
  ping                                   -> {"type": "pong", "protocol", "engine_version", "models", ...}
  status                                 -> same as ping, but does not count as activity for the idle timeout
  detect | inpaint | clean (+ "id", "width", "height", "channels", "options"; blobs "pixels", optional "mask";
                            optional "text" and "kind_masks", see below)
                                         -> any number of {"type": "progress", "id", "fraction", "message"},
                                            then {"type": "result", ...} or {"type": "error", ...}
  cancel (+ "id")                        sent on the same connection while its job runs
  stop                                   -> {"type": "stopping"}; the server exits after answering

Any request may be answered with {"type": "error", "kind": ..., "message": ...}; ``message`` says what to do.

Kinds of text: a job's ``"text"`` (TEXT_CHOICES) says which text detect finds and clean erases: "dialogue"
(lettering: speech, captions, narration, asides), "sfx" (sound effects drawn as part of the artwork) or "all";
a job without it means "dialogue". With ``"kind_masks": true`` the answer of detect (and of clean when it
detects) also carries each kind's own tight mask as the blobs of KIND_MASK_BLOBS; the blob "mask" stays the
mask of the kinds asked for. The engine tells the kinds apart by the text's surroundings
(engine/pipeline/surroundings.py).
"""

from __future__ import annotations

import ipaddress
import json
import numbers
import os
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Optional

PROTOCOL_VERSION = 1

MAGIC = b"KESU"
PREFIX = struct.Struct("!4sIQ")
MAX_HEADER_BYTES = 1 << 20          # 1 MiB of JSON is far more than any request needs
MAX_PAYLOAD_BYTES = 1 << 30         # 1 GiB: a 150-megapixel RGBA page plus its mask
MAX_PIXELS = 150_000_000            # the same page limit as engine.imageio
MAX_SIDE = 1 << 20                  # the longest side the engine takes (engine.imageio.MAX_SIDE)

OPS = ("detect", "inpaint", "clean")
TEXT_CHOICES = ("dialogue", "sfx", "all")
DEFAULT_TEXT = "dialogue"
KIND_MASK_BLOBS = {"dialogue": "dialogue_mask", "sfx": "sfx_mask"}
# bytes per pixel of each channel layout the plug-ins may send (Krita: BGRA; GIMP "R'G'B'A u8": RGBA)
CHANNELS = {"RGBA": 4, "BGRA": 4, "RGB": 3, "BGR": 3, "L": 1, "LA": 2}
# the layout of the answer's pixels: the request's order, always with alpha
RESULT_CHANNELS = {"RGBA": "RGBA", "BGRA": "BGRA", "RGB": "RGBA", "BGR": "BGRA", "L": "LA", "LA": "LA"}

CONNECT_TIMEOUT_S = 5.0
IO_TIMEOUT_S = 30.0                 # one send or receive (of any size) must make progress within this
AUTH_TIMEOUT_S = 2.0                # the server hangs up on a connection whose first header (and token) is not
                                    # complete this long after it connected
MIN_TRANSFER_RATE = 4 << 20         # bytes/s: a whole message must arrive within IO_TIMEOUT_S + size / this
SILENCE_TIMEOUT_S = 30.0            # during a job the server sends progress at least every HEARTBEAT_S
HEARTBEAT_S = 0.5
CANCEL_GRACE_S = 5.0                # after a cancel, how long the client waits for the server to confirm it

ENDPOINT_FILE = "server.json"
TOKEN_FILE = "server.token"
LOG_FILE = "server.log"
LOCK_FILE = "server.lock"
PLUGIN_CONFIG_FILE = "plugin.json"
# what the server keeps in the config folder at run time (the installer's --uninstall removes them)
RUNTIME_FILES = (ENDPOINT_FILE, TOKEN_FILE, LOG_FILE, LOG_FILE + ".1", LOCK_FILE)

# Optional, not `bool | None`: this line runs at import, and the installer may run on Python 3.9
ProgressCallback = Callable[[float, str], Optional[bool]]  # noqa: UP045


class ProtocolError(Exception):
    """Anything that went wrong talking to the engine. ``kind`` says what; ``str(e)`` says what to do.

    Kinds: ``not_installed``, ``not_running``, ``start`` (the server could not start), ``connection`` (lost),
    ``timeout``, ``protocol`` (malformed message), ``too_large``, ``auth`` (wrong token), ``version``,
    ``input``, ``weights``, ``engine``, ``cancelled``, ``stopped``, ``config``.
    """

    def __init__(self, message: str, kind: str = "protocol"):
        super().__init__(message)
        self.kind = kind


# ------------------------------------------------------------------------------------------ files and config


def config_dir(env: Mapping[str, str] | None = None, platform: str | None = None,
               home: Path | None = None) -> Path:
    """The per-user Kesu folder (plug-in config, server token, socket, log).

    Linux: ``$XDG_CONFIG_HOME/kesu`` or ``~/.config/kesu``; Windows: ``%APPDATA%\\kesu``; macOS:
    ``~/Library/Application Support/kesu``. ``$KESU_CONFIG_DIR`` overrides all of them. ``env``,
    ``platform`` and ``home`` (default: this process's) let the installer work it out for another system.
    """
    env = os.environ if env is None else env
    if env.get("KESU_CONFIG_DIR"):
        return Path(env["KESU_CONFIG_DIR"]).expanduser()
    platform = sys.platform if platform is None else platform
    home = Path.home() if home is None else home
    if platform.startswith("win"):
        appdata = env.get("APPDATA")
        base = Path(appdata) if appdata else home / "AppData" / "Roaming"
    elif platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = env.get("XDG_CONFIG_HOME")
        # the XDG spec says a relative value is invalid and must be ignored
        base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".config"
    return base / "kesu"


def ensure_config_dir(cfg_dir: os.PathLike | None = None) -> Path:
    """Create the config folder if needed (readable by the user only) and return it."""
    cfg = Path(cfg_dir) if cfg_dir else config_dir()
    if not cfg.is_dir():
        cfg.mkdir(mode=0o700, parents=True, exist_ok=True)
    return cfg


def load_plugin_config(cfg_dir: os.PathLike | None = None) -> dict[str, Any]:
    """The plug-in config written by the installer (``<config_dir>/plugin.json``); {} when there is none.

    Keys: ``python`` (the engine's interpreter), ``weights_dir`` (or null), ``log_dir``.
    Raises ProtocolError(kind="config") when the file exists but cannot be used.
    """
    path = (Path(cfg_dir) if cfg_dir else config_dir()) / PLUGIN_CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ProtocolError(f"cannot read the Kesu plug-in config {path} ({e}); re-run the Kesu installer",
                            "config") from e
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ProtocolError(
            f"the Kesu plug-in config {path} is not valid JSON ({e}); re-run the Kesu installer",
            "config") from e
    if not isinstance(data, dict):
        raise ProtocolError(f"the Kesu plug-in config {path} is not a JSON object; re-run the Kesu installer",
                            "config")
    return data


def read_endpoint(cfg_dir: os.PathLike | None = None) -> dict[str, Any] | None:
    """The running server's ``server.json`` ({"pid", "transport", "address", "protocol", ...}) or None."""
    path = (Path(cfg_dir) if cfg_dir else config_dir()) / ENDPOINT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("transport") not in ("unix", "tcp"):
        return None
    return data


def log_path(cfg_dir: os.PathLike | None = None) -> Path:
    """Where the server started by ``Client.connect_or_start`` writes its log."""
    return (Path(cfg_dir) if cfg_dir else config_dir()) / LOG_FILE


def log_tail(cfg_dir: os.PathLike | None = None, lines: int = 12) -> str:
    """The last ``lines`` lines of the server log ('' if there is none), for error messages."""
    try:
        with open(log_path(cfg_dir), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------------- framing


def _json_bytes(header: dict[str, Any]) -> bytes:
    return json.dumps(header, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def send_message(sock: socket.socket, header: dict[str, Any], blobs: dict[str, Any] | None = None,
                 timeout: float = IO_TIMEOUT_S) -> None:
    """Send one frame: ``header`` (a JSON-able dict) and the raw ``blobs`` (name -> bytes-like, None skipped).

    Raises ProtocolError(kind="too_large") before sending anything when the frame is over the limits, and
    OSError when the connection fails.
    """
    parts = [(name, memoryview(data).cast("B")) for name, data in (blobs or {}).items() if data is not None]
    header = dict(header, blobs=[[name, view.nbytes] for name, view in parts])
    head = _json_bytes(header)
    payload_len = sum(view.nbytes for _, view in parts)
    if len(head) > MAX_HEADER_BYTES:
        raise ProtocolError(f"the message header is {len(head)} bytes (at most {MAX_HEADER_BYTES})",
                            "too_large")
    if payload_len > MAX_PAYLOAD_BYTES:
        raise ProtocolError(
            f"the image data is {payload_len / 2**20:.0f} MiB, more than the "
            f"{MAX_PAYLOAD_BYTES / 2**20:.0f} MiB the engine accepts in one message: "
            "work on a smaller image or a part of it",
            "too_large")
    sock.settimeout(timeout)
    sock.sendall(PREFIX.pack(MAGIC, len(head), payload_len) + head)
    for _, view in parts:
        if view.nbytes:
            sock.sendall(view)


def _recv_exact(sock: socket.socket, n: int, at_start: bool = False, timeout: float | None = None,
                deadline: float | None = None) -> bytearray:
    """Receive exactly ``n`` bytes. The buffer grows as data arrives (at most twice what came so far), so a
    peer that announces a large message and sends nothing costs no memory.

    ``timeout`` bounds each receive, ``deadline`` (time.monotonic()) all of them together; None = no bound.
    """
    buf = bytearray(min(n, 1 << 16))
    got = 0
    while got < n:
        if got == len(buf):
            buf.extend(bytes(min(len(buf), n - len(buf))))
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the message did not arrive in time")
            sock.settimeout(left if timeout is None else min(timeout, left))
        with memoryview(buf) as view:
            k = sock.recv_into(view[got:], min(len(buf) - got, 1 << 22))
        if k == 0:
            if at_start and got == 0:
                raise ProtocolError("the other side closed the connection", "closed")
            raise ProtocolError("the connection closed in the middle of a message", "connection")
        got += k
    return buf


def _is_blob_spec(item: Any) -> bool:
    return (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
            and isinstance(item[1], int) and not isinstance(item[1], bool) and item[1] >= 0)


def parse_prefix(prefix: bytes, max_payload: int = MAX_PAYLOAD_BYTES) -> tuple[int, int]:
    """The (header length, payload length) of a frame's first PREFIX.size bytes. Raises ProtocolError."""
    magic, head_len, payload_len = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise ProtocolError("received something that is not a Kesu message (wrong magic bytes)", "protocol")
    if head_len > MAX_HEADER_BYTES:
        raise ProtocolError(f"message header of {head_len} bytes refused (at most {MAX_HEADER_BYTES})",
                            "too_large")
    if payload_len > max_payload:
        raise ProtocolError(
            f"message of {payload_len / 2**20:.0f} MiB refused (at most {max_payload / 2**20:.0f} MiB): "
            "work on a smaller image or a part of it", "too_large")
    return head_len, payload_len


def parse_header(raw: bytes, payload_len: int) -> dict[str, Any]:
    """A frame's header (UTF-8 JSON object) checked against its payload length. Raises ProtocolError."""
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"the message header is not valid JSON ({e})", "protocol") from e
    except RecursionError as e:  # nested deeper than the JSON parser goes
        raise ProtocolError("the message header is nested too deeply", "protocol") from e
    if not isinstance(header, dict):
        raise ProtocolError("the message header is not a JSON object", "protocol")
    spec = header.get("blobs", [])
    if (not isinstance(spec, list) or not all(_is_blob_spec(b) for b in spec)
            or sum(b[1] for b in spec) != payload_len or len({b[0] for b in spec}) != len(spec)):
        raise ProtocolError("the message's blob list does not match its payload", "protocol")
    return header


def recv_message(
    sock: socket.socket,
    timeout: float | None = IO_TIMEOUT_S,
    max_payload: int = MAX_PAYLOAD_BYTES,
    check_header: Callable[[dict[str, Any]], None] | None = None,
    first_byte_timeout: float | None = None,
    header_timeout: float | None = None,
    whole_timeout: bool = False,
) -> tuple[dict[str, Any], dict[str, bytearray]]:
    """Receive one frame. Returns (header dict, {blob name: bytearray}).

    ``first_byte_timeout`` (default ``timeout``) bounds the wait for a frame to begin, ``timeout`` every later
    receive. ``header_timeout``: the prefix and header must be complete this long after the call (a slow or
    silent sender is dropped before it may send anything more). ``whole_timeout``: the whole frame must
    arrive within ``timeout`` + its size / MIN_TRANSFER_RATE of its first byte, however it trickles in.
    ``check_header(header)`` runs before the payload is read (the server checks the token there) and may raise
    ProtocolError to refuse it. Raises ProtocolError: ``closed`` (clean end of the connection),
    ``connection``, ``timeout``, ``protocol`` (not a Kesu frame), ``too_large``.
    """
    try:
        start = time.monotonic()
        head_deadline = None if header_timeout is None else start + header_timeout
        first_wait = first_byte_timeout if first_byte_timeout is not None else timeout
        if head_deadline is not None:
            first_wait = header_timeout if first_wait is None else min(first_wait, header_timeout)
        sock.settimeout(first_wait)
        first = _recv_exact(sock, 1, at_start=True)
        begun = time.monotonic()
        deadline = head_deadline
        if whole_timeout and timeout is not None:
            whole = begun + timeout + (PREFIX.size + MAX_HEADER_BYTES) / MIN_TRANSFER_RATE
            deadline = whole if deadline is None else min(deadline, whole)
        sock.settimeout(timeout)
        prefix = bytes(first + _recv_exact(sock, PREFIX.size - 1, timeout=timeout, deadline=deadline))
        head_len, payload_len = parse_prefix(prefix, max_payload)
        header = parse_header(bytes(_recv_exact(sock, head_len, timeout=timeout, deadline=deadline)),
                              payload_len)
        if check_header is not None:
            check_header(header)
        deadline = None
        if whole_timeout and timeout is not None:
            deadline = begun + timeout + (PREFIX.size + head_len + payload_len) / MIN_TRANSFER_RATE
        blobs = {}
        for name, size in header.get("blobs", []):
            blobs[name] = _recv_exact(sock, size, timeout=timeout, deadline=deadline)
        return header, blobs
    except TimeoutError as e:
        raise ProtocolError("no answer in time", "timeout") from e
    except OSError as e:
        raise ProtocolError(f"the connection failed ({e})", "connection") from e


# ----------------------------------------------------------------------------------------------------- client


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error_from(header: dict[str, Any]) -> ProtocolError:
    kind = str(header.get("kind") or "engine")
    message = str(header.get("message") or "the engine reported an error without a message")
    return ProtocolError(message, kind)


class Client:
    """A connection to the Kesu engine server. Blocking; one thread at a time; one job at a time.

    Make one per user action (``Client.connect_or_start()`` is cheap when the server runs) and close it
    (or use ``with``). Every call has a timeout: a dead or stuck server raises ProtocolError, never hangs.
    """

    def __init__(self, sock: socket.socket, token: str, cfg_dir: os.PathLike | None = None):
        self._sock: socket.socket | None = sock
        self._token = token
        self.cfg_dir = Path(cfg_dir) if cfg_dir else config_dir()
        self.server_info: dict[str, Any] = {}

    # -- connecting

    @classmethod
    def connect(cls, cfg_dir: os.PathLike | None = None, timeout: float = CONNECT_TIMEOUT_S) -> Client:
        """Connect to the server running for ``cfg_dir``. Raises ProtocolError(kind="not_running") if none."""
        cfg = Path(cfg_dir) if cfg_dir else config_dir()
        endpoint = read_endpoint(cfg)
        if endpoint is None:
            raise ProtocolError(f"no Kesu engine server is running (no {cfg / ENDPOINT_FILE})", "not_running")
        try:
            token = (cfg / TOKEN_FILE).read_text(encoding="ascii").strip()
        except OSError as e:
            raise ProtocolError(f"the engine server's token {cfg / TOKEN_FILE} cannot be read ({e})",
                                "not_running") from e
        address = endpoint.get("address")
        try:
            if endpoint["transport"] == "unix":
                if not hasattr(socket, "AF_UNIX") or not isinstance(address, str):
                    raise ProtocolError(f"{cfg / ENDPOINT_FILE} names a unix socket, which this system lacks",
                                        "not_running")
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                target: Any = address
            else:
                if not (isinstance(address, list) and len(address) == 2 and isinstance(address[0], str)
                        and isinstance(address[1], int)):
                    raise ProtocolError(f"{cfg / ENDPOINT_FILE} has a malformed address", "not_running")
                # never talk to anything but this machine, whatever the file says
                if not _is_loopback(address[0]):
                    raise ProtocolError(
                        f"{cfg / ENDPOINT_FILE} names {address[0]}, which is not a loopback address; "
                        "refusing to connect. Stop the server (`kesu serve --stop`) and delete that file",
                        "not_running")
                family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                target = (address[0], address[1])
            sock.settimeout(timeout)
            try:
                sock.connect(target)
            except OSError:
                sock.close()
                raise
        except OSError as e:
            # a stale endpoint file after a crash lands here (refused / no such socket)
            raise ProtocolError(f"the Kesu engine server is not answering at {address} ({e})",
                                "not_running") from e
        return cls(sock, token, cfg)

    @classmethod
    def connect_or_start(
        cls,
        python: str | None = None,
        cfg_dir: os.PathLike | None = None,
        start_timeout: float = 60,
        weights_dir: str | None = None,
        idle_timeout: float | None = None,
    ) -> Client:
        """Connect to the running server, or start one (detached, so it outlives the caller) and connect.

        ``python``: the engine's interpreter (default: ``python`` from plugin.json). ``weights_dir``: passed
        to a server this call starts (default: plugin.json's). A running server that speaks another protocol
        version is stopped and replaced. Raises ProtocolError (``not_installed``, ``start``, ``version``...).
        """
        cfg = ensure_config_dir(cfg_dir)
        client = cls._try_connect(cfg, replace_other_version=True)
        if client is not None:
            return client
        plugin = load_plugin_config(cfg)
        python = python or plugin.get("python")
        if not python:
            raise ProtocolError(
                "the Kesu engine is not installed for this user (no engine interpreter in "
                f"{cfg / PLUGIN_CONFIG_FILE}); run the Kesu installer (install/install.py)", "not_installed")
        if not Path(python).is_file():
            raise ProtocolError(
                f"the Kesu engine interpreter {python} does not exist (named in {cfg / PLUGIN_CONFIG_FILE}); "
                "re-run the Kesu installer (install/install.py)", "not_installed")
        weights_dir = weights_dir or plugin.get("weights_dir")
        proc = start_server(python, cfg, weights_dir=weights_dir, idle_timeout=idle_timeout)
        deadline = time.monotonic() + start_timeout
        other_server = False
        while True:
            client = cls._try_connect(cfg, replace_other_version=False)
            if client is not None:
                return client
            code = proc.poll()
            if code == 0 and not other_server:
                # ours found another server starting or running (it holds the lock): give that one a while
                other_server = True
                deadline = min(deadline, time.monotonic() + 20)
            elif code not in (None, 0):
                tail = log_tail(cfg)
                raise ProtocolError(
                    f"the Kesu engine server could not start (exit code {code}). "
                    f"{_last_error_line(tail)}\nFull log: {log_path(cfg)}", "start")
            if time.monotonic() > deadline:
                if other_server:
                    raise ProtocolError(
                        "a Kesu engine server is running but does not answer; stop it with "
                        f"`kesu serve --stop` (config folder {cfg}) and try again", "start")
                raise ProtocolError(
                    f"the Kesu engine server did not come up within {start_timeout:.0f} s; see its log "
                    f"{log_path(cfg)}, or start it by hand with `kesu serve` to see what happens", "start")
            time.sleep(0.05)

    @classmethod
    def _try_connect(cls, cfg: Path, replace_other_version: bool) -> Client | None:
        """A pinged client, or None when no server answers.

        With ``replace_other_version``, a server speaking another protocol version (an engine still running
        from before an upgrade) is stopped so that the caller starts a current one.
        """
        try:
            client = cls.connect(cfg)
        except ProtocolError:
            return None
        try:
            client.server_info = client.ping()
            return client
        except ProtocolError as e:
            client.close()
            if e.kind == "version" and replace_other_version:
                # the server hung up after refusing us; "stop" is understood by every version
                try:
                    cls.connect(cfg).stop()
                except ProtocolError:
                    pass
                _wait_for_endpoint_gone(cfg, 10.0)
                return None
            if e.kind in ("connection", "closed", "timeout"):
                return None  # it died or is stuck between our connect and ping: treat as not running
            raise

    # -- requests

    def _request_header(self, kind: str, **fields: Any) -> dict[str, Any]:
        return dict(fields, v=PROTOCOL_VERSION, type=kind, token=self._token)

    def _send(self, header: dict[str, Any], blobs: dict[str, Any] | None = None) -> None:
        sock = self._require_sock()
        try:
            send_message(sock, header, blobs)
        except OSError as e:
            # the server may have refused the request and closed: prefer its explanation
            try:
                answer, _ = recv_message(sock, timeout=1.0)
            except ProtocolError:
                answer = {}
            self.close()
            if answer.get("type") == "error":
                raise _error_from(answer) from e
            raise self._lost(f"sending failed: {e}") from e

    def _lost(self, detail: str) -> ProtocolError:
        return ProtocolError(
            f"the connection to the Kesu engine was lost ({detail}). The engine may have crashed; its log is "
            f"{log_path(self.cfg_dir)}. Try again (a new engine starts by itself)", "connection")

    def _recv(self, timeout: float) -> tuple[dict[str, Any], dict[str, bytearray]]:
        sock = self._require_sock()
        try:
            return recv_message(sock, timeout=IO_TIMEOUT_S, first_byte_timeout=timeout)
        except ProtocolError as e:
            self.close()
            if e.kind in ("closed", "connection"):
                raise self._lost(str(e)) from e
            raise

    def _require_sock(self) -> socket.socket:
        if self._sock is None:
            raise ProtocolError("this connection to the Kesu engine is closed; make a new Client",
                                "connection")
        return self._sock

    def ping(self, timeout: float = 10.0) -> dict[str, Any]:
        """Ask the server who it is: {"protocol", "engine_version", "models", "pid", "busy", ...}."""
        return self._simple("ping", timeout)

    def status(self, timeout: float = 10.0) -> dict[str, Any]:
        """Like ping, but does not keep an idle server alive."""
        return self._simple("status", timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit (a running job is cancelled). The connection is closed afterwards."""
        try:
            self._simple("stop", timeout)
        finally:
            self.close()

    def _simple(self, kind: str, timeout: float) -> dict[str, Any]:
        self._send(self._request_header(kind))
        deadline = time.monotonic() + timeout
        while True:
            try:
                header, _ = self._recv(max(0.001, deadline - time.monotonic()))
            except ProtocolError as e:
                if e.kind == "timeout":
                    raise ProtocolError(f"the Kesu engine did not answer a {kind} within {timeout:.0f} s; "
                                        "stop it with `kesu serve --stop` and try again", "timeout") from e
                raise
            if header.get("type") != "progress":  # a late progress note of an earlier job: not our answer
                break
        if header.get("type") == "error":
            raise _error_from(header)
        header.pop("blobs", None)
        return header

    def run(
        self,
        op: str,
        pixels: bytes,
        width: int,
        height: int,
        channels: str,
        mask: bytes | None = None,
        options: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
        timeout: float = 600,
        text: str = DEFAULT_TEXT,
        kind_masks: bool = False,
    ) -> dict[str, Any]:
        """Run one job and wait for it. Blocking; ``progress`` is called at least every HEARTBEAT_S seconds.

        Args:
            op: "detect", "inpaint" or "clean".
            pixels: width*height*len(channels) bytes, rows top to bottom, in the order ``channels`` names.
            channels: "RGBA", "BGRA", "RGB", "BGR", "L" or "LA".
            mask: width*height bytes, nonzero = hole (required for inpaint; for clean: the text mask to use
                instead of detecting one).
            options: engine options, e.g. {"threshold": 0.5, "grow_px": 4}; an unknown name is an error that
                lists the valid ones.
            progress: progress(fraction in [0, 1], message) -> returning False cancels the job.
            timeout: seconds for the whole job.
            text: the kinds of text detect finds and clean erases: "dialogue", "sfx" or "all".
            kind_masks: also return each kind's own mask (detect, and clean without a given mask).

        Returns {"mask": bytes (width*height, 255 = text, the tight text mask) or None,
                 "kind_masks": {"dialogue": bytes, "sfx": bytes} (only what the engine answered; {} unless
                 ``kind_masks``),
                 "pixels": bytes (width*height*len(channels_out)) or None, "channels": channels_out,
                 "width", "height", "stats": {"engine_s", "server_s", ...}}.
        ``pixels`` (inpaint, clean) are in the request's order with alpha ("RGBA", "BGRA"; "L" -> "LA"):
        the cleaned colour where a pixel changed (alpha: the layer's alpha there, 255 for opaque layers) and
        fully transparent zeros elsewhere, ready for a new layer above the original.
        Raises ProtocolError (kind "cancelled" when cancelled, "input" for bad input, ...).
        """
        if op not in OPS:
            raise ProtocolError(f"unknown operation {op!r}; valid: {', '.join(OPS)}", "input")
        if channels not in CHANNELS:
            raise ProtocolError(f"unknown channel order {channels!r}; valid: {', '.join(CHANNELS)}", "input")
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            raise ProtocolError(f"the image size must be positive integers, got {width!r}x{height!r}",
                                "input")
        expected = width * height * CHANNELS[channels]
        if len(pixels) != expected:
            raise ProtocolError(
                f"{len(pixels)} bytes of pixels for a {width}x{height} {channels} image, expected {expected}",
                "input")
        if mask is not None and len(mask) != width * height:
            raise ProtocolError(
                f"{len(mask)} bytes of mask for a {width}x{height} image, expected {width * height}", "input")
        if op == "inpaint" and mask is None:
            raise ProtocolError("inpaint needs a mask (select the area to fill first)", "input")
        if text not in TEXT_CHOICES:
            raise ProtocolError(f"unknown kind of text {text!r}; valid: {', '.join(TEXT_CHOICES)}", "input")
        job_id = uuid.uuid4().hex
        header = self._request_header(op, id=job_id, width=width, height=height, channels=channels,
                                      options=dict(options or {}), text=text)
        if kind_masks:
            header["kind_masks"] = True
        self._send(header, {"pixels": pixels, "mask": mask})

        deadline = time.monotonic() + timeout
        cancel_deadline: float | None = None
        while True:
            now = time.monotonic()
            if cancel_deadline is not None:
                wait = cancel_deadline - now
                if wait <= 0:
                    # the server did not confirm in time; dropping the connection cancels the job as well
                    self.close()
                    raise ProtocolError("cancelled", "cancelled")
            else:
                wait = deadline - now
                if wait <= 0:
                    self._cancel_quietly(job_id)
                    raise ProtocolError(
                        f"the Kesu engine did not finish within {timeout:.0f} s, so the job was cancelled; "
                        "try a smaller image or a part of it", "timeout")
            try:
                answer, blobs = self._recv(min(wait, SILENCE_TIMEOUT_S))
            except ProtocolError as e:
                if e.kind != "timeout":
                    raise
                if cancel_deadline is not None:
                    raise ProtocolError("cancelled", "cancelled") from e
                if time.monotonic() < deadline:
                    raise ProtocolError(
                        f"the Kesu engine stopped answering (nothing for {SILENCE_TIMEOUT_S:.0f} s). Stop it "
                        f"with `kesu serve --stop` and try again; its log is {log_path(self.cfg_dir)}",
                        "timeout") from e
                continue  # the overall deadline passed: reported at the top of the loop
            kind = answer.get("type")
            if answer.get("id", job_id) != job_id:
                continue  # a late note about an earlier job on this connection
            if kind == "progress":
                if progress is not None and cancel_deadline is None:
                    try:
                        fraction = float(answer.get("fraction", 0.0))
                        keep_going = progress(fraction, str(answer.get("message", "")))
                    except BaseException:
                        self.close()  # the server sees the connection drop and abandons the job
                        raise
                    if keep_going is False:
                        self._send(self._request_header("cancel", id=job_id))
                        cancel_deadline = time.monotonic() + CANCEL_GRACE_S
                continue
            if kind == "error":
                raise _error_from(answer)
            if kind == "result":
                if cancel_deadline is not None:
                    raise ProtocolError("cancelled", "cancelled")
                mask_out = blobs.get("mask")
                pixels_out = blobs.get("pixels")
                return {
                    "mask": bytes(mask_out) if mask_out is not None else None,
                    "kind_masks": {kind: bytes(blobs[name]) for kind, name in KIND_MASK_BLOBS.items()
                                   if name in blobs and len(blobs[name]) == width * height},
                    "pixels": bytes(pixels_out) if pixels_out is not None else None,
                    "channels": answer.get("channels"),
                    "width": answer.get("width", width),
                    "height": answer.get("height", height),
                    "stats": answer.get("stats", {}),
                }
            self.close()
            raise ProtocolError(f"unexpected answer {kind!r} from the Kesu engine", "protocol")

    def _cancel_quietly(self, job_id: str) -> None:
        try:
            self._send(self._request_header("cancel", id=job_id))
        except ProtocolError:
            pass
        self.close()

    def close(self) -> None:
        """Close the connection (the server abandons a job still running for it)."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _last_error_line(tail: str) -> str:
    """The most telling line of a log tail: the last one that looks like an error, else the last line."""
    lines = [line for line in tail.splitlines() if line.strip()]
    for line in reversed(lines):
        if "error" in line.lower():
            return line.strip()
    return lines[-1].strip() if lines else "(the log is empty)"


def _wait_for_endpoint_gone(cfg: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while read_endpoint(cfg) is not None and time.monotonic() < deadline:
        time.sleep(0.05)


def server_command(python: str, cfg_dir: os.PathLike, weights_dir: str | None = None,
                   idle_timeout: float | None = None, tcp: bool | None = None) -> list:
    """The command that starts the engine server with ``python`` (the engine environment's interpreter)."""
    cmd = [str(python), "-m", "engine.server", "--config-dir", str(cfg_dir)]
    if weights_dir:
        cmd += ["--weights-dir", str(weights_dir)]
    if idle_timeout is not None:
        cmd += ["--idle-timeout", str(idle_timeout)]
    if tcp if tcp is not None else not hasattr(socket, "AF_UNIX") or sys.platform == "win32":
        cmd += ["--tcp"]
    return cmd


def start_server(python: str, cfg_dir: os.PathLike, weights_dir: str | None = None,
                 idle_timeout: float | None = None) -> subprocess.Popen:
    """Start the engine server detached from the caller (own session, no console, no inherited stdio).

    Its output is appended to ``<cfg_dir>/server.log`` (the previous log is kept as server.log.1 when it grows
    past 1 MiB). Returns the Popen; the server writes server.json when it is ready.
    """
    cfg = ensure_config_dir(cfg_dir)
    log = log_path(cfg)
    try:
        if log.stat().st_size > 1 << 20:
            os.replace(log, log.with_name(LOG_FILE + ".1"))
    except OSError:
        pass
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = (getattr(subprocess, "DETACHED_PROCESS", 0x8)
                                   | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200))
    else:
        kwargs["start_new_session"] = True  # not killed with the editor's process group, no terminal
    with open(log, "ab") as logf:
        logf.write(f"\n--- starting the engine server {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
        logf.flush()
        try:
            return subprocess.Popen(
                server_command(python, cfg, weights_dir, idle_timeout),
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, close_fds=True, cwd=str(cfg), **kwargs,
            )
        except OSError as e:
            raise ProtocolError(
                f"cannot start the Kesu engine with {python} ({e}); re-run the Kesu installer",
                "start") from e


# ------------------------------------------------------------------------------------------- option limits


class Limit(NamedTuple):
    """The values one engine option may take: ``lo`` to ``hi`` inclusive; ``whole``: a whole number."""

    lo: float
    hi: float
    default: float | None
    whole: bool = False
    label: str = ""  # the option's name in messages, when not its key


# The options a user sets, checked by the engine (engine.pipeline.CleanOptions) and by both plug-ins' settings.
OPTION_LIMITS = {
    "threshold": Limit(0.01, 0.99, 0.5),  # text probability at which a pixel counts as text
    "grow_px": Limit(0, 64, 4, whole=True, label="grow"),  # pixels added around the text before erasing
    "snap_px": Limit(0, 32, None, whole=True, label="snap"),  # None: chosen from the detector's scale
    "detect_short_side": Limit(64, 8192, 1024, whole=True),
}
THRESHOLD = OPTION_LIMITS["threshold"]
GROW_PX = OPTION_LIMITS["grow_px"]


def option_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the option ``name`` (a sentence saying what is allowed), or None."""
    limit = OPTION_LIMITS[name]
    label = limit.label or name
    kind = numbers.Integral if limit.whole else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not limit.lo <= value <= limit.hi:
        what = "a whole number of pixels" if limit.whole else "a number"
        return f"{label} must be {what} between {limit.lo} and {limit.hi}, got {value!r}"
    return None


# ------------------------------------------------------------------------- masks and layers of both plug-ins
# Byte-level helpers (whole ``bytes`` objects, C-speed primitives: a page takes milliseconds). A mask is
# width*height bytes, 255 = text / hole, 0 = keep; layer pixels are in a channel order of CHANNELS.

TEXT_MASK_LAYER = "Text Mask"
SFX_MASK_LAYER = "SFX Mask"  # the sound effects' mask (issue 31: shown hidden, erased only when asked)
CLEANED_LAYER = "Cleaned"
# the mask layer of each kind of text (TEXT_CHOICES but "all"): lettering in "Text Mask", sound effects in "SFX Mask"
MASK_LAYERS = {"dialogue": TEXT_MASK_LAYER, "sfx": SFX_MASK_LAYER}
MASK_RGB = (255, 0, 0)  # text in the "Text Mask" layer: a clear red on colour images...
MASK_GREY = 128         # ...and mid grey on grey ones
COVERED = 128           # a selection or painted-mask pixel counts from half covered (soft edges, feathering)

_COVERED_TABLE = bytes(255 if v >= COVERED else 0 for v in range(256))


def _nonzero_to(value: int) -> bytes:
    """A translate table: 0 stays 0, anything else becomes ``value``."""
    return bytes([0]) + bytes([value]) * 255


def coverage_to_mask(coverage: bytes) -> bytes:
    """One coverage byte per pixel (a selection, an alpha plane) -> a 0/255 mask."""
    return bytes(coverage).translate(_COVERED_TABLE)


def alpha_plane(pixels: bytes, channels: str) -> bytes:
    """The alpha bytes (the last channel) of pixels in ``channels`` order ("RGBA", "BGRA", "LA")."""
    n = CHANNELS[channels]
    if len(pixels) % n:
        raise ValueError(f"{len(pixels)} bytes is not a whole number of {channels} pixels")
    return bytes(pixels[n - 1::n])


def layer_to_mask(pixels: bytes, channels: str) -> bytes:
    """The mask a (possibly hand-edited) "Text Mask" layer holds: text where it is at least half opaque."""
    return coverage_to_mask(alpha_plane(pixels, channels))


def mask_to_layer(mask: bytes, channels: str) -> bytes:
    """"Text Mask" layer pixels in ``channels`` order ("RGBA", "BGRA" or "LA"): the mask colour and opaque
    where ``mask`` is nonzero, transparent zeros elsewhere."""
    inside = bytes(mask).translate(_nonzero_to(255))
    colour = {"RGBA": MASK_RGB, "BGRA": MASK_RGB[::-1], "LA": (MASK_GREY,)}[channels]
    n = len(colour) + 1
    out = bytearray(len(inside) * n)
    for c, value in enumerate(colour):
        out[c::n] = inside.translate(_nonzero_to(value))
    out[n - 1::n] = inside
    return bytes(out)


def mask_and(a: bytes, b: bytes) -> bytes:
    """Pixel-wise AND of two 0/255 masks of the same length (one big-integer AND: fast for whole pages)."""
    if len(a) != len(b):
        raise ValueError(f"masks of different sizes ({len(a)} and {len(b)} bytes)")
    return (int.from_bytes(a, "little") & int.from_bytes(b, "little")).to_bytes(len(a), "little")


def mask_or(a: bytes, b: bytes) -> bytes:
    """Pixel-wise OR of two 0/255 masks of the same length."""
    if len(a) != len(b):
        raise ValueError(f"masks of different sizes ({len(a)} and {len(b)} bytes)")
    return (int.from_bytes(a, "little") | int.from_bytes(b, "little")).to_bytes(len(a), "little")


def mask_count(mask: bytes) -> int:
    """How many pixels of a mask are set (nonzero)."""
    return len(mask) - bytes(mask).count(0)


def changed_count(pixels: bytes, channels: str) -> int:
    """Pixels of a result layer that are not fully transparent, i.e. that the engine changed."""
    return mask_count(alpha_plane(pixels, channels))


def clip_to_mask(pixels: bytes, channels: str, mask: bytes) -> bytes:
    """``pixels`` kept where ``mask`` is set, fully transparent zeros (every channel) elsewhere."""
    n = CHANNELS[channels]
    if len(pixels) != n * len(mask):
        raise ValueError(f"{len(pixels)} bytes of {channels} for a mask of {len(mask)} pixels")
    inside = bytes(mask).translate(_nonzero_to(255))
    wide = bytearray(len(pixels))
    for c in range(n):
        wide[c::n] = inside
    return mask_and(bytes(pixels), bytes(wide))


def _named(name: str, base: str) -> bool:
    """``name`` is ``base``, also as a host renames a second one ("Text Mask #2")."""
    return name == base or name.startswith(base + " #")


def mask_layer_kind(name: str) -> str | None:
    """The kind of text a Kesu mask layer holds (a key of MASK_LAYERS: "dialogue" for "Text Mask", "sfx" for
    "SFX Mask", also as the host renames a second one, "SFX Mask #2"); None for any other layer."""
    return next((kind for kind, base in MASK_LAYERS.items() if _named(name, base)), None)


def is_text_mask_layer(name: str) -> bool:
    """A "Text Mask" layer, also as the host renames a second one ("Text Mask #2")."""
    return _named(name, TEXT_MASK_LAYER)


def is_kesu_layer(name: str) -> bool:
    """A layer Kesu made: a mask layer ("Text Mask", "SFX Mask") or "Cleaned", also as the host renames a second
    one ("Text Mask #2")."""
    return mask_layer_kind(name) is not None or _named(name, CLEANED_LAYER)


def kinds_of_text(text: str) -> tuple[str, ...]:
    """The kinds of text (keys of MASK_LAYERS) a TEXT_CHOICES value means: "all" is dialogue and sound effects."""
    if text not in TEXT_CHOICES:
        raise ValueError(f"unknown kind of text {text!r}; valid: {', '.join(TEXT_CHOICES)}")
    return tuple(MASK_LAYERS) if text == "all" else (text,)


def mask_layer_masks(mask: bytes, kind_masks: Mapping[str, bytes]) -> dict[str, bytes]:
    """The mask layers to add for an engine answer, by kind: {"dialogue": the "Text Mask"'s mask, "sfx": the
    "SFX Mask"'s}. The "Text Mask" is always there (an empty one is for painting by hand); the "SFX Mask" only
    when the page has sound effects: an empty hidden layer on every page would be noise. An answer without
    kind masks gives its ``mask`` as the "Text Mask"'s."""
    layers = {"dialogue": kind_masks.get("dialogue", mask)}
    sfx = kind_masks.get("sfx")
    if sfx is not None and mask_count(sfx):
        layers["sfx"] = sfx
    return layers


def mask_layer_visible(kind: str, text: str) -> bool:
    """Whether a new mask layer of ``kind`` is shown when the user erases ``text`` (TEXT_CHOICES): shown masks
    are what Inpaint Selection erases, so the "SFX Mask" stays hidden unless sound effects are erased."""
    return kind in kinds_of_text(text)


def source_layer_index(names: list[str], active: int) -> int | None:
    """The layer to work on among siblings ``names`` (top first): the active one, or when that is one of
    Kesu's own (e.g. the "Text Mask" just made), the first other layer below it; None when there is none."""
    i = active
    while i < len(names) and is_kesu_layer(names[i]):
        i += 1
    return i if i < len(names) else None


def mask_layers_above(names: list[str], source: int) -> dict[str, int]:
    """The mask layers made for the layer at ``source`` among siblings ``names`` (top first): by kind, the
    nearest one above it through other Kesu layers ({} when there is none)."""
    found: dict[str, int] = {}
    i = source - 1
    while i >= 0 and is_kesu_layer(names[i]):
        kind = mask_layer_kind(names[i])
        if kind is not None and kind not in found:
            found[kind] = i
        i -= 1
    return found


def mask_layers_for(names: list[str], source: int) -> dict[str, int]:
    """The mask layers that belong to the layer at ``source``: those above it (:func:`mask_layers_above`), else
    the first sibling of each kind anywhere (a mask the user moved); {} when there is none."""
    found = mask_layers_above(names, source)
    if not found:
        for i, name in enumerate(names):
            kind = mask_layer_kind(name)
            if kind is not None and kind not in found:
                found[kind] = i
    return found


def masks_to_fill(names: list[str], visible: list[bool], source: int) -> list[int]:
    """The layers Inpaint Selection fills when nothing is selected: every VISIBLE mask layer that belongs to the
    layer at ``source`` (:func:`mask_layers_for`), top first; their masks are filled together. A hidden layer
    (the "SFX Mask" as Detect Text adds it) is left alone."""
    return sorted(i for i in mask_layers_for(names, source).values() if visible[i])


def cleaned_position(names: list[str], source: int) -> int:
    """Where Inpaint Selection's "Cleaned" layer goes among siblings ``names`` (top first): directly above the
    topmost mask layer of the layer at ``source`` (:func:`mask_layers_above`), so it shows over them, else
    directly above the source. Returns that layer's index: a new layer inserted at it lies directly above."""
    above = mask_layers_above(names, source)
    return min(above.values()) if above else source
