"""The truncation trick: truncated-normal sampling and per-truncation batch-norm statistics.

BigGAN draws z from a standard normal truncated to [-2, 2] and multiplies it by the
truncation t in (0, 1]; smaller t gives more typical, less varied images. Activations then
have different statistics for each t, so a trained BigGAN-deep keeps one set of batch-norm
statistics per truncation on the grid ``i / (n_stats - 1)``.
``compute_truncation_statistics`` measures them after training (BigGAN's "standing
statistics", one set per truncation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from data.errors import ConfigError
from generators.biggan.layers import StatisticsSink, TruncationBatchNorm
from generators.biggan.model import BigGANDeep

TRUNCATION_BOUND = 2.0  # |z| <= 2 before scaling, as in BigGAN

# (truncation, batch_size) -> (z [B, z_dim] already scaled by truncation, class_vector [B, C])
InputSampler = Callable[[float, int], tuple[torch.Tensor, torch.Tensor]]


def truncated_normal(
    shape: tuple[int, ...],
    *,
    bound: float = TRUNCATION_BOUND,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal samples conditioned on |x| <= bound (inverse-CDF, so exact and seedable)."""
    if bound <= 0:
        raise ConfigError(f"truncation bound must be positive, got {bound}")
    low = 0.5 * math.erfc(bound / math.sqrt(2.0))  # Phi(-bound)
    uniform = torch.rand(shape, generator=generator, dtype=torch.float64)
    x = torch.special.ndtri(low + uniform * (1.0 - 2.0 * low))
    return x.clamp(-bound, bound).to(dtype)


def truncation_grid(n_stats: int) -> list[float]:
    """The truncations whose statistics row ``i`` holds: ``i / (n_stats - 1)``."""
    return [i / (n_stats - 1) for i in range(n_stats)]


def default_sampler(model: BigGANDeep, generator: torch.Generator | None = None) -> InputSampler:
    """Truncated-normal z scaled by t, and one-hot classes drawn uniformly."""
    config = model.config

    def sample(truncation: float, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = truncated_normal((batch_size, config.z_dim), generator=generator) * truncation
        classes = torch.randint(config.num_classes, (batch_size,), generator=generator)
        return z, F.one_hot(classes, config.num_classes).float()

    return sample


@contextmanager
def collecting_statistics(model: BigGANDeep) -> Iterator[dict[str, StatisticsSink]]:
    """Batch norms normalise with batch statistics and record them; spectral norm stays frozen."""
    norms = {name: m for name, m in model.named_modules() if isinstance(m, TruncationBatchNorm)}
    sinks = {name: StatisticsSink() for name in norms}
    was_training = model.training
    model.eval()  # no power iteration: the weights must not move while we measure
    try:
        for name, norm in norms.items():
            norm.statistics_sink = sinks[name]
        yield sinks
    finally:
        for norm in norms.values():
            norm.statistics_sink = None
        model.train(was_training)


@torch.no_grad()
def compute_truncation_statistics(
    model: BigGANDeep,
    *,
    batch_size: int = 64,
    batches: int = 4,
    sampler: InputSampler | None = None,
    generator: torch.Generator | None = None,
) -> None:
    """Fill every batch norm's ``running_means`` / ``running_vars`` [n_stats, C] in place.

    For each truncation t on the grid, ``batches`` batches are drawn at t (``sampler``, by
    default truncated-normal z times t and uniform one-hot classes) and run with
    batch-statistics normalisation, as in training; row i gets the pooled per-channel mean
    and (population) variance of each batch norm's input. With one batch, eval mode at t then
    reproduces that batch's training-mode activations exactly.
    """
    if batch_size < 2 or batches < 1:
        raise ConfigError(f"need batch_size >= 2 and batches >= 1, got {batch_size} and {batches}")
    sampler = sampler or default_sampler(model, generator)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    for row, truncation in enumerate(truncation_grid(model.config.n_stats)):
        with collecting_statistics(model) as sinks:
            for _ in range(batches):
                z, class_vector = sampler(truncation, batch_size)
                condition = model.condition(z.to(device, dtype), class_vector.to(device, dtype))
                model.generator(condition, truncation)
        for name, norm in model.named_modules():
            if isinstance(norm, TruncationBatchNorm):
                mean, variance = sinks[name].mean_and_variance()
                norm.running_means[row] = mean.to(norm.running_means.dtype)
                norm.running_vars[row] = variance.to(norm.running_vars.dtype)
