"""world-render: the renderer behind the generator protocol, a glass box with known truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data.errors import ConfigError
from data.world.aesthetic import AestheticRule
from data.world.params import CLASSES, TIME_WEIGHTS, TIMES, WEATHERS
from data.world.render import render_scenes
from generators.registry import generator_problem, load_generator, weights_needed


@pytest.fixture(scope="module")
def renderer():
    return load_generator("world-render")


def test_prior_samples_follow_the_worlds_scene_distribution(renderer):
    latents = renderer.latent_space.sample(6000, torch.Generator().manual_seed(0))
    truth = renderer.truth(latents)
    class_shares = np.array([truth.classes.count(c) for c in CLASSES]) / 6000
    time_shares = np.array([truth.times.count(t) for t in TIMES]) / 6000
    np.testing.assert_allclose(class_shares, 1 / 6, atol=0.02)
    np.testing.assert_allclose(time_shares, TIME_WEIGHTS, atol=0.02)
    pairs = set(zip(truth.classes, truth.weathers, strict=True))
    assert ("sea", "snow") not in pairs and ("glacier", "rain") not in pairs  # impossible in the world
    assert {w for _, w in pairs} == set(WEATHERS)


def test_images_are_the_rendered_scenes_and_carry_their_truth(renderer):
    latents = renderer.latent_space.sample(8, torch.Generator().manual_seed(1))
    images = renderer.generate(latents)
    assert images.shape == (8, 3, 64, 64) and images.min() >= -1 and images.max() <= 1
    expected = torch.from_numpy(render_scenes(renderer.scenes(latents), 64)).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.equal(images, expected)
    assert torch.equal(renderer.generate(latents[3:4]), images[3:4])  # batch-independent
    truth = renderer.truth(latents)
    assert renderer.intended_classes(latents) == truth.classes
    rule = AestheticRule.load()
    expected_values = [rule.value(c, t, w) for c, t, w in zip(truth.classes, truth.times, truth.weathers, strict=True)]
    np.testing.assert_allclose(truth.aesthetic, expected_values)


def test_composition_size_and_identity(tmp_path):
    tall = load_generator("world-render", size=40, composition={"sea": 1.0})
    latents = tall.latent_space.sample(20, torch.Generator().manual_seed(2))
    assert set(tall.intended_classes(latents)) == {"sea"}
    assert tall.generate(latents[:2]).shape[-1] == 40
    identity = tall.identity()
    assert identity["family"] == "world-render" and identity["composition"]["sea"] == 1.0
    assert identity["weights"] == {"path": None, "sha256": None}
    for bad in ({"size": 8}, {"size": 5000}, {"composition": {"lava": 1.0}}, {"composition": {"sea": -1}}):
        with pytest.raises(ConfigError, match="world-render"):
            load_generator("world-render", **bad)
    with pytest.raises(ConfigError, match="takes the options"):
        load_generator("world-render", truncation=0.5)


def test_it_needs_no_weights_and_refuses_gradient_refinement(renderer):
    from search.clip import load_clip
    from search.config import SearchConfig
    from search.engine import run_search
    from search.scorer import ClipScorer

    assert generator_problem("world-render") is None and weights_needed("world-render") == []
    scorer = ClipScorer(load_clip("clip-world"))
    with pytest.raises(ConfigError, match="not differentiable"):
        run_search(renderer, scorer, "a snowy glacier", SearchConfig(pop_size=4, generations=1, refine_steps=2),
                   progress=False)


def test_a_search_over_it_probes_the_clip_alone(renderer):
    from search.clip import load_clip
    from search.config import SearchConfig
    from search.engine import run_search
    from search.scorer import ClipScorer

    scorer = ClipScorer(load_clip("clip-world"))
    chosen = []
    for seed in range(4):
        found = run_search(renderer, scorer, "a snowy glacier", SearchConfig(pop_size=16, generations=4),
                           seed=seed, progress=False)
        chosen += renderer.intended_classes(torch.from_numpy(found.latent[None, :]))
    assert chosen.count("glacier") >= 3, chosen  # unguided: 1 in 6
