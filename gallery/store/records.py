"""The store's vocabulary: one typed record per table row.

Campaign jobs produce these, ``gallery.store.writes`` persists them (the only module that
writes SQL) and nothing else needs to know the tables' column order. JSON columns are held
as Python values here and encoded on write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class CampaignRecord:
    campaign_id: str
    name: str
    config: dict
    created_at: datetime


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    campaign_id: str
    kind: str  # "search" | "baseline"
    generator: str
    prompt: str | None
    modifier: str
    full_prompt: str | None
    seed: int
    algorithm: str
    settings: dict
    clip: str
    status: str  # "done" | "failed"
    started_at: datetime
    finished_at: datetime
    duration_s: float
    generator_identity: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    error: str | None = None
    evaluations: int = 0
    history: list[float] | None = None
    replicate: int = 0  # the campaign's disjoint seed set this run belongs to


@dataclass(frozen=True)
class ArtworkRecord:
    artwork_id: str
    run_id: str
    role: str  # "chosen" | "top" | "pareto" | "baseline"
    rank: int
    image_sha256: str
    image_path: str  # relative to the gallery folder
    similarity: float | None
    realism: float | None
    latent: list[float]
    created_at: datetime


@dataclass(frozen=True)
class LabelRecord:
    artwork_id: str
    labeller: str
    predicted: str
    confidence: float
    probabilities: dict[str, float]


@dataclass(frozen=True)
class LabellerRecord:
    labeller: str
    classes: list[str]
    confusion: list[list[float]] | None  # rows true, columns predicted; None when unknown
    identity: dict
