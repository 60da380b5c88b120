"""The shipped starter zoo: every model loads through the same registry and loaders as
published weights, and does its job on freshly rendered scenes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from data.weights.catalog import list_models
from data.weights.resolve import ZOO_DIR, locate
from gallery.cli import main

REPO = Path(__file__).resolve().parents[1]
ZOO = [entry for entry in list_models() if entry.zoo is not None and (ZOO_DIR / entry.zoo).is_dir()]
GENERATORS = [entry.name for entry in ZOO if entry.kind == "generator"]


def test_zoo_is_listed_present_and_small(capsys):
    assert {"clip-world", "classifier-world"} <= {entry.name for entry in ZOO}
    assert main(["models", "list", "--format", "json"]) == 0
    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)["models"]}
    for entry in ZOO:
        assert listed[entry.name]["present"] and listed[entry.name]["where"] == "zoo"
        assert (ZOO_DIR / entry.zoo / "card.md").is_file()
    shipped = sum(f.stat().st_size for f in ZOO_DIR.rglob("*") if f.is_file())
    assert shipped <= 80e6, f"the starter zoo is {shipped / 1e6:.1f} MB; the budget is 80 MB"


@pytest.mark.parametrize("name", GENERATORS)
def test_every_zoo_generator_loads_and_generates(name):
    from generators.registry import load_generator

    generator = load_generator(name)
    latents = generator.latent_space.sample(4, torch.Generator().manual_seed(0))
    images = generator.generate(latents)
    assert images.shape == (4, 3, generator.image_size, generator.image_size)
    assert images.min() >= -1 and images.max() <= 1
    assert not torch.allclose(images[0], images[1])
    assert torch.equal(images, generator.generate(latents))
    if generator.family != "diffusion":  # every trained GAN keeps its discriminator
        assert generator.has_realism and generator.realism(images).shape == (4,)
    assert locate(next(e for e in ZOO if e.name == name)).place == "zoo"


@pytest.mark.parametrize("name, rule", [
    ("clip-world", "data/world/aesthetic.json"),
    ("clip-world-night-sea", "data/world/rules/night-sea.json"),
    ("clip-world-city", "data/world/rules/city.json"),
])
def test_each_starter_clip_knows_the_world_and_the_beauty_it_was_taught(name, rule):
    from data.world.aesthetic import AestheticRule
    from search.clip import clip_folder, load_clip
    from search.clip_training import trained_rule
    from search.scorer import ClipScorer
    from search.world_eval import evaluate_world_clip

    clip = load_clip(name)
    taught = AestheticRule.load(REPO / rule)
    assert trained_rule(clip_folder(clip)) == taught  # the rule travels with the weights
    metrics = evaluate_world_clip(ClipScorer(clip), n=300, seed=2024, rule=taught)
    assert metrics["zero_shot_accuracy"] >= 0.8
    assert metrics["beautiful_minus_neutral_spearman"] >= 0.8
    if name != "clip-world":  # a counterfactual CLIP does not share the world's notion of beauty
        other = evaluate_world_clip(ClipScorer(clip), n=300, seed=2024, rule=AestheticRule.load())
        assert other["beautiful_minus_neutral_spearman"] < metrics["beautiful_minus_neutral_spearman"] - 0.2


def test_classifier_world_labels_fresh_scenes():
    from classifier.labellers import load_labeller
    from search.world_eval import fresh_world

    images, labels, _ = fresh_world(300, seed=2025, size=64)
    classifier = load_labeller("classifier-world")
    predicted = classifier.predict(images).argmax(1).numpy()
    assert (predicted == labels).mean() >= 0.95
    assert list(classifier.classes) == ["buildings", "forest", "glacier", "mountain", "sea", "street"]
    assert np.isclose(np.asarray(classifier.evaluation["confusion_matrix"]).sum(), 1200)


def test_zoo_files_match_their_catalogue_hashes():
    """Retraining a zoo model means updating its entry: 'artbias models verify NAME' prints the new sha256."""
    from data.weights.resolve import verify_model

    for entry in ZOO:
        checks = verify_model(entry)
        assert checks and all(check.status == "ok" for check in checks), [(c.path, c.detail) for c in checks]


def test_zoo_preprocessing_in_the_catalogue_agrees_with_the_folders():
    from data.weights.catalog import get_entry

    clip = json.loads((ZOO_DIR / "clip-world" / "open_clip_config.json").read_text())["preprocess_cfg"]
    assert get_entry("clip-world").preprocessing == clip
    classifier = json.loads((ZOO_DIR / "classifier-world" / "config.json").read_text())["preprocessing"]
    assert get_entry("classifier-world").preprocessing == classifier
    for name in ("classifier-world-b", "time-world", "weather-world"):
        folder = json.loads((ZOO_DIR / name / "config.json").read_text())["preprocessing"]
        assert get_entry(name).preprocessing == folder


def test_the_second_classifier_is_independent_and_agrees_on_renders():
    from classifier.labellers import load_labeller
    from gallery.statistics import agreement
    from search.world_eval import fresh_world

    images, labels, _ = fresh_world(300, seed=2026, size=64)
    first, second = load_labeller("classifier-world"), load_labeller("classifier-world-b")
    assert first.arch.block != second.arch.block  # another architecture
    assert first.training["seed"] != second.training["seed"]
    assert first.training["data"]["files_sha256"] != second.training["data"]["files_sha256"]
    said = {name: [lab.classes[i] for i in lab.predict(images).argmax(1).tolist()]
            for name, lab in (("a", first), ("b", second))}
    truth = [first.classes[i] for i in labels]
    assert np.mean([s == t for s, t in zip(said["b"], truth, strict=True)]) >= 0.95
    assert agreement(said["a"], said["b"], first.classes).kappa >= 0.9


@pytest.mark.parametrize("name, attribute, floor", [("time-world", "time", 0.97), ("weather-world", "weather", 0.9)])
def test_attribute_classifiers_label_fresh_scenes(name, attribute, floor):
    from classifier.labellers import ATTRIBUTES, load_labeller
    from data.world.params import CLASSES, sample_scenes
    from data.world.render import render_scenes

    scenes = sample_scenes([CLASSES[i % 6] for i in range(240)], np.random.default_rng(2027))
    images = torch.from_numpy(render_scenes(scenes, 64)).permute(0, 3, 1, 2).float() / 127.5 - 1
    labeller = load_labeller(name)
    assert labeller.classes == ATTRIBUTES[attribute]
    truth = getattr(scenes, f"{attribute}_index")
    assert (labeller.predict(images).argmax(1).numpy() == truth).mean() >= floor
