"""Executors compared on one tiny campaign: jobs/s and the overhead each adds per job.

    python -m bench.executors [--workers 2] [--seeds 12]

The campaign (starter zoo: dcgan-world, clip-world, classifier-world; population 8 x 2
generations, so a job is mostly overhead) runs into a fresh gallery once per executor: this
process (one worker), the process pool and Ray (a local instance started
here). Reported per executor: the wall time, the time to the first result (starting workers,
loading models), the steady pace (jobs/s from the first finished job to the last), and
Ray's overhead against the process pool: in start-up, and per job at the steady pace. One
run, this machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from gallery.campaign import run_campaign
from gallery.config import parse_config
from gallery.executor import Executor, LocalExecutor, ProcessExecutor


class Timed(Executor):
    """Wraps an executor and notes when each result reached the writer."""

    def __init__(self, inner: Executor):
        self.inner, self.times = inner, []

    def map(self, jobs):
        for result in self.inner.map(jobs):
            self.times.append(time.perf_counter())
            yield result


def campaign(seeds: int):
    return parse_config({
        "name": "bench-executors", "prompts": ["a beautiful landscape", "a calm sea"],
        "generators": ["dcgan-world"], "seeds": seeds, "clip": "clip-world", "labellers": ["classifier-world"],
        "search": {"pop_size": 8, "generations": 2, "top_k": 2},
    })


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=12, help="seeds per prompt (two prompts)")
    args = parser.parse_args(argv)
    config = campaign(args.seeds)
    executors: list[tuple[str, Executor]] = [("local (1 worker)", LocalExecutor()),
                                             (f"process pool ({args.workers})", ProcessExecutor(args.workers))]
    try:
        from gallery.ray_executor import RayExecutor

        executors.append((f"ray ({args.workers}, local instance)", RayExecutor(args.workers)))
    except Exception as error:  # noqa: BLE001 - the extra is optional
        print(f"ray: unavailable ({error})")
    print(f"{'executor':30} {'jobs':>5} {'wall s':>7} {'first job s':>12} {'steady jobs/s':>14} {'steady ms/job':>14}")
    rows = {}
    for label, executor in executors:
        timed = Timed(executor)
        with tempfile.TemporaryDirectory() as scratch:
            start = time.perf_counter()
            summary = run_campaign(config, Path(scratch) / "gallery", executor=timed, progress=False)
            wall = time.perf_counter() - start
        n = summary.done + summary.failed
        steady = (n - 1) / (timed.times[-1] - timed.times[0]) if n > 1 else float("nan")
        rows[label] = (timed.times[0] - start, steady)
        print(f"{label:30} {n:5d} {wall:7.1f} {timed.times[0] - start:12.1f} {steady:14.2f} {1000 / steady:14.0f}")
    pool = rows.get(f"process pool ({args.workers})")
    ray = next((row for label, row in rows.items() if label.startswith("ray")), None)
    if pool and ray:
        print(f"ray against the process pool ({args.workers} workers each): start-up {ray[0] - pool[0]:+.1f} s, "
              f"steady {1000 / ray[1] - 1000 / pool[1]:+.0f} ms per job")
    return 0


if __name__ == "__main__":
    sys.exit(main())
