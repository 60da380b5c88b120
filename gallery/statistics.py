"""Bias statistics over class labels: pure functions of counts and label arrays (no store, no I/O).

A generator's *bias* for a prompt is the class composition of the artworks the search found for
it. Each function here answers one question about such a composition, with its uncertainty:

- how big is each class, and how sure are we (per-class Wilson intervals, Goodman intervals
  that hold for all classes at once, bootstrap intervals);
- is it different from uniform, from the generator's own unguided samples (the domain) and from
  a reference such as the training composition (G-tests; Pearson chi-square or G statistics
  with Monte-Carlo p-values when expected counts are too small for the chi-square
  approximation; every result names the test it computed), with the p-values of a whole
  report adjusted together (Holm by default);
- how far is it from the reference (total variation distance, its interval, and an
  equivalence test at a stated margin);
- how strongly do generators differ (Cramér's V), how concentrated is it (normalised entropy,
  with an interval that is its range over the simultaneous region);
- what would it be without the classifier's errors (BBSE, Lipton et al. 2018);
- does a second labeller agree with the report's one (Cohen's kappa, raw agreement,
  PABAK).

``build_reports`` turns a table of labelled artworks into one ``BiasReport`` per
(generator, prompt). The definitions shown to users live in ``METRIC_DEFINITIONS``;
docs/statistics.md says why each method was chosen and what coverage it was measured to have.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats.contingency import association
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import multinomial_proportions_confint, proportion_confint

from data.errors import ConfigError

MIN_EXPECTED = 5  # below this expected count the chi-square approximation is not trusted
LOW_CONFIDENCE = 0.5  # an artwork whose top class probability is below this is "low confidence"
BASELINE = None  # the prompt value of a generator's unguided samples
CONFIDENCE = 0.95  # of every interval in a report
EQUIVALENCE_MARGIN = 0.10  # total variation distance to a reference that counts as "equivalent"
# Multiple-testing corrections offered (statsmodels ``multipletests`` names -> what reports say).
ADJUSTMENTS = {"holm": "Holm", "fdr_bh": "Benjamini-Hochberg"}
SIMULTANEOUS_METHOD = "Goodman simultaneous intervals"
ENTROPY_METHOD = "range over the Goodman simultaneous region"
TV_METHOD = "range over the Goodman simultaneous region"
# Above this many classes the exact vertex search (2^K corners) gives way to a looser bound.
EXACT_MAX_CLASSES = 12


# -- the definitions users read (the app shows these; docs/statistics.md repeats them) ------
METRIC_DEFINITIONS: dict[str, str] = {
    "n": "Number of artworks behind a figure: one chosen artwork per search run (the "
    "runner-up and Pareto siblings of a run are not independent samples and are left out), "
    "or the unguided baseline samples.",
    "proportion": "Share of the artworks the classifier puts in a class.",
    "Wilson interval": "95% interval for a proportion (Wilson score method). Unlike the "
    "textbook p ± 1.96·SE it stays inside [0, 1] and keeps close to 95% coverage for small "
    "samples and proportions near 0 or 1.",
    "simultaneous interval": "95% intervals for all class proportions at once (Goodman's "
    "method): in 95% of samples every class's true proportion lies inside its interval "
    "together, where per-class Wilson intervals only promise that for each class on its own. "
    "They are wider than the Wilson intervals.",
    "test vs uniform": "Could the class counts have come from a generator that picks every "
    "class equally often? A G-test (log-likelihood ratio) against the uniform composition; a "
    "small p-value (e.g. below 0.05) says no: the artworks favour some classes.",
    "test vs baseline": "Does the prompt change the composition compared with the same "
    "generator's unguided samples (its domain)? A 2×K contingency test of prompt counts "
    "against baseline counts: a G-test when every expected count is at least 5, otherwise "
    "Pearson's chi-square with a Monte-Carlo p-value. A small p-value says the prompt pushes "
    "the composition somewhere the generator does not go by itself.",
    "test vs reference": "Does the composition differ from a reference composition, such as "
    "the class composition of the generator's training data? A G-test against it.",
    "test method": "Every p-value is shown with the name of the test that computed it "
    "(G-test or Pearson chi-square, chi-square approximation or Monte-Carlo).",
    "Monte-Carlo p-value": "When some expected count is below 5 the chi-square approximation "
    "is unreliable, so the p-value is instead the share of simulated samples (under the "
    "null hypothesis) at least as extreme as the observed one.",
    "adjusted p-value": "A report makes many tests, and some small p-values turn up by chance "
    "alone. Every p-value of a report is adjusted together (Holm's method by default, "
    "Benjamini-Hochberg on request): an adjusted p-value below 0.05 keeps the chance of any "
    "false finding in the whole report (Holm), or the expected share of false findings "
    "(Benjamini-Hochberg), below 5%. Raw and adjusted p-values are both shown.",
    "lift": "Proportion of a class under the prompt divided by its proportion in the "
    "unguided baseline. 2 means the prompt doubles that class; the interval is the Katz "
    "log interval for a ratio of proportions (0.5 is added to a zero count). A class absent "
    "from both the prompt's artworks and the baseline has no lift (not shown).",
    "Cramér's V": "Strength of association between two categorical variables, from 0 (the "
    "compositions are identical) to 1 (completely different classes). Between generators: "
    "how much the generator decides the class for the same prompt. Versus baseline: how "
    "much the prompt moves the composition.",
    "normalised entropy": "Shannon entropy of the class composition divided by its maximum "
    "log K: 1 means all classes equally often, 0 means a single class. Its 95% interval runs "
    "from the lowest to the highest entropy of any composition inside the simultaneous "
    "intervals, so it holds the true entropy whenever they hold the true composition.",
    "total variation distance": "How far the composition is from the reference: half the sum "
    "of the absolute differences of the class proportions, from 0 (identical) to 1 (no class "
    "in common); 0.1 means 10% of the artworks would have to change class to match. Its 95% "
    "interval runs from the smallest to the largest distance of any composition inside the "
    "simultaneous intervals.",
    "equivalence test": "Is the composition as close to the reference as the margin "
    "(total variation distance 0.10 unless stated)? 'Equivalent' when the upper end of the "
    "distance's 95% interval is below the margin (a test at the 5% level); otherwise "
    "equivalence is unproven, which with few artworks is the usual answer and is not "
    "evidence of a difference.",
    "corrected proportion": "Proportions corrected for the classifier's own errors (black-box "
    "shift estimation, Lipton et al. 2018): with M[j, i] the probability that the classifier "
    "says j when the truth is i (from its confusion matrix), solve M·q = observed "
    "proportions and project q onto the probability simplex. The interval is a bootstrap "
    "that resamples both the artworks and the confusion matrix. The matrix is the one "
    "measured on the generator's own artworks against known labels where at least 60 of them "
    "have one, else the one measured on world renders; each report names which.",
    "confusion on generated images": "The labeller's confusion matrix measured on one "
    "generator's artworks: rows are labels whose truth is known (a person's annotation, "
    "human:NAME, or for class-conditional generators the class the latent asked for, "
    "intended), columns the labeller's labels. Classes no known label names keep their row "
    "from the renders matrix.",
    "Cohen's kappa": "Agreement between the report's labeller and a second one beyond "
    "chance (the second is another labeller that did not steer the search where the gallery "
    "has one): 1 is perfect agreement, 0 what chance alone gives. When both "
    "labellers put nearly everything in one class, chance agreement is already high and "
    "kappa falls to 0 however often they agree, so read it with raw agreement and PABAK. Its "
    "interval is the asymptotic one, not shown when that has zero width.",
    "labels unreliable": "Two labellers independent of the search agree on a generator's "
    "artworks with kappa below 0.4 (PABAK where kappa is undefined): its labels cannot carry a "
    "finding, and the report says so instead of stating one.",
    "attribute distribution": "The share of each time of day (day, golden, night, overcast) "
    "or weather (clear, fog, rain, snow) among the artworks, by an attribute labeller, with "
    "the same intervals and tests as the scene classes.",
    "aesthetic value": "The world's documented beauty rule applied to each artwork's "
    "predicted class, time of day and weather: sigmoid(bias + class + time + weather + matching "
    "pairs), in (0, 1). Means are shown with 95% t intervals; a prompt minus its baseline with "
    "Welch's interval, minus its control paired by seed.",
    "raw agreement": "Share of the artworks both labellers put in the same class, with its "
    "Wilson interval.",
    "PABAK": "Prevalence-adjusted bias-adjusted kappa: (K·agreement - 1)/(K - 1) with K "
    "classes, i.e. kappa with chance agreement taken as 1/K whatever the class shares. It "
    "does not collapse when one class dominates; its interval is the raw agreement's Wilson "
    "interval mapped through the same formula.",
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


def resampled_counts(codes: np.ndarray, picks: np.ndarray, n_classes: int) -> np.ndarray:
    """Class counts [B, K] of the resamples ``codes[picks]`` (``picks`` [B, n] indices into
    ``codes``), by one ``bincount`` over all of them."""
    flat = np.asarray(codes, dtype=np.intp)[picks]
    flat += np.arange(len(picks), dtype=np.intp)[:, None] * n_classes  # row b counts in [bK, bK + K)
    return np.bincount(flat.ravel(), minlength=len(picks) * n_classes).reshape(len(picks), n_classes)


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

    All resamples are drawn at once and counted with one ``bincount``: the same draws and
    percentiles as ``scipy.stats.bootstrap(..., method="percentile", vectorized=True)`` with
    ``rng=np.random.default_rng(seed)`` (one batch of ``n_resamples`` index rows, the
    statistic's last axis the resample, ``scipy.stats.quantile``), so the same numbers,
    without building a [B, n, K] indicator array.
    """
    codes = np.asarray(codes, dtype=int)
    if codes.size < 2:
        value = np.asarray(statistic(_counts_along(codes[None, :], n_classes, 1)[0]), dtype=float)
        return np.full(value.shape, np.nan), np.full(value.shape, np.nan)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, codes.size, (n_resamples, codes.size))
    values = np.asarray(statistic(resampled_counts(codes, picks, n_classes)))
    tail = (1 - confidence) / 2
    levels = np.asarray([tail, 1 - tail], dtype=values.dtype)
    bounds = stats.quantile(values, levels, axis=-1)
    return np.asarray(bounds[..., 0]), np.asarray(bounds[..., 1])


def _proportions_of_counts(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    return np.moveaxis(counts / counts.sum(axis=-1, keepdims=True), -1, 0)


# -- simultaneous intervals and what they say about entropy and distance ---------------------
def simultaneous_intervals(
    counts: Sequence[int] | np.ndarray, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Goodman simultaneous intervals: all K class proportions inside together with ``confidence``.

    Batched over leading axes of ``counts`` [..., K]; a sample with no artworks gets NaN.
    statsmodels computes one composition at a time, so repeated compositions (common in
    simulations of small samples) are computed once.
    """
    counts = np.asarray(counts, dtype=float)
    flat = counts.reshape(-1, counts.shape[-1])
    unique, where = np.unique(flat, axis=0, return_inverse=True)
    bounds = np.full((len(unique), counts.shape[-1], 2), np.nan)
    for i, row in enumerate(unique):
        if row.sum() > 0:
            bounds[i] = multinomial_proportions_confint(row, 1 - confidence, method="goodman")
    bounds = bounds[np.ravel(where)].reshape(*counts.shape, 2)
    return bounds[..., 0], bounds[..., 1]


def _normalised_entropies(counts: np.ndarray) -> np.ndarray:
    """``normalised_entropy`` of each row of ``counts`` [R, K], in one ``scipy.stats.entropy``
    call (NaN where a row has no counts)."""
    counts = np.asarray(counts, dtype=float)
    found = np.full(len(counts), np.nan)
    filled = counts.sum(axis=-1) > 0
    if counts.shape[-1] >= 2 and filled.any():
        found[filled] = stats.entropy(counts[filled], axis=-1) / math.log(counts.shape[-1])
    return found


def _normalised_entropy_of_shares(shares: np.ndarray) -> np.ndarray:
    return stats.entropy(shares, axis=-1) / math.log(shares.shape[-1])


def _region_vertices(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corners of {low <= p <= high, sum(p) = 1}, batched: ([..., 2^K * K, K], feasible mask).

    A corner has every coordinate at one of its bounds except one, which takes what the others
    leave of the total; it is a corner of the region when that value is within its own bounds.
    """
    k = low.shape[-1]
    at_high = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1).astype(bool)  # [2^K, K]
    corners = np.where(at_high, high[..., None, :], low[..., None, :])  # [..., 2^K, K]
    rest = 1 - (corners.sum(axis=-1, keepdims=True) - corners)  # the free coordinate's value
    free = np.eye(k, dtype=bool)  # [free coordinate, coordinate]
    vertices = np.where(free, rest[..., :, :, None], corners[..., :, None, :])  # [..., 2^K, K, K]
    tolerance = 1e-12
    feasible = (rest >= low[..., None, :] - tolerance) & (rest <= high[..., None, :] + tolerance)
    shape = (*low.shape[:-1], -1)
    return np.clip(vertices, 0, 1).reshape(*shape, k), feasible.reshape(shape)


def entropy_range(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest normalised entropy of a composition inside the box [low, high].

    Largest: entropy is concave and symmetric, so the maximiser is the most even composition
    in the box, p_i = clip(c, low_i, high_i) with c set by sum(p) = 1 (found by bisection).
    Smallest: a concave function's minimum over a polytope lies at a corner, so every corner
    is tried (up to ``EXACT_MAX_CLASSES`` classes; beyond, the min-entropy bound
    -log(max high) / log K, which is lower and so still safe).
    """
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    k = low.shape[-1]
    below, above = np.zeros(low.shape[:-1]), np.ones(low.shape[:-1])
    for _ in range(60):
        level = (below + above) / 2
        short = np.clip(level[..., None], low, high).sum(axis=-1) < 1
        below, above = np.where(short, level, below), np.where(short, above, level)
    most_even = np.clip(((below + above) / 2)[..., None], low, high)
    largest = _normalised_entropy_of_shares(most_even)
    # When the uniform composition is inside the box the answer is exactly 1, not 1 - rounding.
    largest = np.where(np.all((low <= 1 / k) & (1 / k <= high), axis=-1), 1.0, largest)
    if k <= EXACT_MAX_CLASSES:
        vertices, feasible = _region_vertices(low, high)
        with np.errstate(invalid="ignore", divide="ignore"):  # infeasible corners may sum to 0
            entropies = _normalised_entropy_of_shares(vertices)
        smallest = np.where(feasible, entropies, np.inf).min(axis=-1)
    else:
        smallest = np.maximum(-np.log(high.max(axis=-1)) / math.log(k), 0.0)
    nan = np.isnan(low).any(axis=-1)
    return np.where(nan, np.nan, smallest), np.where(nan, np.nan, largest)


def entropy_interval(
    counts: Sequence[int] | np.ndarray, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Interval for the normalised entropy: its range over the Goodman simultaneous region.

    Whenever the region holds the true composition, the interval holds its entropy, so the
    coverage is at least the region's (measured in docs/statistics.md and the tests). Batched
    over leading axes of ``counts``; floats for one composition.
    """
    low, high = entropy_range(*simultaneous_intervals(counts, confidence))
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def total_variation(shares: np.ndarray, reference: Sequence[float]) -> np.ndarray:
    """Half the L1 distance between compositions (batched over leading axes of ``shares``)."""
    return 0.5 * np.abs(np.asarray(shares, float) - np.asarray(reference, float)).sum(axis=-1)


def total_variation_range(
    low: np.ndarray, high: np.ndarray, reference: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest total variation distance to ``reference`` inside the box [low, high].

    Smallest: clip the reference into the box; every unit by which the clipped point misses a
    total of 1 costs one more unit of L1 distance, so the distance is
    (|clipped - reference|_1 + |sum(clipped) - 1|) / 2. Largest: TV = max over sets of classes S
    of p(S) - r(S), and inside the box p(S) reaches min(sum of high over S, 1 - sum of low
    outside S); every S is tried (up to ``EXACT_MAX_CLASSES`` classes; beyond, the looser
    min(sum (high - r)+, sum (r - low)+)).
    """
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    reference = np.asarray(reference, dtype=float)
    clipped = np.clip(reference, low, high)
    smallest = 0.5 * (np.abs(clipped - reference).sum(axis=-1) + np.abs(clipped.sum(axis=-1) - 1))
    k = low.shape[-1]
    if k <= EXACT_MAX_CLASSES:
        members = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1).astype(float)  # [2^K, K]
        reach = np.minimum(high @ members.T, 1 - low @ (1 - members).T)
        largest = np.max(reach - members @ reference, axis=-1)
    else:
        largest = np.minimum(
            np.clip(high - reference, 0, None).sum(axis=-1),
            np.clip(reference - low, 0, None).sum(axis=-1),
        )
    # Rounding dust: a reference inside the box is at distance 0, not 1e-16.
    smallest = np.where(smallest < 1e-12, 0.0, smallest)
    return smallest, np.clip(largest, 0.0, 1.0)


@dataclass(frozen=True)
class Equivalence:
    """Total variation distance to a reference composition, its interval and equivalence test.

    The verdict rejects non-equivalence (TV >= margin) when the interval's upper bound lies
    below the margin: if the true TV reached the margin, that happens only when the
    simultaneous region misses the truth, so the test's level is at most 1 - confidence.
    """

    distance: float
    low: float
    high: float
    margin: float
    confidence: float
    equivalent: bool | None  # None: no artworks, no verdict
    method: str = TV_METHOD
    test: str = "equivalent when the upper confidence bound of TV is below the margin"

    def to_dict(self) -> dict:
        return asdict(self)


def equivalence_to_reference(
    counts: Sequence[int],
    reference: Sequence[float],
    *,
    margin: float = EQUIVALENCE_MARGIN,
    confidence: float = CONFIDENCE,
) -> Equivalence:
    """Is the composition within ``margin`` (total variation) of ``reference``?"""
    counts = np.asarray(counts, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if reference.shape != counts.shape:
        raise ConfigError(f"reference has {reference.size} classes, counts have {counts.size}")
    reference = reference / reference.sum()
    if counts.sum() <= 0:
        return Equivalence(float("nan"), float("nan"), float("nan"), margin, confidence, None)
    low, high = total_variation_range(*simultaneous_intervals(counts, confidence), reference)
    return Equivalence(
        float(total_variation(proportions(counts), reference)),
        float(low),
        float(high),
        margin,
        confidence,
        bool(high < margin),
    )


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
    method: str  # what was computed, e.g. "G-test (chi-square approximation)"; printed as is
    min_expected: float
    warning: str | None = None
    p_adjusted: float | None = None  # over the report's family of tests (``adjust_reports``)
    adjustment: str | None = None  # e.g. "Holm over 18 tests"

    def to_dict(self) -> dict:
        return asdict(self)


def _g_test(result, dof: int, min_expected: float) -> TestResult:
    """A scipy G-test result (every expected count large enough for its chi-square p-value)."""
    return TestResult(float(result.statistic), dof, float(result.pvalue), "G-test (chi-square approximation)",
                      min_expected)


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
            "G-test (infinite statistic: an impossible class was observed)",
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
        return _g_test(result, dof, min_expected)
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
            0.0,
            0,
            1.0,
            "no test (one shared class: p = 1)",
            float("nan"),
            "both samples hold a single, identical class",
        )
    expected = stats.contingency.expected_freq(table)
    min_expected = float(expected.min())
    dof = table.shape[1] - 1
    if min_expected >= MIN_EXPECTED:
        result = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")
        return _g_test(result, dof, min_expected)
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


# -- multiplicity -----------------------------------------------------------------------------
TEST_FIELDS = ("vs_uniform", "vs_baseline", "vs_reference")  # a report's p-values


def adjust_p_values(p_values: Sequence[float], method: str = "holm") -> np.ndarray:
    """p-values adjusted for multiple testing by statsmodels ``multipletests``; NaN stays NaN."""
    if method not in ADJUSTMENTS:
        raise ConfigError(
            f"unknown multiple-testing adjustment {method!r}; use {list(ADJUSTMENTS)}"
        )
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(p_values.shape, np.nan)
    finite = np.isfinite(p_values)
    if finite.any():
        with _collection_frozen():
            adjusted[finite] = multipletests(p_values[finite], method=method)[1]
    return adjusted


@contextlib.contextmanager
def _collection_frozen():
    """statsmodels' Holm runs a full ``gc.collect()`` on every call, which walks every object
    the process holds (tenths of a second in the app). Objects that exist already are moved out
    of the collector's view (``gc.freeze``) for the call and back afterwards: the collection
    then only looks at what the call itself made. The numbers are statsmodels' own."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def adjust_reports(reports: Sequence[BiasReport], method: str = "holm") -> int:
    """Adjust every p-value of a set of reports as one family; returns the family's size.

    Each test gets ``p_adjusted`` and ``adjustment`` (the method and family size); a test with
    no p-value (nothing to test) is left out of the family.
    """
    family = [
        (report, name)
        for report in reports
        for name in TEST_FIELDS
        if getattr(report, name) is not None and np.isfinite(getattr(report, name).p_value)
    ]
    adjusted = adjust_p_values([getattr(r, name).p_value for r, name in family], method)
    label = f"{ADJUSTMENTS[method]} over {len(family)} tests"
    for (report, name), p_value in zip(family, adjusted, strict=True):
        test = replace(getattr(report, name), p_adjusted=float(p_value), adjustment=label)
        setattr(report, name, test)
    return len(family)


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


CRAMERS_V_INTERVAL = (
    "noncentral chi-square inversion (Steiger & Fouladi 1997; Smithson 2003): the noncentrality "
    "parameters under which the observed Pearson statistic sits at the 97.5th and 2.5th "
    "percentiles, mapped to V = sqrt(lambda / (n (m - 1)))"
)


@dataclass(frozen=True)
class CramersV:
    """Cramér's V between the rows of a rows × classes count table, with the chi-square test
    of independence (are the rows' compositions the same?) and a confidence interval.

    ``test`` is Pearson's chi-square without continuity correction (the statistic V is made
    of), its p-value from the chi-square distribution when every expected count reaches
    ``MIN_EXPECTED``, else a Monte-Carlo p-value over tables with the observed margins (scipy).
    The interval (``interval_method``) is 0 at its lower end exactly when the test's p-value
    (chi-square approximation) is above 2.5%; it is conservative at these sample sizes
    (measured coverage 98-100% at 20-200 artworks per row, tests/test_workbench.py).
    """

    rows: list[str]
    sizes: list[int]  # artworks per row
    v: float
    low: float
    high: float
    test: TestResult
    n: int
    confidence: float = CONFIDENCE
    interval_method: str = CRAMERS_V_INTERVAL

    def to_dict(self) -> dict:
        return asdict(self)


def _noncentrality_bound(statistic: float, dof: int, target: float) -> float:
    """The noncentrality lambda with P(chi2(dof, lambda) <= statistic) = target (0 when even
    lambda = 0 leaves the statistic below that percentile). The CDF falls as lambda grows."""
    from scipy.optimize import brentq

    if stats.chi2.cdf(statistic, dof) <= target:
        return 0.0

    def gap(lam: float) -> float:
        return float(stats.ncx2.cdf(statistic, dof, lam)) - target

    upper = max(statistic, 1.0)
    while gap(upper) > 0:
        upper *= 2
    return float(brentq(gap, 1e-12, upper, xtol=1e-10))


def cramers_v_interval(
    statistic: float, dof: int, n: int, m: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Interval for the population Cramér's V from a Pearson statistic (``CRAMERS_V_INTERVAL``):
    ``n`` artworks, ``m`` = min(rows, classes) - 1."""
    if n <= 0 or m <= 0 or dof <= 0 or not math.isfinite(statistic):
        return float("nan"), float("nan")
    alpha = 1 - confidence
    low = _noncentrality_bound(statistic, dof, 1 - alpha / 2)
    high = _noncentrality_bound(statistic, dof, alpha / 2)
    return tuple(min(1.0, math.sqrt(lam / (n * m))) for lam in (low, high))


def cramers_v_test(
    table: np.ndarray | Sequence[Sequence[int]],
    rows: Sequence[str] | None = None,
    *,
    n_simulations: int = 20000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> CramersV:
    """Cramér's V of a rows × classes count table with its test and interval (``CramersV``).
    Empty rows and classes nobody has are dropped first, as in ``cramers_v``."""
    table = np.asarray(table, dtype=float)
    rows = [str(i) for i in range(len(table))] if rows is None else list(rows)
    sizes = [int(s) for s in table.sum(axis=1)]
    kept = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    n = int(kept.sum())
    nan = float("nan")
    if kept.shape[0] < 2:
        test = TestResult(nan, 0, nan, "none", 0.0, "fewer than two samples with artworks: no test")
        return CramersV(rows, sizes, nan, nan, nan, test, n, confidence)
    if kept.shape[1] < 2:
        test = TestResult(0.0, 0, 1.0, "no test (one shared class: p = 1)", nan,
                          "every sample holds the same single class")
        return CramersV(rows, sizes, 0.0, 0.0, 0.0, test, n, confidence)
    expected = stats.contingency.expected_freq(kept)
    min_expected = float(expected.min())
    dof = (kept.shape[0] - 1) * (kept.shape[1] - 1)
    if min_expected >= MIN_EXPECTED:
        result = stats.chi2_contingency(kept, correction=False)
        test = TestResult(float(result.statistic), dof, float(result.pvalue),
                          "Pearson chi-square (chi-square approximation)", min_expected)
    else:
        method = stats.MonteCarloMethod(n_resamples=n_simulations, rng=np.random.default_rng(seed))
        result = stats.chi2_contingency(kept.astype(int), correction=False, method=method)
        test = TestResult(
            float(result.statistic), dof, float(result.pvalue),
            f"Pearson chi-square (Monte-Carlo p-value, {n_simulations} tables)", min_expected,
            f"smallest expected count {min_expected:.1f} < {MIN_EXPECTED}: chi-square approximation "
            "not trusted, p-value simulated",
        )
    m = min(kept.shape) - 1
    v = math.sqrt(test.statistic / (n * m))
    low, high = cramers_v_interval(test.statistic, dof, n, m, confidence)
    return CramersV(rows, sizes, v, min(low, v), max(high, v) if math.isfinite(high) else high,
                    test, n, confidence)


@dataclass(frozen=True)
class BetweenGenerators:
    """For one prompt (or the unguided baselines): Cramér's V across all its generators and
    for every pair, each with a test and interval. ``pairs`` p-values are adjusted (Holm)
    together with ``overall`` over every prompt by ``between_generators``."""

    prompt: str | None
    overall: CramersV
    pairs: list[CramersV]

    @property
    def prompt_label(self) -> str:
        return "(unguided baseline)" if self.prompt is None else self.prompt

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "prompt_label": self.prompt_label,
                "overall": self.overall.to_dict(), "pairs": [p.to_dict() for p in self.pairs]}


def between_generators(
    reports: Sequence[BiasReport | Composition], *, seed: int = 0, adjustment: str = "holm"
) -> list[BetweenGenerators]:
    """Per prompt with at least two generators (baselines as one more "prompt"): how strongly
    the generator decides the class. Every p-value here (overall and pairs, all prompts) is
    adjusted as one family by ``adjustment``; the bias report's own family is left alone.
    ``reports``: the bias reports, or their ``compositions`` (only counts are used)."""
    by_prompt: dict[str | None, list[BiasReport | Composition]] = {}
    for report in reports:
        if report.n:
            by_prompt.setdefault(report.prompt, []).append(report)
    tests: list[CramersV] = []  # every distinct test once: the adjustment's family
    layout = []  # (prompt, index of its overall test, number of pairs)
    for prompt, group in by_prompt.items():
        if len(group) < 2:
            continue
        overall = cramers_v_test([r.counts for r in group], [r.generator for r in group], seed=seed)
        # with two generators the only pair is the overall table itself
        pairs = [cramers_v_test([a.counts, b.counts], [a.generator, b.generator], seed=seed)
                 for i, a in enumerate(group) for b in group[i + 1:]] if len(group) > 2 else []
        layout.append((prompt, len(tests), len(pairs)))
        tests += [overall, *pairs]
    values = [t.test.p_value for t in tests]
    adjusted = adjust_p_values(values, adjustment)
    label = f"{ADJUSTMENTS[adjustment]} over {int(np.isfinite(values).sum())} between-generator tests"
    tests = [
        replace(t, test=replace(t.test, p_adjusted=float(value), adjustment=label)) if math.isfinite(value) else t
        for t, value in zip(tests, adjusted, strict=True)
    ]
    return [BetweenGenerators(prompt, tests[first], tests[first + 1:first + 1 + count] or [tests[first]])
            for prompt, first, count in layout]


@functools.lru_cache(maxsize=8)
def _normal_quantile(level: float) -> float:
    """``scipy.stats.norm.ppf(level)``, computed once per level (a report asks for it per class)."""
    return stats.norm.ppf(level)


def ratio_interval(
    x1: float, n1: float, x2: float, n2: float, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Ratio of proportions (x1/n1)/(x2/n2) with the Katz log interval.

    A zero count gets 0.5 added (to both counts and totals) so that the ratio and its
    interval stay finite; the result is then a smoothed estimate. When both counts are zero
    the data say nothing about the ratio (the smoothed value would only reflect n2 / n1), so
    it is undefined: NaN.
    """
    if n1 <= 0 or n2 <= 0 or (x1 == 0 and x2 == 0):
        return float("nan"), float("nan"), float("nan")
    if x1 == 0 or x2 == 0:
        x1, x2, n1, n2 = x1 + 0.5, x2 + 0.5, n1 + 0.5, n2 + 0.5
    ratio = (x1 / n1) / (x2 / n2)
    se = math.sqrt(max(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2, 0.0))
    z = _normal_quantile(0.5 + confidence / 2)
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
    """Agreement between two labellings of the same artworks.

    Cohen's kappa corrects raw agreement for the agreement the two labellers' own class
    shares would give by chance; when both put nearly everything in one class that chance
    agreement is close to 1 and kappa collapses towards 0 however often they agree (the
    prevalence paradox). So raw agreement and PABAK (prevalence-adjusted bias-adjusted kappa,
    chance taken as 1/K for K classes) are reported beside it, each with an interval.
    """

    kappa: float
    low: float  # NaN when the asymptotic standard error is 0 (the interval would be a point)
    high: float
    n: int  # artworks labelled by both
    observed_agreement: float
    agreement_low: float = float("nan")
    agreement_high: float = float("nan")
    pabak: float = float("nan")
    pabak_low: float = float("nan")
    pabak_high: float = float("nan")
    n_classes: int = 0
    kappa_method: str = "Cohen's kappa, asymptotic 95% interval"
    agreement_method: str = "Wilson interval"
    pabak_method: str = "PABAK = (K * agreement - 1) / (K - 1), Wilson interval of the agreement"


def agreement(
    labels_a: Sequence[str], labels_b: Sequence[str], classes: Sequence[str]
) -> Agreement:
    """Cohen's kappa, raw agreement and PABAK (95% intervals) between two labellings of the
    same items; K for PABAK is the number of ``classes``."""
    if len(labels_a) != len(labels_b):
        raise ConfigError(f"agreement needs paired labels, got {len(labels_a)} and {len(labels_b)}")
    index = {name: i for i, name in enumerate(classes)}
    k = len(classes)
    table = np.zeros((k, k))
    for a, b in zip(labels_a, labels_b, strict=True):
        if a in index and b in index:
            table[index[a], index[b]] += 1
    n = int(table.sum())
    nan = float("nan")
    if n == 0:
        return Agreement(nan, nan, nan, 0, nan, n_classes=k)
    agreed = float(np.trace(table))
    observed = agreed / n
    agreement_low, agreement_high = (
        float(bound) for bound in proportion_confint(agreed, n, alpha=0.05, method="wilson")
    )
    # PABAK is linear in the agreement, so the agreement's interval maps straight onto it.
    agreement_low, agreement_high = (
        0.0 if agreed == 0 else agreement_low,
        1.0 if agreed == n else agreement_high,
    )
    pabak_low, pabak, pabak_high = (
        (k * value - 1) / (k - 1) for value in (agreement_low, observed, agreement_high)
    )
    shared = dict(
        agreement_low=agreement_low,
        agreement_high=agreement_high,
        pabak=pabak,
        pabak_low=pabak_low,
        pabak_high=pabak_high,
        n_classes=k,
    )
    chance = float((table.sum(axis=0) / n) @ (table.sum(axis=1) / n))
    if chance >= 1 - 1e-12:  # both labellers used one and the same class: kappa is undefined
        return Agreement(nan, nan, nan, n, observed, **shared)
    with np.errstate(invalid="ignore", divide="ignore"):  # a zero variance gives no z-value
        result = cohens_kappa(table)  # its interval is always the 95% one
    if not np.isfinite(result.std_kappa) or result.std_kappa <= 0:
        # Perfect agreement, or one labeller using a single class (kappa 0 at 13/14 agreement):
        # the asymptotic standard error is 0 and its "interval" a single point, which would
        # claim a certainty the sample does not have. No interval; PABAK's remains.
        return Agreement(float(result.kappa), nan, nan, n, observed, **shared)
    return Agreement(
        float(result.kappa),
        max(float(result.kappa_low), -1.0),  # the asymptotic interval can overshoot [-1, 1]
        min(float(result.kappa_upp), 1.0),
        n,
        observed,
        **shared,
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
    simultaneous_low: float = float("nan")  # Goodman: all classes' intervals hold together
    simultaneous_high: float = float("nan")
    baseline_proportion: float | None = None
    lift: float | None = None  # None when the class is absent from both prompt and baseline
    lift_low: float | None = None
    lift_high: float | None = None
    reference_proportion: float | None = None
    corrected: float | None = None
    corrected_low: float | None = None
    corrected_high: float | None = None


class _OfAPrompt:
    """What a report of one generator and one prompt (None: its unguided baseline) says of it."""

    prompt: str | None

    @property
    def is_baseline(self) -> bool:
        return self.prompt is None

    @property
    def prompt_label(self) -> str:
        return "(unguided baseline)" if self.prompt is None else self.prompt


@dataclass
class BiasReport(_OfAPrompt):
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
    entropy_method: str = ENTROPY_METHOD
    simultaneous_method: str = SIMULTANEOUS_METHOD
    confidence: float = CONFIDENCE
    baseline_n: int = 0
    vs_baseline: TestResult | None = None
    cramers_v_vs_baseline: float | None = None
    reference_name: str | None = None
    vs_reference: TestResult | None = None
    vs_reference_distance: Equivalence | None = None  # TV with interval, equivalence verdict
    cramers_v_between_generators: float | None = None  # over all generators for this prompt
    corrected_available: bool = False
    confusion_source: str | None = None  # the matrix BBSE used: generated images or world renders
    kappa: Agreement | None = None
    agreement_labeller: str | None = None
    low_confidence_share: float | None = None
    warnings: list[str] = field(default_factory=list)


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
            return {f"{prefix}_p": None, f"{prefix}_p_adjusted": None, f"{prefix}_method": None}
        return {
            f"{prefix}_p": test.p_value,
            f"{prefix}_p_adjusted": test.p_adjusted,
            f"{prefix}_method": test.method,
        }

    def fields(result, columns: dict[str, str]) -> dict:
        """``columns`` maps a summary column to the attribute of ``result`` it shows."""
        return {
            column: None if result is None else getattr(result, name)
            for column, name in columns.items()
        }

    distance_columns = {
        "tv_reference": "distance",
        "tv_reference_low": "low",
        "tv_reference_high": "high",
        "tv_margin": "margin",
        "tv_equivalent": "equivalent",
    }
    agreement_columns = {
        "kappa": "kappa",
        "kappa_low": "low",
        "kappa_high": "high",
        "kappa_n": "n",
        "agreement": "observed_agreement",
        "pabak": "pabak",
        "pabak_low": "pabak_low",
        "pabak_high": "pabak_high",
    }

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
            **fields(report.vs_reference_distance, distance_columns),
            "adjustment": report.vs_uniform.adjustment,
            "cramers_v_between_generators": report.cramers_v_between_generators,
            "entropy": report.entropy,
            "entropy_low": report.entropy_low,
            "entropy_high": report.entropy_high,
            "top_corrected": top.corrected,
            "confusion_source": report.confusion_source,
            **fields(report.kappa, agreement_columns),
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


def build_reports(labels: pd.DataFrame, classes: Sequence[str], **options) -> list[BiasReport]:
    """One ``BiasReport`` per (generator, prompt), plus one per generator for its baseline,
    every number drawn (``prepare_reports``'s reports with their ``add_intervals``); the
    arguments are ``prepare_reports``'."""
    reports, resampling = prepare_reports(labels, classes, **options)
    for report, inputs in zip(reports, resampling, strict=True):
        add_intervals(report, inputs)
    return reports


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Resampling:
    """What a report's resampled intervals are drawn from: its artworks' class codes in order,
    the confusion matrix its corrected proportions use (None: no correction), and the seed and
    number of resamples. Each interval draws from its own ``default_rng(seed)``, so drawing
    them later, or for some reports only, gives the same numbers."""

    codes: np.ndarray
    confusion: np.ndarray | None
    seed: int
    n_resamples: int


def add_intervals(report: BiasReport, inputs: Resampling) -> None:
    """Fill in ``report``'s resampled intervals (in place): every class's percentile-bootstrap
    interval and, where corrected for classifier error, the corrected proportions' bootstrap
    interval (``bbse_interval``)."""
    low, high = proportion_bootstrap_intervals(inputs.codes, len(report.classes), seed=inputs.seed,
                                               n_resamples=inputs.n_resamples)
    for i, row in enumerate(report.rows):
        row.bootstrap_low, row.bootstrap_high = float(low[i]), float(high[i])
    if inputs.confusion is not None and report.corrected_available:
        low, high = bbse_interval(report.counts, inputs.confusion, seed=inputs.seed,
                                  n_resamples=inputs.n_resamples)
        for i, row in enumerate(report.rows):
            row.corrected_low, row.corrected_high = float(low[i]), float(high[i])


def prepare_reports(
    labels: pd.DataFrame,
    classes: Sequence[str],
    *,
    labeller: str,
    confusion: np.ndarray | None = None,
    confusion_source: str | None = None,
    generator_confusions: Mapping[str, tuple[np.ndarray, str]] | None = None,
    references: Mapping[str, tuple[str, Sequence[float]]] | None = None,
    agreement_labels: pd.DataFrame | None = None,
    agreement_labeller: str | None = None,
    seed: int = 0,
    n_resamples: int = 2000,
    adjustment: str = "holm",
    equivalence_margin: float = EQUIVALENCE_MARGIN,
) -> tuple[list[BiasReport], list[Resampling]]:
    """One ``BiasReport`` per (generator, prompt), plus one per generator for its baseline, with
    every number but the resampled intervals (bootstrap and corrected-proportion intervals are
    NaN / None), and for each report what ``add_intervals`` draws those from. Tests, p-values
    and their adjustment, Wilson and Goodman intervals, entropy, distances, corrected
    proportions and agreement are all here: they do not depend on the resampled intervals.

    ``labels``: one row per artwork with columns artwork_id, generator, prompt (None/NaN for
    the unguided baseline samples), predicted (the class name), and optionally confidence
    (the top class probability). ``confusion``: the labeller's confusion matrix in ``classes``
    order (rows true, columns predicted), for the corrected proportions, measured where
    ``confusion_source`` says; ``generator_confusions``: generator -> (matrix, source) measured
    on that generator's own artworks, used for its reports instead. ``references``:
    generator -> (name, composition) to test against. ``agreement_labels``: artwork_id and
    predicted from a second labeller (an independent one where possible) for Cohen's kappa.
    ``adjustment``: the multiple-testing correction over every p-value of all the reports
    together (a key of ``ADJUSTMENTS``). ``equivalence_margin``: the total variation distance
    under which a composition counts as equivalent to its reference.
    """
    if adjustment not in ADJUSTMENTS:
        raise ConfigError(
            f"unknown multiple-testing adjustment {adjustment!r}; use {list(ADJUSTMENTS)}"
        )
    classes = list(classes)
    k = len(classes)
    references = dict(references or {})
    frame = _coded(labels, classes)

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
    # The second labeller's label per artwork, as a dict: a set-like lookup per report, where a
    # pandas ``isin`` on Arrow strings rebuilds its hash table for every report.
    other = None
    if agreement_labels is not None and len(agreement_labels):
        other = dict(zip(agreement_labels["artwork_id"].tolist(), agreement_labels["predicted"].tolist(),
                         strict=True))

    reports, resampling, regions = [], [], []
    for (generator, prompt), rows in _report_groups(frame):
        counts = counts_of(rows)
        n = int(counts.sum())
        codes = rows["code"].to_numpy(dtype=int)
        shares = proportions(counts)
        low, high = wilson_intervals(counts)
        joint_low, joint_high = simultaneous_intervals(counts)
        regions.append((joint_low, joint_high, counts))
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
                    math.nan,  # bootstrap interval: ``add_intervals``
                    math.nan,
                    float(joint_low[i]),
                    float(joint_high[i]),
                )
                for i, name in enumerate(classes)
            ],
            entropy=math.nan,  # below: every report's at once
            entropy_low=math.nan,  # below: every report's range at once
            entropy_high=math.nan,
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
            report.vs_reference_distance = equivalence_to_reference(
                counts, composition, margin=equivalence_margin
            )
            for row, share in zip(report.rows, proportions(composition), strict=True):
                row.reference_proportion = float(share)
        if prompt is not None:
            report.cramers_v_between_generators = between.get(prompt)
        matrix, source = (generator_confusions or {}).get(generator, (confusion, confusion_source))
        matrix = None if matrix is None else np.asarray(matrix, float)
        if matrix is not None and n > 0:
            _add_correction(report, counts, matrix)
            report.confusion_source = source
        if other is not None:
            paired = [(mine, other[artwork]) for artwork, mine
                      in zip(rows["artwork_id"].tolist(), rows["predicted"].tolist(), strict=True)
                      if artwork in other]
            report.kappa = agreement([a for a, _ in paired], [b for _, b in paired], classes)
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
        resampling.append(Resampling(codes, matrix, seed, n_resamples))
    if reports:  # scipy's entropy and entropy_range work row by row: batched, each report gets its own numbers
        lows, highs, all_counts = (np.array(found) for found in zip(*regions, strict=True))
        entropies = _normalised_entropies(all_counts)
        lows, highs = entropy_range(lows, highs)
        for report, entropy, low, high in zip(reports, entropies, lows, highs, strict=True):
            report.entropy = float(entropy)
            report.entropy_low, report.entropy_high = float(low), float(high)
    adjust_reports(reports, adjustment)
    return reports, resampling


def _coded(labels: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """A copy of ``labels`` (checked) with baseline prompts as None and ``code``: each
    artwork's class index in ``classes``."""
    missing = [c for c in REQUIRED_COLUMNS if c not in labels.columns]
    if missing:
        raise ConfigError(f"labelled artworks lack column(s) {missing}")
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(labels["predicted"].dropna()) - set(index))
    if unknown:
        raise ConfigError(f"labels name classes {unknown} that are not among {classes}")
    frame = labels.copy()
    frame["prompt"] = frame["prompt"].where(frame["prompt"].notna(), None)
    frame["code"] = frame["predicted"].map(index)
    return frame


def _report_groups(frame: pd.DataFrame) -> list[tuple[tuple[str, str | None], pd.DataFrame]]:
    """((generator, prompt), rows) per report in report order: by generator, its baseline
    (prompt None) first, then its prompts; rows in ``frame``'s order."""
    groups = sorted(
        frame.groupby(["generator", "prompt"], dropna=False),
        key=lambda item: (item[0][0], item[0][1] is not None, str(item[0][1])),
    )
    return [((generator, None if prompt is None or (isinstance(prompt, float) and math.isnan(prompt))
              else prompt), rows) for (generator, prompt), rows in groups]


@dataclass(frozen=True, eq=False)  # holds an array: compared by identity
class Composition(_OfAPrompt):
    """One generator's class counts for one prompt (None: its unguided baseline samples), as
    in its ``BiasReport``: what comparing two of them, or ``between_generators``, needs."""

    generator: str
    prompt: str | None
    classes: list[str]
    counts: np.ndarray

    @property
    def n(self) -> int:
        return int(self.counts.sum())



def compositions(labels: pd.DataFrame, classes: Sequence[str]) -> list[Composition]:
    """Each (generator, prompt)'s class counts, in the order and with the counts of
    ``prepare_reports``' reports (``labels`` as there), and no statistic computed."""
    classes = list(classes)
    return [Composition(generator, prompt, classes,
                        np.bincount(rows["code"].to_numpy(dtype=int), minlength=len(classes)))
            for (generator, prompt), rows in _report_groups(_coded(labels, classes))]


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
        if counts[i] == 0 and baseline[i] == 0:
            continue  # absent from both: no lift to speak of (None, not a smoothed guess)
        row.lift, row.lift_low, row.lift_high = ratio_interval(
            counts[i], counts.sum(), baseline[i], baseline.sum()
        )


def _add_correction(report: BiasReport, counts: np.ndarray, confusion: np.ndarray) -> None:
    """The corrected proportions (their interval: ``add_intervals``)."""
    corrected = bbse_correct(proportions(counts), confusion)
    for i, row in enumerate(report.rows):
        row.corrected = float(corrected[i])
    report.corrected_available = True
