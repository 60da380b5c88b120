"""Bias statistics against hand-computed values and against simulation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data.errors import ConfigError
from gallery import statistics as S

Z95 = 1.959963984540054
CLASSES = ["buildings", "forest", "glacier", "mountain", "sea", "street"]
# Rows true class, columns predicted: glacier and mountain are confused, as in the real task.
CONFUSION = np.array(
    [
        [90, 2, 0, 1, 1, 6],
        [2, 94, 1, 2, 0, 1],
        [0, 0, 75, 22, 3, 0],
        [0, 2, 18, 78, 2, 0],
        [1, 0, 3, 2, 93, 1],
        [7, 1, 0, 0, 1, 91],
    ],
    dtype=float,
)


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
    first = S.entropy_interval(codes, 6, seed=5)
    assert first == S.entropy_interval(codes, 6, seed=5)
    estimate = S.normalised_entropy(np.bincount(codes, minlength=6))
    assert first[0] < estimate <= first[1] + 0.02  # the entropy bootstrap is biased low
    low, high = S.proportion_bootstrap_intervals(codes, 6, seed=5)
    shares = np.bincount(codes, minlength=6) / len(codes)
    assert np.all((low <= shares) & (shares <= high))


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
    summary = S.summary_frame(reports)
    assert len(summary) == 3 and {"uniform_p", "baseline_p", "kappa"} <= set(summary.columns)


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
