"""Loading and saving BigGAN-deep checkpoints: ``config.json`` + weights.

Published checkpoints are a folder with ``config.json`` and ``pytorch_model.bin`` (a torch
pickle of a plain state dict, read here with ``weights_only=True`` so no code can run);
the project saves ``config.json`` + ``model.safetensors``, and for the models it trains also
``discriminator.json`` + ``discriminator.safetensors`` (``config.json`` keeps exactly the
published keys). Every problem with a file is a ``CheckpointError`` that names it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from data import saved_model
from data.errors import CheckpointError, ConfigError, WeightsNotFoundError
from data.saved_model import load_state, read_tensors, save_model
from generators.biggan.config import BigGANConfig, read_config
from generators.biggan.discriminator import BigGANDiscriminator, DiscriminatorConfig
from generators.biggan.model import BigGANDeep

CONFIG_NAME = "config.json"
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")  # in order of preference
DISCRIMINATOR_CONFIG, DISCRIMINATOR_WEIGHTS = "discriminator.json", "discriminator.safetensors"


def find_weights(directory: Path) -> Path:
    for name in WEIGHT_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise WeightsNotFoundError(
        f"no BigGAN weights in {directory}: expected one of {list(WEIGHT_NAMES)}"
    )


def load_biggan(
    path: str | Path, config: dict | BigGANConfig | str | Path | None = None
) -> BigGANDeep:
    """A BigGAN-deep in eval mode from a checkpoint folder or a weights file.

    path: a folder with ``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``,
    or a weights file. config: the architecture (dict, ``BigGANConfig`` or a JSON path);
    when omitted, the ``config.json`` in the folder (or beside the file) is used.
    """
    path = Path(path)
    if path.is_dir():
        weights = find_weights(path)
        config_file = path / CONFIG_NAME
    elif path.is_file():
        weights, config_file = path, path.parent / CONFIG_NAME
    else:
        raise WeightsNotFoundError(f"BigGAN checkpoint not found: {path}")
    if config is None:
        if not config_file.is_file():
            raise CheckpointError(
                f"no {CONFIG_NAME} for BigGAN weights {weights}; pass config= explicitly"
            )
        config = config_file
    try:
        architecture = (
            read_config(config)
            if isinstance(config, str | Path)
            else BigGANConfig.from_dict(config)
        )
    except ConfigError as error:
        raise CheckpointError(f"BigGAN checkpoint {path}: {error}") from error

    state = _read_weights(weights)
    with torch.device("meta"):  # layout only: no memory, no random initialisation
        model = BigGANDeep(architecture)
    load_state(model, state, str(weights), target="the BigGAN-deep config")
    return model.eval()


def save_biggan(
    model: BigGANDeep, directory: str | Path, discriminator: BigGANDiscriminator | None = None
) -> Path:
    """Write ``config.json`` + ``model.safetensors`` into ``directory`` (``data.saved_model``),
    and ``discriminator.json`` + ``discriminator.safetensors`` when a discriminator is given."""
    save_model(directory, model.config.to_dict(), model.state_dict(), config_name=CONFIG_NAME, weights_name=WEIGHT_NAMES[0])
    if discriminator is not None:
        save_model(
            directory, discriminator.config.to_dict(), discriminator.state_dict(),
            config_name=DISCRIMINATOR_CONFIG, weights_name=DISCRIMINATOR_WEIGHTS,
        )
    return Path(directory)


def load_biggan_discriminator(directory: str | Path) -> BigGANDiscriminator | None:
    """The discriminator saved beside a BigGAN (eval mode), or None when the folder has none."""
    directory = Path(directory)
    config_path, weights = directory / DISCRIMINATOR_CONFIG, directory / DISCRIMINATOR_WEIGHTS
    if not config_path.is_file() and not weights.is_file():
        return None
    if not (config_path.is_file() and weights.is_file()):
        present, absent = (config_path, weights) if config_path.is_file() else (weights, config_path)
        raise CheckpointError(f"BigGAN folder {directory} has {present.name} but not {absent.name}")
    try:
        config = DiscriminatorConfig.from_dict(saved_model.read_config(directory, "BigGAN", DISCRIMINATOR_CONFIG))
    except ConfigError as error:
        raise CheckpointError(f"BigGAN discriminator config {config_path} is unreadable: {error}") from error
    discriminator = BigGANDiscriminator(config)
    load_state(discriminator, _read_weights(weights), str(weights), target="the BigGAN discriminator config")
    return discriminator.eval()


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsNotFoundError(f"BigGAN weights file not found: {path}")
    return read_tensors(path)
