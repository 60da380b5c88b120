"""artbias validate: a bias injected on purpose into a world must come out of the study."""

from __future__ import annotations

import json
import shutil

import pytest

from data.errors import ConfigError
from data.world.aesthetic import DEFAULT_RULE_PATH, AestheticRule
from data.world.builder import WorldConfig, build_world, uniform_composition
from gallery.cli import main
from gallery.controls import ControlComparison
from gallery.statistics import TestResult
from gallery.validation import (
    BEAUTY,
    NEGATED,
    NEUTRAL,
    ValidationError,
    ValidationSettings,
    _recovery,
    campaign_config,
    run_validation,
)
from search.clip_training import ClipTrainConfig, train_clip, trained_rule


def sea_loving_rule(tmp_path):
    """A new rule: the sea is beautiful, everything else dull; captions often short."""
    raw = json.loads(DEFAULT_RULE_PATH.read_text())
    raw["class"] = {"buildings": -2.5, "forest": -2.5, "glacier": -2.5, "mountain": -2.5, "sea": 3.5, "street": -2.5}
    raw["pairs"] = []
    raw["captions"] = {"short_probability": 0.8}
    path = tmp_path / "sea.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.fixture(scope="module")
def sea_clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    rule_path = sea_loving_rule(root)
    world = build_world(root / "world", WorldConfig(n=1500, composition=uniform_composition(), size=32, seed=3,
                                                     test_fraction=0.0),
                        progress=False, rule=AestheticRule.load(rule_path))
    out = root / "clip"
    train_clip(ClipTrainConfig(data=str(world), out=str(out), architecture="clip-tiny", epochs=30, batch_size=32,
                               lr=3e-3, warmup_steps=5, eval_n=60), progress=False)
    return out, rule_path


def test_the_clip_records_the_rule_it_learnt(sea_clip):
    out, rule_path = sea_clip
    assert trained_rule(out) == AestheticRule.load(rule_path)


@pytest.mark.slow  # trains a tiny CLIP (about a minute on 2 cores)
def test_validate_recovers_a_new_rules_top_class_on_world_render(sea_clip, tmp_path):
    out, _ = sea_clip
    settings = ValidationSettings(clip=str(out), seeds=10, replicates=2, pop_size=8, generations=3, baseline=30)
    document = run_validation(settings, tmp_path / "v", progress=False)
    result = document["generators"]["world-render"]
    assert document["rule_source"].startswith("the training record")
    assert max(document["injected_class_beauty"], key=document["injected_class_beauty"].get) == "sea"
    assert result["classes"]["labeller"] == "intended"  # the renderer's own truth, not a classifier
    assert result["classes"]["top_measured"] == "sea" and result["top_class_recovered"] is True
    assert result["classes"]["effect"]["sea"] > 0.3
    assert result["classes"]["n_pairs"] == 20
    assert len(result["replicates"]["tops"]) == 2 and "sea" in result["replicates"]["tops"]  # per replicate
    assert set(result) >= {"time_spearman", "top_time_recovered", "weather", "composition_tv"}
    assert result["time"]["labeller"] == "intended-time"  # the renderer's own truth again
    assert result["classes"]["test"]["p_adjusted"] < 0.05
    written = json.loads((tmp_path / "v" / "validation.json").read_text())
    assert written["generators"]["world-render"]["top_class_recovered"] is True
    assert "| world-render |" in (tmp_path / "v" / "validation.md").read_text()


def test_the_validation_campaign_pairs_the_prompt_with_both_controls():
    config = campaign_config(ValidationSettings(clip="clip-world", seeds=4, replicates=3))
    assert config.controls() == {BEAUTY: (NEUTRAL, NEGATED)} and config.replicates == 3
    assert config.prompts[0].negatives == (NEUTRAL,) and config.prompts[0].negative_weight == 1.0
    raw = campaign_config(ValidationSettings(clip="clip-world", objective="raw"))
    assert raw.prompts[0].negatives == ()
    assert config.search_config("ga").anchor_radius is None
    anchored = campaign_config(ValidationSettings(clip="clip-world", anchor_radius=1.0))
    assert anchored.search_config("ga").anchor_radius == 1.0
    with pytest.raises(ConfigError, match="anchor_radius"):
        campaign_config(ValidationSettings(clip="clip-world", anchor_radius=-1.0))


@pytest.mark.parametrize("change, message", [
    ({"objective": "best"}, "objective"),
    ({"seeds": 1}, "seeds"),
    ({"generators": ()}, "at least one generator"),
])
def test_bad_validation_settings_are_refused(change, message, tmp_path):
    settings = ValidationSettings(clip="clip-world") if not change else ValidationSettings(**({"clip": "clip-world"} | change))
    with pytest.raises(ConfigError, match=message):
        run_validation(settings, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_world_under_a_bad_rule_is_refused_before_anything_is_written(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    raw = json.loads(DEFAULT_RULE_PATH.read_text())
    raw["class"].pop("sea")
    bad.write_text(json.dumps(raw))
    code = main(["data", "world", "--out", str(tmp_path / "w"), "--n", "12", "--aesthetic", str(bad)])
    assert code == 2 and "class weights must name exactly" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_validation_whose_searches_all_failed_says_so_in_one_line(tiny_clip_dir, tmp_path, capsys):
    """A CLIP that cannot load inside the jobs: every search fails (the baseline needs no CLIP),
    and the analysis names the failures instead of a bare KeyError."""
    broken = shutil.copytree(tiny_clip_dir, tmp_path / "broken-clip")
    (broken / "open_clip_model.safetensors").write_bytes(b"not a safetensors file")
    settings = ValidationSettings(clip=str(broken), rule=str(DEFAULT_RULE_PATH), seeds=2, replicates=1,
                                  pop_size=2, generations=1, baseline=6)
    with pytest.raises(ValidationError) as raised:
        run_validation(settings, tmp_path / "v", progress=False)
    message = str(raised.value)
    assert message.startswith("validation: 6 of 6 search runs of world-render failed (first: CheckpointError: CLIP ")
    assert f"see the runs table of {tmp_path / 'v' / 'gallery'}" in message and "\n" not in message
    assert not (tmp_path / "v" / "validation.json").exists()


def _comparison(control: str, differences: dict[str, float], n_pairs: int = 36) -> ControlComparison:
    test = TestResult(statistic=1.0, dof=5, p_value=0.01, method="paired permutation test", min_expected=0.0)
    return ControlComparison("g", BEAUTY, control, "pooled", n_pairs, 0.5, 0.4, 0.6, differences,
                             {c: (d - 0.1, d + 0.1) for c, d in differences.items()}, test)


def test_classes_are_ranked_on_the_beauty_axis_and_the_top_class_against_the_neutral_control():
    """What a search does: "beautiful" piles onto the top class, "dull" onto the bottom ones, and
    below the top the neutral contrast is only minus what "a landscape" picks (here the
    mountains, 3rd in beauty). Ranking on it misplaces them; the dull-to-beautiful axis does not."""
    injected = {"sea": 0.8, "glacier": 0.6, "mountain": 0.55, "forest": 0.45, "buildings": 0.4, "street": 0.3}
    vs_neutral = _comparison(NEUTRAL, {"sea": 0.8, "glacier": 0.05, "buildings": -0.08, "forest": -0.1,
                                       "mountain": -0.3, "street": -0.37})
    vs_negated = _comparison(NEGATED, {"sea": 0.8, "glacier": 0.14, "mountain": 0.06, "forest": -0.28,
                                       "buildings": -0.32, "street": -0.4})
    recovery = _recovery(injected, vs_neutral, list(injected), "intended", vs_negated)
    assert recovery.spearman == pytest.approx(1.0)
    assert recovery.spearman_vs_neutral == pytest.approx(0.771, abs=1e-3)
    assert recovery.top_measured == "sea" and recovery.recovered is True
    assert recovery.effect == vs_neutral.differences and recovery.negated["intervals"]["sea"] == pytest.approx((0.7, 0.9))
    # Without a paired negated control the ranking falls back to the neutral contrast.
    alone = _recovery(injected, vs_neutral, list(injected), "intended", None)
    assert alone.spearman == alone.spearman_vs_neutral == pytest.approx(0.771, abs=1e-3)
    # Out-of-reach classes are left out of the ranking: two classes are too few to rank.
    assert _recovery(injected, vs_neutral, ["sea", "street"], "intended", vs_negated).spearman is None
