"""``kesu clean --ray``: on a real Ray cluster started on this machine (two CPUs, a small object store).

The cluster is started with ``ray start --head --block`` in its own temporary folder; every Ray process it made is
found by that folder (their command lines and open log files name it) and must be gone when it stops.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import build_parser, clean_outputs, clean_page, main, run_pages
from tests.conftest import make_tiny_weights

REPO = Path(__file__).resolve().parents[2]
KESU = [sys.executable, "-m", "engine"]
# The clusters of these tests check a token of their own (Ray's token authentication), so the tests neither read
# nor write the user's ~/.ray/auth_token.
RAY_ENV = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16), "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": str(REPO)}
PAGES = 24
pytestmark = pytest.mark.slow


def _needs_ray():
    return pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[dev]' adds it")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cluster_processes(temp_dir: str) -> list[int]:
    """PIDs of the processes of the cluster kept in ``temp_dir``: their command line or an open file names it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            names = [(entry / "cmdline").read_bytes().decode(errors="replace")]
            names += [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:  # gone meanwhile, or not ours to look at
            continue
        if any(temp_dir in name for name in names):
            found.append(int(entry.name))
    return found


def _page_workers(temp_dir: str) -> list[int]:
    workers = []
    for pid in _cluster_processes(temp_dir):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::PageWorker"):
                workers.append(pid)
        except OSError:
            continue
    return workers


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.fixture(scope="module")
def cluster():
    """The address of a Ray head started for these tests; stopped, with every process of it, at the end."""
    _needs_ray()
    temp_dir = tempfile.mkdtemp(prefix="kesu-ray-")
    port = _free_port()
    ray_cli = Path(sys.executable).parent / "ray"
    head = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
         "--object-store-memory=100000000", f"--temp-dir={temp_dir}", "--include-dashboard=false",
         "--disable-usage-stats", "--node-ip-address=127.0.0.1"],
        cwd=REPO, env=dict(os.environ, **RAY_ENV), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = []
    try:
        for line in head.stdout:
            output.append(line)
            if "Ray runtime started" in line:
                break
        else:
            raise AssertionError("ray start failed:\n" + "".join(output))
        yield {"address": f"127.0.0.1:{port}", "temp_dir": temp_dir}
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        deadline = time.monotonic() + 60
        while _cluster_processes(temp_dir) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _cluster_processes(temp_dir)
        for pid in left:  # only the processes of this cluster, by PID
            os.kill(pid, signal.SIGKILL)
        assert not left, f"Ray processes left behind after the cluster stopped: {left}"


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """PAGES noisy pages (every pixel text for the tiny detector, so each page goes through the network), one with
    alpha; the weights; and plain clean's outputs of them."""
    root = tmp_path_factory.mktemp("cluster")
    weights = make_tiny_weights(root / "weights", text_bias=10.0)
    rng = np.random.default_rng(7)
    folder = root / "in"
    folder.mkdir()
    for i in range(PAGES):
        pixels = rng.integers(0, 256, (320, 256, 4 if i == 3 else 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p{i:02d}.png")
    plain = root / "plain"
    run = subprocess.run(KESU + ["clean", str(folder), "-o", str(plain), "--weights-dir", str(weights),
                                 "--threads", "1", "--save-mask", "-q"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return {"in": folder, "weights": weights, "plain": plain}


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, env=dict(os.environ, **RAY_ENV), capture_output=True, text=True,
                          **kwargs)


def _start(command: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=REPO, env=dict(os.environ, **RAY_ENV), text=True, **kwargs)


def _kesu_ray(pages, out, address, *extra) -> list[str]:
    return KESU + ["clean", str(pages["in"]), "-o", str(out), "--weights-dir", str(pages["weights"]),
                   "--threads", "1", "--save-mask", "--ray", address, *extra]


def _assert_same_as_plain(pages, out):
    expected = sorted(p.name for p in pages["plain"].iterdir())
    assert len(expected) == 2 * PAGES
    assert sorted(p.name for p in out.iterdir()) == expected  # no temporary or extra files
    for name in expected:
        assert (out / name).read_bytes() == (pages["plain"] / name).read_bytes(), name


def test_ray_outputs_are_byte_identical_to_plain_clean(cluster, pages, tmp_path):
    out = tmp_path / "out"
    run = _run(_kesu_ray(pages, out, cluster["address"]))
    assert run.returncode == 0, run.stderr
    assert f"clean: {PAGES} done" in run.stderr
    assert "peak memory per worker" in run.stderr
    _assert_same_as_plain(pages, out)


def test_a_worker_killed_mid_run_is_replaced_and_every_page_comes_once(cluster, pages, tmp_path):
    out = tmp_path / "out"
    driver = _start(_kesu_ray(pages, out, cluster["address"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: out.exists() and any(out.glob("*.mask.png")), 300, "the first page")
        victim = _page_workers(cluster["temp_dir"])[0]
        os.kill(victim, signal.SIGKILL)
        _, stderr = driver.communicate(timeout=300)
    finally:
        driver.kill()
    assert driver.returncode == 0, stderr
    assert f"worker {victim} stopped" in stderr and "go to other workers" in stderr
    assert f"clean: {PAGES} done" in stderr and "failed" not in stderr
    _assert_same_as_plain(pages, out)


def test_a_killed_driver_started_again_resumes(cluster, pages, tmp_path):
    out = tmp_path / "out"
    driver = _start(_kesu_ray(pages, out, cluster["address"]), stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: out.exists() and len(list(out.glob("*.mask.png"))) >= 3, 300, "three pages")
    finally:
        driver.kill()
        driver.wait()
    first = len(list(out.glob("*.mask.png")))
    assert first < PAGES, "the run ended before the driver was killed"
    # Ray ends the workers of a driver that died
    _wait_for(lambda: not _page_workers(cluster["temp_dir"]), 120, "the dead driver's workers to stop")
    run = _run(_kesu_ray(pages, out, cluster["address"]))
    assert run.returncode == 0, run.stderr
    # a page counts as done once its last output (the mask) is written; one cut short is done again
    assert f"clean: {PAGES - first} done, {first} skipped" in run.stderr, run.stderr
    for leftover in out.glob(".*.tmp"):  # a write the kill cut short: never under the output's own name
        leftover.unlink()
    _assert_same_as_plain(pages, out)


def test_a_corrupt_page_is_reported_and_the_run_goes_on(cluster, pages, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    good = sorted(pages["in"].iterdir())[:4]
    for page in good:
        (folder / page.name).write_bytes(page.read_bytes())
    (folder / "torn.png").write_bytes(good[0].read_bytes()[:300])
    out = tmp_path / "out"
    run = _run(KESU + ["clean", str(folder), "-o", str(out), "--weights-dir", str(pages["weights"]), "--threads",
                       "1", "--ray", cluster["address"]])
    assert run.returncode == 1
    assert f"{folder / 'torn.png'}: the image data is damaged or truncated" in run.stderr
    assert "clean: 4 done, 1 failed" in run.stderr
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in good]
    for page in good:
        assert (out / page.name).read_bytes() == (pages["plain"] / page.name).read_bytes()


def crash_on_poison(engine, args, data: bytes, name: str) -> list[bytes]:
    """A page function whose worker process dies on any page named poison*, like a crash in native code."""
    if Path(name).name.startswith("poison"):
        os._exit(3)
    return clean_page(engine, args, data, name)


def drive_with_crash_on_poison(argv: list[str]) -> int:
    """``kesu clean`` with ``crash_on_poison`` as the page function (run in its own process by the test below)."""
    from engine.cluster import run_on_ray

    args = build_parser().parse_args(argv)
    return run_pages(args, lambda job: clean_outputs(args, job), run_on_ray(args, crash_on_poison), "clean")


def test_a_page_that_kills_two_workers_is_reported_and_the_run_goes_on(cluster, pages, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    good = sorted(pages["in"].iterdir())[:5]
    for page in good:
        (folder / page.name).write_bytes(page.read_bytes())
    (folder / "poison.png").write_bytes(good[0].read_bytes())
    out = tmp_path / "out"
    argv = ["clean", str(folder), "-o", str(out), "--weights-dir", str(pages["weights"]), "--threads", "1", "--ray",
            cluster["address"]]
    code = f"import sys; from tests.engine.test_cluster import drive_with_crash_on_poison as d; sys.exit(d({argv!r}))"
    run = _run([sys.executable, "-c", code])
    assert run.returncode == 1, run.stderr
    assert f"{folder / 'poison.png'}: failed on 2 workers" in run.stderr
    assert "clean: 5 done, 1 failed" in run.stderr
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in good]


def test_local_starts_a_cluster_of_its_own(pages, tmp_path):
    _needs_ray()
    folder = tmp_path / "in"
    folder.mkdir()
    for page in sorted(pages["in"].iterdir())[:2]:
        (folder / page.name).write_bytes(page.read_bytes())
    out = tmp_path / "out"
    run = _run(KESU + ["clean", str(folder), "-o", str(out), "--weights-dir", str(pages["weights"]), "--threads",
                       "1", "--ray", "local"])
    assert run.returncode == 0, run.stderr
    for page in folder.iterdir():
        assert (out / page.name).read_bytes() == (pages["plain"] / page.name).read_bytes()


def test_a_cluster_that_is_not_there_is_named(pages, tmp_path):
    _needs_ray()
    run = _run(KESU + ["clean", str(pages["in"]), "-o", str(tmp_path / "out"), "--weights-dir",
                       str(pages["weights"]), "--ray", f"127.0.0.1:{_free_port()}"], timeout=60)
    assert run.returncode == 1
    assert "cannot join the Ray cluster at '127.0.0.1:" in run.stderr and "nothing answers there" in run.stderr
    assert not (tmp_path / "out").exists()


def test_without_ray_the_error_names_the_install_command(tmp_path, monkeypatch, capsys):
    page = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(page)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    assert main(["clean", str(page), "-o", str(tmp_path / "out"), "--ray", "auto"]) == 1
    assert 'pip install "kesu[cluster]"' in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
