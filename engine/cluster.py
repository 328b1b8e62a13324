"""``kesu clean --ray ADDRESS``: the pages of a run spread over a Ray cluster.

The driver (the ``kesu`` process) plans the run exactly as plain ``clean`` does (``cli.run_pages``: inputs, skipped
outputs, name clashes, per-page errors), reads each page's bytes and writes each result with the same atomic writes.
The workers are Ray actors, one per ``--threads`` cores of each machine, each holding one loaded engine. Pages,
results and the weights travel as bytes through Ray's object store, so the workers need no shared file system.

Faults: a worker that dies (or raises something other than the engine's own errors) is replaced by a new one and
its pages go back in the queue; a page charged with two such failures is reported failed and the run goes on. A page
the engine refuses (a damaged image) is reported at once, as plain ``clean`` does. A driver that is killed takes its
workers with it (Ray ends a job's actors with its driver); run again, it skips the pages whose outputs exist.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import __version__
from engine.errors import EngineError

INSTALL_COMMAND = 'pip install "kesu[cluster]"'
ROLES = ("textseg", "inpaint")
# Pages in flight per worker: one being cleaned, one waiting, so a worker never idles on the driver's round trip.
PAGES_PER_WORKER = 2
# A page is reported failed after this many workers died on it (or raised an unexpected error).
ATTEMPTS = 2
# Object store of a cluster started with --ray local; pages in flight take a few MB each.
LOCAL_OBJECT_STORE_BYTES = 256 << 20

PageFunction = Callable[[Any, Any, bytes, str], list[bytes]]


def import_ray():
    """The ``ray`` module, or an EngineError that names the install command."""
    try:
        import ray
    except ImportError:
        raise EngineError(
            f"--ray needs Ray, which is not installed in this environment; add it with: {INSTALL_COMMAND}"
        ) from None
    return ray


class PageWorker:
    """A Ray actor: one engine, loaded once from the weights the driver sent, with ``threads`` torch threads.

    ``run`` cleans one page given as its file's bytes with ``page_function(engine, args, data, name)``
    (and the frame, for a file's later frames).
    """

    def __init__(self, page_function: PageFunction, args, weights: dict[str, bytes], threads: int):
        import torch

        from engine.pipeline import Engine

        torch.set_num_threads(threads)
        self.page_function, self.args = page_function, args
        self.engine, self.error = None, None
        folder = Path(tempfile.mkdtemp(prefix="kesu-weights-"))
        try:
            for name, data in weights.items():
                (folder / name).write_bytes(data)
            self.engine = Engine.load(folder, roles=ROLES)  # every role now: the folder goes away below
        except EngineError as e:
            self.error = str(e)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def ready(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "version": __version__, "error": self.error, **usage()}

    def run(self, data: bytes, name: str, frame: int = 0) -> tuple[str, Any]:
        """("done", [bytes of each output]) or ("failed", message) for a page the engine refuses."""
        try:
            if frame:  # a later frame of a multi-frame file
                return "done", self.page_function(self.engine, self.args, data, name, frame)
            return "done", self.page_function(self.engine, self.args, data, name)
        except EngineError as e:
            return "failed", str(e)

    def usage(self) -> dict[str, float]:
        return usage()


def usage() -> dict[str, float]:
    """This process's peak resident memory (bytes) and CPU time so far (seconds, all threads)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_memory": own.ru_maxrss * 1024, "cpu_seconds": own.ru_utime + own.ru_stime}


@dataclass
class RunStats:
    """What a cluster run measured; ``kesu clean --ray`` prints it unless quiet, the benchmark records it."""

    workers: int = 0
    threads: int = 0
    start_seconds: float = 0.0  # connecting (or starting the cluster) until every first worker is ready
    pages_seconds: float = 0.0  # the first page sent until the last output written
    steady_seconds: float = 0.0  # every first worker ready until the last output written
    pages_before_ready: int = 0  # pages written before every first worker was ready
    replaced: int = 0
    peak_memory: list[int] = field(default_factory=list)  # bytes, per worker alive at the end
    page_cpu_seconds: float = 0.0  # CPU time the workers alive at the end spent after they were ready


@dataclass
class _Worker:
    handle: Any
    ready_ref: Any
    pid: int | None = None
    cpu_at_ready: float = 0.0
    inflight: list = field(default_factory=list)  # object refs in the order sent: the first is being cleaned


def connect(ray, address: str) -> None:
    """Join the cluster at ``address`` (what ``ray.init`` takes), or start one on this machine for ``local``."""
    common = {"logging_level": logging.WARNING, "configure_logging": True}
    _check_reachable(address)
    try:
        if address == "local":
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a cluster of our own reports nothing home
            ray.init(object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=False, **common)
        else:
            ray.init(address=address, **common)
    except Exception as e:  # ConnectionError, ValueError for a malformed address, ... in Ray's own words
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise EngineError(
            f"cannot join the Ray cluster at {address!r} ({first}); start one with `ray start --head`, or use "
            "--ray local to try it on this machine; a cluster that checks a token also needs RAY_AUTH_MODE=token "
            "here (docs/cluster.md)"
        ) from e


def _check_reachable(address: str) -> None:
    """Fail at once when nothing listens at a HOST:PORT address (Ray itself would keep retrying for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # auto, local, or a form Ray judges itself
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as e:
        raise EngineError(
            f"cannot join the Ray cluster at {address!r} (nothing answers there: {e.strerror or e}); start one with "
            "`ray start --head` on that machine, or use --ray local to try it on this machine"
        ) from None


def worker_slots(ray, threads: int) -> int:
    """How many workers of ``threads`` cores the cluster's machines hold (a worker never spans two machines)."""
    slots = sum(int(node.get("Resources", {}).get("CPU", 0)) // threads for node in ray.nodes() if node.get("Alive"))
    if slots == 0:
        raise EngineError(f"no machine of the Ray cluster has {threads} cores for a worker; lower --threads")
    return slots


def run_on_ray(args, page_function: PageFunction, worker_class: type = PageWorker, worker_args: tuple | None = None,
               stats: RunStats | None = None):
    """An executor for ``cli.run_pages`` that runs ``page_function`` on the workers of the cluster ``args.ray``.

    ``worker_class(*worker_args)`` is the actor (default: ``PageWorker(page_function, args, weights, threads)``);
    the benchmark swaps in one that returns a stored result. ``stats`` is filled in as the run goes.
    """
    from engine.imageio import read_image_bytes, save_files_atomic
    from engine.weights import weights_folder_files

    stats = stats if stats is not None else RunStats()

    def execute(tasks, reporter) -> Iterator[tuple[Any, EngineError | None]]:
        ray = import_ray()
        threads = args.threads or 1
        weights = None
        if worker_args is None:  # checked before any cluster starts: a weights problem is said at once
            weights = weights_folder_files(ROLES, Path(args.weights_dir) if args.weights_dir else None)
        started = time.perf_counter()
        own_connection = not ray.is_initialized()  # the benchmark connects once for several runs
        if own_connection:
            connect(ray, args.ray)
        written = 0
        workers: list[_Worker] = []
        try:
            actor = ray.remote(worker_class).options(num_cpus=threads, max_restarts=0)
            constructor = worker_args or (page_function, args, ray.put(weights), threads)
            count = min(len(tasks), worker_slots(ray, threads))
            stats.workers, stats.threads = count, threads

            def start_worker() -> _Worker:
                handle = actor.remote(*constructor)
                return _Worker(handle, handle.ready.remote())

            workers = [start_worker() for _ in range(count)]
            pending = deque(range(len(tasks)))
            charged = [0] * len(tasks)
            finished = [False] * len(tasks)
            sent: dict[Any, tuple[int, _Worker]] = {}
            start_failures = 0
            first_sent = None

            def replace(worker: _Worker, failed_ref, reason: str) -> Iterator[tuple[Any, EngineError | None]]:
                """Retire ``worker``: charge the page that failed, queue its other pages again, start another."""
                stats.replaced += 1
                requeue = []
                for ref in worker.inflight:
                    index, _ = sent.pop(ref)
                    if ref is not failed_ref:
                        requeue.append(index)
                        continue
                    charged[index] += 1
                    job = tasks[index][0]
                    if charged[index] >= ATTEMPTS:
                        finished[index] = True
                        yield job, EngineError(f"{job.source}: failed on {ATTEMPTS} workers ({reason}); not written")
                    else:
                        requeue.insert(0, index)
                pending.extendleft(reversed(requeue))
                reporter.info(f"kesu: worker {worker.pid} stopped ({reason}); {len(requeue)} page(s) go to other "
                              "workers, and a new worker takes its place")
                ray.kill(worker.handle, no_restart=True)
                workers[workers.index(worker)] = start_worker()

            while pending or sent:
                now_ready = [w for w in workers if w.pid is not None]
                for worker in now_ready:
                    while pending and len(worker.inflight) < PAGES_PER_WORKER:
                        index = pending.popleft()
                        job = tasks[index][0]
                        try:
                            data = read_image_bytes(job.source)
                        except EngineError as e:
                            finished[index] = True
                            yield job, e
                            continue
                        ref = worker.handle.run.remote(data, str(job.source), job.frame)
                        worker.inflight.append(ref)
                        sent[ref] = (index, worker)
                        first_sent = first_sent or time.perf_counter()
                waiting = list(sent) + [w.ready_ref for w in workers if w.pid is None]
                if not waiting:  # cannot happen while a worker is ready or starting; never spin
                    raise EngineError("no worker of the Ray cluster is left to clean the pages")
                [ref], _ = ray.wait(waiting, num_returns=1)
                worker = next((w for w in workers if w.pid is None and w.ready_ref is ref), None)
                if worker is not None:
                    try:
                        info = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        start_failures += 1
                        if start_failures > count:
                            raise EngineError(f"workers of the Ray cluster cannot start ({_first_line(e)})") from e
                        workers[workers.index(worker)] = start_worker()
                        continue
                    if info["error"]:
                        raise EngineError(info["error"])
                    if info["version"] != __version__:
                        raise EngineError(f"a worker of the Ray cluster runs kesu {info['version']} and this "
                                          f"machine kesu {__version__}; install the same version on every machine")
                    worker.pid, worker.cpu_at_ready = info["pid"], info["cpu_seconds"]
                    if all(w.pid is not None for w in workers) and not stats.start_seconds:
                        stats.start_seconds = time.perf_counter() - started
                        stats.pages_before_ready = written
                    continue
                index, worker = sent[ref]
                try:
                    outcome, value = ray.get(ref)
                except ray.exceptions.RayError as e:
                    yield from replace(worker, _oldest_failed(worker, ref, e, ray), _first_line(e))
                    continue
                del sent[ref]
                worker.inflight.remove(ref)
                if finished[index]:  # an answer for a page already settled: never written twice
                    continue
                finished[index] = True
                job, paths = tasks[index]
                if outcome == "failed":
                    yield job, EngineError(value)
                    continue
                try:
                    save_files_atomic(list(zip(value, paths, strict=True)))
                except EngineError as e:  # an output that cannot be written fails this page only
                    yield job, EngineError(f"{job.source}: {e}")
                    continue
                written += 1
                yield job, None
            end = time.perf_counter()
            if first_sent is not None:
                stats.pages_seconds = end - first_sent
            if stats.start_seconds:
                stats.steady_seconds = end - started - stats.start_seconds
            alive = [w for w in workers if w.pid is not None]
            try:
                usages = ray.get([w.handle.usage.remote() for w in alive])
            except ray.exceptions.RayError:  # a worker gone after the last page: nothing lost, only these figures
                usages, alive = [], []
            stats.peak_memory = [u["peak_memory"] for u in usages]
            stats.page_cpu_seconds = sum(u["cpu_seconds"] - w.cpu_at_ready for u, w in zip(usages, alive, strict=True))
            if stats.peak_memory:
                reporter.info(
                    f"ray: {stats.workers} worker(s) of {threads} thread(s), ready {stats.start_seconds:.1f} s after "
                    f"start; pages took {stats.pages_seconds:.1f} s; peak memory per worker "
                    f"{max(stats.peak_memory) / 2**20:.0f} MB"
                    + (f"; {stats.replaced} worker(s) replaced" if stats.replaced else "")
                )
        finally:
            if own_connection:
                ray.shutdown()  # ends this run's workers (and a --ray local cluster)
            else:
                for worker in workers:
                    ray.kill(worker.handle, no_restart=True)

    return execute


def _oldest_failed(worker: _Worker, ref, error: Exception, ray):
    """The page to charge: the one that raised, or, when the worker died, the one it was cleaning (sent first)."""
    if isinstance(error, ray.exceptions.RayTaskError) and not isinstance(error, ray.exceptions.RayActorError):
        return ref
    return worker.inflight[0]


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:200]
