"""Real-host test harness: run GIMP 3 and Krita inside the cached Debian chroots, read what they saved.

The chroots (``chroots.json``: trixie with GIMP 3.0 + Krita 5.2, sid with GIMP 3.2 + Krita 6.0, krita53 with
Krita 5.3) are built by ``tests/hosts/setup_hosts.sh`` (root, a few minutes once, then cached at
``$KESU_HOSTROOT`` or ``/var/cache/kesu/hostroot``, the others beside it). The session fixture ``host`` is
parametrised over the host versions a test's marker names (``@pytest.mark.host("krita")``: one run per Krita,
ids like ``[krita-6.0]``). Host paths the tests need (the checkout, the engine's
virtual environment and the interpreter it was made from, pytest's temporary folders) are bind-mounted inside
at the *same* paths, so a path means the same file inside and outside the chroot.

Typical use in a plug-in's real-host test::

    from tests.hosts import harness
    from tests.hosts.harness import host  # noqa: F401  (the session fixture)

    @pytest.mark.host("krita")
    def test_detect(host, tmp_path):
        home = host.new_home(tmp_path)
        host.install_plugins(home, "krita")
        with host.xvfb() as display:
            r = host.run(["krita", "--nosplash"], home=home, env={"DISPLAY": display}, timeout=180)
        kra = harness.read_kra(tmp_path / "out.kra")

Skip policy: the fixture skips (with the reason) when not root / no chroot; with ``KESU_REQUIRE_HOSTS=1`` it
fails instead, so CI can never pass by skipping. See tests/hosts/README.md.

Readers (stdlib only): :func:`read_png` / :func:`write_png`, :func:`read_kra` (maindoc.xml layer tree,
mergedimage.png, layer pixels), :func:`read_xcf` (layer names/order/offsets, 8-bit pixels).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHROOT_SH = HERE / "chroot.sh"
SETUP_SH = HERE / "setup_hosts.sh"
CHROOTS_JSON = HERE / "chroots.json"
INSTALLER = REPO / "install" / "install.py"

# PATH inside the chroot; its own python3 (3.13) runs the installer the way a user's system Python would.
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REQUIRE_ENV = "KESU_REQUIRE_HOSTS"


def hostroot() -> Path:
    """The trixie chroot's directory: ``$KESU_HOSTROOT`` or ``/var/cache/kesu/hostroot`` (the others sit beside
    it with a suffix, see ``chroots.json``)."""
    return Path(os.environ.get("KESU_HOSTROOT") or "/var/cache/kesu/hostroot")


def chroots() -> dict[str, dict]:
    """The chroots of ``chroots.json`` by name (trixie, sid, krita53)."""
    return {k: v for k, v in json.loads(CHROOTS_JSON.read_text()).items() if not k.startswith("_")}


def chroot_root(name: str) -> Path:
    """The directory of chroot ``name``."""
    return Path(str(hostroot()) + chroots()[name]["root"])


@dataclass(frozen=True)
class HostApp:
    """One host application version in one chroot: what a parametrised ``host`` fixture runs."""

    app: str  # "krita" or "gimp"
    version: str  # "6.0", "3.2", ...
    chroot: str  # the chroots.json name
    qt: str  # the Qt binding of the chroot's Krita ("PyQt5" / "PyQt6")

    @property
    def id(self) -> str:
        """The test id part, e.g. ``krita-6.0``."""
        return f"{self.app}-{self.version}"


def host_apps(app: str | None = None) -> list[HostApp]:
    """Every host version of ``app`` ("krita", "gimp"; None: all) in the chroots, in chroots.json order."""
    out = []
    for name, c in chroots().items():
        for a, v in c["hosts"].items():
            if app is None or a == app:
                out.append(HostApp(a, v, name, c.get("qt", "PyQt5")))
    return out


def parametrize_host(metafunc: pytest.Metafunc) -> None:
    """``pytest_generate_tests`` helper: one run of a test using ``host`` per version of the application its
    ``host`` marker names (``@pytest.mark.host("gimp")``), with ids like ``gimp-3.2``; ``min_version="3.2"``
    keeps only the versions from that one on."""
    marker = metafunc.definition.get_closest_marker("host")
    if marker is None or not marker.args:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid} uses the host fixture: mark it @pytest.mark.host('krita') or "
            "@pytest.mark.host('gimp') (the host versions it runs on)"
        )
    params = host_apps(marker.args[0])
    if "min_version" in marker.kwargs:  # e.g. a GIMP 3.0 -> 3.x profile migration only exists from 3.2 on

        def key(v: str) -> tuple[int, ...]:
            return tuple(int(x) for x in v.split("."))

        params = [p for p in params if key(p.version) >= key(marker.kwargs["min_version"])]
    metafunc.parametrize("host", params, indirect=True, ids=[p.id for p in params], scope="session")


def skip_reason(root: Path | None = None) -> str | None:
    """Why real-host tests cannot run in chroot ``root`` (default: trixie) here (a sentence saying what to do),
    or None when they can."""
    if not sys.platform.startswith("linux"):
        return f"real-host tests need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "real-host tests need root (mount + chroot); run pytest as root"
    for tool in ("chroot", "mount", "umount", "findmnt", "timeout"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed on this machine"
    r = subprocess.run(
        ["bash", str(CHROOT_SH), "status"],
        capture_output=True,
        text=True,
        env={**os.environ, "KESU_HOSTROOT": str(root or hostroot())},
    )
    if r.returncode != 0:
        return (r.stdout + r.stderr).strip() or "the host chroot is not usable"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip the current test saying why, or fail it when ``KESU_REQUIRE_HOSTS=1`` (CI must not skip)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"real-host tests are required ({REQUIRE_ENV}=1) but cannot run: {reason}", pytrace=False)
    pytest.skip(f"real-host test skipped: {reason}")


def engine_python() -> Path | None:
    """The engine interpreter the real-host tests should hand to the plug-ins.

    ``$KESU_ENGINE_PYTHON`` if set, else the checkout's ``.venv/bin/python`` (made by ``install/dev.sh``),
    else None. The path is NOT resolved: a venv's python is a symlink and must be called through the venv.
    """
    env = os.environ.get("KESU_ENGINE_PYTHON")
    if env:
        return Path(env)
    venv = REPO / ".venv" / "bin" / "python"
    return venv if venv.exists() else None


def python_binds(python: Path) -> list[Path]:
    """Host folders a Python interpreter needs inside the chroot: its prefix (venv) and base prefix."""
    out = subprocess.run(
        [str(python), "-c", "import sys; print(sys.prefix); print(sys.base_prefix)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\n")
    return [Path(p) for p in out if p.strip()]


@dataclass
class RunResult:
    """Outcome of :meth:`HostChroot.run`. ``seconds`` is wall time; ``timed_out`` when the timeout hit."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool

    @property
    def output(self) -> str:
        """stdout and stderr together (for assertion messages)."""
        return self.stdout + self.stderr

    def check(self) -> RunResult:
        """Raise AssertionError with the command's output unless it exited 0."""
        if self.returncode != 0:
            why = "timed out" if self.timed_out else f"exited {self.returncode}"
            raise AssertionError(f"{self.argv[0]} {why} after {self.seconds:.1f}s:\n{self.output[-6000:]}")
        return self


def _accepts(socket_path: Path, timeout: float = 5.0) -> bool:
    """Whether a unix socket accepts a connection (an X server's, seen from outside the chroot)."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            try:
                s.connect(str(socket_path))
                return True
            except OSError:
                if time.monotonic() > deadline:
                    return False
        time.sleep(0.1)


class HostChroot:
    """Mounted chroot for one test session (a context manager).

    Several pytest processes may use the chroot at the same time: each holds a shared lock on
    ``<root>.lock`` while mounted; ``setup_hosts.sh`` takes it exclusively. Mount and unmount steps are
    serialised by ``<root>.mountlock``; the last session to leave unmounts everything, also after a failure.
    """

    def __init__(
        self,
        binds: Sequence[os.PathLike | str] = (),
        root: Path | None = None,
        lock_timeout: float = 1200.0,
        app: HostApp | None = None,
    ) -> None:
        self.app = app
        self.root = Path(root) if root else chroot_root(app.chroot) if app else hostroot()
        self.binds = [Path(b) for b in binds]
        self.lock_timeout = lock_timeout
        self._lock_fd: int | None = None
        # the X servers of xvfb() while they are in use: DISPLAY -> (process, log file)
        self._displays: dict[str, tuple[subprocess.Popen, Path]] = {}

    # ---------------------------------------------------------------- which host
    @property
    def version(self) -> str:
        """The host application's version as the tests name it ("5.2", "6.0", "3.0", "3.2")."""
        if self.app is None:
            raise RuntimeError("this HostChroot was made without a host application (app=None)")
        return self.app.version

    @property
    def gimp_console(self) -> str:
        """GIMP's headless binary in this chroot, e.g. ``gimp-console-3.2``."""
        return f"gimp-console-{self.version}"

    @property
    def gimp_gui(self) -> str:
        """GIMP's full (GTK) binary in this chroot, e.g. ``gimp-3.2``."""
        return f"gimp-{self.version}"

    def gimp_profile(self, home: os.PathLike | str) -> Path:
        """GIMP's profile folder in ``home`` for this version (``~/.config/GIMP/3.2``)."""
        return Path(home) / ".config" / "GIMP" / self.version

    @property
    def qt(self) -> str:
        """The Qt binding Krita's Python plug-ins use in this chroot ("PyQt5" or "PyQt6")."""
        return self.app.qt if self.app else "PyQt5"

    # ---------------------------------------------------------------- mounting
    def _sh(self, *args: str) -> None:
        r = subprocess.run(
            ["bash", str(CHROOT_SH), *args],
            capture_output=True,
            text=True,
            env={**os.environ, "KESU_HOSTROOT": str(self.root)},
        )
        if r.returncode != 0:
            raise RuntimeError(f"chroot.sh {' '.join(args)} failed: {r.stderr.strip()}")

    @contextlib.contextmanager
    def _mountlock(self) -> Iterator[None]:
        fd = os.open(f"{self.root}.mountlock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def __enter__(self) -> HostChroot:
        fd = os.open(f"{self.root}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise RuntimeError(
                        f"{self.root} is locked by setup_hosts.sh for more than "
                        f"{self.lock_timeout:.0f}s; is a build stuck?"
                    ) from None
                time.sleep(1.0)
        self._lock_fd = fd
        try:
            with self._mountlock():
                self._sh("mount", *[str(b) for b in self.binds])
        except BaseException:
            self.close()
            raise
        return self

    def bind(self, path: os.PathLike | str) -> None:
        """Make host ``path`` visible inside at the same path (kept until the last session ends)."""
        with self._mountlock():
            self._sh("mount", str(path))

    def close(self) -> None:
        """Release this session; unmount everything when no other session is using the chroot."""
        if self._lock_fd is None:
            return
        with self._mountlock():
            fd, self._lock_fd = self._lock_fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return  # another session still uses the mounts; it will unmount
                self._sh("umount")
            finally:
                os.close(fd)

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- running
    def new_home(self, parent: os.PathLike | str) -> Path:
        """Create an empty HOME folder under ``parent`` (must be bind-mounted, e.g. a pytest tmp_path)."""
        home = Path(parent) / "home"
        home.mkdir(parents=True, exist_ok=True)
        return home

    def run(
        self,
        argv: Sequence[str],
        home: os.PathLike | str = "/root",
        env: dict[str, str] | None = None,
        timeout: float = 300.0,
        cwd: os.PathLike | str | None = None,
        stdin: str | None = None,
    ) -> RunResult:
        """Run ``argv`` inside the chroot as root with a clean environment.

        Environment: HOME, PATH, LANG=C.UTF-8, XDG_RUNTIME_DIR (a 0700 folder inside), plus ``env``.
        ``timeout`` (s) is enforced inside with ``timeout -k 10`` (exit 124) and again from outside, because
        a Krita whose plug-in failed to load never quits by itself.

        A program that could not reach the X server of :meth:`xvfb` within seconds of starting is run once more
        after the server is checked again (seen once in a CI run on a loaded machine, right after the server had
        accepted a connection); what the check found heads the second run's stderr, so a real failure still
        shows why.
        """
        result = self._run_once(argv, home, env, timeout, cwd, stdin)
        display = (env or {}).get("DISPLAY", "")
        if result.returncode != 0 and result.seconds < 10 and "could not connect to display" in result.output \
                and display in self._displays:
            proc, log_path = self._displays[display]
            time.sleep(2)
            found = (f"[harness] {argv[0]} could not connect to {display} after {result.seconds:.1f}s; the Xvfb is "
                     f"{'running' if proc.poll() is None else f'gone (exit {proc.returncode})'}, its socket "
                     f"{'accepts' if _accepts(self._x_socket(display[1:]), 2.0) else 'refuses'} connections; its log: "
                     f"{self._tail(log_path)}; running it once more\n")
            again = self._run_once(argv, home, env, timeout, cwd, stdin)
            return dataclasses.replace(again, stderr=found + again.stderr)
        return result

    def _run_once(self, argv, home, env, timeout, cwd, stdin) -> RunResult:
        runtime = self.root / "tmp" / "kesu-xdg-runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        full_env = {
            "HOME": str(home),
            "PATH": CHROOT_PATH,
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "XDG_RUNTIME_DIR": "/tmp/kesu-xdg-runtime",
            **(env or {}),
        }
        inner = ["/usr/bin/env", "-i", *[f"{k}={v}" for k, v in full_env.items()]]
        shell = ["chroot", str(self.root), *inner, "timeout", "-k", "10", str(int(max(1, timeout))), *argv]
        if cwd is not None:
            # `chroot` has no --chdir; cd inside through sh so relative paths work as in a user's shell.
            shell = [
                "chroot",
                str(self.root),
                *inner,
                "sh",
                "-c",
                'cd "$0" && exec "$@"',
                str(cwd),
                "timeout",
                "-k",
                "10",
                str(int(max(1, timeout))),
                *argv,
            ]
        t0 = time.monotonic()
        proc = subprocess.Popen(
            shell,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        timed_out = False
        try:
            out, err = proc.communicate(stdin, timeout=timeout + 30)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, 9)
            out, err = proc.communicate()
        rc = proc.returncode
        timed_out = timed_out or rc == 124
        return RunResult(list(argv), rc, out, err, time.monotonic() - t0, timed_out)

    @contextlib.contextmanager
    def xvfb(self, size: str = "1280x800x24", attempts: int = 8) -> Iterator[str]:
        """Start Xvfb inside the chroot; yields the DISPLAY value (":N"); stops it on exit.

        The display number is chosen here, at random among free high numbers, not by Xvfb's ``-displayfd``
        search from 0. Every chroot and the machine itself share one namespace of abstract X sockets
        (``@/tmp/.X11-unix/XN``) while each root has its own lock files, so the search from 0 could take a
        number another X server still answered on (a concurrent session, or a server of an earlier test not yet
        gone), and a lock file left by a killed server names a PID the machine may have given to another process
        since, which makes a new server on that number exit at once. Both ended a later test's Krita with
        "could not connect to display :0". Here a number is used only when no lock file, socket file or abstract
        socket has it; the server must then report itself ready, still be running, and accept a connection on
        its socket, or the next number is tried. Its messages go to a log file that failures quote.
        """
        rng = random.Random()
        tried = []
        for _ in range(attempts):
            number = self._free_display_number(rng)
            log_path = self.root / "tmp" / f"kesu-xvfb-{number}.log"
            started = self._start_xvfb(number, size, log_path)
            if started is None:
                tried.append(f":{number}: {self._tail(log_path)}")
                continue
            proc = started
            self._displays[f":{number}"] = (proc, log_path)
            try:
                yield f":{number}"
            finally:
                self._displays.pop(f":{number}", None)
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                with contextlib.suppress(OSError):
                    log_path.unlink()
            return
        raise RuntimeError("Xvfb did not start on any of the displays tried:\n" + "\n".join(tried))

    def _free_display_number(self, rng: random.Random) -> int:
        """A display number no X server here uses: no lock file, socket file or abstract socket."""
        with open("/proc/net/unix", encoding="ascii", errors="replace") as f:
            abstract = f.read()
        while True:
            n = rng.randrange(100, 30000)
            taken = (
                (self.root / "tmp" / f".X{n}-lock").exists()
                or self._x_socket(n).exists()
                or f"@/tmp/.X11-unix/X{n}\n" in abstract
            )
            if not taken:
                return n

    def _start_xvfb(self, number: int, size: str, log_path: Path) -> subprocess.Popen | None:
        """Xvfb on ``:number``, running and accepting connections; None (and stopped) if it is not."""
        rfd, wfd = os.pipe()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                ["chroot", str(self.root), "/usr/bin/env", "-i", f"PATH={CHROOT_PATH}", "Xvfb", f":{number}",
                 "-displayfd", str(wfd), "-screen", "0", size, "-nolisten", "tcp", "-noreset"],
                pass_fds=(wfd,), stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
            )  # fmt: skip
        os.close(wfd)
        with os.fdopen(rfd, "rb") as f:
            # Xvfb writes the display number and a newline once it accepts connections (EOF if it exits first).
            line = b""
            deadline = time.monotonic() + 30
            while not line.endswith(b"\n") and time.monotonic() < deadline:
                chunk = f.read(1)
                if not chunk:
                    break
                line += chunk
        socket_path = self._x_socket(number)
        if line.strip() == str(number).encode() and proc.poll() is None and _accepts(socket_path):
            return proc
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        return None

    def _x_socket(self, number: int | str) -> Path:
        """The socket file of the chroot's X server ``:number``."""
        return self.root / "tmp" / ".X11-unix" / f"X{number}"

    @staticmethod
    def _tail(path: Path, chars: int = 600) -> str:
        try:
            return path.read_text(errors="replace")[-chars:].strip() or "(no message)"
        except OSError:
            return "(no log)"

    def install_plugins(
        self,
        home: os.PathLike | str,
        host: str = "all",
        engine: os.PathLike | str | None = None,
        source: os.PathLike | str | None = None,
        extra: Sequence[str] = (),
    ) -> RunResult:
        """Install the plug-ins into ``home`` the way a user would: the chroot's own python3 runs
        ``install/install.py --host HOST --skip-engine --engine-env ENGINE`` with that HOME.

        ``engine``: the engine interpreter written into plugin.json (default :func:`engine_python`); it must
        be visible inside (bind-mounted). ``source``: another tree with krita_plugin/ and gimp_plugin/
        (default: this checkout). Raises AssertionError with the installer's output on failure.
        """
        engine = engine or engine_python()
        args = ["python3", str(INSTALLER), "--host", host, "--skip-engine"]
        if engine:
            args += ["--engine-env", str(engine)]
        if source:
            args += ["--source", str(source)]
        return self.run([*args, *extra], home=home, timeout=120).check()


@pytest.fixture(scope="session")
def host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostChroot]:
    """Session fixture: the mounted chroot of one host version (``request.param``, a :class:`HostApp` set by
    :func:`parametrize_host`), or a skip (a failure with KESU_REQUIRE_HOSTS=1) saying why.

    Bound inside: the checkout, pytest's base temp folder, and the engine interpreter's venv + base Python.
    """
    app: HostApp | None = getattr(request, "param", None)
    if app is None:
        raise pytest.UsageError("the host fixture is parametrised by tests/conftest.py: mark the test "
                                "@pytest.mark.host('krita') or @pytest.mark.host('gimp')")
    root = chroot_root(app.chroot)
    reason = skip_reason(root)
    if reason:
        skip_or_fail(f"{app.id}: {reason}")
    binds: list[Path] = [REPO, tmp_path_factory.getbasetemp()]
    py = engine_python()
    if py is not None:
        binds += python_binds(py)
    with HostChroot(binds, app=app) as h:
        yield h


# ====================================================================== PNG
@dataclass
class Image:
    """8-bit pixels, row-major, ``len(mode)`` bytes per pixel; mode is L, LA, RGB, RGBA (or BGRA)."""

    width: int
    height: int
    mode: str
    data: bytes

    @property
    def channels(self) -> int:
        return len(self.mode)

    def pixel(self, x: int, y: int) -> tuple[int, ...]:
        """The channel values at column x, row y."""
        c = self.channels
        i = (y * self.width + x) * c
        return tuple(self.data[i : i + c])

    def to_rgba(self) -> Image:
        """The same pixels as RGBA (grey replicated, missing alpha = 255)."""
        n = self.width * self.height
        d = self.data
        if self.mode == "RGBA":
            return self
        out = bytearray(n * 4)
        if self.mode == "RGB":
            for c in range(3):
                out[c::4] = d[c::3]
            out[3::4] = b"\xff" * n
        elif self.mode == "BGRA":
            out[0::4], out[1::4], out[2::4], out[3::4] = d[2::4], d[1::4], d[0::4], d[3::4]
        elif self.mode in ("L", "LA"):
            c = self.channels
            for k in range(3):
                out[k::4] = d[0::c]
            out[3::4] = d[1::2] if self.mode == "LA" else b"\xff" * n
        else:
            raise ValueError(f"cannot convert mode {self.mode}")
        return Image(self.width, self.height, "RGBA", bytes(out))


_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_MODES = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> bytes:
    """Undo PNG scanline filters. ``bpp`` bytes per pixel (8-bit samples)."""
    stride = width * bpp
    out = bytearray(height * stride)
    prev = bytearray(stride)
    pos = 0
    for y in range(height):
        ft = raw[pos]
        line = bytearray(raw[pos + 1 : pos + 1 + stride])
        pos += 1 + stride
        if ft == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 255
        elif ft == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif ft == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + prev[x]) >> 1)) & 255
        elif ft == 4:
            for x in range(stride):
                if x >= bpp:
                    a, c = line[x - bpp], prev[x - bpp]
                else:
                    a = c = 0
                b = prev[x]
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        elif ft != 0:
            raise ValueError(f"bad PNG filter type {ft} in row {y}")
        out[y * stride : (y + 1) * stride] = line
        prev = line
    return bytes(out)


def decode_png(data: bytes) -> Image:
    """Decode 8-bit non-interlaced PNG bytes (grey, grey+alpha, RGB, RGBA, palette -> RGBA)."""
    if data[:8] != _PNG_SIG:
        raise ValueError("not a PNG file")
    pos, idat, palette, trns = 8, [], b"", b""
    width = height = ctype = 0
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if typ == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            if depth != 8 or interlace != 0:
                raise ValueError(
                    f"only 8-bit non-interlaced PNG is supported (depth {depth}, interlace {interlace})"
                )
        elif typ == b"PLTE":
            palette = chunk
        elif typ == b"tRNS":
            trns = chunk
        elif typ == b"IDAT":
            idat.append(chunk)
        elif typ == b"IEND":
            break
    mode = _PNG_MODES[ctype]
    bpp = 1 if mode == "P" else len(mode)
    px = _unfilter(zlib.decompress(b"".join(idat)), width, height, bpp)
    if mode == "P":
        lut = [
            palette[i * 3 : i * 3 + 3] + (bytes([trns[i]]) if i < len(trns) else b"\xff")
            for i in range(len(palette) // 3)
        ]
        px = b"".join(lut[i] for i in px)
        mode = "RGBA"
    return Image(width, height, mode, px)


def read_png(path: os.PathLike | str) -> Image:
    """Read an 8-bit PNG file (see :func:`decode_png`)."""
    return decode_png(Path(path).read_bytes())


def encode_png(img: Image) -> bytes:
    """Encode an L/LA/RGB/RGBA Image as PNG bytes (filter 0, zlib level 6)."""
    ctype = {v: k for k, v in _PNG_MODES.items()}[img.mode]
    stride = img.width * img.channels
    if len(img.data) != stride * img.height:
        raise ValueError(f"data has {len(img.data)} bytes, expected {stride * img.height}")
    raw = b"".join(b"\x00" + img.data[y * stride : (y + 1) * stride] for y in range(img.height))

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", img.width, img.height, 8, ctype, 0, 0, 0)
    return _PNG_SIG + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def write_png(path: os.PathLike | str, img: Image) -> None:
    """Write ``img`` (L/LA/RGB/RGBA) to ``path`` as PNG."""
    Path(path).write_bytes(encode_png(img))


# ====================================================================== KRA
@dataclass
class KraLayer:
    """One node of a .kra layer tree. ``x``/``y``: offset in px; ``children``: top first (group layers)."""

    name: str
    nodetype: str
    x: int
    y: int
    visible: bool
    opacity: int
    filename: str
    colorspace: str
    attrs: dict[str, str]
    children: list[KraLayer] = field(default_factory=list)


@dataclass
class Kra:
    """A parsed .kra: document size, colour space, top-level layers (top first)."""

    path: Path
    name: str
    width: int
    height: int
    colorspace: str
    layers: list[KraLayer]

    def walk(self) -> Iterator[KraLayer]:
        """All layers depth-first, top first."""
        stack = list(reversed(self.layers))
        while stack:
            lay = stack.pop()
            yield lay
            stack.extend(reversed(lay.children))

    def layer(self, name: str) -> KraLayer:
        """The first layer called ``name``; KeyError listing the names when missing."""
        for lay in self.walk():
            if lay.name == name:
                return lay
        raise KeyError(f"no layer {name!r} in {self.path}; layers: {[x.name for x in self.walk()]}")

    def merged_image(self) -> Image:
        """The flattened image Krita stored (mergedimage.png)."""
        with zipfile.ZipFile(self.path) as z:
            return decode_png(z.read("mergedimage.png"))

    def layer_pixels(self, layer: KraLayer | str) -> Image:
        """Pixels of a paint layer over the whole canvas (offset applied) as RGBA.

        Only 8-bit RGBA and GRAYA layers are decoded; other colour spaces raise ValueError.
        """
        lay = self.layer(layer) if isinstance(layer, str) else layer
        with zipfile.ZipFile(self.path) as z:
            data = z.read(f"{self.name}/layers/{lay.filename}")
            try:
                default = z.read(f"{self.name}/layers/{lay.filename}.defaultpixel")
            except KeyError:
                default = None
        return _kra_tiles(data, default, lay, self.width, self.height)


def _lzf_decompress(src: bytes, out_len: int) -> bytes:
    """LZF (liblzf) decompression as used by Krita's tile compression."""
    out = bytearray()
    i, n = 0, len(src)
    while i < n:
        ctrl = src[i]
        i += 1
        if ctrl < 32:  # literal run of ctrl + 1 bytes
            out += src[i : i + ctrl + 1]
            i += ctrl + 1
        else:  # back reference
            length = ctrl >> 5
            ref = len(out) - ((ctrl & 0x1F) << 8) - 1
            if length == 7:
                length += src[i]
                i += 1
            ref -= src[i]
            i += 1
            length += 2
            if ref < 0:
                raise ValueError("corrupt LZF data")
            for k in range(length):  # may overlap, so byte by byte
                out.append(out[ref + k])
    if len(out) != out_len:
        raise ValueError(f"LZF gave {len(out)} bytes, expected {out_len}")
    return bytes(out)


def _kra_tiles(data: bytes, default: bytes | None, lay: KraLayer, width: int, height: int) -> Image:
    """Decode Krita's tiled layer format (VERSION 2, LZF tiles with planar 'linearised' channels)."""
    if lay.colorspace not in ("RGBA", "GRAYA"):
        raise ValueError(
            f"layer {lay.name!r} has colour space {lay.colorspace}; only 8-bit RGBA/GRAYA is read"
        )
    pos = 0

    def line() -> str:
        nonlocal pos
        end = data.index(b"\n", pos)
        s = data[pos:end].decode()
        pos = end + 1
        return s

    head: dict[str, str] = {}
    while True:
        key, _, val = line().partition(" ")
        head[key] = val
        if key == "DATA":
            break
    if head.get("VERSION") != "2":
        raise ValueError(f"unsupported Krita tile format {head.get('VERSION')}")
    tw, th, psize, ntiles = (
        int(head["TILEWIDTH"]),
        int(head["TILEHEIGHT"]),
        int(head["PIXELSIZE"]),
        int(head["DATA"]),
    )
    if psize not in (4, 2):
        raise ValueError(f"pixel size {psize}: only 8-bit RGBA (4) and GRAYA (2) are read")
    fill = default if default and len(default) == psize else bytes(psize)
    canvas = bytearray(fill * (width * height))
    for _ in range(ntiles):
        tx, ty, comp, size = line().split(",")
        blob = data[pos : pos + int(size)]
        pos += int(size)
        if comp != "LZF":
            raise ValueError(f"unsupported tile compression {comp}")
        n = tw * th * psize
        planar = _lzf_decompress(blob[1:], n) if blob[0] == 1 else blob[1 : 1 + n]
        tile = bytearray(n)
        for c in range(psize):  # Krita stores each channel's plane separately before compressing
            tile[c::psize] = planar[c * tw * th : (c + 1) * tw * th]
        x0, y0 = int(tx) + lay.x, int(ty) + lay.y
        for row in range(th):
            y = y0 + row
            if not 0 <= y < height:
                continue
            xs, xe = max(x0, 0), min(x0 + tw, width)
            if xs >= xe:
                continue
            src = (row * tw + (xs - x0)) * psize
            dst = (y * width + xs) * psize
            canvas[dst : dst + (xe - xs) * psize] = tile[src : src + (xe - xs) * psize]
    if psize == 4:
        return Image(width, height, "BGRA", bytes(canvas)).to_rgba()
    return Image(width, height, "LA", bytes(canvas)).to_rgba()


def _kra_layer(el: ET.Element) -> KraLayer:
    a = dict(el.attrib)
    cs = a.get("colorspacename", "")
    lay = KraLayer(
        name=a.get("name", ""),
        nodetype=a.get("nodetype", ""),
        x=int(a.get("x", "0")),
        y=int(a.get("y", "0")),
        visible=a.get("visible", "1") == "1",
        opacity=int(a.get("opacity", "255")),
        filename=a.get("filename", ""),
        colorspace="GRAYA"
        if cs.startswith("GRAYA") and cs in ("GRAYA", "GRAYAU8")
        else "RGBA"
        if cs == "RGBA"
        else cs,
        attrs=a,
    )
    for child in el:
        if _local(child.tag) == "layers":
            lay.children = [_kra_layer(c) for c in child if _local(c.tag) == "layer"]
    return lay


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_kra(path: os.PathLike | str) -> Kra:
    """Parse a .kra (zip) with ElementTree: document size/colour space and the layer tree, top first."""
    path = Path(path)
    with zipfile.ZipFile(path) as z:
        root = ET.fromstring(z.read("maindoc.xml"))
    img = next(e for e in root.iter() if _local(e.tag) == "IMAGE")
    layers_el = next(c for c in img if _local(c.tag) == "layers")
    return Kra(
        path=path,
        name=img.get("name", ""),
        width=int(img.get("width", "0")),
        height=int(img.get("height", "0")),
        colorspace=img.get("colorspacename", ""),
        layers=[_kra_layer(c) for c in layers_el if _local(c.tag) == "layer"],
    )


# ====================================================================== XCF
@dataclass
class XcfLayer:
    """One XCF layer. ``type``: 0 RGB, 1 RGBA, 2 grey, 3 grey+alpha; ``offsets`` (x, y) px."""

    name: str
    width: int
    height: int
    type: int
    offsets: tuple[int, int]
    visible: bool
    opacity: float
    hierarchy: int
    is_group: bool


class Xcf:
    """A parsed .xcf (versions 0-20): image size, base type, precision and layers (file order = top first)."""

    def __init__(self, path: os.PathLike | str) -> None:
        self.path = Path(path)
        self.d = self.path.read_bytes()
        if self.d[:9] != b"gimp xcf ":
            raise ValueError(f"{path} is not an XCF file")
        v = self.d[9:13]
        self.version = 0 if v == b"file" else int(v[1:4])
        self.p = 14
        self.width, self.height, self.base_type = self._u32(), self._u32(), self._u32()
        self.precision = self._u32() if self.version >= 4 else 150
        self.compression = 0
        for t, payload in self._props():
            if t == 17:
                self.compression = payload[0]
        ptrs = []
        while (ptr := self._ptr()) != 0:
            ptrs.append(ptr)
        self.layers = [self._layer(lp) for lp in ptrs]

    def _u32(self) -> int:
        v = struct.unpack(">I", self.d[self.p : self.p + 4])[0]
        self.p += 4
        return v

    def _ptr(self) -> int:
        if self.version >= 11:
            v = struct.unpack(">Q", self.d[self.p : self.p + 8])[0]
            self.p += 8
            return v
        return self._u32()

    def _props(self) -> Iterator[tuple[int, bytes]]:
        while True:
            t, n = self._u32(), self._u32()
            payload = self.d[self.p : self.p + n]
            self.p += n
            if t == 0:
                return
            yield t, payload

    def _layer(self, ptr: int) -> XcfLayer:
        self.p = ptr
        w, h, typ = self._u32(), self._u32(), self._u32()
        n = self._u32()
        name = self.d[self.p : self.p + n].rstrip(b"\0").decode("utf-8", "replace")
        self.p += n
        offs, visible, opacity, group = (0, 0), True, 1.0, False
        for t, payload in self._props():
            if t == 15:
                offs = struct.unpack(">ii", payload)
            elif t == 8:
                visible = struct.unpack(">I", payload)[0] != 0
            elif t == 6:
                opacity = struct.unpack(">I", payload)[0] / 255.0
            elif t == 33:
                opacity = struct.unpack(">f", payload)[0]
            elif t == 29:
                group = True
        return XcfLayer(name, w, h, typ, offs, visible, opacity, self._ptr(), group)

    def layer(self, name: str) -> XcfLayer:
        """The first layer called ``name``; KeyError listing the names when missing."""
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(f"no layer {name!r} in {self.path}; layers: {[x.name for x in self.layers]}")

    def layer_pixels(self, layer: XcfLayer | str) -> Image:
        """The layer's own pixels (its size, not the canvas), 8-bit: mode RGB, RGBA, L or LA."""
        lay = self.layer(layer) if isinstance(layer, str) else layer
        if self.precision not in (100, 150) and self.version >= 7:
            raise ValueError(f"XCF precision {self.precision}: only 8-bit images are read")
        self.p = lay.hierarchy
        w, h, bpp = self._u32(), self._u32(), self._u32()
        mode = {3: "RGB", 4: "RGBA", 1: "L", 2: "LA"}.get(bpp)
        if mode is None:
            raise ValueError(f"{bpp} bytes per pixel: only 8-bit RGB/RGBA/grey layers are read")
        self.p = self._ptr()
        self._u32(), self._u32()  # level size (same as the hierarchy's)
        tiles = []
        while (t := self._ptr()) != 0:
            tiles.append(t)
        out = bytearray(w * h * bpp)
        ntx = (w + 63) // 64
        for idx, tp in enumerate(tiles):
            tx, ty = idx % ntx, idx // ntx
            tw, th = min(64, w - tx * 64), min(64, h - ty * 64)
            if self.compression == 2:
                data = zlib.decompressobj().decompress(self.d[tp:])
            elif self.compression == 0:
                data = self.d[tp : tp + tw * th * bpp]
            elif self.compression == 1:
                data = self._rle_tile(tp, tw * th, bpp)
            else:
                raise ValueError(f"XCF compression {self.compression} is not supported")
            for row in range(th):
                dst = ((ty * 64 + row) * w + tx * 64) * bpp
                out[dst : dst + tw * bpp] = data[row * tw * bpp : (row + 1) * tw * bpp]
        return Image(w, h, mode, bytes(out))

    def _rle_tile(self, p: int, n: int, bpp: int) -> bytes:
        d, out = self.d, bytearray(n * bpp)
        for ch in range(bpp):
            i = 0
            while i < n:
                op = d[p]
                p += 1
                if op >= 128:  # literal run
                    if op == 128:
                        cnt = d[p] * 256 + d[p + 1]
                        p += 2
                    else:
                        cnt = 256 - op
                    out[ch + i * bpp : ch + (i + cnt) * bpp : bpp] = d[p : p + cnt]
                    p += cnt
                else:  # repeated byte
                    if op == 127:
                        cnt = d[p] * 256 + d[p + 1]
                        p += 2
                    else:
                        cnt = op + 1
                    out[ch + i * bpp : ch + (i + cnt) * bpp : bpp] = bytes([d[p]]) * cnt
                    p += 1
                i += cnt
        return bytes(out)


def read_xcf(path: os.PathLike | str) -> Xcf:
    """Parse an .xcf file (see :class:`Xcf`)."""
    return Xcf(path)


def tempdir_in(parent: os.PathLike | str, prefix: str = "kesu-") -> Path:
    """A fresh uniquely named folder under ``parent`` (no fixed shared names)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
