"""Image datasets on disk: any ImageFolder tree, the Intel Image Classification layout, worlds.

Layouts recognised under a root folder:

* Intel Image Classification: ``seg_train/`` and ``seg_test/`` (each possibly nested once more,
  as in the Kaggle archive: ``seg_train/seg_train/<class>/``), splits "train" and "test";
* a built world (``artbias data world``): ``train/`` and ``test/``;
* otherwise the root itself holds the class folders: split "all".

Every file is checked before training starts: files that are not images, unreadable or corrupt
are reported together in one ``DatasetError`` (or dropped with a warning when
``skip_bad=True``), so a bad file never stops an epoch halfway. Class indices follow a fixed
order, by default the six scene classes in ``CLASSES`` (alphabetical).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from data.errors import DatasetError
from data.validation import open_image
from data.world.params import CLASSES

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
SPLIT_FOLDERS = {
    "intel": {"train": "seg_train", "test": "seg_test"},
    "world": {"train": "train", "test": "test"},
}


@dataclass(frozen=True)
class BadFile:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path} ({self.reason})"


class BadFilesError(DatasetError):
    """Some files of a dataset are not readable images; ``bad`` lists every one of them."""

    def __init__(self, root: Path, bad: Sequence[BadFile]):
        self.root, self.bad = root, list(bad)
        listing = "; ".join(str(b) for b in self.bad)
        super().__init__(
            f"{len(self.bad)} file(s) under {root} are not readable images: {listing}"
            " (remove them, or load with skip_bad=True to skip them with a warning)"
        )


def detect_layout(root: str | Path) -> tuple[str, dict[str, Path]]:
    """The layout name ("intel", "world" or "folder") and its split folders."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist or is not a directory")
    for layout, folders in SPLIT_FOLDERS.items():
        splits = {}
        for split, name in folders.items():
            folder = root / name
            if folder.is_dir():
                nested = folder / name  # the Kaggle archive nests seg_train/seg_train/
                splits[split] = nested if nested.is_dir() else folder
        if splits:
            return layout, splits
    return "folder", {"all": root}


def _check_image(path: Path) -> str | None:
    """None if ``path`` decodes as an image, else why not."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return "not an image file"
    try:
        with open_image(path) as image:  # refuses images over the pixel limit before decoding
            image.load()  # a full decode: truncated and corrupt files fail here, not mid-epoch
    except DatasetError as error:  # unreadable, or over the pixel limit
        reason = str(error)
        prefix = f"cannot read image {path}: "
        return "unreadable: " + reason.removeprefix(prefix) if reason.startswith(prefix) else reason
    except OSError as error:  # PIL raises OSError subclasses (UnidentifiedImageError, ...)
        return f"unreadable: {error}"
    except Exception as error:  # noqa: BLE001 - a decoder bug is still a bad file to report
        return f"unreadable: {type(error).__name__}: {error}"
    return None


def scan_image_folder(
    folder: str | Path, classes: Sequence[str] | None = CLASSES, verify: bool = True
) -> tuple[list[tuple[Path, int]], list[BadFile], tuple[str, ...]]:
    """(samples as (path, class index), bad files, class names) of one ImageFolder split.

    ``classes`` fixes the class order (folders not in it are an error); ``None`` uses the
    sorted folder names. Hidden files (".DS_Store") are ignored; files outside class folders
    too, as torchvision's ImageFolder does.
    """
    folder = Path(folder)
    found = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is None:
        classes = tuple(found)
    else:
        classes = tuple(classes)
        unknown = [name for name in found if name not in classes]
        if unknown:
            raise DatasetError(
                f"{folder} has class folders {unknown} outside the expected classes"
                f" {', '.join(classes)}"
            )
    samples: list[tuple[Path, int]] = []
    bad: list[BadFile] = []
    for index, name in enumerate(classes):
        class_folder = folder / name
        if not class_folder.is_dir():
            continue  # a class a dataset lacks (a world built without it) is fine
        for directory, subdirs, files in sorted(os.walk(class_folder)):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for file in sorted(files):
                if file.startswith("."):
                    continue
                path = Path(directory) / file
                problem = _check_image(path) if verify else (
                    None if path.suffix.lower() in IMAGE_SUFFIXES else "not an image file")
                if problem is None:
                    samples.append((path, index))
                else:
                    bad.append(BadFile(path, problem))
    return samples, bad, classes


class ImageFolderDataset(Dataset):
    """A labelled image split: ``dataset[i] -> (transform(PIL RGB image), class index)``.

    Attributes follow torchvision's ImageFolder: ``classes``, ``class_to_idx``, ``samples``,
    ``targets``. Build it with ``load_dataset``.
    """

    def __init__(
        self,
        folder: str | Path,
        classes: Sequence[str] | None = CLASSES,
        transform: Callable | None = None,
        skip_bad: bool = False,
        verify: bool = True,
    ):
        self.root = Path(folder)
        samples, bad, self.classes = scan_image_folder(self.root, classes, verify)
        if bad and not skip_bad:
            raise BadFilesError(self.root, bad)
        if bad:
            warnings.warn(
                f"skipping {len(bad)} bad file(s) under {self.root}: "
                + "; ".join(str(b) for b in bad[:5]) + (" ..." if len(bad) > 5 else ""),
                stacklevel=2,
            )
        if not samples:
            raise DatasetError(f"no images found under {self.root}")
        self.skipped = bad
        self.samples = samples
        self.targets = [label for _, label in samples]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            with open_image(path) as image:
                image = image.convert("RGB")
        except OSError as error:  # changed on disk since the scan
            raise DatasetError(f"cannot read image {path}: {error}") from error
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def class_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.classes, 0)
        for label in self.targets:
            counts[self.classes[label]] += 1
        return counts


def load_dataset(
    root: str | Path,
    split: str | None = None,
    transform: Callable | None = None,
    classes: Sequence[str] | None = CLASSES,
    skip_bad: bool = False,
    verify: bool = True,
) -> ImageFolderDataset:
    """One split of the dataset at ``root`` (any recognised layout).

    ``split`` is "train" or "test" for the Intel and world layouts (default "train") and
    "all" (the default) for a plain ImageFolder.
    """
    layout, splits = detect_layout(root)
    if split is None:
        split = "train" if "train" in splits else next(iter(splits))
    if split not in splits:
        raise DatasetError(
            f"{root} ({layout} layout) has no {split!r} split; it has {', '.join(splits)}"
        )
    return ImageFolderDataset(splits[split], classes, transform, skip_bad, verify)


def check_dataset(root: str | Path, classes: Sequence[str] | None = CLASSES) -> dict:
    """Scan every split; a summary with per-class counts and all bad files (nothing raised)."""
    layout, splits = detect_layout(root)
    summary: dict = {"root": str(root), "layout": layout, "splits": {}, "bad": []}
    for split, folder in splits.items():
        samples, bad, names = scan_image_folder(folder, classes)
        counts = dict.fromkeys(names, 0)
        for _, label in samples:
            counts[names[label]] += 1
        summary["splits"][split] = counts
        summary["bad"].extend(str(b) for b in bad)
    return summary
