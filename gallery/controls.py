"""A prompt against its controls, seed by seed: the paired test of a prompt's effect.

A control prompt ("a landscape", "a dull landscape") is searched with the *same seeds* as the
prompt it controls ("a beautiful landscape"), on the same generator, modifier and algorithm.
Each seed then gives a pair of labels (prompt's artwork, control's artwork), and the question
"does the word change the class mix?" is asked of the pairs:

- **paired permutation test**: under the null hypothesis the two labels of a pair are
  exchangeable, so swapping them at random leaves the distribution of the statistic (a
  Stuart–Maxwell-type marginal homogeneity statistic) unchanged. Exact (every swap pattern of
  the discordant pairs) when they are at most ``EXACT_MAX_DISCORDANT``, Monte-Carlo with
  ``n_permutations`` draws otherwise; no large-sample approximation is needed. Stuart–Maxwell's
  own chi-square test (statsmodels) is shown beside it where its covariance is invertible.
- **effect size**: total variation distance between the two mixes, and each class's
  difference in proportion (prompt minus control), with percentile intervals from resampling
  seeds (pairs). The distance is at least 0, so near 0 its interval is biased upward: read the
  per-class differences, whose intervals may contain 0.
- **replicates**: the comparison is made on each replicate's seeds and on all of them pooled;
  a finding *replicates* when the pooled test is significant after the report's multiplicity
  adjustment and every replicate on its own has p < 0.05 with its largest class difference
  pointing the same way as the pooled one.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from gallery.statistics import CONFIDENCE, TestResult, resampled_counts

EXACT_MAX_DISCORDANT = 14
PAIR_KEYS = ("generator", "modifier", "algorithm", "seed")


def _onehot_difference(prompt_codes: np.ndarray, control_codes: np.ndarray, k: int) -> np.ndarray:
    eye = np.eye(k)
    return eye[prompt_codes] - eye[control_codes]  # [n, k]


def marginal_distance(prompt_codes: np.ndarray, control_codes: np.ndarray, k: int) -> float:
    """Total variation distance between the prompt's and the control's class mixes."""
    n = len(prompt_codes)
    if n == 0:
        return math.nan
    return float(0.5 * np.abs(_onehot_difference(prompt_codes, control_codes, k).sum(0)).sum() / n)


@functools.lru_cache(maxsize=EXACT_MAX_DISCORDANT + 1)
def swap_patterns(m: int) -> np.ndarray:
    """Every way to swap or keep ``m`` pairs, [2^m, m] signs (+1 keep, -1 swap) as integers, in
    the order of ``itertools.product((1, -1), repeat=m)`` (pattern i keeps pair j when bit m-1-j
    of i is 0), built with array arithmetic instead of 2^m Python tuples. Read-only: it is shared."""
    bits = (np.arange(2**m)[:, None] >> np.arange(m - 1, -1, -1)) & 1
    patterns = (1 - 2 * bits).astype(np.int32)
    patterns.flags.writeable = False
    return patterns


def _swapped_totals(signs: np.ndarray, differences: np.ndarray) -> np.ndarray:
    """``signs @ differences`` for sign patterns and one-hot differences, in integers: every
    total is a whole number, so these are exactly the floating-point sums, without a BLAS call
    (whose threads make a small product slow on a busy machine)."""
    return (np.asarray(signs, dtype=np.int32) @ differences.astype(np.int32)).astype(float)


def paired_permutation_test(
    prompt_codes: Sequence[int], control_codes: Sequence[int], k: int, *,
    n_permutations: int = 9999, seed: int = 0,
) -> TestResult:
    """Are the prompt's and the control's class mixes the same, given that they pair by seed?

    The statistic is Stuart–Maxwell's with a diagonal covariance: the sum over classes of the
    squared count difference, each divided by the number of discordant pairs that involve the
    class (that divisor does not change when a pair is swapped). Its permutation distribution
    is discrete, so the p-value is the mid-p (ties count half): under the null P(p < 0.05)
    measured 0.039-0.047 over 1,000 simulated tables each at n = 14, 30, 50 and 200 pairs
    (tests/test_controls.py), where counting ties whole gave 0.029 for two classes.
    """
    a, b = np.asarray(prompt_codes, dtype=int), np.asarray(control_codes, dtype=int)
    n = len(a)
    if n == 0:
        return TestResult(math.nan, k - 1, math.nan, "paired permutation test", 0.0, "no pairs")
    differences = _onehot_difference(a, b, k)[a != b]  # concordant pairs never change the statistic
    m = len(differences)
    if m == 0:
        return TestResult(0.0, k - 1, 1.0, "paired permutation test (exact, mid-p)", 0.0,
                          "every pair has the same label: nothing to test")
    weights = (differences**2).sum(0)
    weights[weights == 0] = 1.0

    def statistic(totals: np.ndarray) -> np.ndarray:
        return (totals**2 / weights).sum(-1)

    observed = float(statistic(differences.sum(0)))
    if m <= EXACT_MAX_DISCORDANT:
        signs = swap_patterns(m)
        method = f"paired permutation test (exact over {len(signs)} swap patterns, mid-p)"
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(n_permutations, m))
        method = f"paired permutation test ({n_permutations} Monte-Carlo swaps, mid-p)"
    permuted = statistic(_swapped_totals(signs, differences))
    tolerance = 1e-9 * max(1.0, observed)
    greater = int((permuted > observed + tolerance).sum())
    ties = int((np.abs(permuted - observed) <= tolerance).sum())
    if m <= EXACT_MAX_DISCORDANT:  # the observed pattern is among the enumerated ones
        p_value = (greater + 0.5 * ties) / len(signs)
    else:  # the observed pattern counts as one more draw
        p_value = (greater + 0.5 * ties + 0.5) / (n_permutations + 1)
    warning = None if n >= 10 else f"only {n} pairs: the test has little power"
    return TestResult(observed, k - 1, float(min(1.0, p_value)), method, 0.0, warning)


def stuart_maxwell(prompt_codes: Sequence[int], control_codes: Sequence[int], k: int) -> TestResult | None:
    """statsmodels' Stuart–Maxwell marginal homogeneity test, where it is defined."""
    from statsmodels.stats.contingency_tables import SquareTable

    table = np.zeros((k, k))
    np.add.at(table, (np.asarray(prompt_codes, dtype=int), np.asarray(control_codes, dtype=int)), 1)
    used = (table.sum(0) + table.sum(1)) > 0
    table = table[used][:, used]
    if len(table) < 2 or np.trace(table) == table.sum():
        return None
    try:
        with warnings.catch_warnings():  # a singular covariance is answered by returning None
            warnings.simplefilter("ignore")
            result = SquareTable(table, shift_zeros=False).homogeneity()
    except (np.linalg.LinAlgError, ValueError):
        return None
    if not np.isfinite(result.pvalue):
        return None
    return TestResult(float(result.statistic), int(result.df), float(result.pvalue),
                      "Stuart-Maxwell marginal homogeneity (chi-square approximation)", 0.0)


@dataclass
class ControlComparison:
    """One prompt against one control on one generator, for one replicate or pooled."""

    generator: str
    prompt: str
    control: str
    replicate: str  # "pooled" or the replicate's index
    n_pairs: int
    distance: float
    distance_low: float
    distance_high: float
    differences: dict[str, float]  # class -> prompt share minus control share
    difference_intervals: dict[str, tuple[float, float]]
    test: TestResult
    stuart_maxwell: TestResult | None = None
    replicates: str | None = None  # pooled rows: "replicates", "does not replicate", "one replicate"
    replicated_in: str | None = None  # pooled rows: e.g. "3 of 3 replicates at p < 0.05"
    notes: list[str] = field(default_factory=list)
    unreliable: str | None = None  # set when the generator's labels are unreliable: said instead

    @property
    def leading_class(self) -> str | None:
        if not self.differences:
            return None
        return max(self.differences, key=lambda c: abs(self.differences[c]))

    def sentence(self) -> str:
        """The finding in plain words (or why there is none: labels that cannot carry one)."""
        if self.unreliable:
            return self.unreliable
        lead = self.leading_class
        if lead is None or self.n_pairs == 0:
            return f"{self.generator}: no seeds shared by {self.prompt!r} and {self.control!r}"
        change = self.differences[lead]
        low, high = self.difference_intervals[lead]
        p = self.test.p_adjusted if self.test.p_adjusted is not None else self.test.p_value
        word = "more" if change > 0 else "less"
        return (f"{self.generator}: {self.prompt!r} gives {lead} {abs(change):.2f} {word} often than "
                f"{self.control!r} ({change:+.2f} [{low:+.2f}, {high:+.2f}], n = {self.n_pairs} seed pairs, "
                f"adjusted p = {p:.3g})")

    def to_dict(self) -> dict:
        document = asdict(self)
        document["leading_class"] = self.leading_class
        document["sentence"] = self.sentence()
        return document


def _bootstrap(a: np.ndarray, b: np.ndarray, k: int, n_resamples: int, seed: int):
    """Percentile intervals of the distance and the per-class differences over resampled pairs."""
    n = len(a)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(n_resamples, n))
    # each resample's class counts, prompt minus control: whole numbers, so the same floats as
    # summing the resampled one-hot differences
    shares = (resampled_counts(a, picks, k) - resampled_counts(b, picks, k)) / n  # [R, k]
    distances = 0.5 * np.abs(shares).sum(1)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(shares, [tail, 1 - tail], axis=0)
    d_low, d_high = np.quantile(distances, [tail, 1 - tail])
    return float(d_low), float(d_high), low, high


def compare(
    pairs: pd.DataFrame, classes: Sequence[str], *, generator: str, prompt: str, control: str,
    replicate: str, n_permutations: int = 9999, n_resamples: int = 2000, seed: int = 0,
) -> ControlComparison:
    """``pairs``: one row per seed with columns ``prompt_label`` and ``control_label``."""
    index = {name: i for i, name in enumerate(classes)}
    k = len(classes)
    a = np.array([index[name] for name in pairs["prompt_label"].tolist()], dtype=int)
    b = np.array([index[name] for name in pairs["control_label"].tolist()], dtype=int)
    n = len(a)
    test = paired_permutation_test(a, b, k, n_permutations=n_permutations, seed=seed)
    if n == 0:
        return ControlComparison(generator, prompt, control, replicate, 0, math.nan, math.nan, math.nan,
                                 {}, {}, test)
    shares = _onehot_difference(a, b, k).sum(0) / n
    d_low, d_high, low, high = _bootstrap(a, b, k, n_resamples, seed)
    return ControlComparison(
        generator, prompt, control, replicate, n, marginal_distance(a, b, k), d_low, d_high,
        {c: float(shares[i]) for i, c in enumerate(classes)},
        {c: (float(low[i]), float(high[i])) for i, c in enumerate(classes)},
        test, stuart_maxwell(a, b, k),
    )


def pair_up(labelled: pd.DataFrame, prompt: str, control: str) -> pd.DataFrame:
    """Seeds searched with both texts (same generator, modifier, algorithm), with both labels."""
    keys = list(PAIR_KEYS)
    left = labelled[labelled["prompt"] == prompt][[*keys, "replicate", "predicted"]]
    right = labelled[labelled["prompt"] == control][[*keys, "predicted"]]
    merged = left.merge(right, on=keys, suffixes=("_p", "_c"))
    return merged.rename(columns={"predicted_p": "prompt_label", "predicted_c": "control_label"})


def control_comparisons(
    labelled: pd.DataFrame, classes: Sequence[str], controls: Mapping[str, Sequence[str]], *,
    n_permutations: int = 9999, n_resamples: int = 2000, seed: int = 0,
) -> list[ControlComparison]:
    """Per generator, prompt and control: each replicate's comparison, then the pooled one.

    ``labelled``: the search artworks the statistics count, with columns generator, prompt,
    modifier, algorithm, seed, replicate and predicted.
    """
    searched = labelled[labelled["kind"] == "search"]
    # One join per prompt and control over every generator, split by generator afterwards: the
    # generator is a pairing key, so each part is that generator's own join, rows in order.
    joined = {}
    for prompt, its_controls in controls.items():
        for control in its_controls:
            pairs = pair_up(searched, prompt, control)
            joined[prompt, control] = (dict(tuple(pairs.groupby("generator", sort=False))), pairs.iloc[0:0])
    found: list[ControlComparison] = []
    for generator in sorted(searched["generator"].unique()):
        for prompt, its_controls in controls.items():
            for control in its_controls:
                by_generator, empty = joined[prompt, control]
                pairs = by_generator.get(generator, empty)
                per_replicate = []
                replicate_ids = sorted(pairs["replicate"].unique())
                if len(replicate_ids) > 1:
                    for replicate in replicate_ids:
                        per_replicate.append(compare(
                            pairs[pairs["replicate"] == replicate], classes, generator=generator,
                            prompt=prompt, control=control, replicate=str(int(replicate)),
                            n_permutations=n_permutations, n_resamples=n_resamples, seed=seed))
                pooled = compare(pairs, classes, generator=generator, prompt=prompt, control=control,
                                 replicate="pooled", n_permutations=n_permutations,
                                 n_resamples=n_resamples, seed=seed)
                if pooled.n_pairs == 0:
                    pooled.notes.append(f"no seed was searched with both {prompt!r} and {control!r}")
                found += per_replicate + [pooled]
    return found


def judge_replication(comparisons: Sequence[ControlComparison], alpha: float = 0.05) -> None:
    """Set each pooled comparison's replication verdict (after the p-values were adjusted)."""
    groups: dict[tuple, list[ControlComparison]] = {}
    for c in comparisons:
        groups.setdefault((c.generator, c.prompt, c.control), []).append(c)
    for group in groups.values():
        pooled = next(c for c in group if c.replicate == "pooled")
        parts = [c for c in group if c.replicate != "pooled"]
        if not parts:
            pooled.replicates = "one replicate"
            continue
        lead = pooled.leading_class
        agreeing = [
            c for c in parts
            if c.test.p_value < alpha and lead is not None
            and np.sign(c.differences.get(lead, 0.0)) == np.sign(pooled.differences[lead]) != 0
        ]
        pooled.replicated_in = f"{len(agreeing)} of {len(parts)} replicates at p < {alpha}"
        significant = pooled.test.p_adjusted is not None and pooled.test.p_adjusted < alpha
        pooled.replicates = "replicates" if significant and len(agreeing) == len(parts) else "does not replicate"
