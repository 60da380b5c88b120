"""Scene classifier: torchvision-style ResNets, training, evaluation, calibration, prediction.

Public API: the ``Labeller`` protocol and ``load_labeller`` (``classifier.labellers``),
``load_classifier``, ``save_classifier``, ``classify_files``, ``SceneClassifier``,
``train_classifier`` / ``TrainConfig`` and, in ``classifier.zeroshot``, the CLIP
``ZeroShotClassifier``. The names are imported on first use so that the ``artbias``
command can register this package's subcommands without importing torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SceneClassifier": "classifier.model",
    "load_classifier": "classifier.model",
    "save_classifier": "classifier.model",
    "Labeller": "classifier.labellers",
    "load_labeller": "classifier.labellers",
    "classify_files": "classifier.prediction",
    "TrainConfig": "classifier.train",
    "train_classifier": "classifier.train",
    "ZeroShotClassifier": "classifier.zeroshot",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'classifier' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
