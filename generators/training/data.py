"""Where a trainer's batches come from: a dataset's images, or fresh renders of its world.

``TrainingImages``: the ``train`` split decoded once into one uint8 tensor. A world set of
10k 64 px images is ~120 MB as uint8: small enough to hold in memory, and far faster to
index than decoding PNGs every step (which on two cores would cost more than the networks).

``RenderedWorld``: a world dataset's recipe (``world.json``: its class composition) rendered
anew for every batch, so the discriminator never sees the same image twice. The world
renders about a thousand 64 px images a second on one core, a small cost beside a GAN step.

Both draw batches from a seeded ``torch.Generator`` and flip them horizontally at random, so
a run is reproducible from its generator state alone.
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
from data.world.params import CLASSES, sample_scenes
from data.world.render import render_scenes

WORLD_RECORD = "world.json"  # what data.world.builder writes beside a world's images


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
        return _flipped(self.images[index], rng), self.labels[index]


FRESH_SOURCE = "fresh renders of the world"  # what a run on a RenderedWorld records as its data's source


@dataclass
class RenderedWorld:
    """Fresh renders of the world whose recipe is recorded in ``root``; the same interface as
    ``TrainingImages``. ``counts`` are the world's planned train counts (its composition, and
    what a run records as its training data); ``image_size`` is the size rendered."""

    root: Path
    counts: dict[str, int]
    image_size: int
    classes: tuple[str, ...] = CLASSES

    def __len__(self) -> int:
        return sum(self.counts.values())

    def class_counts(self) -> dict[str, int]:
        return dict(self.counts)

    def composition(self) -> torch.Tensor:
        counts = torch.tensor([self.counts[name] for name in self.classes], dtype=torch.float64)
        return counts / counts.sum()

    def present_classes(self) -> list[int]:
        return [i for i, name in enumerate(self.classes) if self.counts[name] > 0]

    def batch(self, size: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` new scenes: classes drawn from the composition, the rest from the world."""
        labels = torch.multinomial(self.composition(), size, replacement=True, generator=rng)
        # The scene parameters come from numpy, seeded from the torch stream: reproducible.
        seed = int(torch.randint(2**62, (1,), generator=rng))
        scenes = sample_scenes([self.classes[k] for k in labels.tolist()], np.random.default_rng(seed))
        images = torch.from_numpy(render_scenes(scenes, self.image_size)).permute(0, 3, 1, 2)
        return _flipped(images, rng), labels


def grid_labels(images: TrainingImages | RenderedWorld, size: int) -> torch.Tensor:
    """Class labels [size] of a conditional model's sample grid: one row of 8 per class
    present, cycling, so the grid shows each class side by side."""
    present = images.present_classes()
    return torch.tensor([present[(i // 8) % len(present)] for i in range(size)])


def _flipped(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """uint8 [B, 3, S, S] -> float in [-1, 1], each image flipped left-right with chance 1/2."""
    flip = torch.rand(images.shape[0], generator=rng) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    return images.float() / 127.5 - 1.0


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


def rendered_world(root: str | Path, size: int, classes: Sequence[str] | None = None) -> RenderedWorld:
    """The world recorded in ``root/world.json``, to be rendered afresh at ``size`` px.

    ``classes`` keeps only those classes (their shares renormalised). A folder that is not a
    world dataset, or a record without train counts, is a ``DatasetError``.
    """
    import json

    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"training data folder {root} does not exist")
    record_path = root / WORLD_RECORD
    if not record_path.is_file():
        raise DatasetError(f"fresh renders need a world dataset: {root} has no {WORLD_RECORD} (make one with "
                           "`artbias data world`, or train on the folder's own images with --no-fresh-renders)")
    try:
        planned = json.loads(record_path.read_text())["counts"]
        counts = {name: int(planned.get(name, {}).get("train", 0)) for name in CLASSES}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise DatasetError(f"{record_path} is not a readable world record: {error}") from error
    if classes:
        counts = {name: (count if name in classes else 0) for name, count in counts.items()}
    if sum(counts.values()) <= 0 or min(counts.values()) < 0:
        raise DatasetError(f"the world in {root} plans no training images of classes "
                           f"{list(classes) if classes else list(CLASSES)}")
    return RenderedWorld(root=root.resolve(), counts=counts, image_size=size)
