"""A saved scene classifier: one folder holding everything needed to use and trust it.

Layout (written by :func:`save_classifier`, read by :func:`load_classifier`)::

    config.json        architecture config, class names in index order, preprocessing
                       (mean, std, size, interpolation), temperature, training settings,
                       seed, data identity, versions
    model.safetensors  the network's weights
    evaluation.json    confusion matrix (rows = true class, columns = predicted, in class
                       order), accuracy, per-class precision/recall, ECE before/after
                       temperature scaling (the bias statistics correct with these)
    confusion.png      the confusion matrix as a heatmap
    card.md            model card: data, recipe, metrics, the command that reproduces it
    history.json       per-epoch training metrics (when trained by artbias)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch

from classifier.architectures import ArchConfig, SceneResNet, build_network
from data.errors import CheckpointError, ConfigError
from data.files import replace_folder

FORMAT = "artbias-classifier/1"
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
EVALUATION_FILE, CONFUSION_FILE, CARD_FILE, HISTORY_FILE = (
    "evaluation.json", "confusion.png", "card.md", "history.json",
)


@dataclass
class SceneClassifier:
    """A network with its class names, preprocessing and calibration temperature."""

    network: SceneResNet
    arch: ArchConfig
    classes: tuple[str, ...]
    preprocessing: dict
    temperature: float = 1.0
    training: dict = field(default_factory=dict)
    evaluation: dict | None = None
    path: Path | None = None

    def __post_init__(self):
        self.network.eval()

    @property
    def input_size(self) -> int:
        return int(self.preprocessing["size"])

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def to(self, device: torch.device | str) -> SceneClassifier:
        self.network.to(device)
        return self

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """Uncalibrated logits of already preprocessed inputs (see ``classifier.data.preprocess``)."""
        return self.network(inputs.to(self.device))

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Calibrated class probabilities [B, C] of images [B,3,H,W] in [-1,1], any size."""
        from classifier.prediction import predict

        return predict(self, images)

    def identity(self) -> dict:
        return {
            "kind": "classifier",
            "arch": self.arch.arch,
            "classes": list(self.classes),
            "temperature": self.temperature,
            "path": str(self.path) if self.path else None,
        }

    def config_dict(self) -> dict:
        from data.provenance import versions

        return {
            "format": FORMAT,
            "arch": self.arch.to_dict(),
            "classes": list(self.classes),
            "num_classes": len(self.classes),
            "preprocessing": self.preprocessing,
            "temperature": self.temperature,
            "training": self.training,
            "versions": versions(),
        }


# -- saving ------------------------------------------------------------------------------------
def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")


def check_output(out_dir: str | Path, force: bool) -> Path:
    """``out_dir`` as a path, after refusing to replace anything but an empty folder unless forced."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"output folder {out} is not empty; choose another or pass --force")
    return out


def save_classifier(
    classifier: SceneClassifier,
    out_dir: str | Path,
    *,
    history: list[dict] | None = None,
    card: str | None = None,
    force: bool = False,
) -> Path:
    """Write the classifier folder atomically (staged beside ``out_dir``, then renamed)."""
    from safetensors.torch import save_file

    out = check_output(out_dir, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.partial")
    staging.mkdir()
    try:
        _write_json(staging / CONFIG_FILE, classifier.config_dict())
        state = {k: v.detach().cpu().contiguous() for k, v in classifier.network.state_dict().items()}
        save_file(state, str(staging / WEIGHTS_FILE))
        (staging / WEIGHTS_FILE).chmod(0o644)  # safetensors creates it owner-only
        if classifier.evaluation is not None:
            from classifier.evaluate import plot_confusion

            _write_json(staging / EVALUATION_FILE, classifier.evaluation)
            plot_confusion(classifier.evaluation, staging / CONFUSION_FILE)
        if history is not None:
            _write_json(staging / HISTORY_FILE, history)
        if card is not None:
            (staging / CARD_FILE).write_text(card)
        replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    classifier.path = out
    return out


# -- loading -----------------------------------------------------------------------------------
def _resolve_folder(name_or_path: str | Path) -> Path:
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    text = str(name_or_path)
    if path.exists() or "/" in text or os.sep in text:
        raise CheckpointError(f"classifier folder {path} does not exist or is not a folder")
    from data.weights.catalog import get_entry
    from data.weights.resolve import resolve_weights

    entry = get_entry(text)
    if entry.kind != "classifier":
        raise ConfigError(f"{text!r} is a {entry.kind} model, not a scene classifier")
    if entry.zoo is None:
        raise ConfigError(
            f"{text!r} is a published backbone, not a trained scene classifier; train one with "
            f"'artbias train classifier --weights imagenet ...' and load its output folder"
        )
    return Path(resolve_weights(entry))


def _read_config(folder: Path) -> dict:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"classifier folder {folder} lacks {CONFIG_FILE}")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from None
    missing = [k for k in ("arch", "classes", "preprocessing", "temperature") if k not in config]
    if missing:
        raise CheckpointError(f"{path} lacks {missing}")
    return config


def load_classifier(name_or_path: str | Path, *, device: torch.device | str = "cpu") -> SceneClassifier:
    """A saved classifier from its folder or catalogue name (e.g. ``classifier-world``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = _resolve_folder(name_or_path)
    config = _read_config(folder)
    try:
        arch = ArchConfig.from_dict(config["arch"])
    except ConfigError as error:
        raise CheckpointError(f"{folder / CONFIG_FILE}: {error}") from None
    classes = tuple(str(c) for c in config["classes"])
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise CheckpointError(f"{folder / CONFIG_FILE}: class list {list(classes)} is not a list of distinct names")
    if config.get("num_classes", len(classes)) != len(classes):
        raise CheckpointError(
            f"{folder / CONFIG_FILE}: num_classes {config['num_classes']} differs from its {len(classes)} class names"
        )
    temperature = float(config["temperature"])
    if not math.isfinite(temperature) or temperature <= 0:
        raise CheckpointError(f"{folder / CONFIG_FILE}: temperature {temperature} must be a positive number")

    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"classifier folder {folder} lacks {WEIGHTS_FILE}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{weights} is corrupt or truncated: {error}") from None
    head = state.get("fc.weight")
    if head is None or head.ndim != 2:
        raise CheckpointError(f"{weights} has no classifier head (fc.weight)")
    if head.shape[0] != len(classes):
        raise CheckpointError(
            f"{weights} has a {head.shape[0]}-class head but {CONFIG_FILE} lists {len(classes)} classes {list(classes)}"
        )
    network = build_network(arch, len(classes))
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[:3]
        raise CheckpointError(f"{weights} does not match architecture {arch.arch!r}: {' '.join(first)}") from None

    evaluation = None
    if (folder / EVALUATION_FILE).is_file():
        try:
            evaluation = json.loads((folder / EVALUATION_FILE).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{folder / EVALUATION_FILE} is not valid JSON: {error}") from None
    classifier = SceneClassifier(
        network=network,
        arch=arch,
        classes=classes,
        preprocessing=dict(config["preprocessing"]),
        temperature=temperature,
        training=dict(config.get("training", {})),
        evaluation=evaluation,
        path=folder,
    )
    return classifier.to(device)
