"""The campaign's progress bar: jobs done, failed and skipped, an ETA, each worker's throughput.

The ETA is our own, not tqdm's: the first job each worker finishes carries its model loading,
so the pace is measured from the first finished job on, and shown once three more have
finished. A worker's throughput is its pace likewise: jobs after its first, over the time
since its first finished.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

MAX_WORKERS_SHOWN = 4  # more: the range of their rates and the total


@dataclass
class WorkerPace:
    jobs: int = 0
    first_at: float = 0.0
    last_at: float = 0.0

    @property
    def rate(self) -> float | None:
        """Jobs per second after the first one (None until there are two)."""
        span = self.last_at - self.first_at
        return (self.jobs - 1) / span if self.jobs > 1 and span > 0 else None


def format_rate(rate: float | None) -> str:
    if rate is None:
        return "…"
    if rate >= 0.1:
        return f"{rate:.2g}/s"
    return f"{rate * 60:.2g}/min" if rate * 60 >= 0.1 else f"{rate * 3600:.2g}/h"


class CampaignProgress:
    def __init__(self, *, total: int, skipped: int, todo: int, desc: str, enabled: bool):
        from tqdm.auto import tqdm

        self.todo, self.skipped = todo, skipped
        self.done = self.failed = 0
        self.workers: dict[str, WorkerPace] = {}
        self.first_at: float | None = None
        self.bar = tqdm(total=total, initial=skipped, desc=desc, unit="job", disable=not enabled,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
        self._show("warming up")

    def update(self, status: str, worker: str = "") -> None:
        from tqdm.auto import tqdm

        now = time.perf_counter()
        if status == "done":
            self.done += 1
        else:
            self.failed += 1
        pace = self.workers.setdefault(worker or "?", WorkerPace(first_at=now))
        pace.jobs, pace.last_at = pace.jobs + 1, now
        self.first_at = self.first_at or now
        finished = self.done + self.failed
        eta = "warming up"
        if finished > 3:
            eta = tqdm.format_interval((now - self.first_at) / (finished - 1) * (self.todo - finished))
        self.bar.update(1)
        self._show(eta)

    def workers_text(self) -> str:
        paces = list(self.workers.values())
        if len(paces) <= MAX_WORKERS_SHOWN:
            return " ".join(f"w{i + 1} {format_rate(p.rate)}" for i, p in enumerate(paces))
        rates = [p.rate for p in paces if p.rate is not None]
        if not rates:
            return f"{len(paces)} …"
        return (f"{len(paces)}: {format_rate(min(rates))}–{format_rate(max(rates))}, "
                f"total {format_rate(sum(rates))}")

    def _show(self, eta: str) -> None:
        postfix = {"done": self.done, "failed": self.failed, "skipped": self.skipped, "eta": eta}
        if len(self.workers) > 1:
            postfix["workers"] = self.workers_text()
        self.bar.set_postfix(postfix)

    def worker_lines(self) -> list[str]:
        """One line per worker (when more than one ran jobs): its jobs and pace."""
        if len(self.workers) < 2:
            return []
        return [f"  worker w{i + 1} ({name}): {pace.jobs} jobs, {format_rate(pace.rate)}"
                for i, (name, pace) in enumerate(self.workers.items())]

    def close(self) -> None:
        self.bar.close()
