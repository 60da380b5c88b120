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

from classifier.labellers import default_labeller, is_zero_shot, parse_labeller
from data.errors import ConfigError
from gallery import statistics
from gallery.controls import ControlComparison, control_comparisons, judge_replication
from gallery.store import GalleryError
from gallery.store.queries import labelled_artworks, labellers, prompt_controls, search_clips
from generators import training_record


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
        labeller = default_labeller(names)
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
    # The second opinion: a zero-shot labeller for a trained one, and the other way round.
    others = [n for n in names if n != labeller and is_zero_shot(n) != is_zero_shot(labeller)]
    return LabellerChoice(labeller, classes, confusion, others[0] if others else None)


# -- reference compositions -------------------------------------------------------------------
def composition_from_file(path: str | Path, classes: Sequence[str]) -> list[float]:
    """Class proportions from JSON: ``{class: weight}`` or a generator's ``training.json``."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read reference composition {path}: {error}") from error
    counts = training_record.record_class_counts(raw)
    weights = raw if counts is None else counts
    if not isinstance(weights, dict):
        raise ConfigError(
            f"{path}: expected {{class: weight}} or a training.json with data.class_counts"
        )
    return training_record.proportions(weights, classes, str(path))


def training_composition(spec: str, classes: Sequence[str]) -> tuple[str, list[float]] | None:
    """("training data", composition) from the generator's ``training.json``, when it has one."""
    found = training_record.training_composition(spec, classes)
    return None if found is None else ("training data", found)


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
    adjustment: str = "holm"  # the multiple-testing correction over all the reports' p-values
    equivalence_margin: float = statistics.EQUIVALENCE_MARGIN
    controls: list[ControlComparison] = field(default_factory=list)
    circular: list[str] = field(default_factory=list)  # labellers that are a search's own CLIP

    @property
    def tests(self) -> list[statistics.TestResult]:
        """Every test with a p-value: the family the adjustment runs over."""
        found = [getattr(r, name) for r in self.reports for name in statistics.TEST_FIELDS]
        found += [c.test for c in self.controls]
        return [t for t in found if t is not None and math.isfinite(t.p_value)]

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
    adjustment: str = "holm",
    equivalence_margin: float = statistics.EQUIVALENCE_MARGIN,
) -> GalleryBias:
    """Read the gallery and build every (generator, prompt) report.

    ``adjustment`` ("holm" or "fdr_bh") corrects every p-value of the whole report as one
    family; ``equivalence_margin`` is the TV distance to a reference that counts as equivalent.
    """
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
        adjustment=adjustment,
        equivalence_margin=equivalence_margin,
    )
    controls = control_comparisons(labelled, choice.classes, prompt_controls(gallery), seed=seed,
                                   n_resamples=n_resamples)
    _adjust_together(reports, controls, adjustment)
    judge_replication(controls)
    circular = circular_labellers([choice.labeller, choice.agreement_labeller], search_clips(gallery))
    for name in circular:
        role = "the report's labeller" if name == choice.labeller else "the agreement labeller"
        notes.insert(0, f"CIRCULAR: {name} ({role}) is the CLIP that steered the searches; its labels "
                        "are not independent evidence of what the artworks show")
    return GalleryBias(
        str(gallery),
        choice.labeller,
        choice.agreement_labeller,
        choice.classes,
        reports,
        notes,
        adjustment,
        equivalence_margin,
        controls,
        circular,
    )


def circular_labellers(specs: Sequence[str | None], clips: set[str]) -> list[str]:
    """The zero-shot labellers among ``specs`` whose CLIP steered a search."""
    return [s for s in specs if s is not None and parse_labeller(s).clip in clips]


def _adjust_together(reports, controls: list[ControlComparison], method: str) -> None:
    """One multiplicity family: every report test and every prompt-vs-control test."""
    from dataclasses import replace

    family = [(r, name) for r in reports for name in statistics.TEST_FIELDS
              if getattr(r, name) is not None and math.isfinite(getattr(r, name).p_value)]
    family += [(c, "test") for c in controls if math.isfinite(c.test.p_value)]
    adjusted = statistics.adjust_p_values([getattr(o, name).p_value for o, name in family], method)
    label = f"{statistics.ADJUSTMENTS[method]} over {len(family)} tests"
    for (owner, name), value in zip(family, adjusted, strict=True):
        setattr(owner, name, replace(getattr(owner, name), p_adjusted=float(value), adjustment=label))


# -- output -----------------------------------------------------------------------------------
def _p_value(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _p(test: statistics.TestResult | None, keys: dict[str, str]) -> str:
    """Raw p (adjusted p) and the letter of the method that computed it."""
    if test is None or math.isnan(test.p_value):
        return "-"
    return f"{_p_value(test.p_value)} ({_p_value(test.p_adjusted)}) {keys[test.method]}"


def _num(value: float | None, digits: int = 2) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def _interval(value: float | None, low: float | None, high: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{_num(value)} [{_num(low)}, {_num(high)}]"


def _method_keys(bias: GalleryBias) -> dict[str, str]:
    """A letter for every test method the report used, in order of first use."""
    methods = dict.fromkeys(test.method for test in bias.tests)
    return {method: "abcdefghijklmnopqrstuvwxyz"[i] for i, method in enumerate(methods)}


def _short(prompt: str) -> str:
    return prompt if len(prompt) <= 28 else prompt[:27] + "…"


def _columns(header: tuple[str, ...], lines: list[tuple[str, ...]], numeric: set[int]) -> list[str]:
    """Header, rule and rows, each column padded to its widest cell."""
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def line(row):
        return "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    return [line(header), line(tuple("-" * w for w in widths)), *(line(row) for row in lines)]


def _tests_table(bias: GalleryBias, keys: dict[str, str]) -> list[str]:
    header = (
        "generator",
        "prompt",
        "n",
        "top class [95% CI]",
        "vs unif p (adj)",
        "vs base p (adj)",
        "vs ref p (adj)",
        "entropy [95% CI]",
    )
    lines = [
        (
            r.generator,
            _short(r.prompt_label),
            str(r.n),
            f"{r.top.name} {_interval(r.top.proportion, r.top.wilson_low, r.top.wilson_high)}"
            if r.n
            else "-",
            _p(r.vs_uniform, keys),
            _p(r.vs_baseline, keys),
            _p(r.vs_reference, keys),
            _interval(r.entropy, r.entropy_low, r.entropy_high),
        )
        for r in bias.reports
    ]
    return _columns(header, lines, {2, 4, 5, 6})


def _effects_table(bias: GalleryBias) -> list[str]:
    header = (
        "generator",
        "prompt",
        "V gens",
        "V base",
        "TV ref [95% CI]",
        f"TV < {bias.equivalence_margin:g}",
        "kappa [95% CI]",
        "agree",
        "PABAK [95% CI]",
        "low conf",
    )
    lines = []
    for r in bias.reports:
        distance, kappa = r.vs_reference_distance, r.kappa
        verdict = "-"
        if distance is not None and distance.equivalent is not None:
            verdict = "equivalent" if distance.equivalent else "unproven"
        lines.append(
            (
                r.generator,
                _short(r.prompt_label),
                _num(r.cramers_v_between_generators),
                _num(r.cramers_v_vs_baseline),
                "-"
                if distance is None
                else _interval(distance.distance, distance.low, distance.high),
                verdict,
                "-" if kappa is None else _interval(kappa.kappa, kappa.low, kappa.high),
                "-" if kappa is None else _num(kappa.observed_agreement),
                "-" if kappa is None else _interval(kappa.pabak, kappa.pabak_low, kappa.pabak_high),
                "-" if r.low_confidence_share is None else f"{100 * r.low_confidence_share:.0f}%",
            )
        )
    return _columns(header, lines, {2, 3, 7, 9})


def format_table(bias: GalleryBias) -> str:
    """Terminal tables: tests, then effect sizes and agreement, class breakdowns and warnings."""
    keys = _method_keys(bias)
    adjustment = statistics.ADJUSTMENTS[bias.adjustment]
    margin = f"{bias.equivalence_margin:g}"
    out = [
        f"Bias of {bias.gallery} — labeller {bias.labeller}"
        + (f", agreement with {bias.agreement_labeller}" if bias.agreement_labeller else ""),
        "",
        *_tests_table(bias, keys),
        "",
        "p: raw (adjusted) p-value vs uniform / vs the generator's unguided baseline / vs its",
        f"   reference composition; adjusted by {adjustment} over all {len(bias.tests)} p-values "
        "above.",
        "   The letter names the test computed:",
        *(f"   {key} = {method}" for method, key in keys.items()),
        f"entropy: normalised entropy; interval: its {statistics.ENTROPY_METHOD}.",
        "",
        *_effects_table(bias),
        "",
        "V gens: Cramér's V between generators for the prompt; V base: prompt vs baseline.",
        "TV ref: total variation distance to the reference composition; interval: its",
        f"   {statistics.TV_METHOD}.",
        f"TV < {margin}: equivalence test at the 5% level: 'equivalent' when the interval's",
        f"   upper bound is below {margin}, else 'unproven' (too few artworks is the usual reason).",
        "kappa: Cohen's kappa ('-' interval: its asymptotic standard error is 0); agree: raw "
        "agreement;",
        "   PABAK: prevalence-adjusted bias-adjusted kappa (K·agree - 1)/(K - 1), Wilson interval.",
        "",
        "Class proportions [95% Goodman simultaneous interval] (-> corrected for classifier error):"
        if any(r.corrected_available for r in bias.reports)
        else "Class proportions [95% Goodman simultaneous interval]:",
    ]
    for r in bias.reports:
        cells = []
        for row in r.rows:
            cell = f"{row.name} {_interval(row.proportion, row.simultaneous_low, row.simultaneous_high)}"
            if row.corrected is not None:
                cell += f"->{row.corrected:.2f}"
            cells.append(cell)
        out.append(f"  {r.generator} · {r.prompt_label} (n={r.n}): " + "  ".join(cells))
    if bias.controls:
        out += ["", "Prompt vs control, paired by seed (per replicate, then pooled):"]
        for c in bias.controls:
            if c.n_pairs == 0:
                out.append(f"  {c.sentence()}")
                continue
            verdict = f"; {c.replicates}" if c.replicates else ""
            where = "pooled" if c.replicate == "pooled" else f"replicate {c.replicate}"
            detail = f" ({c.replicated_in})" if c.replicated_in else ""
            out.append(f"  [{where}] {c.sentence()}; TV {_interval(c.distance, c.distance_low, c.distance_high)}"
                       f"{verdict}{detail}")
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
        "confidence": statistics.CONFIDENCE,
        "multiplicity": {
            "method": statistics.ADJUSTMENTS[bias.adjustment],
            "family_size": len(bias.tests),
            "family": "every p-value in this document: vs uniform, vs baseline, vs reference, "
            "prompt vs control",
        },
        "equivalence": {
            "margin": bias.equivalence_margin,
            "distance": "total variation",
            "test": "equivalent when the upper confidence bound of the distance is below the "
            "margin (level at most 5%)",
        },
        "definitions": statistics.METRIC_DEFINITIONS,
        "circular_labellers": bias.circular,
        "reports": [report.to_dict() for report in bias.reports],
        "controls": [comparison.to_dict() for comparison in bias.controls],
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
