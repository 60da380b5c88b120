"""The labeller protocol and its one name format: parsing, checking, loading, the default rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classifier.labellers import (
    Labeller,
    default_labeller,
    is_zero_shot,
    label,
    labeller_problem,
    load_labeller,
    parse_labeller,
    weights_needed,
    zero_shot_spec,
)
from data.errors import ConfigError


def test_both_labeller_kinds_implement_the_protocol(tiny_clip_dir):
    zero_shot = load_labeller(zero_shot_spec(str(tiny_clip_dir)))
    trained = load_labeller("classifier-world")
    for labeller in (zero_shot, trained):
        assert isinstance(labeller, Labeller)
        images = torch.rand(3, 3, 40, 40) * 2 - 1
        verdict = label(labeller, images)
        assert verdict.probabilities.shape == (3, len(labeller.classes))
        np.testing.assert_allclose(verdict.probabilities.sum(1), 1, atol=1e-5)
        assert verdict.predicted == [labeller.classes[i] for i in verdict.probabilities.argmax(1)]
        row = verdict.as_dicts()[0]
        assert row["confidence"] == pytest.approx(max(row["probabilities"].values()))
    assert zero_shot.confusion is None  # zero-shot errors are not measured
    confusion = trained.confusion
    assert np.asarray(confusion.matrix).shape == (6, 6)
    assert "test split" in confusion.source


def test_a_zero_shot_labeller_can_share_a_loaded_clip(tiny_clip_dir):
    from search.clip import load_clip

    loaded = []

    def loader(name):
        loaded.append(name)
        return load_clip(name)

    labeller = load_labeller(zero_shot_spec(str(tiny_clip_dir)), clip_loader=loader)
    assert loaded == [str(tiny_clip_dir)]
    assert labeller.identity()["kind"] == "zero-shot"


def test_specs_are_parsed_in_one_place():
    assert parse_labeller("clip:clip-world").clip == "clip-world"
    assert parse_labeller("classifier-world").clip is None
    assert is_zero_shot(zero_shot_spec("x")) and not is_zero_shot("classifier-world")
    with pytest.raises(ConfigError, match="needs a CLIP name"):
        parse_labeller("clip:")
    with pytest.raises(ConfigError, match="empty"):
        parse_labeller("  ")


def test_default_labeller_prefers_a_trained_classifier():
    assert default_labeller(["clip:clip-world", "classifier-world"]) == "classifier-world"
    assert default_labeller(["clip:clip-world"]) == "clip:clip-world"
    assert default_labeller([]) is None


@pytest.mark.parametrize("spec, message", [
    ("classifer-world", "did you mean classifier-world"),
    ("clip:clip-wrld", "did you mean clip-world"),
    ("dcgan-world", "is a generator model, not a classifier"),
    ("resnet50-imagenet1k-v2", "published backbone"),
    ("no/such/folder", "does not exist"),
])
def test_bad_specs_are_named_with_a_hint(spec, message):
    assert message in labeller_problem(spec)


def test_good_specs_have_no_problem_and_name_their_weights(tiny_clip_dir):
    assert labeller_problem("classifier-world") is None
    assert labeller_problem("clip:clip-world") is None
    assert weights_needed("clip:clip-world") == ["clip-world"]
    assert weights_needed(zero_shot_spec(str(tiny_clip_dir))) == []
    assert weights_needed("classifier-world") == ["classifier-world"]


# -- truth sources and attribute labellers ----------------------------------------------------
def test_truth_sources_are_parsed_but_never_loaded_or_listed_by_a_campaign():
    from classifier.labellers import INTENDED, human_spec, is_truth_source

    assert parse_labeller("human:alice").kind == "human" and parse_labeller("human:alice").target == "alice"
    assert parse_labeller(INTENDED).kind == "intended"
    assert is_truth_source("human:alice") and is_truth_source(INTENDED) and not is_truth_source("classifier-world")
    assert human_spec("bob") == "human:bob" == human_spec("human:bob")
    for bad in ("human:", "human:two words", "human:1abc", "human:" + "x" * 65):
        with pytest.raises(ConfigError, match="simple identifier"):
            parse_labeller(bad)
    assert "not a model" in labeller_problem("human:alice")
    assert weights_needed("human:alice") == [] and weights_needed(INTENDED) == []
    with pytest.raises(ConfigError, match="truth source"):
        load_labeller("human:alice")


def test_default_labeller_skips_truth_sources_and_attribute_labellers():
    from data.world.params import CLASSES, TIMES

    specs = ["human:alice", "intended", "time-world", "classifier-world", "clip:clip-world"]
    classes = {"time-world": TIMES} | {s: CLASSES for s in specs if s != "time-world"}
    assert default_labeller(specs, classes) == "classifier-world"
    assert default_labeller(["human:alice", "clip:x"]) == "clip:x"


def test_zero_shot_attribute_labellers_classify_times_and_weathers(tiny_clip_dir):
    from classifier.labellers import attribute_of
    from data.world.params import TIMES, WEATHERS

    spec = zero_shot_spec(str(tiny_clip_dir), "time")
    assert spec.startswith("clip-time:") and parse_labeller(spec).clip == str(tiny_clip_dir)
    assert parse_labeller(spec).attribute == "time" and is_zero_shot(spec)
    labeller = load_labeller(spec)
    assert labeller.classes == TIMES and attribute_of(labeller.classes) == "time"
    assert "a photo of a landscape at sunset." in labeller.prompts("golden")
    assert "a photo of a landscape golden." not in labeller.prompts("golden")  # phrases, not the bare name
    assert label(labeller, torch.rand(2, 3, 32, 32) * 2 - 1).probabilities.shape == (2, 4)
    weather = load_labeller(zero_shot_spec(str(tiny_clip_dir), "weather"))
    assert weather.classes == WEATHERS and weather.identity()["attribute"] == "weather"
    assert labeller_problem("clip-weather:clip-world") is None
    with pytest.raises(ConfigError, match="needs a CLIP name"):
        parse_labeller("clip-time:")
