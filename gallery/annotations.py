"""Human annotations: a blind sample out of a gallery, labels made elsewhere back in.

- ``export_sheet``: a CSV of artworks to label (a stratified random sample per generator and
  prompt, the baseline being one stratum), *blind*: artwork id and image path only, in random
  order, with empty ``annotator`` and ``label`` columns; no model label, generator or prompt.
- ``import_annotations``: a CSV with columns ``artwork_id``, ``label`` and either
  ``annotator`` (a simple name) or ``labeller`` (``human:NAME``). Everything is checked before
  anything is written: the file's columns, every annotator name, every artwork (it must be in
  the gallery), every label (one of the gallery's scene classes) and conflicting duplicates; the
  first problem is one line (with how many there are), and nothing is written. Rows whose label
  is empty are skipped (artworks of an exported sheet left unlabelled). The labels are stored as
  the labeller ``human:NAME`` through the store's write API, replacing that annotator's earlier
  label of the same artwork.
"""

from __future__ import annotations

import csv
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from classifier.labellers import attribute_of, default_labeller, human_spec, parse_labeller
from data.errors import ConfigError
from gallery.store import GalleryError, Store, utc_now
from gallery.store.queries import artwork_generators, counted_artworks
from gallery.store.records import LabellerRecord, LabelRecord
from gallery.store.writes import record_labels

SHEET_COLUMNS = ("artwork_id", "image_path", "annotator", "label")
ANNOTATOR_COLUMNS = ("annotator", "labeller")


def _store(gallery: str | Path) -> Store:
    store = Store(gallery)
    if not store.exists:
        raise GalleryError(f"no gallery at {gallery} (run `artbias demo` or a campaign first)")
    return store


def scene_classes(store: Store) -> list[str]:
    """The classes annotations may use: those of the gallery's scene labeller (its default)."""
    from data.world.params import CLASSES

    known = {name: found["classes"] for name, found in store.labellers().items()}
    name = default_labeller(list(known), known)
    if name is None or attribute_of(known[name]) is not None:
        return list(CLASSES)
    return list(known[name])


# -- import -------------------------------------------------------------------------------------
@dataclass
class Annotation:
    row: int  # line number in the file (the header is line 1)
    artwork_id: str
    labeller: str
    label: str


@dataclass
class ImportSummary:
    path: str
    labels: int
    labellers: dict[str, int]  # human:NAME -> labels
    generators: dict[str, int]  # generator -> labels
    skipped: int = 0  # rows without a label
    classes: list[str] = field(default_factory=list)


def _fail(problems: list[str]) -> None:
    if problems:
        more = f" ({len(problems)} problems in all; nothing was imported)" if len(problems) > 1 else \
            " (nothing was imported)"
        raise ConfigError(problems[0] + more)


def read_annotations(path: str | Path, classes: list[str]) -> tuple[list[Annotation], int]:
    """The annotations of a CSV file, every row checked (see the module docstring); and the
    number of rows skipped for an empty label."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"cannot read annotation file {path}: {error}") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ConfigError(f"annotation file {path} is empty")
    header = [cell.strip().lower() for cell in rows[0]]
    who = [c for c in ANNOTATOR_COLUMNS if c in header]
    missing = [c for c in ("artwork_id", "label") if c not in header]
    if missing or len(who) != 1:
        raise ConfigError(
            f"annotation file {path} needs columns artwork_id, label and one of annotator (NAME) or "
            f"labeller (human:NAME); its header is {','.join(header)}"
        )
    column = {name: header.index(name) for name in ("artwork_id", "label", who[0])}
    known = set(classes)
    problems, found, skipped = [], {}, 0
    for line, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        cells = cells + [""] * (len(header) - len(cells))
        artwork, label, person = (cells[column[name]].strip() for name in ("artwork_id", "label", who[0]))
        if not label:
            skipped += 1
            continue
        if not artwork:
            problems.append(f"{path.name} line {line}: no artwork_id")
            continue
        try:
            spec = human_spec(person) if who[0] == "annotator" else person
            if parse_labeller(spec).kind != "human":
                problems.append(f"{path.name} line {line}: labeller {person!r} is not a human annotator "
                                "(annotations come from human:NAME)")
                continue
        except ConfigError as error:
            problems.append(f"{path.name} line {line}: " + (
                "no annotator" if not person else str(error)))
            continue
        if label not in known:
            problems.append(f"{path.name} line {line}: label {label!r} is not a class of this gallery "
                            f"({', '.join(classes)})")
            continue
        earlier = found.get((artwork, spec))
        if earlier is not None and earlier.label != label:
            problems.append(f"{path.name} line {line}: {spec} labels artwork {artwork} {label!r} here and "
                            f"{earlier.label!r} on line {earlier.row}")
            continue
        found.setdefault((artwork, spec), Annotation(line, artwork, spec, label))
    _fail(problems)
    if not found:
        raise ConfigError(f"annotation file {path} holds no labelled rows")
    return list(found.values()), skipped


def import_annotations(gallery: str | Path, path: str | Path) -> ImportSummary:
    """Check ``path`` against the gallery and store its labels (all or nothing)."""
    store = _store(gallery)
    classes = scene_classes(store)
    annotations, skipped = read_annotations(path, classes)
    ids = sorted({a.artwork_id for a in annotations})
    present = artwork_generators(gallery, ids)
    generator_of = dict(zip(present["artwork_id"], present["generator"], strict=True))
    unknown = [a for a in annotations if a.artwork_id not in generator_of]
    if unknown:
        names = ", ".join(sorted({a.artwork_id for a in unknown})[:3])
        raise ConfigError(
            f"{Path(path).name}: {len({a.artwork_id for a in unknown})} artwork(s) are not in gallery "
            f"{gallery}, e.g. {names} (line {unknown[0].row}); nothing was imported"
        )
    now = utc_now().isoformat()
    labellers = sorted({a.labeller for a in annotations})
    record_labels(
        store,
        [LabelRecord(a.artwork_id, a.labeller, a.label, 1.0, {a.label: 1.0}) for a in annotations],
        [LabellerRecord(spec, classes, None, {"kind": "human", "annotator": parse_labeller(spec).target,
                                              "imported_from": Path(path).name, "imported_at": now})
         for spec in labellers],
    )
    by_generator = pd.Series([generator_of[a.artwork_id] for a in annotations]).value_counts()
    return ImportSummary(
        str(path), len(annotations),
        {spec: sum(a.labeller == spec for a in annotations) for spec in labellers},
        {str(k): int(v) for k, v in by_generator.sort_index().items()}, skipped, classes,
    )


# -- export -------------------------------------------------------------------------------------
def annotation_sample(counted: pd.DataFrame, per_stratum: int | None, seed: int) -> pd.DataFrame:
    """Up to ``per_stratum`` artworks drawn at random from each (generator, prompt) stratum
    (all of them when None), in one random order."""
    rng = np.random.default_rng(seed)
    frame = counted.assign(stratum=counted["generator"] + "\x00" + counted["prompt"].fillna("\x00baseline"))
    picked = []
    for _, rows in frame.groupby("stratum", sort=True):
        take = len(rows) if per_stratum is None else min(per_stratum, len(rows))
        picked.append(rows.iloc[np.sort(rng.choice(len(rows), size=take, replace=False))])
    sample = pd.concat(picked) if picked else frame.iloc[:0]
    return sample.iloc[rng.permutation(len(sample))].reset_index(drop=True)


def export_sheet(
    gallery: str | Path, out: str | Path, *, per_stratum: int | None = None, seed: int = 0,
    force: bool = False,
) -> tuple[Path, int, int]:
    """Write a blind annotation sheet; returns (path, artworks, strata)."""
    _store(gallery)
    out = Path(out)
    if per_stratum is not None and per_stratum < 1:
        raise ConfigError(f"--sample must be at least 1, got {per_stratum}")
    if out.exists() and (out.is_dir() or not force):
        raise ConfigError(f"{out} exists; choose another file" + ("" if out.is_dir() else " or pass --force"))
    if not out.parent.is_dir():
        raise ConfigError(f"cannot write {out}: folder {out.parent} does not exist")
    counted = counted_artworks(gallery)
    if counted.empty:
        raise GalleryError(f"gallery {gallery} has no finished artworks to annotate")
    sample = annotation_sample(counted, per_stratum, seed)
    strata = counted.groupby(["generator", counted["prompt"].fillna("")]).ngroups
    staging = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        with staging.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(SHEET_COLUMNS)
            for row in sample.itertuples():
                writer.writerow([row.artwork_id, row.image_path, "", ""])
        os.replace(staging, out)
    except OSError as error:
        staging.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {out}: {error}") from None
    return out, len(sample), strata
