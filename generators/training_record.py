"""A trained generator's ``training.json`` read back: the class composition of its training data.

``generators.training`` writes the record (``outputs.write_training_record``; its ``data``
entry, with ``class_counts``, comes from ``runs.describe_data``). This module is the one
place that reads it. It needs no torch, so the gallery and its app can ask for a
generator's training composition without loading a network stack.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from data.errors import ArtbiasError, ConfigError

RECORD_FILE = "training.json"


def generator_folder(spec: str) -> Path | None:
    """Where a generator's files are, for a ``family:path`` spec or a catalogue name present here."""
    family, colon, path = spec.partition(":")
    if colon and Path(path).exists():
        folder = Path(path)
        return folder if folder.is_dir() else folder.parent
    try:
        from data.weights.catalog import get_entry
        from data.weights.resolve import locate

        found = locate(get_entry(spec))
    except ArtbiasError:
        return None
    if found is None:
        return None
    return found.path if found.path.is_dir() else found.path.parent


def read_record(folder: str | Path) -> dict | None:
    """The parsed ``training.json`` in ``folder``; None when there is none or it is unreadable."""
    try:
        record = json.loads((Path(folder) / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def world_class_names(folder: str | Path, num_classes: int) -> tuple[str, ...] | None:
    """The scene classes, in class-index order, of a class-conditional model artbias trained
    on its world (class indices follow ``CLASSES``, see ``generators.training.data``): known
    from its training record; None for any other model."""
    from data.world.params import CLASSES

    counts = record_class_counts(read_record(folder))
    if counts is None or num_classes != len(CLASSES) or not set(counts) <= set(CLASSES):
        return None
    return tuple(CLASSES)


def record_class_counts(record: object) -> dict | None:
    """``data.class_counts`` of a parsed training record; None when it is not such a record."""
    data = record.get("data") if isinstance(record, dict) else None
    counts = data.get("class_counts") if isinstance(data, dict) else None
    return counts if isinstance(counts, dict) else None


def proportions(weights: Mapping[str, float], classes: Sequence[str], source: str) -> list[float]:
    """``{class: weight}`` as proportions in ``classes`` order (missing classes get 0).

    Unknown classes, non-numeric or negative weights, or weights that are all zero are a
    ``ConfigError`` naming ``source``.
    """
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in weights.values()):
        raise ConfigError(f"{source}: class weights must be numbers")
    unknown = sorted(set(weights) - set(classes))
    if unknown:
        raise ConfigError(f"{source}: classes {unknown} are not among {list(classes)}")
    values = [float(weights.get(name, 0.0)) for name in classes]
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise ConfigError(f"{source}: weights must be non-negative and not all zero")
    total = sum(values)
    return [v / total for v in values]


def training_composition(generator_spec: str, classes: Sequence[str]) -> list[float] | None:
    """The class proportions of the data ``generator_spec`` was trained on, in ``classes`` order.

    None when the generator's folder holds no readable ``training.json`` with class counts
    over these classes (a published model, a CLIP record, another class set): no reference,
    not an error.
    """
    folder = generator_folder(generator_spec)
    if folder is None:
        return None
    path = folder / RECORD_FILE
    try:
        counts = record_class_counts(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError):
        return None
    if counts is None:
        return None
    try:
        return proportions(counts, classes, str(path))
    except ConfigError:
        return None
