"""GAN losses, the R1 penalty and the generator's moving average: small functions, no state.

Logits are "higher = more real". Non-saturating logistic (Goodfellow et al. 2014, as in
DCGAN and StyleGAN2): D minimises softplus(-real) + softplus(fake), G minimises
softplus(-fake). Hinge (as in SAGAN/BigGAN): D minimises relu(1 - real) + relu(1 + fake),
G minimises -fake.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def discriminator_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return -fake_logits.mean()
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of |d D(x) / d x|^2 at real images (``real_images`` needs grad)."""
    (gradient,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return gradient.square().sum(dim=(1, 2, 3)).mean()


def ema_beta(half_life_images: float, batch_size: int, images_seen: int, rampup: float | None) -> float:
    """Per-step decay of the generator average; the ramp-up shortens the memory early on."""
    half_life = half_life_images
    if rampup is not None:
        half_life = min(half_life, images_seen * rampup)
    return 0.5 ** (batch_size / max(half_life, 1e-8))


@torch.no_grad()
def update_ema(average: nn.Module, model: nn.Module, beta: float) -> None:
    """average = beta * average + (1 - beta) * model for parameters; buffers are copied
    (batch-norm and spectral-norm state, w_avg: they track the live model, as in NVIDIA's code)."""
    for mine, theirs in zip(average.parameters(), model.parameters(), strict=True):
        mine.lerp_(theirs, 1.0 - beta)
    for mine, theirs in zip(average.buffers(), model.buffers(), strict=True):
        mine.copy_(theirs)
