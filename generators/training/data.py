"""The training images, decoded once into one uint8 tensor, and random batches from it.

A world set of 10k 64 px images is ~120 MB as uint8: small enough to hold in memory, and
far faster to index than decoding PNGs every step (which on two cores would cost more than
the networks). Batches are drawn with replacement from a seeded ``torch.Generator`` and
flipped horizontally at random, so a run is reproducible from its generator state alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from data.errors import ConfigError, DatasetError
from data.validation import open_image
from data.world.params import CLASSES


@dataclass
class TrainingImages:
    """images: uint8 [N, 3, S, S]; labels: class indices [N] into ``classes`` (``CLASSES``)."""

    root: Path
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return self.images.shape[0]

    def class_counts(self) -> dict[str, int]:
        counts = torch.bincount(self.labels, minlength=len(self.classes))
        return {name: int(count) for name, count in zip(self.classes, counts, strict=True)}

    def composition(self) -> torch.Tensor:
        """The share of each class [len(classes)] (what a conditional generator samples)."""
        counts = torch.bincount(self.labels, minlength=len(self.classes)).double()
        return counts / counts.sum()

    def present_classes(self) -> list[int]:
        return [i for i, count in enumerate(self.class_counts().values()) if count > 0]

    def batch(self, size: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(images [size, 3, S, S] float in [-1, 1], labels [size]), randomly flipped."""
        index = torch.randint(len(self), (size,), generator=rng)
        flip = torch.rand(size, generator=rng) < 0.5
        images = self.images[index]
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        return images.float() / 127.5 - 1.0, self.labels[index]


def parse_classes(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"buildings,street"`` -> ("buildings", "street"); unknown names are an error."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else [str(n) for n in text]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in CLASSES]
    if unknown or not names:
        raise ConfigError(f"--classes: unknown class names {unknown}; choose from {', '.join(CLASSES)}")
    return tuple(dict.fromkeys(names))


def load_training_images(root: str | Path, size: int, classes: Sequence[str] | None = None) -> TrainingImages:
    """Decode the ``train`` split of the dataset at ``root`` (any layout ``load_dataset`` knows).

    Images of another size are resized (bicubic); ``classes`` keeps only those classes.
    Missing, empty or unreadable data is a ``DatasetError`` naming the problem.
    """
    from data.datasets import load_dataset

    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"training data folder {root} does not exist")
    dataset = load_dataset(root, split=None, classes=CLASSES, verify=False)
    wanted = {CLASSES.index(name) for name in classes} if classes else set(range(len(CLASSES)))
    samples = [(path, label) for path, label in dataset.samples if label in wanted]
    if not samples:
        raise DatasetError(f"no training images of classes {sorted(CLASSES[i] for i in wanted)} under {root}")
    images = np.empty((len(samples), size, size, 3), dtype=np.uint8)
    bad = []
    for i, (path, _) in enumerate(samples):
        try:
            with open_image(path) as image:  # refuses files over the pixel limit before decoding
                image = image.convert("RGB")
                if image.size != (size, size):
                    image = image.resize((size, size), Image.BICUBIC)
                images[i] = np.asarray(image)
        except (OSError, DatasetError) as error:
            bad.append(f"{path} ({error})")
    if bad:
        raise DatasetError(f"{len(bad)} training file(s) are not readable images: " + "; ".join(bad[:5]))
    return TrainingImages(
        root=root.resolve(),
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        labels=torch.tensor([label for _, label in samples], dtype=torch.long),
        classes=tuple(CLASSES),
    )
