"""Where campaign jobs run: an interface a distributed engine can implement later.

``Executor.map(jobs)`` takes jobs and yields their results in any order, as they finish. A
job is any picklable object with ``run() -> result`` (which records its own failures) and
``failure(message) -> result`` (used when the job could not even report, e.g. its worker
process died). Executors never write to the gallery: the campaign's parent process does,
so DuckDB only ever sees one writer.

- ``LocalExecutor``: jobs one after another in this process (models cached here).
- ``ProcessExecutor(workers=N)``: a pool of N fresh ("spawn") processes, each loading the
  models once and keeping them for every job it runs; torch threads are shared out between
  the workers so they do not oversubscribe the cores.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from data.errors import ConfigError


class Job(Protocol):
    def run(self) -> Any: ...

    def failure(self, message: str) -> Any: ...


def run_safely(job: Job) -> Any:
    """``job.run()``, turning anything it lets escape into the job's failure result."""
    try:
        return job.run()
    except Exception:  # a job must never take the campaign down with it
        return job.failure(traceback.format_exc(limit=8))


class Executor(ABC):
    """Runs jobs and yields their results as they finish."""

    @abstractmethod
    def map(self, jobs: Iterable[Job]) -> Iterator[Any]: ...

    def describe(self) -> str:
        return type(self).__name__


class LocalExecutor(Executor):
    """Every job in this process, in order."""

    def map(self, jobs: Iterable[Job]) -> Iterator[Any]:
        for job in jobs:
            yield run_safely(job)


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

    def __init__(self, workers: int, *, threads_per_worker: int | None = None):
        if workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)

    def describe(self) -> str:
        return f"ProcessExecutor(workers={self.workers}, threads={self.threads})"

    def map(self, jobs: Iterable[Job]) -> Iterator[Any]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        jobs = list(jobs)
        if not jobs:
            return
        # spawn: no inherited locks, file descriptors or half-initialised torch thread pools.
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(jobs)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.threads, os.getpid()),
        )
        try:
            futures = {pool.submit(run_safely, job): job for job in jobs}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as error:  # the worker died (BrokenProcessPool) or unpickling failed
                    yield futures[future].failure(f"worker failed: {type(error).__name__}: {error}")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def make_executor(workers: int = 1) -> Executor:
    """One worker: run here (no process start-up cost); more: a process pool."""
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    return LocalExecutor() if workers == 1 else ProcessExecutor(workers)
