"""The model card (``card.md``) written beside a trained classifier's weights."""

from __future__ import annotations


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def model_card(classifier, history: list[dict]) -> str:
    """Markdown: data and composition, recipe, metrics, and the command that reproduces it."""
    training = classifier.training
    evaluation = classifier.evaluation or {}
    settings = training.get("settings", {})
    data = training.get("data", {})
    arch = classifier.arch
    params = sum(p.numel() for p in classifier.network.parameters())
    lines = [
        f"# Scene classifier: {arch.arch}",
        "",
        f"{arch.description} Classes, in index order: {', '.join(classifier.classes)}.",
        "",
        "## Data",
        f"- training folder: `{data.get('root', '?')}` ({data.get('images', '?')} images; "
        f"{training.get('train_images', '?')} for training, {training.get('validation_images', '?')} "
        f"held out for validation, stratified with seed {training.get('seed', '?')})",
        "- class composition of the training folder: "
        + ", ".join(f"{name} {count}" for name, count in data.get("class_counts", {}).items()),
        f"- files digest (sha256 of relative paths, sizes, labels): `{data.get('files_sha256', '?')}`",
    ]
    if "manifest_sha256" in data:
        lines.append(f"- manifest: `{data['manifest']}` (sha256 `{data['manifest_sha256']}`)")
    lines += [
        "",
        "## Recipe",
        f"- architecture: {arch.block} blocks {list(arch.layers)}, widths {list(arch.widths)}, "
        f"{arch.stem} stem; {params:,} parameters",
        f"- starting weights: {training.get('weights_source') or 'random (trained from scratch)'}",
        f"- input: {classifier.preprocessing['size']} px ({classifier.preprocessing.get('interpolation')}, "
        f"antialiased), mean {classifier.preprocessing['mean']}, std {classifier.preprocessing['std']}",
        f"- epochs: {training.get('epochs_run', '?')} run of {settings.get('epochs', '?')} "
        f"({settings.get('freeze_epochs', 0)} with the backbone frozen); best validation epoch "
        f"{training.get('best_epoch', '?')}; AdamW, one-cycle schedule, lr {settings.get('lr')}, "
        f"batch {settings.get('batch_size')}, weight decay {settings.get('weight_decay')}",
        "- augmentation: random resized crop, horizontal flip, mild colour jitter",
        f"- calibration: temperature {classifier.temperature:.3f}, fitted on the validation split",
        f"- trained on {training.get('device', '?')} in {training.get('wall_seconds', '?')} s",
        "",
        f"## Metrics ({evaluation.get('split', '?')} split, {evaluation.get('images', '?')} images)",
        f"- accuracy: {_percent(evaluation.get('accuracy'))}",
        f"- expected calibration error: {evaluation.get('ece_before_temperature', float('nan')):.4f} before, "
        f"{evaluation.get('ece_after_temperature', float('nan')):.4f} after temperature scaling",
        "",
        "| class | precision | recall | images |",
        "|---|---|---|---|",
    ]
    for name, row in evaluation.get("per_class", {}).items():
        lines.append(f"| {name} | {_percent(row['precision'])} | {_percent(row['recall'])} | {row['support']} |")
    lines += [
        "",
        "The confusion matrix is in `evaluation.json` (rows: true class, columns: predicted) and "
        "`confusion.png`; per-epoch metrics in `history.json`. The bias statistics use the matrix "
        "to correct label proportions for this classifier's errors.",
        "",
        "## Reproduce",
        "```",
        training.get("command", "?"),
        "```",
        "",
    ]
    return "\n".join(lines)
