"""What a generator draws when nobody asks: the class mix of its unguided samples.

Compared with its training composition, this is the check that a starter GAN learned its
world (and the baseline every prompt's effect is measured against).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from data.errors import ConfigError


@dataclass
class UnguidedComposition:
    generator: str
    labeller: str
    classes: list[str]
    counts: list[int]
    n: int
    seed: int
    training: list[float] | None  # the training composition, when the generator records it
    options: dict | None = None  # loader options given over the catalogue defaults

    @property
    def proportions(self) -> list[float]:
        return [c / self.n for c in self.counts]

    @property
    def total_variation(self) -> float | None:
        """Half the L1 distance to the training composition (0: identical, 1: disjoint)."""
        if self.training is None:
            return None
        return 0.5 * float(np.abs(np.array(self.proportions) - np.array(self.training)).sum())

    def to_dict(self) -> dict:
        return {
            "generator": self.generator, "labeller": self.labeller, "n": self.n, "seed": self.seed,
            "classes": self.classes, "counts": self.counts, "proportions": self.proportions,
            "training_composition": self.training, "total_variation": self.total_variation,
            "options": self.options or {},
        }


def unguided_composition(generator_spec: str, labeller_spec: str = "classifier-world", *, n: int = 1000,
                         seed: int = 0, batch_size: int = 100, progress: bool = True,
                         device: str = "cpu", options: dict | None = None) -> UnguidedComposition:
    """Label ``n`` samples drawn from the generator's latent prior (seeded); the generator
    runs on ``device`` with loader ``options`` over its catalogue defaults, the labeller on
    the CPU."""
    from classifier.prediction import load_model, predict
    from gallery.bias import training_composition
    from generators.registry import load_generator

    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    generator = load_generator(generator_spec, device=device, **(options or {}))
    labeller = load_model(labeller_spec)
    latents = generator.latent_space.sample(n, torch.Generator().manual_seed(seed))
    counts = np.zeros(len(labeller.classes), dtype=int)
    with torch.no_grad():
        for start in tqdm(range(0, n, batch_size), desc="unguided", disable=not progress, leave=False):
            images = generator.generate(latents[start : start + batch_size], batch_size=batch_size).float().cpu()
            counts += np.bincount(predict(labeller, images).argmax(1).numpy(), minlength=len(counts))
    training = training_composition(generator_spec, labeller.classes)
    return UnguidedComposition(
        generator=generator_spec, labeller=labeller_spec, classes=list(labeller.classes), counts=counts.tolist(),
        n=n, seed=seed, training=training[1] if training else None, options=options,
    )
