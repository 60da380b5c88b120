"""The shipped starter zoo: every model loads through the same registry and loaders as
published weights, and does its job on freshly rendered scenes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from data.weights.catalog import list_models
from data.weights.resolve import ZOO_DIR, locate
from gallery.cli import main

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
    assert shipped <= 40e6, f"the starter zoo is {shipped / 1e6:.1f} MB; the budget is 40 MB"


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


def test_clip_world_knows_the_world():
    from search.clip import load_clip
    from search.scorer import ClipScorer
    from search.world_eval import evaluate_world_clip

    metrics = evaluate_world_clip(ClipScorer(load_clip("clip-world")), n=300, seed=2024)
    assert metrics["zero_shot_accuracy"] >= 0.85
    assert metrics["beautiful_minus_dull_spearman"] >= 0.35


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
