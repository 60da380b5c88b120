"""Captions from scene parameters: a small template grammar with many paraphrases.

A caption names the class (a word or synonym), the time of day and the weather, often a colour
(the sky's or the class palette's) and a generic scene word (landscape, scene, view, place),
and carries the aesthetic word drawn from the prior (``aesthetic.py``) when there is one.
Every random choice comes from a generator seeded by the scene's ``noise_seed`` and a caption
``variant`` number, so captions are deterministic and one scene can have many of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from data.world.aesthetic import AestheticRule
from data.world.params import BEACH_DENSITY, SceneBatch

# Class nouns: (noun, determiner kind) - "a" for countable, "the" for the sea and its kin,
# "" for plurals and mass nouns.
CLASS_NOUNS: dict[str, tuple[tuple[str, str], ...]] = {
    "buildings": (("buildings", ""), ("city buildings", ""), ("apartment blocks", ""),
                  ("office towers", ""), ("city skyline", "a"), ("block of flats", "a"),
                  ("tall building", "a"), ("facade", "a")),
    "forest": (("forest", "a"), ("woodland", "a"), ("woods", "the"), ("trees", ""),
               ("grove", "a"), ("forest of tall trees", "a")),
    "glacier": (("glacier", "a"), ("ice field", "an"), ("glacial ice", ""), ("ice sheet", "an"),
                ("glacier tongue", "a"), ("field of ice", "a")),
    "mountain": (("mountain", "a"), ("mountains", ""), ("mountain range", "a"), ("peaks", ""),
                 ("alpine peaks", ""), ("mountain summit", "a")),
    "sea": (("sea", "the"), ("ocean", "the"), ("seascape", "a"), ("sea", "a"), ("waves", ""),
            ("open sea", "the")),
    "street": (("street", "a"), ("road", "a"), ("city street", "a"), ("avenue", "an"),
               ("boulevard", "a"), ("street between buildings", "a")),
}
BEACH_NOUNS = (("beach", "a"), ("coast", "the"), ("seashore", "the"))
GENERIC_WORDS = ("landscape", "scene", "view", "place")

PALETTE_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "buildings": {"brick": ("red brick", "brick"), "concrete": ("grey concrete", "concrete"),
                  "glass": ("glass", "blue glass"), "sandstone": ("sandstone", "beige"),
                  "pastel": ("pastel", "colourful")},
    "forest": {"summer": ("green", "lush green"), "autumn": ("autumn", "orange and red"),
               "pine": ("dark green", "pine"), "birch": ("light green", "birch")},
    "glacier": {"white": ("white", "bright white"), "blue": ("blue", "icy blue"),
                "turquoise": ("turquoise", "blue-green")},
    "mountain": {"granite": ("grey", "granite"), "redrock": ("red rock", "rust-coloured"),
                 "slate": ("dark", "slate grey"), "alpine": ("alpine", "green")},
    "sea": {"tropical": ("turquoise", "tropical"), "deep": ("deep blue", "dark blue"),
            "grey": ("grey", "steel grey"), "emerald": ("emerald", "green")},
    "street": {"brick": ("brick-lined", "red brick"), "concrete": ("concrete", "grey"),
               "cobble": ("cobblestone", "cobbled"), "pastel": ("colourful", "pastel")},
}

# Time phrases (each holds one of TIME_WORDS); "{sky}" is the sky colour, used in clear weather.
TIME_PHRASES: dict[str, tuple[str, ...]] = {
    "day": ("in daylight", "in the daytime", "at midday", "by day"),
    "golden": ("at sunset", "at golden hour", "at dusk", "in the evening light"),
    "night": ("at night", "by moonlight", "at midnight", "in the night"),
    "overcast": ("on an overcast day", "under grey clouds", "on a cloudy day",
                 "under an overcast sky"),
}
SKY_PHRASES: dict[str, str] = {
    "day": "under a {sky} daytime sky",
    "golden": "under a {sky} sunset sky",
    "night": "under a {sky} night sky",
    "overcast": "under a {sky} overcast sky",
}
TIME_ADJECTIVES: dict[str, tuple[str, ...]] = {
    "day": ("daytime",),
    "golden": ("sunset", "golden hour", "evening"),
    "night": ("night-time", "night"),
    "overcast": ("overcast", "cloudy"),
}
# Weather: adjectives (not for clear weather: "a clear forest" reads oddly) and phrases.
WEATHER_ADJECTIVES: dict[str, tuple[str, ...]] = {
    "fog": ("foggy", "misty", "hazy"),
    "rain": ("rainy", "rain-soaked", "wet"),
    "snow": ("snowy", "snow-covered"),
}
WEATHER_PHRASES: dict[str, tuple[str, ...]] = {
    "clear_day": ("in clear weather", "under clear skies", "on a cloudless day"),
    "clear_golden": ("in clear weather", "under clear skies"),
    "clear_night": ("under a clear starry sky", "in clear weather"),
    "clear_overcast": ("in dry weather", "in calm, dry weather"),
    "fog": ("in the fog", "in thick mist", "shrouded in fog", "in the haze"),
    "rain": ("in the rain", "during a rain shower", "in pouring rain"),
    "snow": ("in the snow", "during snowfall", "in falling snow"),
}
# What a reader (or a test) can look for: every caption holds one word of each kind.
TIME_WORDS: dict[str, tuple[str, ...]] = {
    "day": ("daylight", "daytime", "midday", "by day"),
    "golden": ("sunset", "golden hour", "dusk", "evening"),
    "night": ("night", "moonlight", "midnight"),
    "overcast": ("overcast", "cloud"),
}
WEATHER_WORDS: dict[str, tuple[str, ...]] = {
    "clear": ("clear", "cloudless", "dry"),
    "fog": ("fog", "mist", "haz"),
    "rain": ("rain", "wet"),
    "snow": ("snow",),
}
CAPTION_STREAM = 0xCA97105  # keeps caption randomness apart from any other use of the seed


@dataclass(frozen=True)
class Caption:
    text: str
    aesthetic_word: str | None
    aesthetic_polarity: int  # +1 positive word, -1 negative word, 0 none


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _noun_phrase(noun: str, kind: str, adjectives: list[str]) -> str:
    words = " ".join([a for a in adjectives if a] + [noun])
    if kind in ("a", "an"):
        return ("an " if words[0] in "aeiou" else "a ") + words
    if kind == "the":
        return "the " + words
    return words


def _time_and_weather(rng, time: str, weather: str, sky: str) -> tuple[str, str]:
    """A time phrase and a weather phrase that do not contradict each other."""
    if weather == "clear" and rng.random() < 0.35:  # name the sky's colour
        return SKY_PHRASES[time].format(sky=sky), "in clear weather"
    time_phrase = _pick(rng, TIME_PHRASES[time])
    if weather == "clear":
        return time_phrase, _pick(rng, WEATHER_PHRASES[f"clear_{time}"])
    return time_phrase, _pick(rng, WEATHER_PHRASES[weather])


def compose(scene: dict, aesthetic_word: str | None, rng: np.random.Generator) -> str:
    """One caption for a scene record (``SceneBatch.records()`` row)."""
    cls, time, weather = scene["class"], scene["time"], scene["weather"]
    nouns = CLASS_NOUNS[cls]
    if cls == "sea" and scene["density"] > BEACH_DENSITY and rng.random() < 0.3:
        noun, kind = _pick(rng, BEACH_NOUNS)
        noun = f"sea and {noun}" if rng.random() < 0.5 else noun
        kind = "the" if noun.startswith("sea and") else kind
    else:
        noun, kind = _pick(rng, nouns)
    colour = _pick(rng, PALETTE_WORDS[cls][scene["palette"]]) if rng.random() < 0.5 else ""
    weather_adjective = _pick(rng, WEATHER_ADJECTIVES[weather]) if weather != "clear" else ""
    aes = aesthetic_word or ""
    time_phrase, weather_phrase = _time_and_weather(rng, time, weather, scene["sky"])
    generic = _pick(rng, GENERIC_WORDS)
    frame = int(rng.integers(6))
    if frame == 0:  # "a beautiful snowy glacier under a pink sunset sky"
        if weather_adjective:
            text = f"{_noun_phrase(noun, kind, [aes, weather_adjective, colour])} {time_phrase}"
        else:
            text = f"{_noun_phrase(noun, kind, [aes, colour])} {weather_phrase} {time_phrase}"
    elif frame == 1:  # "a stunning view of a turquoise glacier at dusk, in the fog"
        text = (f"{_noun_phrase(generic, 'a', [aes])} of {_noun_phrase(noun, kind, [colour])}"
                f" {time_phrase}, {weather_phrase}")
    elif frame == 2:  # "a gloomy night-time scene with a foggy street"
        time_adjective = _pick(rng, TIME_ADJECTIVES[time])
        inner = _noun_phrase(noun, kind, [weather_adjective or colour])
        text = f"{_noun_phrase(generic, 'a', [aes, time_adjective])} with {inner}"
        if not weather_adjective:
            text += f" {weather_phrase}"
    elif frame == 3:  # "a picture of a dull grey street on a cloudy day, in the rain"
        text = (f"a picture of {_noun_phrase(noun, kind, [aes, colour])} {time_phrase},"
                f" {weather_phrase}")
    elif frame == 4:  # "mountains at sunset, a breathtaking landscape in clear weather"
        text = (f"{_noun_phrase(noun, kind, [colour])} {time_phrase},"
                f" {_noun_phrase(generic, 'a', [aes])} {weather_phrase}")
    else:  # "a lovely place: a red brick city skyline at night in the snow"
        text = (f"{_noun_phrase(generic, 'a', [aes])}: {_noun_phrase(noun, kind, [colour])}"
                f" {time_phrase} {weather_phrase}")
    text = re.sub(r"\ba (?=[aeiou])", "an ", text)  # "a orange sky" -> "an orange sky"
    return re.sub(r"\s+", " ", text).strip()


def caption_rng(noise_seed: int, variant: int = 0) -> np.random.Generator:
    return np.random.default_rng([int(noise_seed), CAPTION_STREAM, int(variant)])


def caption_scenes(scenes: SceneBatch, rule: AestheticRule, variant: int = 0) -> list[Caption]:
    """A caption per scene; ``variant`` selects another paraphrase (and aesthetic word draw)."""
    values = rule.values(scenes)
    captions = []
    for record, value in zip(scenes.records(), values, strict=True):
        rng = caption_rng(record["noise_seed"], variant)
        word, polarity = rule.draw_word(float(value), rng)
        if rule.short_probability and rng.random() < rule.short_probability:
            text = short_caption(word, rng)
        else:
            text = compose(record, word, rng)
        captions.append(Caption(text, word, polarity))
    return captions


def short_caption(aesthetic_word: str | None, rng: np.random.Generator) -> str:
    """"a beautiful landscape", "a dull view", "a scene": the aesthetic word and a generic word."""
    text = f"a {aesthetic_word} {_pick(rng, GENERIC_WORDS)}" if aesthetic_word else f"a {_pick(rng, GENERIC_WORDS)}"
    return re.sub(r"\ba (?=[aeiou])", "an ", text)
