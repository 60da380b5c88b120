"""Campaigns: plan the jobs, run them on an executor, record each result — resumably.

The three rooms: ``gallery.planning`` turns a config into jobs, ``gallery.jobs`` runs one
job on any worker (no store access), and this module records results through the store's
write API (``gallery.store.writes``), from one process only.

How a campaign stays correct when killed at any point (kill -9 included):
1. Each job has a ``run_id`` hashed from its key and the settings that shape its result, so
   a rerun recognises finished jobs and skips them.
2. A job's PNGs are written first (content-named, renamed into place), then its run,
   artwork and label rows in ONE transaction. A kill before the commit leaves at most
   unreferenced PNGs, which the next start sweeps; the rows are all there or none is.
3. Only this (parent) process writes to DuckDB, one short transaction per job, so readers
   (the gallery app) only ever wait milliseconds; a lock file keeps two campaigns from
   writing to one gallery at once.

A job that raises is recorded as a ``failed`` run with its error, reported at the end, and
retried by the next rerun; the other jobs go on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from data.errors import ConfigError
from gallery.config import CampaignConfig
from gallery.executor import Executor, LocalExecutor
from gallery.images import EncodedImage, sweep_orphans, write_png
from gallery.jobs import JobResult
from gallery.planning import plan_jobs, preflight
from gallery.progress import CampaignProgress
from gallery.store import GalleryError, Store, utc_now
from gallery.store.records import CampaignRecord
from gallery.store.writes import record_run, upsert_campaign

LOCK_NAME = ".campaign.lock"


# -- recording -------------------------------------------------------------------------------------
def record(store: Store, result: JobResult) -> None:
    """PNGs first (content-named), then the run, its artworks and labels in one transaction.

    A PNG that cannot be written (disk full, read-only gallery) stops the campaign with a
    ``GalleryError``: the job's rows are not written, finished jobs are kept, and the next
    start sweeps any image file left without a row."""
    for artwork in result.artworks:
        try:
            write_png(store.root, EncodedImage(artwork.png, artwork.sha256))
        except OSError as error:
            raise GalleryError(f"could not write an image into gallery {store.root}: {error.strerror or error}; "
                               "finished jobs are kept, rerun the campaign once that is fixed") from None
    record_run(store, result.run_record(), result.artwork_records(utc_now()), result.label_records(),
               result.labellers)


def register_campaign(store: Store, config: CampaignConfig, planned: set[str], *, prune: bool) -> int:
    """Create or update the campaign row; handle runs a changed config no longer plans.

    Failed runs outside the plan are dropped; finished ones are kept unless ``prune``, in
    which case they are deleted with their artworks and labels (their images are swept).
    Returns the number of finished runs pruned.
    """
    existing = store.runs(campaign_id=config.campaign_id)
    stale = existing[~existing["run_id"].isin(planned)]
    stale_done = stale[stale["status"] == "done"]["run_id"].tolist()
    if stale_done and not prune:
        raise ConfigError(
            f"campaign {config.name!r} already holds {len(stale_done)} finished runs that this config "
            "no longer plans (its prompts, generators, seeds or settings changed); use a new campaign "
            "name, or pass --prune to delete those runs"
        )
    upsert_campaign(store, CampaignRecord(config.campaign_id, config.name, config.to_dict(), utc_now()),
                    delete_runs=stale["run_id"].tolist())
    return len(stale_done)


def check_gallery(store: Store) -> None:
    """The gallery a campaign is about to write: a folder (or a path where one can be made)
    whose ``gallery.duckdb``, when present, reads whole (``Store.verify``) and is an artbias
    gallery no newer than this artbias."""
    root = store.root
    if root.exists() and not root.is_dir():
        raise GalleryError(f"gallery path {root} is a file, not a folder")
    ancestor = root
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise GalleryError(f"cannot create gallery folder {root}: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK) or (store.exists and not os.access(store.db_path, os.W_OK)):
        raise GalleryError(f"gallery {root} is read-only; a campaign needs to write there")
    if store.exists:
        store.verify()


@contextmanager
def campaign_lock(gallery_dir: Path) -> Iterator[None]:
    """Exclusive right to write the gallery; released by the OS even on kill -9."""
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): one writer is then the user's job
        yield
        return
    gallery_dir.mkdir(parents=True, exist_ok=True)
    handle = open(gallery_dir / LOCK_NAME, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another campaign is writing to gallery {gallery_dir}; wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


# -- the campaign ----------------------------------------------------------------------------------
@dataclass
class CampaignSummary:
    campaign_id: str
    gallery: Path
    planned: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    pruned: int = 0
    orphans_removed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (job, last error line)
    duration_s: float = 0.0
    workers: list[str] = field(default_factory=list)  # each worker's jobs and pace (several workers)

    def lines(self) -> list[str]:
        head = (f"campaign {self.campaign_id}: {self.planned} jobs — {self.done} done, {self.skipped} "
                f"already finished, {self.failed} failed ({self.duration_s:.1f} s) -> {self.gallery}")
        lines = [head, *self.workers]
        if self.orphans_removed:
            lines.append(f"removed {self.orphans_removed} unreferenced image files left by an interrupted run")
        if self.pruned:
            lines.append(f"pruned {self.pruned} finished runs the config no longer plans")
        for job, error in self.failures:
            lines.append(f"  failed: {job}: {error}")
        if self.failures:
            lines.append("failed jobs are retried when the campaign is run again")
        return lines


def run_campaign(
    config: CampaignConfig,
    gallery: str | Path,
    *,
    executor: Executor | None = None,
    progress: bool = True,
    prune: bool = False,
) -> CampaignSummary:
    """Run every unfinished job of ``config`` into ``gallery``; safe to kill and rerun."""
    clock = time.perf_counter()
    jobs = plan_jobs(config)
    preflight(config)  # before the gallery is created or touched
    store = Store(gallery)
    check_gallery(store)  # a damaged or foreign file is refused before anything is written to it
    summary = CampaignSummary(config.campaign_id, store.root, len(jobs))
    with campaign_lock(store.root):
        store.migrate()
        summary.pruned = register_campaign(store, config, {job.run_id for job in jobs}, prune=prune)
        # After pruning, so the images of pruned runs go too.
        summary.orphans_removed = len(sweep_orphans(store.root, store.image_paths()))
        finished = store.done_run_ids(config.campaign_id)
        todo = [job for job in jobs if job.run_id not in finished]
        summary.skipped = len(jobs) - len(todo)
        bar = CampaignProgress(total=len(jobs), skipped=summary.skipped, todo=len(todo),
                               desc=f"campaign {config.campaign_id}", enabled=progress)
        try:
            for result in (executor or LocalExecutor()).map(todo):
                record(store, result)
                if result.status == "done":
                    summary.done += 1
                else:
                    summary.failed += 1
                    last = (result.error or "").strip().splitlines()
                    summary.failures.append((result.job.describe(), last[-1] if last else "unknown error"))
                bar.update(result.status, result.worker)
        finally:
            bar.close()
            summary.workers = bar.worker_lines()
    summary.duration_s = time.perf_counter() - clock
    return summary
