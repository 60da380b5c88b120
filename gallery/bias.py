"""A gallery's bias report: read the store, run ``gallery.statistics``, format the result.

Everything here only reads the gallery (``read_only`` DuckDB connections that retry while a
campaign holds the write lock), so ``artbias bias`` and the Streamlit app can run beside a
campaign writing into the same gallery.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
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
from gallery.store.queries import labelled_artworks, labellers, report_reads, search_clips
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
class _Reads:
    """The gallery reads of one report: one snapshot (``queries.report_reads``: one state of the
    gallery, one connection) whose frames feed the scene reports, the agreement, the
    attributes and the aesthetic values. Callers get the same frame each time and only read it."""

    def __init__(self, gallery: str | Path):
        self.gallery = gallery
        found = report_reads(gallery)
        self.labellers, self.search_clips = found.labellers, found.search_clips
        self._controls, self._labelled = found.prompt_controls, dict(found.labelled)

    def labelled(self, labeller: str) -> pd.DataFrame:
        if labeller not in self._labelled:  # no counted artwork: DuckDB's own empty frame
            self._labelled[labeller] = labelled_artworks(self.gallery, labeller)
        return self._labelled[labeller]

    def prompt_controls(self) -> dict[str, list[str]]:
        return self._controls


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
    # Cramér's V between generators per prompt, with tests (own Holm family) and intervals
    between: list[statistics.BetweenGenerators] = field(default_factory=list)
    seed: int = 0
    # What ``gallery_bias(..., defer=True)`` left for ``complete`` to draw: the resampled
    # intervals' inputs of each report not drawn yet, by (labeller, generator, prompt), and
    # whether ``between`` is still to be computed.
    pending: dict[tuple[str, str, str | None], statistics.Resampling] = field(default_factory=dict, repr=False)
    between_pending: bool = False

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

    def between_for(self, prompt: str | None) -> statistics.BetweenGenerators | None:
        fill_between(self)
        return next((b for b in self.between if b.prompt == prompt), None)

    def reliability_for(self, generator: str) -> known_truth.Reliability | None:
        return next((r for r in self.reliability if r.generator == generator), None)


def gallery_bias(
    gallery: str | Path,
    *,
    labeller: str | None = None,
    references: Sequence[str] = (),
    seed: int = 0,
    n_resamples: int = 2000,
    adjustment: str = "holm",
    equivalence_margin: float = statistics.EQUIVALENCE_MARGIN,
    defer: bool = False,
) -> GalleryBias:
    """Read the gallery and build every (generator, prompt) report.

    ``adjustment`` ("holm" or "fdr_bh") corrects every p-value of the whole report as one
    family; ``equivalence_margin`` is the TV distance to a reference that counts as equivalent.
    ``defer``: leave out the resampled intervals (each class's bootstrap interval, the corrected
    proportions' interval) and the between-generator tests, the costly parts a view may not show;
    ``fill_intervals``, ``fill_between`` and ``complete`` add them later with the same numbers
    (every other number, the adjusted p-values included, is there either way).
    """
    reads = _Reads(gallery)
    table = reads.labellers
    names = table["labeller"].tolist()
    circular_all = circular_labellers(names, reads.search_clips)
    choice = choose_labellers(table, labeller, circular_all)
    labelled = reads.labelled(choice.labeller)
    classes_of = _classes(table)
    notes = []
    if choice.confusion is None:
        notes.append(f"labeller {choice.labeller} has no confusion matrix measured on world renders")
    agreement_labels = None
    if choice.agreement_labeller is not None:
        agreement_labels = reads.labelled(choice.agreement_labeller)[["artwork_id", "predicted"]]
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
    truths = {spec: reads.labelled(spec)[["artwork_id", "generator", "predicted"]] for spec in truth_specs}
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

    reports, resampling = statistics.prepare_reports(
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
    controls = control_comparisons(labelled, choice.classes, reads.prompt_controls(), seed=seed,
                                   n_resamples=n_resamples)
    pending = {(r.labeller, r.generator, r.prompt): inputs for r, inputs in zip(reports, resampling, strict=True)}
    attributes = _attribute_reports(reads, table, circular_all, notes, pending, seed=seed,
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
        models[choice.agreement_labeller] = reads.labelled(choice.agreement_labeller)
    annotations = known_truth.truth_agreements(models, truths, choice.classes)

    circular = [n for n in [choice.labeller, choice.agreement_labeller] if n in circular_all]
    for name in circular:
        role = "the report's labeller" if name == choice.labeller else "the agreement labeller"
        notes.insert(0, f"CIRCULAR: {name} ({role}) is the CLIP that steered the searches; its labels "
                        "are not independent evidence of what the artworks show")
    bias = GalleryBias(
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
        aesthetic=_aesthetic_summary(labelled, choice.labeller, attributes, reads, notes),
        annotations=annotations,
        seed=seed,
        pending=pending,
        between_pending=True,
    )
    return bias if defer else complete(bias)


def fill_intervals(bias: GalleryBias, prompts: Collection[str | None] | None = None, *,
                   attributes: bool = True) -> GalleryBias:
    """Draw the resampled intervals ``gallery_bias(..., defer=True)`` left out (in place;
    returns ``bias``): of the reports for ``prompts`` (None: every report), and of the time and
    weather reports too unless ``attributes`` is False. Reports already drawn are left alone."""
    reports = bias.all_reports if attributes else bias.reports
    for report in reports:
        key = (report.labeller, report.generator, report.prompt)
        if key in bias.pending and (prompts is None or report.prompt in prompts):
            statistics.add_intervals(report, bias.pending.pop(key))
    return bias


def fill_between(bias: GalleryBias) -> GalleryBias:
    """Compute the between-generator tests ``gallery_bias(..., defer=True)`` left out (in place;
    returns ``bias``): a function of the reports' counts alone."""
    if bias.between_pending:
        bias.between = statistics.between_generators(bias.reports, seed=bias.seed, adjustment=bias.adjustment)
        bias.between_pending = False
    return bias


def complete(bias: GalleryBias) -> GalleryBias:
    """Every number of the report drawn (in place; returns ``bias``): what ``to_json``,
    ``format_table``, ``overview_table`` and ``class_table`` show."""
    return fill_between(fill_intervals(bias))


def gallery_compositions(
    gallery: str | Path, *, labeller: str | None = None
) -> tuple[str, list[statistics.Composition]]:
    """The labeller ``gallery_bias(gallery, labeller=labeller)`` is about and the class counts
    behind each of its reports (``statistics.compositions``), with no statistic computed: what
    comparing two of them, or the generators for a prompt (``statistics.between_generators``,
    the report's own numbers with its defaults), needs."""
    table = labellers(gallery)
    choice = choose_labellers(table, labeller, circular_labellers(table["labeller"].tolist(), search_clips(gallery)))
    return choice.labeller, statistics.compositions(labelled_artworks(gallery, choice.labeller), choice.classes)


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
    reads: _Reads, table: pd.DataFrame, circular: Collection[str], notes: list[str],
    pending: dict[tuple[str, str, str | None], statistics.Resampling], *, seed: int, n_resamples: int,
    adjustment: str,
) -> list[AttributeReports]:
    """Per world attribute with a labeller in the gallery, its reports (same statistics); the
    inputs of their resampled intervals go into ``pending``."""
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
        other = None if second is None else reads.labelled(second)[["artwork_id", "predicted"]]
        if name in circular:
            notes.insert(0, f"CIRCULAR: {name} (the {attribute} labeller) is the CLIP that steered the "
                            "searches")
        reports, resampling = statistics.prepare_reports(
            reads.labelled(name), classes, labeller=name, confusion=confusion,
            confusion_source=known_truth.RENDERS_SOURCE if confusion is not None else None,
            agreement_labels=other, agreement_labeller=second, seed=seed, n_resamples=n_resamples,
            adjustment=adjustment,
        )
        pending.update({(r.labeller, r.generator, r.prompt): inputs
                        for r, inputs in zip(reports, resampling, strict=True)})
        found.append(AttributeReports(attribute, name, classes, reports, second))
    missing = [a for a in ATTRIBUTES if a not in {f.attribute for f in found}]
    if missing:
        notes.append(f"no {' or '.join(missing)} labeller in the gallery: no "
                     f"{' or '.join(missing)} distributions and no aesthetic values")
    return found


def _aesthetic_summary(
    labelled: pd.DataFrame, labeller: str, attributes: list[AttributeReports], reads: _Reads, notes: list[str],
) -> AestheticSummary | None:
    """Mean aesthetic values, where a time and a weather labeller labelled the artworks."""
    from data.world.aesthetic import DEFAULT_RULE_PATH, AestheticRule

    by_name = {a.attribute: a for a in attributes}
    if "time" not in by_name or "weather" not in by_name:
        return None
    rule = AestheticRule.load()
    values = aesthetics.artwork_values(
        labelled, reads.labelled(by_name["time"].labeller), reads.labelled(by_name["weather"].labeller), rule)
    if values["aesthetic"].isna().all():
        notes.append(f"no aesthetic values: the classes of {labeller} are not the world's")
        return None
    controls = reads.prompt_controls()
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


# -- for students: one sentence per report, warnings once, every column explained --------------
# How a sentence names a class: "painted mountains", "painted the sea". Other classes by name.
CLASS_NOUNS = {
    "buildings": "buildings",
    "forest": "forests",
    "glacier": "glaciers",
    "mountain": "mountains",
    "sea": "the sea",
    "street": "streets",
}


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def _artworks(n: int) -> str:
    return f"{n} artwork" if n == 1 else f"{n} artworks"


@dataclass(frozen=True)
class PlainSentence:
    """A report in one plain sentence: its most frequent class, that class's share with its
    95% Wilson interval and sample size, and the same class's share in the unguided samples."""

    generator: str
    prompt: str | None
    text: str

    def to_dict(self) -> dict:
        return {"generator": self.generator, "prompt": self.prompt, "text": self.text}


def plain_sentence(
    report: statistics.BiasReport, reliability: known_truth.Reliability | None = None
) -> PlainSentence | None:
    """``report`` in plain words (None when it has no artworks). A generator whose two
    independent labellers disagree too much gets no finding, and the sentence says why."""
    if report.n == 0:
        return None
    asked = "unprompted" if report.is_baseline else f"asked for '{report.prompt}'"
    if reliability is not None and reliability.reliable is False:
        name, value = reliability.statistic
        text = (f"{report.generator}, {asked}: no finding, because its two labellers disagree too often "
                f"({name} {value:.2f} < {reliability.threshold:g}) to say what its {_artworks(report.n)} show.")
        return PlainSentence(report.generator, report.prompt, text)
    top = report.top
    noun = CLASS_NOUNS.get(top.name, top.name)
    text = (f"{report.generator}, {asked}, painted {noun} in {_percent(top.proportion)} of "
            f"{_artworks(report.n)} (95% CI {100 * top.wilson_low:.0f}–{100 * top.wilson_high:.0f}%)")
    if not report.is_baseline:
        if top.baseline_proportion is not None and report.baseline_n:
            text += f", against {_percent(top.baseline_proportion)} unprompted"
        else:
            text += "; there are no unprompted samples to compare with"
    return PlainSentence(report.generator, report.prompt, text + ".")


def plain_sentences(bias: GalleryBias) -> list[PlainSentence]:
    """One sentence per (generator, prompt) with artworks, prompts first, each generator's
    unprompted samples last."""
    found = [plain_sentence(r, bias.reliability_for(r.generator)) for r in bias.reports]
    found = [s for s in found if s is not None]
    return sorted(found, key=lambda s: s.prompt is None)


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True)
class WarningGroup:
    """One warning said once: the reports it applies to listed, and numbers that differ
    between them shown as a range ("smallest expected count 0.8–4.2 < 5")."""

    message: str
    where: list[str]  # "generator · prompt" or a generator; empty: the whole report
    # the report's circular labeller or a generator's unreliable labels: the app says these first
    stated_up_front: bool = False

    def where_text(self, total: int | None = None) -> str:
        """"gen-a (a calm sea, a beautiful landscape); gen-b (...)", or "every report"."""
        if not self.where:
            return ""
        if total is not None and len(self.where) == total and total > 1:
            return f"every report ({total})"
        by_generator: dict[str, list[str]] = {}
        for item in self.where:
            generator, _, prompt = item.partition(" · ")
            by_generator.setdefault(generator, [])
            if prompt:
                by_generator[generator].append(prompt)
        return "; ".join(f"{g} ({', '.join(prompts)})" if prompts else g for g, prompts in by_generator.items())

    def to_dict(self) -> dict:
        return {"message": self.message, "where": self.where, "stated_up_front": self.stated_up_front}


def _merge_numbers(texts: list[str]) -> str:
    """Texts equal but for their numbers -> one text, each differing number as min–max."""
    parts = _NUMBER.split(texts[0])
    numbers = [_NUMBER.findall(t) for t in texts]
    out = [parts[0]]
    for i, tail in enumerate(parts[1:]):
        values = sorted({n[i] for n in numbers}, key=float)
        out.append(values[0] if len(values) == 1 else f"{values[0]}–{values[-1]}")
        out.append(tail)
    return "".join(out)


def warning_groups(bias: GalleryBias) -> list[WarningGroup]:
    """Every note and report warning, each kind once (texts equal but for their numbers are
    one kind), with where it applies; notes about one generator ("gen-a: ...") are grouped
    across generators the same way."""
    generators = {r.generator for r in bias.reports}
    up_front = {f"{r.sentence()}: no finding is stated" for r in bias.reliability if r.sentence()}
    items: list[tuple[str | None, str]] = []
    for note in bias.notes:
        head, sep, rest = note.partition(": ")
        items.append((head, rest) if sep and head in generators else (None, note))
    items += [(f"{r.generator} · {r.prompt_label}", w) for r in bias.reports for w in r.warnings]
    kinds: dict[str, list[tuple[str | None, str]]] = {}
    for where, text in items:
        kinds.setdefault(_NUMBER.sub("#", text), []).append((where, text))
    groups = []
    for members in kinds.values():
        texts = [text for _, text in members]
        stated = texts[0] in up_front or any(texts[0].startswith(f"CIRCULAR: {name} ") for name in bias.circular)
        groups.append(WarningGroup(_merge_numbers(texts), list(dict.fromkeys(w for w, _ in members if w)), stated))
    return groups


# Every column of the terminal table (and the app's overview) in plain words.
TABLE_LEGEND: dict[str, str] = {
    "generator": "the image generator",
    "prompt": "what the search asked CLIP for; (unguided baseline): samples drawn without any prompt",
    "n": "artworks counted: one chosen artwork per search run, or the baseline samples",
    "top class [95% CI]": "the class the labeller gives most often, its share, and the 95% Wilson interval",
    "vs unif p (adj)": "p-value (adjusted) of the test against every class being equally likely",
    "vs base p (adj)": "p-value (adjusted) of the test against the generator's own unprompted samples",
    "vs ref p (adj)": "p-value (adjusted) of the test against the reference (e.g. training data) composition",
    "entropy [95% CI]": "normalised entropy: 1 = all classes equally often, 0 = a single class",
    "V gens": "Cramér's V between the generators for this prompt (0 = same mix, 1 = no class shared)",
    "V base": "Cramér's V between this prompt's artworks and the unprompted samples",
    "TV ref [95% CI]": "total variation distance to the reference composition (share of artworks that would "
                       "have to change class)",
    "TV < margin": "equivalence test: 'equivalent' when the distance's upper bound is below the margin, "
                   "else 'unproven'",
    "kappa [95% CI]": "Cohen's kappa: agreement of the two labellers beyond chance (1 = perfect, 0 = chance)",
    "agree": "raw agreement: share of artworks both labellers put in the same class",
    "PABAK [95% CI]": "kappa with chance taken as 1/K: does not collapse when one class dominates",
    "low conf": "share of artworks whose top class probability is below 0.5",
}


def _legend_key(header: str) -> str:
    return "TV < margin" if header.startswith("TV < ") else header


def overview_table(bias: GalleryBias) -> pd.DataFrame:
    """The summary with what a reader needs to check it: the plain sentence, the top class's
    count, every class's count (``count_CLASS``) beside its share (``p_CLASS``), and the
    between-generator Cramér's V with its interval and p-values (``artbias bias --format csv``
    and the app's download)."""
    frame = complete(bias).summary()
    if frame.empty:
        return frame
    sentences = {(s.generator, s.prompt): s.text for s in plain_sentences(bias)}
    frame.insert(4, "sentence", [sentences.get((r.generator, r.prompt)) for r in bias.reports])
    frame.insert(frame.columns.get_loc("top_proportion"), "top_count", [r.top.count for r in bias.reports])
    between = {b.prompt: b.overall for b in bias.between}
    extra = {
        "v_between_low": lambda v: v.low,
        "v_between_high": lambda v: v.high,
        "v_between_p": lambda v: v.test.p_value,
        "v_between_p_adjusted": lambda v: v.test.p_adjusted,
        "v_between_method": lambda v: v.test.method,
    }
    at = frame.columns.get_loc("cramers_v_between_generators") + 1
    for offset, (column, read) in enumerate(extra.items()):
        frame.insert(at + offset, column, [None if r.prompt not in between else read(between[r.prompt])
                                           for r in bias.reports])
    for name in bias.classes:
        frame.insert(frame.columns.get_loc(f"p_{name}"), f"count_{name}",
                     [row.count for r in bias.reports for row in r.rows if row.name == name])
    return frame


def class_table(bias: GalleryBias) -> pd.DataFrame:
    """One row per (generator, prompt, class): count, n, share and every interval of it."""
    frame = complete(bias).per_class().rename(columns={"name": "class"})
    frame.insert(2, "labeller", bias.labeller)
    return frame


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
    complete(bias)
    keys = _method_keys(bias)
    adjustment = statistics.ADJUSTMENTS[bias.adjustment]
    margin = f"{bias.equivalence_margin:g}"
    tests_table, effects_table = _tests_table(bias, keys), _effects_table(bias)
    out = [
        f"Bias of {bias.gallery} — labeller {bias.labeller}"
        + (f", agreement with {bias.agreement_labeller}" if bias.agreement_labeller else ""),
        "",
        *_plain_lines(bias),
        *tests_table,
        "",
        *_legend_lines(tests_table[0]),
        f"   p-values adjusted by {adjustment} over all {len(bias.tests)} p-values above; the "
        "letter names the test computed:",
        *(f"   {key} = {method}" for method, key in keys.items()),
        f"   entropy interval: its {statistics.ENTROPY_METHOD}.",
        "",
        *effects_table,
        "",
        *_legend_lines(effects_table[0]),
        f"   TV ref interval: its {statistics.TV_METHOD}; margin {margin}, tested at the 5% level",
        "   (too few artworks is the usual reason for 'unproven'). kappa '-' interval: its asymptotic",
        "   standard error is 0. PABAK = (K·agree - 1)/(K - 1), Wilson interval.",
        *_between_lines(bias),
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
    groups = warning_groups(bias)
    if groups:
        out += ["", "Warnings: each said once, where it applies in brackets"]
        for group in groups:
            where = group.where_text(len(bias.reports))
            out += textwrap.wrap(group.message + (f" [{where}]" if where else ""), WIDTH,
                                 initial_indent="  - ", subsequent_indent="    ")
    return "\n".join(out)


WIDTH = 100  # the terminal table's prose is wrapped to this many characters


def _plain_lines(bias: GalleryBias) -> list[str]:
    """The student's summary: one sentence per generator and prompt, before any table."""
    sentences = plain_sentences(bias)
    if not sentences:
        return []
    out = ["In plain words (the class each generator painted most; 95% interval; n artworks):"]
    for sentence in sentences:
        out += textwrap.wrap(sentence.text, WIDTH, initial_indent="  - ", subsequent_indent="    ")
    return out + [""]


def _legend_lines(header_line: str) -> list[str]:
    """"Columns:" and one line per column of a table, in the table's order."""
    headers = [h for h in re.split(r"\s{2,}", header_line.strip()) if h]
    width = max(len(h) for h in headers)
    return ["Columns:"] + [f"  {h.ljust(width)}  {TABLE_LEGEND[_legend_key(h)]}" for h in headers]


def _between_lines(bias: GalleryBias) -> list[str]:
    """Cramér's V between generators per prompt: all of them, then each pair."""
    if not bias.between:
        return []
    adjustment = statistics.ADJUSTMENTS[bias.adjustment]
    out = ["", f"Between generators: Cramér's V [95% CI], Pearson chi-square p (p adjusted by {adjustment} "
               "over these tests):"]
    for found in bias.between:
        out.append(f"  {found.prompt_label}:")
        shown = [found.overall] if found.pairs == [found.overall] else [found.overall, *found.pairs]
        for v in shown:
            out.append(f"    {' vs '.join(v.rows)}: V {_interval(v.v, v.low, v.high)}, "
                       f"p {_p_value(v.test.p_value)} ({_p_value(v.test.p_adjusted)}), n = {v.n}")
    out += textwrap.wrap(f"interval: {statistics.CRAMERS_V_INTERVAL}.", WIDTH, initial_indent="  ",
                         subsequent_indent="  ")
    return out


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
    complete(bias)
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
        "plain_sentences": [s.to_dict() for s in plain_sentences(bias)],
        "between_generators": {
            "interval": statistics.CRAMERS_V_INTERVAL,
            "adjustment": f"{statistics.ADJUSTMENTS[bias.adjustment]} over the between-generator tests only",
            "prompts": [b.to_dict() for b in bias.between],
        },
        "warnings": [g.to_dict() for g in warning_groups(bias)],
        "columns": TABLE_LEGEND,
    }
    return json.dumps(_json_safe(document), indent=2)


def render(bias: GalleryBias, fmt: str) -> str:
    if fmt == "table":
        return format_table(bias)
    if fmt == "csv":
        return overview_table(bias).to_csv(index=False)
    if fmt == "json":
        return to_json(bias)
    raise ConfigError(f"unknown format {fmt!r}; use table, csv or json")
