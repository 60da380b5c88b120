"""Prediction: class probabilities for image tensors and image files.

Any labeller with ``classes``, ``preprocessing`` (at least ``size``) and
``predict(images) -> probabilities`` works here: a trained :class:`SceneClassifier` or the
CLIP :class:`~classifier.zeroshot.ZeroShotClassifier`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from classifier.data import IMAGE_SUFFIXES, preprocess, read_image, resize_and_crop
from data.errors import ArtbiasError, ConfigError

CHUNK = 256


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(f"images must be a tensor [batch, 3, H, W] in [-1, 1], got {shape}")


def predict(model, images: torch.Tensor) -> torch.Tensor:
    """Calibrated probabilities [B, C] of images [B,3,H,W] in [-1, 1] of any size.

    Images are resized (antialiased) to the model's size and normalised with the model's own
    mean and std; the logits are divided by the model's temperature. Gradients flow when the
    images require them (so a search can steer toward or away from a class).
    """
    from classifier.model import SceneClassifier

    if not isinstance(model, SceneClassifier):
        return model.predict(images)
    _check_images(images)
    outputs = []
    with torch.set_grad_enabled(images.requires_grad):
        for start in range(0, len(images), CHUNK):
            chunk = (images[start : start + CHUNK].float().to(model.device).clamp(-1, 1) + 1) / 2
            logits = model.logits(preprocess(chunk, model.preprocessing))
            outputs.append(torch.softmax(logits.float() / model.temperature, dim=1))
    return torch.cat(outputs) if outputs else torch.empty(0, len(model.classes))


def load_model(spec: str, *, device: torch.device | str = "cpu"):
    """``clip:NAME`` -> a CLIP zero-shot labeller; anything else -> a saved classifier."""
    if spec.startswith("clip:"):
        from classifier.zeroshot import ZeroShotClassifier

        name = spec.removeprefix("clip:")
        if not name:
            raise ConfigError("'clip:' needs a CLIP name, e.g. clip:clip-world")
        return ZeroShotClassifier.from_name(name, device=device)
    from classifier.model import load_classifier

    return load_classifier(spec, device=device)


@dataclass
class Classified:
    """Per-file results: probabilities for files that could be read, a reason for the others."""

    classes: tuple[str, ...]
    paths: list[Path] = field(default_factory=list)
    probabilities: torch.Tensor | None = None
    failures: list[tuple[Path, str]] = field(default_factory=list)

    def rows(self) -> list[dict]:
        rows = []
        if self.probabilities is not None:
            for path, probs in zip(self.paths, self.probabilities.tolist(), strict=True):
                best = max(range(len(probs)), key=probs.__getitem__)
                rows.append({
                    "path": str(path),
                    "label": self.classes[best],
                    "confidence": probs[best],
                    "probabilities": dict(zip(self.classes, probs, strict=True)),
                })
        return rows


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders replaced by the image files inside them (recursively, sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(path)
    return found


def classify_files(model, paths: Sequence[str | Path], *, batch_size: int = 64, progress: bool = False) -> Classified:
    """Class probabilities of image files of any size; unreadable files are reported, not fatal."""
    from tqdm import tqdm

    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    result = Classified(tuple(model.classes))
    batches: list[torch.Tensor] = []
    pending: list[torch.Tensor] = []

    def flush():
        if pending:
            batches.append(predict(model, torch.stack(pending)).detach().cpu())
            pending.clear()

    for path in tqdm(expand_paths(paths), desc="classify", unit="image", disable=not progress):
        if not path.is_file():
            result.failures.append((path, "no such file"))
            continue
        try:
            pixels = read_image(path).float() / 255
        except ArtbiasError as error:
            result.failures.append((path, str(error).removeprefix(f"cannot read image {path}: ")))
            continue
        pending.append(resize_and_crop(pixels, model.preprocessing) * 2 - 1)
        result.paths.append(path)
        if len(pending) == batch_size:
            flush()
    flush()
    if batches:
        result.probabilities = torch.cat(batches)
    return result
