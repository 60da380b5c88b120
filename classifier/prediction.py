"""Class probabilities for image files of any size, with any labeller.

Any :class:`~classifier.labellers.Labeller` that also has ``preprocessing`` (at least
``size``) works here: a trained :class:`SceneClassifier` or the CLIP
:class:`~classifier.zeroshot.ZeroShotClassifier`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from classifier.data import IMAGE_SUFFIXES, read_image, resize_and_crop
from data.errors import ArtbiasError, ConfigError


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
            with torch.no_grad():
                batches.append(model.predict(torch.stack(pending)).cpu())
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
