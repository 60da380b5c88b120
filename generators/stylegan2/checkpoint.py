"""Loading and saving StyleGAN2 networks: NVIDIA pickles in, config.json + safetensors out.

``load_network_pickle`` reads either NVIDIA format through the safe unpickler:
- stylegan2-ada-pytorch / stylegan3 ``network-snapshot-*.pkl``: a dict whose ``G``, ``D``,
  ``G_ema`` are persistence records; each one's stored init kwargs rebuild our module and
  its tensors load with ``strict=True``;
- the TensorFlow-era tuple ``(G, D, Gs)``: converted by ``convert_tf``.
``save_stylegan2`` / ``load_stylegan2_dir`` are the project's own format (constructor kwargs
in ``config.json``, tensors in ``model.safetensors`` under ``G_ema.*``, ``G.*``, ``D.*``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data import saved_model
from data.errors import CheckpointError
from data.saved_model import CONFIG_NAME, WEIGHTS_NAME, load_state, save_model
from generators.stylegan2.convert_tf import ConvertedNetwork, convert_tf_networks
from generators.stylegan2.networks import Discriminator, Generator
from generators.stylegan2.unpickle import PersistentRecord, TFNetworkRecord, safe_load_pickle

NETWORK_KEYS = ("G", "D", "G_ema")
_CLASSES: dict[str, type[torch.nn.Module]] = {"Generator": Generator, "Discriminator": Discriminator}
_ROLE_CLASS = {"G": "Generator", "G_ema": "Generator", "D": "Discriminator"}
FORMAT_NAME, FORMAT_VERSION = "artbias-stylegan2", 1


def load_network_pickle(path: str | Path) -> dict[str, torch.nn.Module]:
    """Networks of an NVIDIA StyleGAN2 pickle (either format) as eval-mode modules.

    Returns a dict with keys among ``"G"``, ``"D"``, ``"G_ema"``. Nothing in the file is
    executed; a file that is not such a pickle raises ``CheckpointError``.
    """
    data = safe_load_pickle(path)
    if isinstance(data, tuple) and data and all(isinstance(n, TFNetworkRecord) for n in data):
        networks = {role: _module_from_tf(net) for role, net in convert_tf_networks(data, source=str(path)).items()}
    elif isinstance(data, Mapping) and any(isinstance(data.get(k), PersistentRecord) for k in NETWORK_KEYS):
        networks = {
            key: _module_from_record(data[key], key, source=str(path))
            for key in NETWORK_KEYS
            if data.get(key) is not None
        }
    else:
        raise CheckpointError(
            f"{path}: not a StyleGAN2 network pickle (expected a network-snapshot dict with "
            f"G/D/G_ema or a TensorFlow (G, D, Gs) tuple, got {type(data).__name__})"
        )
    return {key: net.eval() for key, net in networks.items()}


# -- stylegan2-ada-pytorch snapshots -------------------------------------------------------


def _module_from_record(record: Any, role: str, source: str) -> torch.nn.Module:
    if not isinstance(record, PersistentRecord):
        raise CheckpointError(f"{source}: {role} is not a persisted network ({type(record).__name__})")
    if record.class_name != _ROLE_CLASS[role]:
        raise CheckpointError(f"{source}: {role} is a {record.class_name!r}, expected {_ROLE_CLASS[role]!r}")
    args = record.state.get("_init_args", ())
    kwargs = record.state.get("_init_kwargs")
    if args or not isinstance(kwargs, Mapping):
        raise CheckpointError(f"{source}: {role} does not record its constructor keyword arguments")
    module = build_network(record.class_name, plain_data(kwargs), source=f"{source}: {role}")
    return load_state(module, record_state_dict(record), f"{source}: {role}", target=_target(record.class_name))


def _module_from_tf(network: ConvertedNetwork) -> torch.nn.Module:
    module = build_network(network.class_name, network.kwargs, source=network.source)
    # FIR filters are fixed by the constructor; TF keeps them in code, not in variables.
    filters = {k: v for k, v in module.state_dict().items() if k.endswith("resample_filter")}
    return load_state(module, filters | network.tensors, network.source, target=_target(network.class_name))


def _target(class_name: str) -> str:
    return f"the StyleGAN2 {class_name} its constructor arguments describe"


def record_state_dict(record: PersistentRecord, prefix: str = "") -> dict[str, torch.Tensor]:
    """Flatten a persisted module tree into ``state_dict`` names (persistent buffers only)."""
    state = record.state
    skip = state.get("_non_persistent_buffers_set") or set()
    tensors: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{prefix}{name} is not a tensor ({type(value).__name__})")
            tensors[prefix + name] = value.detach()
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentRecord):
            raise CheckpointError(f"{prefix}{name} is not a persisted module ({type(child).__name__})")
        tensors.update(record_state_dict(child, f"{prefix}{name}."))
    return tensors


def plain_data(value: Any) -> Any:
    """Init kwargs as JSON-ready Python values (EasyDicts, tuples, numpy scalars unwrapped)."""
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise CheckpointError(f"unsupported constructor argument of type {type(value).__name__}")


# -- building and filling modules ---------------------------------------------------------


def build_network(class_name: str, kwargs: dict, *, source: str = "") -> torch.nn.Module:
    """Construct ``Generator``/``Discriminator`` from NVIDIA-style keyword arguments."""
    cls = _CLASSES.get(class_name)
    if cls is None:
        raise CheckpointError(f"{source}: unknown network class {class_name!r}")
    try:
        inspect.signature(cls).bind(**kwargs)
        return cls(**kwargs)
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{source}: cannot build a StyleGAN2 {class_name} from {kwargs}: {error}") from None


# -- the project's own directory format ---------------------------------------------------


def save_stylegan2(networks: Mapping[str, torch.nn.Module], directory: str | Path) -> Path:
    """Write ``config.json`` (constructor kwargs) and ``model.safetensors`` into ``directory``
    (``data.saved_model``: each file renamed into place once complete)."""
    unknown = sorted(set(networks) - set(NETWORK_KEYS))
    if unknown or not networks:
        raise CheckpointError(f"networks to save must be among {NETWORK_KEYS}, got {sorted(networks)}")
    config: dict[str, Any] = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "networks": {}}
    tensors: dict[str, torch.Tensor] = {}
    for key, net in networks.items():
        if not isinstance(net, Generator | Discriminator):
            raise CheckpointError(f"{key} is not a StyleGAN2 Generator/Discriminator ({type(net).__name__})")
        config["networks"][key] = {"class_name": type(net).__name__, "init_kwargs": net.init_kwargs}
        tensors |= {f"{key}.{name}": tensor.float() for name, tensor in net.state_dict().items()}
    return save_model(directory, config, tensors)


def load_stylegan2_dir(directory: str | Path) -> dict[str, torch.nn.Module]:
    """Networks saved by ``save_stylegan2``, as eval-mode modules."""
    directory = saved_model.require_folder(directory, "StyleGAN2")
    config = saved_model.read_config(directory, "StyleGAN2")
    if config.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{directory / CONFIG_NAME}: not a {FORMAT_NAME} config")
    weights = directory / WEIGHTS_NAME
    tensors = saved_model.read_weights(directory, "StyleGAN2")
    specs = config.get("networks")
    if not isinstance(specs, dict) or not specs:
        raise CheckpointError(f"{directory / CONFIG_NAME}: lists no networks")
    networks = {}
    for key, spec in specs.items():
        if key not in NETWORK_KEYS or not isinstance(spec, dict):
            raise CheckpointError(f"{directory / CONFIG_NAME}: unexpected network entry {key!r}")
        source = f"{directory}: {key}"
        if spec.get("class_name") != _ROLE_CLASS[key]:
            raise CheckpointError(f"{source}: class {spec.get('class_name')!r}, expected {_ROLE_CLASS[key]!r}")
        module = build_network(spec["class_name"], spec.get("init_kwargs") or {}, source=source)
        load_state(module, tensors, str(weights), target=_target(spec["class_name"]) + f" ({key})", prefix=key + ".")
        networks[key] = module.eval()
    return networks
