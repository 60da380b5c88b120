"""Evaluation of a classifier on a labelled split: confusion matrix, accuracy, precision,
recall and calibration, as one JSON-ready dict (numpy/torch only, no sklearn).

The confusion matrix has rows = true class and columns = predicted class, in the model's
class order; row ``i`` sums to the number of images of class ``i`` in the split. The bias
statistics read it (with the class order) to correct label proportions for classifier error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from classifier.calibration import expected_calibration_error, negative_log_likelihood
from classifier.data import ImageFileDataset, ImageSplit, eval_transform


@torch.no_grad()
def _score_split(split: ImageSplit, transform, score, *, batch_size: int, workers: int, desc: str,
                 progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``score(batch)`` [N, C] and labels [N] of every image of ``split``, read through ``transform``."""
    loader = DataLoader(ImageFileDataset(split, transform), batch_size=batch_size, shuffle=False,
                        num_workers=workers)
    scores, labels = [], []
    for inputs, targets in tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress):
        scores.append(score(inputs).float().cpu())
        labels.append(targets)
    return torch.cat(scores), torch.cat(labels)


def collect_logits(
    classifier, split: ImageSplit, *, batch_size: int = 128, workers: int = 0, desc: str = "evaluate",
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Uncalibrated logits [N, C] and labels [N] of every image of ``split`` (model class order)."""
    classifier.network.eval()
    return _score_split(split, eval_transform(classifier.preprocessing), classifier.logits,
                        batch_size=batch_size, workers=workers, desc=desc, progress=progress)


def _unit_range(image: torch.Tensor) -> torch.Tensor:
    return image.float() / 127.5 - 1  # what every labeller's predict() takes; it resizes itself


def collect_probabilities(
    labeller, split: ImageSplit, *, batch_size: int = 128, workers: int = 0, desc: str = "evaluate",
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities [N, C] of any labeller (a CLIP zero-shot one too) and labels [N]."""
    return _score_split(split, _unit_range, labeller.predict, batch_size=batch_size, workers=workers,
                        desc=desc, progress=progress)


def evaluate_labeller(labeller, split: ImageSplit, *, split_name: str = "test", batch_size: int = 128,
                      progress: bool = True) -> dict:
    """The same metrics for a labeller that gives probabilities, not logits (e.g. ``clip-time:CLIP``):
    its log-probabilities stand in for logits, at temperature 1."""
    split = split.relabelled(labeller.classes)
    probabilities, labels = collect_probabilities(
        labeller, split, batch_size=batch_size, desc=f"evaluate {split_name}", progress=progress
    )
    result = summarise(probabilities.clamp_min(1e-12).log(), labels, tuple(labeller.classes), 1.0)
    result["split"] = split_name
    result["data"] = split.identity()
    return result


def confusion_matrix(labels: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels.numpy(), predicted.numpy()), 1)
    return matrix


def summarise(logits: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...], temperature: float) -> dict:
    """Every metric of one set of logits, as a JSON-ready dict."""
    predicted = logits.argmax(dim=1)
    matrix = confusion_matrix(labels, predicted, len(classes))
    true_counts, predicted_counts = matrix.sum(axis=1), matrix.sum(axis=0)
    diagonal = np.diag(matrix)
    per_class = {}
    for i, name in enumerate(classes):
        per_class[name] = {
            # None where undefined (no image of the class, or nothing predicted as it).
            "precision": float(diagonal[i] / predicted_counts[i]) if predicted_counts[i] else None,
            "recall": float(diagonal[i] / true_counts[i]) if true_counts[i] else None,
            "support": int(true_counts[i]),
        }
    recalls = [v["recall"] for v in per_class.values() if v["recall"] is not None]
    raw = torch.softmax(logits.double(), dim=1)
    scaled = torch.softmax(logits.double() / temperature, dim=1)
    return {
        "classes": list(classes),
        "images": int(len(labels)),
        "accuracy": float(diagonal.sum() / max(1, len(labels))),
        "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "confusion_matrix_axes": "rows: true class, columns: predicted class, both in 'classes' order",
        "temperature": float(temperature),
        "nll_before_temperature": negative_log_likelihood(logits, labels),
        "nll_after_temperature": negative_log_likelihood(logits, labels, temperature),
        "ece_before_temperature": expected_calibration_error(raw, labels),
        "ece_after_temperature": expected_calibration_error(scaled, labels),
    }


def evaluate_classifier(
    classifier, split: ImageSplit, *, split_name: str = "test", batch_size: int = 128, workers: int = 0,
    progress: bool = True,
) -> dict:
    """Metrics of ``classifier`` on ``split`` (relabelled into the model's class order)."""
    split = split.relabelled(classifier.classes)
    logits, labels = collect_logits(
        classifier, split, batch_size=batch_size, workers=workers, desc=f"evaluate {split_name}", progress=progress
    )
    result = summarise(logits, labels, classifier.classes, classifier.temperature)
    result["split"] = split_name
    result["data"] = split.identity()
    return result


def plot_confusion(evaluation: dict, path: str | Path) -> Path:
    """A heatmap of the confusion matrix: colour = row share (recall), text = counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = evaluation["classes"]
    matrix = np.asarray(evaluation["confusion_matrix"], dtype=float)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.75 * len(classes)
    figure, axes = plt.subplots(figsize=(size + 1.2, size))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    for i in range(len(classes)):
        for j in range(len(classes)):
            axes.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center",
                      color="white" if shares[i, j] > 0.5 else "black", fontsize=8)
    axes.set_title(f"accuracy {evaluation['accuracy']:.3f} on {evaluation['images']} images")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of true class")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def format_table(evaluation: dict) -> str:
    """The metrics as a plain-text report."""
    classes = evaluation["classes"]
    width = max(9, *(len(c) for c in classes))
    lines = [
        f"accuracy {evaluation['accuracy']:.4f} on {evaluation['images']} images"
        + (f" ({evaluation['split']} split)" if evaluation.get("split") else ""),
        f"ECE {evaluation['ece_before_temperature']:.4f} -> {evaluation['ece_after_temperature']:.4f} "
        f"with temperature {evaluation['temperature']:.3f}; NLL {evaluation['nll_before_temperature']:.4f} "
        f"-> {evaluation['nll_after_temperature']:.4f}",
        "",
        f"{'class':<{width}}  precision  recall  support",
    ]
    for name in classes:
        row = evaluation["per_class"][name]
        precision = "-" if row["precision"] is None else f"{row['precision']:.3f}"
        recall = "-" if row["recall"] is None else f"{row['recall']:.3f}"
        lines.append(f"{name:<{width}}  {precision:>9}  {recall:>6}  {row['support']:>7}")
    lines += ["", "confusion matrix (rows: true, columns: predicted)"]
    short = [c[:6] for c in classes]
    lines.append(" " * width + "  " + " ".join(f"{s:>6}" for s in short))
    for name, row in zip(classes, evaluation["confusion_matrix"], strict=True):
        lines.append(f"{name:<{width}}  " + " ".join(f"{v:>6}" for v in row))
    return "\n".join(lines)
