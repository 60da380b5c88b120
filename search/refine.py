"""Gradient refinement: Adam on the best latents through generator and CLIP.

The evolutionary search finds a good basin; a few gradient steps climb it. A prior penalty
keeps each Gaussian block in its typical set (squared norm near its expected value), and
latents are clamped to the search bounds, so refinement cannot drift into regions the
generator never saw. Each latent keeps its best version, so refinement never loses ground.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from generators.protocol import Generator
from search.scorer import ClipScorer, Prompt


def prior_penalty(generator: Generator, latents: torch.Tensor) -> torch.Tensor:
    """Per-latent penalty [B]: for each Gaussian block, (|z - mu|^2 / (d s^2) - 1)^2, s its spread."""
    penalty = torch.zeros(latents.shape[0], device=latents.device)
    for block, part in zip(generator.latent_space.blocks, generator.latent_space.split(latents).values(), strict=True):
        if block.prior == "uniform":
            continue
        z = (part.reshape(part.shape[0], -1) - block.loc) / block.spread
        penalty = penalty + (z.pow(2).mean(dim=1) - 1).pow(2)
    return penalty


def refine(
    generator: Generator,
    scorer: ClipScorer,
    prompt: Prompt,
    latents: torch.Tensor,
    *,
    steps: int,
    lr: float = 0.05,
    prior_weight: float = 1.0,
    constrain: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """Refined latents [B, n_var], their similarities [B], and the best similarity per step.

    ``constrain`` (e.g. an anchored search's trust region) takes latents back where the search
    allows after every step, as the bounds do."""
    low, high = (torch.as_tensor(b, dtype=torch.float32) for b in generator.latent_space.bounds())
    x = latents.detach().float().clone().requires_grad_(True)
    best_x = x.detach().clone()
    with torch.no_grad():
        best_sim = scorer.similarity(generator.generate(best_x), prompt).float().cpu()
    history = []
    optimiser = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        similarity = scorer.similarity(generator.generate(x, grad=True), prompt).float().cpu()
        loss = (-similarity + prior_weight * prior_penalty(generator, x).cpu()).sum()
        loss.backward()
        with torch.no_grad():
            improved = similarity > best_sim
            best_sim = torch.where(improved, similarity, best_sim)
            best_x[improved] = x.detach()[improved]
            optimiser.step()
            x.copy_(torch.maximum(torch.minimum(x, high), low))
            if constrain is not None:
                x.copy_(torch.from_numpy(constrain(x.detach().cpu().numpy())).to(x))
        history.append(float(best_sim.max()))
    # The last step's update has not been scored yet: score it once so nothing is lost.
    if steps:
        with torch.no_grad():
            last = scorer.similarity(generator.generate(x.detach()), prompt).float().cpu()
            improved = last > best_sim
            best_sim = torch.where(improved, last, best_sim)
            best_x[improved] = x.detach()[improved]
            history[-1] = float(best_sim.max())
    return best_x, best_sim, history
