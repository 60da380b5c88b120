"""DiffAugment for the discriminator: differentiable, reproducible, and each operation as stated."""

from __future__ import annotations

import pytest
import torch

from data.errors import ConfigError
from generators.training import load_train_config
from generators.training.augment import CUTOUT_RATIO, augment, check_policy


def _images(batch: int = 8, size: int = 32) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_gradients_reach_the_generator_through_every_augmentation():
    images = _images().requires_grad_(True)
    out = augment(images, ("color", "translation", "cutout"), torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    out.square().sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_the_same_generator_state_gives_the_same_augmentation():
    images = _images()
    policy = ("color", "translation", "cutout")
    first = augment(images, policy, torch.Generator().manual_seed(5))
    again = augment(images, policy, torch.Generator().manual_seed(5))
    other = augment(images, policy, torch.Generator().manual_seed(6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_translation_moves_whole_pixels_and_pads_with_zeros():
    images = _images(batch=16)
    shifted = augment(images, ("translation",), torch.Generator().manual_seed(0))
    moved = 0
    for original, out in zip(images, shifted, strict=True):
        # Some integer shift (dy, dx) within 1/8 of the side reproduces the output exactly.
        matches = []
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                expected = torch.zeros_like(original)
                src = original[:, max(0, -dy):32 - max(0, dy), max(0, -dx):32 - max(0, dx)]
                expected[:, max(0, dy):32 - max(0, -dy), max(0, dx):32 - max(0, -dx)] = src
                if torch.allclose(out, expected, atol=1e-6):
                    matches.append((dy, dx))
        assert matches, "not a whole-pixel shift"
        moved += matches[0] != (0, 0)
    assert moved >= 8  # most images actually move


def test_cutout_erases_one_square_of_half_the_side():
    images = torch.ones(6, 3, 32, 32)
    out = augment(images, ("cutout",), torch.Generator().manual_seed(0))
    side = int(32 * CUTOUT_RATIO)
    for image in out:
        erased = image[0] == 0
        assert erased.sum() == side * side
        rows, cols = erased.nonzero(as_tuple=True)
        assert rows.max() - rows.min() + 1 == side and cols.max() - cols.min() + 1 == side


def test_unknown_or_malformed_policies_are_config_errors():
    with pytest.raises(ConfigError, match="unknown augmentations \\['blur'\\]"):
        check_policy(["color", "blur"])
    with pytest.raises(ConfigError, match="must be a list"):
        check_policy("color")
    with pytest.raises(ConfigError, match="unknown augmentations"):
        load_train_config("dcgan", augment=["rotate"])


def test_the_world_gan_configs_augment_what_the_discriminator_sees():
    for arch in ("dcgan", "stylegan2", "biggan"):
        assert load_train_config(arch).augment == ("color", "translation", "cutout")
