"""Where campaign jobs run: this process, a process pool, or a Ray cluster.

``Executor.map(jobs)`` takes jobs and yields their results in any order, as they finish. A
job is any picklable object with ``run() -> result`` (which records its own failures) and
``failure(message) -> result`` (used when the job could not even report, e.g. its worker
process died for good). Executors never write to the gallery: the campaign's parent process
does, so DuckDB only ever sees one writer.

- ``LocalExecutor``: jobs one after another in this process (models cached here).
- ``ProcessExecutor(workers=N)``: a pool of N fresh ("spawn") processes, each loading the
  models once and keeping them for every job it runs. A worker that dies (killed, out of
  memory) breaks the pool: a fresh pool takes over the jobs left, up to ``max_restarts`` times.
- ``RayExecutor`` (``gallery.ray_executor``): Ray actors on one machine or a cluster.

What they share (the ``Job`` protocol, ``Executor``, ``run_safely``) is in ``gallery.running``.

**Same results whatever runs them.** Every executor runs each job with the same number of
torch threads (``JOB_THREADS``, 1 unless ``--threads-per-job`` says otherwise), because the
thread count changes how float sums are split and so the last bit of some pixels. Each run
records ``torch_threads`` (and the CPU's vector instruction set) in its ``versions``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from data.errors import ConfigError
from gallery.running import JOB_THREADS, Executor, Job, check_threads, run_safely

__all__ = ["EXECUTORS", "JOB_THREADS", "Executor", "Job", "LocalExecutor", "ProcessExecutor", "make_executor",
           "run_safely"]
EXECUTORS = ("auto", "local", "process", "ray")


class LocalExecutor(Executor):
    """Every job in this process, in order."""

    def __init__(self, *, threads: int = JOB_THREADS):
        self.threads = check_threads(threads)

    def describe(self) -> str:
        return f"LocalExecutor(threads per job={self.threads})"

    def map(self, jobs: Iterable[Job]) -> Iterator[Any]:
        for job in jobs:
            yield run_safely(job, self.threads)


def _watch_parent(parent_pid: int) -> None:
    # A worker whose campaign process was killed (kill -9 included) must not keep computing.
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(0.5)


def _init_worker(threads: int, parent_pid: int) -> None:
    import torch

    torch.set_num_threads(threads)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


class ProcessExecutor(Executor):
    """A pool of ``workers`` processes; each loads the models once (cached per process)."""

    def __init__(self, workers: int, *, threads: int = JOB_THREADS, max_restarts: int = 3):
        if workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.threads = check_threads(threads)
        self.max_restarts = max_restarts

    def describe(self) -> str:
        return f"ProcessExecutor(workers={self.workers}, threads per job={self.threads})"

    def map(self, jobs: Iterable[Job]) -> Iterator[Any]:
        left = dict(enumerate(jobs))
        restarts = 0
        while left:
            broken = yield from self._pool_run(left)
            if broken is None:
                return
            restarts += 1
            if restarts > self.max_restarts:  # a job that kills every worker it meets, say
                for job in left.values():
                    yield job.failure(f"worker failed ({restarts} pools broke): {broken}")
                return

    def _pool_run(self, left: dict[int, Job]) -> Iterator[Any]:
        """Run the jobs in ``left`` on one pool, removing each as its result is yielded;
        returns why the pool broke (a worker died), or None."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        # spawn: no inherited locks, file descriptors or half-initialised torch thread pools.
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(left)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.threads, os.getpid()),
        )
        try:
            futures = {pool.submit(run_safely, job, self.threads): index for index, job in left.items()}
            broken = None
            for future in as_completed(futures):
                index = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool as error:
                    broken = f"{type(error).__name__}: {error}"
                    break
                except Exception as error:  # the result could not be unpickled, say
                    result = left[index].failure(f"worker failed: {type(error).__name__}: {error}")
                del left[index]
                yield result
            if broken is not None:  # results that made it out before the pool broke are kept
                for future, index in futures.items():
                    if index in left and future.done() and not future.cancelled() and future.exception() is None:
                        del left[index]
                        yield future.result()
            return broken
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def make_executor(
    workers: int | None = None,
    *,
    kind: str = "auto",
    threads: int = JOB_THREADS,
    address: str | None = None,
    gpus_per_worker: float = 0.0,
    spool: str | None = None,
) -> Executor:
    """``auto``: one worker runs here (no process start-up cost), more run in a process pool;
    ``local`` and ``process`` force either; ``ray``: Ray actors (``workers`` None: as many as
    the cluster's CPUs or GPUs hold)."""
    if kind not in EXECUTORS:
        raise ConfigError(f"unknown executor {kind!r} (known: {', '.join(EXECUTORS)})")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if kind != "ray" and (address is not None or gpus_per_worker or spool is not None):
        raise ConfigError("--address, --gpus-per-worker and --spool are options of --executor ray")
    if kind == "ray":
        from gallery.ray_executor import RayExecutor

        return RayExecutor(workers, address=address, gpus_per_worker=gpus_per_worker, threads=threads,
                           spool=spool)
    workers = workers or 1
    if kind == "local" or (kind == "auto" and workers == 1):  # local: one job at a time, whatever workers says
        return LocalExecutor(threads=threads)
    return ProcessExecutor(workers, threads=threads)
