"""Search settings as one dataclass: recorded verbatim with every result."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from data.errors import ConfigError
from data.validation import check_limit, check_number

ALGORITHMS = ("ga", "nsga2", "cmaes", "random")
PARETO_RULES = ("knee", "threshold", "similarity")


@dataclass(frozen=True)
class SearchConfig:
    """How to search. ``budget`` (evaluations) wins over ``generations`` when both are given.

    algorithm: ga (the CLIP-glass baseline), nsga2 (similarity + realism), cmaes, or random
        (best-of-N from the prior: the re-ranking baseline).
    mutation_sigma: mutation step as a fraction of each variable's prior std.
    pareto_rule: how nsga2 picks one artwork from its front: knee, threshold (best
        similarity with realism >= realism_threshold) or similarity.
    typical_set: ga and nsga2 put every offspring's Gaussian latent blocks back on the prior's
        typical radius (``LatentSpace.to_typical_set``), so selection cannot drift to latent
        norms the generator never saw (bench.manifold measures what it does to fidelity).
    anchor_radius: ga, nsga2 and random search only within this distance (``LatentSpace.distance``:
        prior standard deviations, root-mean-square; two prior draws lie about 1.41 apart) of
        the seed's own prior draw, the latent ``artbias generate --n 1 --seed S`` paints. Each
        seed then varies its own picture, so a campaign's artworks stay as varied as the
        generator's (None: the whole prior).
    anchor_draws: with anchor_radius, the anchor is the one CLIP likes best of the seed's first
        this many prior draws (scored before the search, on top of its budget); 1: the seed's
        own draw, unscored. More draws start nearer the prompt, at some of the variety.
    refine_steps / refine_lr / prior_weight: Adam refinement of the best latents afterwards.
    """

    algorithm: str = "ga"
    pop_size: int = 32
    generations: int = 8
    budget: int | None = None
    mutation_sigma: float = 0.3
    mutation_prob: float | None = None
    crossover_prob: float = 0.9
    cmaes_sigma: float = 0.5
    pareto_rule: str = "knee"
    realism_threshold: float = 0.0
    typical_set: bool = False
    anchor_radius: float | None = None
    anchor_draws: int = 1
    refine_steps: int = 0
    refine_lr: float = 0.05
    prior_weight: float = 1.0
    top_k: int = 4
    augmentations: int = 0
    batch_size: int = 64

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {self.algorithm!r}; use one of {', '.join(ALGORITHMS)}")
        if self.pareto_rule not in PARETO_RULES:
            raise ConfigError(f"unknown Pareto rule {self.pareto_rule!r}; use one of {', '.join(PARETO_RULES)}")
        for name in ("pop_size", "generations", "batch_size", "top_k", "refine_steps", "augmentations", "anchor_draws"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be a whole number, got {value!r}")
        if not isinstance(self.typical_set, bool):
            raise ConfigError(f"typical_set must be true or false, got {self.typical_set!r}")
        if self.typical_set and self.algorithm not in ("ga", "nsga2"):
            raise ConfigError(f"typical_set applies to ga and nsga2, not {self.algorithm}")
        if self.anchor_radius is not None:
            check_number(self.anchor_radius, "anchor_radius", above=0)
            if self.algorithm == "cmaes":
                raise ConfigError("anchor_radius applies to ga, nsga2 and random, not cmaes")
            if self.typical_set:
                raise ConfigError("anchor_radius and typical_set are alternatives: choose one")
        if self.anchor_draws < 1:
            raise ConfigError(f"anchor_draws must be at least 1, got {self.anchor_draws}")
        if self.anchor_draws > 1 and self.anchor_radius is None:
            raise ConfigError("anchor_draws needs anchor_radius (there is no anchor without it)")
        check_limit("population", self.anchor_draws, "anchor_draws")
        for name in ("mutation_sigma", "crossover_prob", "cmaes_sigma", "realism_threshold", "refine_lr",
                     "prior_weight", *(("mutation_prob",) if self.mutation_prob is not None else ())):
            check_number(getattr(self, name), name)  # NaN and infinities are refused
        for name in ("pop_size", "generations", "batch_size", "top_k"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.algorithm in ("ga", "nsga2") and self.pop_size < 2:
            raise ConfigError(f"{self.algorithm} needs a population of at least 2")
        if self.budget is not None and self.budget < self.pop_size:
            raise ConfigError(f"budget {self.budget} is smaller than one population ({self.pop_size})")
        for name in ("refine_steps", "augmentations"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("mutation_sigma", "cmaes_sigma", "refine_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.crossover_prob <= 1:
            raise ConfigError(f"crossover_prob must be in [0, 1], got {self.crossover_prob}")
        if self.prior_weight < 0:
            raise ConfigError(f"prior_weight must be >= 0, got {self.prior_weight}")
        if self.mutation_prob is not None and not 0 <= self.mutation_prob <= 1:
            raise ConfigError(f"mutation_prob must be in [0, 1], got {self.mutation_prob}")
        # Size limits (data.validation.Limits; --allow-large lifts them).
        check_limit("population", self.pop_size, "pop_size")
        check_limit("evaluations", self.evaluations, "evaluations (pop_size x generations, or budget)")
        check_limit("augmentations", self.augmentations, "augmentations")
        check_limit("refine_steps", self.refine_steps, "refine_steps")
        check_limit("top_k", self.top_k, "top_k")
        check_limit("batch_size", self.batch_size, "batch_size")

    @property
    def n_generations(self) -> int:
        """Generations run: the budget divided into whole populations."""
        return self.budget // self.pop_size if self.budget is not None else self.generations

    @property
    def evaluations(self) -> int:
        return self.n_generations * self.pop_size

    @property
    def uses_realism(self) -> bool:
        return self.algorithm == "nsga2"

    def to_dict(self) -> dict:
        return asdict(self)
