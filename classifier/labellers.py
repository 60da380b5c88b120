"""Labellers: whatever gives an artwork a class, behind one protocol and one name format.

A labeller is named by a *spec*, the string galleries and reports know it by:

- ``NAME`` or ``DIR``: a trained classifier (a catalogue name such as ``classifier-world``,
  ``time-world`` or ``weather-world``, or a folder written by ``artbias train classifier``;
  a catalogue name never reads a folder of that name: write ``./NAME`` for it);
  its classes are whatever it was trained on: the scene classes, or the values of a world
  attribute (time of day, weather);
- ``clip:CLIP``: CLIP zero-shot over the scene classes, with any CLIP name ``search.clip``
  accepts (``clip:clip-world``, ``clip:ViT-B-32/openai``, ``clip:DIR``);
- ``clip-time:CLIP``, ``clip-weather:CLIP``: CLIP zero-shot over a world attribute's values
  (prompt sets in ``prompts.json``), for published models where no attribute classifier exists;
- ``human:NAME``: labels a person made (``artbias annotate import``); NAME is a simple
  identifier (a letter, then letters, digits, ``_``, ``.`` or ``-``, at most 64 characters);
- ``intended``: the class a class-conditional generator's latent asks for, recorded when the
  artwork is made; ``intended-time`` and ``intended-weather``: the time of day and weather,
  for generators that know them (``world-render``: the exact scene it drew).

The last two are *truth sources*, not models: they load no network and a campaign cannot list
them; the reports measure the model labellers' errors on generated images against them.

This module is the only place that parses specs; the gallery asks it (``labeller_problem``,
``default_labeller``, ``is_zero_shot``, ``is_truth_source``, ``attribute_of``,
``weights_needed``) instead of reading prefixes. The protocol every labeller implements is in
``classifier.protocol``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from classifier.protocol import Confusion, Labeller, Labels, label
from data.errors import ConfigError
from data.world.params import TIMES, WEATHERS

__all__ = [
    "ATTRIBUTES", "Confusion", "INTENDED", "Labeller", "LabellerSpec", "Labels", "attribute_of",
    "default_labeller", "human_spec", "intended_spec", "is_truth_source", "is_zero_shot", "label", "labeller_problem",
    "load_labeller", "parse_labeller", "weights_needed", "zero_shot_spec",
]
ZERO_SHOT_PREFIX = "clip:"
HUMAN_PREFIX = "human:"
INTENDED = "intended"
# World attributes a labeller may classify instead of the scene class: name -> values, in the
# order every dataset and classifier uses (the folder names sorted, as the world defines them).
ATTRIBUTES: dict[str, tuple[str, ...]] = {"time": TIMES, "weather": WEATHERS}
ATTRIBUTE_PREFIXES = {f"clip-{name}:": name for name in ATTRIBUTES}
INTENDED_ATTRIBUTES = {f"{INTENDED}-{name}": name for name in ATTRIBUTES}
HUMAN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
TRUTH_KINDS = ("human", "intended")


# -- specs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabellerSpec:
    spec: str
    kind: str  # "classifier" | "zero-shot" | "human" | "intended"
    target: str  # the classifier's name or folder, the CLIP's name, or the annotator's name
    attribute: str | None = None  # the world attribute labelled (None: scene classes)

    @property
    def clip(self) -> str | None:
        """The CLIP a zero-shot labeller uses (None for every other kind)."""
        return self.target if self.kind == "zero-shot" else None

    @property
    def is_truth(self) -> bool:
        """Labels whose truth is known (a person's, or the class the latent asked for)."""
        return self.kind in TRUTH_KINDS


def parse_labeller(spec: str) -> LabellerSpec:
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("labeller name is empty")
    if spec == INTENDED:
        return LabellerSpec(spec, "intended", INTENDED)
    if spec in INTENDED_ATTRIBUTES:
        return LabellerSpec(spec, "intended", INTENDED, INTENDED_ATTRIBUTES[spec])
    if spec.startswith(HUMAN_PREFIX):
        name = spec.removeprefix(HUMAN_PREFIX)
        if not HUMAN_NAME.fullmatch(name):
            raise ConfigError(
                f"annotator name {name!r} in {spec!r} is not a simple identifier (a letter, then letters, "
                "digits, '_', '.' or '-', at most 64 characters)"
            )
        return LabellerSpec(spec, "human", name)
    for prefix, attribute in ((ZERO_SHOT_PREFIX, None), *ATTRIBUTE_PREFIXES.items()):
        if spec.startswith(prefix):
            clip = spec.removeprefix(prefix)
            if not clip:
                raise ConfigError(f"labeller {prefix!r} needs a CLIP name, e.g. {prefix}clip-world")
            return LabellerSpec(spec, "zero-shot", clip, attribute)
    return LabellerSpec(spec, "classifier", spec)


def zero_shot_spec(clip: str, attribute: str | None = None) -> str:
    """The spec of the zero-shot labeller that uses ``clip`` (over an attribute's values when given)."""
    if attribute is None:
        return f"{ZERO_SHOT_PREFIX}{clip}"
    if attribute not in ATTRIBUTES:
        raise ConfigError(f"unknown attribute {attribute!r}; choose from {', '.join(ATTRIBUTES)}")
    return f"clip-{attribute}:{clip}"


def intended_spec(attribute: str | None = None) -> str:
    """The truth source of what a latent asks for: its class, or a world attribute's value."""
    if attribute is None:
        return INTENDED
    if attribute not in ATTRIBUTES:
        raise ConfigError(f"unknown attribute {attribute!r}; choose from {', '.join(ATTRIBUTES)}")
    return f"{INTENDED}-{attribute}"


def human_spec(annotator: str) -> str:
    """``human:NAME`` for an annotator (a bad name is a ``ConfigError``); a spec passes through."""
    spec = annotator if annotator.startswith(HUMAN_PREFIX) else f"{HUMAN_PREFIX}{annotator}"
    parse_labeller(spec)
    return spec


def is_zero_shot(spec: str) -> bool:
    return parse_labeller(spec).kind == "zero-shot"


def is_truth_source(spec: str) -> bool:
    """A human annotator or the intended class: labels to measure model labellers against."""
    return parse_labeller(spec).is_truth


def attribute_of(classes: Sequence[str]) -> str | None:
    """The world attribute a class list is the values of ("time", "weather"), None otherwise."""
    for name, values in ATTRIBUTES.items():
        if tuple(classes) == values:
            return name
    return None


def default_labeller(
    specs: Sequence[str], classes: Mapping[str, Sequence[str]] | None = None
) -> str | None:
    """The labeller a report is about when none is named: the first trained classifier (a
    zero-shot CLIP may be the very model that steered the search), else the first model
    labeller. Truth sources never; with ``classes`` (spec -> its classes) attribute
    labellers neither, while a scene labeller is there."""
    models = [s for s in specs if not is_truth_source(s)]
    if classes is not None:
        scene = [s for s in models if attribute_of(classes.get(s, ())) is None]
        models = scene or models
    trained = [s for s in models if not is_zero_shot(s)]
    return (trained or models or [None])[0]


def labeller_problem(spec: str) -> str | None:
    """Why ``spec`` names no labeller, or None when it does (nothing is loaded)."""
    try:
        parsed = parse_labeller(spec)
    except ConfigError as error:
        return str(error)
    if parsed.is_truth:
        return (f"labeller {spec!r} holds labels whose truth is known, not a model: human labels come "
                "from 'artbias annotate import', intended classes from class-conditional generators")
    if parsed.kind == "zero-shot":
        from search.clip import clip_problem

        problem = clip_problem(parsed.target)
        return f"labeller {spec!r}: {problem}" if problem else None
    from data.weights.catalog import find_entry, local_folder, suggest

    path = local_folder(spec)
    if path is not None:
        from classifier.model import CONFIG_FILE

        return None if (path / CONFIG_FILE).is_file() else f"labeller folder {path} has no {CONFIG_FILE}"
    if "/" in spec:
        return f"labeller folder {spec} does not exist"
    entry = find_entry(spec)
    if entry is None:
        return f"unknown labeller {spec!r}{suggest(spec, 'classifier')} (or clip:NAME for zero-shot)"
    if entry.kind != "classifier":
        return f"labeller {spec!r} is a {entry.kind} model, not a classifier"
    if entry.zoo is None:
        return f"labeller {spec!r} is a published backbone, not a trained scene classifier"
    return None


def weights_needed(spec: str) -> list[str]:
    """Catalogue names whose weights loading ``spec`` needs (for a check before a campaign)."""
    parsed = parse_labeller(spec)
    if parsed.is_truth:
        return []
    if parsed.kind == "zero-shot":
        from search.clip import weights_needed as clip_weights

        return clip_weights(parsed.target)
    from data.weights.catalog import local_folder

    return [] if local_folder(spec) is not None else [spec]


def load_labeller(
    spec: str, *, device="cpu", clip_loader: Callable[[str], object] | None = None
) -> Labeller:
    """The labeller ``spec`` names. ``clip_loader(name)`` lets a caller share its CLIP models
    (a campaign scores and labels with one loaded CLIP)."""
    parsed = parse_labeller(spec)
    if parsed.is_truth:
        raise ConfigError(f"labeller {spec!r} is a truth source (annotations or intended classes), "
                          "not a model: it labels no images")
    if parsed.kind == "zero-shot":
        from classifier.zeroshot import ZeroShotClassifier, attribute_prompts

        options = {} if parsed.attribute is None else attribute_prompts(parsed.attribute)
        if clip_loader is not None:
            return ZeroShotClassifier(clip_loader(parsed.target), **options)
        return ZeroShotClassifier.from_name(parsed.target, device=device, **options)
    from classifier.model import load_classifier

    return load_classifier(spec, device=device)
