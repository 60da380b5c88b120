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
