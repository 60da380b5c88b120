"""Training a scene classifier: transfer learning from ImageNet weights, or from scratch.

The recipe, top to bottom (:func:`train_classifier`):

1. read the ``train`` split and carve a stratified validation split from it with the seed;
2. build the architecture with a new head for the dataset's classes and load the starting
   weights (``imagenet``: the published backbone; ``none``: random; or a file);
3. with pretrained weights, train the head alone on the frozen backbone (BatchNorm statistics
   frozen too) for ``freeze_epochs``, then fine-tune everything at ``lr * fine_tune_lr_factor``;
   from scratch, train everything at ``lr``. AdamW, cosine decay within each phase;
4. keep the weights of the best validation epoch, stop early after ``patience`` epochs
   without improvement;
5. fit the calibration temperature on the validation logits, evaluate on the ``test`` split
   (the validation split when the data has none) and save the classifier folder.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from classifier.architectures import ArchConfig, build_network, get_arch_config
from classifier.calibration import fit_temperature
from classifier.data import (
    ImageFileDataset,
    ImageSplit,
    has_split,
    load_split,
    stratified_split,
    train_transform,
)
from classifier.evaluate import collect_logits, evaluate_classifier, summarise
from classifier.model import SceneClassifier, check_output, save_classifier
from classifier.pretrained import default_preprocessing, initial_weights
from data.errors import ConfigError, DatasetError


def _default_workers() -> int:
    return max(0, min(4, (os.cpu_count() or 1) - 1))


@dataclass
class TrainConfig:
    """Everything a training run depends on; unset numbers come from the architecture's recipe."""

    arch: str
    data: str
    out: str
    weights: str | None = None  # "imagenet", "none" or a path; default: imagenet where published
    epochs: int | None = None
    freeze_epochs: int | None = None
    seed: int = 0
    size: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    fine_tune_lr_factor: float | None = None
    weight_decay: float | None = None
    patience: int | None = None
    crop_scale: tuple[float, float] | None = None
    val_fraction: float = 0.1
    workers: int = field(default_factory=_default_workers)
    device: str = "auto"
    force: bool = False
    progress: bool = True

    def resolved(self, arch: ArchConfig) -> TrainConfig:
        """A copy with every unset number taken from the architecture's default recipe."""
        recipe = arch.training
        out = copy.copy(self)
        if out.weights is None:
            out.weights = "imagenet" if arch.imagenet_weights else "none"
        if out.freeze_epochs is None and out.epochs is not None:
            # The recipe's frozen epochs, leaving at least one epoch of fine-tuning.
            out.freeze_epochs = min(int(recipe.get("freeze_epochs", 0)), max(0, out.epochs - 1))
        for name in ("epochs", "freeze_epochs", "batch_size", "lr", "fine_tune_lr_factor", "weight_decay", "patience", "crop_scale"):
            if getattr(out, name) is None:
                if name not in recipe:
                    raise ConfigError(f"architecture {arch.arch!r} has no default {name!r}; pass it explicitly")
                setattr(out, name, recipe[name])
        if out.weights == "none":
            out.freeze_epochs = 0  # freezing a random backbone would only train a linear probe of noise
        out.size = out.size or int(default_preprocessing(arch)["size"])
        out.validate()
        return out

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (0 <= self.freeze_epochs <= self.epochs, f"--freeze-epochs must be in 0..epochs, got {self.freeze_epochs}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.lr > 0 and math.isfinite(self.lr), f"--lr must be positive, got {self.lr}"),
            (self.size >= 16, f"--size must be >= 16 pixels, got {self.size}"),
            (0 < self.val_fraction < 0.5, f"validation fraction must be in (0, 0.5), got {self.val_fraction}"),
            (self.patience >= 1, f"patience must be >= 1, got {self.patience}"),
            (self.workers >= 0, f"--workers must be >= 0, got {self.workers}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def command(self) -> str:
        """The ``artbias`` command line that reproduces this run."""
        parts = [
            "artbias train classifier", f"--arch {self.arch}", f"--data {self.data}",
            f"--weights {self.weights}", f"--out {self.out}", f"--epochs {self.epochs}",
            f"--freeze-epochs {self.freeze_epochs}", f"--seed {self.seed}", f"--size {self.size}",
            f"--batch-size {self.batch_size}", f"--lr {self.lr}",
        ]
        return " ".join(parts)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _preprocessing(arch: ArchConfig, size: int) -> dict:
    """The architecture's preprocessing at ``size`` pixels (the resize margin scaled along)."""
    base = default_preprocessing(arch)
    ratio = base.get("resize_size", base["size"]) / base["size"]
    base["size"], base["resize_size"] = size, int(round(size * ratio))
    return base


def _data_identity(data_dir: str, split: ImageSplit) -> dict:
    from data.saved_model import sha256_file

    identity = split.identity()
    manifest = Path(data_dir) / "manifest.parquet"
    if manifest.is_file():
        identity["manifest"] = str(manifest)
        identity["manifest_sha256"] = sha256_file(manifest)
    return identity


def _set_phase(network, phase: str) -> list[torch.nn.Parameter]:
    """Train mode and trainable parameters for a phase; ``head`` freezes backbone and BN stats."""
    if phase == "head":
        network.eval()
        for p in network.backbone_parameters():
            p.requires_grad_(False)
        for p in network.head.parameters():
            p.requires_grad_(True)
        return list(network.head.parameters())
    network.train()
    for p in network.parameters():
        p.requires_grad_(True)
    return list(network.parameters())


def _run_epoch(network, loader, optimiser, scheduler, device, desc: str, progress: bool) -> tuple[float, float]:
    total_loss, correct, seen = 0.0, 0, 0
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress)
    for inputs, targets in bar:
        inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = network(inputs)
        loss = F.cross_entropy(logits.float(), targets)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        scheduler.step()
        total_loss += loss.item() * len(targets)
        correct += int((logits.argmax(1) == targets).sum())
        seen += len(targets)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
    return total_loss / max(1, seen), correct / max(1, seen)


def train_classifier(config: TrainConfig) -> SceneClassifier:
    """Train, calibrate, evaluate and save a classifier; returns it (saved at ``config.out``)."""
    arch = get_arch_config(config.arch)
    config = config.resolved(arch)
    check_output(config.out, config.force)  # before, not after, a long training run
    device = _device(config.device)
    started = time.time()
    torch.manual_seed(config.seed)

    full_train = load_split(config.data, "train")
    classes = full_train.classes
    train_split, val_split = stratified_split(full_train, config.val_fraction, config.seed)
    if len(val_split) == 0 or len(train_split) == 0:
        raise DatasetError(f"{config.data}: too few images to carve a validation split ({len(full_train)} in all)")
    test_split = load_split(config.data, "test") if has_split(config.data, "test") else None
    if test_split is not None:
        test_split = test_split.relabelled(classes)  # a test class unseen in training fails now

    network = build_network(arch, len(classes))
    weights_source = initial_weights(network, arch, config.weights)
    network.to(device)
    preprocessing = _preprocessing(arch, config.size)
    classifier = SceneClassifier(network, arch, classes, preprocessing)

    loader = DataLoader(
        ImageFileDataset(train_split, train_transform(preprocessing, config.crop_scale)),
        batch_size=config.batch_size, shuffle=True, drop_last=len(train_split) > config.batch_size,
        num_workers=config.workers, persistent_workers=config.workers > 0,
        generator=torch.Generator().manual_seed(config.seed), pin_memory=device.type == "cuda",
    )
    phases = [("head", config.freeze_epochs, config.lr)] if config.freeze_epochs else []
    fine_lr = config.lr * config.fine_tune_lr_factor if weights_source else config.lr
    phases.append(("fine-tune" if weights_source else "scratch", config.epochs - config.freeze_epochs, fine_lr))

    history: list[dict] = []
    best = {"val_accuracy": -1.0, "val_loss": math.inf, "epoch": 0, "state": None}
    epoch, stale = 0, 0
    for phase, phase_epochs, lr in phases:
        if phase_epochs == 0 or stale >= config.patience:
            continue
        parameters = _set_phase(network, phase)
        optimiser = torch.optim.AdamW(parameters, lr=lr, weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=lr, total_steps=max(1, phase_epochs * len(loader)), pct_start=0.15
        )
        stale = 0  # a new phase gets its own patience
        for _ in range(phase_epochs):
            epoch += 1
            tick = time.time()
            _set_phase(network, phase)
            train_loss, train_acc = _run_epoch(
                network, loader, optimiser, scheduler, device, f"epoch {epoch}/{config.epochs} {phase}", config.progress
            )
            val_logits, val_labels = collect_logits(
                classifier, val_split, batch_size=256, desc="validate", progress=config.progress
            )
            val_loss = float(F.cross_entropy(val_logits, val_labels))
            val_acc = float((val_logits.argmax(1) == val_labels).float().mean())
            history.append({
                "epoch": epoch, "phase": phase, "lr": lr, "train_loss": train_loss, "train_accuracy": train_acc,
                "val_loss": val_loss, "val_accuracy": val_acc, "seconds": round(time.time() - tick, 2),
            })
            if config.progress:
                tqdm.write(f"epoch {epoch} {phase}: train loss {train_loss:.4f} acc {train_acc:.4f}  "
                           f"val loss {val_loss:.4f} acc {val_acc:.4f}")
            if (val_acc, -val_loss) > (best["val_accuracy"], -best["val_loss"]):
                best = {"val_accuracy": val_acc, "val_loss": val_loss, "epoch": epoch,
                        "state": copy.deepcopy(network.state_dict())}
                stale = 0
            else:
                stale += 1
                if stale >= config.patience:
                    if config.progress:
                        tqdm.write(f"early stop: no validation improvement for {stale} epochs")
                    break

    network.load_state_dict(best["state"])
    network.eval()
    val_logits, val_labels = collect_logits(
        classifier, val_split, batch_size=256, desc="calibrate", progress=config.progress
    )
    classifier.temperature = fit_temperature(val_logits, val_labels)
    validation = summarise(val_logits, val_labels, classes, classifier.temperature)
    if test_split is not None:
        evaluation = evaluate_classifier(classifier, test_split, split_name="test", progress=config.progress)
    else:
        evaluation = dict(validation, split="validation", data=val_split.identity())
    evaluation["validation"] = {k: validation[k] for k in (
        "images", "accuracy", "nll_before_temperature", "nll_after_temperature",
        "ece_before_temperature", "ece_after_temperature")}
    classifier.evaluation = evaluation

    settings = {k: v for k, v in asdict(config).items() if k not in ("force", "progress", "workers")}
    settings["crop_scale"] = list(config.crop_scale)
    classifier.training = {
        "settings": settings,
        "seed": config.seed,
        "weights_source": weights_source,
        "data": _data_identity(config.data, full_train),
        "train_images": len(train_split),
        "validation_images": len(val_split),
        "epochs_run": epoch,
        "best_epoch": best["epoch"],
        "best_val_accuracy": best["val_accuracy"],
        "device": str(device),
        "wall_seconds": round(time.time() - started, 1),
        "command": config.command(),
    }
    from classifier.card import model_card

    save_classifier(classifier, config.out, history=history, card=model_card(classifier, history), force=config.force)
    return classifier
