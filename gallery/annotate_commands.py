"""``artbias annotate export`` (a blind sample to label elsewhere) and ``artbias annotate import``
(the labels back, stored as ``human:NAME``).

Registration stays light: pandas and the store load inside the handlers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gallery.report_commands import DEFAULT_GALLERY


def register(commands) -> None:
    commands.describe(
        "annotate", "human labels: export a blind sample of a gallery to label, import labels made "
        "elsewhere (they measure the labellers' errors on generated images)", [
            "artbias annotate export --gallery gallery-demo --out to-label.csv --sample 10 --seed 0",
            "artbias annotate import labelled.csv --gallery gallery-demo",
        ])
    export = commands.add("annotate export", _export,
                          "write a blind CSV of artworks to label (stratified per generator and prompt)")
    export.add_argument("--gallery", default=DEFAULT_GALLERY, help="gallery folder (holds gallery.duckdb)")
    export.add_argument("--out", type=Path, required=True, help="the CSV to write")
    export.add_argument("--sample", type=int, default=None, metavar="N",
                        help="artworks per generator and prompt (default: all of them)")
    export.add_argument("--seed", type=int, default=0, help="seed of the sample and its order")
    export.add_argument("--force", action="store_true", help="replace an existing file")

    imported = commands.add("annotate import", _import,
                            "store labels made elsewhere (CSV: artwork_id, annotator or labeller, label)")
    imported.add_argument("file", type=Path, help="CSV with columns artwork_id, label and annotator (NAME) "
                                                  "or labeller (human:NAME)")
    imported.add_argument("--gallery", default=DEFAULT_GALLERY, help="gallery folder (holds gallery.duckdb)")


def _export(args: argparse.Namespace) -> int:
    from gallery.annotations import export_sheet

    out, n, strata = export_sheet(args.gallery, args.out, per_stratum=args.sample, seed=args.seed,
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
