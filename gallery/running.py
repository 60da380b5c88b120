"""What every executor shares: the job protocol, the executor interface, and running one job
safely on a fixed number of torch threads (so results never depend on the executor)."""

from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from data.errors import ConfigError


class Job(Protocol):
    def run(self) -> Any: ...

    def failure(self, message: str) -> Any: ...


JOB_THREADS = 1  # torch threads per job under every executor, so results never depend on it


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch runs on ``threads`` threads within the block (the previous count after it)."""
    import torch

    previous = torch.get_num_threads()
    if threads != previous:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def run_safely(job: Job, threads: int = JOB_THREADS) -> Any:
    """``job.run()`` on ``threads`` torch threads, turning anything it lets escape into the
    job's failure result."""
    try:
        with torch_threads(threads):
            return job.run()
    except Exception:  # a job must never take the campaign down with it
        return job.failure(traceback.format_exc(limit=8))


def check_threads(threads: int) -> int:
    if threads < 1:
        raise ConfigError(f"threads per job must be at least 1, got {threads}")
    return threads


class Executor(ABC):
    """Runs jobs and yields their results as they finish."""

    @abstractmethod
    def map(self, jobs: Iterable[Job]) -> Iterator[Any]: ...

    def describe(self) -> str:
        return type(self).__name__
