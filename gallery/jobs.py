"""Campaign jobs, the worker side: one search or one chunk of unguided samples, labelled.

A job is picklable and touches no gallery: any executor (this process, a process pool, a
cluster) runs ``job.run()`` and hands the ``JobResult`` back to the campaign's single writer.
Models are loaded once per process and kept for every job it runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

import numpy as np

from gallery.config import apply_modifier
from gallery.images import encode_png
from gallery.store.database import utc_now
from gallery.store.records import ArtworkRecord, LabellerRecord, LabelRecord, RunRecord

BASELINE_ALGORITHM = "prior"


# -- models, loaded once per process -------------------------------------------------------------
def job_device() -> str:
    """Where this process runs its models: ``$ARTBIAS_DEVICE`` (GPU workers set it), else cpu."""
    return os.environ.get("ARTBIAS_DEVICE") or "cpu"


def execution_facts() -> dict:
    """What shapes a result's last bits besides the versions: torch threads, the CPU's vector
    instruction set, the device (recorded with every run)."""
    import torch

    return {"torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "device": job_device()}


@cache
def cached_generator(spec: str):
    from generators.registry import load_generator

    return load_generator(spec, device=job_device())


@cache
def cached_clip(name: str):
    from search.clip import load_clip

    return load_clip(name, device=job_device())


@cache
def cached_scorer(clip_name: str, augmentations: int):
    from search.scorer import ClipScorer

    return ClipScorer(cached_clip(clip_name), augmentations=augmentations)


@cache
def cached_labeller(spec: str):
    """A labeller; a zero-shot one shares the cached CLIP the searches score with."""
    from classifier.labellers import load_labeller

    return load_labeller(spec, device=job_device(), clip_loader=cached_clip)


def labeller_record(spec: str) -> LabellerRecord:
    """What the gallery keeps about a labeller: class order, confusion matrix, identity."""
    labeller = cached_labeller(spec)
    confusion = labeller.confusion
    identity = labeller.identity()
    if confusion is not None:
        identity = identity | {"confusion_source": confusion.source}
    return LabellerRecord(spec, list(labeller.classes), confusion.matrix if confusion else None, identity)


# -- results ---------------------------------------------------------------------------------------
@dataclass
class Artwork:
    """An artwork as a job returns it: PNG bytes (content-named) and its labels."""

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
    labellers: list[LabellerRecord] = field(default_factory=list)
    worker: str = ""  # host:pid of the process that ran the job (progress only; not stored)

    def run_record(self) -> RunRecord:
        job = self.job
        settings = job.settings if job.kind == "baseline" else {"algorithm": job.algorithm, **job.settings}
        if job.negatives:
            settings = settings | {"negatives": list(job.negatives), "negative_weight": job.negative_weight}
        return RunRecord(
            run_id=job.run_id, campaign_id=job.campaign_id, kind=job.kind, generator=job.generator,
            prompt=job.prompt, modifier=job.modifier, full_prompt=job.full_prompt, seed=job.seed,
            algorithm=job.algorithm, settings=settings, clip=job.clip, status=self.status,
            started_at=self.started_at, finished_at=self.finished_at, duration_s=self.duration_s,
            generator_identity=self.generator_identity, versions=self.versions, error=self.error,
            evaluations=self.evaluations, history=self.history, replicate=job.replicate,
        )

    def artwork_records(self, created_at: datetime) -> list[ArtworkRecord]:
        return [
            ArtworkRecord(f"{self.job.run_id}:{a.index}", self.job.run_id, a.role, a.rank, a.sha256,
                          a.image_path, a.similarity, a.realism, a.latent, created_at)
            for a in self.artworks
        ]

    def label_records(self) -> list[LabelRecord]:
        return [
            LabelRecord(f"{self.job.run_id}:{a.index}", spec, label["predicted"], label["confidence"],
                        label["probabilities"])
            for a in self.artworks for spec, label in a.labels.items()
        ]


# -- the job ---------------------------------------------------------------------------------------
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
    replicate: int = 0  # which disjoint seed set (follows from the seed: not part of run_id)
    negatives: tuple[str, ...] = ()  # prompts the search steers away from
    negative_weight: float = 0.5

    @property
    def full_prompt(self) -> str | None:
        return apply_modifier(self.prompt, self.modifier) if self.prompt is not None else None

    @property
    def run_id(self) -> str:
        """Hash of the job key and of the settings that shape its result (stable across runs)."""
        shaping = {"settings": self.settings, "labellers": sorted(self.labellers), "count": self.count}
        if self.kind == "search":
            shaping["clip"] = self.clip
        if self.negatives:  # only then, so runs planned before negatives existed keep their ids
            shaping["negatives"] = [list(self.negatives), self.negative_weight]
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
            result = self.failure(traceback.format_exc(limit=8), started, clock)
        else:
            result.finished_at, result.duration_s = utc_now(), time.perf_counter() - clock
            result.versions = result.versions | execution_facts()
        result.worker = f"{socket.gethostname()}:{os.getpid()}"
        return result

    def failure(self, message: str, started: datetime | None = None, clock: float | None = None) -> JobResult:
        now = utc_now()
        duration = time.perf_counter() - clock if clock is not None else 0.0
        return JobResult(self, "failed", started or now, now, duration, error=message.strip())

    def _search(self, started: datetime) -> JobResult:
        import torch

        from search.config import SearchConfig
        from search.engine import run_search
        from search.scorer import Prompt

        generator = cached_generator(self.generator)
        config = SearchConfig(algorithm=self.algorithm, **self.settings)
        scorer = cached_scorer(self.clip, config.augmentations)
        prompt = Prompt(self.full_prompt, negatives=self.negatives, negative_weight=self.negative_weight)
        found = run_search(generator, scorer, prompt, config, seed=self.seed, progress=False)
        candidates = found.candidates()
        images = torch.stack([c.image.cpu() for c in candidates])
        artworks = [_artwork(i, c.role, i, c.image, c.similarity, c.realism, c.latent)
                    for i, c in enumerate(candidates)]
        self._label(artworks, images)
        latents = torch.stack([torch.as_tensor(np.asarray(c.latent), dtype=torch.float32).reshape(-1)
                               for c in candidates])
        return JobResult(
            self, "done", started, started, 0.0, evaluations=found.evaluations,
            history=[float(h) for h in found.history], generator_identity=found.generator,
            versions=found.versions, artworks=artworks,
            labellers=[labeller_record(spec) for spec in self.labellers]
            + _label_intended(generator, artworks, latents),
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
            _artwork(i, "baseline", i, images[i], None, None if realism is None else float(realism[i]),
                     latents[i].numpy())
            for i in range(self.count)
        ]
        self._label(artworks, images)
        return JobResult(
            self, "done", started, started, 0.0, generator_identity=generator.identity(),
            versions=versions(), artworks=artworks,
            labellers=[labeller_record(spec) for spec in self.labellers]
            + _label_intended(generator, artworks, latents),
        )

    def _label(self, artworks: list[Artwork], images) -> None:
        from classifier.labellers import label

        for spec in self.labellers:
            for artwork, verdict in zip(artworks, label(cached_labeller(spec), images).as_dicts(), strict=True):
                artwork.labels[spec] = verdict


def _label_intended(generator, artworks: list[Artwork], latents) -> list[LabellerRecord]:
    """Each artwork's intended class (what its latent asks a class-conditional generator for),
    as labels of the ``intended`` labeller; nothing for generators that do not say."""
    from classifier.labellers import ATTRIBUTES, intended_spec

    found = {}
    intended = generator.intended_classes(latents)
    if intended is not None:
        found[None] = (intended, list(getattr(generator, "class_names", None) or dict.fromkeys(intended)))
    for attribute, values in generator.intended_attributes(latents).items():
        found[attribute] = (values, list(ATTRIBUTES[attribute]))
    records = []
    for attribute, (values, classes) in found.items():
        spec = intended_spec(attribute)
        for artwork, name in zip(artworks, values, strict=True):
            artwork.labels[spec] = {"predicted": name, "confidence": 1.0, "probabilities": {name: 1.0}}
        identity = {"kind": "intended", "generator": generator.name, "attribute": attribute,
                    "rule": generator.intended_note}
        records.append(LabellerRecord(spec, classes, None, identity))
    return records


def _realism(generator, images) -> np.ndarray | None:
    import torch

    if not generator.has_realism or len(images) == 0:
        return None
    with torch.no_grad():
        return generator.realism(images.to(generator.device)).cpu().numpy()


def _artwork(index, role, rank, image, similarity, realism, latent) -> Artwork:
    encoded = encode_png(image)
    return Artwork(index, role, rank, encoded.png, encoded.sha256, encoded.relative_path,
                   similarity, realism, [float(v) for v in np.asarray(latent).ravel()])
