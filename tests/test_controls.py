"""Prompts against their controls, paired by seed: config, planning, the paired test, the report."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest

from data.errors import ConfigError
from data.world.params import CLASSES
from gallery.bias import gallery_bias, to_json
from gallery.config import parse_config
from gallery.controls import compare, pair_up, paired_permutation_test
from gallery.planning import plan_jobs
from gallery.store import Store
from gallery.store.records import (
    ArtworkRecord,
    CampaignRecord,
    LabellerRecord,
    LabelRecord,
    RunRecord,
)
from gallery.store.writes import insert_rows

BASE = {"name": "c", "generators": ["dcgan-world"], "search": {"pop_size": 4, "generations": 1}}


def _config(**extra):
    return parse_config(BASE | extra, check_models=False)


# -- config and planning --------------------------------------------------------------------------
def test_controls_run_with_their_prompts_seeds_and_replicates_are_disjoint():
    config = _config(prompts=[{"text": "a beautiful landscape", "seeds": 3,
                               "controls": ["a landscape", "a dull landscape"]}], replicates=2)
    searches = [j for j in plan_jobs(config) if j.kind == "search"]
    by_prompt = {}
    for job in searches:
        by_prompt.setdefault(job.prompt, set()).add((job.seed, job.replicate))
    expected = {(0, 0), (1, 0), (2, 0), (3, 1), (4, 1), (5, 1)}
    assert by_prompt == {"a beautiful landscape": expected, "a landscape": expected, "a dull landscape": expected}
    assert len({j.run_id for j in searches}) == len(searches) == 18


def test_a_plain_prompt_list_still_works_and_has_no_controls():
    config = _config(prompts=["a calm sea"], seeds=2)
    assert config.controls() == {} and config.replicates == 1
    assert [(j.prompt, j.seed) for j in plan_jobs(config) if j.kind == "search"] == [("a calm sea", 0), ("a calm sea", 1)]


@pytest.mark.parametrize("prompt, extra, message", [
    ({"text": "a sea", "controls": ["a sea"]}, {}, "is the prompt itself"),
    ({"text": "a sea", "controls": ["x", "x"]}, {}, "lists a control twice"),
    ({"text": "a sea", "controls": "x"}, {}, "must be a list"),
    ({"text": "a sea", "controls": [""]}, {}, "control prompt is empty"),
    ({"text": "a sea"}, {"replicates": 0}, "'replicates' must be"),
    ({"text": "a sea", "seeds": [2**30]}, {"replicates": 3}, "past 2**31"),
])
def test_bad_controls_are_one_clear_error(prompt, extra, message):
    with pytest.raises(ConfigError, match=message.replace("*", r"\*")):
        _config(prompts=[prompt], **extra)


# -- the paired test ------------------------------------------------------------------------------
def _null_pairs(rng, n, shares, copy=0.4):
    a = rng.choice(len(shares), n, p=shares)
    b = rng.choice(len(shares), n, p=shares)
    same = rng.random(n) < copy  # prompt and control artworks often agree on one seed
    b[same] = a[same]
    return a, b


@pytest.mark.parametrize("n, shares", [
    (14, [1 / 6] * 6),
    (50, [0.35, 0.25, 0.15, 0.10, 0.10, 0.05]),
    (30, [0.5, 0.5, 0, 0, 0, 0]),
])
def test_the_paired_test_is_calibrated_under_the_null(n, shares):
    rng = np.random.default_rng(n)
    p_values = np.array([
        paired_permutation_test(*_null_pairs(rng, n, shares), 6, n_permutations=999, seed=i).p_value
        for i in range(1000)
    ])
    assert 0.03 <= (p_values < 0.05).mean() <= 0.07


def test_the_paired_test_finds_a_real_effect_and_exact_matches_monte_carlo(monkeypatch):
    import gallery.controls

    rng = np.random.default_rng(0)
    a, b = _null_pairs(rng, 60, [1 / 6] * 6)
    a[:20] = 3  # the prompt pushes a third of its seeds to class 3
    assert paired_permutation_test(a, b, 6, n_permutations=999).p_value < 0.01
    small_a, small_b = a[:14], b[:14]  # few discordant pairs: enumerated exactly
    exact = paired_permutation_test(small_a, small_b, 6)
    assert "exact" in exact.method and 0 < exact.p_value < 1
    monkeypatch.setattr(gallery.controls, "EXACT_MAX_DISCORDANT", 0)
    approx = paired_permutation_test(small_a, small_b, 6, n_permutations=100_000)
    assert "Monte-Carlo" in approx.method
    assert approx.p_value == pytest.approx(exact.p_value, abs=0.01)


def test_pairs_are_matched_by_seed_and_effects_have_intervals():
    import pandas as pd

    rows = []
    for seed in range(40):
        rows.append({"generator": "g", "modifier": "", "algorithm": "ga", "seed": seed, "replicate": 0,
                     "prompt": "p", "predicted": "sea" if seed < 30 else "forest", "kind": "search"})
        rows.append({"generator": "g", "modifier": "", "algorithm": "ga", "seed": seed, "replicate": 0,
                     "prompt": "c", "predicted": "sea" if seed < 10 else "forest", "kind": "search"})
    rows.append({"generator": "g", "modifier": "", "algorithm": "ga", "seed": 99, "replicate": 0,
                 "prompt": "p", "predicted": "sea", "kind": "search"})  # no control at seed 99
    pairs = pair_up(pd.DataFrame(rows), "p", "c")
    assert len(pairs) == 40
    found = compare(pairs, CLASSES, generator="g", prompt="p", control="c", replicate="pooled")
    assert found.differences["sea"] == pytest.approx(0.5) and found.leading_class in ("sea", "forest")
    low, high = found.difference_intervals["sea"]
    assert low < 0.5 < high and low > 0
    assert found.distance == pytest.approx(0.5)
    assert found.test.p_value < 0.001


# -- the report -----------------------------------------------------------------------------------
def _gallery(tmp_path, effect: float, replicates=3, seeds=30):
    """One generator, a prompt with a control, labels drawn so the prompt adds ``effect`` sea."""
    rng = np.random.default_rng(7)
    store = Store(tmp_path / "g")
    store.migrate()
    now = datetime(2026, 1, 1)
    config = {"prompts": [{"text": "a beautiful landscape", "seeds": list(range(seeds)),
                           "controls": ["a landscape"]}]}
    runs, artworks, labels = [], [], []
    for replicate in range(replicates):
        for seed in range(seeds):
            seed = seed + replicate * seeds
            base = rng.choice(CLASSES)
            for prompt in ("a beautiful landscape", "a landscape"):
                run_id = f"{prompt[:3]}-{seed}"
                label = "sea" if prompt != "a landscape" and rng.random() < effect else base
                runs.append(RunRecord(run_id, "c", "search", "gen", prompt, "", prompt, seed, "ga", {},
                                      "clip-world", "done", now, now, 1.0, replicate=replicate))
                artworks.append(ArtworkRecord(f"{run_id}:0", run_id, "chosen", 0, "x", "images/x.png",
                                              0.3, None, [0.0], now))
                for labeller in ("classifier-world", "clip:clip-world"):
                    labels.append(LabelRecord(f"{run_id}:0", labeller, label, 0.9, {label: 0.9}))
    insert_rows(store, campaigns=[CampaignRecord("c", "c", config, now)], runs=runs, artworks=artworks,
                labels=labels, labellers=[LabellerRecord("classifier-world", list(CLASSES), None, {}),
                                          LabellerRecord("clip:clip-world", list(CLASSES), None, {})])
    return store.root


def test_the_report_compares_prompt_and_control_per_replicate_and_pooled(tmp_path):
    document = json.loads(to_json(gallery_bias(_gallery(tmp_path, effect=0.6), n_resamples=300)))
    controls = document["controls"]
    assert [c["replicate"] for c in controls] == ["0", "1", "2", "pooled"]
    pooled = controls[-1]
    assert pooled["leading_class"] == "sea" and pooled["differences"]["sea"] > 0.3
    assert pooled["test"]["p_adjusted"] < 0.05 and "permutation" in pooled["test"]["method"]
    assert pooled["replicates"] == "replicates" and pooled["replicated_in"] == "3 of 3 replicates at p < 0.05"
    assert document["multiplicity"]["family_size"] >= 4
    assert "sea" in pooled["sentence"] and "n = 90 seed pairs" in pooled["sentence"]


def test_no_effect_does_not_replicate(tmp_path):
    bias = gallery_bias(_gallery(tmp_path, effect=0.0), n_resamples=300)
    pooled = bias.controls[-1]
    assert pooled.replicates == "does not replicate"
    assert pooled.test.p_value > 0.05


def test_a_labeller_that_steered_the_search_is_flagged_circular(tmp_path):
    gallery = _gallery(tmp_path, effect=0.0, replicates=1, seeds=5)
    bias = gallery_bias(gallery, labeller="clip:clip-world", n_resamples=100)
    assert bias.circular == ["clip:clip-world"]
    assert bias.notes[0].startswith("CIRCULAR: clip:clip-world")
    assert json.loads(to_json(bias))["circular_labellers"] == ["clip:clip-world"]
    assert gallery_bias(gallery, n_resamples=100).labeller == "classifier-world"  # never the default


def test_the_bias_page_states_the_paired_finding_and_flags_a_circular_labeller(tmp_path, open_app):
    app = open_app(_gallery(tmp_path, effect=0.6), page="bias")
    text = "\n".join(m.value for m in app.markdown).replace("\\", "")  # markdown escapes removed
    assert "Against its controls" in "\n".join(h.value for h in app.subheader)
    assert "'a beautiful landscape' gives sea" in text and "replicates (3 of 3 replicates" in text
    # The agreement labeller here is the search's own CLIP: said up front.
    assert [w.value.replace("\\", "") for w in app.warning if "circular" in w.value][0].startswith("clip:clip-world")
