"""Training the starter CLIP: the contrastive loss falls, and the result loads like any CLIP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from data.errors import ConfigError, DatasetError
from data.world.builder import WorldConfig, build_world, uniform_composition
from search.clip import load_clip
from search.clip_training import ClipTrainConfig, train_clip
from search.scorer import ClipScorer
from search.world_eval import evaluate_world_clip


@pytest.fixture(scope="module")
def world32(tmp_path_factory):
    out = tmp_path_factory.mktemp("world") / "w"
    config = WorldConfig(n=192, composition=uniform_composition(), size=32, seed=4, test_fraction=0.0)
    return build_world(out, config, progress=False)


@pytest.fixture(scope="module")
def trained(world32, tmp_path_factory):
    out = tmp_path_factory.mktemp("clip") / "clip-tiny"
    config = ClipTrainConfig(data=str(world32), out=str(out), architecture="clip-tiny", epochs=6,
                             batch_size=32, lr=3e-3, warmup_steps=5, eval_n=60)
    return out, train_clip(config, progress=False)


def test_contrastive_loss_falls(trained):
    _, record = trained
    history = record["loss_history"]
    assert all(torch.isfinite(torch.tensor(history)))
    first, last = sum(history[:5]) / 5, sum(history[-5:]) / 5
    assert last < first - 0.2


def test_trained_clip_loads_like_any_clip_and_records_provenance(trained):
    out, record = trained
    clip = load_clip(str(out))
    config = json.loads((out / "open_clip_config.json").read_text())
    assert clip.image_size == 32 and list(clip.mean) == pytest.approx(config["preprocess_cfg"]["mean"])
    saved = json.loads((out / "training.json").read_text())
    assert saved["config"]["seed"] == 0 and saved["versions"]["torch"] and saved["steps"] == 36
    assert "zero-shot accuracy" in (out / "card.md").read_text()
    metrics = evaluate_world_clip(ClipScorer(clip), n=60, seed=1)
    assert 0 <= metrics["zero_shot_accuracy"] <= 1 and set(metrics["zero_shot_per_class"]) >= {"sea", "street"}


def test_training_refuses_bad_input(world32, tmp_path):
    with pytest.raises(ConfigError, match="architecture"):
        train_clip(ClipTrainConfig(data=str(world32), out=str(tmp_path / "x"), architecture="nope"))
    with pytest.raises(DatasetError, match="manifest"):
        train_clip(ClipTrainConfig(data=str(tmp_path), out=str(tmp_path / "y"), architecture="clip-tiny"))
    with pytest.raises(DatasetError, match="64 px"):  # the world is 32 px, clip-world wants 64
        train_clip(ClipTrainConfig(data=str(world32), out=str(tmp_path / "z"), epochs=1))
    assert not (tmp_path / "z").exists() and not list(tmp_path.glob(".z.partial*"))


def test_the_card_names_the_rule_a_clip_learnt():
    from data.world.aesthetic import AestheticRule
    from search.clip_training import rule_description

    default = AestheticRule.load().to_dict()
    assert rule_description(default) == "the world's default rule (data/world/aesthetic.json)"
    rules = Path(__file__).resolve().parents[1] / "data" / "world" / "rules"
    city = AestheticRule.load(rules / "city.json").to_dict()
    assert "class street (+1.5)" in rule_description(city) and "time golden = night (+0.6)" in rule_description(city)
