"""Bias statistics over class labels: pure functions of counts and label arrays (no store, no I/O).

A generator's *bias* for a prompt is the class composition of the artworks the search found for
it. Each function here answers one question about such a composition, with its uncertainty:

- how big is each class, and how sure are we (Wilson intervals, bootstrap intervals);
- is it different from uniform, from the generator's own unguided samples (the domain) and from
  a reference such as the training composition (G-tests; Monte-Carlo p-values when expected
  counts are too small for the chi-square approximation);
- how strongly do generators differ (Cramér's V), how concentrated is it (normalised entropy);
- what would it be without the classifier's errors (BBSE, Lipton et al. 2018);
- does the CLIP zero-shot labeller agree with the classifier (Cohen's kappa).

``build_reports`` turns a table of labelled artworks into one ``BiasReport`` per
(generator, prompt). The definitions shown to users live in ``METRIC_DEFINITIONS``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats.contingency import association
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.proportion import proportion_confint

from data.errors import ConfigError

MIN_EXPECTED = 5  # below this expected count the chi-square approximation is not trusted
LOW_CONFIDENCE = 0.5  # an artwork whose top class probability is below this is "low confidence"
BASELINE = None  # the prompt value of a generator's unguided samples


# -- the definitions users read (the app shows these; docs/statistics.md repeats them) ------
METRIC_DEFINITIONS: dict[str, str] = {
    "n": "Number of artworks behind a figure: one chosen artwork per search run (the "
    "runner-up and Pareto siblings of a run are not independent samples and are left out), "
    "or the unguided baseline samples.",
    "proportion": "Share of the artworks the classifier puts in a class.",
    "Wilson interval": "95% interval for a proportion (Wilson score method). Unlike the "
    "textbook p ± 1.96·SE it stays inside [0, 1] and keeps close to 95% coverage for small "
    "samples and proportions near 0 or 1.",
    "G-test vs uniform": "Could the class counts have come from a generator that picks every "
    "class equally often? A small p-value (e.g. below 0.05) says no: the artworks favour some "
    "classes.",
    "G-test vs baseline": "Does the prompt change the composition compared with the same "
    "generator's unguided samples (its domain)? A 2×K contingency test of prompt counts "
    "against baseline counts; a small p-value says the prompt pushes the composition "
    "somewhere the generator does not go by itself.",
    "G-test vs reference": "Does the composition differ from a reference composition, such as "
    "the class composition of the generator's training data?",
    "Monte-Carlo p-value": "When some expected count is below 5 the chi-square approximation "
    "is unreliable, so the p-value is instead the share of simulated samples (under the "
    "null hypothesis) at least as extreme as the observed one.",
    "lift": "Proportion of a class under the prompt divided by its proportion in the "
    "unguided baseline. 2 means the prompt doubles that class; the interval is the Katz "
    "log interval for a ratio of proportions (0.5 is added to zero counts).",
    "Cramér's V": "Strength of association between two categorical variables, from 0 (the "
    "compositions are identical) to 1 (completely different classes). Between generators: "
    "how much the generator decides the class for the same prompt. Versus baseline: how "
    "much the prompt moves the composition.",
    "normalised entropy": "Shannon entropy of the class composition divided by its maximum "
    "log K: 1 means all classes equally often, 0 means a single class. Its interval is a "
    "seeded percentile bootstrap.",
    "corrected proportion": "Proportions corrected for the classifier's own errors (black-box "
    "shift estimation, Lipton et al. 2018): with M[j, i] the probability that the classifier "
    "says j when the truth is i (from its confusion matrix), solve M·q = observed "
    "proportions and project q onto the probability simplex. The interval is a bootstrap "
    "that resamples both the artworks and the confusion matrix.",
    "Cohen's kappa": "Agreement between the classifier and the CLIP zero-shot labeller beyond "
    "chance: 1 is perfect agreement, 0 what chance alone gives. Low kappa means CLIP does "
    "not recognise the scene the classifier sees in what it steered toward.",
    "low-confidence share": "Share of artworks whose top class probability is below 0.5: "
    "images the classifier finds ambiguous (often unusual or unrealistic scenes).",
}


# -- proportions and intervals ---------------------------------------------------------------
def proportions(counts: Sequence[float]) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total > 0 else np.full(counts.shape, np.nan)


def wilson_intervals(
    counts: Sequence[int], confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class Wilson score intervals for the proportions ``counts / sum(counts)``."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0:
        nan = np.full(counts.shape, np.nan)
        return nan, nan.copy()
    low, high = proportion_confint(counts, total, alpha=1 - confidence, method="wilson")
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    # The bounds are exactly 0 and 1 at x = 0 and x = n; statsmodels leaves rounding dust there.
    low[counts == 0] = 0.0
    high[counts == total] = 1.0
    return low, high


def normalised_entropy(counts: Sequence[float]) -> float:
    """Shannon entropy of the composition over log K (K = all classes, observed or not)."""
    counts = np.asarray(counts, dtype=float)
    if counts.size < 2 or counts.sum() <= 0:
        return float("nan")
    return float(stats.entropy(counts) / math.log(counts.size))


def _counts_along(codes: np.ndarray, n_classes: int, axis: int) -> np.ndarray:
    """Class counts of integer-coded labels along ``axis`` (vectorised over bootstrap batches)."""
    codes = np.moveaxis(np.asarray(codes), axis, -1)
    return (codes[..., None] == np.arange(n_classes)).sum(axis=-2)


def bootstrap_interval(
    codes: Sequence[int],
    statistic,
    *,
    n_classes: int,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded percentile-bootstrap interval of ``statistic(counts)`` over resampled labels.

    ``statistic`` maps class counts [..., K] to a value (or a vector) per resample. Percentile
    intervals rather than BCa: BCa is undefined when every label is the same, which small
    biased galleries often are.
    """
    codes = np.asarray(codes, dtype=int)
    if codes.size < 2:
        value = np.asarray(statistic(_counts_along(codes[None, :], n_classes, 1)[0]), dtype=float)
        return np.full(value.shape, np.nan), np.full(value.shape, np.nan)

    def on_codes(sample, axis):
        return statistic(_counts_along(sample, n_classes, axis))

    result = stats.bootstrap(
        (codes,),
        on_codes,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)


def _entropy_of_counts(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    p = counts / counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=-1) / math.log(counts.shape[-1])


def _proportions_of_counts(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    return np.moveaxis(counts / counts.sum(axis=-1, keepdims=True), -1, 0)


def entropy_interval(
    codes: Sequence[int], n_classes: int, *, seed: int = 0, n_resamples: int = 2000
):
    low, high = bootstrap_interval(
        codes, _entropy_of_counts, n_classes=n_classes, seed=seed, n_resamples=n_resamples
    )
    return float(low), float(high)


def proportion_bootstrap_intervals(
    codes: Sequence[int], n_classes: int, *, seed: int = 0, n_resamples: int = 2000
):
    return bootstrap_interval(
        codes, _proportions_of_counts, n_classes=n_classes, seed=seed, n_resamples=n_resamples
    )


# -- tests ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestResult:
    """One hypothesis test: statistic, degrees of freedom, p-value, how it was computed."""

    __test__ = False  # not a pytest test class

    statistic: float
    dof: int
    p_value: float
    method: str  # e.g. "G-test (chi-square approximation)", "G-test (Monte-Carlo, 20000 draws)"
    min_expected: float
    warning: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _g_statistic(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """2 Σ o log(o/e), vectorised over leading axes (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(observed > 0, observed * np.log(observed / expected), 0.0)
    return 2 * terms.sum(axis=-1)


def goodness_of_fit(
    counts: Sequence[int],
    expected_proportions: Sequence[float] | None = None,
    *,
    n_simulations: int = 20000,
    seed: int = 0,
) -> TestResult:
    """G-test of class counts against a composition (uniform when none is given).

    When an expected count is below ``MIN_EXPECTED`` the p-value comes from multinomial
    simulation under the null (seeded), and the result says so. A class the reference gives
    zero probability but that was observed makes the statistic infinite and p = 0.
    """
    observed = np.asarray(counts, dtype=float)
    n = observed.sum()
    k = observed.size
    reference = (
        np.full(k, 1 / k)
        if expected_proportions is None
        else np.asarray(expected_proportions, float)
    )
    if reference.shape != observed.shape:
        raise ConfigError(f"reference has {reference.size} classes, counts have {k}")
    if np.any(reference < 0) or reference.sum() <= 0:
        raise ConfigError(
            f"reference composition must be non-negative and not all zero: {reference.tolist()}"
        )
    reference = reference / reference.sum()
    if n == 0:
        return TestResult(float("nan"), 0, float("nan"), "none", 0.0, "no artworks: no test")
    possible = reference > 0
    dof = int(possible.sum()) - 1
    expected = n * reference[possible]
    min_expected = float(expected.min())
    if np.any(observed[~possible] > 0):
        return TestResult(
            float("inf"),
            dof,
            0.0,
            "G-test",
            min_expected,
            "a class the reference never produces was observed, so the reference is rejected outright",
        )
    if dof < 1:
        return TestResult(
            float("nan"),
            0,
            float("nan"),
            "none",
            min_expected,
            "the reference has a single class: no test",
        )
    statistic = float(_g_statistic(observed[possible], expected))
    if min_expected >= MIN_EXPECTED:
        result = stats.power_divergence(observed[possible], expected, lambda_="log-likelihood")
        return TestResult(
            float(result.statistic),
            dof,
            float(result.pvalue),
            "G-test (chi-square approximation)",
            min_expected,
        )
    rng = np.random.default_rng(seed)
    simulated = rng.multinomial(int(n), reference[possible], size=n_simulations).astype(float)
    extreme = int(np.sum(_g_statistic(simulated, expected) >= statistic - 1e-9))
    p_value = (extreme + 1) / (n_simulations + 1)
    return TestResult(
        statistic,
        dof,
        p_value,
        f"G-test (Monte-Carlo p-value, {n_simulations} draws)",
        min_expected,
        f"smallest expected count {min_expected:.1f} < {MIN_EXPECTED}: chi-square approximation "
        "not trusted, p-value simulated",
    )


def homogeneity_test(
    counts_a: Sequence[int],
    counts_b: Sequence[int],
    *,
    n_simulations: int = 20000,
    seed: int = 0,
) -> TestResult:
    """Do two samples share one class composition? A 2×K contingency test.

    G-test with the chi-square approximation when all expected counts reach ``MIN_EXPECTED``;
    otherwise Pearson's chi-square with a Monte-Carlo p-value conditional on the margins
    (scipy draws random tables with the observed margins).
    """
    table = np.vstack([np.asarray(counts_a, float), np.asarray(counts_b, float)])
    if table.sum(axis=1).min() <= 0:
        return TestResult(
            float("nan"), 0, float("nan"), "none", 0.0, "one of the samples is empty: no test"
        )
    table = table[:, table.sum(axis=0) > 0]  # a class neither sample has carries no information
    if table.shape[1] < 2:
        return TestResult(
            0.0, 0, 1.0, "none", float("nan"), "both samples hold a single, identical class"
        )
    expected = stats.contingency.expected_freq(table)
    min_expected = float(expected.min())
    dof = table.shape[1] - 1
    if min_expected >= MIN_EXPECTED:
        result = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")
        return TestResult(
            float(result.statistic),
            dof,
            float(result.pvalue),
            "G-test (chi-square approximation)",
            min_expected,
        )
    method = stats.MonteCarloMethod(n_resamples=n_simulations, rng=np.random.default_rng(seed))
    result = stats.chi2_contingency(table.astype(int), correction=False, method=method)
    return TestResult(
        float(result.statistic),
        dof,
        float(result.pvalue),
        f"Pearson chi-square (Monte-Carlo p-value, {n_simulations} tables)",
        min_expected,
        f"smallest expected count {min_expected:.1f} < {MIN_EXPECTED}: chi-square approximation "
        "not trusted, p-value simulated",
    )


def cramers_v(table: np.ndarray) -> float:
    """Cramér's V of a rows × classes count table (empty rows and classes dropped)."""
    table = np.asarray(table, dtype=float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if table.shape[0] < 2:
        return float("nan")
    if table.shape[1] < 2:
        return 0.0  # every row is the same single class: no association
    return float(association(table.astype(int), method="cramer"))


def pairwise_cramers_v(counts: Mapping[str, Sequence[int]]) -> pd.DataFrame:
    """Cramér's V for every pair of named compositions (a symmetric table, 0 on the diagonal)."""
    names = list(counts)
    table = pd.DataFrame(0.0, index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            table.loc[a, b] = table.loc[b, a] = cramers_v(np.vstack([counts[a], counts[b]]))
    return table


def ratio_interval(
    x1: float, n1: float, x2: float, n2: float, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Ratio of proportions (x1/n1)/(x2/n2) with the Katz log interval.

    Zero counts get 0.5 added (to both counts and totals) so that the ratio and its
    interval stay finite; the result is then a smoothed estimate.
    """
    if n1 <= 0 or n2 <= 0:
        return float("nan"), float("nan"), float("nan")
    if x1 == 0 or x2 == 0:
        x1, x2, n1, n2 = x1 + 0.5, x2 + 0.5, n1 + 0.5, n2 + 0.5
    ratio = (x1 / n1) / (x2 / n2)
    se = math.sqrt(max(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2, 0.0))
    z = stats.norm.ppf(0.5 + confidence / 2)
    return ratio, ratio * math.exp(-z * se), ratio * math.exp(z * se)


# -- classifier-error correction (BBSE) -------------------------------------------------------
def project_to_simplex(vector: Sequence[float] | np.ndarray) -> np.ndarray:
    """The point of the probability simplex closest (Euclidean) to ``vector`` (batched over
    leading axes).

    Sort descending; the largest prefix whose values stay positive after subtracting
    (prefix sum - 1) / prefix length sets the shift; shift everything and clip at zero.
    """
    v = np.asarray(vector, dtype=float)
    ordered = -np.sort(-v, axis=-1)
    cumulative = np.cumsum(ordered, axis=-1) - 1
    ranks = np.arange(1, v.shape[-1] + 1)
    support = (ordered - cumulative / ranks > 0).sum(axis=-1, keepdims=True)  # a prefix, >= 1
    threshold = np.take_along_axis(cumulative, support - 1, axis=-1) / support
    return np.maximum(v - threshold, 0.0)


def prediction_matrix(confusion: np.ndarray) -> np.ndarray:
    """M[j, i] = P(predicted j | true i) from confusion matrices [..., true, predicted]."""
    confusion = np.asarray(confusion, dtype=float)
    if confusion.ndim < 2 or confusion.shape[-1] != confusion.shape[-2]:
        raise ConfigError(f"confusion matrix must be square, got shape {confusion.shape}")
    row_totals = confusion.sum(axis=-1, keepdims=True)
    if np.any(row_totals <= 0):
        raise ConfigError("confusion matrix has a class with no test examples (an all-zero row)")
    return np.swapaxes(confusion / row_totals, -1, -2)


def bbse_correct(
    predicted_proportions: Sequence[float] | np.ndarray, confusion: np.ndarray
) -> np.ndarray:
    """True-class proportions q from predicted ones mu: solve M q = mu, project to the simplex.

    Batched: mu [..., K] with confusion [K, K] or [..., K, K].
    """
    mu = np.asarray(predicted_proportions, dtype=float)
    matrix = prediction_matrix(confusion)
    if matrix.shape[-1] != mu.shape[-1]:
        raise ConfigError(
            f"confusion matrix is {matrix.shape[-1]}x{matrix.shape[-1]}, composition has {mu.shape[-1]} classes"
        )
    # The pseudo-inverse rather than solve: a classifier that never predicts some class has
    # a singular M, and the least-squares answer is then still the sensible one.
    q = (np.linalg.pinv(matrix) @ mu[..., None])[..., 0]
    return project_to_simplex(q)


def bbse_interval(
    counts: Sequence[int],
    confusion: np.ndarray,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap interval of the BBSE-corrected proportions.

    Each resample redraws the artworks' predicted labels (multinomial with the observed
    proportions) and, when the confusion matrix holds counts, each of its rows too, so the
    interval also carries the uncertainty of the classifier's measured error rates.
    """
    counts = np.asarray(counts, dtype=float)
    confusion = np.asarray(confusion, dtype=float)
    n = int(counts.sum())
    k = counts.size
    if n < 2:
        return np.full(k, np.nan), np.full(k, np.nan)
    rng = np.random.default_rng(seed)
    predicted = rng.multinomial(n, counts / n, size=n_resamples) / n
    matrices = confusion
    if np.allclose(confusion, np.round(confusion)) and confusion.sum() > k:  # counts, not rates
        shares = confusion / confusion.sum(axis=1, keepdims=True)
        totals = confusion.sum(axis=1).astype(int)
        rows = [
            rng.multinomial(total, row, size=n_resamples)
            for total, row in zip(totals, shares, strict=True)
        ]
        matrices = np.stack(rows, axis=1).astype(float)  # [B, true, predicted]
    draws = bbse_correct(predicted, matrices)
    tail = (1 - confidence) / 2 * 100
    return np.percentile(draws, tail, axis=0), np.percentile(draws, 100 - tail, axis=0)


# -- agreement --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Agreement:
    kappa: float
    low: float
    high: float
    n: int  # artworks labelled by both
    observed_agreement: float


def agreement(
    labels_a: Sequence[str], labels_b: Sequence[str], classes: Sequence[str]
) -> Agreement:
    """Cohen's kappa (with its asymptotic 95% interval) between two labellings of the same items."""
    if len(labels_a) != len(labels_b):
        raise ConfigError(f"agreement needs paired labels, got {len(labels_a)} and {len(labels_b)}")
    index = {name: i for i, name in enumerate(classes)}
    table = np.zeros((len(classes), len(classes)))
    for a, b in zip(labels_a, labels_b, strict=True):
        if a in index and b in index:
            table[index[a], index[b]] += 1
    n = int(table.sum())
    if n == 0:
        return Agreement(float("nan"), float("nan"), float("nan"), 0, float("nan"))
    observed = float(np.trace(table) / n)
    chance = float((table.sum(axis=0) / n) @ (table.sum(axis=1) / n))
    if chance >= 1 - 1e-12:  # both labellers used one and the same class: kappa is undefined
        return Agreement(float("nan"), float("nan"), float("nan"), n, observed)
    with np.errstate(invalid="ignore"):  # perfect agreement: a zero variance, no interval
        result = cohens_kappa(table)
    if not np.isfinite(result.kappa_low):
        return Agreement(float(result.kappa), float(result.kappa), float(result.kappa), n, observed)
    return Agreement(
        float(result.kappa),
        max(float(result.kappa_low), -1.0),  # the asymptotic interval can overshoot [-1, 1]
        min(float(result.kappa_upp), 1.0),
        n,
        observed,
    )


# -- reports ----------------------------------------------------------------------------------
@dataclass
class ClassRow:
    """One class in one report."""

    name: str
    count: int
    proportion: float
    wilson_low: float
    wilson_high: float
    bootstrap_low: float
    bootstrap_high: float
    baseline_proportion: float | None = None
    lift: float | None = None
    lift_low: float | None = None
    lift_high: float | None = None
    reference_proportion: float | None = None
    corrected: float | None = None
    corrected_low: float | None = None
    corrected_high: float | None = None


@dataclass
class BiasReport:
    """Everything measured about one generator's artworks for one prompt (or its baseline)."""

    generator: str
    prompt: str | None  # None: the generator's unguided baseline samples
    labeller: str
    classes: list[str]
    n: int
    rows: list[ClassRow]
    entropy: float
    entropy_low: float
    entropy_high: float
    vs_uniform: TestResult
    baseline_n: int = 0
    vs_baseline: TestResult | None = None
    cramers_v_vs_baseline: float | None = None
    reference_name: str | None = None
    vs_reference: TestResult | None = None
    cramers_v_between_generators: float | None = None  # over all generators for this prompt
    corrected_available: bool = False
    kappa: Agreement | None = None
    agreement_labeller: str | None = None
    low_confidence_share: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def is_baseline(self) -> bool:
        return self.prompt is None

    @property
    def prompt_label(self) -> str:
        return "(unguided baseline)" if self.prompt is None else self.prompt

    @property
    def counts(self) -> np.ndarray:
        return np.array([row.count for row in self.rows])

    @property
    def top(self) -> ClassRow:
        return max(self.rows, key=lambda row: row.count)

    def to_dict(self) -> dict:
        return asdict(self)


def summary_frame(reports: Sequence[BiasReport]) -> pd.DataFrame:
    """One row per report: the headline numbers (what the table/CSV output and the app show)."""

    def test_fields(prefix: str, test: TestResult | None) -> dict:
        if test is None:
            return {f"{prefix}_p": None, f"{prefix}_method": None}
        return {f"{prefix}_p": test.p_value, f"{prefix}_method": test.method}

    records = []
    for report in reports:
        top = report.top
        record = {
            "generator": report.generator,
            "prompt": report.prompt_label,
            "labeller": report.labeller,
            "n": report.n,
            "top_class": top.name,
            "top_proportion": top.proportion,
            "top_low": top.wilson_low,
            "top_high": top.wilson_high,
            **test_fields("uniform", report.vs_uniform),
            "baseline_n": report.baseline_n,
            **test_fields("baseline", report.vs_baseline),
            "cramers_v_vs_baseline": report.cramers_v_vs_baseline,
            "reference": report.reference_name,
            **test_fields("reference", report.vs_reference),
            "cramers_v_between_generators": report.cramers_v_between_generators,
            "entropy": report.entropy,
            "entropy_low": report.entropy_low,
            "entropy_high": report.entropy_high,
            "top_corrected": top.corrected,
            "kappa": report.kappa.kappa if report.kappa else None,
            "kappa_n": report.kappa.n if report.kappa else None,
            "low_confidence_share": report.low_confidence_share,
            "warnings": " | ".join(report.warnings),
        }
        for row in report.rows:
            record[f"p_{row.name}"] = row.proportion
            record[f"corrected_{row.name}"] = row.corrected
        records.append(record)
    return pd.DataFrame.from_records(records)


def class_frame(reports: Sequence[BiasReport]) -> pd.DataFrame:
    """One row per (report, class) with every per-class number (the long CSV and the charts)."""
    records = []
    for report in reports:
        for row in report.rows:
            records.append(
                {
                    "generator": report.generator,
                    "prompt": report.prompt_label,
                    "n": report.n,
                    **asdict(row),
                }
            )
    return pd.DataFrame.from_records(records)


REQUIRED_COLUMNS = ("artwork_id", "generator", "prompt", "predicted")


def build_reports(
    labels: pd.DataFrame,
    classes: Sequence[str],
    *,
    labeller: str,
    confusion: np.ndarray | None = None,
    references: Mapping[str, tuple[str, Sequence[float]]] | None = None,
    agreement_labels: pd.DataFrame | None = None,
    agreement_labeller: str | None = None,
    seed: int = 0,
    n_resamples: int = 2000,
) -> list[BiasReport]:
    """One ``BiasReport`` per (generator, prompt), plus one per generator for its baseline.

    ``labels``: one row per artwork with columns artwork_id, generator, prompt (None/NaN for
    the unguided baseline samples), predicted (the class name), and optionally confidence
    (the top class probability). ``confusion``: the labeller's confusion matrix in ``classes``
    order (rows true, columns predicted), for the corrected proportions. ``references``:
    generator -> (name, composition) to test against. ``agreement_labels``: artwork_id and
    predicted from a second labeller (the CLIP zero-shot one) for Cohen's kappa.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in labels.columns]
    if missing:
        raise ConfigError(f"labelled artworks lack column(s) {missing}")
    classes = list(classes)
    k = len(classes)
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(labels["predicted"].dropna()) - set(index))
    if unknown:
        raise ConfigError(f"labels name classes {unknown} that are not among {classes}")
    references = dict(references or {})
    frame = labels.copy()
    frame["prompt"] = frame["prompt"].where(frame["prompt"].notna(), None)
    frame["code"] = frame["predicted"].map(index)

    def counts_of(rows: pd.DataFrame) -> np.ndarray:
        return np.bincount(rows["code"].to_numpy(dtype=int), minlength=k)

    baselines = {
        g: counts_of(rows) for g, rows in frame[frame["prompt"].isna()].groupby("generator")
    }
    prompt_rows = frame[frame["prompt"].notna()]
    between = {
        prompt: cramers_v(np.vstack([counts_of(g_rows) for _, g_rows in rows.groupby("generator")]))
        for prompt, rows in prompt_rows.groupby("prompt")
    }
    other = None
    if agreement_labels is not None and len(agreement_labels):
        other = agreement_labels.set_index("artwork_id")["predicted"]

    reports = []
    groups = sorted(
        frame.groupby(["generator", "prompt"], dropna=False),
        key=lambda item: (item[0][0], item[0][1] is not None, str(item[0][1])),
    )
    for (generator, prompt), rows in groups:
        prompt = (
            None if prompt is None or (isinstance(prompt, float) and math.isnan(prompt)) else prompt
        )
        counts = counts_of(rows)
        n = int(counts.sum())
        codes = rows["code"].to_numpy(dtype=int)
        shares = proportions(counts)
        low, high = wilson_intervals(counts)
        boot_low, boot_high = proportion_bootstrap_intervals(
            codes, k, seed=seed, n_resamples=n_resamples
        )
        entropy_low, entropy_high = entropy_interval(codes, k, seed=seed, n_resamples=n_resamples)
        report = BiasReport(
            generator=generator,
            prompt=prompt,
            labeller=labeller,
            classes=classes,
            n=n,
            rows=[
                ClassRow(
                    name,
                    int(counts[i]),
                    float(shares[i]),
                    float(low[i]),
                    float(high[i]),
                    float(boot_low[i]),
                    float(boot_high[i]),
                )
                for i, name in enumerate(classes)
            ],
            entropy=normalised_entropy(counts),
            entropy_low=entropy_low,
            entropy_high=entropy_high,
            vs_uniform=goodness_of_fit(counts, seed=seed),
        )
        if n < 10:
            report.warnings.append(
                f"only {n} artworks: intervals are wide and tests have little power"
            )
        _add_baseline(report, counts, None if prompt is None else baselines.get(generator))
        if generator in references:
            name, composition = references[generator]
            report.reference_name = name
            report.vs_reference = goodness_of_fit(counts, composition, seed=seed)
            for row, share in zip(report.rows, proportions(composition), strict=True):
                row.reference_proportion = float(share)
        if prompt is not None:
            report.cramers_v_between_generators = between.get(prompt)
        if confusion is not None and n > 0:
            _add_correction(
                report, counts, np.asarray(confusion, float), seed=seed, n_resamples=n_resamples
            )
        if other is not None:
            paired = rows[rows["artwork_id"].isin(other.index)]
            report.kappa = agreement(
                paired["predicted"].tolist(), other.loc[paired["artwork_id"]].tolist(), classes
            )
            report.agreement_labeller = agreement_labeller
        if "confidence" in rows.columns and rows["confidence"].notna().any():
            confidence = rows["confidence"].dropna().to_numpy(dtype=float)
            report.low_confidence_share = float(np.mean(confidence < LOW_CONFIDENCE))
        tests = {
            "vs uniform": report.vs_uniform,
            "vs baseline": report.vs_baseline,
            "vs reference": report.vs_reference,
        }
        for name, test in tests.items():
            if test is not None and test.warning:
                report.warnings.append(f"{name}: {test.warning}")
        reports.append(report)
    return reports


def _add_baseline(report: BiasReport, counts: np.ndarray, baseline: np.ndarray | None) -> None:
    if report.prompt is None:
        return
    if baseline is None or baseline.sum() == 0:
        report.warnings.append(
            "no unguided baseline samples for this generator: the prompt's effect is not tested"
        )
        return
    report.baseline_n = int(baseline.sum())
    report.vs_baseline = homogeneity_test(counts, baseline)
    report.cramers_v_vs_baseline = cramers_v(np.vstack([counts, baseline]))
    base_shares = proportions(baseline)
    for i, row in enumerate(report.rows):
        row.baseline_proportion = float(base_shares[i])
        row.lift, row.lift_low, row.lift_high = ratio_interval(
            counts[i], counts.sum(), baseline[i], baseline.sum()
        )


def _add_correction(
    report: BiasReport, counts: np.ndarray, confusion: np.ndarray, *, seed: int, n_resamples: int
) -> None:
    corrected = bbse_correct(proportions(counts), confusion)
    low, high = bbse_interval(counts, confusion, seed=seed, n_resamples=n_resamples)
    for i, row in enumerate(report.rows):
        row.corrected, row.corrected_low, row.corrected_high = (
            float(corrected[i]),
            float(low[i]),
            float(high[i]),
        )
    report.corrected_available = True
