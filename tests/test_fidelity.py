"""The world Fréchet distance and two-labeller agreement of a generator's unguided samples."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from classifier.fidelity import (
    WorldFeatures,
    frechet_distance,
    world_fidelity,
    world_frechet_distance,
    world_realism,
    world_renders,
)
from classifier.generator_eval import unguided_composition
from data.errors import ConfigError
from gallery.cli import main


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    d, n = 4, 20000
    a = rng.normal(0, 1, (n, d))
    b = rng.normal(0.5, 2, (n, d))
    # Between N(0, I) and N(m, 4I): |m|^2 + tr(I + 4I - 2 * sqrt(4I)) = d * 0.25 + d * 1.
    assert frechet_distance(a, b) == pytest.approx(d * 1.25, rel=0.05)
    assert frechet_distance(a, rng.normal(0, 1, (n, d))) == pytest.approx(0, abs=0.01)
    with pytest.raises(ConfigError, match="two sets of >= 2 feature rows"):
        frechet_distance(a, b[:, :2])


def test_renders_sit_at_the_floor_and_blur_or_noise_far_above_it():
    renders = world_renders(150, None, seed=11)
    clean = world_frechet_distance(renders, None)
    blurred = F.interpolate(F.interpolate(renders, size=16, mode="bilinear", antialias=True), size=64, mode="bilinear")
    blur = world_frechet_distance(blurred, None)
    noise = world_frechet_distance(torch.rand(150, 3, 64, 64) * 2 - 1, None)
    assert clean.value < 2 * clean.floor
    assert blur.value > 3 * clean.value
    assert noise.value > blur.value
    assert clean.n == 150 and clean.features == "classifier-world"


def test_realism_tells_a_narrow_set_of_real_scenes_from_images_off_the_world():
    renders = world_renders(60, None, seed=11)
    narrow = renders[:3].repeat(20, 1, 1, 1)  # three scenes, each shown twenty times
    noise = torch.rand(60, 3, 64, 64) * 2 - 1
    spread, repeated, off = (world_realism(x, None, reference_n=300) for x in (renders, narrow, noise))
    # The Fréchet distance counts narrowness as a fault; precision does not, and noise fails both.
    assert world_frechet_distance(narrow, None).value > 3 * world_frechet_distance(renders, None).value
    assert spread.precision > 0.8 and repeated.precision > 0.8 and off.precision < 0.1
    assert 0.5 < spread.density < 2 and off.density < 0.1
    assert repeated.coverage < spread.coverage / 3  # three scenes cover little of the world
    assert spread.n == 60 and spread.reference_n == 300 and spread.nearest_k == 5
    with pytest.raises(ConfigError, match="needs more than 5 images"):
        world_realism(renders[:5], None)


def test_both_measures_at_once_equal_each_alone_from_one_pass_of_features(monkeypatch):
    images = world_renders(40, {"sea": 0.5, "forest": 0.5}, seed=11)
    composition = {"sea": 0.5, "forest": 0.5}
    frechet = world_frechet_distance(images, composition)
    realism = world_realism(images, composition, reference_n=40)
    passes = []
    of = WorldFeatures.of
    monkeypatch.setattr(WorldFeatures, "of", lambda self, x: passes.append(len(x)) or of(self, x))
    both = world_fidelity(images, composition, reference_n=40)
    assert both == (frechet, realism)
    # the images once, the renders once (the Fréchet reference is the realism's at this n), the floor's once
    assert passes == [40, 40, 40]
    assert world_fidelity(images[:5], composition)[1] is None  # too few for five nearest neighbours


def test_the_reference_has_the_composition_asked_for():
    from classifier.labellers import load_labeller

    images = world_renders(60, {"sea": 0.5, "street": 0.5}, seed=3)
    labels = load_labeller("classifier-world").predict(images).argmax(1)
    classes = load_labeller("classifier-world").classes
    shares = {name: float((labels == i).float().mean()) for i, name in enumerate(classes)}
    assert shares["sea"] + shares["street"] > 0.9


def test_eval_generator_reports_agreement_and_fidelity(capsys):
    code = main(["eval", "generator", "--generator", "world-render", "--n", "60", "--format", "json"])
    assert code == 0
    found = json.loads(capsys.readouterr().out)
    agreement = found["agreement"]
    assert agreement["labeller"] == "classifier-world-b" and agreement["n"] == 60
    assert agreement["kappa"] > 0.8  # two good labellers on true renders
    fidelity = found["world_frechet_distance"]
    assert fidelity["value"] < 3 * fidelity["floor"]  # the renderer is the world
    assert found["world_realism"]["precision"] > 0.8 and found["world_realism"]["n"] == 60
    assert main(["eval", "generator", "--generator", "world-render", "--n", "10", "--second-labeller", "none",
                 "--no-fidelity", "--format", "json"]) == 0
    bare = json.loads(capsys.readouterr().out)
    assert bare["agreement"] is None and bare["world_frechet_distance"] is None and bare["world_realism"] is None


def test_a_second_labeller_of_other_classes_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="knows classes"):
        unguided_composition("world-render", n=4, progress=False, second_labeller="time-world", fidelity=False)
