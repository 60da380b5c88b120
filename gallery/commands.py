"""``artbias campaign run``, ``artbias gallery export`` and ``artbias demo`` (the main job).

Registration stays light (no torch import); the work happens inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from data.errors import ConfigError

DEMO_CONFIG = Path(__file__).resolve().parent / "campaigns" / "demo.toml"
DEMO_GALLERY = "gallery-demo"
DEFAULT_PORT = 8501


def register(commands) -> None:
    run = commands.add("campaign run", _campaign_run,
                       "run a campaign TOML into a gallery (resumable: finished jobs are skipped)")
    run.add_argument("config", help="campaign TOML file (see gallery/campaigns/demo.toml)")
    run.add_argument("--gallery", help="gallery folder (default ./gallery-<campaign name>)")
    _executor_options(run, default_workers=default_workers())
    run.add_argument("--prune", action="store_true",
                     help="delete finished runs the config no longer plans (after edits)")

    export = commands.add("gallery export", _gallery_export,
                          "export a gallery's tables as Parquet or CSV files with a README of columns")
    export.add_argument("--gallery", required=True, help="gallery folder (holds gallery.duckdb)")
    export.add_argument("--out", required=True, help="output folder")
    export.add_argument("--format", choices=("parquet", "csv"), default="parquet")

    demo = commands.add("demo", _demo,
                        "the main job: run the demo campaign on the starter zoo, print the bias table, serve the gallery")
    demo.add_argument("--gallery", default=DEMO_GALLERY, help=f"gallery folder (default ./{DEMO_GALLERY})")
    demo.add_argument("--no-serve", action="store_true", help="stop after the bias table")
    demo.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"gallery port (default {DEFAULT_PORT})")
    _executor_options(demo, default_workers=default_workers())

    unguided = commands.add("eval generator", _eval_generator,
                            "class mix of a generator's unguided samples vs its training composition")
    unguided.add_argument("--generator", required=True, help="catalogue name or FAMILY:PATH")
    unguided.add_argument("--labeller", default="classifier-world", help="classifier name/folder or clip:NAME")
    unguided.add_argument("--n", type=int, default=1000)
    unguided.add_argument("--seed", type=int, default=0)
    unguided.add_argument("--format", choices=("table", "json"), default="table")
    unguided.add_argument("--device", default="cpu", help="where the generator runs (cpu, cuda, ...)")
    unguided.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                          help="generator loader option, e.g. num_inference_steps=50 (repeatable)")
    unguided.add_argument("--card", default=None, metavar="CARD_MD",
                          help="also write the result into this model card (its measured section)")


def _eval_generator(args: argparse.Namespace) -> int:
    from gallery.unguided import unguided_composition, write_card_section
    from generators.registry import parse_loader_options

    if args.card is not None and not Path(args.card).is_file():  # before, not after, the sampling
        raise ConfigError(f"model card {args.card} does not exist")
    found = unguided_composition(args.generator, args.labeller, n=args.n, seed=args.seed, device=args.device,
                                 options=parse_loader_options(args.option))
    if args.card is not None:
        write_card_section(found, args.card)
    if args.format == "json":
        print(json.dumps(found.to_dict(), indent=2))
        return 0
    print(f"{found.generator}: {found.n} unguided samples (seed {found.seed}) labelled by {found.labeller}")
    print(f"{'class':<10} {'samples':>8} {'training':>9}")
    for i, name in enumerate(found.classes):
        training = f"{found.training[i]:9.3f}" if found.training else f"{'?':>9}"
        print(f"{name:<10} {found.proportions[i]:8.3f} {training}")
    if found.total_variation is not None:
        print(f"total variation distance: {found.total_variation:.3f}")
    return 0


def default_workers() -> int:
    """One process per core, at most 4: small models use cores far better as single-threaded
    processes than as torch threads in one process (measured: 2.5x faster on 2 cores)."""
    return max(1, min(4, os.cpu_count() or 1))


def _executor_options(parser: argparse.ArgumentParser, default_workers: int) -> None:
    parser.add_argument("--workers", type=int, default=default_workers,
                        help=f"worker processes (default {default_workers}; 1 runs jobs in this process)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _run(config, gallery: str, args: argparse.Namespace):
    from gallery.campaign import preflight, run_campaign
    from gallery.executor import make_executor

    preflight(config)  # a missing model stops us before anything is said or written
    executor = make_executor(args.workers)
    print(f"campaign {config.name!r}: running into {Path(gallery).resolve()} ({executor.describe()})")
    summary = run_campaign(config, gallery, executor=executor, progress=not args.quiet,
                           prune=getattr(args, "prune", False))
    print("\n".join(summary.lines()))
    return summary


def _campaign_run(args: argparse.Namespace) -> int:
    from gallery.config import load_config

    config = load_config(args.config)
    summary = _run(config, args.gallery or f"gallery-{config.campaign_id}", args)
    return 1 if summary.failed else 0


def _gallery_export(args: argparse.Namespace) -> int:
    from gallery.store import export_gallery

    written = export_gallery(args.gallery, args.out, args.format)
    for path in written:
        print(path)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from data.errors import ConfigError
    from gallery.config import load_config

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
    config = load_config(DEMO_CONFIG)
    summary = _run(config, args.gallery, args)
    print()
    print_bias(args.gallery)
    if summary.failed:
        print(f"\n{summary.failed} jobs failed; run `artbias demo` again to retry them")
    if args.no_serve:
        print(f"\nbrowse it with: artbias gallery --gallery {args.gallery} --port {args.port}")
        return 1 if summary.failed else 0
    from gallery.cli import main

    return main(["gallery", "--gallery", str(args.gallery), "--port", str(args.port)])


def print_bias(gallery: str | Path) -> None:
    """The bias report (``gallery.bias``), or plain class counts when it cannot be made."""
    from data.errors import ArtbiasError

    try:
        from gallery.bias import gallery_bias, render
    except ImportError as error:
        print(f"(the bias report is unavailable: {error}; class counts per generator instead)")
    else:
        try:
            print(render(gallery_bias(gallery), "table"))
            return
        except ArtbiasError as error:
            print(f"(no bias report: {error}; class counts per generator instead)")
        except Exception as error:  # the campaign's results must still be shown
            print(f"(the bias report failed: {type(error).__name__}: {error}; class counts per generator instead)")
    print(class_counts_table(gallery))


def class_counts_table(gallery: str | Path) -> str:
    """Per generator and prompt: how many chosen artworks (and baseline samples) each class got."""
    import pandas as pd

    from gallery.store import Store

    store = Store(gallery)
    labellers = store.labellers()
    if not labellers:
        return "no labelled artworks yet"
    labeller = next((name for name in labellers if not name.startswith("clip:")), next(iter(labellers)))
    baseline = store.label_counts(labeller, role="baseline", kind="baseline").assign(prompt="(unguided baseline)")
    searched = store.label_counts(labeller, role="chosen", kind="search")
    table = pd.concat([baseline, searched]).pivot_table(
        index=["generator", "prompt"], columns="predicted", values="n", aggfunc="sum", fill_value=0)
    table["n"] = table.sum(axis=1)
    return f"class counts by {labeller} (chosen artworks; baselines: every sample)\n{table.to_string()}"
