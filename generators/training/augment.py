"""Differentiable augmentation of what the discriminator sees (DiffAugment, Zhao et al. 2020).

With a few thousand training images a discriminator memorises the reals and stops teaching
the generator. Augmenting *both* reals and fakes, with operations the generator's gradient
can pass through, keeps it from doing so without the augmentations leaking into the samples
(they are never applied to what the generator outputs, only to what the discriminator sees).

Every random draw comes from the run's CPU generator and is then moved, so a run stays
reproducible and its resumes bit-identical on the CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from data.errors import ConfigError

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125  # shift by up to 1/8 of the side, zero padding
CUTOUT_RATIO = 0.5  # erase one square of half the side


def check_policy(policy) -> tuple[str, ...]:
    """The policy as a tuple of known names; anything else is a ConfigError."""
    if isinstance(policy, str) or not all(isinstance(name, str) for name in policy):
        raise ConfigError(f"augment must be a list of names from {list(POLICIES)}, got {policy!r}")
    unknown = [name for name in policy if name not in POLICIES]
    if unknown:
        raise ConfigError(f"augment: unknown augmentations {unknown}; choose from {', '.join(POLICIES)}")
    return tuple(dict.fromkeys(policy))


def augment(images: torch.Tensor, policy: tuple[str, ...], rng: torch.Generator) -> torch.Tensor:
    """``images`` [B, 3, H, W] in [-1, 1] with each of ``policy``'s augmentations, in order."""
    for name in policy:
        images = _AUGMENTATIONS[name](images, rng)
    return images


def _draw(rng: torch.Generator, images: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=rng).to(device=images.device, dtype=images.dtype)


def _color(images, rng):
    batch = images.shape[0]
    brightness = _draw(rng, images, batch, 1, 1, 1) - 0.5
    saturation = _draw(rng, images, batch, 1, 1, 1) * 2
    contrast = _draw(rng, images, batch, 1, 1, 1) + 0.5
    images = images + brightness
    grey = images.mean(dim=1, keepdim=True)
    images = (images - grey) * saturation + grey
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * contrast + mean


def _translation(images, rng):
    batch, _, height, width = images.shape
    shift = (_draw(rng, images, batch, 2) * 2 - 1) * TRANSLATION_RATIO * 2  # grid units span 2
    # Whole pixels only, so that no blur is added: round the shift to the pixel grid.
    pixels = torch.tensor([width, height], device=images.device, dtype=images.dtype)
    shift = torch.round(shift * pixels / 2) * 2 / pixels
    theta = torch.zeros(batch, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _cutout(images, rng):
    batch, _, height, width = images.shape
    side_h, side_w = int(height * CUTOUT_RATIO), int(width * CUTOUT_RATIO)
    centre = _draw(rng, images, batch, 2)
    top = (centre[:, 0] * (height + 1 - side_h)).long()
    left = (centre[:, 1] * (width + 1 - side_w)).long()
    rows = torch.arange(height, device=images.device)[None, :, None]
    cols = torch.arange(width, device=images.device)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + side_h)[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + side_w)[:, None, None]))
    return images * (~inside)[:, None].to(images.dtype)


_AUGMENTATIONS = {"color": _color, "translation": _translation, "cutout": _cutout}
