"""Where a training run stands: new, interrupted, finished, or finished and asked for more.

Shared by the GAN loop and the diffusion trainer. While it trains, a run lives in
``<out>.partial/`` (samples, losses, ``checkpoint/``); ``<out>`` only ever appears complete.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from data.errors import ConfigError
from generators.training.checkpoint import find_checkpoint, read_state


def prepare_run_dir(out: Path, run_dir: Path, config, data: dict) -> Path | str | None:
    """The checkpoint to resume from (None: a new run; "finished": nothing to do).

    An interrupted run lives in ``run_dir``; a finished one in ``out``, copied back to
    ``run_dir`` when more steps are asked for. A resumed run must have the same config
    (but for steps and logging intervals) and the same data.
    """
    config_type = type(config)
    checkpoint = find_checkpoint(run_dir) if run_dir.is_dir() else None
    finished = find_checkpoint(out) if checkpoint is None and out.is_dir() else None
    for found in (checkpoint, finished):
        if found is not None:
            check_resumable(found, config, data)
    try:
        if checkpoint is not None:
            return checkpoint
        if finished is not None:
            if read_state(finished, config_type).step == config.steps:
                return "finished"
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.copytree(out, run_dir)
            return find_checkpoint(run_dir)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ConfigError(f"--out {out} exists and holds no training run; choose a new or empty folder")
        shutil.rmtree(run_dir, ignore_errors=True)  # a run killed before its first checkpoint
        run_dir.mkdir(parents=True)
        return None
    except OSError as error:
        raise ConfigError(f"cannot write the training run under {run_dir.parent}: {error}") from error


def check_resumable(checkpoint: Path, config, data: dict) -> None:
    state = read_state(checkpoint, type(config))
    where = checkpoint.parent
    differences = state.config.differences(config)
    if differences:
        raise ConfigError(
            f"{where} holds a run with a different config ({', '.join(differences)} differ); "
            "use the same arguments to resume, or another --out for a new run"
        )
    if state.data.get("class_counts") != data["class_counts"] or state.data.get("path") != data["path"]:
        raise ConfigError(f"{where} was trained on other data ({state.data.get('path')}); use another --out")
    if state.step > config.steps:
        raise ConfigError(f"{where} is already at step {state.step}, beyond --steps {config.steps}")


def check_device(device: str | torch.device) -> torch.device:
    """The torch device, or a ConfigError when it is unknown or not present."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"unknown device {device!r}: {error}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device} asked for, but torch sees no CUDA device")
    return device


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's CPU thread count set to ``threads`` (None: unchanged) for the block, then restored."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def describe_data(images, classes) -> dict:
    """What a run records of its training data (and checks again when it resumes).

    With fresh renders, ``class_counts`` are the world's planned counts: its composition."""
    from generators.training.data import FRESH_SOURCE, RenderedWorld

    record = {"path": str(images.root), "n_images": len(images),
              "classes": list(classes) if classes else None, "class_counts": images.class_counts()}
    if isinstance(images, RenderedWorld):
        record["source"] = FRESH_SOURCE
    return record


def open_run(config, data, out: Path, run_dir: Path, classes):
    """The start every trainer shares: the batches' source (images decoded once, or the world
    to render afresh), its record, and where the run stands (``prepare_run_dir``: a
    checkpoint, None, or "finished")."""
    from generators.training.data import load_training_images, rendered_world

    load = rendered_world if config.fresh_renders else load_training_images
    images = load(data, config.image_size, classes)
    record = describe_data(images, classes)
    return images, record, prepare_run_dir(out, run_dir, config, record)
