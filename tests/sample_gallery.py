"""A small synthetic gallery (tiny PNGs + store records), for tests and screenshots.

Two generators with known, different class compositions for two prompts, unguided baselines,
a trained-classifier labeller with a confusion matrix and a CLIP zero-shot labeller that
mostly agrees with it. Rows go through the store's write API, so the app and ``artbias bias``
can be tried without any model:

    python tests/sample_gallery.py DIR
"""

from __future__ import annotations

import hashlib
import io
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from classifier.labellers import zero_shot_spec
from data.world.params import CLASSES
from gallery.store import Store
from gallery.store.records import (
    ArtworkRecord,
    CampaignRecord,
    LabellerRecord,
    LabelRecord,
    RunRecord,
)
from gallery.store.writes import insert_rows

CLASSIFIER = "classifier-world"
ZERO_SHOT = zero_shot_spec("clip-world")


@dataclass(frozen=True)
class SampleSpec:
    """What to put in the sample gallery: generator -> prompt -> class composition."""

    compositions: dict[str, dict[str | None, list[float]]] = field(
        default_factory=lambda: {
            "gen-a": {
                None: [0.10, 0.25, 0.15, 0.25, 0.15, 0.10],
                "a beautiful landscape": [0.0, 0.15, 0.20, 0.55, 0.10, 0.0],
                "a calm sea": [0.0, 0.05, 0.05, 0.10, 0.80, 0.0],
            },
            "gen-b": {
                None: [0.30, 0.10, 0.05, 0.05, 0.20, 0.30],
                "a beautiful landscape": [0.15, 0.45, 0.0, 0.10, 0.20, 0.10],
                "a calm sea": [0.05, 0.0, 0.0, 0.0, 0.70, 0.25],
            },
        }
    )
    runs_per_prompt: int = 24
    baseline_samples: int = 60
    siblings: int = 2  # 'top' artworks per run besides the chosen one (the first is also 'pareto')
    image_size: int = 48
    seed: int = 0


# A confusion matrix (rows true, columns predicted) with the classic glacier/mountain mix-up.
CONFUSION = [
    [90, 2, 0, 1, 1, 6],
    [2, 94, 1, 2, 0, 1],
    [0, 0, 80, 18, 2, 0],
    [0, 2, 15, 81, 2, 0],
    [1, 0, 3, 2, 93, 1],
    [7, 1, 0, 0, 1, 91],
]

_GROUND = {
    "buildings": (150, 90, 70),
    "forest": (40, 110, 50),
    "glacier": (220, 235, 245),
    "mountain": (110, 100, 95),
    "sea": (30, 90, 160),
    "street": (90, 90, 95),
}


def draw_scene(label: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A tiny cartoon of a class: sky gradient, ground colour and one telling shape."""
    y, x = np.mgrid[0:size, 0:size] / size
    sky = np.stack([120 + 80 * y, 170 + 50 * y, 235 - 20 * y], axis=-1)
    image = sky + rng.normal(0, 6, size=(size, size, 3))
    horizon = 0.55 + 0.1 * rng.random()
    ground = np.array(_GROUND[label], dtype=float)
    if label in ("mountain", "glacier"):
        peak = 0.3 + 0.4 * rng.random()
        mask = y > 0.15 + 1.6 * np.abs(x - peak)
    elif label in ("buildings", "street"):
        mask = (y > horizon) | ((np.floor(x * 6) % 2 == 0) & (y > 0.3 + 0.2 * rng.random()))
    elif label == "forest":
        mask = y > horizon - 0.25 * np.abs(np.sin(x * 25 + rng.random() * 6))
    else:  # sea
        mask = y > horizon + 0.02 * np.sin(x * 30)
    image[mask] = ground + rng.normal(0, 10, size=(int(mask.sum()), 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _write_png(root: Path, pixels: np.ndarray) -> tuple[str, str]:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    relative = f"images/{digest[:2]}/{digest}.png"
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return digest, relative


def _probabilities(label: str, rng: np.random.Generator, sharpness: float) -> dict[str, float]:
    logits = rng.normal(0, 1, len(CLASSES))
    logits[CLASSES.index(label)] += sharpness
    p = np.exp(logits) / np.exp(logits).sum()
    return {name: float(v) for name, v in zip(CLASSES, p, strict=True)}


def build_sample_gallery(root: str | Path, spec: SampleSpec | None = None) -> Path:
    """Write the sample gallery into ``root`` (a new or empty folder); returns ``root``."""
    spec = spec or SampleSpec()
    root = Path(root)
    store = Store(root)
    store.migrate()
    rng = np.random.default_rng(spec.seed)
    start = datetime(2025, 1, 1, 12, 0, 0)
    runs, artworks, labels = [], [], []

    def add_artwork(run_id, index, role, rank, true_class, similarity, realism, when):
        # The classifier usually sees the true class; CLIP mostly agrees with the classifier.
        predicted_class = true_class if rng.random() < 0.9 else CLASSES[rng.integers(len(CLASSES))]
        clip_class = predicted_class if rng.random() < 0.8 else CLASSES[rng.integers(len(CLASSES))]
        sha, path = _write_png(root, draw_scene(true_class, rng, spec.image_size))
        artwork_id = f"{run_id}:{index}"
        latent = rng.normal(0, 1, 8).round(3).tolist()
        artworks.append(ArtworkRecord(artwork_id, run_id, role, rank, sha, path, similarity, realism,
                                      latent, when))
        for labeller, label, sharp in (
            (CLASSIFIER, predicted_class, 3.0),
            (ZERO_SHOT, clip_class, 2.5),
        ):
            probabilities = _probabilities(label, rng, sharp)
            best = max(probabilities, key=probabilities.get)
            labels.append(LabelRecord(artwork_id, labeller, best, probabilities[best], probabilities))

    minute = 0
    for generator, prompts in spec.compositions.items():
        identity = {"name": generator, "family": "sample", "image_size": spec.image_size}
        for prompt, composition in prompts.items():
            shares = np.asarray(composition) / np.sum(composition)
            if prompt is None:
                run_id = f"{generator}-baseline"
                when = start + timedelta(minutes=minute)
                runs.append(RunRecord(
                    run_id, "sample", "baseline", generator, None, "", None, 0, "prior", {}, None,
                    "done", when, when, 1.0, generator_identity=identity,
                    evaluations=spec.baseline_samples,
                ))
                for i in range(spec.baseline_samples):
                    true_class = CLASSES[rng.choice(len(CLASSES), p=shares)]
                    add_artwork(
                        run_id, i, "baseline", i, true_class, None, float(rng.normal(0, 1)), when
                    )
                minute += 1
                continue
            for seed in range(spec.runs_per_prompt):
                run_id = f"{generator}-{prompt.replace(' ', '-')}-{seed}"
                when = start + timedelta(minutes=minute)
                minute += 1
                history = (
                    np.maximum.accumulate(0.18 + 0.02 * np.cumsum(rng.random(6))).round(4).tolist()
                )
                settings = {"algorithm": "ga", "pop_size": 16, "generations": 6}
                runs.append(RunRecord(
                    run_id, "sample", "search", generator, prompt, "", prompt, seed, "ga", settings,
                    "clip-world", "done", when, when, 2.5, generator_identity=identity,
                    evaluations=96, history=history,
                ))
                true_class = CLASSES[rng.choice(len(CLASSES), p=shares)]
                add_artwork(
                    run_id,
                    0,
                    "chosen",
                    0,
                    true_class,
                    history[-1],
                    float(rng.normal(0.5, 0.5)),
                    when,
                )
                for rank in range(1, spec.siblings + 1):
                    role = "pareto" if rank == 1 else "top"
                    add_artwork(
                        run_id,
                        rank,
                        role,
                        rank,
                        true_class,
                        history[-1] - 0.01 * rank,
                        float(rng.normal(0.5, 0.5)),
                        when,
                    )
    # A failed run: visitors never see it, the statistics ignore it.
    runs.append(RunRecord(
        "gen-a-failed", "sample", "search", "gen-a", "a calm sea", "", "a calm sea", 999, "ga", {},
        "clip-world", "failed", start, start, 0.1, error="RuntimeError: out of memory",
    ))
    insert_rows(
        store,
        campaigns=[CampaignRecord("sample", "sample", {}, start)],
        runs=runs,
        artworks=artworks,
        labels=labels,
        labellers=[
            LabellerRecord(CLASSIFIER, list(CLASSES), CONFUSION, {"arch": "sample"}),
            LabellerRecord(ZERO_SHOT, list(CLASSES), None, {"clip": "clip-world"}),
        ],
    )
    return root


if __name__ == "__main__":
    print(build_sample_gallery(sys.argv[1] if len(sys.argv) > 1 else "gallery-sample"))


def gallery_at_version(path: Path, version: int) -> Path:
    """An empty gallery folder as an older artbias left it: migrations 1..``version`` only."""
    import duckdb

    from gallery.store.schema import MIGRATIONS

    path.mkdir()
    con = duckdb.connect(str(path / "gallery.duckdb"))
    con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMP)")
    for step in range(1, version + 1):
        con.execute(MIGRATIONS[step])
        con.execute("INSERT INTO schema_version VALUES (?, now())", [step])
    con.close()
    return path
