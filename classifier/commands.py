"""``artbias train classifier``, ``artbias eval classifier``, ``artbias classify`` and
``artbias eval generator`` (a generator's unguided samples, labelled).

Registration stays light (no torch import); the work happens inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from data.errors import ConfigError

# The architectures are the config files (read by name only: registration imports no torch).
ARCHS = tuple(sorted(path.stem for path in (Path(__file__).parent / "configs").glob("*.json")))
DEFAULT_MODEL = "classifier-world"


def register(commands) -> None:
    train = commands.add("train classifier", _train, "train a scene classifier (transfer learning or from scratch)")
    train.add_argument("--arch", choices=ARCHS, required=True, help="architecture (classifier/configs/)")
    train.add_argument("--data", required=True, help="ImageFolder, Intel (seg_train/seg_test) or world (train/test) folder")
    train.add_argument("--weights", help="imagenet, none or a PATH (default: imagenet where published, else none)")
    train.add_argument("--out", required=True, help="output folder for the saved classifier")
    train.add_argument("--epochs", type=int, help="total epochs (default: the architecture's recipe)")
    train.add_argument("--freeze-epochs", type=int, help="epochs training only the new head on a frozen backbone")
    train.add_argument("--seed", type=int, default=0, help="training seed (also the validation split)")
    train.add_argument("--size", type=int, help="input size in pixels (default: the architecture's)")
    train.add_argument("--batch-size", type=int, help="images per step (default: the architecture's recipe)")
    train.add_argument("--lr", type=float, help="learning rate (fine-tuning uses a tenth of it)")
    train.add_argument("--val-fraction", type=float, default=0.1, help="share of train held out for validation")
    train.add_argument("--workers", type=int, help="data-loading processes (default: cores - 1, at most 4)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    train.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    train.add_argument("--quiet", action="store_true", help="no progress bars")

    evaluate = commands.add("eval classifier", _eval, "accuracy, per-class precision/recall, confusion matrix, calibration")
    evaluate.add_argument("--model", default=DEFAULT_MODEL,
                          help="classifier NAME or DIR, or a zero-shot labeller: clip:NAME, clip-time:NAME, "
                               "clip-weather:NAME (on a world built with --label-by time or weather)")
    evaluate.add_argument("--data", required=True, help="dataset folder")
    evaluate.add_argument("--split", default="test", help="train or test")
    evaluate.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    evaluate.add_argument("--confusion-png", help="also write the confusion heatmap here")
    evaluate.add_argument("--batch-size", type=int, default=128, help="images classified at once")
    evaluate.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")

    unguided = commands.add("eval generator", _eval_generator,
                            "class mix of a generator's unguided samples vs its training composition")
    unguided.add_argument("--generator", required=True, help="catalogue name or FAMILY:PATH")
    unguided.add_argument("--labeller", default=DEFAULT_MODEL, help="classifier name/folder or clip:NAME")
    unguided.add_argument("--n", type=int, default=1000, help="unguided samples to label")
    unguided.add_argument("--seed", type=int, default=0, help="seed of the latent draw")
    unguided.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    unguided.add_argument("--device", default="cpu", help="where the generator runs (cpu, cuda, ...)")
    unguided.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                          help="generator loader option, e.g. num_inference_steps=50 (repeatable)")
    unguided.add_argument("--second-labeller", default="classifier-world-b",
                          help="an independent labeller whose agreement (Cohen's kappa) is reported; "
                               "'none' to skip (default: %(default)s)")
    unguided.add_argument("--no-fidelity", action="store_true",
                          help="skip the world Fréchet distance and realism against fresh renders (docs/fidelity.md)")
    unguided.add_argument("--card", default=None, metavar="CARD_MD",
                          help="also write the result into this model card (its measured section)")

    classify = commands.add("classify", _classify, "class probabilities of image files (any size)")
    classify.add_argument("images", nargs="+", help="image files or folders of images")
    classify.add_argument("--model", default=DEFAULT_MODEL, help="labeller: classifier NAME or DIR, or clip:NAME")
    classify.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    classify.add_argument("--batch-size", type=int, default=64, help="images classified at once")
    classify.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")


def _train(args: argparse.Namespace) -> int:
    from classifier.train import TrainConfig, train_classifier
    from data.validation import check_device, check_limit, check_number, check_seed

    # Cheap checks before any data is read: numbers, sizes, device.
    check_seed(args.seed)
    check_number(args.val_fraction, "--val-fraction", minimum=0, below=1)
    if args.lr is not None:
        check_number(args.lr, "--lr", above=0)
    if args.size is not None:
        check_limit("image_side", args.size, "--size")
    if args.batch_size is not None:
        check_limit("batch_size", args.batch_size, "--batch-size")
    check_device(args.device, allow_auto=True)
    options = {
        "arch": args.arch, "data": args.data, "out": args.out, "weights": args.weights,
        "epochs": args.epochs, "freeze_epochs": args.freeze_epochs, "seed": args.seed, "size": args.size,
        "batch_size": args.batch_size, "lr": args.lr, "val_fraction": args.val_fraction,
        "device": args.device, "force": args.force, "progress": not args.quiet,
    }
    if args.workers is not None:
        options["workers"] = args.workers
    classifier = train_classifier(TrainConfig(**options))
    evaluation = classifier.evaluation
    print(json.dumps({
        "out": str(classifier.path),
        "split": evaluation["split"],
        "accuracy": evaluation["accuracy"],
        "temperature": classifier.temperature,
        "ece_after_temperature": evaluation["ece_after_temperature"],
        "wall_seconds": classifier.training["wall_seconds"],
    }))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from classifier.data import load_split
    from classifier.evaluate import (
        evaluate_classifier,
        evaluate_labeller,
        format_table,
        plot_confusion,
    )
    from classifier.labellers import load_labeller, parse_labeller
    from classifier.model import load_classifier
    from data.validation import check_count, check_device

    check_count(args.batch_size, "--batch-size", "batch_size")
    check_device(args.device)
    if parse_labeller(args.model).kind == "zero-shot":
        model, evaluate, identity = load_labeller(args.model, device=args.device), evaluate_labeller, args.model
    else:
        model = load_classifier(args.model, device=args.device)
        evaluate, identity = evaluate_classifier, str(model.path)
    evaluation = evaluate(model, load_split(args.data, args.split), split_name=args.split, batch_size=args.batch_size)
    evaluation["model"] = identity
    if args.confusion_png:
        plot_confusion(evaluation, args.confusion_png)
    if args.format == "json":
        print(json.dumps(evaluation))
    else:
        print(format_table(evaluation))
    return 0


def _eval_generator(args: argparse.Namespace) -> int:
    from classifier.generator_eval import (
        describe_asked,
        describe_kappa,
        unguided_composition,
        write_card_section,
    )
    from data.validation import check_count, check_device, check_finite_values, check_seed
    from generators.registry import parse_loader_options

    if args.card is not None and not Path(args.card).is_file():  # before, not after, the sampling
        raise ConfigError(f"model card {args.card} does not exist")
    check_count(args.n, "--n", "images")
    check_seed(args.seed)
    check_device(args.device)
    options = check_finite_values(parse_loader_options(args.option), "--option")
    second = None if args.second_labeller.lower() == "none" else args.second_labeller
    found = unguided_composition(args.generator, args.labeller, n=args.n, seed=args.seed, device=args.device,
                                 options=options, second_labeller=second, fidelity=not args.no_fidelity)
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
    if found.agreement is not None:
        a = found.agreement
        print(f"agreement with {a['labeller']}: kappa {describe_kappa(a)}, raw {a['raw_agreement']:.3f}")
    if found.asked is not None:
        print(f"labelled as the class asked for: {describe_asked(found.asked)}")
    if found.fidelity is not None:
        f = found.fidelity
        print(f"world Fréchet distance: {f['value']:.2f} (renders against renders: {f['floor']:.2f}, n = {f['n']})")
    if found.realism is not None:
        r = found.realism
        print(f"world realism: precision {r['precision']:.3f}, density {r['density']:.3f}, "
              f"coverage {r['coverage']:.3f} (against {r['reference_n']} renders)")
    return 0


def _classify(args: argparse.Namespace) -> int:
    from classifier.labellers import load_labeller
    from classifier.prediction import classify_files
    from data.errors import DatasetError
    from data.validation import check_count, check_device, printable

    check_count(args.batch_size, "--batch-size", "batch_size")
    check_device(args.device)
    model = load_labeller(args.model, device=args.device)
    result = classify_files(model, args.images, batch_size=args.batch_size, progress=args.format == "table")
    rows = result.rows()
    failures = [{"path": str(path), "error": reason} for path, reason in result.failures]
    if not rows:  # nothing classifiable: one line, like any other bad input
        first = failures[0] if failures else {"path": " ".join(args.images), "error": "no image files"}
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise DatasetError(f"no image could be classified: {first['path']}: {first['error']}{more}")
    if args.format == "json":
        print(json.dumps({"classes": list(result.classes), "results": rows, "failures": failures}))
    else:
        short = [c[:9] for c in result.classes]
        width = max([len(r["path"]) for r in rows] + [4])
        print(f"{'file':<{width}}  {'label':<10} " + " ".join(f"{s:>9}" for s in short))
        for row in rows:
            probs = " ".join(f"{p:>9.3f}" for p in row["probabilities"].values())
            print(f"{row['path']:<{width}}  {row['label']:<10} {probs}")
    for failure in failures:
        print(printable(f"artbias classify: skipped {failure['path']}: {failure['error']}"), file=sys.stderr)
    return 0
