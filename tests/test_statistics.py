"""Bias statistics against hand-computed values and against simulation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sample_gallery import CONFUSION as SAMPLE_CONFUSION
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import multinomial_proportions_confint, proportion_confint

from data.errors import ConfigError
from gallery import statistics as S
from gallery.bias import GalleryBias, format_table, to_json

Z95 = 1.959963984540054
CLASSES = ["buildings", "forest", "glacier", "mountain", "sea", "street"]
# Rows true class, columns predicted: glacier and mountain are confused, as in the real task
# (the sample gallery's labeller).
CONFUSION = np.array(SAMPLE_CONFUSION, dtype=float)


# -- hand-computed values ----------------------------------------------------------------
def test_wilson_interval_matches_the_formula():
    x, n = 3, 10
    p = x / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 / (1 + Z95**2 / n) * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2))
    low, high = S.wilson_intervals([x, n - x])
    assert low[0] == pytest.approx(centre - half, abs=1e-9)
    assert high[0] == pytest.approx(centre + half, abs=1e-9)
    # the other class's interval is the mirror image
    assert low[1] == pytest.approx(1 - high[0], abs=1e-9)


def test_wilson_interval_stays_inside_zero_one():
    low, high = S.wilson_intervals([0, 12])
    assert low[0] == 0 and 0 < high[0] < 0.3
    assert high[1] == pytest.approx(1.0) and 0.7 < low[1] < 1


def test_g_test_against_uniform_by_hand():
    counts = [30, 20, 10]  # expected 20 each
    g = 2 * (30 * math.log(30 / 20) + 10 * math.log(10 / 20))
    result = S.goodness_of_fit(counts)
    assert result.statistic == pytest.approx(g)
    assert result.dof == 2
    assert result.p_value == pytest.approx(math.exp(-g / 2))  # chi-square sf with 2 df
    assert result.warning is None and "approximation" in result.method


def test_g_test_against_a_reference_composition():
    counts = np.array([50, 30, 20])
    reference = [0.5, 0.3, 0.2]  # exactly the observed shares
    assert S.goodness_of_fit(counts, reference).statistic == pytest.approx(0.0, abs=1e-12)
    assert S.goodness_of_fit(counts, reference).p_value == pytest.approx(1.0)
    shifted = S.goodness_of_fit(counts, [0.2, 0.3, 0.5])
    assert shifted.p_value < 1e-6


def test_homogeneity_g_test_for_a_known_2x2_table():
    a, b = [10, 20], [30, 40]
    expected = [[12, 18], [28, 42]]  # margins 30/70 x 40/60, N = 100
    observed = [a, b]
    g = 2 * sum(
        o * math.log(o / e)
        for row_o, row_e in zip(observed, expected, strict=True)
        for o, e in zip(row_o, row_e, strict=True)
    )
    result = S.homogeneity_test(a, b)
    assert result.statistic == pytest.approx(g)
    assert result.dof == 1
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(g / 2)))  # chi-square sf, 1 df


def test_cramers_v_by_hand():
    table = np.array([[10, 20], [30, 40]])
    chi2 = sum((o - e) ** 2 / e for o, e in zip([10, 20, 30, 40], [12, 18, 28, 42], strict=True))
    assert S.cramers_v(table) == pytest.approx(math.sqrt(chi2 / 100))
    assert S.cramers_v([[10, 0], [0, 10]]) == pytest.approx(1.0)
    assert S.cramers_v([[5, 5], [5, 5]]) == pytest.approx(0.0)
    # classes nobody produced do not change V
    assert S.cramers_v([[10, 20, 0], [30, 40, 0]]) == pytest.approx(S.cramers_v(table))


def test_normalised_entropy_by_hand():
    assert S.normalised_entropy([5, 5, 5, 5]) == pytest.approx(1.0)
    assert S.normalised_entropy([9, 0, 0, 0]) == pytest.approx(0.0)
    assert S.normalised_entropy([3, 3, 0, 0]) == pytest.approx(math.log(2) / math.log(4))


def test_ratio_of_proportions_katz_interval_by_hand():
    ratio, low, high = S.ratio_interval(20, 100, 10, 100)
    se = math.sqrt(1 / 20 - 1 / 100 + 1 / 10 - 1 / 100)
    assert ratio == pytest.approx(2.0)
    assert low == pytest.approx(2 * math.exp(-Z95 * se))
    assert high == pytest.approx(2 * math.exp(Z95 * se))
    # a zero count stays finite (0.5 added)
    ratio, low, high = S.ratio_interval(0, 30, 10, 60)
    assert 0 < low < ratio < high < math.inf


def test_cohens_kappa_by_hand():
    # table [[20, 5], [10, 15]]: observed agreement 0.7, chance 0.5 -> kappa 0.4
    a = ["x"] * 25 + ["y"] * 25
    b = ["x"] * 20 + ["y"] * 5 + ["x"] * 10 + ["y"] * 15
    result = S.agreement(a, b, ["x", "y"])
    assert result.kappa == pytest.approx(0.4)
    assert result.observed_agreement == pytest.approx(0.7)
    assert result.low < 0.4 < result.high and result.n == 50
    assert S.agreement(a, a, ["x", "y"]).kappa == pytest.approx(1.0)


# -- small samples ----------------------------------------------------------------------------
def test_small_expected_counts_use_a_monte_carlo_p_value_and_say_so():
    result = S.goodness_of_fit([3, 1, 0, 0, 0, 0], seed=1)
    assert "Monte-Carlo" in result.method
    assert result.warning and "expected count" in result.warning
    assert 0 < result.p_value <= 1
    table = S.homogeneity_test([3, 1, 0], [1, 2, 1], seed=1)
    assert "Monte-Carlo" in table.method and table.warning


def test_monte_carlo_p_values_are_calibrated_under_the_null():
    rng = np.random.default_rng(7)
    p_values = [
        S.goodness_of_fit(rng.multinomial(12, [1 / 6] * 6), n_simulations=2000, seed=i).p_value
        for i in range(200)
    ]
    rejected = np.mean(np.array(p_values) <= 0.05)
    assert rejected <= 0.09  # nominal 5%; a broken simulation rejects far more or all


def test_an_impossible_class_rejects_the_reference():
    result = S.goodness_of_fit([5, 5, 1], [0.5, 0.5, 0.0])
    assert result.p_value == 0.0 and math.isinf(result.statistic) and result.warning


def test_bad_references_are_config_errors():
    with pytest.raises(ConfigError, match="classes"):
        S.goodness_of_fit([1, 2, 3], [0.5, 0.5])
    with pytest.raises(ConfigError, match="non-negative"):
        S.goodness_of_fit([1, 2, 3], [0.5, -0.5, 1.0])


# -- against simulation -----------------------------------------------------------------------
def test_wilson_intervals_cover_at_about_the_nominal_rate():
    truth = np.array([0.5, 0.3, 0.15, 0.05])
    rng = np.random.default_rng(0)
    covered = []
    for _ in range(400):
        low, high = S.wilson_intervals(rng.multinomial(60, truth))
        covered.append((low <= truth) & (truth <= high))
    coverage = np.mean(covered, axis=0)
    assert np.all(coverage > 0.9), coverage
    assert 0.92 <= coverage.mean() <= 0.98, coverage


def test_bootstrap_intervals_are_seeded_and_cover_the_estimate():
    rng = np.random.default_rng(3)
    codes = rng.choice(6, size=80, p=[0.4, 0.2, 0.1, 0.1, 0.1, 0.1])
    low, high = S.proportion_bootstrap_intervals(codes, 6, seed=5)
    again = S.proportion_bootstrap_intervals(codes, 6, seed=5)
    assert np.array_equal(low, again[0]) and np.array_equal(high, again[1])
    shares = np.bincount(codes, minlength=6) / len(codes)
    assert np.all((low <= shares) & (shares <= high))


# Truths for the coverage simulations: the uniform boundary where entropy is 1, a skewed mix
# (the one the issue names), a very skewed one and one with classes that never occur.
TRUTHS = {
    "uniform": np.full(6, 1 / 6),
    "skewed": np.array([0.35, 0.25, 0.15, 0.10, 0.10, 0.05]),
    "very skewed": np.array([0.85, 0.03, 0.03, 0.03, 0.03, 0.03]),
    "two classes": np.array([0.5, 0.5, 0.0, 0.0, 0.0, 0.0]),
}
REFERENCE = np.array([0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
SIMULATIONS = 300


def _simulated_counts(truth, n, seed):
    return np.random.default_rng(seed).multinomial(n, truth, size=SIMULATIONS)


@pytest.mark.parametrize("truth", list(TRUTHS))
@pytest.mark.parametrize("n", [14, 30, 60, 200])
def test_entropy_interval_covers_the_true_entropy(truth, n):
    counts = _simulated_counts(TRUTHS[truth], n, seed=n)
    low, high = S.entropy_interval(counts)
    entropy = S.normalised_entropy(TRUTHS[truth])
    coverage = np.mean((low <= entropy + 1e-9) & (entropy <= high + 1e-9))
    assert coverage >= 0.9, coverage  # nominal 95%; the percentile bootstrap gave 0% at uniform
    # it always holds the plug-in estimate, and stays inside [0, 1]
    estimates = np.array([S.normalised_entropy(c) for c in counts])
    assert np.all((low <= estimates + 1e-9) & (estimates <= high + 1e-9))
    assert np.all((0 <= low) & (high <= 1))


@pytest.mark.parametrize("truth", list(TRUTHS))
@pytest.mark.parametrize("n", [14, 60, 200])
def test_simultaneous_intervals_cover_every_class_at_once(truth, n):
    counts = _simulated_counts(TRUTHS[truth], n, seed=100 + n)
    low, high = S.simultaneous_intervals(counts)
    joint = np.mean(
        np.all((low <= TRUTHS[truth] + 1e-12) & (TRUTHS[truth] <= high + 1e-12), axis=-1)
    )
    assert joint >= 0.9, joint
    # they are statsmodels' Goodman intervals, and wider than the per-class Wilson ones
    expected = multinomial_proportions_confint(counts[0], 0.05, method="goodman")
    assert low[0] == pytest.approx(expected[:, 0]) and high[0] == pytest.approx(expected[:, 1])
    wilson_low, wilson_high = S.wilson_intervals(counts[0])
    assert np.all((low[0] <= wilson_low + 1e-12) & (wilson_high <= high[0] + 1e-12))


@pytest.mark.parametrize("truth", ["uniform", "skewed", "very skewed"])
@pytest.mark.parametrize("n", [14, 60, 200])
def test_total_variation_interval_covers_the_true_distance(truth, n):
    reference = REFERENCE if truth != "skewed" else TRUTHS["skewed"]  # includes distance 0
    distance = S.total_variation(TRUTHS[truth], reference)
    counts = _simulated_counts(TRUTHS[truth], n, seed=200 + n)
    low, high = S.total_variation_range(*S.simultaneous_intervals(counts), reference)
    coverage = np.mean((low <= distance + 1e-9) & (distance <= high + 1e-9))
    assert coverage >= 0.9, coverage
    estimates = S.total_variation(counts / n, reference)
    assert np.all((low <= estimates + 1e-9) & (estimates <= high + 1e-9))


def test_equivalence_test_keeps_its_level_at_the_margin_and_has_power_at_large_n():
    at_margin = REFERENCE + np.array([0.10, -0.05, -0.05, 0, 0, 0])
    assert S.total_variation(at_margin, REFERENCE) == pytest.approx(S.EQUIVALENCE_MARGIN)
    _, high = S.total_variation_range(
        *S.simultaneous_intervals(_simulated_counts(at_margin, 2000, seed=1)), REFERENCE
    )
    assert np.mean(high < S.EQUIVALENCE_MARGIN) <= 0.05  # a false "equivalent" at most 5%
    _, high = S.total_variation_range(
        *S.simultaneous_intervals(_simulated_counts(REFERENCE, 2000, seed=2)), REFERENCE
    )
    assert np.mean(high < S.EQUIVALENCE_MARGIN) > 0.9  # and the same composition is found so
    result = S.equivalence_to_reference([600, 400, 400, 200, 200, 200], REFERENCE)
    assert result.equivalent and result.high < result.margin == S.EQUIVALENCE_MARGIN
    assert result.distance == pytest.approx(0.0, abs=1e-12) and result.low == 0.0
    small = S.equivalence_to_reference([3, 2, 2, 1, 1, 1], REFERENCE)
    assert small.equivalent is False and small.high > small.margin  # 10 artworks prove nothing


def test_entropy_range_is_the_true_range_over_the_box():
    rng = np.random.default_rng(8)
    for _ in range(20):
        low, high = S.simultaneous_intervals(
            rng.multinomial(int(rng.integers(5, 80)), rng.dirichlet(np.ones(6)))
        )
        smallest, largest = S.entropy_range(low, high)
        constraint = {"type": "eq", "fun": lambda p: p.sum() - 1}
        bounds = list(zip(low, high, strict=True))

        def entropy(p):
            return S.normalised_entropy(np.clip(p, 1e-15, None))

        found = optimize.minimize(
            lambda p: -entropy(p),
            (low + high) / 2 / ((low + high) / 2).sum(),
            bounds=bounds,
            constraints=[constraint],
            method="SLSQP",
        )
        assert largest == pytest.approx(-found.fun, abs=1e-5)  # a concave maximum: found
        for start in rng.dirichlet(np.ones(6), size=5):  # local minima are never below it
            found = optimize.minimize(
                entropy, start, bounds=bounds, constraints=[constraint], method="SLSQP"
            )
            if found.success and abs(found.x.sum() - 1) < 1e-6:
                assert smallest <= found.fun + 1e-6
        vertices, feasible = S._region_vertices(low, high)
        assert smallest == pytest.approx(min(entropy(v) for v in vertices[feasible]))


def test_total_variation_range_matches_linear_programming():
    rng = np.random.default_rng(9)
    for _ in range(20):
        low, high = S.simultaneous_intervals(
            rng.multinomial(int(rng.integers(5, 80)), rng.dirichlet(np.ones(6)))
        )
        reference = rng.dirichlet(np.ones(6))
        smallest, largest = S.total_variation_range(low, high, reference)
        # min TV: minimise sum(t)/2 with t >= |p - r| over the box and the simplex
        k = 6
        objective = np.r_[np.zeros(k), np.full(k, 0.5)]
        upper = np.block([[np.eye(k), -np.eye(k)], [-np.eye(k), -np.eye(k)]])
        result = optimize.linprog(
            objective,
            A_ub=upper,
            b_ub=np.r_[reference, -reference],
            A_eq=np.r_[np.ones(k), np.zeros(k)][None, :],
            b_eq=[1],
            bounds=list(zip(low, high, strict=True)) + [(0, None)] * k,
        )
        assert smallest == pytest.approx(result.fun, abs=1e-9)
        # max TV: for each set S, maximise p(S) - r(S) (a linear programme); take the best
        best = 0.0
        for subset in range(1, 2**k):
            members = np.array([(subset >> i) & 1 for i in range(k)], dtype=float)
            result = optimize.linprog(
                -members, A_eq=np.ones((1, k)), b_eq=[1], bounds=list(zip(low, high, strict=True))
            )
            best = max(best, -result.fun - members @ reference)
        assert largest == pytest.approx(best, abs=1e-9)


# -- multiplicity, lift, names, agreement ---------------------------------------------------
def test_multiplicity_adjustment_is_statsmodels_multipletests():
    p_values = [0.001, 0.04, 0.03, float("nan"), 0.2, 0.0]
    finite = [p for p in p_values if not math.isnan(p)]
    for method in ("holm", "fdr_bh"):
        adjusted = S.adjust_p_values(p_values, method)
        assert math.isnan(adjusted[3])
        assert np.delete(adjusted, 3) == pytest.approx(multipletests(finite, method=method)[1])
    with pytest.raises(ConfigError, match="bonferoni"):
        S.adjust_p_values(p_values, "bonferoni")


def _demo_frame(seed=4):
    rng = np.random.default_rng(seed)
    return pd.concat(
        [
            _labels(rng, "g1", None, [0.0, 0.3, 0.3, 0.2, 0.2, 0.0], 120),
            _labels(rng, "g1", "a calm sea", [0.0, 0.02, 0.02, 0.06, 0.9, 0.0], 60),
            _labels(rng, "g2", None, [0.3, 0.3, 0.1, 0.1, 0.1, 0.1], 40),
            _labels(rng, "g2", "a calm sea", [0.3, 0.3, 0.1, 0.1, 0.1, 0.1], 8),
        ]
    )


def test_reports_adjust_every_p_value_as_one_family():
    frame = _demo_frame()
    for method, name in S.ADJUSTMENTS.items():
        reports = S.build_reports(
            frame,
            CLASSES,
            labeller="clf",
            references={"g1": ("training", [1] * 6)},
            n_resamples=200,
            adjustment=method,
        )
        tests = [getattr(r, f) for r in reports for f in S.TEST_FIELDS if getattr(r, f) is not None]
        tests = [t for t in tests if not math.isnan(t.p_value)]
        expected = multipletests([t.p_value for t in tests], method=method)[1]
        assert [t.p_adjusted for t in tests] == pytest.approx(expected)
        assert all(t.adjustment == f"{name} over {len(tests)} tests" for t in tests)
        assert all(t.p_adjusted >= t.p_value for t in tests)
    with pytest.raises(ConfigError, match="adjustment"):
        S.build_reports(frame, CLASSES, labeller="clf", adjustment="none")


def test_lift_is_undefined_for_a_class_absent_from_both_samples():
    assert all(math.isnan(v) for v in S.ratio_interval(0, 14, 0, 30))
    reports = S.build_reports(_demo_frame(), CLASSES, labeller="clf", n_resamples=200)
    sea = next(r for r in reports if r.generator == "g1" and r.prompt == "a calm sea")
    rows = {row.name: row for row in sea.rows}
    for name in ("buildings", "street"):  # in neither the prompt's artworks nor the baseline
        assert rows[name].count == 0 and rows[name].baseline_proportion == 0
        assert (
            rows[name].lift is None and rows[name].lift_low is None and rows[name].lift_high is None
        )
    assert rows["sea"].lift > 1 and rows["sea"].lift_low > 1


def test_every_test_is_named_as_computed():
    large = S.goodness_of_fit([30, 20, 10])
    assert large.method == "G-test (chi-square approximation)"
    assert large.statistic == pytest.approx(
        stats.power_divergence([30, 20, 10], lambda_="log-likelihood").statistic
    )
    a, b = [3, 1, 0], [1, 2, 1]
    small = S.homogeneity_test(a, b, seed=1)
    assert small.method.startswith("Pearson chi-square (Monte-Carlo")
    table = np.array([a, b], dtype=float)
    expected = stats.contingency.expected_freq(table)
    assert small.statistic == pytest.approx(((table - expected) ** 2 / expected).sum())
    big = S.homogeneity_test([10, 20], [30, 40])
    assert big.method == "G-test (chi-square approximation)"
    assert big.statistic == pytest.approx(
        stats.chi2_contingency(
            [[10, 20], [30, 40]], correction=False, lambda_="log-likelihood"
        ).statistic
    )
    assert S.goodness_of_fit([3, 1, 0, 0, 0, 0], seed=1).method.startswith("G-test (Monte-Carlo")
    # the table prints each test's own method, keyed by a letter after its p-value
    reports = S.build_reports(
        _demo_frame(),
        CLASSES,
        labeller="clf",
        references={"g1": ("training", [1] * 6)},
        n_resamples=200,
    )
    text = format_table(GalleryBias("demo", "clf", None, CLASSES, reports))
    methods = {getattr(r, f).method for r in reports for f in S.TEST_FIELDS if getattr(r, f)}
    methods.discard("none")
    assert any(m.startswith("Pearson") for m in methods) and any(
        m.startswith("G-test") for m in methods
    )
    for method in methods:
        assert f" = {method}" in text
    assert "adjusted by Holm" in text and "G-test vs uniform" not in text


def test_kappa_prevalence_paradox_at_13_of_14():
    classifier = ["sea"] * 14
    clip = ["sea"] * 13 + ["glacier"]
    result = S.agreement(classifier, clip, CLASSES)
    assert result.n == 14 and result.observed_agreement == pytest.approx(13 / 14)
    assert result.kappa == pytest.approx(0.0)  # chance agreement is 13/14 too
    assert math.isnan(result.low) and math.isnan(result.high)  # not a [0, 0] "certainty"
    k = len(CLASSES)
    assert result.n_classes == k
    assert result.pabak == pytest.approx((k * 13 / 14 - 1) / (k - 1))
    low, high = proportion_confint(13, 14, alpha=0.05, method="wilson")
    assert (result.agreement_low, result.agreement_high) == pytest.approx((low, high))
    assert result.pabak_low == pytest.approx((k * low - 1) / (k - 1))
    assert result.pabak_high == pytest.approx((k * high - 1) / (k - 1))
    assert result.pabak_low < result.pabak < result.pabak_high and result.pabak > 0.8


@pytest.mark.parametrize("n", [14, 30, 100])
def test_pabak_interval_covers_by_simulation(n):
    rng = np.random.default_rng(n)
    k, p_agree = len(CLASSES), 0.9
    pabak = (k * p_agree - 1) / (k - 1)
    covered = []
    for _ in range(200):
        agree = rng.random(n) < p_agree
        other = np.where(agree, 4, rng.integers(0, 4, n))  # disagreements spread over classes
        result = S.agreement(["sea"] * n, [CLASSES[i] for i in other], CLASSES)
        covered.append(result.pabak_low <= pabak <= result.pabak_high)
    assert np.mean(covered) >= 0.9


# -- BBSE --------------------------------------------------------------------------------------
def test_bbse_inverts_a_known_confusion_exactly():
    truth = np.array([0.05, 0.1, 0.45, 0.1, 0.2, 0.1])
    observed = S.prediction_matrix(CONFUSION) @ truth
    assert not np.allclose(observed, truth, atol=0.02)  # the classifier does distort it
    assert S.bbse_correct(observed, CONFUSION) == pytest.approx(truth, abs=1e-9)


def test_bbse_recovers_a_shifted_composition_from_sampled_labels():
    truth = np.array([0.05, 0.05, 0.55, 0.05, 0.25, 0.05])  # far from the test split's balance
    rng = np.random.default_rng(11)
    true_labels = rng.choice(6, size=4000, p=truth)
    error_rates = CONFUSION / CONFUSION.sum(axis=1, keepdims=True)
    predicted = np.array([rng.choice(6, p=error_rates[t]) for t in true_labels])
    counts = np.bincount(predicted, minlength=6)
    raw = counts / counts.sum()
    corrected = S.bbse_correct(raw, CONFUSION)
    assert np.abs(corrected - truth).max() < 0.025
    assert np.abs(corrected - truth).max() < np.abs(raw - truth).max() / 2
    low, high = S.bbse_interval(counts, CONFUSION, n_resamples=1000, seed=2)
    assert np.all((low <= truth + 1e-9) & (truth - 1e-9 <= high))


def test_bbse_output_is_a_distribution_even_when_the_solve_is_not():
    # a tiny sample whose raw solve has negative entries
    corrected = S.bbse_correct([0.0, 0.0, 0.9, 0.0, 0.1, 0.0], CONFUSION)
    assert np.all(corrected >= 0) and corrected.sum() == pytest.approx(1.0)


def test_singular_confusion_still_gives_a_distribution():
    confusion = np.eye(3) * 10
    confusion[2] = [5, 5, 0]  # class 2 is never predicted
    corrected = S.bbse_correct([0.5, 0.5, 0.0], confusion)
    assert np.all(corrected >= 0) and corrected.sum() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="no test examples"):
        S.bbse_correct([0.5, 0.5, 0.0], np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]]))


# -- simplex projection -----------------------------------------------------------------------
def test_simplex_projection_properties():
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = rng.normal(0, 1, 5) * rng.choice([0.1, 1, 10])
        w = S.project_to_simplex(v)
        assert np.all(w >= 0) and w.sum() == pytest.approx(1.0)
        assert S.project_to_simplex(w) == pytest.approx(w)  # idempotent
        # no point of the simplex is closer to v
        others = rng.dirichlet(np.ones(5), size=200)
        assert np.linalg.norm(v - w) <= np.linalg.norm(v - others, axis=1).min() + 1e-9
    inside = np.array([0.2, 0.3, 0.5])
    assert S.project_to_simplex(inside) == pytest.approx(inside)
    batch = rng.normal(size=(7, 4))
    assert S.project_to_simplex(batch) == pytest.approx(
        np.vstack([S.project_to_simplex(r) for r in batch])
    )


# -- reports ----------------------------------------------------------------------------------
def _labels(rng, generator, prompt, shares, n):
    predicted = rng.choice(CLASSES, size=n, p=shares)
    return pd.DataFrame(
        {
            "artwork_id": [f"{generator}:{prompt}:{i}" for i in range(n)],
            "generator": generator,
            "prompt": prompt,
            "predicted": predicted,
            "confidence": rng.uniform(0.3, 1.0, n),
        }
    )


def test_build_reports_measures_each_generator_and_prompt():
    rng = np.random.default_rng(4)
    frame = pd.concat(
        [
            _labels(rng, "g1", None, [1 / 6] * 6, 120),
            _labels(rng, "g1", "a calm sea", [0.02, 0.02, 0.02, 0.04, 0.85, 0.05], 60),
            _labels(rng, "g2", "a calm sea", [0.3, 0.3, 0.1, 0.1, 0.1, 0.1], 60),
        ]
    )
    clip = frame[["artwork_id"]].assign(predicted=frame["predicted"].to_numpy())
    reports = S.build_reports(
        frame,
        CLASSES,
        labeller="clf",
        confusion=CONFUSION,
        references={"g1": ("training", [1] * 6)},
        agreement_labels=clip,
        agreement_labeller="clip:x",
        n_resamples=500,
    )
    by_key = {(r.generator, r.prompt): r for r in reports}
    assert set(by_key) == {("g1", None), ("g1", "a calm sea"), ("g2", "a calm sea")}
    sea = by_key[("g1", "a calm sea")]
    assert sea.n == 60 and sea.top.name == "sea"
    counts = frame[(frame.generator == "g1") & (frame.prompt == "a calm sea")][
        "predicted"
    ].value_counts()
    assert sea.top.count == counts["sea"]
    assert sea.top.wilson_low < sea.top.proportion < sea.top.wilson_high
    assert sea.vs_uniform.p_value < 1e-6 and sea.vs_reference.p_value < 1e-6
    assert sea.baseline_n == 120 and sea.vs_baseline.p_value < 1e-3
    assert sea.top.lift > 2 and sea.top.lift_low > 1
    assert 0 < sea.cramers_v_vs_baseline <= 1
    assert sea.cramers_v_between_generators == pytest.approx(
        S.cramers_v([sea.counts, by_key[("g2", "a calm sea")].counts])
    )
    assert sea.kappa.kappa == pytest.approx(1.0)  # the "CLIP" labels are the same labels here
    assert sea.corrected_available and sum(r.corrected for r in sea.rows) == pytest.approx(1.0)
    assert sea.entropy < by_key[("g1", None)].entropy
    assert by_key[("g2", "a calm sea")].vs_reference is None  # no reference given for g2
    assert 0 <= sea.low_confidence_share <= 1
    distance = sea.vs_reference_distance
    assert distance.low <= distance.distance <= distance.high and distance.equivalent is False
    for row in sea.rows:
        assert row.simultaneous_low <= row.wilson_low and row.wilson_high <= row.simultaneous_high
    assert sea.entropy_low <= sea.entropy <= sea.entropy_high
    assert sea.kappa.pabak == pytest.approx(1.0) and sea.kappa.observed_agreement == 1.0
    summary = S.summary_frame(reports)
    assert len(summary) == 3 and {
        "uniform_p",
        "uniform_p_adjusted",
        "baseline_p",
        "kappa",
        "agreement",
        "pabak",
        "tv_reference",
        "tv_equivalent",
    } <= set(summary.columns)
    document = json.loads(to_json(GalleryBias("demo", "clf", "clip:x", CLASSES, reports)))
    assert document["multiplicity"]["method"] == "Holm"
    assert document["equivalence"]["margin"] == S.EQUIVALENCE_MARGIN
    got = next(r for r in document["reports"] if r["generator"] == "g1" and r["prompt"])
    assert got["vs_uniform"]["p_adjusted"] >= got["vs_uniform"]["p_value"]
    assert got["vs_uniform"]["adjustment"].startswith("Holm over")
    assert {"distance", "low", "high", "margin", "equivalent"} <= set(got["vs_reference_distance"])
    assert {"simultaneous_low", "simultaneous_high"} <= set(got["rows"][0])
    assert {"entropy_low", "entropy_high", "entropy_method"} <= set(got)
    assert {"kappa", "observed_agreement", "pabak", "pabak_low", "pabak_high"} <= set(got["kappa"])


def test_reports_warn_about_small_samples_and_missing_baselines():
    rng = np.random.default_rng(5)
    frame = _labels(rng, "g", "a prompt", [1 / 6] * 6, 6)
    (report,) = S.build_reports(frame, CLASSES, labeller="clf", n_resamples=200)
    text = " ".join(report.warnings)
    assert "only 6 artworks" in text and "no unguided baseline" in text and "expected count" in text


def test_labels_outside_the_classes_are_rejected():
    frame = pd.DataFrame(
        {"artwork_id": ["1"], "generator": ["g"], "prompt": ["p"], "predicted": ["volcano"]}
    )
    with pytest.raises(ConfigError, match="volcano"):
        S.build_reports(frame, CLASSES, labeller="clf")


def test_docs_carry_the_definitions_the_app_shows():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "statistics.md").read_text()
    for name, text in S.METRIC_DEFINITIONS.items():
        assert f"**{name}**: {text}" in docs, name
