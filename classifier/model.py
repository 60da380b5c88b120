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
from classifier.protocol import Confusion
from data.errors import CheckpointError, ConfigError
from data.files import check_output_folder, replace_folder
from data.saved_model import load_state, read_config, read_weights, save_model, weights_record

FORMAT = "artbias-classifier/1"
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
PREDICT_CHUNK = 256  # images per forward pass when predicting


def check_images(images) -> None:
    """Images must be a tensor [batch, 3, H, W] (values in [-1, 1])."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(f"images must be a tensor [batch, 3, H, W] in [-1, 1], got {shape}")


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
    weights: dict | None = None  # {"path", "sha256"} of the weights file (data.saved_model.weights_record)

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
        """Calibrated class probabilities [B, C] of images [B,3,H,W] in [-1, 1] of any size.

        Images are resized (antialiased) to the model's size and normalised with the model's
        own mean and std; the logits are divided by the model's temperature. Gradients flow
        when the images require them (so a search can steer toward or away from a class).
        """
        from classifier.data import preprocess

        check_images(images)
        outputs = []
        with torch.set_grad_enabled(images.requires_grad):
            for start in range(0, len(images), PREDICT_CHUNK):
                chunk = (images[start : start + PREDICT_CHUNK].float().to(self.device).clamp(-1, 1) + 1) / 2
                logits = self.logits(preprocess(chunk, self.preprocessing))
                outputs.append(torch.softmax(logits.float() / self.temperature, dim=1))
        return torch.cat(outputs) if outputs else torch.empty(0, len(self.classes))

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features [B, D] of images [B,3,H,W] in [-1, 1], preprocessed as ``predict``
        does (the space the world Fréchet distance is measured in)."""
        from classifier.data import preprocess

        check_images(images)
        outputs = []
        for start in range(0, len(images), PREDICT_CHUNK):
            chunk = (images[start : start + PREDICT_CHUNK].float().to(self.device).clamp(-1, 1) + 1) / 2
            outputs.append(self.network.features(preprocess(chunk, self.preprocessing)).float().cpu())
        return torch.cat(outputs)

    @property
    def confusion(self) -> Confusion | None:
        """The confusion matrix measured when it was evaluated (on world renders for the zoo)."""
        if not self.evaluation or "confusion_matrix" not in self.evaluation:
            return None
        data = self.evaluation.get("data") or {}
        split = self.evaluation.get("split", "held-out")
        where = f"{data.get('root', 'its evaluation data')}, {split} split ({data.get('images', '?')} images)"
        return Confusion(self.evaluation["confusion_matrix"], where)

    def identity(self) -> dict:
        return {
            "kind": "classifier",
            "arch": self.arch.arch,
            "classes": list(self.classes),
            "temperature": self.temperature,
            "path": str(self.path) if self.path else None,
            "weights": dict(self.weights or {"path": None, "sha256": None}),
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
    """``out_dir`` as a path, after refusing a file, a read-only place, and a non-empty folder
    unless forced, and even then one that holds no earlier classifier."""
    return check_output_folder(out_dir, force=force, earlier=_is_saved_classifier, what="output folder")


def _is_saved_classifier(folder: Path) -> bool:
    """Whether ``folder`` holds a saved classifier (what ``--force`` may replace)."""
    return (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()


def save_classifier(
    classifier: SceneClassifier,
    out_dir: str | Path,
    *,
    history: list[dict] | None = None,
    card: str | None = None,
    force: bool = False,
) -> Path:
    """Write the classifier folder atomically (staged beside ``out_dir``, then renamed)."""
    out = check_output(out_dir, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.partial")
    staging.mkdir()
    try:
        save_model(staging, classifier.config_dict(), classifier.network.state_dict())
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
    classifier.path, classifier.weights = out, weights_record(out / WEIGHTS_FILE)
    return out


# -- loading -----------------------------------------------------------------------------------
def _resolve_folder(name_or_path: str | Path) -> tuple[Path, dict | None]:
    """The classifier's folder, and the preprocessing its catalogue entry records (if named)."""
    from data.weights.catalog import find_entry, get_entry, local_folder
    from data.weights.resolve import resolve_weights

    path = Path(name_or_path).expanduser()
    text = str(name_or_path)
    folder = local_folder(text)  # a catalogue name is never read as a folder
    if folder is not None:
        return folder, None
    if find_entry(text) is None and (path.exists() or "/" in text or os.sep in text):
        raise CheckpointError(f"classifier folder {path} does not exist or is not a folder")
    entry = get_entry(text)
    if entry.kind != "classifier":
        raise ConfigError(f"{text!r} is a {entry.kind} model, not a scene classifier")
    if entry.zoo is None:
        raise ConfigError(
            f"{text!r} is a published backbone, not a trained scene classifier; train one with "
            f"'artbias train classifier --weights imagenet ...' and load its output folder"
        )
    return Path(resolve_weights(entry)), entry.preprocessing


def _read_config(folder: Path) -> dict:
    config = read_config(folder, "classifier", CONFIG_FILE)
    missing = [k for k in ("arch", "classes", "preprocessing", "temperature") if k not in config]
    if missing:
        raise CheckpointError(f"{folder / CONFIG_FILE} lacks {missing}")
    return config


def load_classifier(name_or_path: str | Path, *, device: torch.device | str = "cpu") -> SceneClassifier:
    """A saved classifier from its folder or catalogue name (e.g. ``classifier-world``; then
    the preprocessing is the catalogue entry's, which the zoo's own config.json agrees with)."""
    folder, catalogue_preprocessing = _resolve_folder(name_or_path)
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
    state = read_weights(folder, "classifier", WEIGHTS_FILE)
    head = state.get("fc.weight")
    if head is None or head.ndim != 2:
        raise CheckpointError(f"{weights} has no classifier head (fc.weight)")
    if head.shape[0] != len(classes):
        raise CheckpointError(
            f"{weights} has a {head.shape[0]}-class head but {CONFIG_FILE} lists {len(classes)} classes {list(classes)}"
        )
    network = load_state(build_network(arch, len(classes)), state, str(weights), target=f"architecture {arch.arch!r}")

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
        preprocessing=dict(catalogue_preprocessing or config["preprocessing"]),
        temperature=temperature,
        training=dict(config.get("training", {})),
        evaluation=evaluation,
        path=folder,
        weights=weights_record(weights),
    )
    return classifier.to(device)
