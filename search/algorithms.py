"""The pymoo algorithms, each composed explicitly from its operators so every choice shows."""

from __future__ import annotations

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.soo.nonconvex.cmaes import CMAES
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.algorithms.soo.nonconvex.random_search import RandomSearch
from pymoo.core.algorithm import Algorithm
from pymoo.operators.crossover.ux import UniformCrossover

from data.errors import ConfigError
from generators.latents import LatentSpace
from search.config import SearchConfig
from search.operators import (
    AnchoredSampling,
    PriorGaussianMutation,
    PriorSampling,
    TrustRegionRepair,
    TypicalSetRepair,
)


def build_algorithm(config: SearchConfig, space: LatentSpace, anchor: np.ndarray | None = None) -> Algorithm:
    """The configured pymoo algorithm; ``anchor`` (the seed's prior draw) is needed when
    ``config.anchor_radius`` is set."""
    mutation = PriorGaussianMutation(space, sigma=config.mutation_sigma, prob_var=config.mutation_prob)
    # Uniform crossover swaps whole coordinates, so children of two typical Gaussian latents
    # stay typical; blending crossovers (SBX) shrink their norm toward the prior's centre.
    crossover = UniformCrossover(prob=config.crossover_prob)
    if config.anchor_radius is not None:
        if anchor is None:
            raise ConfigError("anchor_radius needs the anchor latent")
        sampling = AnchoredSampling(space, anchor, config.anchor_radius)
        repair = TrustRegionRepair(space, anchor, config.anchor_radius)
    else:
        sampling = PriorSampling(space)
        repair = TypicalSetRepair(space) if config.typical_set else None
    if config.algorithm == "ga":
        return GA(pop_size=config.pop_size, sampling=sampling, crossover=crossover, mutation=mutation,
                  repair=repair, eliminate_duplicates=False)
    if config.algorithm == "nsga2":
        return NSGA2(pop_size=config.pop_size, sampling=sampling, crossover=crossover, mutation=mutation,
                     repair=repair, eliminate_duplicates=False)
    if config.algorithm == "cmaes":
        # Start at the prior's centre; per-coordinate step sizes follow the prior's spread.
        return CMAES(x0=space.centre(), sigma=config.cmaes_sigma, normalize=False, pop_size=config.pop_size,
                     CMA_stds=space.spreads().tolist(), tolfun=0, tolx=0)
    # Random search takes no repair: anchored sampling already lies in the trust region.
    return RandomSearch(n_points_per_iteration=config.pop_size, sampling=sampling)
