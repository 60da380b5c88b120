"""``artbias data ...``: build world datasets, draw contact sheets, check image folders.

Registration stays light (no numpy/torch imports); handlers import what they need.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(commands) -> None:
    commands.describe("data", "make and check image datasets: the procedural scenery world, its contact "
                      "sheet, scans for bad files", [
                          "artbias data world --out worlds/skewed --n 2000 --composition mountain=0.5,sea=0.5",
                          "artbias data check worlds/skewed",
                      ])
    world = commands.add("data world", _world, "render a procedural scenery dataset (ImageFolder + manifest)")
    world.add_argument("--out", type=Path, required=True, help="output folder (must be new or empty)")
    world.add_argument("--n", type=int, required=True, help="number of images")
    world.add_argument("--composition", default=None,
                       help="class weights summing to 1, e.g. mountain=0.5,sea=0.25,street=0.25 "
                            "(default: uniform over the six classes)")
    world.add_argument("--size", type=int, default=64, help="image side in pixels (>= 32)")
    world.add_argument("--seed", type=int, default=0, help="seed of the scenes (same seed, same images)")
    world.add_argument("--test-fraction", type=float, default=0.2,
                       help="share of each class put in test/ (0 for none)")
    world.add_argument("--aesthetic", type=Path, default=None, metavar="RULE.json",
                       help="the aesthetic prior captions follow, in data/world/aesthetic.json's format "
                            "(default: that file)")
    world.add_argument("--label-by", choices=("class", "time", "weather"), default="class",
                       help="the scene attribute that names the image folders (time or weather: data "
                            "for an attribute classifier)")
    world.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    world.add_argument("--quiet", action="store_true", help="no progress bar")

    sheet = commands.add("data sheet", _sheet, "draw the world's contact sheet (one row per class)")
    sheet.add_argument("--out", type=Path, default=Path("docs/world_contact_sheet.png"), help="the PNG to write")
    sheet.add_argument("--per-class", type=Path, default=None,
                       help="also write docs-style sheets per class into this folder")
    sheet.add_argument("--size", type=int, default=64, help="scene side in pixels")
    sheet.add_argument("--scale", type=int, default=2, help="nearest-neighbour upscaling")

    check = commands.add("data check", _check, "scan an image dataset and report bad files")
    check.add_argument("root", type=Path, help="Intel (seg_train/seg_test), world or ImageFolder root")


def _world(args: argparse.Namespace) -> int:
    from data.files import check_output_folder
    from data.validation import check_limit, check_number, check_seed
    from data.world.builder import WorldConfig, build_world, parse_composition, uniform_composition
    from data.world.render import keep_freed_memory

    # Sizes, numbers and --out first: nothing is planned or rendered for a command that must fail.
    check_limit("images", args.n, "--n")
    check_limit("image_side", args.size, "--size")
    check_seed(args.seed)
    check_number(args.test_fraction, "--test-fraction", minimum=0, below=1)
    check_output_folder(args.out, force=args.force, earlier=_is_world, what="output folder")
    keep_freed_memory()  # a CLI process may keep its heap: ~30% faster rendering

    composition = (parse_composition(args.composition) if args.composition is not None
                   else uniform_composition())
    config = WorldConfig(n=args.n, composition=composition, size=args.size, seed=args.seed,
                         test_fraction=args.test_fraction, label_by=args.label_by)
    from data.world.aesthetic import AestheticRule

    rule = AestheticRule.load(args.aesthetic)  # a bad rule: one clear error before anything is written
    out = build_world(args.out, config, force=args.force, progress=not args.quiet, rule=rule)
    print(out)
    return 0


def _is_world(folder: Path) -> bool:
    """Whether ``folder`` holds a world dataset (its manifest): what ``--force`` may replace."""
    return (folder / "manifest.parquet").is_file()


def _sheet(args: argparse.Namespace) -> int:
    from data.errors import ConfigError
    from data.validation import check_limit
    from data.world.contact_sheet import write_sheets
    from data.world.render import MIN_SIZE

    if args.size < MIN_SIZE or args.scale < 1:
        raise ConfigError(f"--size must be >= {MIN_SIZE} and --scale >= 1")
    check_limit("image_side", args.size * args.scale, "--size x --scale")
    for path in write_sheets(args.out, args.per_class, args.size, args.scale):
        print(path)
    return 0


def _check(args: argparse.Namespace) -> int:
    from data.datasets import check_dataset

    summary = check_dataset(args.root)
    print(json.dumps(summary, indent=2))
    return 1 if summary["bad"] else 0
