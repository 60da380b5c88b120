"""Starting weights for training: published ImageNet backbones or a user's own file, and
the preprocessing that goes with them.

An architecture with published weights (``imagenet_weights`` in its config) takes its
preprocessing (mean, std, size, resize size, interpolation) from that weights' catalogue
entry, as torchvision's weight enums carry their transforms; an architecture trained only
from scratch states its own in its config (see ``default_preprocessing``).

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
from data.errors import ConfigError
from data.saved_model import WEIGHTS_NAME, load_state, read_tensors


def default_preprocessing(config: ArchConfig) -> dict:
    """The preprocessing training uses for ``config``: its own when the config states one,
    else the catalogue entry of its published weights."""
    if config.preprocessing is not None:
        return dict(config.preprocessing)
    from data.weights.catalog import get_entry

    entry = get_entry(config.imagenet_weights)
    if entry.preprocessing is None:
        raise ConfigError(f"catalogue entry {entry.name!r} records no preprocessing for architecture {config.arch!r}")
    return dict(entry.preprocessing)


def torchvision_cache_file(filename: str) -> Path:
    """Where torchvision keeps a downloaded weights file of that name."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def imagenet_weights_path(config: ArchConfig) -> Path:
    """The file holding ``config``'s published ImageNet weights; raises if none is available."""
    from data.weights.catalog import get_entry
    from data.weights.resolve import check_file, download, locate

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
            check_file(cached, entry.files[0])  # the catalogue's size and sha256, as for downloads
            return cached
    return download(entry)  # WeightsNotFoundError offline, naming the file and where it goes


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file, a saved classifier folder or a torch state dict."""
    path = Path(path)
    return read_tensors(path / WEIGHTS_NAME if path.is_dir() else path)


def load_backbone(network: SceneResNet, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy every non-head tensor of ``state`` into ``network``; the head stays freshly initialised.

    Every backbone tensor must be present with the right shape (``data.saved_model.load_state``,
    strict): a partial match would leave part of the network random without anyone noticing.
    """
    head = {k: v for k, v in network.state_dict().items() if k.startswith("fc.")}
    backbone = {k: v for k, v in state.items() if not k.startswith("fc.")}
    load_state(network, backbone | head, source, target="this architecture")


def initial_weights(network: SceneResNet, config: ArchConfig, weights: str) -> str | None:
    """Apply ``weights`` (``imagenet``, ``none`` or a path) to ``network``; returns where they came from."""
    if weights == "none":
        return None
    path = imagenet_weights_path(config) if weights == "imagenet" else Path(weights).expanduser()
    load_backbone(network, read_state_dict(path), str(path))
    return str(path)
