"""Human annotations: a blind sample out of a gallery, labels made elsewhere back in.

- ``export_sheet``: a CSV of artworks to label (a seeded, stratified sample per generator and
  prompt, the baseline being one stratum: ``annotation_sample``, the one the annotation panel
  shows), *blind*: artwork id and image path only, in shuffled order, with empty ``annotator``
  and ``label`` columns; no model label, generator or prompt.
- ``import_annotations``: a CSV with columns ``artwork_id``, ``label`` and either
  ``annotator`` (a simple name) or ``labeller`` (``human:NAME``). Everything is checked before
  anything is written: the file's columns, every annotator name, every artwork (it must be in
  the gallery), every label (one of the gallery's scene classes) and conflicting duplicates; the
  first problem is one line (with how many there are), and nothing is written. Rows whose label
  is empty are skipped (artworks of an exported sheet left unlabelled). The labels are stored as
  the labeller ``human:NAME`` through the store's write API, replacing that annotator's earlier
  label of the same artwork.
- the annotation panel's files (``?page=annotate`` in the gallery app): one append-only JSON-lines
  file per annotator, ``GALLERY/annotations/NAME.jsonl``, one event a line (a label, or the undo
  of one), each flushed and fsynced before the page moves on. The app never writes the DuckDB
  file, so it never waits for (or blocks) a campaign's writer, and a crash loses at most the
  line being written (a torn last line is skipped when read). ``ingest_annotations`` replays
  every file and stores each annotator's current labels as ``human:NAME`` (undone labels are
  withdrawn; "unsure" is no class and is not stored); ``export_labels`` writes every human
  label as a CSV that ``import_annotations`` reads back.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import unicodedata
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from classifier.labellers import attribute_of, default_labeller, human_spec, parse_labeller
from data.errors import ConfigError
from gallery.store import GalleryError, Store, utc_now
from gallery.store.queries import artwork_generators, counted_artworks, labelled_artworks
from gallery.store.queries import labellers as labeller_table
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
    """Up to ``per_stratum`` artworks of each (generator, prompt) stratum (all of them when None;
    a generator's baselines are one stratum), in one shuffled order. Each artwork's place is the
    sha256 of (seed, artwork id): every stratum keeps its first ``per_stratum`` artworks in that
    order. So the sample is the same on every machine and for every annotator, and while a
    campaign still adds artworks, a stratum changes only by newcomers that rank among its first
    ``per_stratum`` (the other strata and the order of the rest stay as they were)."""
    rank = [hashlib.sha256(f"{seed}\x00{artwork}".encode()).hexdigest() for artwork in counted["artwork_id"]]
    frame = counted.assign(_rank=rank, _stratum=counted["generator"] + "\x00" +
                           counted["prompt"].fillna("\x00baseline")).sort_values("_rank", kind="stable")
    if per_stratum is not None:
        frame = frame.groupby("_stratum", sort=False).head(per_stratum)
    return frame.drop(columns=["_rank", "_stratum"]).reset_index(drop=True)


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and (out.is_dir() or not force):
        raise ConfigError(f"{out} exists; choose another file" + ("" if out.is_dir() else " or pass --force"))
    if not out.parent.is_dir():
        raise ConfigError(f"cannot write {out}: folder {out.parent} does not exist")


def _write_csv(out: Path, header: tuple[str, ...], rows) -> None:
    """Write a CSV atomically: a staging file, then one rename."""
    staging = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        with staging.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        os.replace(staging, out)
    except OSError as error:
        staging.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {out}: {error}") from None


def export_sheet(
    gallery: str | Path, out: str | Path, *, per_stratum: int | None = None, seed: int = 0,
    force: bool = False,
) -> tuple[Path, int, int]:
    """Write a blind annotation sheet; returns (path, artworks, strata)."""
    _store(gallery)
    out = Path(out)
    if per_stratum is not None and per_stratum < 1:
        raise ConfigError(f"--sample must be at least 1, got {per_stratum}")
    _check_out(out, force)
    counted = counted_artworks(gallery)
    if counted.empty:
        raise GalleryError(f"gallery {gallery} has no finished artworks to annotate")
    sample = annotation_sample(counted, per_stratum, seed)
    _write_csv(out, SHEET_COLUMNS, ([row.artwork_id, row.image_path, "", ""] for row in sample.itertuples()))
    return out, len(sample), strata_count(counted)


def strata_count(counted: pd.DataFrame) -> int:
    """How many (generator, prompt) strata the counted artworks fall in (baselines are one per generator)."""
    return counted.groupby(["generator", counted["prompt"].fillna("")]).ngroups


# -- the annotation panel's files ---------------------------------------------------------------
ANNOTATIONS_DIR = "annotations"  # inside the gallery folder
SUFFIX = ".jsonl"
UNSURE = "unsure"  # the panel's "cannot tell": counts as seen, is no class, is never stored
NAME_LIMIT = 64  # characters (classifier.labellers' rule for human:NAME)
LABELS_COLUMNS = ("artwork_id", "annotator", "label")


def check_annotator(name: str | None) -> str:
    """The annotator's name (``NAME`` of ``human:NAME``), or a one-line ``ConfigError`` that says
    what is wrong with it: empty, a control character, a path separator, too long, or not a simple
    identifier (a letter, then letters, digits, '_', '.' or '-')."""
    name = (name or "").strip()
    if not name:
        raise ConfigError("the annotator name is empty: enter a name such as alice")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise ConfigError("the annotator name contains a control character; use letters, digits, '_', '.' or '-'")
    if any(sep in name for sep in ("/", "\\", os.sep)):
        raise ConfigError("the annotator name contains a path separator ('/' or '\\'); use letters, digits, "
                          "'_', '.' or '-'")
    if len(name) > NAME_LIMIT:
        raise ConfigError(f"the annotator name is {len(name)} characters long; at most {NAME_LIMIT}")
    try:
        return parse_labeller(human_spec(name)).target
    except ConfigError:
        raise ConfigError(f"the annotator name {name!r} is not a simple name: a letter, then letters, digits, "
                          "'_', '.' or '-'") from None


def annotations_folder(gallery: str | Path) -> Path:
    return Store(gallery).root / ANNOTATIONS_DIR


def annotation_file(gallery: str | Path, annotator: str) -> Path:
    """``GALLERY/annotations/NAME.jsonl`` (the name checked first, so it is never a path).

    A name that differs only in case from an annotator already here is refused: on a
    case-insensitive file system the two would share one file, mixing two people's labels."""
    name = check_annotator(annotator)
    folder = annotations_folder(gallery)
    for path in folder.glob(f"*{SUFFIX}") if folder.is_dir() else []:
        if path.stem != name and path.stem.casefold() == name.casefold():
            raise ConfigError(f"the annotator {path.stem!r} already labels this gallery; "
                              f"{name!r} differs only in case: use {path.stem!r} or another name")
    return folder / f"{name}{SUFFIX}"


def _append(path: Path, event: dict) -> None:
    """Append one JSON line and fsync it (and the folder, for a new file) before returning; a line
    that could not be written or synced is cut off again and the error raised. After a torn last
    line (a crash mid-write) the line starts on a fresh line, so only the torn one is lost."""
    data = (json.dumps(event, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
    new = not path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError:
                with suppress(OSError):  # not durable: take it back, so the page says "not saved" truly
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)
        if new:
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    except OSError as error:
        raise ConfigError(f"cannot save the annotation to {path}: {error.strerror or error}") from None


def append_label(gallery: str | Path, annotator: str, artwork_id: str, label: str) -> Path:
    """Record ``annotator``'s label (a class or ``UNSURE``) of an artwork; durable on return."""
    path = annotation_file(gallery, annotator)
    _append(path, {"event": "label", "artwork_id": artwork_id, "label": label, "at": utc_now().isoformat()})
    return path


def append_undo(gallery: str | Path, annotator: str, artwork_id: str) -> Path:
    """Take back ``annotator``'s latest label of an artwork; durable on return."""
    path = annotation_file(gallery, annotator)
    _append(path, {"event": "undo", "artwork_id": artwork_id, "at": utc_now().isoformat()})
    return path


@dataclass
class AnnotationLog:
    """An annotator's file replayed: the labels standing now, in the order they were made."""

    labels: dict[str, str] = field(default_factory=dict)  # artwork_id -> class or UNSURE
    mentioned: set[str] = field(default_factory=set)  # every artwork an event names
    skipped: int = 0  # lines that are no event (a torn last line after a crash)

    @property
    def last(self) -> str | None:
        """The artwork labelled last (what an undo takes back), None when nothing stands."""
        return next(reversed(self.labels), None)


def read_log(path: str | Path) -> AnnotationLog:
    """Replay an annotation file: a label stands until an undo of that artwork takes it back
    (then the one before it, if any, stands again)."""
    log = AnnotationLog()
    try:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return log
    except OSError as error:
        raise ConfigError(f"cannot read annotation file {path}: {error.strerror or error}") from None
    standing: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            kind, artwork = event["event"], event["artwork_id"]
            label = event.get("label")
            if not isinstance(artwork, str) or not artwork or kind not in ("label", "undo") or (
                    kind == "label" and (not isinstance(label, str) or not label)):
                raise ValueError
        except (ValueError, TypeError, KeyError):
            log.skipped += 1
            continue
        log.mentioned.add(artwork)
        if kind == "label":
            standing.append((artwork, label))
        else:
            at = next((i for i in range(len(standing) - 1, -1, -1) if standing[i][0] == artwork), None)
            if at is not None:
                del standing[at]
    for artwork, label in standing:
        log.labels.pop(artwork, None)
        log.labels[artwork] = label
    return log


def annotators(gallery: str | Path) -> dict[str, int]:
    """Annotators with a file in the gallery -> artworks their file labels now (unsure included)."""
    folder = annotations_folder(gallery)
    found = {}
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        try:
            found[check_annotator(path.stem)] = len(read_log(path).labels)
        except ConfigError:
            continue
    return found


@dataclass
class IngestSummary:
    labels: dict[str, int] = field(default_factory=dict)  # human:NAME -> class labels stored
    unsure: int = 0  # artworks labelled "unsure" (no label stored)
    undone: int = 0  # artworks whose every label was undone (no label stored)
    notes: list[str] = field(default_factory=list)  # what was skipped and why, one line each


def _panel_state(gallery: str | Path, classes: list[str]) -> tuple[dict, dict, IngestSummary]:
    """Every annotator's standing class labels {(artwork, spec): label} and withdrawn pairs
    {(artwork, spec)}, as their files say now."""
    summary = IngestSummary()
    labels, withdrawn = {}, set()
    for name in annotators(gallery):
        spec = human_spec(name)
        log = read_log(annotation_file(gallery, name))
        if log.skipped:
            summary.notes.append(f"{name}{SUFFIX}: {log.skipped} unreadable line(s) (a torn write) skipped")
        strange = sorted({label for label in log.labels.values() if label not in classes and label != UNSURE})
        if strange:
            summary.notes.append(f"{name}{SUFFIX}: label(s) {', '.join(map(repr, strange))} are no class of this "
                                   "gallery; skipped")
        for artwork, label in log.labels.items():
            if label in classes:
                labels[(artwork, spec)] = label
        summary.unsure += sum(label == UNSURE for label in log.labels.values())
        summary.undone += len(log.mentioned - log.labels.keys())
        withdrawn |= {(artwork, spec) for artwork in log.mentioned if (artwork, spec) not in labels}
    return labels, withdrawn, summary


def ingest_annotations(gallery: str | Path) -> IngestSummary:
    """Store the annotation panel's labels as ``human:NAME`` (one short write transaction;
    idempotent: run it as often as you like, e.g. after each session or while a campaign runs,
    whose writer it waits for)."""
    store = _store(gallery)
    classes = scene_classes(store)
    labels, withdrawn, summary = _panel_state(gallery, classes)
    present = artwork_generators(gallery, sorted({artwork for artwork, _ in [*labels, *withdrawn]}))
    known = set(present["artwork_id"])
    missing = {artwork for artwork, _ in labels if artwork not in known}
    if missing:
        summary.notes.append(f"{len(missing)} labelled artwork(s) are not in this gallery; skipped")
    labels = {pair: label for pair, label in labels.items() if pair[0] in known}
    withdrawn = {pair for pair in withdrawn if pair[0] in known}
    specs = sorted({spec for _, spec in labels} | {spec for _, spec in withdrawn})
    if specs:
        now = utc_now().isoformat()
        record_labels(
            store,
            [LabelRecord(artwork, spec, label, 1.0, {label: 1.0}) for (artwork, spec), label in labels.items()],
            [LabellerRecord(spec, classes, None, {
                "kind": "human", "annotator": parse_labeller(spec).target,
                "source": f"{ANNOTATIONS_DIR}/{parse_labeller(spec).target}{SUFFIX}", "ingested_at": now})
             for spec in specs],
            withdrawn=sorted(withdrawn),
        )
    summary.labels = {spec: sum(s == spec for _, s in labels) for spec in specs}
    return summary


def export_labels(gallery: str | Path, out: str | Path, *, force: bool = False) -> tuple[Path, dict[str, int]]:
    """Write every human label of the gallery as a CSV (artwork_id, annotator, label) that
    ``artbias annotate import`` reads: the stored ``human:NAME`` labels, with the annotation
    panel's files (ingested or not) taking precedence. Returns (path, annotator -> labels)."""
    store = _store(gallery)
    out = Path(out)
    _check_out(out, force)
    found = {}
    for spec in labeller_table(gallery)["labeller"]:
        if parse_labeller(spec).kind == "human":
            for row in labelled_artworks(gallery, spec).itertuples():
                found[(row.artwork_id, spec)] = row.predicted
    labels, withdrawn, _ = _panel_state(gallery, scene_classes(store))
    for pair in withdrawn:
        found.pop(pair, None)
    found |= labels
    rows = sorted((parse_labeller(spec).target, artwork, label) for (artwork, spec), label in found.items())
    _write_csv(out, LABELS_COLUMNS, ([artwork, name, label] for name, artwork, label in rows))
    counts = {}
    for name, _, _ in rows:
        counts[name] = counts.get(name, 0) + 1
    return out, counts
