"""Does the search stay on the generator's manifold? Each search option, measured on its artworks.

Run by hand (never in CI):
    python -m bench.manifold                          # dcgan-world + clip-world, 5 seeds
    python -m bench.manifold --generator biggan-world --seeds 10 --budget 512
    python -m bench.manifold --quick                  # 2 seeds, budget 128

For every option (GA, GA kept near each seed's own prior draw (anchored, per radius), GA kept on
the prior's typical radius, GA + gradient refinement, GA scored over augmented views, NSGA-II
with the discriminator's realism as a second objective, best-of-N from the prior), one
search per class prompt the generator can paint and per seed; then, on the chosen artworks:

- **hit**: the share that both scene labellers (classifier-world, and classifier-world-b,
  which the search never sees) call the prompted class;
- **kappa**: the two labellers' agreement on them (a labeller fooled by an off-manifold
  texture disagrees with one that was not);
- **FD ratio**: their world Fréchet distance to fresh renders of the prompted classes, over
  that of unguided samples of the same classes (the first ones classifier-world calls each
  prompted class), at the same n and class mix (docs/fidelity.md; the issue's bar: <= 1.25);
- **precision** (and its ratio to the unguided samples'; 1: as realistic, the bar's mirror:
  >= 0.8): the share of chosen artworks inside the k-nearest-neighbour manifold of 1,000
  fresh renders of the prompted classes (``classifier.fidelity.world_realism``). Unlike the
  Fréchet distance it does not count a narrow set of realistic pictures as a fault;
- **diversity**: per prompt, the mean pixel distance between the seeds' chosen artworks (at
  16 px: colour, light and layout, not texture), over that between as many fresh renders of
  the class (1: as varied as the world; near 0: one picture whatever the seed), averaged
  over prompts;
- the mean CLIP similarity reached, and seconds per search.

A sample sheet per option is written under --out, so that a person can look: the numbers
are only worth as much as the images agree with them.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from bench.search_options import SearchBenchParser
from classifier.fidelity import REFERENCE_SEED, world_fidelity, world_renders
from classifier.generator_eval import labeller_agreement
from classifier.labellers import load_labeller
from generators.registry import load_generator
from generators.training_record import training_composition
from search.clip import load_clip
from search.config import SearchConfig
from search.engine import run_search
from search.scorer import ClipScorer

CLASS_PROMPTS = {"buildings": "tall buildings", "forest": "a dense forest", "glacier": "a snowy glacier",
                 "mountain": "a mountain", "sea": "a calm sea", "street": "a busy street"}
VIEWS = 8  # augmented views per score for the "views" option


def options(pop: int, budget: int, refine_steps: int, anchor_radii=(), anchor_draws=(1,)) -> dict[str, tuple[SearchConfig, int]]:
    """Each option: its search config and the scorer's augmented views."""
    # With more than one anchor draw the draws come out of the budget, so every option spends the same.
    anchored = {
        f"ga+anchor{r:g}" + (f"x{d}" if d > 1 else ""):
            (SearchConfig(algorithm="ga", pop_size=pop, budget=budget - (d if d > 1 else 0), anchor_radius=r,
                          anchor_draws=d), 0)
        for r in anchor_radii for d in anchor_draws
    }
    return anchored | {
        "ga": (SearchConfig(algorithm="ga", pop_size=pop, budget=budget), 0),
        "ga+typical": (SearchConfig(algorithm="ga", pop_size=pop, budget=budget, typical_set=True), 0),
        "ga+refine": (SearchConfig(algorithm="ga", pop_size=pop, budget=budget, refine_steps=refine_steps), 0),
        "ga+views": (SearchConfig(algorithm="ga", pop_size=pop, budget=budget), VIEWS),
        "nsga2": (SearchConfig(algorithm="nsga2", pop_size=pop, budget=budget), 0),
        "random": (SearchConfig(algorithm="random", pop_size=pop, budget=budget), 0),
    }


def paintable_classes(generator_name: str, classes: list[str]) -> list[str]:
    """The classes in the generator's training data (all, when it records none)."""
    shares = training_composition(generator_name, classes)
    return [c for c, s in zip(classes, shares, strict=True) if s > 0] if shares else list(classes)


def measure_option(generator, clip, config, views, prompts, seeds, labellers, render_spread) -> dict:
    scorer = ClipScorer(clip, augmentations=views)
    images, wanted, similarity = [], [], []
    started = time.perf_counter()
    for target, prompt in prompts.items():
        for seed in range(seeds):
            result = run_search(generator, scorer, prompt, config, seed=seed, progress=False)
            images.append(result.image)
            wanted.append(target)
            similarity.append(result.similarity)
    seconds = (time.perf_counter() - started) / len(images)
    images = torch.stack(images).float()
    first, second = labellers
    classes = list(first.classes)
    mine = first.predict(images).argmax(1).numpy()
    theirs = np.array([classes.index(second.classes[i]) for i in second.predict(images).argmax(1).tolist()])
    target = np.array([classes.index(name) for name in wanted])
    composition = {name: 1 / len(prompts) for name in prompts}
    frechet, realism = world_fidelity(images, composition)
    per_prompt = images.reshape(len(prompts), seeds, *images.shape[1:])
    diversity = [spread(chosen) / render_spread[name] for name, chosen in zip(prompts, per_prompt, strict=True)]
    return {
        "images": images,
        "hit": float(((mine == target) & (theirs == target)).mean()),
        "kappa": labeller_agreement(mine, classes, "classifier-world-b", images)["kappa"],
        "fd": frechet.value,
        "precision": realism.precision,
        "diversity": float(np.mean(diversity)),
        "similarity": float(np.mean(similarity)),
        "seconds": seconds,
    }


def spread(images: torch.Tensor) -> float:
    """Mean pairwise Euclidean distance between the images at 16 px."""
    from scipy.spatial.distance import pdist

    small = torch.nn.functional.adaptive_avg_pool2d(images.float(), 16).flatten(1)
    return float(pdist(small.numpy()).mean())


def with_interval(share: float, n: int) -> str:
    """"0.78 [0.66, 0.87]": a share of n images with its Wilson 95% interval (statsmodels)."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(round(share * n), n, method="wilson")
    return f"{share:.2f} [{low:.2f}, {high:.2f}]"


def unguided_of_each_class(generator, labeller, prompts: dict[str, str], per_class: int, pool: int = 8192):
    """The control for the chosen artworks: unguided samples, the first ``per_class`` that the
    labeller calls each prompted class, in the prompts' order (the same n and class mix as the
    searches', so a rare class the prompts ask for is not counted against the search)."""
    found: dict[str, list[torch.Tensor]] = {name: [] for name in prompts}
    rng = torch.Generator().manual_seed(12345)
    for _ in range(0, pool, 256):
        with torch.no_grad():
            images = generator.generate(generator.latent_space.sample(256, rng)).float().cpu()
            labels = labeller.predict(images).argmax(1).tolist()
        for image, label in zip(images, labels, strict=True):
            name = labeller.classes[label]
            if name in found and len(found[name]) < per_class:
                found[name].append(image)
        if all(len(v) == per_class for v in found.values()):
            return torch.stack([image for name in prompts for image in found[name]])
    short = {name: len(v) for name, v in found.items() if len(v) < per_class}
    raise SystemExit(f"only {short} unguided samples of those classes in {pool} draws")


def file_stem(generator: str) -> str:
    """A generator spec as one file name ("biggan:/runs/x" -> "biggan_x")."""
    family, _, path = generator.partition(":")
    return f"{family}_{Path(path).name}" if path else family


def save_sheet(images: torch.Tensor, columns: int, path: Path) -> None:
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    big = torch.nn.functional.interpolate(images.clamp(-1, 1) * 0.5 + 0.5, scale_factor=2, mode="nearest")
    save_image(big, path, nrow=columns, padding=2)


def main() -> None:
    parser = SearchBenchParser(__doc__, seeds=5, budget=512, quick=(2, 128))
    parser.add_argument("--only", default=None, help="comma-separated options to run (default: all)")
    parser.add_argument("--out", default="bench-out/manifold", help="sample sheets go here")
    parser.add_argument("--anchor-radii", default="0.7,1", help="comma-separated radii of the anchored GA options")
    parser.add_argument("--anchor-draws", default="1", help="comma-separated anchor draws of the anchored GA options "
                                                             "(N > 1: the best of N, taken from the budget)")
    args = parser.parse_args()
    torch.manual_seed(0)
    generator = load_generator(args.generator)
    clip = load_clip(args.clip)
    labellers = (load_labeller("classifier-world"), load_labeller("classifier-world-b"))
    classes = list(labellers[0].classes)
    prompts = {name: CLASS_PROMPTS[name] for name in paintable_classes(args.generator, classes)}
    n = len(prompts) * args.seeds
    control = unguided_of_each_class(generator, labellers[0], prompts, args.seeds)
    composition = {name: 1 / len(prompts) for name in prompts}
    frechet, realism = world_fidelity(control, composition)
    reference, reference_precision = frechet.value, realism.precision
    # How varied fresh renders of each class are: the unit of every diversity figure.
    render_spread = {name: spread(world_renders(args.seeds, {name: 1.0}, REFERENCE_SEED)) for name in prompts}
    control_diversity = np.mean([spread(images) / render_spread[name]
                                 for name, images in zip(prompts, control.split(args.seeds), strict=True)])
    print(f"generator {args.generator}, clip {args.clip}: {len(prompts)} class prompts x {args.seeds} seeds "
          f"(n = {n}), budget {args.budget}; unguided samples of the same classes: world FD {reference:.2f}, "
          f"precision {with_interval(reference_precision, n)}, diversity {control_diversity:.2f}")
    print(f"{'option':13s} {'hit':>5s} {'kappa':>6s} {'FD':>7s} {'FD ratio':>9s} {'precision [95% CI]':>19s} {'P ratio':>8s} "
          f"{'diversity':>9s} {'similarity':>10s} {'s/search':>9s}")
    radii = [float(r) for r in args.anchor_radii.split(",") if r]
    draws = [int(d) for d in args.anchor_draws.split(",") if d]
    chosen = options(args.pop, args.budget, args.refine_steps, radii, draws)
    if args.only:
        chosen = {name: chosen[name] for name in args.only.split(",")}
    for name, (config, views) in chosen.items():
        if config.uses_realism and not generator.has_realism:
            print(f"{name:13s} (skipped: {args.generator} has no discriminator)")
            continue
        found = measure_option(generator, clip, config, views, prompts, args.seeds, labellers, render_spread)
        kappa = f"{found['kappa']:.3f}" if found["kappa"] is not None else "  n/a"
        print(f"{name:13s} {found['hit']:5.2f} {kappa:>6s} {found['fd']:7.2f} {found['fd'] / reference:9.2f} "
              f"{with_interval(found['precision'], n):>19s} {found['precision'] / max(reference_precision, 1e-9):8.2f} "
              f"{found['diversity']:9.2f} {found['similarity']:10.4f} {found['seconds']:9.1f}", flush=True)
        save_sheet(found["images"], args.seeds, Path(args.out) / f"{file_stem(args.generator)}_{name}.png")
    print(f"\nsample sheets (a row per class prompt, a column per seed): {args.out}/")


if __name__ == "__main__":
    main()
