"""A gallery's bias report: read the store, run ``gallery.statistics``, format the result.

Everything here only reads the gallery (``read_only`` DuckDB connections that retry while a
campaign holds the write lock), so ``artbias bias`` and the Streamlit app can run beside a
campaign writing into the same gallery.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data.errors import ArtbiasError, ConfigError
from gallery import statistics
from gallery.store import GalleryError, Store

ZERO_SHOT_PREFIX = "clip:"  # labellers named clip:<model> are CLIP zero-shot labellers


def read(gallery: str | Path, sql: str, params: Sequence | None = None) -> pd.DataFrame:
    """One read-only query against the gallery; ``Store.read`` waits out a writer's lock.

    A gallery whose tables do not exist yet (a campaign is just starting) is a
    ``GalleryError`` with a plain message rather than a DuckDB catalog error.
    """
    import duckdb

    try:
        return Store(gallery).read(sql, list(params or []))
    except duckdb.CatalogException as error:
        raise GalleryError(f"{gallery} is not a complete artbias gallery yet ({error})") from error


def labellers(gallery: str | Path) -> pd.DataFrame:
    """Labellers that labelled something in the gallery, with classes and confusion matrix."""
    return read(
        gallery,
        """
        SELECT lb.labeller, lb.classes_json, lb.confusion_json, lb.identity_json,
               count(l.artwork_id) AS labelled
        FROM labellers lb LEFT JOIN labels l ON l.labeller = lb.labeller
        GROUP BY ALL ORDER BY labelled DESC, lb.labeller
        """,
    )


@dataclass(frozen=True)
class LabellerChoice:
    labeller: str
    classes: list[str]
    confusion: np.ndarray | None
    agreement_labeller: str | None  # the CLIP zero-shot labeller to compare with, when present


def choose_labellers(table: pd.DataFrame, labeller: str | None = None) -> LabellerChoice:
    """The labeller the report is about (default: the trained classifier that labelled most)."""
    if table.empty:
        raise GalleryError("the gallery has no labellers yet: no artwork has been labelled")
    names = table["labeller"].tolist()
    if labeller is None:
        trained = [name for name in names if not name.startswith(ZERO_SHOT_PREFIX)]
        labeller = (trained or names)[0]
    elif labeller not in names:
        raise ConfigError(f"labeller {labeller!r} is not in this gallery; it has {names}")
    row = table[table["labeller"] == labeller].iloc[0]
    classes = json.loads(row["classes_json"])
    confusion = None
    if isinstance(row["confusion_json"], str) and row["confusion_json"]:
        confusion = np.asarray(json.loads(row["confusion_json"]), dtype=float)
        if confusion.shape != (len(classes), len(classes)):
            raise GalleryError(
                f"labeller {labeller!r}: confusion matrix shape {confusion.shape} does not match {len(classes)} classes"
            )
    others = [n for n in names if n != labeller and n.startswith(ZERO_SHOT_PREFIX)]
    if labeller.startswith(ZERO_SHOT_PREFIX):
        others = [n for n in names if not n.startswith(ZERO_SHOT_PREFIX)]
    return LabellerChoice(labeller, classes, confusion, others[0] if others else None)


# The artworks the statistics count: one chosen artwork per finished search run (its 'top' and
# 'pareto' siblings come from the same run and are not independent), and every unguided
# baseline sample. Baseline rows get prompt NULL.
LABELLED_SQL = """
    SELECT a.artwork_id, r.generator,
           CASE WHEN r.kind = 'baseline' THEN NULL ELSE r.prompt END AS prompt,
           r.kind, a.role, l.predicted, l.confidence
    FROM artworks a
    JOIN runs r ON r.run_id = a.run_id
    JOIN labels l ON l.artwork_id = a.artwork_id
    WHERE l.labeller = ? AND r.status = 'done'
      AND ((r.kind = 'search' AND a.role = 'chosen') OR (r.kind = 'baseline' AND a.role = 'baseline'))
    ORDER BY r.generator, prompt, a.artwork_id
"""


def labelled_artworks(gallery: str | Path, labeller: str) -> pd.DataFrame:
    return read(gallery, LABELLED_SQL, [labeller])


# -- reference compositions -------------------------------------------------------------------
def composition_from_file(path: str | Path, classes: Sequence[str]) -> list[float]:
    """Class proportions from JSON: ``{class: weight}`` or a ``training.json`` (data.class_counts)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read reference composition {path}: {error}") from error
    if (
        isinstance(raw, dict)
        and isinstance(raw.get("data"), dict)
        and "class_counts" in raw["data"]
    ):
        raw = raw["data"]["class_counts"]
    if not isinstance(raw, dict) or not all(isinstance(v, int | float) for v in raw.values()):
        raise ConfigError(
            f"{path}: expected {{class: weight}} or a training.json with data.class_counts"
        )
    unknown = sorted(set(raw) - set(classes))
    if unknown:
        raise ConfigError(f"{path}: classes {unknown} are not among {list(classes)}")
    weights = [float(raw.get(name, 0.0)) for name in classes]
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ConfigError(f"{path}: weights must be non-negative and not all zero")
    total = sum(weights)
    return [w / total for w in weights]


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


def training_composition(spec: str, classes: Sequence[str]) -> tuple[str, list[float]] | None:
    """The class composition of a generator's training data, from its ``training.json``."""
    folder = generator_folder(spec)
    if folder is None or not (folder / "training.json").is_file():
        return None
    try:
        return "training data", composition_from_file(folder / "training.json", classes)
    except ConfigError:
        return None  # a training record without class counts: no reference, not an error


def reference_compositions(
    generators: Sequence[str], classes: Sequence[str], references: Sequence[str] = ()
) -> dict[str, tuple[str, list[float]]]:
    """generator -> (name, composition): explicit ``[GENERATOR=]FILE`` ones, else training data."""
    explicit: dict[str | None, tuple[str, list[float]]] = {}
    for item in references:
        generator, _, file = item.partition("=") if "=" in item else (None, "", item)
        explicit[generator or None] = (Path(file).name, composition_from_file(file, classes))
    found = {}
    for generator in generators:
        chosen = (
            explicit.get(generator)
            or explicit.get(None)
            or training_composition(generator, classes)
        )
        if chosen is not None:
            found[generator] = chosen
    return found


# -- the whole report -----------------------------------------------------------------------
@dataclass
class GalleryBias:
    gallery: str
    labeller: str
    agreement_labeller: str | None
    classes: list[str]
    reports: list[statistics.BiasReport]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> pd.DataFrame:
        return statistics.summary_frame(self.reports)

    def per_class(self) -> pd.DataFrame:
        return statistics.class_frame(self.reports)


def gallery_bias(
    gallery: str | Path,
    *,
    labeller: str | None = None,
    references: Sequence[str] = (),
    seed: int = 0,
    n_resamples: int = 2000,
) -> GalleryBias:
    """Read the gallery and build every (generator, prompt) report."""
    choice = choose_labellers(labellers(gallery), labeller)
    labelled = labelled_artworks(gallery, choice.labeller)
    notes = []
    if choice.confusion is None:
        notes.append(
            f"labeller {choice.labeller} has no confusion matrix: no corrected proportions"
        )
    agreement_labels = None
    if choice.agreement_labeller is not None:
        agreement_labels = labelled_artworks(gallery, choice.agreement_labeller)[
            ["artwork_id", "predicted"]
        ]
    else:
        notes.append("no second (CLIP zero-shot) labeller in the gallery: no agreement (kappa)")
    generators = sorted(labelled["generator"].unique())
    refs = reference_compositions(generators, choice.classes, references)
    for generator in generators:
        if generator not in refs:
            notes.append(
                f"{generator}: no reference composition (no training.json found; pass --reference)"
            )
    reports = statistics.build_reports(
        labelled,
        choice.classes,
        labeller=choice.labeller,
        confusion=choice.confusion,
        references=refs,
        agreement_labels=agreement_labels,
        agreement_labeller=choice.agreement_labeller,
        seed=seed,
        n_resamples=n_resamples,
    )
    return GalleryBias(
        str(gallery), choice.labeller, choice.agreement_labeller, choice.classes, reports, notes
    )


# -- output -----------------------------------------------------------------------------------
def _p(test: statistics.TestResult | None) -> str:
    if test is None or test.p_value is None or math.isnan(test.p_value):
        return "-"
    mark = "*" if "Monte-Carlo" in test.method else ""
    return ("<0.001" if test.p_value < 0.001 else f"{test.p_value:.3f}") + mark


def _num(value: float | None, digits: int = 2) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def format_table(bias: GalleryBias) -> str:
    """A terminal table: one line per (generator, prompt), then class breakdowns and warnings."""
    header = (
        "generator",
        "prompt",
        "n",
        "top class [95% CI]",
        "vs unif",
        "vs base",
        "vs ref",
        "V gens",
        "V base",
        "entropy [95% CI]",
        "kappa",
        "low conf",
    )
    lines = []
    for r in bias.reports:
        top = r.top
        lines.append(
            (
                r.generator,
                r.prompt_label if len(r.prompt_label) <= 28 else r.prompt_label[:27] + "…",
                str(r.n),
                f"{top.name} {top.proportion:.2f} [{top.wilson_low:.2f}, {top.wilson_high:.2f}]"
                if r.n
                else "-",
                _p(r.vs_uniform),
                _p(r.vs_baseline),
                _p(r.vs_reference),
                _num(r.cramers_v_between_generators),
                _num(r.cramers_v_vs_baseline),
                f"{_num(r.entropy)} [{_num(r.entropy_low)}, {_num(r.entropy_high)}]",
                _num(r.kappa.kappa if r.kappa else None),
                "-" if r.low_confidence_share is None else f"{100 * r.low_confidence_share:.0f}%",
            )
        )
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    numeric = {2, 4, 5, 6, 7, 8, 10, 11}

    def render(row):
        return "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    out = [
        f"Bias of {bias.gallery} — labeller {bias.labeller}"
        + (f", agreement with {bias.agreement_labeller}" if bias.agreement_labeller else ""),
        "",
        render(header),
        render(tuple("-" * w for w in widths)),
        *(render(row) for row in lines),
        "",
        "p-values: G-test vs uniform / vs the generator's unguided baseline / vs its reference "
        "composition; * = Monte-Carlo p-value (small expected counts).",
        "V gens: Cramér's V between generators for the prompt; V base: prompt vs baseline.",
        "",
        "Class proportions (raw -> corrected for classifier error):"
        if any(r.corrected_available for r in bias.reports)
        else "Class proportions:",
    ]
    for r in bias.reports:
        cells = []
        for row in r.rows:
            cell = f"{row.name} {row.proportion:.2f}"
            if row.corrected is not None:
                cell += f"->{row.corrected:.2f}"
            cells.append(cell)
        out.append(f"  {r.generator} · {r.prompt_label} (n={r.n}): " + "  ".join(cells))
    warnings = [(r, w) for r in bias.reports for w in r.warnings]
    if warnings or bias.notes:
        out += ["", "Warnings:"]
        out += [f"  {note}" for note in bias.notes]
        out += [f"  {r.generator} · {r.prompt_label}: {w}" for r, w in warnings]
    return "\n".join(out)


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(bias: GalleryBias) -> str:
    document = {
        "gallery": bias.gallery,
        "labeller": bias.labeller,
        "agreement_labeller": bias.agreement_labeller,
        "classes": bias.classes,
        "notes": bias.notes,
        "definitions": statistics.METRIC_DEFINITIONS,
        "reports": [report.to_dict() for report in bias.reports],
    }
    return json.dumps(_json_safe(document), indent=2)


def render(bias: GalleryBias, fmt: str) -> str:
    if fmt == "table":
        return format_table(bias)
    if fmt == "csv":
        return bias.summary().to_csv(index=False)
    if fmt == "json":
        return to_json(bias)
    raise ConfigError(f"unknown format {fmt!r}; use table, csv or json")
