"""Campaigns: every (prompt x modifier x generator x seed x algorithm) search, plus unguided
baseline samples per generator, run as jobs and recorded in a gallery — resumably.

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

import hashlib
import json
import os
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path

import numpy as np

from data.errors import ConfigError
from gallery.config import CampaignConfig, apply_modifier
from gallery.executor import Executor, LocalExecutor
from gallery.images import EncodedImage, encode_png, sweep_orphans, write_png
from gallery.store import Store, utc_now

LOCK_NAME = ".campaign.lock"
BASELINE_ALGORITHM = "prior"


# -- models, loaded once per process -------------------------------------------------------------
@cache
def cached_generator(spec: str):
    from generators.registry import load_generator

    return load_generator(spec)


@cache
def cached_clip(name: str):
    from search.clip import load_clip

    return load_clip(name)


@cache
def cached_scorer(clip_name: str, augmentations: int):
    from search.scorer import ClipScorer

    return ClipScorer(cached_clip(clip_name), augmentations=augmentations)


@cache
def cached_labeller(spec: str):
    """``clip:NAME`` -> zero-shot labeller sharing the cached CLIP; else a saved classifier."""
    if spec.startswith("clip:"):
        from classifier.zeroshot import ZeroShotClassifier

        return ZeroShotClassifier(cached_clip(spec.removeprefix("clip:")))
    from classifier.model import load_classifier

    return load_classifier(spec)


def labeller_record(spec: str) -> dict:
    """What the ``labellers`` table keeps: class order, confusion matrix (None for zero-shot)."""
    labeller = cached_labeller(spec)
    evaluation = getattr(labeller, "evaluation", None) or {}
    return {
        "classes": list(labeller.classes),
        "confusion": evaluation.get("confusion_matrix"),
        "identity": labeller.identity(),
    }


# -- jobs and their results ------------------------------------------------------------------------
@dataclass
class Artwork:
    index: int
    role: str
    rank: int
    png: bytes
    sha256: str
    image_path: str
    similarity: float | None
    realism: float | None
    latent: list[float]
    labels: dict[str, dict] = field(default_factory=dict)  # labeller -> predicted, confidence, probabilities


@dataclass
class JobResult:
    job: CampaignJob
    status: str  # "done" | "failed"
    started_at: datetime
    finished_at: datetime
    duration_s: float
    error: str | None = None
    evaluations: int = 0
    history: list[float] = field(default_factory=list)
    generator_identity: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    artworks: list[Artwork] = field(default_factory=list)
    labellers: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class CampaignJob:
    """One search (or one chunk of baseline samples): picklable, so any executor can run it."""

    campaign_id: str
    kind: str  # "search" | "baseline"
    generator: str
    prompt: str | None
    modifier: str
    seed: int
    algorithm: str
    settings: dict
    clip: str
    labellers: tuple[str, ...]
    count: int = 1  # baseline samples in this chunk

    @property
    def full_prompt(self) -> str | None:
        return apply_modifier(self.prompt, self.modifier) if self.prompt is not None else None

    @property
    def run_id(self) -> str:
        """Hash of the job key and of the settings that shape its result (stable across runs)."""
        shaping = {"settings": self.settings, "labellers": sorted(self.labellers), "count": self.count}
        if self.kind == "search":
            shaping["clip"] = self.clip
        key = [self.campaign_id, self.kind, self.generator, self.prompt, self.modifier, self.seed,
               self.algorithm, shaping]
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]

    def describe(self) -> str:
        if self.kind == "baseline":
            return f"baseline {self.generator} seed {self.seed} ({self.count} samples)"
        return f"{self.algorithm} {self.generator} {self.full_prompt!r} seed {self.seed}"

    def run(self) -> JobResult:
        started, clock = utc_now(), time.perf_counter()
        try:
            result = self._search(started) if self.kind == "search" else self._baseline(started)
        except Exception:
            return self.failure(traceback.format_exc(limit=8), started, clock)
        result.finished_at, result.duration_s = utc_now(), time.perf_counter() - clock
        return result

    def failure(self, message: str, started: datetime | None = None, clock: float | None = None) -> JobResult:
        now = utc_now()
        duration = time.perf_counter() - clock if clock is not None else 0.0
        return JobResult(self, "failed", started or now, now, duration, error=message.strip())

    def _search(self, started: datetime) -> JobResult:
        import torch

        from search.engine import run_search

        generator = cached_generator(self.generator)
        config = _search_config(self.algorithm, self.settings)
        scorer = cached_scorer(self.clip, config.augmentations)
        found = run_search(generator, scorer, self.full_prompt, config, seed=self.seed, progress=False)

        images = [found.image]
        rows: list[tuple[str, float | None, float | None, np.ndarray]] = [
            ("chosen", found.similarity, found.realism, found.latent)]
        top_realism = _realism(generator, found.top_images)
        for i, latent in enumerate(found.top_latents):
            if np.array_equal(np.asarray(latent, dtype=np.float32), found.latent):
                continue  # the chosen artwork is already rank 0
            images.append(found.top_images[i])
            rows.append(("top", float(found.top_similarities[i]), _at(top_realism, i), latent))
        if found.front is not None:
            front = found.front
            for i, latent in enumerate(front["latents"]):
                if i == int(front["chosen"]):
                    continue
                images.append(front["images"][i])
                rows.append(("pareto", float(front["similarity"][i]), float(front["realism"][i]), latent))
        artworks = [
            _artwork(index, role, index, image, similarity, realism, latent)
            for index, (image, (role, similarity, realism, latent)) in enumerate(zip(images, rows, strict=True))
        ]
        self._label(artworks, torch.stack([image.cpu() for image in images]))
        return JobResult(
            self, "done", started, started, 0.0, evaluations=found.evaluations,
            history=[float(h) for h in found.history], generator_identity=found.generator,
            versions=found.versions, artworks=artworks,
            labellers={spec: labeller_record(spec) for spec in self.labellers},
        )

    def _baseline(self, started: datetime) -> JobResult:
        import torch

        from data.provenance import versions

        generator = cached_generator(self.generator)
        latents = generator.latent_space.sample(self.count, torch.Generator().manual_seed(self.seed))
        with torch.no_grad():
            images = generator.generate(latents).cpu()
        realism = _realism(generator, images)
        artworks = [
            _artwork(i, "baseline", i, images[i], None, _at(realism, i), latents[i].numpy())
            for i in range(self.count)
        ]
        self._label(artworks, images)
        return JobResult(
            self, "done", started, started, 0.0, generator_identity=generator.identity(),
            versions=versions(), artworks=artworks,
            labellers={spec: labeller_record(spec) for spec in self.labellers},
        )

    def _label(self, artworks: list[Artwork], images) -> None:
        import torch

        from classifier.prediction import predict

        for spec in self.labellers:
            labeller = cached_labeller(spec)
            with torch.no_grad():
                probabilities = predict(labeller, images).cpu().numpy()
            for artwork, probs in zip(artworks, probabilities, strict=True):
                best = int(np.argmax(probs))
                artwork.labels[spec] = {
                    "predicted": labeller.classes[best],
                    "confidence": float(probs[best]),
                    "probabilities": {c: float(p) for c, p in zip(labeller.classes, probs, strict=True)},
                }


def _search_config(algorithm: str, settings: dict):
    from search.config import SearchConfig

    return SearchConfig(algorithm=algorithm, **settings)


def _realism(generator, images) -> np.ndarray | None:
    import torch

    if not generator.has_realism or len(images) == 0:
        return None
    with torch.no_grad():
        return generator.realism(images.to(generator.device)).cpu().numpy()


def _at(values: np.ndarray | None, i: int) -> float | None:
    return None if values is None else float(values[i])


def _artwork(index, role, rank, image, similarity, realism, latent) -> Artwork:
    encoded = encode_png(image)
    return Artwork(index, role, rank, encoded.png, encoded.sha256, encoded.relative_path,
                   similarity, realism, [float(v) for v in np.asarray(latent).ravel()])


# -- planning --------------------------------------------------------------------------------------
def plan_jobs(config: CampaignConfig) -> list[CampaignJob]:
    """Every job of the campaign: baselines first (they anchor every comparison), then searches."""
    jobs: list[CampaignJob] = []
    for generator in config.generators:
        for chunk, count in config.baseline.chunks():
            jobs.append(CampaignJob(
                config.campaign_id, "baseline", generator, None, "", config.baseline.seed + chunk,
                BASELINE_ALGORITHM, {"chunk": config.baseline.chunk}, config.clip, config.labellers, count,
            ))
    for prompt in config.prompts:
        for modifier in config.modifiers:
            for generator in config.generators:
                for seed in prompt.seeds:
                    for algorithm in config.algorithms:
                        settings = _search_config(algorithm, config.search).to_dict()
                        settings.pop("algorithm")
                        jobs.append(CampaignJob(
                            config.campaign_id, "search", generator, prompt.text, modifier, seed,
                            algorithm, settings, config.clip, config.labellers,
                        ))
    return jobs


def preflight(config: CampaignConfig) -> None:
    """Fail fast, before anything is written, when a catalogue model's weights are absent."""
    from data.weights.catalog import get_entry
    from data.weights.resolve import resolve_weights

    names = [g for g in config.generators if ":" not in g]
    clips = [config.clip] + [s.removeprefix("clip:") for s in config.labellers if s.startswith("clip:")]
    names += [c for c in clips if ":" not in c and "/" not in c and not Path(c).is_dir()]
    names += [s for s in config.labellers if not s.startswith("clip:") and not Path(s).is_dir()]
    for name in dict.fromkeys(names):
        resolve_weights(get_entry(name))  # WeightsNotFoundError says what is missing and how to get it


# -- recording -------------------------------------------------------------------------------------
def record(store: Store, result: JobResult) -> None:
    """PNGs first (content-named), then the run, its artworks and labels in one transaction."""
    for artwork in result.artworks:
        write_png(store.root, EncodedImage(artwork.png, artwork.sha256))
    job = result.job
    now = utc_now()
    settings = job.settings if job.kind == "baseline" else {"algorithm": job.algorithm, **job.settings}
    with store.write() as con:
        con.execute("DELETE FROM labels WHERE artwork_id IN (SELECT artwork_id FROM artworks WHERE run_id = ?)", [job.run_id])
        con.execute("DELETE FROM artworks WHERE run_id = ?", [job.run_id])
        con.execute("DELETE FROM runs WHERE run_id = ?", [job.run_id])
        con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [job.run_id, job.campaign_id, job.kind, job.generator, job.prompt, job.modifier,
             job.full_prompt, job.seed, job.algorithm, json.dumps(settings), job.clip,
             json.dumps(result.generator_identity, default=str), json.dumps(result.versions),
             result.status, result.error, result.evaluations, json.dumps(result.history),
             result.started_at, result.finished_at, result.duration_s],
        )
        if result.artworks:
            con.executemany(
                "INSERT INTO artworks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[f"{job.run_id}:{a.index}", job.run_id, a.role, a.rank, a.sha256, a.image_path,
                  a.similarity, a.realism, json.dumps(a.latent), now] for a in result.artworks],
            )
            labels = [[f"{job.run_id}:{a.index}", spec, label["predicted"], label["confidence"],
                       json.dumps(label["probabilities"])]
                      for a in result.artworks for spec, label in a.labels.items()]
            if labels:
                con.executemany("INSERT INTO labels VALUES (?, ?, ?, ?, ?)", labels)
        for spec, info in result.labellers.items():
            con.execute(
                "INSERT INTO labellers VALUES (?, ?, ?, ?) ON CONFLICT (labeller) DO UPDATE SET "
                "classes_json = excluded.classes_json, confusion_json = excluded.confusion_json, "
                "identity_json = excluded.identity_json",
                [spec, json.dumps(info["classes"]),
                 json.dumps(info["confusion"]) if info["confusion"] is not None else None,
                 json.dumps(info["identity"], default=str)],
            )


def register_campaign(store: Store, config: CampaignConfig, planned: set[str], *, prune: bool) -> int:
    """Create or update the campaign row; handle runs a changed config no longer plans.

    Failed runs outside the plan are dropped; finished ones are kept unless ``prune``, in
    which case they are deleted with their artworks and labels (their images are swept).
    Returns the number of finished runs pruned.
    """
    existing = store.read("SELECT run_id, status FROM runs WHERE campaign_id = ?", [config.campaign_id])
    stale = existing[~existing["run_id"].isin(planned)]
    stale_done = stale[stale["status"] == "done"]["run_id"].tolist()
    if stale_done and not prune:
        raise ConfigError(
            f"campaign {config.name!r} already holds {len(stale_done)} finished runs that this config "
            "no longer plans (its prompts, generators, seeds or settings changed); use a new campaign "
            "name, or pass --prune to delete those runs"
        )
    stale_ids = stale["run_id"].tolist()
    with store.write() as con:
        con.execute(
            "INSERT INTO campaigns VALUES (?, ?, ?, ?) ON CONFLICT (campaign_id) DO UPDATE SET "
            "name = excluded.name, config_json = excluded.config_json",
            [config.campaign_id, config.name, json.dumps(config.to_dict()), utc_now()],
        )
        if stale_ids:
            con.execute("CREATE TEMP TABLE stale_runs (run_id VARCHAR)")
            con.executemany("INSERT INTO stale_runs VALUES (?)", [[r] for r in stale_ids])
            con.execute("DELETE FROM labels WHERE artwork_id IN (SELECT artwork_id FROM artworks "
                        "WHERE run_id IN (SELECT run_id FROM stale_runs))")
            con.execute("DELETE FROM artworks WHERE run_id IN (SELECT run_id FROM stale_runs)")
            con.execute("DELETE FROM runs WHERE run_id IN (SELECT run_id FROM stale_runs)")
    return len(stale_done)


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

    def lines(self) -> list[str]:
        head = (f"campaign {self.campaign_id}: {self.planned} jobs — {self.done} done, {self.skipped} "
                f"already finished, {self.failed} failed ({self.duration_s:.1f} s) -> {self.gallery}")
        lines = [head]
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
    from tqdm.auto import tqdm

    clock = time.perf_counter()
    jobs = plan_jobs(config)
    preflight(config)  # before the gallery is created or touched
    store = Store(gallery)
    summary = CampaignSummary(config.campaign_id, store.root, len(jobs))
    with campaign_lock(store.root):
        store.migrate()
        summary.pruned = register_campaign(store, config, {job.run_id for job in jobs}, prune=prune)
        # After pruning, so the images of pruned runs go too.
        summary.orphans_removed = len(sweep_orphans(store.root, store.image_paths()))
        finished = store.done_run_ids(config.campaign_id)
        todo = [job for job in jobs if job.run_id not in finished]
        summary.skipped = len(jobs) - len(todo)
        bar = tqdm(total=len(jobs), initial=summary.skipped, desc=f"campaign {config.campaign_id}",
                   unit="job", disable=not progress)
        bar.set_postfix(done=0, failed=0, skipped=summary.skipped)
        try:
            for result in (executor or LocalExecutor()).map(todo):
                record(store, result)
                if result.status == "done":
                    summary.done += 1
                else:
                    summary.failed += 1
                    last = (result.error or "").strip().splitlines()
                    summary.failures.append((result.job.describe(), last[-1] if last else "unknown error"))
                bar.update(1)
                bar.set_postfix(done=summary.done, failed=summary.failed, skipped=summary.skipped)
        finally:
            bar.close()
    summary.duration_s = time.perf_counter() - clock
    return summary
