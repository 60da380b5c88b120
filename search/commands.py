"""``artbias search``: one CLIP-guided search, written to a folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from search.config import ALGORITHMS, PARETO_RULES, SearchConfig

DEFAULT_CLIP = "clip-world"


def register(commands) -> None:
    parser = commands.add("search", _search, "find the latent whose image CLIP finds closest to a prompt")
    parser.add_argument("--generator", required=True, help="generator name or spec (see `artbias models list`)")
    parser.add_argument("--prompt", required=True, help='e.g. "a beautiful landscape"')
    parser.add_argument("--negative", action="append", default=[], help="a prompt to steer away from (repeatable)")
    parser.add_argument("--template", action="append", default=[],
                        help="prompt-ensemble template with {} (repeatable; default '{}')")
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="ga", help="search algorithm")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--budget", type=int, help="evaluations (whole populations)")
    size.add_argument("--gens", type=int, default=8, help="generations")
    parser.add_argument("--pop", type=int, default=32, help="population size")
    parser.add_argument("--refine-steps", type=int, default=0, help="Adam steps after the search (0 = off)")
    parser.add_argument("--pareto-rule", choices=PARETO_RULES, default="knee",
                        help="how nsga2 picks the artwork from its Pareto front")
    parser.add_argument("--realism-threshold", type=float, default=0.0,
                        help="least realism an artwork needs under --pareto-rule threshold")
    parser.add_argument("--augment", type=int, default=0, help="augmented views averaged per score")
    parser.add_argument("--typical-set", action="store_true",
                        help="ga/nsga2: keep Gaussian latents on the prior's typical radius")
    parser.add_argument("--anchor-radius", type=float, default=None, metavar="R",
                        help="ga/nsga2/random: search only within R prior stds (RMS) of the seed's own "
                             "prior draw, so each seed varies its own picture (two draws lie ~1.41 apart)")
    parser.add_argument("--anchor-draws", type=int, default=1, metavar="N",
                        help="with --anchor-radius: anchor on the best-scored of the seed's first N prior draws")
    parser.add_argument("--top-k", type=int, default=4, help="best images kept (top_XX.png)")
    parser.add_argument("--seed", type=int, default=0, help="search seed (same seed and settings, same latent)")
    parser.add_argument("--clip", default=DEFAULT_CLIP, help="CLIP model that scores the images")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    register_training(commands)


def _search(args: argparse.Namespace) -> int:
    from data.validation import check_device, check_seed
    from generators.registry import load_generator
    from search.clip import load_clip
    from search.engine import run_search
    from search.output import check_output, write_result
    from search.scorer import ClipScorer, Prompt

    # Validate everything cheap before loading any model: settings, prompt, seed, device, --out.
    config = SearchConfig(
        algorithm=args.algorithm, pop_size=args.pop, generations=args.gens, budget=args.budget,
        refine_steps=args.refine_steps, pareto_rule=args.pareto_rule, realism_threshold=args.realism_threshold,
        augmentations=args.augment, top_k=args.top_k, typical_set=args.typical_set, anchor_radius=args.anchor_radius,
        anchor_draws=args.anchor_draws,
    )
    prompt = Prompt(args.prompt, templates=tuple(args.template) or ("{}",), negatives=tuple(args.negative))
    check_seed(args.seed)
    check_device(args.device)
    check_output(args.out, force=args.force)
    generator = load_generator(args.generator, device=args.device)
    scorer = ClipScorer(load_clip(args.clip, device=args.device), augmentations=config.augmentations)
    result = run_search(generator, scorer, prompt, config, seed=args.seed, progress=not args.quiet)
    out = write_result(result, args.out, force=args.force)
    print(json.dumps({"out": str(out), "best_similarity": result.similarity, "realism": result.realism,
                      "evaluations": result.evaluations, "image": str(out / "image.png")}))
    return 0


def register_training(commands) -> None:
    train = commands.add("train clip", _train_clip, "train the starter CLIP on a world dataset's captions")
    train.add_argument("--data", required=True, help="world dataset folder (with manifest.parquet)")
    train.add_argument("--out", required=True, help="output model folder (open_clip local-dir layout)")
    train.add_argument("--architecture", default="clip-world", help="config in search/configs/")
    train.add_argument("--epochs", type=int, default=12, help="passes over the captions")
    train.add_argument("--batch-size", type=int, default=256, help="image-caption pairs per step")
    train.add_argument("--lr", type=float, default=2e-3, help="learning rate")
    train.add_argument("--seed", type=int, default=0, help="training seed")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate = commands.add("eval clip", _eval_clip, "zero-shot accuracy and beauty correlation on fresh world scenes")
    evaluate.add_argument("--model", default=DEFAULT_CLIP, help="CLIP model name or spec")
    evaluate.add_argument("--n", type=int, default=1200, help="fresh world scenes to score")
    evaluate.add_argument("--seed", type=int, default=12345, help="seed of the fresh scenes")
    evaluate.add_argument("--rule", type=Path, default=None, metavar="RULE.json",
                          help="judge beauty by this aesthetic rule (default: the one the CLIP was trained "
                               "under, from its training.json, else the world's)")


def _train_clip(args: argparse.Namespace) -> int:
    from data.files import check_can_create
    from data.validation import check_limit, check_number, check_seed
    from search.clip_training import ClipTrainConfig, train_clip

    check_number(args.lr, "--lr", above=0)
    check_seed(args.seed)
    check_limit("batch_size", args.batch_size, "--batch-size")
    check_can_create(args.out, "output folder")

    config = ClipTrainConfig(data=args.data, out=args.out, architecture=args.architecture, epochs=args.epochs,
                             batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    record = train_clip(config, progress=not args.quiet)
    print(json.dumps({"out": args.out, **record["metrics"]}, indent=2))
    return 0


def _eval_clip(args: argparse.Namespace) -> int:
    from data.validation import check_count, check_seed
    from search.clip import load_clip
    from search.scorer import ClipScorer
    from search.world_eval import evaluate_world_clip

    check_count(args.n, "--n", "images", minimum=6)  # one scene per class at least
    check_seed(args.seed)
    clip = load_clip(args.model)
    rule = clip_rule(clip, args.rule)
    print(json.dumps(evaluate_world_clip(ClipScorer(clip), n=args.n, seed=args.seed, rule=rule), indent=2))
    return 0


def clip_rule(clip, rule_path=None):
    """The aesthetic rule to judge ``clip`` by: ``rule_path`` when given, else the rule its
    training record names, else the world's default rule."""
    from data.world.aesthetic import AestheticRule
    from search.clip_training import trained_rule

    if rule_path is not None:
        return AestheticRule.load(rule_path)
    from search.clip import clip_folder

    folder = clip_folder(clip)
    return (trained_rule(folder) if folder else None) or AestheticRule.load()
