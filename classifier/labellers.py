"""Labellers: whatever gives an artwork a class, behind one protocol and one name format.

A labeller is named by a *spec*, the string galleries and reports know it by:

- ``NAME`` or ``DIR``: a trained scene classifier (a catalogue name such as
  ``classifier-world``, or a folder written by ``artbias train classifier``);
- ``clip:CLIP``: CLIP zero-shot over the scene classes, with any CLIP name ``search.clip``
  accepts (``clip:clip-world``, ``clip:ViT-B-32/openai``, ``clip:DIR``).

This module is the only place that parses specs; the gallery asks it (``labeller_problem``,
``default_labeller``, ``is_zero_shot``, ``weights_needed``) instead of reading prefixes. The
protocol every labeller implements is in ``classifier.protocol``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from classifier.protocol import Confusion, Labeller, Labels, label
from data.errors import ConfigError

__all__ = [
    "Confusion", "Labeller", "LabellerSpec", "Labels", "default_labeller", "is_zero_shot", "label",
    "labeller_problem", "load_labeller", "parse_labeller", "weights_needed", "zero_shot_spec",
]
ZERO_SHOT_PREFIX = "clip:"


# -- specs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabellerSpec:
    spec: str
    kind: str  # "classifier" | "zero-shot"
    target: str  # the classifier's name or folder, or the CLIP's name

    @property
    def clip(self) -> str | None:
        """The CLIP a zero-shot labeller uses (None for a trained classifier)."""
        return self.target if self.kind == "zero-shot" else None


def parse_labeller(spec: str) -> LabellerSpec:
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("labeller name is empty")
    if spec.startswith(ZERO_SHOT_PREFIX):
        clip = spec.removeprefix(ZERO_SHOT_PREFIX)
        if not clip:
            raise ConfigError("labeller 'clip:' needs a CLIP name, e.g. clip:clip-world")
        return LabellerSpec(spec, "zero-shot", clip)
    return LabellerSpec(spec, "classifier", spec)


def zero_shot_spec(clip: str) -> str:
    """The spec of the zero-shot labeller that uses ``clip``."""
    return f"{ZERO_SHOT_PREFIX}{clip}"


def is_zero_shot(spec: str) -> bool:
    return spec.startswith(ZERO_SHOT_PREFIX)


def default_labeller(specs: Sequence[str]) -> str | None:
    """The labeller a report is about when none is named: the first trained classifier (a
    zero-shot CLIP may be the very model that steered the search), else the first one."""
    trained = [s for s in specs if not is_zero_shot(s)]
    return (trained or list(specs) or [None])[0]


def labeller_problem(spec: str) -> str | None:
    """Why ``spec`` names no labeller, or None when it does (nothing is loaded)."""
    try:
        parsed = parse_labeller(spec)
    except ConfigError as error:
        return str(error)
    if parsed.kind == "zero-shot":
        from search.clip import clip_problem

        problem = clip_problem(parsed.target)
        return f"labeller {spec!r}: {problem}" if problem else None
    path = Path(spec).expanduser()
    if path.is_dir():
        from classifier.model import CONFIG_FILE

        return None if (path / CONFIG_FILE).is_file() else f"labeller folder {path} has no {CONFIG_FILE}"
    if "/" in spec:
        return f"labeller folder {spec} does not exist"
    from data.weights.catalog import find_entry, suggest

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
    if parsed.kind == "zero-shot":
        from search.clip import weights_needed as clip_weights

        return clip_weights(parsed.target)
    return [] if Path(spec).expanduser().is_dir() else [spec]


def load_labeller(
    spec: str, *, device="cpu", clip_loader: Callable[[str], object] | None = None
) -> Labeller:
    """The labeller ``spec`` names. ``clip_loader(name)`` lets a caller share its CLIP models
    (a campaign scores and labels with one loaded CLIP)."""
    parsed = parse_labeller(spec)
    if parsed.kind == "zero-shot":
        from classifier.zeroshot import ZeroShotClassifier

        if clip_loader is not None:
            return ZeroShotClassifier(clip_loader(parsed.target))
        return ZeroShotClassifier.from_name(parsed.target, device=device)
    from classifier.model import load_classifier

    return load_classifier(spec, device=device)
