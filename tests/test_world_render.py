"""The renderer: deterministic, batch-independent, any size >= 32, classes visibly distinct."""

import numpy as np
import pytest

from data.errors import ConfigError
from data.world.params import CLASSES, TIMES, WEATHERS, make_scenes, sample_scenes
from data.world.render import render_scenes


def mixed_scenes(n, seed=0):
    return sample_scenes([CLASSES[i % len(CLASSES)] for i in range(n)], np.random.default_rng(seed))


def test_same_scenes_render_identically():
    scenes = mixed_scenes(24)
    first, second = render_scenes(scenes), render_scenes(scenes)
    assert first.dtype == np.uint8 and first.shape == (24, 64, 64, 3)
    assert np.array_equal(first, second)


def test_a_scene_renders_the_same_alone_as_in_a_batch():
    scenes = mixed_scenes(18, seed=3)
    batch = render_scenes(scenes)
    for i in (0, 7, 17):
        assert np.array_equal(render_scenes(scenes.select([i]))[0], batch[i])


def test_different_seeds_give_different_pictures():
    images = render_scenes(mixed_scenes(12, seed=1))
    others = render_scenes(mixed_scenes(12, seed=2))
    assert not np.array_equal(images, others)
    # No two scenes in a batch are the same picture.
    flat = images.reshape(len(images), -1)
    assert len({row.tobytes() for row in flat}) == len(images)


@pytest.mark.parametrize("size", [32, 48, 96])
def test_any_size_from_32(size):
    images = render_scenes(mixed_scenes(6), size)
    assert images.shape == (6, size, size, 3)
    assert images.std() > 10  # a picture, not a flat colour


@pytest.mark.parametrize("size", [31, 0, 64.5])
def test_sizes_below_32_are_refused(size):
    with pytest.raises(ConfigError, match="size"):
        render_scenes(mixed_scenes(2), size)


def test_every_time_and_weather_changes_the_picture():
    base = dict(scene_class="street", palette="brick", noise_seed=5)
    times = [render_scenes(make_scenes(time=t, weather="clear", **base))[0] for t in TIMES]
    weathers = [render_scenes(make_scenes(time="day", weather=w, **base))[0] for w in WEATHERS]
    for group in (times, weathers):
        for a in range(len(group)):
            for b in range(a + 1, len(group)):
                assert np.abs(group[a].astype(int) - group[b].astype(int)).mean() > 3
    day, night = times[0], times[2]
    assert night.mean() < 0.6 * day.mean()


def _features(images: np.ndarray, grid: int = 8) -> np.ndarray:
    """Mean colour and horizontal/vertical edge energy on a coarse grid, brightness-normalised
    (so night and day scenes of a class look alike to the classifier)."""
    x = images.astype(np.float32) / 255
    b, h, w, _ = x.shape
    x = x / (x.mean(axis=(1, 2, 3), keepdims=True) + 0.05)
    cells = lambda a: a.reshape(b, grid, h // grid, grid, w // grid, *a.shape[3:]).mean(  # noqa: E731
        axis=(2, 4)).reshape(b, -1)
    grey = x.mean(axis=-1)
    dx = np.abs(np.diff(grey, axis=2, append=grey[:, :, -1:]))
    dy = np.abs(np.diff(grey, axis=1, append=grey[:, -1:, :]))
    return np.concatenate([cells(x), cells(dx), cells(dy)], axis=1)


def test_classes_are_visually_distinct():
    """A nearest-centroid classifier on tiny colour/edge features beats chance (1/6) by far."""
    train = mixed_scenes(240, seed=11)
    test = mixed_scenes(120, seed=12)
    f_train, f_test = _features(render_scenes(train, 32)), _features(render_scenes(test, 32))
    mean, std = f_train.mean(0), f_train.std(0) + 1e-6
    f_train, f_test = (f_train - mean) / std, (f_test - mean) / std
    centroids = np.stack([f_train[train.class_index == k].mean(0) for k in range(len(CLASSES))])
    distance = ((f_test[:, None, :] - centroids[None]) ** 2).sum(-1)
    accuracy = (distance.argmin(1) == test.class_index).mean()
    assert accuracy > 0.5, f"nearest-centroid accuracy {accuracy:.2f}"
