"""``artbias campaign run``, ``artbias gallery export`` and ``artbias demo`` (the main job).

Registration stays light (no torch import); the work happens inside the handlers.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gallery.report_commands import DEFAULT_GALLERY, DEFAULT_PORT, check_port, serve

DEMO_CONFIG = Path(__file__).resolve().parent / "campaigns" / "demo.toml"


def register(commands) -> None:
    commands.describe("campaign", "run campaigns: prompts x generators x seeds, searched, labelled and "
                      "recorded into a gallery", [
                          "artbias campaign run gallery/campaigns/demo.toml",
                          "artbias campaign run my-campaign.toml --gallery galleries/mine --workers 4",
                      ])
    run = commands.add("campaign run", _campaign_run,
                       "run a campaign TOML into a gallery (resumable: finished jobs are skipped)")
    run.add_argument("config", help="campaign TOML file (see gallery/campaigns/demo.toml)")
    run.add_argument("--gallery", default=DEFAULT_GALLERY,
                     help="gallery folder (one gallery holds many campaigns)")
    _executor_options(run, default_workers=default_workers())
    run.add_argument("--prune", action="store_true",
                     help="delete finished runs the config no longer plans (after edits)")

    export = commands.add("gallery export", _gallery_export,
                          "export a gallery as a self-contained dataset: tables, images and a dataset card")
    # SUPPRESS: without its own --gallery, `artbias gallery --gallery G export` keeps G.
    export.add_argument("--gallery", default=argparse.SUPPRESS,
                        help=f"gallery folder (default: the one given before `export`, else ./{DEFAULT_GALLERY})")
    export.add_argument("--out", required=True, help="the export folder to make (new or empty)")
    export.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="table file format")
    export.add_argument("--force", action="store_true",
                        help="replace an earlier export at --out (never a folder of other files)")

    demo = commands.add("demo", _demo,
                        "the main job: run the demo campaign on the starter zoo, print the bias table, serve the gallery")
    demo.add_argument("--gallery", default=DEFAULT_GALLERY, help="gallery folder")
    demo.add_argument("--no-serve", action="store_true", help="stop after the bias table")
    demo.add_argument("--port", type=int, default=DEFAULT_PORT, help="gallery port")
    _executor_options(demo, default_workers=default_workers())


def default_workers() -> int:
    """One process per core, at most 4: small models use cores far better as single-threaded
    processes than as torch threads in one process (measured: 2.5x faster on 2 cores)."""
    return max(1, min(4, os.cpu_count() or 1))


def _executor_options(parser: argparse.ArgumentParser, default_workers: int) -> None:
    parser.add_argument("--workers", type=int, default=default_workers,
                        help="worker processes (1 runs jobs in this process; default: one per core, at most 4)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _run(config, gallery: str, args: argparse.Namespace):
    from gallery.campaign import run_campaign
    from gallery.executor import make_executor
    from gallery.planning import preflight

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
    summary = _run(config, args.gallery, args)
    return 1 if summary.failed else 0


def _gallery_export(args: argparse.Namespace) -> int:
    from gallery.store import export_gallery

    gallery = getattr(args, "gallery", DEFAULT_GALLERY)
    print("\n".join(export_gallery(gallery, args.out, args.format, force=args.force).lines()))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gallery.config import load_config

    if not args.no_serve:
        check_port(args.port)  # a busy port is said now, not after the campaign
    config = load_config(DEMO_CONFIG)
    summary = _run(config, args.gallery, args)
    print()
    print_bias(args.gallery)
    if summary.failed:
        print(f"\n{summary.failed} jobs failed; run `artbias demo` again to retry them")
    if args.no_serve:
        print(f"\nbrowse it with: artbias gallery --gallery {args.gallery} --port {args.port}")
        return 1 if summary.failed else 0
    return serve(args.gallery, args.port)


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

    from classifier.labellers import default_labeller
    from gallery.store import Store

    store = Store(gallery)
    labellers = store.labellers()
    if not labellers:
        return "no labelled artworks yet"
    labeller = default_labeller(list(labellers))
    baseline = store.label_counts(labeller, role="baseline", kind="baseline").assign(prompt="(unguided baseline)")
    searched = store.label_counts(labeller, role="chosen", kind="search")
    table = pd.concat([baseline, searched]).pivot_table(
        index=["generator", "prompt"], columns="predicted", values="n", aggfunc="sum", fill_value=0)
    table["n"] = table.sum(axis=1)
    return f"class counts by {labeller} (chosen artworks; baselines: every sample)\n{table.to_string()}"
