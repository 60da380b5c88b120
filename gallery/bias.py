"""A gallery's bias report: read the store, run ``gallery.statistics``, format the result.

Everything here only reads the gallery (``read_only`` DuckDB connections that retry while a
campaign holds the write lock), so ``artbias bias`` and the Streamlit app can run beside a
campaign writing into the same gallery.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from classifier.labellers import (
    ATTRIBUTES,
    attribute_of,
    default_labeller,
    is_truth_source,
    is_zero_shot,
    parse_labeller,
)
from data.errors import ConfigError
from gallery import aesthetics, known_truth, statistics
from gallery.controls import ControlComparison, control_comparisons, judge_replication
from gallery.store import GalleryError
from gallery.store.queries import labelled_artworks, labellers, prompt_controls, search_clips
from generators import training_record


@dataclass(frozen=True)
class LabellerChoice:
    labeller: str
    classes: list[str]
    confusion: np.ndarray | None
    agreement_labeller: str | None  # the second opinion: an independent labeller when there is one


def _classes(table: pd.DataFrame) -> dict[str, list[str]]:
    return {row.labeller: json.loads(row.classes_json) for row in table.itertuples()}


def _confusion(table: pd.DataFrame, labeller: str, classes: list[str]) -> np.ndarray | None:
    row = table[table["labeller"] == labeller].iloc[0]
    if not (isinstance(row["confusion_json"], str) and row["confusion_json"]):
        return None
    confusion = np.asarray(json.loads(row["confusion_json"]), dtype=float)
    if confusion.shape != (len(classes), len(classes)):
        raise GalleryError(
            f"labeller {labeller!r}: confusion matrix shape {confusion.shape} does not match {len(classes)} classes"
        )
    return confusion


def _second_opinion(candidates: Sequence[str], circular: Collection[str]) -> str | None:
    """The agreement labeller among ``candidates`` (same classes): one that did not steer the
    search before one that did, a trained classifier before a zero-shot CLIP."""
    ranked = sorted(candidates, key=lambda n: (n in circular, is_zero_shot(n)))
    return ranked[0] if ranked else None


def choose_labellers(
    table: pd.DataFrame, labeller: str | None = None, circular: Collection[str] = ()
) -> LabellerChoice:
    """The labeller the report is about (default: the scene classifier that labelled most and
    did not steer the search) and its second opinion: another model labeller of the same
    classes, independent of the search (not in ``circular``) where one exists."""
    if table.empty:
        raise GalleryError("the gallery has no labellers yet: no artwork has been labelled")
    names = table["labeller"].tolist()
    classes_of = _classes(table)
    models = [n for n in names if not is_truth_source(n)]
    if labeller is None:
        independent = [n for n in models if n not in circular]
        labeller = default_labeller(independent or models, classes_of)
        if labeller is None:
            raise GalleryError(f"the gallery has no model labeller, only labels whose truth is known: {names}")
    elif labeller not in names:
        raise ConfigError(f"labeller {labeller!r} is not in this gallery; it has {names}")
    classes = classes_of[labeller]
    others = [n for n in models if n != labeller and classes_of[n] == classes]
    return LabellerChoice(labeller, classes, _confusion(table, labeller, classes),
                          _second_opinion(others, circular))


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
class AttributeReports:
    """One world attribute's distributions (time of day, weather): a report per generator and
    prompt, by the attribute's labeller, with the same statistics as the scene classes."""

    attribute: str
    labeller: str
    classes: list[str]
    reports: list[statistics.BiasReport]
    agreement_labeller: str | None = None

    def report_for(self, generator: str, prompt: str | None) -> statistics.BiasReport | None:
        return next((r for r in self.reports if r.generator == generator and r.prompt == prompt), None)

    def to_dict(self) -> dict:
        return {"attribute": self.attribute, "labeller": self.labeller, "classes": self.classes,
                "agreement_labeller": self.agreement_labeller,
                "reports": [r.to_dict() for r in self.reports]}


@dataclass
class AestheticSummary:
    """The world's aesthetic value of the artworks, from predicted class, time and weather."""

    labellers: dict[str, str]  # "class" / "time" / "weather" -> labeller
    rule: str
    groups: list[aesthetics.AestheticGroup]
    differences: list[aesthetics.AestheticDifference]

    def group_for(self, generator: str, prompt: str | None) -> aesthetics.AestheticGroup | None:
        return next((g for g in self.groups if g.generator == generator and g.prompt == prompt), None)

    def to_dict(self) -> dict:
        return {"labellers": self.labellers, "rule": self.rule,
                "method": aesthetics.MEAN_METHOD,
                "groups": [g.to_dict() for g in self.groups],
                "differences": [d.to_dict() for d in self.differences]}


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
    reliability: list[known_truth.Reliability] = field(default_factory=list)  # per generator
    generated_confusions: list[known_truth.GeneratedConfusion] = field(default_factory=list)
    renders_confusion: str | None = None  # the renders matrix's source, when the labeller has one
    attributes: list[AttributeReports] = field(default_factory=list)  # time of day, weather
    aesthetic: AestheticSummary | None = None
    annotations: list[known_truth.PairAgreement] = field(default_factory=list)

    @property
    def all_reports(self) -> list[statistics.BiasReport]:
        """The scene reports and every attribute's reports."""
        return self.reports + [r for a in self.attributes for r in a.reports]

    @property
    def tests(self) -> list[statistics.TestResult]:
        """Every test with a p-value: the family the adjustment runs over."""
        found = [getattr(r, name) for r in self.all_reports for name in statistics.TEST_FIELDS]
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
    table = labellers(gallery)
    names = table["labeller"].tolist()
    clips = search_clips(gallery)
    circular_all = circular_labellers(names, clips)
    choice = choose_labellers(table, labeller, circular_all)
    labelled = labelled_artworks(gallery, choice.labeller)
    classes_of = _classes(table)
    notes = []
    if choice.confusion is None:
        notes.append(f"labeller {choice.labeller} has no confusion matrix measured on world renders")
    agreement_labels = None
    if choice.agreement_labeller is not None:
        agreement_labels = labelled_artworks(gallery, choice.agreement_labeller)[
            ["artwork_id", "predicted"]
        ]
    else:
        notes.append("no second labeller of the same classes in the gallery: no agreement (kappa)")
    generators = sorted(labelled["generator"].unique())
    refs = reference_compositions(generators, choice.classes, references)
    for generator in generators:
        if generator not in refs:
            notes.append(
                f"{generator}: no reference composition (no training.json found; pass --reference)"
            )

    # Labels whose truth is known (people, intended classes): the labeller's errors on
    # generated images, per generator, and how far each source agrees with the models.
    truth_specs = [n for n in names if is_truth_source(n) and n != choice.labeller
                   and set(classes_of[n]) <= set(choice.classes)]
    truths = {spec: labelled_artworks(gallery, spec)[["artwork_id", "generator", "predicted"]]
              for spec in truth_specs}
    generated = known_truth.generated_confusions(labelled, truths, choice.classes,
                                                 labeller=choice.labeller, fallback=choice.confusion)
    renders = known_truth.RENDERS_SOURCE if choice.confusion is not None else None
    for found in generated.values():
        if not found.used:
            notes.append(f"{found.generator}: only {found.n} artworks with a known label ({found.truth}; "
                         f"{known_truth.MIN_KNOWN} needed): BBSE uses "
                         + ("the matrix from world renders" if renders else "no matrix"))
    if renders and not any(found.used for found in generated.values()):
        notes.append("the corrected proportions assume renders-like errors: no confusion matrix was "
                     "measured on generated images (annotate some with 'artbias annotate')")

    reports = statistics.build_reports(
        labelled,
        choice.classes,
        labeller=choice.labeller,
        confusion=choice.confusion,
        confusion_source=renders,
        generator_confusions={g: (np.asarray(c.matrix), c.source) for g, c in generated.items() if c.used},
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
    attributes = _attribute_reports(gallery, table, circular_all, notes, seed=seed,
                                    n_resamples=n_resamples, adjustment=adjustment)
    _adjust_together(reports + [r for a in attributes for r in a.reports], controls, adjustment)
    judge_replication(controls)

    independent = choice.labeller not in circular_all and choice.agreement_labeller not in circular_all
    reliability = known_truth.reliabilities(labelled, agreement_labels, choice.classes,
                                            labeller=choice.labeller,
                                            other_labeller=choice.agreement_labeller,
                                            independent=independent)
    _withhold_unreliable(reliability, reports, controls)
    if choice.agreement_labeller is not None and not independent:
        notes.append("no two labellers independent of the search: the agreement shown involves the "
                     "searches' own CLIP, and no generator's labels are judged reliable or not")

    models = {choice.labeller: labelled}
    if choice.agreement_labeller is not None:
        models[choice.agreement_labeller] = labelled_artworks(gallery, choice.agreement_labeller)
    annotations = known_truth.truth_agreements(models, truths, choice.classes)

    circular = [n for n in [choice.labeller, choice.agreement_labeller] if n in circular_all]
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
        reliability=reliability,
        generated_confusions=list(generated.values()),
        renders_confusion=renders,
        attributes=attributes,
        aesthetic=_aesthetic_summary(labelled, choice.labeller, attributes, gallery, notes),
        annotations=annotations,
    )


def annotation_agreement(gallery: str | Path, specs: Sequence[str]) -> list[str]:
    """Per generator, how far the truth sources ``specs`` agree with the gallery's scene
    labellers and with each other (lines for ``artbias annotate import``)."""
    table = labellers(gallery)
    choice = choose_labellers(table, None, circular_labellers(table["labeller"].tolist(), search_clips(gallery)))
    models = {name: labelled_artworks(gallery, name)
              for name in (choice.labeller, choice.agreement_labeller) if name is not None}
    truths = {spec: labelled_artworks(gallery, spec) for spec in specs}
    found = known_truth.truth_agreements(models, truths, choice.classes)
    lines = [f"{a.labeller} vs {a.other} on {a.generator}: {_agreement_text(a.agreement)}" for a in found]
    return lines or ["(none of these artworks is among those the statistics count: no agreement to show)"]


def _withhold_unreliable(reliability, reports, controls) -> None:
    """Where two independent labellers disagree too much on a generator, its reports carry a
    warning and its prompt-vs-control findings say so instead of stating a finding."""
    unreliable = {r.generator: r.sentence() for r in reliability if r.reliable is False}
    for report in reports:
        if report.generator in unreliable:
            report.warnings.insert(0, f"{unreliable[report.generator]}: no finding is stated")
    for comparison in controls:
        comparison.unreliable = unreliable.get(comparison.generator)


def _attribute_reports(
    gallery, table: pd.DataFrame, circular: Collection[str], notes: list[str], *, seed: int,
    n_resamples: int, adjustment: str,
) -> list[AttributeReports]:
    """Per world attribute with a labeller in the gallery, its reports (same statistics)."""
    classes_of = _classes(table)
    found = []
    for attribute in ATTRIBUTES:
        candidates = [n for n in table["labeller"] if not is_truth_source(n)
                      and attribute_of(classes_of[n]) == attribute]
        if not candidates:
            continue
        independent = [n for n in candidates if n not in circular]
        name = default_labeller(independent or candidates)
        classes = classes_of[name]
        confusion = _confusion(table, name, classes)
        second = _second_opinion([n for n in candidates if n != name], circular)
        other = None if second is None else labelled_artworks(gallery, second)[["artwork_id", "predicted"]]
        if name in circular:
            notes.insert(0, f"CIRCULAR: {name} (the {attribute} labeller) is the CLIP that steered the "
                            "searches")
        reports = statistics.build_reports(
            labelled_artworks(gallery, name), classes, labeller=name, confusion=confusion,
            confusion_source=known_truth.RENDERS_SOURCE if confusion is not None else None,
            agreement_labels=other, agreement_labeller=second, seed=seed, n_resamples=n_resamples,
            adjustment=adjustment,
        )
        found.append(AttributeReports(attribute, name, classes, reports, second))
    missing = [a for a in ATTRIBUTES if a not in {f.attribute for f in found}]
    if missing:
        notes.append(f"no {' or '.join(missing)} labeller in the gallery: no "
                     f"{' or '.join(missing)} distributions and no aesthetic values")
    return found


def _aesthetic_summary(
    labelled: pd.DataFrame, labeller: str, attributes: list[AttributeReports], gallery, notes: list[str],
) -> AestheticSummary | None:
    """Mean aesthetic values, where a time and a weather labeller labelled the artworks."""
    from data.world.aesthetic import DEFAULT_RULE_PATH, AestheticRule

    by_name = {a.attribute: a for a in attributes}
    if "time" not in by_name or "weather" not in by_name:
        return None
    rule = AestheticRule.load()
    values = aesthetics.artwork_values(
        labelled, labelled_artworks(gallery, by_name["time"].labeller),
        labelled_artworks(gallery, by_name["weather"].labeller), rule)
    if values["aesthetic"].isna().all():
        notes.append(f"no aesthetic values: the classes of {labeller} are not the world's")
        return None
    controls = prompt_controls(gallery)
    return AestheticSummary(
        {"class": labeller, "time": by_name["time"].labeller, "weather": by_name["weather"].labeller},
        f"{DEFAULT_RULE_PATH.name}: value = sigmoid(bias + class + time + weather + matching pairs), "
        "from each artwork's predicted class, time of day and weather",
        aesthetics.aesthetic_groups(values, controls),
        aesthetics.aesthetic_differences(values, controls),
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
            if c.unreliable and c.replicate != "pooled":
                continue  # said once, on the pooled line
            if c.n_pairs == 0 or c.unreliable:
                out.append(f"  {c.sentence()}" + (f" ({c.prompt!r} vs {c.control!r})" if c.unreliable else ""))
                continue
            verdict = f"; {c.replicates}" if c.replicates else ""
            where = "pooled" if c.replicate == "pooled" else f"replicate {c.replicate}"
            detail = f" ({c.replicated_in})" if c.replicated_in else ""
            out.append(f"  [{where}] {c.sentence()}; TV {_interval(c.distance, c.distance_low, c.distance_high)}"
                       f"{verdict}{detail}")
    out += _agreement_lines(bias) + _attribute_lines(bias) + _aesthetic_lines(bias)
    warnings = [(r, w) for r in bias.reports for w in r.warnings]
    if warnings or bias.notes:
        out += ["", "Warnings:"]
        out += [f"  {note}" for note in bias.notes]
        out += [f"  {r.generator} · {r.prompt_label}: {w}" for r, w in warnings]
    return "\n".join(out)


def _agreement_text(found: statistics.Agreement) -> str:
    return (f"kappa {_interval(found.kappa, found.low, found.high)}, agreement "
            f"{_num(found.observed_agreement)}, PABAK {_num(found.pabak)}, n = {found.n}")


def _agreement_lines(bias: GalleryBias) -> list[str]:
    """Per generator: the two labellers' agreement (or why its labels are unreliable), the
    matrix BBSE used, and how known labels (people, intended classes) agree with the models."""
    out = []
    if bias.agreement_labeller is not None and bias.reliability:
        out += ["", f"Labeller agreement per generator ({bias.labeller} vs {bias.agreement_labeller}, "
                    "all its counted artworks):"]
        for r in bias.reliability:
            verdict = r.sentence() or ("" if r.reliable is None else f"reliable ({r.statistic[0]} >= {r.threshold:g})")
            text = "-" if r.agreement is None else _agreement_text(r.agreement)
            out.append(f"  {r.generator}: {text}" + (f"; {verdict}" if verdict else ""))
    sources = {r.generator: r.confusion_source for r in bias.reports if r.confusion_source}
    if sources:
        out += ["", "Confusion matrix the corrected proportions use, per generator:"]
        out += [f"  {generator}: {source}" for generator, source in sources.items()]
    if bias.annotations:
        out += ["", "Known labels (people, intended classes) against the labellers:"]
        out += [f"  {a.labeller} vs {a.other} on {a.generator}: {_agreement_text(a.agreement)}"
                for a in bias.annotations]
    return out


def _attribute_lines(bias: GalleryBias) -> list[str]:
    out = []
    for found in bias.attributes:
        out += ["", f"{found.attribute.capitalize()} by {found.labeller} [95% Goodman simultaneous "
                    "interval]; p vs baseline (adjusted):"]
        keys = _method_keys(bias)
        for r in found.reports:
            cells = "  ".join(f"{row.name} {_interval(row.proportion, row.simultaneous_low, row.simultaneous_high)}"
                              for row in r.rows)
            test = "" if r.is_baseline else f"; p {_p(r.vs_baseline, keys)}"
            out.append(f"  {r.generator} · {r.prompt_label} (n={r.n}): {cells}{test}")
    return out


def _aesthetic_lines(bias: GalleryBias) -> list[str]:
    found = bias.aesthetic
    if found is None:
        return []
    names = found.labellers
    out = ["", f"Aesthetic value by the world's rule (class by {names['class']}, time by {names['time']}, "
               f"weather by {names['weather']}); mean [95% t interval]:"]
    unreliable = {r.generator for r in bias.reliability if r.reliable is False}
    for g in found.groups:
        label = "(unguided baseline)" if g.prompt is None else g.prompt
        flag = " (labels unreliable)" if g.generator in unreliable else ""
        out.append(f"  {g.generator} · {label} ({g.role}, n={g.n}): {_interval(g.mean, g.low, g.high)}{flag}")
    for d in found.differences:
        how = "paired by seed" if d.method == aesthetics.PAIRED_METHOD else "Welch"
        change = "-" if math.isnan(d.difference) else f"{d.difference:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"
        out.append(f"  {d.generator}: {d.prompt!r} minus {d.versus!r}: {change} ({how}, n = {d.n})")
    return out


def _report_document(bias: GalleryBias, report: statistics.BiasReport) -> dict:
    """A scene report with, for the same generator and prompt, each attribute's distribution
    and the mean aesthetic value."""
    document = report.to_dict()
    document["attributes"] = {}
    for found in bias.attributes:
        other = found.report_for(report.generator, report.prompt)
        if other is not None:
            document["attributes"][found.attribute] = {
                "labeller": found.labeller, "n": other.n,
                "proportions": {row.name: row.proportion for row in other.rows},
                "simultaneous_intervals": {row.name: [row.simultaneous_low, row.simultaneous_high]
                                           for row in other.rows},
                "confusion_source": other.confusion_source,
            }
    group = None if bias.aesthetic is None else bias.aesthetic.group_for(report.generator, report.prompt)
    document["aesthetic"] = None if group is None else group.to_dict()
    reliability = next((r for r in bias.reliability if r.generator == report.generator), None)
    document["labeller_agreement"] = None if reliability is None else reliability.to_dict()
    return document


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
            "family": "every p-value in this document: vs uniform, vs baseline, vs reference "
            "(scene classes and every attribute), prompt vs control",
        },
        "equivalence": {
            "margin": bias.equivalence_margin,
            "distance": "total variation",
            "test": "equivalent when the upper confidence bound of the distance is below the "
            "margin (level at most 5%)",
        },
        "definitions": statistics.METRIC_DEFINITIONS,
        "circular_labellers": bias.circular,
        "labeller_agreement": {
            "labellers": [bias.labeller, bias.agreement_labeller],
            "threshold": known_truth.MIN_KAPPA,
            "per_generator": [r.to_dict() for r in bias.reliability],
        },
        "confusion": {
            "renders": bias.renders_confusion,
            "min_known": known_truth.MIN_KNOWN,
            "generated": [c.to_dict() for c in bias.generated_confusions],
        },
        "reports": [_report_document(bias, report) for report in bias.reports],
        "controls": [comparison.to_dict() for comparison in bias.controls],
        "attributes": [found.to_dict() for found in bias.attributes],
        "aesthetic": None if bias.aesthetic is None else bias.aesthetic.to_dict(),
        "annotations": [a.to_dict() for a in bias.annotations],
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
