"""Search benchmarks: loop overhead, batching gain, and quality at an equal budget.

Run by hand (never in CI):
    python -m bench.search                       # the starter zoo: dcgan-world + clip-world
    python -m bench.search --generator biggan-world --seeds 10 --budget 1024
    python -m bench.search --quick               # fewer seeds and a smaller budget
    python -m bench.search --device cuda         # the same figures on a GPU

Every figure is a ratio or a mean measured in this one run, on this machine.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from bench.search_options import SearchBenchParser
from generators.registry import load_generator
from search.clip import load_clip
from search.config import SearchConfig
from search.engine import run_search
from search.problem import LatentSearchProblem
from search.scorer import ClipScorer, Prompt

PROMPTS = ("a beautiful landscape", "a snowy glacier", "a street at night")


def raw_throughput(generator, scorer, prompt, batch: int, repeats: int) -> float:
    """Images/s of generate + score alone, the ceiling for any search loop."""
    latents = generator.latent_space.sample(batch, torch.Generator().manual_seed(0))
    with torch.no_grad():
        scorer.similarity(generator.generate(latents), prompt).cpu()  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            # .cpu() as the search does: it waits for the device, so the clock stays honest
            scorer.similarity(generator.generate(latents, batch_size=batch), prompt).cpu()
    return batch * repeats / (time.perf_counter() - start)


def loop_throughput(generator, scorer, prompt, batch: int, generations: int) -> float:
    """Evaluations/s of the whole GA loop (pymoo operators, bookkeeping, progress callback)."""
    warm = SearchConfig(algorithm="ga", pop_size=batch, generations=1, batch_size=batch)
    run_search(generator, scorer, prompt, warm, seed=0, progress=False)  # first-call costs
    config = SearchConfig(algorithm="ga", pop_size=batch, generations=generations, batch_size=batch)
    result = run_search(generator, scorer, prompt, config, seed=0, progress=False)
    return result.evaluations / result.timings["search_s"]


def batching_gain(generator, scorer, prompt, batch: int) -> float:
    X = generator.latent_space.sample(batch, torch.Generator().manual_seed(1)).numpy()
    timings = {}
    for size in (batch, 1):
        problem = LatentSearchProblem(generator, scorer, prompt, batch_size=size)
        problem.score(X[:2])  # warm-up
        start = time.perf_counter()
        problem.score(X)
        timings[size] = time.perf_counter() - start
    return timings[1] / timings[batch]


def quality(generator, scorer, prompts, seeds: int, budget: int, pop: int, refine_steps: int) -> dict:
    variants = {
        "random": SearchConfig(algorithm="random", pop_size=pop, budget=budget),
        "ga": SearchConfig(algorithm="ga", pop_size=pop, budget=budget),
        "cmaes": SearchConfig(algorithm="cmaes", pop_size=pop, budget=budget),
        "ga+refine": SearchConfig(algorithm="ga", pop_size=pop, budget=budget, refine_steps=refine_steps),
    }
    scores = {name: [] for name in variants}
    for prompt in prompts:
        for seed in range(seeds):
            for name, config in variants.items():
                result = run_search(generator, scorer, prompt, config, seed=seed, progress=False)
                scores[name].append(result.similarity)
    return {name: np.array(values) for name, values in scores.items()}


def main() -> None:
    parser = SearchBenchParser(__doc__, seeds=10, budget=1024, quick=(3, 256))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    args = parser.parse_args()
    torch.manual_seed(0)
    generator = load_generator(args.generator, device=args.device)
    scorer = ClipScorer(load_clip(args.clip, device=args.device))
    prompt = Prompt(PROMPTS[0])
    print(f"generator {args.generator}, clip {args.clip}, device {args.device}, torch threads {torch.get_num_threads()}")

    raw = raw_throughput(generator, scorer, prompt, args.batch, repeats=24)
    loop = loop_throughput(generator, scorer, prompt, args.batch, generations=24)
    print(f"raw generate+score: {raw:8.1f} images/s at batch {args.batch}")
    print(f"search loop (GA):   {loop:8.1f} evaluations/s   ratio {loop / raw:.3f}  (target >= 0.95)")
    gain = batching_gain(generator, scorer, prompt, args.batch)
    print(f"batched population / one at a time: {gain:.1f}x  (target >= 8x)")

    scores = quality(generator, scorer, PROMPTS, args.seeds, args.budget, args.pop, args.refine_steps)
    runs = len(PROMPTS) * args.seeds
    print(f"\nfinal similarity at {args.budget} evaluations, {args.seeds} seeds x {len(PROMPTS)} prompts:")
    for name, values in scores.items():
        print(f"  {name:10s} {values.mean():.4f} +- {values.std(ddof=1):.4f}")
    for a, b in (("ga", "random"), ("cmaes", "ga"), ("ga+refine", "ga")):
        wins = int((scores[a] > scores[b]).sum())
        gain = statistics.mean(scores[a] - scores[b])
        print(f"  {a} vs {b}: wins {wins}/{runs}, mean difference {gain:+.4f}")


if __name__ == "__main__":
    main()
