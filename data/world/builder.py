"""Build a world dataset: an ImageFolder tree of rendered scenes plus a Parquet manifest.

    DIR/train/<class>/<class>_000123.png
    DIR/test/<class>/<class>_000456.png
    DIR/manifest.parquet   one row per image: id, split, path, class, every scene attribute,
                           aesthetic value and word, caption, seed, size
    DIR/world.json         the build's config, per-class counts, aesthetic rule and versions

With ``label_by="time"`` or ``"weather"`` the image folders are named by that attribute instead
of the class (``DIR/train/<time>/<class>_000123.png``), so a classifier trained on the tree
learns the time of day or the weather; scenes, manifest and splits are the same as by class.

Per-class counts follow the composition exactly (largest-remainder rounding); the same
arguments give byte-identical files. The tree is written into a hidden sibling directory and
renamed into place at the end, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from data.errors import ConfigError
from data.files import staged_folder
from data.world.aesthetic import AestheticRule
from data.world.captions import caption_scenes
from data.world.params import CLASSES, TIMES, WEATHERS, SceneBatch, class_index, sample_scenes
from data.world.render import MIN_SIZE, render_scenes

RENDER_BATCH = 256
MANIFEST = "manifest.parquet"
PNG_COMPRESS_LEVEL = 6  # fixed, so PNG bytes never depend on a library default
# What the image folders may be named by: the scene attribute -> (its values, its index field).
LABEL_BY = {"class": (CLASSES, "class_index"), "time": (TIMES, "time_index"),
            "weather": (WEATHERS, "weather_index")}


def uniform_composition() -> dict[str, float]:
    return {name: 1.0 / len(CLASSES) for name in CLASSES}


@dataclass(frozen=True)
class WorldConfig:
    n: int
    composition: dict[str, float] = field(default_factory=uniform_composition)
    size: int = 64
    seed: int = 0
    test_fraction: float = 0.2
    label_by: str = "class"  # the attribute that names the image folders (see LABEL_BY)

    def validate(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n <= 0:
            raise ConfigError(f"--n must be a positive number of images, got {self.n}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < MIN_SIZE:
            raise ConfigError(f"--size must be an integer >= {MIN_SIZE}, got {self.size}")
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**63):
            raise ConfigError(f"--seed must be a non-negative integer, got {self.seed}")
        if not (0.0 <= self.test_fraction <= 1.0):  # 1: a pure test set, e.g. fresh evaluation scenes
            raise ConfigError(f"--test-fraction must lie in [0, 1], got {self.test_fraction}")
        if self.label_by not in LABEL_BY:
            raise ConfigError(f"--label-by must be one of {', '.join(LABEL_BY)}, got {self.label_by!r}")
        check_composition(self.composition)


def check_composition(composition: dict[str, float]) -> None:
    if not composition:
        raise ConfigError("the composition names no classes")
    for name, weight in composition.items():
        class_index(name)  # raises for unknown classes
        if not (isinstance(weight, int | float) and math.isfinite(weight) and weight >= 0):
            raise ConfigError(f"composition weight of {name} must be a number >= 0, got {weight}")
    total = sum(composition.values())
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"composition weights must sum to 1, they sum to {total:.6g}")


def parse_composition(text: str) -> dict[str, float]:
    """``"mountain=0.5,sea=0.25,street=0.25"`` -> weights (unnamed classes get 0)."""
    composition: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"composition entry {item!r} is not CLASS=WEIGHT")
        class_index(name)
        if name in composition:
            raise ConfigError(f"class {name} appears twice in the composition")
        try:
            composition[name] = float(value)
        except ValueError:
            raise ConfigError(f"composition weight {value!r} for {name} is not a number") from None
    check_composition(composition)
    return composition


def class_counts(n: int, composition: dict[str, float]) -> dict[str, int]:
    """Largest-remainder rounding of ``n * weight``: counts sum to n exactly, in class order."""
    quotas = {name: n * composition.get(name, 0.0) for name in CLASSES}
    counts = {name: int(math.floor(q)) for name, q in quotas.items()}
    short = n - sum(counts.values())
    # Ties go to the class earlier in CLASSES (sorted() is stable); weight-0 classes never win.
    order = sorted((name for name in CLASSES if composition.get(name, 0.0) > 0),
                   key=lambda name: -(quotas[name] - counts[name]))
    for name in order[:short]:
        counts[name] += 1
    return counts


@dataclass(frozen=True)
class WorldPlan:
    """Everything about a build except the pixels: scenes, splits, ids and file paths."""

    config: WorldConfig
    scenes: SceneBatch
    splits: list[str]
    paths: list[str]

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for cls_id, split in zip(self.scenes.class_index, self.splits, strict=True):
            per = table.setdefault(CLASSES[cls_id], {"train": 0, "test": 0})
            per[split] += 1
        return table


def plan_world(config: WorldConfig) -> WorldPlan:
    config.validate()
    rng = np.random.default_rng(config.seed)
    counts = class_counts(config.n, config.composition)
    names = [name for name in CLASSES for _ in range(counts[name])]
    scenes = sample_scenes(names, rng)
    splits = ["train"] * config.n
    start = 0
    for name in CLASSES:  # an exact share of each class goes to test, chosen at random
        count = counts[name]
        n_test = int(math.floor(count * config.test_fraction + 0.5))
        for i in rng.permutation(count)[:n_test]:
            splits[start + int(i)] = "test"
        start += count
    values, field_name = LABEL_BY[config.label_by]
    folders = [values[k] for k in getattr(scenes, field_name)]
    paths = [f"{split}/{folder}/{name}_{i:06d}.png"
             for i, (split, folder, name) in enumerate(zip(splits, folders, names, strict=True))]
    return WorldPlan(config, scenes, splits, paths)


def _check_output(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"output {out} exists and is not empty; pass --force to replace it")
    ancestor = out.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write output {out}: {ancestor} is not a writable directory")


def write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(image).save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def _manifest_table(plan: WorldPlan, rule: AestheticRule):
    import pyarrow as pa

    captions = caption_scenes(plan.scenes, rule)
    records = plan.scenes.records()
    columns: dict[str, list] = {
        "id": list(range(len(records))),
        "split": plan.splits,
        "path": plan.paths,
    }
    for key in records[0]:
        columns[key] = [r[key] for r in records]
    columns["aesthetic"] = [float(v) for v in rule.values(plan.scenes)]
    columns["aesthetic_word"] = [c.aesthetic_word for c in captions]
    columns["aesthetic_polarity"] = [c.aesthetic_polarity for c in captions]
    columns["caption"] = [c.text for c in captions]
    columns["seed"] = [plan.config.seed] * len(records)
    columns["size"] = [plan.config.size] * len(records)
    types = {"id": pa.int64(), "noise_seed": pa.int64(), "layers": pa.int64(),
             "horizon": pa.float32(), "view": pa.float32(), "density": pa.float32(),
             "aesthetic": pa.float64(), "aesthetic_word": pa.string(),
             "aesthetic_polarity": pa.int8(), "seed": pa.int64(), "size": pa.int32()}
    return pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in columns.items()})


def build_world(out: str | Path, config: WorldConfig, force: bool = False,
                progress: bool = True, rule: AestheticRule | None = None) -> Path:
    """Render and write a world dataset to ``out``; returns the output path."""
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from data.provenance import versions

    out = Path(out)
    config.validate()
    _check_output(out, force)
    rule = rule or AestheticRule.load()
    plan = plan_world(config)
    table = _manifest_table(plan, rule)

    with staged_folder(out, "world dataset") as staging:
        for folder in sorted({str(Path(p).parent) for p in plan.paths}):
            (staging / folder).mkdir(parents=True)
        with tqdm(total=config.n, desc="world", unit="img", disable=not progress) as bar:
            for start in range(0, config.n, RENDER_BATCH):
                stop = min(start + RENDER_BATCH, config.n)
                images = render_scenes(plan.scenes.select(slice(start, stop)), config.size)
                for path, image in zip(plan.paths[start:stop], images, strict=True):
                    write_png(staging / path, image)
                bar.update(stop - start)
        pq.write_table(table, staging / MANIFEST, compression="zstd")
        meta = {
            "config": asdict(config),
            "counts": plan.counts,
            "aesthetic_rule": rule.to_dict(),
            "versions": versions(),
        }
        (staging / "world.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out
