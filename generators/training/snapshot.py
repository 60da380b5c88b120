"""A run's generator as it stands at its last checkpoint, saved where ``load_generator`` reads it.

A zoo training takes hours, in resumable parts. ``artbias train snapshot`` lets a run be
measured (``artbias eval generator``) or looked at (``artbias generate``) part-way, while it
goes on: it only reads the checkpoint, and writes a new folder in the finished run's format
(the EMA weights, finished as the end of training finishes them), with a ``training.json``
that says which run and which step it is.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from data.errors import CheckpointError, ConfigError
from data.files import staged_folder
from data.saved_model import load_state
from data.world.params import CLASSES
from generators.training.checkpoint import STATE, TENSORS, find_checkpoint, read_state, read_tensors
from generators.training.outputs import write_training_record

DIFFUSION_ARCH = "ddpm"
COPY_ATTEMPTS = 3  # a checkpoint swapped while it is copied is copied again


def snapshot_run(run: str | Path, out: str | Path) -> Path:
    """Save the generator of ``run`` (a training's ``--out``; it trains in ``run.partial``)
    at its last checkpoint into the new folder ``out``; returns ``out``."""
    run, out = Path(run), Path(out)
    if out.resolve() in (run.resolve(), run.with_name(run.name + ".partial").resolve()):
        raise ConfigError(f"--out {out} is the run's own folder; choose a new one")
    if out.is_dir() and any(out.iterdir()) and not _is_snapshot(out):
        raise ConfigError(f"--out {out} exists and holds no snapshot; choose a new or empty folder")
    with tempfile.TemporaryDirectory(prefix="artbias-snapshot-") as scratch:
        checkpoint = _copy_checkpoint(run, Path(scratch) / "checkpoint")
        arch = _arch(checkpoint)
        tensors = read_tensors(checkpoint)
        with staged_folder(out, "snapshot folder") as staging:
            if arch == DIFFUSION_ARCH:
                state, family = _save_diffusion(checkpoint, tensors, staging)
            else:
                state, family = _save_gan(checkpoint, tensors, staging)
            from data.provenance import versions

            write_training_record(staging, {
                "arch": state.config.arch,
                "family": family,
                "snapshot": {"run": str(run), "step": state.step, "of_steps": state.config.steps},
                "data": state.data,
                "steps": state.step,
                "images_seen": state.images_seen,
                "config": state.config.to_dict(),
                "versions": versions(),
            })
    return out


def _copy_checkpoint(run: Path, into: Path) -> Path:
    """A consistent copy of the run's latest checkpoint: the trainer may swap in a newer one
    while it is read, so the copy counts only when the step it holds is still the newest."""
    run_dir = run.with_name(run.name + ".partial")
    for _ in range(COPY_ATTEMPTS):
        found = (find_checkpoint(run_dir) if run_dir.is_dir() else None) or (
            find_checkpoint(run) if run.is_dir() else None)
        if found is None:
            raise ConfigError(f"no training checkpoint in {run_dir} or {run}: is --run a training's --out?")
        try:
            before = _step(found)
            shutil.rmtree(into, ignore_errors=True)
            shutil.copytree(found, into)
            if _step(into) == before == _step(found):
                return into
        except (FileNotFoundError, CheckpointError):
            continue  # swapped mid-copy
    raise CheckpointError(f"the checkpoint of {run} changed {COPY_ATTEMPTS} times while being copied; try again")


def _step(checkpoint: Path) -> int:
    try:
        return int(json.loads((checkpoint / STATE).read_text())["step"])
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"training checkpoint {checkpoint / STATE} is unreadable: {error}") from error


def _is_snapshot(folder: Path) -> bool:
    """Whether ``folder`` is an earlier snapshot (which a new one may replace)."""
    try:
        return "snapshot" in json.loads((folder / "training.json").read_text())
    except (OSError, ValueError, TypeError):
        return False


def _arch(checkpoint: Path) -> str | None:
    config = json.loads((checkpoint / STATE).read_text()).get("config")
    return config.get("arch") if isinstance(config, dict) else None


def _save_diffusion(checkpoint: Path, tensors: dict, staging: Path):
    from generators.training.ddpm import DiffusionTrainConfig, build_unet, save_diffusers

    state = read_state(checkpoint, DiffusionTrainConfig)
    ema = build_unet(state.config).eval()
    load_state(ema, tensors, str(checkpoint / TENSORS), target="the run's unet_ema network", prefix="unet_ema.")
    save_diffusers(ema, state.config, staging)
    return state, "diffusion"


def _save_gan(checkpoint: Path, tensors: dict, staging: Path):
    from generators.training.loop import FINISH_STREAM
    from generators.training.recipes import make_recipe

    state = read_state(checkpoint)
    config = state.config
    counts = [int(state.data["class_counts"].get(name, 0)) for name in CLASSES]
    recipe = make_recipe(config, [k for k, count in enumerate(counts) if count > 0])
    torch.manual_seed(config.seed)  # the build's initial weights are all overwritten below
    networks = recipe.build_networks()
    for name, module in networks.items():
        load_state(module, tensors, str(checkpoint / TENSORS), target=f"the run's {name} network", prefix=f"{name}.")
    composition = torch.tensor(counts, dtype=torch.float64)
    recipe.finish(networks, (composition / composition.sum()).float(),
                  torch.Generator().manual_seed(config.seed + FINISH_STREAM))
    recipe.save(networks, staging)
    return state, recipe.family
