"""Image folders on disk: layouts recognised, bad files reported all at once before training."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data.datasets import BadFilesError, check_dataset, detect_layout, load_dataset
from data.errors import DatasetError
from data.world import CLASSES
from data.world.builder import WorldConfig, build_world


def write_image(path: Path, value: int, size=(20, 16), fmt="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path, format=fmt)


def make_intel(root: Path, nested: bool) -> Path:
    for split in ("seg_train", "seg_test"):
        base = root / split / split if nested else root / split
        for k, name in enumerate(CLASSES):
            for i in range(2):
                write_image(base / name / f"{i}.jpg", 20 * k + i, fmt="JPEG")
    return root


@pytest.mark.parametrize("nested", [False, True])
def test_intel_layout(tmp_path, nested):
    root = make_intel(tmp_path, nested)
    layout, splits = detect_layout(root)
    assert layout == "intel" and set(splits) == {"train", "test"}
    train = load_dataset(root, "train")
    assert train.classes == CLASSES and len(train) == 12
    assert sorted(set(train.targets)) == list(range(6))
    image, label = train[5]
    assert isinstance(image, Image.Image) and image.mode == "RGB"
    assert CLASSES[label] == Path(train.samples[5][0]).parent.name


def test_world_layout_with_a_transform(tmp_path):
    out = build_world(tmp_path / "w", WorldConfig(n=24, seed=1, size=32, test_fraction=0.25),
                      progress=False)
    assert detect_layout(out)[0] == "world"

    def to_tensor(image):
        return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1

    test = load_dataset(out, "test", transform=to_tensor)
    assert len(test) == 6
    image, label = test[0]
    assert image.shape == (3, 32, 32) and image.min() >= -1 and image.max() <= 1
    loader = torch.utils.data.DataLoader(load_dataset(out, transform=to_tensor), batch_size=8)
    images, labels = next(iter(loader))
    assert images.shape == (8, 3, 32, 32) and labels.dtype == torch.int64


def test_class_indices_follow_the_fixed_order_even_when_classes_are_missing(tmp_path):
    write_image(tmp_path / "street" / "a.png", 10)
    write_image(tmp_path / "forest" / "b.png", 20)
    data = load_dataset(tmp_path)
    assert detect_layout(tmp_path)[0] == "folder"
    assert sorted(data.targets) == [CLASSES.index("forest"), CLASSES.index("street")]
    assert data.class_counts()["street"] == 1
    free = load_dataset(tmp_path, classes=None)  # any ImageFolder: classes from folder names
    assert free.classes == ("forest", "street")


def test_all_bad_files_are_reported_together(tmp_path):
    write_image(tmp_path / "sea" / "good.png", 100)
    (tmp_path / "sea" / "notes.txt").write_text("hello")
    (tmp_path / "sea" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    good = tmp_path / "street" / "truncated.jpg"
    write_image(good, 50, size=(64, 64), fmt="JPEG")
    good.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    (tmp_path / "street" / ".DS_Store").write_bytes(b"\0\0")  # hidden files are ignored
    with pytest.raises(BadFilesError) as caught:
        load_dataset(tmp_path)
    names = sorted(bad.path.name for bad in caught.value.bad)
    assert names == ["broken.png", "notes.txt", "truncated.jpg"]
    message = str(caught.value)
    assert all(name in message for name in names) and "skip_bad" in message
    assert isinstance(caught.value, DatasetError)


def test_skip_bad_warns_and_keeps_the_good_files(tmp_path):
    write_image(tmp_path / "sea" / "good.png", 100)
    (tmp_path / "sea" / "broken.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="broken.png"):
        data = load_dataset(tmp_path, skip_bad=True)
    assert len(data) == 1 and [b.path.name for b in data.skipped] == ["broken.png"]
    for i in range(len(data)):  # a whole epoch reads without error
        data[i]
    summary = check_dataset(tmp_path)
    assert summary["splits"]["all"]["sea"] == 1 and len(summary["bad"]) == 1


def test_clear_errors_for_unusable_folders(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "empty" / "sea").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images"):
        load_dataset(tmp_path / "empty")
    write_image(tmp_path / "odd" / "lakes" / "a.png", 1)
    with pytest.raises(DatasetError, match="lakes"):
        load_dataset(tmp_path / "odd")
    make_intel(tmp_path / "intel", nested=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DatasetError, match="no 'val' split"):
            load_dataset(tmp_path / "intel", "val")
