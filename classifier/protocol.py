"""The one protocol every labeller implements, and the labels it gives.

A labeller turns images into class probabilities and says who it is; when its errors were
measured it also carries its confusion matrix and where that was measured. The trained scene
classifier and the CLIP zero-shot labeller implement it; the campaign, the reports and
``artbias classify`` talk to this protocol and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Confusion:
    """A labeller's measured errors: counts, rows = true class, columns = predicted."""

    matrix: list[list[float]]
    source: str  # what it was measured on, e.g. "world renders, test split (1200 images)"


@runtime_checkable
class Labeller(Protocol):
    """What every labeller offers: its classes, probabilities for images, who it is."""

    classes: tuple[str, ...]

    def predict(self, images) -> torch.Tensor:  # noqa: F821 (torch imported lazily)
        """Class probabilities [B, C] of images [B, 3, H, W] in [-1, 1] of any size."""

    def identity(self) -> dict:
        """What results record about the labeller (kind, weights, settings)."""

    @property
    def confusion(self) -> Confusion | None:
        """Its confusion matrix and where it was measured, when known."""


@dataclass(frozen=True)
class Labels:
    """One labeller's verdict on a batch: the best class, its probability, all probabilities."""

    classes: tuple[str, ...]
    probabilities: np.ndarray  # [B, C]

    @property
    def predicted(self) -> list[str]:
        return [self.classes[i] for i in self.probabilities.argmax(axis=1)]

    @property
    def confidence(self) -> np.ndarray:
        return self.probabilities.max(axis=1)

    def as_dicts(self) -> list[dict]:
        """Per image: ``predicted``, ``confidence`` and ``probabilities`` as {class: p}."""
        return [
            {"predicted": name, "confidence": float(conf),
             "probabilities": {c: float(p) for c, p in zip(self.classes, probs, strict=True)}}
            for name, conf, probs in zip(self.predicted, self.confidence, self.probabilities, strict=True)
        ]


def label(labeller: Labeller, images) -> Labels:
    """``labeller``'s labels for a batch of images (no gradients)."""
    import torch

    with torch.no_grad():
        probabilities = labeller.predict(images).float().cpu().numpy()
    return Labels(tuple(labeller.classes), probabilities)
