"""pymoo operators that respect the generator's latent prior.

The reference CLIP-glass code mutated with steps scaled to the search bounds, far larger
than the prior's spread, throwing latents out of the region the generator was trained on.
Here sampling draws from the prior, and mutation steps are a fraction of the prior's
standard deviation per variable.
"""

from __future__ import annotations

import numpy as np
from pymoo.core.mutation import Mutation
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling

from data.errors import ConfigError
from generators.latents import LatentSpace


class PriorSampling(Sampling):
    """Initial individuals drawn from the latent prior (clipped to the bounds)."""

    def __init__(self, space: LatentSpace):
        super().__init__()
        self.space = space

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        return self.space.sample_numpy(n_samples, random_state)


class PriorGaussianMutation(Mutation):
    """Adds N(0, (sigma * prior std)^2) to each variable with probability ``prob_var``.

    ``prob_var=None`` mutates on average one tenth of the variables (at least one).
    """

    def __init__(self, space: LatentSpace, sigma: float = 0.3, prob_var: float | None = None):
        super().__init__(prob=1.0)
        if not sigma > 0:
            raise ConfigError(f"mutation sigma must be > 0, got {sigma}")
        if prob_var is not None and not 0 < prob_var <= 1:
            raise ConfigError(f"mutation probability must be in (0, 1], got {prob_var}")
        self.space = space
        self.sigma = sigma
        self.rate = prob_var if prob_var is not None else max(0.1, 1.0 / space.n_var)
        self.steps = sigma * space.spreads()

    def _do(self, problem, X, random_state=None, **kwargs):
        X = np.asarray(X, dtype=float)
        mutate = random_state.random(X.shape) < self.rate
        noise = random_state.standard_normal(X.shape) * self.steps
        low, high = self.space.bounds()
        return np.clip(np.where(mutate, X + noise, X), low, high)


class AnchoredSampling(Sampling):
    """Initial individuals scattered around ``anchor`` (the seed's own prior draw): each held
    variable moved by N(0, (radius / 2 * prior std)^2), so the population starts about halfway
    out to the trust region's edge and selection can move it either way; conditioning blocks
    (a class) drawn from the prior, as an unanchored search draws them."""

    def __init__(self, space: LatentSpace, anchor: np.ndarray, radius: float):
        super().__init__()
        self.space, self.anchor, self.radius = space, np.asarray(anchor, dtype=float), radius

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        steps = random_state.standard_normal((n_samples, self.space.n_var)) * (self.radius / 2) * self.space.spreads()
        free = self.space.sample_numpy(n_samples, random_state)
        near = np.where(self.space.anchored(), self.anchor + steps, free)
        return self.space.within(near, self.anchor, self.radius)


class TrustRegionRepair(Repair):
    """Keeps every offspring within ``radius`` of the anchor (``LatentSpace.within``): each
    seed's search varies its own picture instead of converging, whatever the seed, on the
    one picture CLIP likes most."""

    def __init__(self, space: LatentSpace, anchor: np.ndarray, radius: float):
        super().__init__()
        self.space, self.anchor, self.radius = space, np.asarray(anchor, dtype=float), radius

    def _do(self, problem, X, **kwargs):
        return self.space.within(X, self.anchor, self.radius)


class TypicalSetRepair(Repair):
    """Puts every offspring's Gaussian blocks back on their typical radius
    (``LatentSpace.to_typical_set``): the search keeps the direction it found, not a norm the
    prior never draws."""

    def __init__(self, space: LatentSpace):
        super().__init__()
        self.space = space

    def _do(self, problem, X, **kwargs):
        return self.space.to_typical_set(X)
