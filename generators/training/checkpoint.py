"""The resumable training checkpoint: everything needed to continue the *same* run.

A ``checkpoint/`` folder holds
- ``state.safetensors``: every tensor of every network (``G.*``, ``D.*``, ``G_ema.*``),
  parameters and buffers (batch-norm, spectral-norm and w_avg state);
- ``optimizers.pt``: both Adam states and both RNG states (the global torch RNG, which drives
  StyleGAN2's noise, and the sampler that draws batches and latents), plain tensors and
  numbers saved with ``torch.save`` and read back with ``torch.load(weights_only=True)``;
- ``state.json``: step, images seen, the config, the data it was trained on, wall time.
It is written into a new folder and swapped in with renames, so a crash while saving
leaves the previous checkpoint (or, mid-swap, ``checkpoint.old``) intact.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from data.errors import CheckpointError
from data.saved_model import load_error_reason, load_state
from generators.training.config import TrainConfig

CHECKPOINT_DIR = "checkpoint"
TENSORS, OPTIMIZERS, STATE = "state.safetensors", "optimizers.pt", "state.json"


@dataclass
class TrainingState:
    """Where a run stands (besides its tensors)."""

    step: int
    images_seen: int
    config: TrainConfig  # or another run config with to_dict/from_dict (DiffusionTrainConfig)
    data: dict  # {"path", "class_counts"}: the data the run was trained on
    wall_time_s: float


def save_checkpoint(
    run_dir: Path,
    networks: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    rng: torch.Generator,
    state: TrainingState,
) -> Path:
    final = run_dir / CHECKPOINT_DIR
    partial, old = run_dir / f"{CHECKPOINT_DIR}.partial", run_dir / f"{CHECKPOINT_DIR}.old"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    # Clones: safetensors refuses tensors that share storage.
    tensors = {f"{name}.{key}": value.detach().cpu().clone().contiguous()
               for name, module in networks.items() for key, value in module.state_dict().items()}
    save_file(tensors, str(partial / TENSORS))
    torch.save(
        {
            "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
            "rng": {"torch": torch.get_rng_state(), "sampler": rng.get_state()},
        },
        partial / OPTIMIZERS,
    )
    document = {
        "step": state.step,
        "images_seen": state.images_seen,
        "config": state.config.to_dict(),
        "data": state.data,
        "wall_time_s": state.wall_time_s,
    }
    (partial / STATE).write_text(json.dumps(document, indent=2) + "\n")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(partial, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint folder of a run, or None; a swap cut short leaves ``checkpoint.old``."""
    for name in (CHECKPOINT_DIR, f"{CHECKPOINT_DIR}.old"):
        if (run_dir / name / STATE).is_file():
            return run_dir / name
    return None


def read_state(checkpoint: Path, config_type=TrainConfig) -> TrainingState:
    """The run's state; ``config_type`` is the config class the run was made with."""
    try:
        document = json.loads((checkpoint / STATE).read_text())
        return TrainingState(
            step=int(document["step"]),
            images_seen=int(document["images_seen"]),
            config=config_type.from_dict(document["config"], source=str(checkpoint / STATE)),
            data=dict(document["data"]),
            wall_time_s=float(document["wall_time_s"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"training checkpoint {checkpoint / STATE} is unreadable: {error}") from error


def read_tensors(checkpoint: Path) -> dict[str, torch.Tensor]:
    """Every network's tensors in a checkpoint, keyed ``NETWORK.name``; a corrupt file is one error."""
    try:
        return load_file(str(checkpoint / TENSORS))
    except Exception as error:  # safetensors raises its own types for corrupt files
        raise CheckpointError(f"training checkpoint {checkpoint} is unreadable: {load_error_reason(error)}") from None


def load_checkpoint(
    checkpoint: Path,
    networks: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    rng: torch.Generator,
) -> None:
    """Fill freshly built networks, optimisers and RNGs with a checkpoint's state, exactly."""
    tensors = read_tensors(checkpoint)
    try:
        extra = torch.load(checkpoint / OPTIMIZERS, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises its own types for corrupt files
        raise CheckpointError(f"training checkpoint {checkpoint} is unreadable: {load_error_reason(error)}") from None
    for name, module in networks.items():
        load_state(module, tensors, str(checkpoint / TENSORS), target=f"the run's {name} network", prefix=f"{name}.")
    try:
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(extra["optimizers"][name])
        torch.set_rng_state(extra["rng"]["torch"])
        rng.set_state(extra["rng"]["sampler"])
    except (KeyError, ValueError, RuntimeError, TypeError) as error:
        raise CheckpointError(f"training checkpoint {checkpoint}: optimiser/RNG state unusable: {error}") from error
