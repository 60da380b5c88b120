"""A CLIP zero-shot scene labeller with the classifier's interface.

Each class gets one text feature: the normalised mean of CLIP's features of every prompt
template (``prompts.json``) filled with the class name and each of its synonyms (for a world
attribute such as the time of day, with each of the value's phrases only: ``attribute_prompts``). An image's
class probabilities are the softmax of CLIP's logit scale times its cosine similarity to
those class features. Useful as an independent second opinion on the trained classifier, and
for real data where no scene classifier was trained.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from data.errors import ConfigError

PROMPTS_PATH = Path(__file__).with_name("prompts.json")
MAX_LOGIT_SCALE = 100.0  # CLIP clamps its learned scale to this during training


def default_prompts() -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    raw = json.loads(PROMPTS_PATH.read_text())
    return tuple(raw["templates"]), {k: tuple(v) for k, v in raw["synonyms"].items()}


def attribute_prompts(attribute: str) -> dict:
    """``ZeroShotClassifier`` options for a world attribute ("time", "weather"): its values as
    classes, its templates, and its phrases in place of the value names."""
    raw = json.loads(PROMPTS_PATH.read_text())["attributes"]
    if attribute not in raw or attribute == "about":
        raise ConfigError(f"no zero-shot prompts for attribute {attribute!r} in {PROMPTS_PATH.name}")
    phrases = raw[attribute]["phrases"]
    return {"classes": tuple(phrases), "templates": tuple(raw[attribute]["templates"]),
            "synonyms": {k: tuple(v) for k, v in phrases.items()}, "include_names": False,
            "attribute": attribute}


class ZeroShotClassifier:
    """``predict(images in [-1,1]) -> probabilities [B, C]`` over ``classes`` with a CLIP model."""

    def __init__(
        self,
        clip,
        classes: Sequence[str] | None = None,
        *,
        templates: Sequence[str] | None = None,
        synonyms: Mapping[str, Sequence[str]] | None = None,
        include_names: bool = True,
        attribute: str | None = None,
        chunk_size: int = 128,
    ):
        from data.world import CLASSES
        from search.scorer import ClipScorer

        default_templates, default_synonyms = default_prompts()
        self.clip = clip
        self.classes = tuple(classes) if classes is not None else CLASSES
        self.templates = tuple(templates) if templates is not None else default_templates
        self.synonyms = {k: tuple(v) for k, v in (synonyms if synonyms is not None else default_synonyms).items()}
        self.include_names = include_names  # False: a class's words are its synonyms (phrases) only
        self.attribute = attribute
        if not include_names and any(not self.synonyms.get(c) for c in self.classes):
            raise ConfigError("without class names every class needs at least one phrase")
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"zero-shot classes must be at least two distinct names, got {list(self.classes)}")
        if not self.templates or any("{}" not in t for t in self.templates):
            raise ConfigError(f"every zero-shot template needs a '{{}}' placeholder, got {list(self.templates)}")
        self.scorer = ClipScorer(clip, chunk_size=chunk_size)
        self.class_features = torch.stack([self.scorer.text_features(self.prompts(c)) for c in self.classes])
        scale = getattr(clip.model, "logit_scale", None)
        self.logit_scale = float(scale.exp().clamp(max=MAX_LOGIT_SCALE)) if scale is not None else MAX_LOGIT_SCALE

    @classmethod
    def from_name(cls, name: str, *, device: torch.device | str = "cpu", **options) -> ZeroShotClassifier:
        from search.clip import load_clip

        return cls(load_clip(name, device=device), **options)

    def prompts(self, class_name: str) -> list[str]:
        """Every text whose CLIP feature is averaged into the class's feature."""
        words = self.synonyms.get(class_name, ())
        words = (class_name, *words) if self.include_names else words
        return [template.format(word) for template in self.templates for word in words]

    @property
    def preprocessing(self) -> dict:
        size = self.clip.image_size
        return {
            "size": size, "resize_size": size, "interpolation": self.clip.interpolation,
            "mean": list(self.clip.mean), "std": list(self.clip.std),
        }

    @property
    def input_size(self) -> int:
        return self.clip.image_size

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Scaled cosine similarities [B, C] of images in [-1, 1] to the class features."""
        from classifier.model import check_images

        check_images(images)
        out = []
        with torch.set_grad_enabled(images.requires_grad):
            for start in range(0, len(images), self.scorer.chunk_size):
                features = self.scorer.image_features(images[start : start + self.scorer.chunk_size])
                out.append(self.logit_scale * features @ self.class_features.to(features.device).T)
        return torch.cat(out) if out else torch.empty(0, len(self.classes))

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(images), dim=1)

    @property
    def confusion(self) -> None:
        """Not measured: a zero-shot labeller comes with no confusion matrix."""
        return None

    def identity(self) -> dict:
        return {
            "kind": "zero-shot",
            "clip": dict(self.clip.identity) or {"name": self.clip.name},
            "classes": list(self.classes),
            "templates": list(self.templates),
            "synonyms": {c: list(self.synonyms.get(c, ())) for c in self.classes},
            "include_names": self.include_names,
            "attribute": self.attribute,
            "logit_scale": self.logit_scale,
        }
