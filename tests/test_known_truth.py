"""Labels whose truth is known: the labeller's confusion matrix measured on generated images,
BBSE with it, independent labellers' agreement, attribute distributions and aesthetic values."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sample_gallery import CLASSIFIER, SampleSpec, build_sample_gallery

from data.world.aesthetic import AestheticRule
from data.world.params import CLASSES, TIMES, WEATHERS
from gallery.bias import format_table, gallery_bias, to_json
from gallery.known_truth import MIN_KNOWN, complete_rows, confusion_counts
from gallery.statistics import bbse_correct
from gallery.store import Store
from gallery.store.queries import labelled_artworks
from gallery.store.records import LabellerRecord, LabelRecord
from gallery.store.writes import insert_rows

SECOND = "classifier-b"
RENDERS = [[10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0], [0, 0, 0, 10]]


# -- BBSE with a matrix measured on generated images, in simulation --------------------------------
def _generated_errors() -> np.ndarray:
    """P(model says j | truth i) on generated images: much worse than on renders."""
    rates = np.eye(6) * 0.7
    for true, said in ((2, 3), (3, 2), (5, 0), (0, 5), (1, 3), (4, 2)):
        rates[true, said] += 0.2
    rates += 0.1 / 6
    return rates / rates.sum(1, keepdims=True)


def _simulate(n: int, rng: np.random.Generator, truth: np.ndarray, errors: np.ndarray, labelled: float):
    """BBSE estimates from n artworks, a share ``labelled`` of them with known labels: with the
    matrix estimated from those, and with the renders' (near-identity) matrix."""
    true = rng.choice(6, size=n, p=truth)
    said = np.array([rng.choice(6, p=errors[t]) for t in true])
    known = rng.random(n) < labelled
    counts = confusion_counts([CLASSES[t] for t in true[known]], [CLASSES[s] for s in said[known]], CLASSES)
    matrix, _ = complete_rows(counts, np.eye(6) * 100)
    observed = np.bincount(said, minlength=6) / n
    return bbse_correct(observed, matrix), bbse_correct(observed, np.eye(6) * 97 + 0.5)


def test_bbse_with_a_generated_image_matrix_converges_to_the_truth():
    rng = np.random.default_rng(11)
    truth = np.array([0.35, 0.25, 0.15, 0.10, 0.10, 0.05])
    errors = _generated_errors()
    distance = {}
    for n in (200, 2000, 20000):
        runs = [_simulate(n, rng, truth, errors, labelled=0.25) for _ in range(8)]
        distance[n] = (np.mean([0.5 * np.abs(q - truth).sum() for q, _ in runs]),
                       np.mean([0.5 * np.abs(r - truth).sum() for _, r in runs]))
    generated = [distance[n][0] for n in (200, 2000, 20000)]
    assert generated[0] > generated[1] > generated[2]
    assert generated[2] < 0.02  # converges to the true mix
    assert distance[20000][1] > 0.08  # the renders' matrix stays wrong however many artworks


def test_rows_without_known_labels_come_from_the_renders_matrix_or_the_identity():
    counts = np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    matrix, filled = complete_rows(counts, np.array([[9, 1, 0], [2, 8, 0], [0, 0, 0]]))
    assert filled == [1, 2]
    assert matrix.tolist() == [[3, 1, 0], [2, 8, 0], [0, 0, 1]]
    assert confusion_counts(["a", "b", "x"], ["b", "b", "a"], ["a", "b"]).tolist() == [[0, 1], [0, 1]]


# -- the report on a gallery with a second classifier, attributes and known labels ----------------
def _gallery(tmp_path, *, agree=0.9, human=70, intended=False, seed=1):
    root = build_sample_gallery(tmp_path / "g", SampleSpec(runs_per_prompt=20, baseline_samples=40,
                                                           image_size=16))
    rng = np.random.default_rng(seed)
    base = labelled_artworks(root, CLASSIFIER)
    labels = []
    for row in base.itertuples():
        second = row.predicted if rng.random() < agree else CLASSES[rng.integers(6)]
        time, weather = TIMES[rng.integers(4)], WEATHERS[rng.integers(4)]
        for labeller, value in ((SECOND, second), ("time-x", time), ("weather-x", weather)):
            labels.append(LabelRecord(row.artwork_id, labeller, value, 0.9, {value: 0.9}))
        if intended and row.generator == "gen-b":
            labels.append(LabelRecord(row.artwork_id, "intended", row.predicted, 1.0, {row.predicted: 1.0}))
    for row in base[base.generator == "gen-a"].head(human).itertuples():
        value = row.predicted if rng.random() < 0.8 else CLASSES[rng.integers(6)]
        labels.append(LabelRecord(row.artwork_id, "human:alice", value, 1.0, {value: 1.0}))
    insert_rows(Store(root), labels=labels, labellers=[
        LabellerRecord(SECOND, list(CLASSES), None, {}),
        LabellerRecord("time-x", list(TIMES), RENDERS, {}),
        LabellerRecord("weather-x", list(WEATHERS), RENDERS, {}),
        LabellerRecord("human:alice", list(CLASSES), None, {"kind": "human"}),
        LabellerRecord("intended", list(CLASSES), None, {"kind": "intended"}),
    ])
    return root


def test_bbse_uses_the_generated_image_matrix_where_enough_labels_are_known(tmp_path):
    bias = gallery_bias(_gallery(tmp_path, intended=True), n_resamples=200)
    assert bias.labeller == CLASSIFIER and bias.agreement_labeller == SECOND  # not the searches' CLIP
    sources = {r.generator: r.confusion_source for r in bias.reports}
    assert sources["gen-a"] == "human:alice on 70 gen-a artworks"
    assert sources["gen-b"] == "intended class on 80 gen-b artworks"  # no person labelled gen-b
    document = json.loads(to_json(bias))
    assert document["confusion"]["min_known"] == MIN_KNOWN
    generated = {c["generator"]: c for c in document["confusion"]["generated"]}
    assert generated["gen-a"]["used"] and np.asarray(generated["gen-a"]["matrix"]).sum() == 70
    assert {(a["labeller"], a["other"]) for a in document["annotations"]} >= {
        ("human:alice", CLASSIFIER), ("human:alice", SECOND), ("intended", CLASSIFIER)}


def test_too_few_known_labels_fall_back_to_the_renders_matrix_and_say_so(tmp_path):
    bias = gallery_bias(_gallery(tmp_path, human=12), n_resamples=200)
    assert {r.confusion_source for r in bias.reports} == {"world renders (assumes renders-like errors)"}
    assert any("only 12 artworks with a known label" in note for note in bias.notes)
    assert any("assume renders-like errors" in note for note in bias.notes)


def test_independent_labellers_that_disagree_make_labels_unreliable(tmp_path):
    bias = gallery_bias(_gallery(tmp_path, agree=0.1), n_resamples=200)
    verdicts = {r.generator: r for r in bias.reliability}
    assert verdicts["gen-a"].reliable is False and verdicts["gen-a"].agreement.kappa < 0.4
    sentence = verdicts["gen-a"].sentence()
    assert sentence.startswith("labels unreliable for gen-a (kappa ") and sentence.endswith("< 0.4)")
    assert all(r.warnings[0].startswith(sentence) for r in bias.reports if r.generator == "gen-a")
    assert "labels unreliable for gen-a" in format_table(bias)
    document = json.loads(to_json(bias))
    assert document["labeller_agreement"]["labellers"] == [CLASSIFIER, SECOND]
    reliable = gallery_bias(_gallery(tmp_path / "good"), n_resamples=200).reliability
    assert all(r.reliable for r in reliable)


def test_attribute_distributions_and_aesthetic_values_per_generator_and_prompt(tmp_path):
    root = _gallery(tmp_path)
    bias = gallery_bias(root, n_resamples=200)
    assert [(a.attribute, a.labeller) for a in bias.attributes] == [("time", "time-x"), ("weather", "weather-x")]
    time = bias.attributes[0]
    assert len(time.reports) == len(bias.reports) and time.reports[0].classes == list(TIMES)
    assert time.reports[0].corrected_available  # the attribute labeller's renders matrix
    assert len(bias.tests) > sum(1 for r in bias.reports for t in (r.vs_uniform, r.vs_baseline) if t)
    document = json.loads(to_json(bias))
    report = document["reports"][0]
    assert set(report["attributes"]) == {"time", "weather"}
    assert sum(report["attributes"]["time"]["proportions"].values()) == pytest.approx(1)
    aesthetic = report["aesthetic"]
    assert aesthetic["low"] < aesthetic["mean"] < aesthetic["high"] and aesthetic["role"] == "searched"
    # the value is the world's rule applied to each artwork's three labels
    rule = AestheticRule.load()
    scene, times, weathers = (labelled_artworks(root, name).set_index("artwork_id")["predicted"]
                              for name in (CLASSIFIER, "time-x", "weather-x"))
    mine = scene[scene.index.str.startswith("gen-a-a-beautiful-landscape-")]
    values = [rule.value(mine[i], times[i], weathers[i]) for i in mine.index]
    assert aesthetic["mean"] == pytest.approx(np.mean(values))
    roles = {(g["generator"], g["role"]) for g in document["aesthetic"]["groups"]}
    assert ("gen-a", "baseline") in roles
    assert any(d["versus"] == "(unguided baseline)" for d in document["aesthetic"]["differences"])


def test_the_bias_page_shows_agreement_attributes_and_aesthetic_values(tmp_path, open_app):
    app = open_app(_gallery(tmp_path, agree=0.1), page="bias")
    texts = "\n".join(str(e.value) for kind in ("warning", "subheader", "markdown", "caption")
                      for e in getattr(app, kind))
    assert "labels unreliable for gen" in texts
    assert "Aesthetic value" in texts and "Time (time" in texts
    assert any("human:alice" in str(d.value.to_dict()) for d in app.dataframe)
    labellers = next(w for w in app.sidebar.selectbox if w.label == "Labeller")
    assert labellers.options[0] == CLASSIFIER  # the report's default first
    assert set(labellers.options) == {CLASSIFIER, SECOND, "clip:clip-world"}  # no truth or attribute labellers


def test_a_class_conditional_generator_records_the_intended_class():
    import torch

    from gallery.jobs import CampaignJob
    from generators.registry import load_generator

    generator = load_generator("biggan-world")
    latents = generator.latent_space.sample(5, torch.Generator().manual_seed(0))
    intended = generator.intended_classes(latents)
    assert len(intended) == 5 and set(intended) <= set(CLASSES)
    logits = generator.latent_space.split(latents)["class_logits"]
    assert intended == [CLASSES[i] for i in logits.argmax(1).tolist()]  # the class it asks for most
    job = CampaignJob("c", "baseline", "biggan-world", None, "", 3, "prior", {"chunk": 4}, "clip-world",
                      (CLASSIFIER,), count=4)
    result = job.run()
    assert result.status == "done", result.error
    assert {spec for a in result.artworks for spec in a.labels} == {CLASSIFIER, "intended"}
    assert [r.labeller for r in result.labellers] == [CLASSIFIER, "intended"]
    assert result.labellers[1].identity["kind"] == "intended"
    unconditional = CampaignJob("c", "baseline", "dcgan-world", None, "", 3, "prior", {"chunk": 2},
                                "clip-world", (CLASSIFIER,), count=2).run()
    assert {spec for a in unconditional.artworks for spec in a.labels} == {CLASSIFIER}
