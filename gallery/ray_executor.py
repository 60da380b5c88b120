"""Campaign jobs on a Ray cluster: one machine (``ray.init``) or many (``--address``).

Each worker is a Ray actor, a process that loads its models once and runs jobs one at a time,
each on ``threads`` torch threads (the same count every executor uses, so results do not
depend on what ran them). Actors ask Ray for ``threads`` CPUs and ``gpus_per_worker`` GPUs;
with GPUs the jobs run on CUDA. Jobs go to whichever worker is free, two queued per worker so
none waits for the driver.

Faults: a worker process that dies (killed, out of memory, its node lost) is restarted by Ray
and the jobs it held are retried there (``max_retries`` times each); a job still without a
result after that comes back as a failed run, retried when the campaign runs again. Workers
never touch the gallery: results come back to the campaign's single writer, either through
Ray (rows and PNG bytes) or, with ``spool``, through shared storage (``gallery.spool``).

Ray is an optional extra: ``pip install -e ".[ray]"``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from data.errors import ConfigError
from gallery.running import JOB_THREADS, Executor, Job, check_threads, run_safely

RAY_INSTALL = 'pip install -e ".[ray]"  (from the repository root; or: pip install "ray>=2.9")'
QUEUE_DEPTH = 2  # jobs queued per worker: one running, one waiting


def import_ray():
    """The ``ray`` module, or a ``ConfigError`` that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--executor ray needs Ray, an optional extra; install it with: {RAY_INSTALL}") from None
    return ray


class JobWorker:
    """The actor's body: runs one job at a time in its own process; models stay cached there."""

    def __init__(self, threads: int, device: str, spool: str | None):
        if device != "cpu":
            os.environ["ARTBIAS_DEVICE"] = device  # read by gallery.jobs when it loads models
        self.threads, self.spool = threads, spool

    def pid(self) -> int:
        return os.getpid()

    def run(self, job: Job) -> Any:
        result = run_safely(job, self.threads)
        if self.spool is None:
            return result
        from gallery.spool import write_result

        return write_result(self.spool, result)


class RayExecutor(Executor):
    """Ray actors as workers; ``workers`` None: as many as the cluster's CPUs (or GPUs) hold."""

    def __init__(
        self,
        workers: int | None = None,
        *,
        address: str | None = None,
        gpus_per_worker: float = 0.0,
        threads: int = JOB_THREADS,
        spool: str | Path | None = None,
        max_retries: int = 3,
    ):
        import_ray()  # say how to install it before anything else happens
        if workers is not None and workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        if gpus_per_worker < 0:
            raise ConfigError(f"--gpus-per-worker must be >= 0, got {gpus_per_worker}")
        self.workers = workers
        self.address = address
        self.gpus_per_worker = gpus_per_worker
        self.threads = check_threads(threads)
        self.spool = Path(spool).expanduser().resolve() if spool is not None else None
        self.max_retries = max_retries
        self._pid_refs: list = []

    def describe(self) -> str:
        where = self.address or "a local Ray instance"
        workers = self.workers or "as many as it holds"
        gpus = f", {self.gpus_per_worker:g} GPU each" if self.gpus_per_worker else ""
        spool = f", results spooled in {self.spool}" if self.spool else ""
        return f"RayExecutor({where}, workers: {workers}, threads per job={self.threads}{gpus}{spool})"

    def worker_pids(self) -> list[int]:
        """Process ids of the current map's workers as they started (for tests and diagnosis)."""
        import ray

        return ray.get(self._pid_refs)

    # -- running ----------------------------------------------------------------------------------
    def map(self, jobs: Iterable[Job]) -> Iterator[Any]:
        ray = import_ray()
        jobs = list(jobs)
        if self.spool is not None:
            jobs = yield from self._ingest_leftovers(jobs)
        if not jobs:
            return
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING, configure_logging=False)
        actors: list = []
        try:
            worker = ray.remote(JobWorker).options(
                num_cpus=self.threads, num_gpus=self.gpus_per_worker, max_restarts=-1,
                max_task_retries=self.max_retries)
            device = "cuda" if self.gpus_per_worker else "cpu"
            spool = str(self.spool) if self.spool is not None else None
            actors = [worker.remote(self.threads, device, spool) for _ in range(self._worker_count(ray, len(jobs)))]
            self._pid_refs = [actor.pid.remote() for actor in actors]  # runs before any job
            queue = deque(jobs)
            pending: dict = {}  # object ref -> (job, actor)

            def submit(actor) -> None:
                job = queue.popleft()
                pending[actor.run.remote(job)] = (job, actor)

            for _ in range(QUEUE_DEPTH):
                for actor in actors:
                    if queue:
                        submit(actor)
            while pending:
                [ref], _ = ray.wait(list(pending), num_returns=1)
                job, actor = pending.pop(ref)
                if queue:
                    submit(actor)
                result = self._result(ray, ref, job)
                yield result
                if self.spool is not None:  # recorded by now: the shard has done its work
                    from gallery.spool import remove

                    remove(self.spool, job.campaign_id, job.run_id)
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)
            self._pid_refs = []
            if started_here:
                ray.shutdown()
            if self.spool is not None:
                from gallery.spool import sweep

                sweep(self.spool)

    def _worker_count(self, ray, n_jobs: int) -> int:
        """The workers asked for, capped by what the cluster holds now (an actor that cannot be
        placed would keep its jobs waiting for ever) and by the number of jobs."""
        resources = ray.cluster_resources()
        if self.gpus_per_worker:
            capacity = int(resources.get("GPU", 0) // self.gpus_per_worker)
            capacity = min(capacity, int(resources.get("CPU", 0) // self.threads))
        else:
            capacity = int(resources.get("CPU", 0) // self.threads)
        if capacity < 1:
            need = f"{self.gpus_per_worker:g} GPU and " if self.gpus_per_worker else ""
            raise ConfigError(f"the Ray cluster has no room for one worker ({need}{self.threads} CPU); "
                              f"it holds {dict(resources)}")
        wanted = self.workers or capacity
        if wanted > capacity:
            print(f"the Ray cluster holds {capacity} workers now; running {capacity}, not {wanted}", file=sys.stderr)
        return max(1, min(wanted, capacity, n_jobs))

    def _result(self, ray, ref, job: Job) -> Any:
        """The job's result, read from the spool when the worker spooled it."""
        try:
            result = ray.get(ref)
        except ray.exceptions.RayError as error:  # the worker died more often than retries allow
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            return job.failure(f"worker lost ({self.max_retries} retries): {type(error).__name__}: {first}")
        if self.spool is None:
            return result
        from gallery.spool import read_result

        try:
            return read_result(self.spool, result.campaign_id, result.run_id)
        except (OSError, ValueError, KeyError) as error:
            return job.failure(f"spooled result unreadable: {type(error).__name__}: {error}")

    def _ingest_leftovers(self, jobs: list[Job]) -> Iterator[Any]:
        """Yield the finished results a killed driver left in the spool (their jobs are not run
        again); drop every other shard (runs recorded since, failed runs). Returns the jobs
        still to run."""
        from gallery.spool import read_result, remove, spooled_run_ids

        todo = {job.run_id: job for job in jobs}
        for campaign_id in sorted({job.campaign_id for job in jobs}):
            for run_id in sorted(spooled_run_ids(self.spool, campaign_id)):
                job = todo.get(run_id)
                try:
                    result = read_result(self.spool, campaign_id, run_id) if job is not None else None
                except (OSError, ValueError, KeyError):
                    result = None
                if result is not None and result.status == "done":
                    yield result
                    del todo[run_id]
                remove(self.spool, campaign_id, run_id)
        return list(todo.values())
