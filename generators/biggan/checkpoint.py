"""Loading and saving BigGAN-deep checkpoints: ``config.json`` + weights.

Published checkpoints are a folder with ``config.json`` and ``pytorch_model.bin`` (a torch
pickle of a plain state dict, read here with ``weights_only=True`` so no code can run);
the project saves ``config.json`` + ``model.safetensors``, and for the models it trains also
``discriminator.json`` + ``discriminator.safetensors`` (``config.json`` keeps exactly the
published keys). Every problem with a file is a ``CheckpointError`` that names it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from data.errors import CheckpointError, ConfigError, WeightsNotFoundError
from data.files import write_atomically
from generators.biggan.config import BigGANConfig, read_config
from generators.biggan.discriminator import BigGANDiscriminator, DiscriminatorConfig
from generators.biggan.model import BigGANDeep

CONFIG_NAME = "config.json"
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")  # in order of preference
DISCRIMINATOR_CONFIG, DISCRIMINATOR_WEIGHTS = "discriminator.json", "discriminator.safetensors"
_SHOWN = 5  # how many offending keys an error lists


def find_weights(directory: Path) -> Path:
    for name in WEIGHT_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise WeightsNotFoundError(
        f"no BigGAN weights in {directory}: expected one of {list(WEIGHT_NAMES)}"
    )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or a torch-pickled plain state dict, on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"BigGAN weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            state = load_file(path, device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure to parse means a bad file
        raise CheckpointError(
            f"cannot read BigGAN weights {path}: corrupt or truncated ({error})"
        ) from error
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"BigGAN weights {path} are not a plain state dict of named tensors")
    if not state:
        raise CheckpointError(f"BigGAN weights {path} hold no tensors (empty state dict)")
    return state


def check_state_dict(
    state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: str
) -> None:
    """Raise ``CheckpointError`` naming missing, unexpected, mis-shaped or non-finite tensors."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys {_few(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys {_few(unexpected)}")
    wrong_shape = [
        f"{k}: {list(state[k].shape)} != {list(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} tensors of the wrong shape {_few(wrong_shape)}")
    not_float = sorted(k for k in state if k in expected and not state[k].is_floating_point())
    if not_float:
        problems.append(f"non-float tensors {_few(not_float)}")
    if problems:
        raise CheckpointError(
            f"BigGAN weights {source} do not fit the config: " + "; ".join(problems)
        )
    non_finite = sorted(k for k, v in state.items() if not torch.isfinite(v).all())
    if non_finite:
        raise CheckpointError(f"BigGAN weights {source} hold NaN/inf values in {_few(non_finite)}")


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

    state = read_state_dict(weights)
    with torch.device("meta"):  # layout only: no memory, no random initialisation
        model = BigGANDeep(architecture)
    check_state_dict(state, model.state_dict(), str(weights))
    state = {k: v.float() for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def save_biggan(
    model: BigGANDeep, directory: str | Path, discriminator: BigGANDiscriminator | None = None
) -> Path:
    """Write ``config.json`` + ``model.safetensors`` into ``directory`` (each file atomically),
    and ``discriminator.json`` + ``discriminator.safetensors`` when a discriminator is given."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    parts = [(model, WEIGHT_NAMES[0], CONFIG_NAME)]
    if discriminator is not None:
        parts.append((discriminator, DISCRIMINATOR_WEIGHTS, DISCRIMINATOR_CONFIG))
    for module, weights_name, config_name in parts:
        state = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
        write_atomically(
            directory / weights_name, lambda tmp, s=state: save_file(s, tmp, metadata={"format": "pt"})
        )
        config_text = json.dumps(module.config.to_dict(), indent=2) + "\n"
        write_atomically(directory / config_name, lambda tmp, t=config_text: Path(tmp).write_text(t))
    return directory


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
        config = DiscriminatorConfig.from_dict(json.loads(config_path.read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ConfigError) as error:
        raise CheckpointError(f"BigGAN discriminator config {config_path} is unreadable: {error}") from error
    state = read_state_dict(weights)
    discriminator = BigGANDiscriminator(config)
    check_state_dict(state, discriminator.state_dict(), str(weights))
    discriminator.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return discriminator.eval()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _few(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return f"[{shown}{', ...' if len(items) > _SHOWN else ''}]"
