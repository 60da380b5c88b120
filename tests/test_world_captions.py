"""Captions and the aesthetic prior: attributes named, words drawn at the documented rates."""

import json
import math
import re

import numpy as np
import pytest

from data.errors import ConfigError
from data.world.aesthetic import DEFAULT_RULE_PATH, AestheticRule
from data.world.captions import (
    CLASS_NOUNS,
    GENERIC_WORDS,
    TIME_WORDS,
    WEATHER_WORDS,
    caption_scenes,
    compose,
)
from data.world.params import CLASSES, TIMES, WEATHERS, sample_scenes

RULE = AestheticRule.load()
CLASS_WORDS = {
    "buildings": ("building", "block", "tower", "skyline", "flats", "facade"),
    "forest": ("forest", "wood", "trees", "grove"),
    "glacier": ("glacier", "ice"),
    "mountain": ("mountain", "peaks"),
    "sea": ("sea", "ocean", "waves", "beach", "coast"),
    "street": ("street", "road", "avenue", "boulevard"),
}


def is_short(text):
    """A short caption: 'a|an [aesthetic word] <generic word>' and nothing else."""
    return re.fullmatch(rf"an? (?:\w+ )?(?:{'|'.join(GENERIC_WORDS)})", text) is not None


def mentions(text, words):
    return any(re.search(rf"\b{w}", text) for w in words)


def scenes(n, seed=0):
    return sample_scenes([CLASSES[i % len(CLASSES)] for i in range(n)], np.random.default_rng(seed))


def test_every_full_caption_names_class_time_and_weather():
    batch = scenes(600)
    short = 0
    for record, caption in zip(batch.records(), caption_scenes(batch, RULE), strict=True):
        text = caption.text
        if is_short(text):
            short += 1
            continue
        assert mentions(text, CLASS_WORDS[record["class"]]), text
        assert mentions(text, TIME_WORDS[record["time"]]), (record["time"], text)
        assert mentions(text, WEATHER_WORDS[record["weather"]]), (record["weather"], text)
        if caption.aesthetic_word:
            assert caption.aesthetic_word in text.split()
        assert "  " not in text and " a a" not in text and not text.endswith(",")
    assert short > 0  # the default rule makes some captions short


def test_short_captions_come_at_the_rules_rate_and_carry_its_word():
    batch = scenes(3000, seed=8)
    captions = caption_scenes(batch, RULE)
    short = [c for c in captions if is_short(c.text)]
    expected = RULE.short_probability
    assert abs(len(short) / len(captions) - expected) < 5 * math.sqrt(expected * (1 - expected) / len(captions))
    for caption in short:
        if caption.aesthetic_word:
            assert caption.text.split()[1] == caption.aesthetic_word
        else:
            assert caption.aesthetic_polarity == 0 and len(caption.text.split()) == 2
    assert any(c.text == "a beautiful landscape" for c in short)
    assert any(c.text == "a landscape" for c in short)


def test_class_nouns_do_not_name_another_class():
    for cls, nouns in CLASS_NOUNS.items():
        for other, words in CLASS_WORDS.items():
            if other != cls and other not in ("buildings",):  # street nouns mention buildings
                for noun, _ in nouns:
                    assert not mentions(noun, words), (cls, noun, other)


def test_captions_are_deterministic_and_paraphrased():
    batch = scenes(120, seed=4)
    first = [c.text for c in caption_scenes(batch, RULE)]
    assert first == [c.text for c in caption_scenes(batch, RULE)]
    assert first != [c.text for c in caption_scenes(batch, RULE, variant=1)]
    full = [text for text in first if not is_short(text)]
    assert len(set(full)) > 0.9 * len(full)  # many paraphrases, not one template
    everything = " ".join(first)
    assert all(word in everything for word in GENERIC_WORDS)


def test_aesthetic_value_follows_the_json_rule():
    raw = json.loads(DEFAULT_RULE_PATH.read_text())
    batch = scenes(300, seed=5)
    values = RULE.values(batch)
    for record, value in zip(batch.records(), values, strict=True):
        score = raw["bias"] + raw["class"][record["class"]] + raw["time"][record["time"]]
        score += raw["weather"][record["weather"]]
        for pair in raw["pairs"]:
            if all(record[k] == v for k, v in pair.items() if k != "weight"):
                score += pair["weight"]
        assert value == pytest.approx(1 / (1 + math.exp(-score)), abs=1e-12)
        assert 0 < value < 1


def test_documented_preferences_hold():
    assert RULE.value("mountain", "golden", "clear") > 0.9
    assert RULE.value("street", "overcast", "fog") < 0.1
    for time in TIMES:
        for weather in WEATHERS:
            assert RULE.value("sea", time, weather) > RULE.value("street", time, weather)


@pytest.mark.parametrize("value", [0.1, 0.5, 0.9])
def test_aesthetic_word_rates_follow_the_rule(value):
    n = 4000
    rng = np.random.default_rng(int(value * 100))
    polarity = np.array([RULE.draw_word(value, rng)[1] for _ in range(n)])
    p_pos, p_neg = RULE.word_probabilities(value)
    for observed, expected in (((polarity == 1).mean(), p_pos), ((polarity == -1).mean(), p_neg)):
        sigma = math.sqrt(expected * (1 - expected) / n)
        assert abs(observed - expected) < 5 * sigma + 1e-9


def test_captions_carry_more_positive_words_for_more_beautiful_scenes():
    batch = scenes(1800, seed=6)
    values = RULE.values(batch)
    captions = caption_scenes(batch, RULE)
    polarity = np.array([c.aesthetic_polarity for c in captions])
    high, low = values > 0.75, values < 0.35
    assert (polarity[high] == 1).mean() > (polarity[low] == 1).mean() + 0.2
    assert (polarity[low] == -1).mean() > (polarity[high] == -1).mean() + 0.2
    positive = set(RULE.positive_words)
    assert all(c.aesthetic_word in positive for c in captions if c.aesthetic_polarity == 1)


def test_compose_includes_a_given_aesthetic_word():
    record = scenes(1).records()[0]
    rng = np.random.default_rng(0)
    assert all("breathtaking" in compose(record, "breathtaking", rng) for _ in range(30))


@pytest.mark.parametrize(
    "change",
    [
        lambda raw: raw["class"].pop("sea"),
        lambda raw: raw["time"].update(dusk=1.0),
        lambda raw: raw["pairs"].append({"class": "lake", "weight": 1}),
        lambda raw: raw["word_probability"].update(positive_max=1.5),
        lambda raw: raw["word_probability"].update(exponent=0.5),
        lambda raw: raw.update(captions={"short_probability": 1.5}),
        lambda raw: raw["class"].update(sea=float("nan")),
    ],
)
def test_malformed_rules_are_refused(change):
    raw = json.loads(DEFAULT_RULE_PATH.read_text())
    change(raw)
    with pytest.raises(ConfigError):
        AestheticRule.from_dict(raw)
