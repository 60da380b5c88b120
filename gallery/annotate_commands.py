"""``artbias annotate export`` (a blind sample to label elsewhere, or every human label made so
far), ``artbias annotate import`` (labels back, stored as ``human:NAME``) and ``artbias annotate
ingest`` (the gallery app's annotation panel's files, stored as ``human:NAME``).

Registration stays light: pandas and the store load inside the handlers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gallery.report_commands import DEFAULT_GALLERY


def register(commands) -> None:
    commands.describe(
        "annotate", "human labels: export a blind sample of a gallery to label, import labels made "
        "elsewhere, ingest the gallery app's annotation panel (they measure the labellers' errors on "
        "generated images; docs/annotation.md)", [
            "artbias annotate export --gallery gallery-demo --out to-label.csv --sample 10 --seed 0",
            "artbias annotate import labelled.csv --gallery gallery-demo",
            "artbias annotate ingest --gallery gallery-demo",
            "artbias annotate export --labels --gallery gallery-demo --out human-labels.csv",
        ])
    export = commands.add("annotate export", _export,
                          "write a blind CSV of artworks to label (stratified per generator and prompt), "
                          "or with --labels every human label made so far")
    export.add_argument("--gallery", default=DEFAULT_GALLERY, help="gallery folder (holds gallery.duckdb)")
    export.add_argument("--out", type=Path, required=True, help="the CSV to write")
    export.add_argument("--sample", type=int, default=None, metavar="N",
                        help="artworks per generator and prompt (default: all of them)")
    export.add_argument("--seed", type=int, default=None, help="seed of the sample and its order (default: 0)")
    export.add_argument("--labels", action="store_true",
                        help="write the human labels instead (artwork_id, annotator, label: the CSV import reads), "
                             "the annotation panel's included")
    export.add_argument("--force", action="store_true", help="replace an existing file")

    imported = commands.add("annotate import", _import,
                            "store labels made elsewhere (CSV: artwork_id, annotator or labeller, label)")
    imported.add_argument("file", type=Path, help="CSV with columns artwork_id, label and annotator (NAME) "
                                                  "or labeller (human:NAME)")
    imported.add_argument("--gallery", default=DEFAULT_GALLERY, help="gallery folder (holds gallery.duckdb)")

    ingest = commands.add("annotate ingest", _ingest,
                          "store the annotation panel's labels (GALLERY/annotations/NAME.jsonl) as human:NAME")
    ingest.add_argument("--gallery", default=DEFAULT_GALLERY, help="gallery folder (holds gallery.duckdb)")


def _export(args: argparse.Namespace) -> int:
    from data.errors import ConfigError
    from gallery.annotations import export_labels, export_sheet

    if args.labels:
        if args.sample is not None or args.seed is not None:
            raise ConfigError("--sample and --seed choose a sheet to label; --labels writes the labels made so far")
        out, counts = export_labels(args.gallery, args.out, force=args.force)
        people = ", ".join(f"{name} {n}" for name, n in counts.items()) or "none yet"
        print(f"wrote {sum(counts.values())} human labels ({people}) to {out}; "
              f"'artbias annotate import {out} --gallery GALLERY' reads them")
        return 0
    out, n, strata = export_sheet(args.gallery, args.out, per_stratum=args.sample, seed=args.seed or 0,
                                  force=args.force)
    print(f"wrote {n} artworks from {strata} generator/prompt strata to {out} (blind: no model labels); "
          f"image_path is relative to {args.gallery}. Fill in annotator and label, then "
          f"'artbias annotate import {out} --gallery {args.gallery}'")
    return 0


def _import(args: argparse.Namespace) -> int:
    from gallery.annotations import import_annotations
    from gallery.bias import annotation_agreement

    summary = import_annotations(args.gallery, args.file)
    people = ", ".join(f"{spec} {n}" for spec, n in summary.labellers.items())
    generators = ", ".join(f"{g} {n}" for g, n in summary.generators.items())
    skipped = f"; {summary.skipped} rows without a label skipped" if summary.skipped else ""
    print(f"imported {summary.labels} labels ({people}) into {args.gallery}: {generators}{skipped}")
    for line in annotation_agreement(args.gallery, list(summary.labellers)):
        print(f"  {line}")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from gallery.annotations import ingest_annotations
    from gallery.bias import annotation_agreement

    summary = ingest_annotations(args.gallery)
    for note in summary.notes:
        print(f"  skipped: {note}")
    if not summary.labels:
        print(f"no annotation panel labels to ingest in {args.gallery} (the panel is ?page=annotate in "
              "'artbias gallery')")
        return 0
    people = ", ".join(f"{spec} {n}" for spec, n in summary.labels.items())
    left = f"; {summary.unsure} unsure and {summary.undone} undone (no label stored for them)" \
        if summary.unsure or summary.undone else ""
    print(f"ingested {sum(summary.labels.values())} labels ({people}) into {args.gallery}{left}")
    for line in annotation_agreement(args.gallery, [s for s, n in summary.labels.items() if n]):
        print(f"  {line}")
    return 0
