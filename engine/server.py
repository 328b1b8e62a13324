"""The engine server: the models stay loaded, the plug-ins send jobs (``kesu serve``).

One process per user and config folder. It listens on a unix socket (or loopback TCP), checks the token of
every request, runs jobs one at a time in arrival order on the main thread, answers pings and cancels from
per-connection threads while a job runs, and exits by itself after ``--idle-timeout`` seconds without work.

Files in the config folder (see ``engine.protocol``): ``server.lock`` (held while the server lives, so a crash
leaves nothing that blocks the next start), ``server.token`` (0600), ``server.json`` (pid and address, written
once the models are loaded and the socket listens), ``server.log`` (written by whoever redirects our stderr).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import queue
import secrets
import select
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import __version__
from engine.allocator import release_freed_memory
from engine.errors import CancelledError, EngineError, InputError
from engine.imageio import check_page_size
from engine.protocol import (
    AUTH_TIMEOUT_S,
    CHANNELS,
    DEFAULT_TEXT,
    ENDPOINT_FILE,
    HEARTBEAT_S,
    IO_TIMEOUT_S,
    KIND_MASK_BLOBS,
    LOCK_FILE,
    MAX_PAYLOAD_BYTES,
    OPS,
    PROTOCOL_VERSION,
    RESULT_CHANNELS,
    TEXT_CHOICES,
    TOKEN_FILE,
    Client,
    ProtocolError,
    config_dir,
    ensure_config_dir,
    read_endpoint,
    recv_message,
    send_message,
)

log = logging.getLogger("kesu.server")

DEFAULT_IDLE_TIMEOUT_S = 300.0
MAX_CONNECTIONS = 32        # connections that showed the token
MAX_PENDING = 64            # connections that have not yet: over this, the oldest is dropped
SUN_PATH_MAX = 100          # sockaddr_un.sun_path is 108 bytes on Linux, 104 on macOS; keep a margin
STAGE_MESSAGES = {"detect": "Detecting text", "inpaint": "Filling the text areas", "done": "Done"}


# ------------------------------------------------------------------------------------------- pixel conversion


def pixels_to_rgb(
    pixels: Any, width: int, height: int, channels: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw pixels from a plug-in -> (rgb uint8 (H, W, 3), alpha uint8 (H, W) or None).

    ``channels`` is one of engine.protocol.CHANNELS. Pixels that are not fully opaque are composited over
    white for the engine (what a transparent area shows on paper; their stored colour is often arbitrary);
    the alpha is returned as it was.
    """
    if channels not in CHANNELS:
        raise InputError(f"unknown channel order {channels!r}; valid: {', '.join(CHANNELS)}")
    n = CHANNELS[channels]
    arr = np.frombuffer(pixels, dtype=np.uint8)
    if arr.size != width * height * n:
        raise InputError(f"{arr.size} bytes of pixels for a {width}x{height} {channels} image, "
                         f"expected {width * height * n}")
    arr = arr.reshape(height, width, n)
    if channels in ("RGB", "RGBA"):
        rgb = np.ascontiguousarray(arr[:, :, :3])
    elif channels in ("BGR", "BGRA"):
        rgb = np.ascontiguousarray(arr[:, :, 2::-1])
    else:
        rgb = np.repeat(arr[:, :, :1], 3, axis=2)
    alpha = None
    if channels in ("RGBA", "BGRA", "LA"):
        alpha = np.ascontiguousarray(arr[:, :, n - 1])
        partial = alpha < 255
        if partial.any():
            a = alpha[partial].astype(np.uint16)[:, None]
            over_white = (rgb[partial].astype(np.uint16) * a + 255 * (255 - a) + 127) // 255
            rgb[partial] = over_white.astype(np.uint8)
    return rgb, alpha


def result_pixels(
    rgb: np.ndarray, region: np.ndarray, alpha: np.ndarray | None, channels: str
) -> tuple[bytes, str]:
    """The answer's pixels: ``rgb`` (uint8 (H, W, 3)) inside ``region`` (bool (H, W)), transparent elsewhere.

    Returned in the request's channel order with alpha (engine.protocol.RESULT_CHANNELS): alpha is the layer's
    alpha inside the region (255 when the request had none) and 0 outside, where the colour is 0 too.
    """
    layout = RESULT_CHANNELS[channels]
    h, w = region.shape
    keep = region if alpha is None else region & (alpha > 0)
    if layout == "LA":
        # ITU-R BT.601 luma, the weights Pillow and GIMP use for RGB -> grey
        grey = (rgb[:, :, 0].astype(np.uint32) * 299 + rgb[:, :, 1].astype(np.uint32) * 587
                + rgb[:, :, 2].astype(np.uint32) * 114 + 500) // 1000
        out = np.zeros((h, w, 2), dtype=np.uint8)
        out[:, :, 0] = np.where(keep, grey, 0)
    else:
        out = np.zeros((h, w, 4), dtype=np.uint8)
        colour = rgb if layout == "RGBA" else rgb[:, :, ::-1]
        np.multiply(colour, keep[:, :, None], out=out[:, :, :3], casting="unsafe")
    out[:, :, -1] = np.where(keep, 255 if alpha is None else alpha, 0)
    return out.tobytes(), layout


# --------------------------------------------------------------------------------------------- runtime files


def socket_path(cfg: Path) -> Path:
    """Where the unix socket goes: in the config folder, unless that path is too long for sun_path.

    Then ``$XDG_RUNTIME_DIR/kesu-<hash>.sock``, else a private (0700) ``<tmp>/kesu-<uid>/<hash>.sock``; the
    hash of the config folder keeps two config folders (two test runs, two users) apart.
    """
    preferred = cfg / "server.sock"
    if len(os.fsencode(str(preferred))) <= SUN_PATH_MAX:
        return preferred
    tag = hashlib.sha256(os.fsencode(str(cfg.resolve()))).hexdigest()[:16]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        candidate = Path(runtime) / f"kesu-{tag}.sock"
        if len(os.fsencode(str(candidate))) <= SUN_PATH_MAX:
            return candidate
    private = Path(tempfile.gettempdir()) / f"kesu-{os.getuid()}"
    try:
        private.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(private)
    # another user could have made it first: never put our socket in a folder we do not own alone
    private_ok = os.path.isdir(private) and not os.path.islink(private)
    if not private_ok or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise EngineError(f"{private} is not a private folder of this user; remove it, or set "
                          "KESU_CONFIG_DIR to a shorter path")
    return private / f"{tag}.sock"


class ServerLock:
    """An exclusive lock on ``<cfg>/server.lock`` held for the server's life; the OS drops it on a crash."""

    def __init__(self, cfg: Path):
        self.path = cfg / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting. False when another live process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if sys.platform == "win32":
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops flock / msvcrt locks
            self._fd = None

    @staticmethod
    def is_held(cfg: Path) -> bool:
        """Whether a live server holds the lock of ``cfg``."""
        probe = ServerLock(cfg)
        if probe.acquire():
            probe.release()
            return False
        return True


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the user only (mode 0600)."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------ the server


@dataclass
class Job:
    """One request waiting for or being run by the worker."""

    id: str
    op: str
    width: int
    height: int
    channels: str
    options: dict
    pixels: bytearray
    mask: bytearray | None
    conn: Connection
    text: str = DEFAULT_TEXT    # the kinds of text to find or erase (engine.protocol.TEXT_CHOICES)
    kind_masks: bool = False    # also answer each kind's own mask (detect, and clean when it detects)
    received: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_kind: str = "cancelled"
    cancel_message: str = "cancelled"
    fraction: float = 0.0
    message: str = "Waiting"
    finished: bool = False


class Connection:
    """One client socket. Sends are serialised by a lock: the worker (progress, result) and the reader thread
    (answers, heartbeats) both write to it."""

    def __init__(self, sock: socket.socket, server: Server):
        self.sock = sock
        self.server = server
        self.send_lock = threading.Lock()
        self.job: Job | None = None
        self.last_send = time.monotonic()
        self.closed = False
        self.unread_payload = 0
        self.opened = time.monotonic()
        self.authenticated = False

    def send(self, header: dict, blobs: dict | None = None) -> bool:
        """Send one frame; False (and the connection closed) when the client is gone."""
        with self.send_lock:
            return self._send_locked(header, blobs)

    def _send_locked(self, header: dict, blobs: dict | None = None) -> bool:
        if self.closed:
            return False
        try:
            send_message(self.sock, dict(header, v=PROTOCOL_VERSION), blobs, timeout=IO_TIMEOUT_S)
        except (OSError, ProtocolError) as e:
            log.info("client went away while sending (%s)", e)
            self.close()
            return False
        self.last_send = time.monotonic()
        return True

    def send_error(self, kind: str, message: str, job_id: str | None = None) -> bool:
        header = {"type": "error", "kind": kind, "message": message}
        if job_id is not None:
            header["id"] = job_id
        return self.send(header)

    def job_note(self, job: Job, force: bool = False) -> None:
        """A progress frame for ``job`` unless it already finished (its result must be the last word)."""
        with self.send_lock:
            if job.finished or (not force and time.monotonic() - self.last_send < HEARTBEAT_S):
                return
            self._send_locked({"type": "progress", "id": job.id, "fraction": round(job.fraction, 4),
                               "message": job.message})

    def finish(self, job: Job, header: dict, blobs: dict | None = None) -> None:
        """Send the job's final answer; no progress frame of it can follow."""
        with self.send_lock:
            job.finished = True
            if self.job is job:
                self.job = None
            self._send_locked(dict(header, id=job.id), blobs)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def hang_up(self) -> None:
        """End the connection from another thread: its own thread wakes up (the socket reads as closed) and
        closes it."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Server:
    """Serves one engine to many connections, one job at a time.

    Args:
        engine: an ``engine.pipeline.Engine`` (or anything with its detect/text_mask/inpaint/clean methods).
        cfg: the config folder (token, endpoint file).
        idle_timeout: seconds without work after which ``serve_forever`` returns; 0 = never.
        tcp_port: None for a unix socket, else the loopback TCP port (0 = any free port).
    """

    def __init__(self, engine: Any, cfg: Path, idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
                 tcp_port: int | None = None, models: dict | None = None,
                 max_payload: int = MAX_PAYLOAD_BYTES, auth_timeout: float = AUTH_TIMEOUT_S,
                 request_timeout: float = IO_TIMEOUT_S):
        self.engine = engine
        self.cfg = cfg
        self.idle_timeout = idle_timeout
        self.tcp_port = tcp_port
        self.models = models or {}
        self.max_payload = max_payload
        self.auth_timeout = auth_timeout        # the first header (with the token) must arrive within this
        self.request_timeout = request_timeout  # a request must arrive within this + its size at 4 MiB/s
        self.token = secrets.token_hex(32)
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.current: Job | None = None
        self.stopping = threading.Event()
        self.stop_reason = ""
        self.started = time.time()
        self.last_activity = time.monotonic()
        self.jobs_done = 0
        self.listener: socket.socket | None = None
        self.address: Any = None
        self.transport = ""
        self._connections: set[Connection] = set()
        self._conn_lock = threading.Lock()
        self._owned_files: list[Path] = []

    # -- setting up

    def bind(self) -> None:
        """Write the token, listen, and write the endpoint file (in this order: a client that finds the
        endpoint file finds the token and a listening socket)."""
        token_path = self.cfg / TOKEN_FILE
        _write_private(token_path, self.token + "\n")
        self._owned_files.append(token_path)
        listener = None
        if self.tcp_port is None and hasattr(socket, "AF_UNIX"):
            try:
                listener = self._bind_unix()
            except (OSError, EngineError) as e:
                # e.g. a config folder on a file system without sockets (a Windows drive under WSL)
                log.warning("cannot make a unix socket (%s); listening on loopback TCP instead", e)
        if listener is None:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if sys.platform != "win32":
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # loopback only, always: this port must never be reachable from another machine
            listener.bind(("127.0.0.1", self.tcp_port or 0))
            self.transport, self.address = "tcp", ["127.0.0.1", listener.getsockname()[1]]
        listener.listen(128)
        listener.settimeout(0.25)
        self.listener = listener
        endpoint = {
            "pid": os.getpid(), "transport": self.transport, "address": self.address,
            "protocol": PROTOCOL_VERSION, "engine_version": __version__, "started": self.started,
        }
        endpoint_path = self.cfg / ENDPOINT_FILE
        _write_private(endpoint_path, json.dumps(endpoint, indent=1) + "\n")
        self._owned_files.append(endpoint_path)

    def _bind_unix(self) -> socket.socket:
        path = socket_path(self.cfg)
        try:
            path.unlink()  # we hold the lock, so a socket file here is left over from a crash
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket file is born 0600
        try:
            listener.bind(str(path))
        except OSError:
            listener.close()
            raise
        finally:
            os.umask(old_umask)
        self._owned_files.append(path)
        self.transport, self.address = "unix", str(path)
        return listener

    # -- life cycle

    def request_stop(self, reason: str) -> None:
        """Stop soon (thread- and signal-safe): the running job is cancelled, queued ones are refused."""
        if not self.stopping.is_set():
            self.stop_reason = reason
            self.stopping.set()
        job = self.current
        if job is not None:
            job.cancel_kind, job.cancel_message = "stopped", self._stopped_message()
            job.cancel.set()

    def _stopped_message(self) -> str:
        return f"the Kesu engine server stopped ({self.stop_reason}); try again to start a new one"

    def serve_forever(self) -> str:
        """Accept connections and run jobs until stopped or idle. Returns why it stopped."""
        if self.listener is None:
            self.bind()
        accept_thread = threading.Thread(target=self._accept_loop, name="kesu-accept", daemon=True)
        accept_thread.start()
        log.info("listening on %s %s (protocol %d, idle timeout %s s)", self.transport, self.address,
                 PROTOCOL_VERSION, self.idle_timeout or "none")
        try:
            while not self.stopping.is_set():
                try:
                    job = self.jobs.get(timeout=0.2)
                except queue.Empty:
                    idle = time.monotonic() - self.last_activity
                    if self.idle_timeout and idle > self.idle_timeout:
                        self.request_stop(f"idle for {self.idle_timeout:g} s")
                    continue
                self._run_job(job)
        finally:
            self._shutdown(accept_thread)
        log.info("stopped: %s", self.stop_reason)
        return self.stop_reason

    def _shutdown(self, accept_thread: threading.Thread) -> None:
        self.stopping.set()
        if self.listener is not None:
            self.listener.close()
        accept_thread.join(timeout=2)
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                break
            job.conn.finish(job, {"type": "error", "kind": "stopped", "message": self._stopped_message()})
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            conn.close()
        for path in self._owned_files:
            try:
                path.unlink()
            except OSError:
                pass

    # -- connections

    def _accept_loop(self) -> None:
        assert self.listener is not None
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break  # the listener was closed
            conn = Connection(sock, self)
            with self._conn_lock:
                pending = [c for c in self._connections if not c.authenticated]
                if len(pending) >= MAX_PENDING:
                    # a crowd of connections that never show the token must not lock real clients out
                    oldest = min(pending, key=lambda c: c.opened)
                    oldest.hang_up()
                    self._connections.discard(oldest)
                    log.warning("dropped the oldest of %d connections that sent no token", len(pending))
                self._connections.add(conn)
            if sock.family != getattr(socket, "AF_UNIX", None):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(target=self._serve_connection, args=(conn,), name="kesu-conn",
                                      daemon=True)
            thread.start()

    def _check_request(self, conn: Connection, header: dict) -> None:
        """Token first (in constant time), then the protocol version; runs before the payload is read.

        A connection's first valid token takes one of the MAX_CONNECTIONS slots of authenticated clients.
        """
        spec = header.get("blobs", [])
        conn.unread_payload = sum(size for _, size in spec)
        token = header.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.token.encode()):
            raise ProtocolError("wrong or missing token: the engine server was restarted or belongs to "
                                "another config folder; reconnect (the token is in the config folder)",
                                "auth")
        if not conn.authenticated:
            with self._conn_lock:
                if sum(c.authenticated for c in self._connections) >= MAX_CONNECTIONS:
                    raise ProtocolError(f"the engine server already serves {MAX_CONNECTIONS} connections; "
                                        "close some and try again", "busy")
                conn.authenticated = True
        # "stop" is understood by every version, so a newer plug-in can replace an older server
        if header.get("v") != PROTOCOL_VERSION and header.get("type") != "stop":
            raise ProtocolError(
                f"the plug-in speaks Kesu protocol {header.get('v')!r} but this engine speaks "
                f"{PROTOCOL_VERSION}; re-run the Kesu installer so the plug-ins and the engine match",
                "version")

    def _receive(self, conn: Connection) -> tuple[dict, dict]:
        """The next request of ``conn``. Until it has shown the token, the header (token included) must be
        complete within ``auth_timeout`` of connecting; every request must arrive whole within
        ``request_timeout`` plus its size at protocol.MIN_TRANSFER_RATE. Raises ProtocolError."""
        header_timeout = None
        if not conn.authenticated:
            header_timeout = max(0.0, conn.opened + self.auth_timeout - time.monotonic())
        return recv_message(conn.sock, timeout=self.request_timeout, max_payload=self.max_payload,
                            check_header=lambda h: self._check_request(conn, h),
                            header_timeout=header_timeout, whole_timeout=True)

    def _serve_connection(self, conn: Connection) -> None:
        try:
            while not self.stopping.is_set() and not conn.closed:
                if conn.authenticated:
                    # an authenticated client may stay connected between requests
                    try:
                        readable, _, _ = select.select([conn.sock], [], [], HEARTBEAT_S / 2)
                    except (OSError, ValueError):
                        break
                    if not readable:
                        job = conn.job
                        if job is not None:
                            conn.job_note(job)
                        continue
                try:
                    header, blobs = self._receive(conn)
                except ProtocolError as e:
                    if e.kind == "timeout":
                        log.info("dropped a connection: its request did not arrive in time")
                    elif e.kind not in ("closed", "connection"):
                        log.warning("refused a message: %s: %s", e.kind, e)
                        if e.kind in ("auth", "version", "busy"):
                            self._drain(conn, conn.unread_payload)
                        conn.send_error(e.kind, str(e))
                    break  # out of step with the stream (or gone): drop this client, keep serving
                self._handle(conn, header, blobs)
        finally:
            job = conn.job
            if job is not None and not job.finished:
                job.cancel.set()  # the client went away: do not compute for nobody
            conn.close()
            with self._conn_lock:
                self._connections.discard(conn)

    @staticmethod
    def _drain(conn: Connection, n: int, limit_s: float = 5.0) -> None:
        """Read and drop ``n`` bytes, so the client is not reset before it reads our refusal."""
        deadline = time.monotonic() + limit_s
        chunk = bytearray(1 << 20)
        try:
            conn.sock.settimeout(1.0)
            while n > 0 and time.monotonic() < deadline:
                k = conn.sock.recv_into(chunk, min(n, len(chunk)))
                if k == 0:
                    return
                n -= k
        except OSError:
            pass

    def _handle(self, conn: Connection, header: dict, blobs: dict) -> None:
        kind = header.get("type")
        if kind != "status":
            self.last_activity = time.monotonic()
        if kind in ("ping", "status"):
            conn.send(self.info(type="pong"))
        elif kind == "stop":
            conn.send({"type": "stopping"})
            self.request_stop("asked by a client")
        elif kind == "cancel":
            job = conn.job
            if job is not None and header.get("id") in (None, job.id):
                job.cancel_kind, job.cancel_message = "cancelled", "cancelled"
                job.cancel.set()
        elif kind in OPS:
            if conn.job is not None:
                conn.send_error("protocol", "one job at a time per connection: wait for the answer, or open "
                                "another connection", header.get("id"))
                return
            try:
                job = self._make_job(conn, header, blobs)
            except InputError as e:
                job_id = header.get("id") if isinstance(header.get("id"), str) else None
                conn.send_error("input", str(e), job_id)
                return
            ahead = self.jobs.qsize() + (1 if self.current is not None else 0)
            conn.job = job
            if ahead:
                job.message = f"Waiting for {ahead} other job{'s' if ahead > 1 else ''}"
                conn.job_note(job, force=True)
            self.jobs.put(job)
        else:
            conn.send_error("protocol", f"unknown request type {kind!r}; this engine understands "
                            f"ping, status, stop, cancel, {', '.join(OPS)}")

    def _make_job(self, conn: Connection, header: dict, blobs: dict) -> Job:
        """Check a job request (before it waits in the queue) and build the Job. Raises InputError."""
        job_id = header.get("id") if isinstance(header.get("id"), str) else uuid.uuid4().hex
        width, height, channels = header.get("width"), header.get("height"), header.get("channels")
        if not (type(width) is int and type(height) is int and width > 0 and height > 0):
            raise InputError(f"the image size must be positive integers, got {width!r}x{height!r}")
        check_page_size(width, height, "this image", "work on a part of it")
        if not isinstance(channels, str) or channels not in CHANNELS:
            raise InputError(f"unknown channel order {channels!r}; valid: {', '.join(CHANNELS)}")
        pixels = blobs.get("pixels")
        if pixels is None or len(pixels) != width * height * CHANNELS[channels]:
            got = 0 if pixels is None else len(pixels)
            raise InputError(f"{got} bytes of pixels for a {width}x{height} {channels} image, "
                             f"expected {width * height * CHANNELS[channels]}")
        mask = blobs.get("mask")
        if mask is not None and len(mask) != width * height:
            raise InputError(f"{len(mask)} bytes of mask for a {width}x{height} image, "
                             f"expected {width * height}")
        if header["type"] == "inpaint" and mask is None:
            raise InputError("inpaint needs a mask (select the area to fill first)")
        options = header.get("options") or {}
        if not isinstance(options, dict):
            raise InputError("options must be a JSON object, e.g. {\"threshold\": 0.5}")
        if "text_kinds" in options:
            raise InputError(f"say which text to work on in the job's \"text\" field ({', '.join(TEXT_CHOICES)}), "
                             "not in its options")
        text = header.get("text", DEFAULT_TEXT)
        if text not in TEXT_CHOICES:
            raise InputError(f"unknown kind of text {text!r}; valid: {', '.join(TEXT_CHOICES)}")
        kind_masks = header.get("kind_masks", False)
        if not isinstance(kind_masks, bool):
            raise InputError(f"kind_masks must be true or false, got {kind_masks!r}")
        return Job(id=job_id, op=header["type"], width=width, height=height, channels=channels,
                   options=options, pixels=pixels, mask=mask, conn=conn, text=text, kind_masks=kind_masks)

    def info(self, **extra: Any) -> dict:
        """What ping and ``kesu serve --status`` show."""
        current = self.current
        return dict(
            extra,
            protocol=PROTOCOL_VERSION, engine_version=__version__, models=self.models, pid=os.getpid(),
            transport=self.transport, address=self.address, uptime_s=round(time.time() - self.started, 1),
            busy=current is not None, queued=self.jobs.qsize(), jobs_done=self.jobs_done,
            idle_s=round(time.monotonic() - self.last_activity, 1), idle_timeout_s=self.idle_timeout,
        )

    # -- jobs

    def _run_job(self, job: Job) -> None:
        conn = job.conn
        if job.cancel.is_set() or conn.closed:
            conn.finish(job, {"type": "error", "kind": job.cancel_kind, "message": job.cancel_message})
            return
        self.current = job
        if self.stopping.is_set():  # a stop raced with the queue
            self.request_stop(self.stop_reason)
        started = time.monotonic()
        try:
            header, out_blobs = self._execute(job)
            header["stats"]["queue_s"] = round(started - job.received, 4)
            header["stats"]["server_s"] = round(time.monotonic() - job.received, 4)
            conn.finish(job, header, out_blobs)
            log.info("%s %dx%d %s: done in %.2f s", job.op, job.width, job.height, job.channels,
                     time.monotonic() - started)
        except CancelledError:
            log.info("%s %dx%d: %s", job.op, job.width, job.height, job.cancel_message)
            conn.finish(job, {"type": "error", "kind": job.cancel_kind, "message": job.cancel_message})
        except EngineError as e:
            log.info("%s %dx%d refused: %s: %s", job.op, job.width, job.height, e.kind, e)
            conn.finish(job, {"type": "error", "kind": e.kind, "message": str(e)})
        except MemoryError:
            log.error("out of memory on %s %dx%d", job.op, job.width, job.height)
            conn.finish(job, {"type": "error", "kind": "engine", "message": (
                f"the engine ran out of memory on this {job.width}x{job.height} image; close other programs "
                "or work on a part of the image")})
        except Exception as e:  # a bug: report it, keep serving
            log.error("%s failed:\n%s", job.op, traceback.format_exc())
            conn.finish(job, {"type": "error", "kind": "engine", "message": (
                f"the engine failed ({type(e).__name__}: {e}); the details are in the server log in "
                f"{self.cfg}. Please report it")})
        finally:
            self.current = None
            self.jobs_done += 1
            self.last_activity = time.monotonic()
            job.pixels = job.mask = None  # type: ignore[assignment]  # free the request's memory now
            if self.jobs.empty():
                release_freed_memory()  # an idle server should not sit on the last page's buffers

    def _execute(self, job: Job) -> tuple[dict, dict]:
        """Run one job on the engine. Returns the result header and blobs."""
        from engine.pipeline import TEXT_CHOICES as KINDS_OF_CHOICE
        from engine.pipeline import TEXT_KINDS, CleanOptions, union

        conn = job.conn
        last = [0.0, ""]

        def progress(stage: str, fraction: float) -> None:
            if job.cancel.is_set():
                raise CancelledError(job.cancel_message)
            job.fraction = max(0.0, min(1.0, float(fraction)))
            job.message = STAGE_MESSAGES.get(stage, stage)
            now = time.monotonic()
            # at most ~20 notes a second; a new stage is always told
            if job.message != last[1] or now - last[0] >= 0.05:
                last[0], last[1] = now, job.message
                conn.job_note(job, force=True)

        def scaled(lo: float, hi: float):
            return lambda stage, f: progress(stage, lo + (hi - lo) * f)

        t0 = time.monotonic()
        options = CleanOptions.from_dict(dict(job.options, text_kinds=KINDS_OF_CHOICE[job.text]))
        rgb, alpha = pixels_to_rgb(job.pixels, job.width, job.height, job.channels)
        # fully transparent pixels are never text and never change
        visible = None if alpha is None else alpha > 0
        hole = None
        if job.mask is not None:
            hole = np.frombuffer(job.mask, dtype=np.uint8).reshape(rgb.shape[:2]) != 0
        job.message = "Starting"
        conn.job_note(job, force=True)
        t1 = time.monotonic()
        mask_out = None
        layout = None
        kinds: dict[str, np.ndarray] = {}

        def detect(stage_progress) -> np.ndarray:
            """The mask of the kinds asked for; ``kinds`` gets each kind's own when the job asks for them."""
            found = self.engine.kind_masks(rgb, options, progress=stage_progress,
                                           kinds=TEXT_KINDS if job.kind_masks else None)
            if visible is not None:
                for mask in found.values():
                    mask &= visible
            if job.kind_masks:
                kinds.update(found)
            return union([found[k] for k in options.text_kinds], rgb.shape[:2])

        if job.op == "detect":
            mask_out = detect(progress)
        elif job.op == "inpaint":
            assert hole is not None
            if visible is not None:
                hole &= visible
            out = self.engine.inpaint(rgb, hole, options, progress=progress)
            region = hole
        else:  # clean
            if hole is None:
                # detect here rather than inside clean() so transparent pixels leave the mask before it grows
                hole = detect(scaled(0.0, 0.6))
            if visible is not None:
                hole &= visible
            result = self.engine.clean(rgb, options, text_mask=hole, progress=progress)
            out, region, mask_out = result.image, result.grown_mask, result.text_mask
        t2 = time.monotonic()
        blobs: dict[str, Any] = {}
        if mask_out is not None:
            blobs["mask"] = mask_out.view(np.uint8) * np.uint8(255)
        choice_of_kind = {ks[0]: c for c, ks in KINDS_OF_CHOICE.items() if len(ks) == 1}  # lettering: dialogue
        for kind, mask in kinds.items():
            blobs[KIND_MASK_BLOBS[choice_of_kind[kind]]] = mask.view(np.uint8) * np.uint8(255)
        if job.op != "detect":
            blobs["pixels"], layout = result_pixels(out, region, alpha, job.channels)
        progress("done", 1.0)
        t3 = time.monotonic()
        stats = {"op": job.op, "engine_s": round(t2 - t1, 4), "convert_s": round((t1 - t0) + (t3 - t2), 4)}
        header = {"type": "result", "op": job.op, "width": job.width, "height": job.height,
                  "channels": layout, "text": job.text, "stats": stats}
        return header, blobs


# ----------------------------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kesu serve",
        description="Run the Kesu engine server the Krita and GIMP plug-ins talk to (they start it "
                    "themselves when needed). Listens on a unix socket, or on 127.0.0.1 with --tcp; never on "
                    "a network.",
    )
    p.add_argument("--status", action="store_true", help="say whether a server is running, and its state")
    p.add_argument("--stop", action="store_true", help="stop the running server")
    p.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT_S, metavar="SECONDS",
                   help=f"exit after this long without work (default {DEFAULT_IDLE_TIMEOUT_S:g}; 0 = never)")
    p.add_argument("--weights-dir", type=Path, default=None,
                   help="weights folder (default: the shipped weights)")
    p.add_argument("--tcp", nargs="?", type=int, const=0, default=None, metavar="PORT",
                   help="listen on 127.0.0.1:PORT (default: a free port) instead of a unix socket")
    p.add_argument("--config-dir", type=Path, default=None,
                   help="folder of the token, endpoint and log files (default: the per-user Kesu config "
                        "folder)")
    return p


def serve_main(argv: list[str]) -> int:
    """``kesu serve``: run the server in the foreground (or --status / --stop). Returns the exit code."""
    args = _parser().parse_args(argv)
    cfg = ensure_config_dir(args.config_dir if args.config_dir else config_dir())
    if args.status:
        return _status(cfg)
    if args.stop:
        return _stop(cfg)
    if args.idle_timeout < 0:
        print("kesu serve: --idle-timeout must be 0 (never) or more seconds", file=sys.stderr)
        return 2
    if args.tcp is not None and not 0 <= args.tcp <= 65535:
        print(f"kesu serve: --tcp port must be 0..65535, got {args.tcp}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s kesu-server[%(process)d] %(levelname)s %(message)s")

    lock = ServerLock(cfg)
    if not lock.acquire():
        return _already_running(cfg)
    try:
        t0 = time.monotonic()
        try:
            from engine.pipeline import Engine
            from engine.weights import installed_roles

            installed = installed_roles(args.weights_dir)
            # load what is installed now; a job that needs a missing model gets a clear "weights" error then
            roles = tuple(role for role in ("textseg", "inpaint") if role in installed)
            roles = roles or ("textseg", "inpaint")  # nothing installed: let load() say what is missing
            engine = Engine.load(args.weights_dir, roles=roles)
            models = {role: entry.get("name") for role, entry in installed.items()}
        except EngineError as e:
            print(f"kesu serve: error: {e}", file=sys.stderr)
            return 1
        log.info("models loaded in %.2f s from %s: %s", time.monotonic() - t0,
                 args.weights_dir or "the shipped weights", models)
        server = Server(engine, cfg, idle_timeout=args.idle_timeout, tcp_port=args.tcp, models=models)
        try:
            server.bind()
        except OSError as e:
            where = f"TCP port {args.tcp}" if args.tcp else "a socket"
            print(f"kesu serve: error: cannot listen on {where} ({e}); pick another port or check {cfg}",
                  file=sys.stderr)
            return 1
        _install_signal_handlers(server)
        server.serve_forever()
        return 0
    finally:
        lock.release()


def _install_signal_handlers(server: Server) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGBREAK"):
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, lambda signum, _frame: server.request_stop(f"signal {signum}"))


def _already_running(cfg: Path) -> int:
    # another server holds the lock; it may still be loading its models
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with Client.connect(cfg) as client:
                info = client.status()
            print(f"a Kesu engine server is already running (pid {info.get('pid')}, {info.get('transport')} "
                  f"{info.get('address')}); not starting another")
            return 0
        except ProtocolError:
            time.sleep(0.1)
    print(f"another Kesu engine server is starting for {cfg}; not starting a second one")
    return 0


def _status(cfg: Path) -> int:
    try:
        with Client.connect(cfg) as client:
            info = client.status()
    except ProtocolError as e:
        if ServerLock.is_held(cfg):
            endpoint = read_endpoint(cfg)
            if endpoint is None:  # server.json is written once the models are loaded and the socket listens
                print(f"a Kesu engine server holds {cfg / LOCK_FILE} but does not listen yet ({e}); it may "
                      "be loading its models. `kesu serve --stop` ends it")
            else:
                print(f"a Kesu engine server is running (pid {endpoint.get('pid')}, {endpoint.get('transport')} "
                      f"{endpoint.get('address')}) but does not answer ({e}). `kesu serve --stop` ends it; see "
                      f"its log {cfg / 'server.log'}")
            return 1
        print(f"no Kesu engine server is running for {cfg}")
        return 3
    models = ", ".join(f"{role}={name}" for role, name in (info.get("models") or {}).items()) or "none"
    idle_timeout = info.get("idle_timeout_s")
    state = "busy" if info.get("busy") else "idle"
    exits = f"exits after {idle_timeout:g} s idle" if idle_timeout else "never exits by itself"
    print(f"Kesu engine server running: pid {info.get('pid')}, {info.get('transport')} "
          f"{info.get('address')}\n"
          f"  protocol {info.get('protocol')}, engine {info.get('engine_version')}, models: {models}\n"
          f"  up {info.get('uptime_s')} s, {info.get('jobs_done')} jobs done, {state} "
          f"({info.get('queued')} queued), idle for {info.get('idle_s')} s ({exits})")
    return 0


def _stop(cfg: Path, wait_s: float = 15.0) -> int:
    endpoint = read_endpoint(cfg)
    try:
        with Client.connect(cfg) as client:
            client.stop()
    except ProtocolError as e:
        if not ServerLock.is_held(cfg):
            print(f"no Kesu engine server is running for {cfg}")
            return 0
        pid = endpoint.get("pid") if endpoint else None
        if not isinstance(pid, int):
            print(f"a Kesu engine server holds {cfg / LOCK_FILE} but does not answer ({e}) and left no pid; "
                  "end it with your system's process manager", file=sys.stderr)
            return 1
        # the lock is held, so this pid is a live server (not a recycled pid of a crashed one)
        print(f"the server does not answer ({e}); sending it SIGTERM (pid {pid})")
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError as kill_error:
            print(f"cannot signal pid {pid}: {kill_error}", file=sys.stderr)
            return 1
    deadline = time.monotonic() + wait_s
    while ServerLock.is_held(cfg):
        if time.monotonic() > deadline:
            print(f"the Kesu engine server did not stop within {wait_s:g} s", file=sys.stderr)
            return 1
        time.sleep(0.05)
    print("Kesu engine server stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(serve_main(sys.argv[1:]))
