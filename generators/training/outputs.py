"""What a training run leaves for people: sample grids, the loss log, ``training.json``, ``card.md``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from data.files import write_atomically
from generators.training.data import FRESH_SOURCE
from generators.training.precision import describe_precision

LOSS_COLUMNS = ("step", "d_loss", "g_loss", "real_logit", "fake_logit", "r1")


def save_grid(images: torch.Tensor, path: Path, columns: int = 8) -> None:
    """Images in [-1, 1] -> one PNG grid (``columns`` per row, 2 px gaps)."""
    from PIL import Image
    from torchvision.utils import make_grid

    pixels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    grid = make_grid(pixels, nrow=columns, padding=2).permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda p: Image.fromarray(grid).save(p, format="PNG"))


class LossLog:
    """``losses.csv``: one row per step. Opening it for a resumed run drops rows after the
    checkpoint's step (steps that will be run again) and returns the rows kept."""

    def __init__(self, path: Path, resume_step: int, columns: tuple[str, ...] = LOSS_COLUMNS):
        self.path = path
        self.columns = columns
        self.rows: list[dict[str, float]] = []
        if resume_step > 0 and path.is_file():
            with path.open(newline="") as handle:
                self.rows = [
                    {k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()}
                    for row in csv.DictReader(handle)
                    if int(row["step"]) <= resume_step
                ]
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            for row in self.rows:
                writer.writerow(_csv_row(row, columns))
        self.handle = path.open("a", newline="")
        self.writer = csv.DictWriter(self.handle, columns)

    def append(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        self.writer.writerow(_csv_row(row, self.columns))

    def flush(self) -> None:
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()

    def recent_means(self, n: int = 100) -> dict[str, float]:
        """Means of each loss column over the last ``n`` steps (NaN-free columns only)."""
        tail = self.rows[-n:]
        means = {}
        for column in self.columns[1:]:
            values = [row[column] for row in tail if row[column] == row[column]]
            if values:
                means[column] = sum(values) / len(values)
        return means


def _csv_row(row: dict[str, float], columns: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for column in columns:
        value = row.get(column, float("nan"))
        out[column] = str(int(value)) if column == "step" else ("" if value != value else f"{value:.6g}")
    return out


def write_training_record(directory: Path, record: dict) -> None:
    text = json.dumps(record, indent=2, default=str) + "\n"
    write_atomically(directory / "training.json", lambda p: p.write_text(text))


def write_card(directory: Path, record: dict) -> None:
    """A short model card: what it is, what it saw, how to use and reproduce it."""
    data, params = record["data"], record["parameters"]
    composition = ", ".join(f"{name} {count}" for name, count in data["class_counts"].items() if count)
    losses = ", ".join(f"{k} {v:.3f}" for k, v in record["final_losses"].items())
    lines = [
        f"# {record['arch']} trained on the scenery world",
        "",
        f"- **Load**: `load_generator(\"{record['family']}:<this folder>\")`",
        f"- **Architecture**: {record['arch']}, {record['config']['image_size']} px; "
        f"{params['generator']:,} generator + {params['discriminator']:,} discriminator parameters "
        f"({params['megabytes_fp32']:.1f} MB fp32)",
        (f"- **Training data**: fresh renders of the world in every batch, in the composition of "
         f"`{data['path']}` ({composition})" if data.get("source") == FRESH_SOURCE
         else f"- **Training data**: `{data['path']}`, {data['n_images']} images: {composition}"),
        f"- **Training**: {record['steps']} steps of batch {record['config']['batch_size']}, "
        f"seed {record['config']['seed']}, {record['config']['loss']} loss"
        + (f", R1 gamma {record['config']['r1_gamma']}" if record["config"]["r1_gamma"] else "")
        + (", EMA generator" if record["config"]["ema_half_life_images"] else "")
        + (f", DiffAugment ({', '.join(record['config']['augment'])})" if record["config"].get("augment") else "")
        + f", {describe_precision(record['config'])}",
        f"- **Final losses** (mean of the last 100 steps): {losses}",
        f"- **Wall time**: {record['wall_time_s'] / 60:.1f} min on {record['threads']} thread{'s' if record['threads'] != 1 else ''}",
        f"- **Reproduce**: `{record['command']}`",
        "",
        "Samples during training are in `samples/`, per-step losses in `losses.csv`. The",
        "`checkpoint/` folder only serves to continue training; using the model needs the",
        "config and weights files alone. A toy model of a procedural world, for studying",
        "generator bias; not a model of real photographs.",
        "",
    ]
    write_atomically(directory / "card.md", lambda p: p.write_text("\n".join(lines)))


def run_arguments(config) -> list[str]:
    """The middle of a reproduce command that both trainers share: the run's size, length,
    seed and batches."""
    return ["--size", str(config.image_size), "--steps", str(config.steps), "--seed", str(config.seed),
            "--batch-size", str(config.batch_size), "--sample-every", str(config.sample_every)]


def data_arguments(config, classes) -> list[str]:
    """The end of a reproduce command that both trainers share: what the run learns from."""
    parts = ["--fresh-renders" if config.fresh_renders else "--no-fresh-renders"]
    if classes:
        parts += ["--classes", ",".join(classes)]
    return parts
