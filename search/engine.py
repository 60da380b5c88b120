"""The one search function: every component passed in, the whole loop readable here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
from pymoo.core.callback import Callback
from tqdm.auto import tqdm

from data.errors import ConfigError
from data.provenance import versions
from generators.latents import LatentSpace
from generators.protocol import Generator
from search import pareto
from search.algorithms import build_algorithm
from search.config import SearchConfig
from search.determinism import deterministic_kernels
from search.problem import LatentSearchProblem
from search.refine import refine
from search.scorer import ClipScorer, Prompt


@dataclass(frozen=True)
class Candidate:
    """One artwork a search offers: its role, image, latent and scores."""

    role: str  # "chosen" (the answer), "top" (a runner-up) or "pareto" (another front member)
    image: torch.Tensor  # [3, H, W] in [-1, 1]
    latent: np.ndarray
    similarity: float
    realism: float | None  # None when the generator has no discriminator


@dataclass
class SearchResult:
    """What a search found, with everything needed to reproduce it."""

    prompt: Prompt
    generator: dict
    clip: dict
    config: SearchConfig
    seed: int
    evaluations: int
    history: list[float]
    latent: np.ndarray  # the chosen latent [n_var]
    similarity: float
    realism: float | None
    image: torch.Tensor  # the chosen image [3, H, W] in [-1, 1]
    top_latents: np.ndarray  # [k, n_var], best similarity first (the chosen one among them)
    top_similarities: np.ndarray
    top_images: torch.Tensor
    top_realism: np.ndarray | None = None  # the discriminator's scores of top_images, when it has one
    anchor: np.ndarray | None = None  # anchored search: the seed's prior draw it stayed near
    front: dict | None = None  # nsga2: latents, similarity, realism of the whole Pareto front
    rule_satisfied: bool = True
    refine_history: list[float] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    versions: dict = field(default_factory=versions)

    def candidates(self) -> list[Candidate]:
        """The chosen artwork, then the other runners-up (best similarity first), then the
        other members of the Pareto front; each latent once."""
        found = [Candidate("chosen", self.image, self.latent, self.similarity, self.realism)]
        for i, (image, latent) in enumerate(zip(self.top_images, self.top_latents, strict=True)):
            if not np.array_equal(np.asarray(latent, dtype=np.float32), self.latent):
                realism = None if self.top_realism is None else float(self.top_realism[i])
                found.append(Candidate("top", image, latent, float(self.top_similarities[i]), realism))
        if self.front is not None:
            front = self.front
            for i, latent in enumerate(front["latents"]):
                if i != int(front["chosen"]):
                    found.append(Candidate("pareto", front["images"][i], latent,
                                           float(front["similarity"][i]), float(front["realism"][i])))
        return found


class ProgressCallback(Callback):
    """Records the best similarity after each generation and shows it on a progress bar."""

    def __init__(self, problem: LatentSearchProblem, total: int, show: bool):
        super().__init__()
        self.problem = problem
        self.history: list[float] = []
        self.bar = tqdm(total=total, desc="search", unit="gen", disable=not show, leave=False)

    def notify(self, algorithm):
        self.history.append(self.problem.best_similarity)
        self.bar.update(1)
        self.bar.set_postfix(best=f"{self.problem.best_similarity:.4f}", evals=self.problem.evaluations)

    def close(self):
        self.bar.close()


def run_search(
    generator: Generator,
    scorer: ClipScorer,
    prompt: Prompt | str,
    config: SearchConfig,
    *,
    seed: int = 0,
    progress: bool = True,
) -> SearchResult:
    """Search the generator's latent space for the image CLIP finds closest to ``prompt``."""
    with deterministic_kernels(generator.device):
        return _run_search(generator, scorer, prompt, config, seed, progress)


def anchor_latent(space: LatentSpace, seed: int) -> np.ndarray:
    """The seed's own prior draw [n_var]: the latent ``artbias generate --n 1 --seed`` paints."""
    return space.seeded(1, seed)[0].double().numpy()


def best_draw(problem: LatentSearchProblem, n: int, seed: int) -> np.ndarray:
    """The one of the seed's first ``n`` prior draws that CLIP finds closest to the prompt. They
    count as evaluations; only the anchor itself may be chosen (the others lie outside its
    trust region)."""
    draws = problem.generator.latent_space.seeded(n, seed).double().numpy()
    similarity = problem.score(draws)["similarity"]
    best = int(np.argmax(similarity))
    problem.count(similarity[best : best + 1], draws[best : best + 1], evaluations=n)
    return draws[best]


def _run_search(generator, scorer, prompt, config, seed, progress) -> SearchResult:
    prompt = Prompt(prompt) if isinstance(prompt, str) else prompt
    if config.refine_steps and not generator.differentiable:
        raise ConfigError(f"generator {generator.name!r} is not differentiable: use refine_steps = 0")
    if config.uses_realism and not generator.has_realism:
        raise ConfigError(f"nsga2 needs a realism objective, but generator {generator.name!r} has no discriminator")
    started = time.perf_counter()
    problem = LatentSearchProblem(generator, scorer, prompt, use_realism=config.uses_realism,
                                  batch_size=config.batch_size, keep_top=config.top_k)
    space = generator.latent_space
    anchor, constrain = None, None
    if config.anchor_radius is not None:
        anchor = anchor_latent(space, seed) if config.anchor_draws == 1 else best_draw(problem, config.anchor_draws, seed)
        constrain = partial(space.within, anchor=anchor, radius=config.anchor_radius)
    algorithm = build_algorithm(config, space, anchor)
    callback = ProgressCallback(problem, config.n_generations, progress)
    algorithm.setup(problem, termination=("n_gen", config.n_generations), seed=seed, callback=callback, verbose=False)
    while algorithm.has_next():
        algorithm.next()
    callback.close()
    searched = time.perf_counter()

    top_similarities, top_latents = problem.top.best()
    front, rule_satisfied = None, True
    if config.uses_realism:
        members = algorithm.opt
        front_sim, front_real = members.get("similarity").ravel(), members.get("realism").ravel()
        chosen, rule_satisfied = pareto.choose(front_sim, front_real, config.pareto_rule, config.realism_threshold)
        front = {"latents": members.get("X"), "similarity": front_sim, "realism": front_real, "chosen": chosen}
        start = members.get("X")[chosen][None, :]
    else:
        start = top_latents

    refine_history: list[float] = []
    if config.refine_steps:
        refined, refined_sim, refine_history = refine(
            generator, scorer, prompt, torch.from_numpy(np.asarray(start, dtype=np.float32)),
            steps=config.refine_steps, lr=config.refine_lr, prior_weight=config.prior_weight, constrain=constrain,
        )
        start = refined.numpy()
    if config.uses_realism:
        latent = np.asarray(start[0], dtype=np.float32)
    else:
        scores = problem.score(start) if config.refine_steps else {"similarity": top_similarities}
        order = np.argsort(-scores["similarity"], kind="stable")
        top_latents, top_similarities = np.asarray(start)[order], scores["similarity"][order]
        latent = top_latents[0].astype(np.float32)

    with torch.no_grad():
        top_images = generator.generate(torch.from_numpy(np.asarray(top_latents, dtype=np.float32)))
        image = generator.generate(torch.from_numpy(latent[None, :]))
        similarity = float(scorer.similarity(image, prompt)[0])
        realism = float(generator.realism(image)[0]) if generator.has_realism else None
        top_realism = generator.realism(top_images).cpu().numpy() if generator.has_realism else None
        if front is not None:
            front["images"] = generator.generate(torch.from_numpy(np.asarray(front["latents"], dtype=np.float32))).cpu()
    finished = time.perf_counter()
    return SearchResult(
        prompt=prompt, generator=generator.identity(), clip=scorer.clip.identity, config=config, seed=seed,
        evaluations=problem.evaluations, history=callback.history, latent=latent, similarity=similarity,
        realism=realism, image=image[0].cpu(), top_latents=np.asarray(top_latents), top_similarities=top_similarities,
        top_images=top_images.cpu(), top_realism=top_realism, anchor=anchor, front=front,
        rule_satisfied=rule_satisfied, refine_history=refine_history,
        timings={"search_s": searched - started, "refine_s": finished - searched, "total_s": finished - started},
    )
