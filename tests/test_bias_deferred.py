"""A report computed in parts has the numbers of the whole one: ``gallery_bias(defer=True)``
leaves the resampled intervals and the between-generator tests for later (the app draws only
what a view shows), ``gallery_compositions`` gives the counts alone (the compare page), and
whatever is drawn later, in any order, after the app's cache has pickled it, is what
``gallery_bias`` computes in one go."""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import asdict

import pytest
from sample_gallery import SampleSpec, build_sample_gallery

from gallery import statistics as S
from gallery.bias import (
    complete,
    fill_between,
    fill_intervals,
    gallery_bias,
    gallery_compositions,
    to_json,
)

RESAMPLES = 300  # fewer than the default: the same code paths, quicker


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    return build_sample_gallery(tmp_path_factory.mktemp("sample"), SampleSpec(runs_per_prompt=10, baseline_samples=30))


def _same(*found) -> bool:
    """Equal, NaN included (dataclasses, compared as their JSON)."""
    texts = {json.dumps([None if x is None else asdict(x) for x in (f if isinstance(f, list) else [f])],
                        sort_keys=True, default=str) for f in found}
    return len(texts) == 1


@pytest.mark.parametrize("labeller", [None, "clip:clip-world"])
def test_a_deferred_report_completes_to_the_numbers_of_the_whole(gallery, labeller):
    whole = gallery_bias(gallery, labeller=labeller, n_resamples=RESAMPLES)
    deferred = pickle.loads(pickle.dumps(gallery_bias(gallery, labeller=labeller, n_resamples=RESAMPLES, defer=True)))
    assert deferred.pending and deferred.between_pending and not deferred.between
    assert all(math.isnan(row.bootstrap_low) for r in deferred.reports for row in r.rows)
    # everything else is there already: tests, adjusted p-values, Wilson and Goodman intervals, sentences
    for mine, theirs in zip(deferred.reports, whole.reports, strict=True):
        assert _same(mine.vs_uniform, theirs.vs_uniform) and _same(mine.vs_baseline, theirs.vs_baseline)
        assert _same(mine.kappa, theirs.kappa) and mine.warnings == theirs.warnings
        assert (mine.entropy_low, mine.entropy_high) == (theirs.entropy_low, theirs.entropy_high)
        assert [(r.wilson_low, r.simultaneous_high, r.corrected) for r in mine.rows] == [
            (r.wilson_low, r.simultaneous_high, r.corrected) for r in theirs.rows]
    assert deferred.notes == whole.notes and _same(deferred.controls, whole.controls)

    prompt = next(r.prompt for r in deferred.reports if not r.is_baseline)
    fill_intervals(deferred, [prompt], attributes=False)  # what the "By prompt" tab draws
    for mine, theirs in zip(deferred.reports, whole.reports, strict=True):
        if mine.prompt == prompt:
            assert _same(mine.rows, theirs.rows)
            # the classifier has a confusion matrix (corrected proportions, their interval); CLIP none
            assert mine.corrected_available == (labeller is None)
            assert all(r.corrected_low is not None for r in mine.rows) == mine.corrected_available
        else:
            assert all(math.isnan(r.bootstrap_low) for r in mine.rows)
    deferred = pickle.loads(pickle.dumps(deferred))
    assert _same(deferred.between_for(prompt), whole.between_for(prompt))  # drawn on first use
    assert _same(deferred.between, whole.between) and not deferred.between_pending
    assert to_json(deferred) == to_json(whole)  # an output completes the rest first
    assert not deferred.pending


def test_completing_in_any_order_gives_the_same_report(gallery):
    whole = to_json(gallery_bias(gallery, n_resamples=RESAMPLES))
    first = gallery_bias(gallery, n_resamples=RESAMPLES, defer=True)
    fill_between(first)
    fill_intervals(first, [None])  # the baselines first
    assert to_json(complete(first)) == whole
    second = gallery_bias(gallery, n_resamples=RESAMPLES, defer=True)
    assert complete(second) is second and to_json(second) == whole


def test_the_compositions_are_the_reports_counts_and_give_their_between_tests(gallery):
    whole = gallery_bias(gallery, n_resamples=RESAMPLES)
    labeller, found = gallery_compositions(gallery)
    assert labeller == whole.labeller
    assert [(c.generator, c.prompt, c.prompt_label, c.n, c.counts.tolist()) for c in found] == [
        (r.generator, r.prompt, r.prompt_label, r.n, r.counts.tolist()) for r in whole.reports]
    assert _same(S.between_generators(found), whole.between)  # the report's defaults: seed 0, Holm


def test_the_bias_page_tests_between_generators_only_on_their_tab(gallery, open_app):
    whole = gallery_bias(gallery, n_resamples=RESAMPLES)
    found = whole.between_for(whole.reports[1].prompt)
    plain = open_app(gallery, page="bias")
    assert not [m for m in plain.markdown if m.value.startswith("Across all generators")]
    assert any(m.value.startswith("- top class:") for m in plain.markdown)  # the open tab is drawn
    between = open_app(gallery, page="bias", tab="between")
    shown = [m.value for m in between.markdown if m.value.startswith("Across all generators")]
    assert len(shown) == len(whole.between)
    assert any(f"**{found.overall.v:.2f}**" in text and f"n = {found.overall.n})" in text for text in shown)
    assert len([m for m in between.markdown if m.value.startswith("##### ")]) == len(whole.between)


def test_the_kiosk_counts_from_the_report_are_the_labels_counts(gallery):
    from gallery.app import kiosk
    from gallery.store import queries

    bias = gallery_bias(gallery, defer=True)  # what the exhibition reads its captions' counts from
    assert kiosk.report_counts(bias) == kiosk.class_counts(queries.labelled_artworks(gallery, bias.labeller))
