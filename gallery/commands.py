"""``artbias campaign run``, ``artbias gallery export`` and ``artbias demo`` (the main job).

Registration stays light (no torch import); the work happens inside the handlers.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gallery.executor import EXECUTORS, JOB_THREADS
from gallery.report_commands import DEFAULT_GALLERY, DEFAULT_PORT, check_port, serve, terminal_text

DEMO_CONFIG = Path(__file__).resolve().parent / "campaigns" / "demo.toml"


def register(commands) -> None:
    commands.describe("campaign", "run campaigns: prompts x generators x seeds, searched, labelled and "
                      "recorded into a gallery", [
                          "artbias campaign run gallery/campaigns/demo.toml",
                          "artbias campaign run my-campaign.toml --gallery galleries/mine --executor ray "
                          "--address auto --gpus-per-worker 1",
                          "artbias campaign check gallery/campaigns/published.toml",
                      ])
    run = commands.add("campaign run", _campaign_run,
                       "run a campaign TOML into a gallery (resumable: finished jobs are skipped)")
    run.add_argument("config", help="campaign TOML file (see gallery/campaigns/demo.toml)")
    run.add_argument("--gallery", default=DEFAULT_GALLERY,
                     help="gallery folder (one gallery holds many campaigns)")
    _executor_options(run, default_workers=default_workers())
    run.add_argument("--prune", action="store_true",
                     help="delete finished runs the config no longer plans (after edits)")
    check = commands.add("campaign check", _campaign_check,
                         "check a campaign offline: the config, every model it needs (where it would come "
                         "from, what is missing and how to supply it), evaluations and GPU-hours")
    check.add_argument("config", help="campaign TOML file")
    check.add_argument("--costs", default=None, metavar="COSTS.json",
                       help="per-image costs measured elsewhere (python -m bench.campaign_costs --out FILE; "
                            "default: gallery/costs.json, measured on CPU)")

    export = commands.add("gallery export", _gallery_export,
                          "export a gallery as a self-contained dataset: tables, images and a dataset card")
    # SUPPRESS: without its own --gallery, `artbias gallery --gallery G export` keeps G.
    export.add_argument("--gallery", default=argparse.SUPPRESS,
                        help=f"gallery folder (default: the one given before `export`, else ./{DEFAULT_GALLERY})")
    export.add_argument("--out", required=True, help="the export folder to make (new or empty)")
    export.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="table file format")
    export.add_argument("--force", action="store_true",
                        help="replace an earlier export at --out (never a folder of other files)")
    _register_embed(commands)

    demo = commands.add("demo", _demo,
                        "the main job: run the demo campaign on the starter zoo, print the bias table, serve the gallery")
    demo.add_argument("--gallery", default=DEFAULT_GALLERY, help="gallery folder")
    demo.add_argument("--no-serve", action="store_true", help="stop after the bias table")
    demo.add_argument("--port", type=int, default=DEFAULT_PORT, help="gallery port")
    _executor_options(demo, default_workers=default_workers())

    validate = commands.add(
        "validate", _validate,
        "check the method against the world's injected notion of beauty: for one CLIP, the beauty prompt "
        "against its controls on each generator, compared with the rule the CLIP learnt")
    validate.add_argument("--clip", required=True, help="CLIP name or folder (e.g. clip-world)")
    validate.add_argument("--generators", default="world-render",
                          help="comma-separated generators, e.g. world-render,dcgan-world,biggan-world")
    validate.add_argument("--rule", default=None, metavar="RULE.json",
                          help="the injected aesthetic rule (default: the CLIP's training record, else the world's)")
    validate.add_argument("--out", required=True, help="folder for validation.json, validation.md and the gallery")
    validate.add_argument("--seeds", type=int, default=24, help="seeds per replicate")
    validate.add_argument("--replicates", type=int, default=3, help="disjoint seed sets")
    validate.add_argument("--objective", choices=("contrast", "raw"), default="contrast",
                          help="search for the prompt minus its neutral control, or raw similarity")
    validate.add_argument("--baseline", type=int, default=300, help="unguided samples per generator")
    validate.add_argument("--anchor-radius", type=float, default=None, metavar="R",
                          help="anchored searches (artbias search --anchor-radius): each seed near its own prior draw")
    _executor_options(validate, default_workers=default_workers())


def default_workers() -> int:
    """One process per core, at most 4: small models use cores far better as single-threaded
    processes than as torch threads in one process (measured: 2.5x faster on 2 cores)."""
    return max(1, min(4, os.cpu_count() or 1))


def _executor_options(parser: argparse.ArgumentParser, default_workers: int) -> None:
    parser.add_argument("--workers", type=int, default=default_workers,
                        help="workers (1 runs jobs in this process; default: one per core, at most 4; "
                             "with --executor ray, capped by what the cluster holds)")
    parser.add_argument("--executor", choices=EXECUTORS, default="auto",
                        help="auto: this process for one worker, a process pool for more; ray: Ray actors")
    parser.add_argument("--threads-per-job", type=int, default=JOB_THREADS,
                        help="torch threads each job runs on, whatever the executor (results depend on it)")
    parser.add_argument("--address", default=None,
                        help="with --executor ray: the cluster (auto or HOST:PORT; default: start Ray here)")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0,
                        help="with --executor ray: GPUs each worker takes (jobs then run on CUDA)")
    parser.add_argument("--spool", default=None,
                        help="with --executor ray: shared folder where workers write PNGs and Parquet shards "
                             "for this machine to ingest (default: results come back through Ray)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _run(config, gallery: str, args: argparse.Namespace):
    from data.errors import ConfigError
    from data.validation import check_limit
    from gallery.campaign import run_campaign
    from gallery.executor import make_executor
    from gallery.planning import preflight

    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    check_limit("workers", args.workers, "--workers")
    preflight(config)  # a missing model stops us before anything is said or written
    executor = make_executor(args.workers, kind=args.executor, threads=args.threads_per_job, address=args.address,
                             gpus_per_worker=args.gpus_per_worker, spool=args.spool)
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


def _campaign_check(args: argparse.Namespace) -> int:
    from gallery.check import check_campaign

    report = check_campaign(args.config, costs=args.costs)
    print("\n".join(report.lines()))
    return 0 if report.ready else 1


def _register_embed(commands) -> None:
    embed = commands.add("gallery embed", _gallery_embed,
                         "compute CLIP image embeddings of a gallery's artworks for the embedding map and "
                         "'more like this' (resumable: only artworks without one)")
    # SUPPRESS: without its own --gallery, `artbias gallery --gallery G embed` keeps G.
    embed.add_argument("--gallery", default=argparse.SUPPRESS,
                       help=f"gallery folder (default: the one given before `embed`, else ./{DEFAULT_GALLERY})")
    embed.add_argument("--clip", default=None,
                       help="CLIP name or folder (default: the CLIP that steered the gallery's searches, else clip-world)")
    embed.add_argument("--batch-size", type=int, default=64, help="artworks embedded and written per transaction")
    embed.add_argument("--device", default="cpu", help="torch device for the CLIP (cpu, cuda, cuda:1...)")
    embed.add_argument("--quiet", action="store_true", help="no progress bar")


def _gallery_embed(args: argparse.Namespace) -> int:
    from data.validation import check_count
    from gallery.embeddings import embed_gallery

    check_count(args.batch_size, "--batch-size", "batch_size")
    summary = embed_gallery(getattr(args, "gallery", DEFAULT_GALLERY), args.clip, batch_size=args.batch_size,
                            device=args.device, progress=not args.quiet)
    print("\n".join(summary.lines()))
    return 1 if summary.unreadable else 0


def _gallery_export(args: argparse.Namespace) -> int:
    from data.files import check_can_create
    from gallery.store import GalleryError, export_gallery

    gallery = getattr(args, "gallery", DEFAULT_GALLERY)
    check_can_create(Path(args.out).expanduser().absolute(), "export folder")  # a read-only place: said first
    try:
        summary = export_gallery(gallery, args.out, args.format, force=args.force)
    except OSError as error:  # the export is built beside --out: nothing is left behind
        raise GalleryError(f"could not write the export to {args.out}: {error.strerror or error}") from None
    print("\n".join(summary.lines()))
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
            print(terminal_text(render(gallery_bias(gallery), "table")))
            return
        except ArtbiasError as error:
            print(f"(no bias report: {error}; class counts per generator instead)")
        except Exception as error:  # the campaign's results must still be shown
            print(f"(the bias report failed: {type(error).__name__}: {error}; class counts per generator instead)")
    print(terminal_text(class_counts_table(gallery)))


def class_counts_table(gallery: str | Path) -> str:
    """Per generator and prompt: how many chosen artworks (and baseline samples) each class got."""
    import pandas as pd

    from classifier.labellers import default_labeller
    from gallery.store import Store

    store = Store(gallery)
    labellers = store.labellers()
    if not labellers:
        return "no labelled artworks yet"
    labeller = default_labeller(list(labellers), {name: found['classes'] for name, found in labellers.items()})
    baseline = store.label_counts(labeller, role="baseline", kind="baseline").assign(prompt="(unguided baseline)")
    searched = store.label_counts(labeller, role="chosen", kind="search")
    table = pd.concat([baseline, searched]).pivot_table(
        index=["generator", "prompt"], columns="predicted", values="n", aggfunc="sum", fill_value=0)
    table["n"] = table.sum(axis=1)
    return f"class counts by {labeller} (chosen artworks; baselines: every sample)\n{table.to_string()}"


def _validate(args: argparse.Namespace) -> int:
    from gallery.validation import ValidationSettings, markdown, run_validation

    generators = tuple(g.strip() for g in args.generators.split(",") if g.strip())
    settings = ValidationSettings(clip=args.clip, generators=generators, rule=args.rule, seeds=args.seeds,
                                  replicates=args.replicates, objective=args.objective, baseline=args.baseline,
                                  anchor_radius=args.anchor_radius)
    document = run_validation(settings, args.out, workers=args.workers, progress=not args.quiet)
    print(markdown(document))
    print(f"written: {Path(args.out) / 'validation.json'}, {Path(args.out) / 'validation.md'}")
    return 1 if document["campaign"]["failed"] else 0
