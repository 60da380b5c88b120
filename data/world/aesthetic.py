"""The world's aesthetic prior: how "beautiful" a scene is, as a documented rule on its attributes.

The rule's numbers live in ``aesthetic.json`` next to this module (data, not code):

    value = sigmoid(bias + class[c] + time[t] + weather[w] + sum of matching pair weights)

and a caption carries a positive aesthetic word ("beautiful", ...) with probability
``positive_max * value ** exponent``, otherwise a negative one ("dull", ...) with probability
``negative_max * (1 - value) ** exponent``, otherwise none. Since ``v**k + (1-v)**k <= 1`` for
``k >= 1``, the two probabilities never sum past ``max(positive_max, negative_max) <= 1``.

With probability ``short_probability`` a caption is *short*: only the aesthetic word (when
one was drawn) and a generic scene word, "a beautiful landscape", "a view" — the kind of
alt-text web-scale CLIPs learn their notion of beauty from, and what makes the prior's imprint
strong enough for a small CLIP to learn (see docs/world.md).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.errors import ConfigError
from data.world.params import CLASSES, TIMES, WEATHERS, SceneBatch

DEFAULT_RULE_PATH = Path(__file__).with_name("aesthetic.json")


@dataclass(frozen=True)
class AestheticRule:
    bias: float
    class_weight: dict[str, float]
    time_weight: dict[str, float]
    weather_weight: dict[str, float]
    pairs: tuple[dict, ...]
    positive_words: tuple[str, ...]
    negative_words: tuple[str, ...]
    positive_max: float
    negative_max: float
    exponent: float
    short_probability: float = 0.0

    @classmethod
    def load(cls, path: str | Path | None = None) -> AestheticRule:
        path = Path(path) if path is not None else DEFAULT_RULE_PATH
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"cannot read aesthetic rule {path}: {error}") from error
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict, source: str = "aesthetic rule") -> AestheticRule:
        try:
            rule = cls(
                bias=float(raw.get("bias", 0.0)),
                class_weight=_complete(raw["class"], CLASSES, "class", source),
                time_weight=_complete(raw["time"], TIMES, "time", source),
                weather_weight=_complete(raw["weather"], WEATHERS, "weather", source),
                pairs=tuple(raw.get("pairs", ())),
                positive_words=tuple(raw["words"]["positive"]),
                negative_words=tuple(raw["words"]["negative"]),
                positive_max=float(raw["word_probability"]["positive_max"]),
                negative_max=float(raw["word_probability"]["negative_max"]),
                exponent=float(raw["word_probability"]["exponent"]),
                short_probability=float(raw.get("captions", {}).get("short_probability", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"{source}: malformed aesthetic rule ({error!r})") from error
        rule._check(source)
        return rule

    def _check(self, source: str) -> None:
        known = {"class": CLASSES, "time": TIMES, "weather": WEATHERS}
        for pair in self.pairs:
            keys = set(pair) - {"weight"}
            if "weight" not in pair or not keys or not keys <= set(known):
                raise ConfigError(f"{source}: a pair needs a weight and class/time/weather keys: {pair}")
            for key in keys:
                if pair[key] not in known[key]:
                    raise ConfigError(f"{source}: unknown {key} {pair[key]!r} in pair {pair}")
        numbers = [self.bias, self.positive_max, self.negative_max, self.exponent, self.short_probability,
                   *self.class_weight.values(), *self.time_weight.values(), *self.weather_weight.values(),
                   *(float(pair["weight"]) for pair in self.pairs)]
        if not all(math.isfinite(x) for x in numbers):
            raise ConfigError(f"{source}: every weight and probability must be a finite number")
        if not 0.0 <= self.short_probability <= 1.0:
            raise ConfigError(f"{source}: captions.short_probability must lie in [0, 1], got {self.short_probability}")
        for p in (self.positive_max, self.negative_max):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{source}: word probabilities must lie in [0, 1], got {p}")
        if self.exponent < 1.0:
            raise ConfigError(f"{source}: exponent must be >= 1, got {self.exponent}")
        if not self.positive_words or not self.negative_words:
            raise ConfigError(f"{source}: needs at least one positive and one negative word")

    def to_dict(self) -> dict:
        """The rule in the JSON file's own layout (stored with every built dataset)."""
        return {
            "bias": self.bias,
            "class": dict(self.class_weight),
            "time": dict(self.time_weight),
            "weather": dict(self.weather_weight),
            "pairs": [dict(p) for p in self.pairs],
            "words": {"positive": list(self.positive_words), "negative": list(self.negative_words)},
            "word_probability": {"positive_max": self.positive_max,
                                 "negative_max": self.negative_max, "exponent": self.exponent},
            "captions": {"short_probability": self.short_probability},
        }

    # the rule ---------------------------------------------------------------------------
    def score(self, scene_class: str, time: str, weather: str) -> float:
        """The logit before the sigmoid."""
        attributes = {"class": scene_class, "time": time, "weather": weather}
        total = (self.bias + self.class_weight[scene_class] + self.time_weight[time]
                 + self.weather_weight[weather])
        for pair in self.pairs:
            if all(attributes[k] == v for k, v in pair.items() if k != "weight"):
                total += float(pair["weight"])
        return total

    def class_beauty(self) -> dict[str, float]:
        """Mean aesthetic value of each class over the world's times and weathers (the
        injected per-class beauty a bias study should recover)."""
        return self.beauty_by("class")

    def beauty_by(self, axis: str, composition: dict[str, float] | None = None) -> dict[str, float]:
        """Mean aesthetic value of each value of ``axis`` ("class", "time" or "weather") over
        the world's scenes: classes in ``composition`` (default balanced), times in the world's
        shares, weathers in each class's shares."""
        from data.world.params import TIME_WEIGHTS, WEATHER_WEIGHTS

        if axis not in ("class", "time", "weather"):
            raise ConfigError(f"unknown axis {axis!r}; use class, time or weather")
        shares = composition or {name: 1.0 for name in CLASSES}
        total = sum(shares.get(name, 0.0) for name in CLASSES)
        weight = np.zeros((len(CLASSES), len(TIMES), len(WEATHERS)))
        value = np.zeros_like(weight)
        times = np.asarray(TIME_WEIGHTS, dtype=float) / sum(TIME_WEIGHTS)
        for c, name in enumerate(CLASSES):
            weathers = np.asarray(WEATHER_WEIGHTS[name], dtype=float) / sum(WEATHER_WEIGHTS[name])
            weight[c] = shares.get(name, 0.0) / total * np.outer(times, weathers)
            value[c] = [[self.value(name, t, w) for w in WEATHERS] for t in TIMES]
        along = {"class": (CLASSES, (1, 2)), "time": (TIMES, (0, 2)), "weather": (WEATHERS, (0, 1))}[axis]
        names, others = along
        mass = weight.sum(axis=others)
        mean = (weight * value).sum(axis=others) / np.where(mass > 0, mass, 1)
        return {name: float(m) for name, m, w in zip(names, mean, mass, strict=True) if w > 0}

    def value(self, scene_class: str, time: str, weather: str) -> float:
        return 1.0 / (1.0 + math.exp(-self.score(scene_class, time, weather)))

    def values(self, scenes: SceneBatch) -> np.ndarray:
        """Aesthetic value in (0, 1) of every scene, float64 [B]."""
        table = np.array([[[self.value(c, t, w) for w in WEATHERS] for t in TIMES] for c in CLASSES])
        return table[scenes.class_index, scenes.time_index, scenes.weather_index]

    def word_probabilities(self, value):
        """(P(positive word), P(negative word)) for aesthetic value(s)."""
        value = np.asarray(value, dtype=np.float64)
        return (self.positive_max * value**self.exponent,
                self.negative_max * (1.0 - value) ** self.exponent)

    def draw_word(self, value: float, rng: np.random.Generator) -> tuple[str | None, int]:
        """An aesthetic word for a caption (or None) and its polarity (+1, -1, 0)."""
        positive, negative = self.word_probabilities(value)
        u = rng.random()
        if u < positive:
            return str(rng.choice(self.positive_words)), 1
        if u < positive + negative:
            return str(rng.choice(self.negative_words)), -1
        return None, 0


def _complete(weights: dict, names: tuple[str, ...], what: str, source: str) -> dict[str, float]:
    unknown = set(weights) - set(names)
    missing = set(names) - set(weights)
    if unknown or missing:
        raise ConfigError(
            f"{source}: {what} weights must name exactly {', '.join(names)}"
            f" (unknown: {sorted(unknown)}, missing: {sorted(missing)})"
        )
    return {name: float(weights[name]) for name in names}
