"""Where the cells of ``ralis benchmark`` run: in this process, in a local process pool, or on Ray.

A :class:`~ralis.loop.cells.Cell` is one run directory of the grid (θ0, one agent, one AL run,
the upper bound) with the cells it needs (an AL run needs θ0; a RALIS run also needs its agent).
:func:`ralis.loop.schedule.run_cells` starts every cell whose needs have finished, as many at a time as the executor
has slots, and calls back the driver after each one, which rewrites ``results.csv``:

* :class:`SequentialExecutor` (the default): one cell at a time, in this process, with progress
  bars (no worker processes, no Ray import).
* :class:`LocalExecutor`: a ``ProcessPoolExecutor`` (``spawn`` context) of ``jobs`` workers,
  each cell with ``threads`` torch threads. A worker that dies (killed, out of memory) breaks the
  pool: a new one is made and the cells that were running start again from their own saved
  state, at most ``retries`` times.
* :class:`RayExecutor`: each cell a Ray task asking for ``threads`` CPUs (and ``gpus`` GPUs on
  CUDA). Ray retries a task whose worker died (``max_retries``); the cell resumes from its own
  saved state. Ray is imported only here, and only when this executor starts.

Every cell resumes (``resume=True``) and locks its own run directory, whatever process runs it;
the grid folder's lock stays with the driver (workers never take it: the lock of
:func:`ralis.run.rundir.lock_dir` is re-entrant only within one process). A cell that fails is
reported with one line and the others go on; cells that need it are not started.
"""

from __future__ import annotations

import os
import socket
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ralis.errors import ConfigError, as_user_error, first_line
from ralis.loop.cells import Cell, Task, describe, run_cell

EXECUTORS: tuple[str, ...] = ("sequential", "local", "ray")
DEFAULT_RETRIES = 3  # Ray's own default for tasks whose worker died
DEFAULT_THREADS = 1  # torch threads of a cell when neither --threads-per-job nor the config says


# --------------------------------------------------------------------------------- executors
def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Executor:
    """Runs cells: :meth:`submit` one, :meth:`wait` for some to finish. ``slots``: cells in
    flight at once; ``threads``: torch threads of each cell (None: the config's, else 1, in
    every executor: a cell's numbers must not depend on where it runs; the cell's config.json
    records it). Each executor also has ``fn``, what runs a cell (:func:`run_cell`)."""

    name = "executor"
    slots = 1
    threads: int | None = None

    def prepare(self, cell: Cell) -> Cell:
        threads = self.threads or cell.cfg.threads or DEFAULT_THREADS
        return replace(cell, cfg=replace(cell.cfg, threads=threads))

    def start(self) -> None:  # pragma: no cover - trivial
        pass

    def submit(self, cell: Cell) -> Task:
        raise NotImplementedError

    def wait(self, tasks: Sequence[Task]) -> list[Task]:
        """Block until at least one of ``tasks`` finished; return the finished ones."""
        raise NotImplementedError

    def close(self, cancel: bool = False) -> None:  # pragma: no cover - trivial
        pass

    def describe(self) -> str:
        return self.name


@dataclass
class SequentialExecutor(Executor):
    """One cell at a time in this process (the protocol is loaded once and shared)."""

    threads: int | None = None
    progress: bool = True
    proto: Any = None
    fn: Callable[..., Any] = run_cell
    name: str = "sequential"
    slots: int = 1

    def submit(self, cell: Cell) -> Task:
        return Task(self.prepare(cell))

    def wait(self, tasks: Sequence[Task]) -> list[Task]:
        task = tasks[0]
        try:
            self.fn(task.cell, progress=self.progress, proto=self.proto)
        except Exception as exc:  # KeyboardInterrupt stops the grid, as always
            task.error = describe(exc)
            if as_user_error(exc) is None:
                task.detail = "".join(traceback.format_exception(exc))
        return [task]


@dataclass
class LocalExecutor(Executor):
    """A pool of ``jobs`` worker processes on this machine (``spawn``: no state is inherited)."""

    jobs: int = 2
    threads: int | None = None
    retries: int = DEFAULT_RETRIES
    context: str = "spawn"
    fn: Callable[..., Any] = run_cell
    say: Callable[[str], None] = field(default=_say, repr=False)
    name: str = "local"
    _pool: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ConfigError(f"--jobs {self.jobs}: give at least 1")
        self.slots = self.jobs

    def start(self) -> None:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        self._pool = ProcessPoolExecutor(self.jobs, mp_context=get_context(self.context),
                                         initializer=_worker_init,
                                         initargs=(os.getpid() if self.context == "spawn"
                                                   else None,))

    def submit(self, cell: Cell) -> Task:
        task = Task(self.prepare(cell))
        task.handle = self._pool.submit(self.fn, task.cell)
        return task

    def wait(self, tasks: Sequence[Task]) -> list[Task]:
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as wait_futures
        from concurrent.futures.process import BrokenProcessPool

        while True:
            wait_futures([t.handle for t in tasks], return_when=FIRST_COMPLETED)
            broken = any(t.handle.done() and isinstance(t.handle.exception(), BrokenProcessPool)
                         for t in tasks)
            if broken:
                # a worker died: the pool is broken, every running cell with it. Wait for the
                # pool to fail them all, then start them again in a new pool: each resumes from
                # its own saved state.
                self._pool.shutdown(wait=True, cancel_futures=True)
                self.start()
            finished = []
            for task in tasks:
                if not task.handle.done() and not broken:
                    continue
                exc = task.handle.exception() if task.handle.done() else BrokenProcessPool()
                if isinstance(exc, BrokenProcessPool):
                    if task.tries <= self.retries:
                        task.tries += 1
                        self.say(f"{task.cell.name}: its worker process died; try {task.tries} "
                                 "resumes it from its saved state")
                        task.handle = self._pool.submit(self.fn, task.cell)
                        continue
                    task.error = (f"its worker process died {task.tries} times (killed, out of "
                                  "memory, or it could not start)")
                elif exc is not None:
                    task.error = describe(exc)
                    if as_user_error(exc) is None:
                        task.detail = str(exc.__cause__ or "") or None  # the worker's traceback
                finished.append(task)
            if finished:
                return finished

    def close(self, cancel: bool = False) -> None:
        if self._pool is None:
            return
        if cancel:  # stop the running cells now (as a kill: each resumes on the next run)
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        self._pool = None

    def describe(self) -> str:
        return f"local ({self.jobs} processes, {_threads(self.threads)} each)"


def _worker_init(driver: int | None) -> None:
    """A local worker leaves Ctrl-C to the driver (which stops it) and, spawned by ``driver``,
    dies with it: a killed ``ralis benchmark`` leaves no worker behind holding a cell's lock."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if driver is not None and sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the worker lingers
            pass
        if os.getppid() != driver:  # the driver died before the line above
            os._exit(1)


def _ray_cell(cell: Cell, fn: Callable[..., Any], cwd: str) -> None:
    """A Ray task: run ``cell`` in the driver's working directory when this machine has it
    (relative dataset and cache paths then mean the same thing as on the driver)."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    fn(cell)


@dataclass
class RayExecutor(Executor):
    """Each cell a Ray task with ``threads`` CPUs (and ``gpus`` GPUs when the device is CUDA).

    ``address``: the cluster to join (``auto``, ``HOST:PORT``); None starts a local Ray on this
    machine (or uses the one this process already started). ``jobs``: most cells in flight at
    once (None: as many as are ready; Ray queues them until their resources are free).
    """

    address: str | None = None
    jobs: int | None = None
    threads: int | None = None
    gpus: float | None = None
    retries: int = DEFAULT_RETRIES
    fn: Callable[..., Any] = run_cell
    name: str = "ray"
    _ray: Any = field(default=None, init=False, repr=False)
    _remote: Any = field(default=None, init=False, repr=False)
    _owned: bool = field(default=False, init=False, repr=False)
    _inflight: set = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.jobs is not None and self.jobs < 1:
            raise ConfigError(f"--jobs {self.jobs}: give at least 1")
        self.slots = self.jobs or 1 << 30

    def start(self) -> None:
        ray = import_ray()
        if not ray.is_initialized():
            self._check_address()
            try:
                ray.init(address=self.address, include_dashboard=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ConfigError(f"--executor ray: cannot reach the Ray cluster at "
                                  f"{self.address or 'this machine'} ({first_line(exc)}); start "
                                  "it with `ray start --head`, or leave --address out") from None
            self._owned = True
        self._ray = ray
        self._remote = ray.remote(_ray_cell)

    def _check_address(self) -> None:
        """A HOST:PORT where nothing listens is one line at once (Ray would retry for minutes)."""
        if not self.address or self.address in ("auto", "local") or "://" in self.address:
            return
        host, _, port = self.address.rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=10).close()
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or first_line(exc)
            raise ConfigError(f"--address {self.address}: no Ray cluster answers there ({why}); "
                              "start one with `ray start --head`, or give its HOST:PORT") from None

    def prepare(self, cell: Cell) -> Cell:
        cell = super().prepare(cell)
        if cell.cfg.device.startswith("cuda:"):  # Ray hands each task its own GPU(s)
            cell = replace(cell, cfg=replace(cell.cfg, device="cuda"))
        return cell

    def submit(self, cell: Cell) -> Task:
        task = Task(self.prepare(cell))
        gpus = self.gpus if self.gpus is not None else (
            1 if task.cell.cfg.device.startswith("cuda") else 0)
        options = {"num_cpus": task.cell.cfg.threads, "num_gpus": gpus, "max_retries": self.retries,
                   "retry_exceptions": False, "name": f"ralis:{cell.name}"}
        task.handle = self._remote.options(**options).remote(task.cell, self.fn, os.getcwd())
        self._inflight.add(task.handle)
        return task

    def wait(self, tasks: Sequence[Task]) -> list[Task]:
        ray = self._ray
        by_ref = {t.handle: t for t in tasks}
        ready, _ = ray.wait(list(by_ref), num_returns=1)
        finished = []
        for ref in ready:
            self._inflight.discard(ref)
            task = by_ref[ref]
            try:
                ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                task.error = describe(cause) if cause is not None else describe(exc)
                if cause is None or as_user_error(cause) is None:
                    task.detail = str(exc)
            except ray.exceptions.RayError as exc:  # the worker died more than max_retries
                task.error = f"Ray gave up on it: {describe(exc)}"
            finished.append(task)
        return finished

    def close(self, cancel: bool = False) -> None:
        if self._ray is None:
            return
        if cancel:  # stop the running cells now (as a kill: each resumes on the next run)
            for ref in self._inflight:
                self._ray.cancel(ref, force=True)
        self._inflight.clear()
        if self._owned:
            self._ray.shutdown()  # ends this driver's tasks too
            self._owned = False
        self._ray = None

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
        return f"ray ({where}, {_threads(self.threads)} and CPUs per cell)"


def _threads(threads: int | None) -> str:
    return (f"{threads} thread{'s' if threads != 1 else ''}" if threads else
            f"the config's threads (default {DEFAULT_THREADS})")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'ralis[ray]'") from None
    return ray


def make_executor(name: str, jobs: int | None = None, threads: int | None = None,
                  address: str | None = None, gpus: float | None = None,
                  progress: bool = True, proto: Any = None,
                  say: Callable[[str], None] | None = None) -> Executor:
    """The executor named on the command line (``--executor``), its options checked."""
    if name not in EXECUTORS:
        raise ConfigError(f"--executor {name!r}: choose one of {', '.join(EXECUTORS)}")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads-per-job {threads}: give at least 1")
    if address is not None and name != "ray":
        raise ConfigError("--address is the Ray cluster to join; it needs --executor ray")
    if gpus is not None and name != "ray":
        raise ConfigError("--gpus-per-job is what each Ray task asks for; it needs --executor ray")
    if name == "sequential":
        if jobs is not None and jobs != 1:
            raise ConfigError(f"--jobs {jobs} runs cells side by side: add --executor local "
                              "(this machine) or --executor ray")
        return SequentialExecutor(threads=threads, progress=progress, proto=proto)
    if name == "local":
        return LocalExecutor(jobs=os.cpu_count() or 1 if jobs is None else jobs, threads=threads,
                             say=say or _say)
    if gpus is not None and gpus < 0:
        raise ConfigError(f"--gpus-per-job {gpus}: give 0 or more")
    import_ray()  # a missing Ray or an unreachable --address is one line before any work
    executor = RayExecutor(address=address, jobs=jobs, threads=threads, gpus=gpus)
    executor._check_address()
    return executor


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RayExecutor", "SequentialExecutor",
           "make_executor"]
