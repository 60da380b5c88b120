"""Starting weights for training: published ImageNet backbones or a user's own file.

``--weights imagenet`` resolves the architecture's catalogue entry through the shared weights
resolution (explicit path -> artbias cache -> zoo -> download) with torchvision's own cache
(``$TORCH_HOME/hub/checkpoints``) tried before any download, so weights a user already has
from torchvision are found. Offline and absent, that is a ``WeightsNotFoundError`` saying
what to fetch: training never silently starts from random weights when weights were asked for.
"""

from __future__ import annotations

from pathlib import Path

import torch

from classifier.architectures import ArchConfig, SceneResNet
from data.errors import CheckpointError, ConfigError


def torchvision_cache_file(filename: str) -> Path:
    """Where torchvision keeps a downloaded weights file of that name."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def imagenet_weights_path(config: ArchConfig) -> Path:
    """The file holding ``config``'s published ImageNet weights; raises if none is available."""
    from data.weights.catalog import get_entry
    from data.weights.resolve import download, locate

    if config.imagenet_weights is None:
        raise ConfigError(
            f"architecture {config.arch!r} has no published ImageNet weights in the model catalogue; "
            "pass --weights PATH (a torchvision state dict file) or --weights none to train from scratch"
        )
    entry = get_entry(config.imagenet_weights)
    found = locate(entry)
    if found is not None:
        return found.path
    if len(entry.files) == 1:
        cached = torchvision_cache_file(entry.files[0].name)
        if cached.is_file():
            return cached
    return download(entry)  # WeightsNotFoundError offline, naming the file and where it goes


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file, a saved classifier folder or a torch state dict."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # safetensors/pickle errors have no common base class
        raise CheckpointError(f"cannot read weights {path}: {type(error).__name__}: {error}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return state


def load_backbone(network: SceneResNet, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy every non-head tensor of ``state`` into ``network``; the head stays freshly initialised.

    Every backbone tensor must be present with the right shape: a partial match would leave
    part of the network random without anyone noticing.
    """
    own = {k: v for k, v in network.state_dict().items() if not k.startswith("fc.")}
    missing = [k for k in own if k not in state]
    wrong = [f"{k} {list(state[k].shape)} != {list(v.shape)}" for k, v in own.items() if k in state and state[k].shape != v.shape]
    if missing or wrong:
        detail = "; ".join(([f"missing {', '.join(missing[:4])}"] if missing else []) + wrong[:4])
        raise CheckpointError(f"weights {source} do not fit this architecture: {detail}")
    network.load_state_dict({k: state[k] for k in own}, strict=False)


def initial_weights(network: SceneResNet, config: ArchConfig, weights: str) -> str | None:
    """Apply ``weights`` (``imagenet``, ``none`` or a path) to ``network``; returns where they came from."""
    if weights == "none":
        return None
    path = imagenet_weights_path(config) if weights == "imagenet" else Path(weights).expanduser()
    load_backbone(network, read_state_dict(path), str(path))
    return str(path)
