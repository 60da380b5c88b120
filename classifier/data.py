"""Image folders for the classifier: finding splits, reading files, the train/eval transforms.

Splits: ``train`` is ``DIR/train`` (world layout) or ``DIR/seg_train`` (Intel Image
Classification layout), ``test`` is ``DIR/test`` or ``DIR/seg_test``; a ``DIR`` whose
sub-folders are the classes themselves serves as every split. The project's dataset scanner
(``data.datasets``) finds the layout and reports every bad file before training starts.

One preprocessing function (:func:`preprocess`) serves evaluation and prediction alike, so a
model sees exactly the same pixels whether it is evaluated on files or called on tensors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from data.datasets import IMAGE_SUFFIXES, BadFilesError, detect_layout, scan_image_folder
from data.errors import DatasetError

__all__ = ["IMAGE_SUFFIXES", "ImageSplit", "load_split", "preprocess", "resize_and_crop"]



@dataclass(frozen=True)
class ImageSplit:
    """The labelled files of one split: class names in index order and (path, class index)."""

    root: Path
    classes: tuple[str, ...]
    samples: tuple[tuple[Path, int], ...]

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]

    def class_counts(self) -> list[int]:
        counts = [0] * len(self.classes)
        for label in self.labels:
            counts[label] += 1
        return counts

    def subset(self, indices) -> ImageSplit:
        return ImageSplit(self.root, self.classes, tuple(self.samples[i] for i in indices))

    def relabelled(self, classes: tuple[str, ...]) -> ImageSplit:
        """The same files indexed in another class order (a model's); unknown classes raise."""
        unknown = [c for c in self.classes if c not in classes]
        if unknown:
            raise DatasetError(
                f"{self.root}: classes {unknown} are not among the model's classes {list(classes)}"
            )
        mapping = [classes.index(c) for c in self.classes]
        return ImageSplit(self.root, classes, tuple((p, mapping[i]) for p, i in self.samples))

    def identity(self) -> dict:
        """What identifies the data: folder, counts, and a digest of relative paths and sizes."""
        digest = hashlib.sha256()
        for path, label in sorted(self.samples):
            digest.update(f"{path.relative_to(self.root)}\t{path.stat().st_size}\t{label}\n".encode())
        return {
            "root": str(self.root.resolve()),
            "images": len(self.samples),
            "class_counts": dict(zip(self.classes, self.class_counts(), strict=True)),
            "files_sha256": digest.hexdigest(),
        }


def split_dir(data_dir: str | Path, split: str) -> Path:
    """The folder of ``split`` inside ``data_dir`` (see module docstring)."""
    layout, splits = detect_layout(Path(data_dir).expanduser())
    if split in splits:
        return splits[split]
    if layout == "folder":
        return splits["all"]  # a plain ImageFolder serves as every split
    raise DatasetError(f"dataset {data_dir} ({layout} layout) has no {split!r} split; it has {', '.join(splits)}")


def has_split(data_dir: str | Path, split: str) -> bool:
    """True when ``data_dir`` has a folder of its own for ``split``."""
    return split in detect_layout(Path(data_dir).expanduser())[1]


def load_split(data_dir: str | Path, split: str) -> ImageSplit:
    """The labelled image files of ``split`` (``train`` or ``test``) in ``data_dir``.

    Every file is decoded once first; all bad files are reported together before any
    training or evaluation starts. Classes are the split's non-empty class folders, sorted
    (for the scene classes, the project's fixed alphabetical order).
    """
    folder = split_dir(data_dir, split)
    samples, bad, classes = scan_image_folder(folder, classes=None, verify=True)
    if bad:
        raise BadFilesError(folder, bad)
    present = sorted({label for _, label in samples})
    if not present:
        raise DatasetError(f"{folder} holds no images")
    kept = tuple(classes[i] for i in present)  # empty class folders would be classes never seen
    remap = {old: new for new, old in enumerate(present)}
    return ImageSplit(folder, kept, tuple((Path(p), remap[i]) for p, i in samples))


def stratified_split(split: ImageSplit, fraction: float, seed: int) -> tuple[ImageSplit, ImageSplit]:
    """Carve a validation part of ``fraction`` of every class (at least one image each)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.tensor(split.labels)
    keep, held = [], []
    for index in range(len(split.classes)):
        members = torch.nonzero(labels == index).flatten()
        if len(members) == 0:
            continue
        members = members[torch.randperm(len(members), generator=generator)]
        n_held = max(1, round(fraction * len(members))) if len(members) > 1 else 0
        held += members[:n_held].tolist()
        keep += members[n_held:].tolist()
    return split.subset(sorted(keep)), split.subset(sorted(held))


# -- pixels ------------------------------------------------------------------------------------
def read_image(path: Path) -> torch.Tensor:
    """An image file as a uint8 tensor [3, H, W]; unreadable files, and files of more pixels
    than ``data.validation.Limits.input_pixels``, raise ``DatasetError``."""
    from data.validation import open_image

    try:
        with open_image(path) as image:
            return TF.pil_to_tensor(image.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as error:  # Pillow's errors for broken files
        raise DatasetError(f"cannot read image {path}: {error}") from None


def resize_and_crop(images: torch.Tensor, preprocessing: dict) -> torch.Tensor:
    """Images of another size than the model's: shorter side to ``resize_size`` (antialiased),
    then a centre crop to ``size``. Images already of the model's size pass unchanged."""
    size = int(preprocessing["size"])
    if tuple(images.shape[-2:]) == (size, size):
        return images
    resize = int(preprocessing.get("resize_size", size))
    interpolation = InterpolationMode(preprocessing.get("interpolation", "bilinear"))
    images = TF.resize(images, resize, interpolation=interpolation, antialias=True)
    return TF.center_crop(images, [size, size])


def preprocess(images: torch.Tensor, preprocessing: dict) -> torch.Tensor:
    """Images [B,3,H,W] (or [3,H,W]) in [0,1] -> model input: resized and normalised."""
    images = resize_and_crop(images, preprocessing)
    return TF.normalize(images, list(preprocessing["mean"]), list(preprocessing["std"]))


def train_transform(preprocessing: dict, crop_scale=(0.7, 1.0)) -> v2.Compose:
    """Standard augmentations: random resized crop, horizontal flip, mild colour jitter.

    Colour jitter stays mild (no strong hue shift) because colour separates some classes
    (glacier ice vs grey rock, sea vs sky).
    """
    size = int(preprocessing["size"])
    return v2.Compose([
        v2.RandomResizedCrop(size, scale=tuple(crop_scale), antialias=True,
                             interpolation=InterpolationMode(preprocessing.get("interpolation", "bilinear"))),
        v2.RandomHorizontalFlip(),
        v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.15, hue=0.02),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(preprocessing["mean"]), list(preprocessing["std"])),
    ])


def eval_transform(preprocessing: dict):
    def transform(image: torch.Tensor) -> torch.Tensor:
        return preprocess(image.float() / 255, preprocessing)

    return transform


class ImageFileDataset(Dataset):
    """(image tensor, class index) pairs of an ``ImageSplit`` through a transform."""

    def __init__(self, split: ImageSplit, transform):
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        path, label = self.split.samples[index]
        return self.transform(read_image(path)), label
