"""``artbias validate``: does the bias study recover a notion of beauty that was put in on purpose?

The scenery world's aesthetic prior (``data/world/aesthetic.json``, or any rule a world was
built under) is a known truth: per class, time of day and weather it says how beautiful a
scene is, and a CLIP trained on that world's captions learns it. For one CLIP this runs a
campaign on each generator:

- the beauty prompt "a beautiful landscape" against its neutral control "a landscape" and its
  negated control "a dull landscape", searched with the same seeds (paired), on ``replicates``
  disjoint seed sets, plus unguided baseline samples;
- labels: the artworks' true classes where the generator knows them (``world-render``: exact;
  BigGAN: the intended class), a scene classifier otherwise;

and then asks, per generator: is the top injected class the top measured one
(``top_class_recovered``: the class whose share rises most from the neutral control to the
beauty prompt, paired by seed, with its paired test), and does the measured beauty axis rank
the classes as the injected rule does (``class_spearman``)? The ranking is measured from the
negated control to the beauty prompt (a class's share under "a beautiful landscape" minus
under "a dull landscape"): a search concentrates the beauty prompt on the top classes, so below
them the neutral contrast is only minus the share "a landscape" gives a class, which ranks
classes by how landscape-like they are; the dull prompt concentrates on the bottom classes,
so the two ends of the axis together span the order. ``class_spearman_vs_neutral`` keeps the
neutral contrast's ranking (on ``world-render`` it ranked two of the three zoo CLIPs'
classes worse, the third slightly better: docs/validation.md). For the world GANs it also checks that the unguided mix recovers
the training composition (``composition_tv``).

The objective: ``contrast`` (the default) searches for "a beautiful landscape" with its neutral
control as a negative prompt (CLIP similarity to the prompt minus similarity to "a landscape"),
``raw`` for plain similarity. Raw similarity mostly finds what is most *landscape*-like to the
CLIP; the contrast cancels that and leaves what "beautiful" adds, which is the quantity the
injected rule defines (see the README's validation section for the measured comparison).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from data.errors import ArtbiasError, ConfigError
from data.files import write_atomically
from data.world.aesthetic import AestheticRule
from data.world.params import CLASSES
from gallery.controls import ControlComparison, control_comparisons
from gallery.statistics import adjust_p_values

BEAUTY, NEUTRAL, NEGATED = "a beautiful landscape", "a landscape", "a dull landscape"
OBJECTIVES = ("contrast", "raw")
PAINTABLE_SHARE = 0.02  # a class a generator draws in under this share of its unguided samples is out of its reach
DEFAULT_LABELLER = "classifier-world"
# Attribute labellers for generators that do not record what they drew (world GANs).
ATTRIBUTE_LABELLERS = {"time": "time-world", "weather": "weather-world"}


class ValidationError(ArtbiasError):
    """A validation campaign that ran but left nothing to analyse (its searches failed)."""


@dataclass(frozen=True)
class ValidationSettings:
    clip: str
    generators: tuple[str, ...] = ("world-render",)
    rule: str | None = None  # a rule JSON; default: the CLIP's training record, else the world's rule
    seeds: int = 24  # per replicate
    replicates: int = 3
    objective: str = "contrast"
    pop_size: int = 16
    generations: int = 6
    baseline: int = 300
    anchor_radius: float | None = None  # the searches' trust region (SearchConfig.anchor_radius)
    labeller: str = DEFAULT_LABELLER
    seed: int = 0

    def check(self) -> None:
        problems = []
        if self.objective not in OBJECTIVES:
            problems.append(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if not self.generators:
            problems.append("name at least one generator")
        for name, low, high in (("seeds", 2, 10_000), ("replicates", 1, 100), ("pop_size", 2, 4096),
                                ("generations", 1, 10_000), ("baseline", 0, 1_000_000)):
            value = getattr(self, name)
            if not low <= value <= high:
                problems.append(f"{name} must be from {low} to {high}, got {value}")
        if problems:
            raise ConfigError("validate: " + "; ".join(problems))


def the_rule(settings: ValidationSettings) -> tuple[AestheticRule, str]:
    """The injected rule and where it came from."""
    if settings.rule is not None:
        return AestheticRule.load(settings.rule), str(settings.rule)
    from search.clip import clip_folder, load_clip
    from search.clip_training import trained_rule

    folder = clip_folder(load_clip(settings.clip))
    found = trained_rule(folder) if folder else None
    if found is not None:
        return found, f"the training record of {settings.clip}"
    return AestheticRule.load(), "the world's default rule (data/world/aesthetic.json)"


def campaign_config(settings: ValidationSettings):
    from gallery.config import parse_config

    prompt = {"text": BEAUTY, "seeds": settings.seeds, "controls": [NEUTRAL, NEGATED]}
    if settings.objective == "contrast":
        prompt |= {"negatives": [NEUTRAL], "negative_weight": 1.0}
    raw = {
        "name": f"validate {Path(settings.clip).name} {settings.objective} seed {settings.seed}",
        "description": "artbias validate: the beauty prompt against its controls, paired by seed",
        "prompts": [prompt],
        "generators": list(settings.generators),
        "replicates": settings.replicates,
        "algorithms": ["ga"],
        "clip": settings.clip,
        "labellers": [settings.labeller, *_attribute_labellers()],
        "search": {"pop_size": settings.pop_size, "generations": settings.generations, "top_k": 1}
        | ({"anchor_radius": settings.anchor_radius} if settings.anchor_radius is not None else {}),
        "baseline": {"samples": settings.baseline, "chunk": 100, "seed": settings.seed},
    }
    return parse_config(raw, source="validate")


def _attribute_labellers() -> list[str]:
    """The world attribute classifiers the catalogue has (the starter zoo ships both)."""
    from data.weights.catalog import find_entry

    return [name for name in ATTRIBUTE_LABELLERS.values() if find_entry(name) is not None]


# -- analysis ----------------------------------------------------------------------------------
@dataclass
class AxisRecovery:
    """One axis (class, time of day or weather): injected beauty against the measured effect."""

    labeller: str
    injected: dict[str, float]  # the rule's mean aesthetic value per value of the axis
    effect: dict[str, float]  # beauty prompt's share minus the neutral control's, paired by seed
    effect_intervals: dict[str, tuple[float, float]]
    reachable: list[str]  # values the generator draws (unguided share >= PAINTABLE_SHARE)
    spearman: float | None  # injected beauty against the beauty axis (beauty prompt minus negated control)
    top_injected: str | None
    top_measured: str | None
    recovered: bool | None
    n_pairs: int
    test: dict  # the paired test of prompt vs neutral control (p adjusted over the validation)
    negated: dict | None = None  # the same comparison against "a dull landscape": the beauty axis
    spearman_vs_neutral: float | None = None  # injected beauty against ``effect``
    replicate_tops: list[str | None] = field(default_factory=list)  # the top measured value per replicate

    @property
    def replicates(self) -> bool | None:
        """Does every replicate alone put the same value on top as all of them pooled?"""
        if not self.replicate_tops or self.top_measured is None:
            return None
        return all(top == self.top_measured for top in self.replicate_tops)


def _rank_correlation(injected: dict[str, float], measured: dict[str, float], names: list[str]) -> float | None:
    """Spearman's rho over ``names``; None for fewer than 3 values or a measure without spread."""
    if len(names) < 3 or np.ptp([measured.get(c, 0.0) for c in names]) == 0:
        return None
    return float(spearmanr([injected[c] for c in names], [measured.get(c, 0.0) for c in names]).statistic)


def _recovery(injected: dict[str, float], vs_neutral: ControlComparison, reachable: list[str],
              labeller: str, vs_negated: ControlComparison | None) -> AxisRecovery:
    names = [c for c in injected if c in reachable]
    effect = {c: vs_neutral.differences.get(c, 0.0) for c in injected}
    paired_negated = vs_negated is not None and vs_negated.n_pairs > 0
    beauty_axis = {c: vs_negated.differences.get(c, 0.0) for c in injected} if paired_negated else effect
    top_injected = max(names, key=injected.get) if names else None
    top_measured = max(names, key=effect.get) if names and vs_neutral.n_pairs else None
    return AxisRecovery(
        labeller, injected, effect, dict(vs_neutral.difference_intervals), names,
        _rank_correlation(injected, beauty_axis, names), top_injected,
        top_measured, None if top_measured is None else top_injected == top_measured, vs_neutral.n_pairs,
        asdict(vs_neutral.test), None if vs_negated is None else {
            "differences": vs_negated.differences, "intervals": dict(vs_negated.difference_intervals),
            "test": asdict(vs_negated.test), "n_pairs": vs_negated.n_pairs},
        spearman_vs_neutral=_rank_correlation(injected, effect, names),
    )


@dataclass
class GeneratorValidation:
    generator: str
    classes: AxisRecovery | None = None
    time: AxisRecovery | None = None
    weather: AxisRecovery | None = None
    composition_tv: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def class_spearman(self) -> float | None:
        return None if self.classes is None else self.classes.spearman

    @property
    def class_spearman_vs_neutral(self) -> float | None:
        return None if self.classes is None else self.classes.spearman_vs_neutral

    @property
    def top_class_recovered(self) -> bool | None:
        return None if self.classes is None else self.classes.recovered


def _reachable(labelled, generator: str, names) -> list[str]:
    baseline = labelled[(labelled["generator"] == generator) & (labelled["kind"] == "baseline")]
    if baseline.empty:
        return list(names)
    shares = baseline["predicted"].value_counts(normalize=True)
    return [c for c in names if shares.get(c, 0.0) >= PAINTABLE_SHARE]


def _axis_labeller(gallery: Path, generator: str, axis: str, settings: ValidationSettings) -> str | None:
    """Who labels ``axis`` for ``generator``: its own record of what it drew when that record is
    exact (``world-render``'s ``intended``, ``intended-time``...), else the model labeller for
    that axis. BigGAN's intended class is what the latent asked for, not what was drawn: the
    classifier judges what a visitor (and the CLIP) sees."""
    import json

    from classifier.labellers import intended_spec
    from gallery.store.queries import labelled_artworks, labellers

    table = labellers(gallery)
    present = set(table["labeller"])
    known = intended_spec(None if axis == "class" else axis)
    if known in present:
        identity = json.loads(table.loc[table["labeller"] == known, "identity_json"].iloc[0] or "{}")
        exact = str(identity.get("rule", "")).startswith("exact")
        if exact and (labelled_artworks(gallery, known)["generator"] == generator).any():
            return known
    model = settings.labeller if axis == "class" else ATTRIBUTE_LABELLERS[axis]
    return model if model in present else None


def analyse(gallery: Path, settings: ValidationSettings, rule: AestheticRule) -> dict[str, GeneratorValidation]:
    from classifier.labellers import ATTRIBUTES
    from gallery.bias import gallery_bias
    from gallery.store.queries import labelled_artworks

    found: dict[str, GeneratorValidation] = {}
    comparisons: list[tuple[ControlComparison, AxisRecovery]] = []
    values = {"class": CLASSES, **ATTRIBUTES}
    for generator in settings.generators:
        result = GeneratorValidation(generator)
        found[generator] = result
        for axis, names in values.items():
            labeller = _axis_labeller(gallery, generator, axis, settings)
            if labeller is None:
                result.notes.append(f"no {axis} labels for {generator}: its {axis} effect is not measured")
                continue
            labelled = labelled_artworks(gallery, labeller)
            labelled = labelled[labelled["generator"] == generator]
            if labelled.empty:
                result.notes.append(f"no artworks labelled by {labeller}")
                continue
            pairs = control_comparisons(labelled, list(names), {BEAUTY: [NEUTRAL, NEGATED]}, seed=settings.seed)
            pooled = {c.control: c for c in pairs if c.replicate == "pooled"}
            if NEUTRAL not in pooled:
                raise _nothing_paired(gallery, generator, labeller)
            # Reach: what the generator draws unprompted, as the model labeller sees it.
            model = settings.labeller if axis == "class" else ATTRIBUTE_LABELLERS[axis]
            reach_labels = labelled_artworks(gallery, model) if model != labeller else labelled
            reachable = _reachable(reach_labels, generator, names)
            recovery = _recovery(rule.beauty_by(axis), pooled[NEUTRAL], reachable, labeller, pooled.get(NEGATED))
            recovery.replicate_tops = [
                max(recovery.reachable, key=lambda v, c=c: c.differences.get(v, 0.0)) if recovery.reachable else None
                for c in pairs if c.control == NEUTRAL and c.replicate != "pooled"
            ]
            setattr(result, "classes" if axis == "class" else axis, recovery)
            comparisons += [(c, recovery) for c in pairs if c.replicate == "pooled"]
        if result.classes is not None and result.classes.labeller != settings.labeller:
            result.notes.append(f"labels are the generator's own record ({result.classes.labeller}...); "
                                f"reach judged from the model labellers' labels of its unguided samples")
    # One multiplicity family: every pooled prompt-vs-control test of the validation.
    family = [(c, r) for c, r in comparisons if math.isfinite(c.test.p_value)]
    adjusted = adjust_p_values([c.test.p_value for c, _ in family], "holm")
    for (comparison, recovery), p_adjusted in zip(family, adjusted, strict=True):
        target = recovery.test if comparison.control == NEUTRAL else (recovery.negated or {}).get("test")
        if target is not None:
            target["p_adjusted"] = float(p_adjusted)
            target["adjustment"] = f"Holm over {len(family)} tests"
    # The generator's domain: its unguided mix against its training composition.
    try:
        bias = gallery_bias(gallery, labeller=settings.labeller, seed=settings.seed)
    except ConfigError as error:
        for result in found.values():
            result.notes.append(f"no composition check: {error}")
        return found
    for report in bias.reports:
        if report.prompt is None and report.generator in found and report.vs_reference_distance is not None:
            distance = report.vs_reference_distance
            corrected = [row.corrected for row in report.rows]
            composition = {
                "labeller": settings.labeller,
                "n": report.n,
                "reference": report.reference_name,
                "tv": distance.distance, "low": distance.low, "high": distance.high,
                "margin": distance.margin, "equivalent": distance.equivalent,
                "corrected_tv": None, "confusion_source": report.confusion_source,
            }
            if all(c is not None for c in corrected):
                reference = _reference_shares(report, distance)
                if reference is not None:
                    composition["corrected_tv"] = float(0.5 * np.abs(np.asarray(corrected) - reference).sum())
            found[report.generator].composition_tv = composition
    return found


def _nothing_paired(gallery: Path, generator: str, labeller: str) -> ValidationError:
    """Why no search under the beauty prompt pairs with one under its neutral control: most
    often every search failed (the runs table records each failure and its traceback)."""
    from gallery.store.queries import search_outcomes

    runs = search_outcomes(gallery, generator)
    failed = runs[runs["status"] == "failed"]
    if len(failed):
        lines = str(failed["error"].iloc[0] or "").strip().splitlines()
        first = re.sub(r"^(?:\w+\.)+(?=\w+:)", "", lines[-1].strip()) if lines else "unknown error"  # the class, not its module
        return ValidationError(f"validation: {len(failed)} of {len(runs)} search runs of {generator} failed "
                               f"(first: {first}); see the runs table of {gallery}")
    return ValidationError(f"validation: no search of {generator} under {BEAUTY!r} pairs by seed with one under "
                           f"{NEUTRAL!r} labelled by {labeller}; see the runs table of {gallery}")


def _reference_shares(report, distance) -> np.ndarray | None:
    from gallery.bias import reference_compositions

    refs = reference_compositions([report.generator], report.classes, ())
    return np.asarray(refs[report.generator][1]) if report.generator in refs else None


# -- the command -----------------------------------------------------------------------------
def run_validation(settings: ValidationSettings, out: str | Path, *, workers: int = 1,
                   progress: bool = True) -> dict:
    """Run the validation campaign into ``out/gallery`` (resumable) and write
    ``out/validation.json`` and ``out/validation.md``."""
    from gallery.campaign import run_campaign
    from gallery.executor import make_executor
    from gallery.planning import preflight

    settings.check()
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"validate: --out {out} exists and is not a folder")
    rule, rule_source = the_rule(settings)
    config = campaign_config(settings)
    preflight(config)
    started = time.perf_counter()
    summary = run_campaign(config, out / "gallery", executor=make_executor(workers), progress=progress)
    results = analyse(out / "gallery", settings, rule)
    document = {
        "clip": settings.clip,
        "settings": asdict(settings),
        "rule": rule.to_dict(),
        "rule_source": rule_source,
        "injected_class_beauty": rule.class_beauty(),
        "injected_beauty": {axis: rule.beauty_by(axis) for axis in ("class", "time", "weather")},
        "prompts": {"beauty": BEAUTY, "neutral_control": NEUTRAL, "negated_control": NEGATED},
        "objective": settings.objective,
        "campaign": {"jobs": summary.planned, "failed": summary.failed, "seconds": round(time.perf_counter() - started, 1)},
        "generators": {name: _generator_json(result) for name, result in results.items()},
    }
    document = _finite(document)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "validation.json", lambda p: p.write_text(json.dumps(document, indent=2) + "\n"))
    write_atomically(out / "validation.md", lambda p: p.write_text(markdown(document)))
    return document


def _generator_json(result: GeneratorValidation) -> dict:
    document = {
        "class_spearman": result.class_spearman,
        "class_spearman_vs_neutral": result.class_spearman_vs_neutral,
        "top_class_recovered": result.top_class_recovered,
        "classes": None if result.classes is None else asdict(result.classes),
    }
    document["replicates"] = None if result.classes is None else {
        "tops": result.classes.replicate_tops, "top_class_replicates": result.classes.replicates}
    for axis in ("time", "weather"):
        recovery = getattr(result, axis)
        document[f"{axis}_spearman"] = None if recovery is None else recovery.spearman
        document[f"{axis}_spearman_vs_neutral"] = None if recovery is None else recovery.spearman_vs_neutral
        document[f"top_{axis}_recovered"] = None if recovery is None else recovery.recovered
        document[axis] = None if recovery is None else asdict(recovery)
    return document | {"composition_tv": result.composition_tv, "notes": result.notes}


def _finite(value):
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


def markdown(document: dict) -> str:
    lines = [
        f"# Validation of `{document['clip']}`",
        "",
        f"Injected rule: {document['rule_source']}. Beauty prompt \"{BEAUTY}\" against \"{NEUTRAL}\" (and "
        f"\"{NEGATED}\"), paired by seed; objective `{document['objective']}`; "
        f"{document['settings']['replicates']} replicates of {document['settings']['seeds']} seeds; "
        f"{document['campaign']['jobs']} jobs in {document['campaign']['seconds']} s.",
        "",
        "Injected per-class beauty (mean aesthetic value): "
        + ", ".join(f"{c} {v:.2f}" for c, v in sorted(document["injected_class_beauty"].items(), key=lambda kv: -kv[1])),
        "",
        "Class Spearman: the injected per-class beauty against the measured beauty axis (share under the "
        "beauty prompt minus under the negated control); in brackets against the neutral contrast.",
        "",
        "| generator | class Spearman (vs neutral) | top injected | top measured | recovered | top per replicate | n pairs | adjusted p | unguided TV to training (95%) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in document["generators"].items():
        classes = result["classes"] or {}
        tv = result["composition_tv"]
        tv_text = "-" if not tv else (f"{tv['tv']:.3f} [{tv['low']:.3f}, {tv['high']:.3f}]"
                                       f" ({'equivalent' if tv['equivalent'] else 'unproven'} at {tv['margin']})")
        rho = f"{_rho(result['class_spearman'])} ({_rho(result.get('class_spearman_vs_neutral'))})"
        p = (classes.get("test") or {}).get("p_adjusted")
        lines.append(
            f"| {name} | {rho} | {classes.get('top_injected', '-')} | "
            f"{classes.get('top_measured', '-')} | {result['top_class_recovered']} | "
            f"{', '.join(str(t) for t in classes.get('replicate_tops', [])) or '-'} | {classes.get('n_pairs', 0)} | "
            f"{'-' if p is None else f'{p:.3g}'} | {tv_text} |"
        )
    lines += ["", "Time of day and weather (Spearman of the beauty axis with the injected beauty, vs neutral in "
              "brackets; top injected -> top measured):", ""]
    for name, result in document["generators"].items():
        cells = []
        for axis in ("time", "weather"):
            axis_result = result.get(axis)
            if axis_result:
                rho = f"{_rho(axis_result['spearman'])} ({_rho(axis_result.get('spearman_vs_neutral'))})"
                cells.append(f"{axis}: {rho}, {axis_result['top_injected']} -> "
                             f"{axis_result['top_measured']} ({axis_result['labeller']})")
        lines.append(f"- **{name}**: " + ("; ".join(cells) if cells else "not measured"))
    lines += ["", "Per-value beauty effect (share under the beauty prompt minus under the neutral control, 95% interval):", ""]
    for name, result in document["generators"].items():
        for axis in ("classes", "time", "weather"):
            axis_result = result.get(axis)
            if not axis_result:
                continue
            cells = [f"{c} {axis_result['effect'][c]:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                     for c, (lo, hi) in axis_result["effect_intervals"].items()]
            lines.append(f"- **{name}**, {axis} ({axis_result['labeller']}): " + ", ".join(cells))
            negated = axis_result.get("negated") or {}
            if negated.get("intervals"):
                axis_cells = [f"{c} {negated['differences'].get(c, 0.0):+.2f} [{lo:+.2f}, {hi:+.2f}]"
                              for c, (lo, hi) in negated["intervals"].items()]
                lines.append(f"  - beauty axis (beauty prompt minus \"{NEGATED}\"): " + ", ".join(axis_cells))
        lines += [f"  - note: {note}" for note in result["notes"]]
    return "\n".join(lines) + "\n"


def _rho(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
