"""The pymoo problem: a population of latents in, CLIP (and realism) objectives out, in one batch."""

from __future__ import annotations

import heapq
import math

import numpy as np
import torch
from pymoo.core.problem import Problem

from data.errors import ConfigError
from generators.protocol import Generator
from search.scorer import ClipScorer, Prompt


class TopK:
    """The k best (similarity, latent) pairs seen over every evaluation of a search."""

    def __init__(self, k: int):
        self.k = k
        self._heap: list[tuple[float, int, np.ndarray]] = []
        self._count = 0

    def offer(self, similarity: np.ndarray, X: np.ndarray) -> None:
        for score, x in zip(similarity, X, strict=True):
            self._count += 1  # tie-breaker: earlier evaluations win, so results are stable
            item = (float(score), -self._count, x.copy())
            if len(self._heap) < self.k:
                heapq.heappush(self._heap, item)
            elif item[:2] > self._heap[0][:2]:
                heapq.heapreplace(self._heap, item)

    def best(self) -> tuple[np.ndarray, np.ndarray]:
        """Similarities [k] and latents [k, n_var], best first."""
        ranked = sorted(self._heap, key=lambda item: item[:2], reverse=True)
        return np.array([s for s, _, _ in ranked]), np.stack([x for _, _, x in ranked])


class LatentSearchProblem(Problem):
    """Minimise -similarity (and -realism when ``use_realism``) over the generator's latent space.

    ``_evaluate`` generates and scores the whole population in one batched call. The
    problem shares its models: copying it never duplicates networks.
    """

    def __init__(
        self,
        generator: Generator,
        scorer: ClipScorer,
        prompt: Prompt,
        *,
        use_realism: bool = False,
        batch_size: int = 64,
        keep_top: int = 4,
    ):
        if use_realism and not generator.has_realism:
            raise ConfigError(f"generator {generator.name!r} has no discriminator for a realism objective")
        low, high = generator.latent_space.bounds()
        super().__init__(n_var=generator.latent_space.n_var, n_obj=2 if use_realism else 1, xl=low, xu=high)
        self.generator = generator
        self.scorer = scorer
        self.prompt = prompt
        self.use_realism = use_realism
        self.batch_size = batch_size
        self.evaluations = 0
        self.best_similarity = -math.inf
        self.top = TopK(keep_top)
        scorer.prompt_features(prompt)  # warm the text cache before timing starts

    def __deepcopy__(self, memo):
        return self

    def score(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Similarity (and realism) of each row of X, generated and scored in batches."""
        X = np.asarray(X, dtype=np.float32)
        if not np.isfinite(X).all():
            raise ConfigError("latents contain NaN or infinite values")
        if (X < self.xl - 1e-6).any() or (X > self.xu + 1e-6).any():
            raise ConfigError("latents lie outside the search bounds")
        similarity, realism = [], []
        with torch.no_grad():
            for start in range(0, len(X), self.batch_size):
                latents = torch.from_numpy(X[start : start + self.batch_size])
                images = self.generator.generate(latents, batch_size=self.batch_size)
                similarity.append(self.scorer.similarity(images, self.prompt).cpu())
                if self.use_realism:
                    realism.append(self.generator.realism(images, batch_size=self.batch_size).float().cpu())
        out = {"similarity": torch.cat(similarity).double().numpy()}
        if self.use_realism:
            out["realism"] = torch.cat(realism).double().numpy()
        return out

    def observe(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """``score``, counted as evaluations and offered to the top k."""
        scores = self.score(X)
        self.count(scores["similarity"], X)
        return scores

    def count(self, similarity: np.ndarray, X: np.ndarray, evaluations: int | None = None) -> None:
        """Count ``evaluations`` (default: one per row) and offer these rows to the top k."""
        self.evaluations += len(X) if evaluations is None else evaluations
        self.best_similarity = max(self.best_similarity, float(np.max(similarity)))
        self.top.offer(similarity, np.asarray(X))

    def _evaluate(self, X, out, *args, **kwargs):
        scores = self.observe(X)
        objectives = [-scores["similarity"]]
        if self.use_realism:
            objectives.append(-scores["realism"])
        out["F"] = np.column_stack(objectives)
        out.update(scores)  # pymoo keeps extra outputs on each individual
