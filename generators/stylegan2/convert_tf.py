"""Converting TensorFlow-era StyleGAN2 pickles (a tuple ``(G, D, Gs)``) to our modules.

The official config-f networks exist only in this format. Facts of the layout (see the
fixture README): convolution weights are [k, k, in, out] (ours [out, in, k, k]), the
up-sampling convolution ``Conv0_up`` is stored spatially flipped (TF applies it as a
transposed convolution of the flipped kernel), ``mod_bias`` is stored minus one, dense
weights are [in, out], noise inputs are numbered ``noise{i}`` over the conv layers,
``dlatent_avg`` is the truncation centre and ``fmap_base`` is half of ``channel_base``.
Equalised-learning-rate gains are applied at run time in both codes, so stored values carry
over unscaled.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch

from data.errors import CheckpointError
from generators.stylegan2.unpickle import TFNetworkRecord

Transform = Callable[[torch.Tensor], torch.Tensor]
_TF_ROLES = ("G", "D", "G_ema")  # the tuple's order: G, D, Gs


class ConvertedNetwork(NamedTuple):
    """One TF network as the PyTorch code builds it: class, constructor kwargs, tensors."""

    class_name: str  # "Generator" or "Discriminator"
    kwargs: dict[str, Any]
    tensors: dict[str, torch.Tensor]  # without the FIR filters, which the constructor fixes
    source: str  # file and role, for error messages


def convert_tf_networks(networks: tuple, *, source: str = "") -> dict[str, ConvertedNetwork]:
    """``(G, D, Gs)`` TF network records -> ``{"G", "D", "G_ema"}`` converted networks
    (``generators.stylegan2.checkpoint`` builds and fills the modules)."""
    if len(networks) != 3:
        raise CheckpointError(f"{source}: a TF StyleGAN2 pickle holds (G, D, Gs), got {len(networks)} networks")
    result = {}
    for role, record in zip(_TF_ROLES, networks, strict=True):
        where = f"{source}: {role} ({record.state.get('name')!r})"
        if role == "D":
            kwargs, tensors = _discriminator(record, where)
            result[role] = ConvertedNetwork("Discriminator", kwargs, tensors, where)
        else:
            kwargs, tensors = _generator(record, where)
            result[role] = ConvertedNetwork("Generator", kwargs, tensors, where)
    return result


# -- reading records ----------------------------------------------------------------------


def _variables(record: TFNetworkRecord, where: str) -> dict[str, np.ndarray]:
    pairs = record.state.get("variables")
    if not isinstance(pairs, list | tuple):
        raise CheckpointError(f"{where}: no variable list")
    result = {}
    for pair in pairs:
        if not (isinstance(pair, tuple | list) and len(pair) == 2 and isinstance(pair[0], str)):
            raise CheckpointError(f"{where}: malformed variable entry")
        name, value = pair
        if not isinstance(value, np.ndarray | np.floating) or value.dtype.kind != "f":
            raise CheckpointError(f"{where}: variable {name} is not a float array")
        result[name] = value
    return result


def _component(record: TFNetworkRecord, name: str, where: str) -> TFNetworkRecord:
    component = (record.state.get("components") or {}).get(name)
    if not isinstance(component, TFNetworkRecord):
        raise CheckpointError(f"{where}: missing the {name!r} component")
    return component


def _kwargs(record: TFNetworkRecord) -> dict[str, Any]:
    return dict(record.state.get("static_kwargs") or {})


def _check_supported(kw: dict[str, Any], where: str) -> None:
    if kw.get("fmap_decay", 1.0) != 1.0:
        raise CheckpointError(f"{where}: fmap_decay {kw['fmap_decay']} has no PyTorch equivalent")
    if kw.get("label_size", 0):
        # TF conditioning (LabelConcat / label-projected output) differs from the PyTorch
        # embedding; the published TF networks are all unconditional.
        raise CheckpointError(f"{where}: conditional TF networks (label_size > 0) are not supported")


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32, copy=True))


def _conv(flip: bool = False) -> Transform:
    def transform(t: torch.Tensor) -> torch.Tensor:
        t = t.permute(3, 2, 0, 1)  # [k, k, in, out] -> [out, in, k, k]
        return t.flip([2, 3]) if flip else t

    return transform


def _dense(t: torch.Tensor) -> torch.Tensor:
    return t.t()  # [in, out] -> [out, in]


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


def _convert(variables: dict[str, np.ndarray], rules: list[tuple[str, Callable]], where: str) -> dict[str, torch.Tensor]:
    """Apply the first matching (regex, rule) to every variable; rule(match) -> (name, transform)."""
    tensors = {}
    for tf_name, array in variables.items():
        for pattern, rule in rules:
            match = re.fullmatch(pattern, tf_name)
            if match:
                target = rule(match)
                if target is not None:
                    name, transform = target
                    tensors[name] = transform(_tensor(array)).contiguous()
                break
        else:
            raise CheckpointError(f"{where}: unknown TF variable {tf_name!r}")
    return tensors


# -- generator ----------------------------------------------------------------------------

_LAYER_PARTS = {
    "weight": ("weight", None),
    "bias": ("bias", _same),
    "mod_weight": ("affine.weight", _dense),
    "mod_bias": ("affine.bias", lambda t: t + 1),
    "noise_strength": ("noise_strength", _same),
}


def _synthesis_layer(match: re.Match) -> tuple[str, Transform]:
    res, layer, part = int(match[1]), match[2], match[3]
    ours = {"Conv": "conv1", "Conv0_up": "conv0", "Conv1": "conv1", "ToRGB": "torgb"}[layer]
    name, transform = _LAYER_PARTS[part]
    if part == "weight":
        transform = _conv(flip=layer == "Conv0_up")
    return f"synthesis.b{res}.{ours}.{name}", transform


def _noise(match: re.Match) -> tuple[str, Transform]:
    index = int(match[1])
    if index == 0:
        return "synthesis.b4.conv1.noise_const", lambda t: t[0, 0]
    log2, odd = (index + 5) // 2, index % 2 == 1  # odd: Conv0_up, even: Conv1
    return f"synthesis.b{2**log2}.{'conv0' if odd else 'conv1'}.noise_const", lambda t: t[0, 0]


_GENERATOR_RULES: list[tuple[str, Callable]] = [
    (r"lod", lambda m: None),  # progressive-growing leftover, unused by StyleGAN2
    (r"dlatent_avg", lambda m: ("mapping.w_avg", _same)),
    (r"mapping/Dense(\d+)/weight", lambda m: (f"mapping.fc{m[1]}.weight", _dense)),
    (r"mapping/Dense(\d+)/bias", lambda m: (f"mapping.fc{m[1]}.bias", _same)),
    (r"synthesis/4x4/Const/const", lambda m: ("synthesis.b4.const", lambda t: t[0])),
    (r"synthesis/(\d+)x\1/(Conv|Conv0_up|Conv1|ToRGB)/(weight|bias|mod_weight|mod_bias|noise_strength)", _synthesis_layer),
    (r"synthesis/(\d+)x\1/Skip/weight", lambda m: (f"synthesis.b{m[1]}.skip.weight", _conv())),
    (r"synthesis/noise(\d+)", _noise),
]


def _generator(record: TFNetworkRecord, where: str) -> tuple[dict, dict[str, torch.Tensor]]:
    kw = _kwargs(record)
    _check_supported(kw, where)
    mapping = _component(record, "mapping", where)
    synthesis = _component(record, "synthesis", where)
    variables = {name: value for name, value in _variables(record, where).items()}
    variables |= {f"mapping/{k}": v for k, v in _variables(mapping, where).items()}
    variables |= {f"synthesis/{k}": v for k, v in _variables(synthesis, where).items()}
    if "dlatent_avg" not in variables:
        raise CheckpointError(f"{where}: no dlatent_avg (the truncation centre)")

    num_layers = int(kw.get("mapping_layers", 8))
    w_dim = int(kw.get("dlatent_size", 512))
    first = variables.get("mapping/Dense0/weight")
    mapping_kwargs = {
        "num_layers": num_layers,
        "lr_multiplier": float(kw.get("mapping_lrmul", 0.01)),
        "activation": kw.get("mapping_nonlinearity", "lrelu"),
        # TF tracks no average when the beta is None, but the stored centre is still there.
        "w_avg_beta": kw.get("dlatent_avg_beta", 0.995) or 1.0,
    }
    if num_layers > 1 and first is not None and first.ndim == 2 and first.shape[1] != w_dim:
        mapping_kwargs["layer_features"] = int(first.shape[1])
    synthesis_kwargs = {
        "channel_base": int(kw.get("fmap_base", 16384)) * 2,
        "channel_max": int(kw.get("fmap_max", 512)),
        "architecture": kw.get("architecture", "skip"),
        "resample_filter": list(kw.get("resample_kernel", [1, 3, 3, 1])),
        "activation": kw.get("nonlinearity", "lrelu"),
    }
    kwargs = {
        "z_dim": int(kw.get("latent_size", 512)),
        "c_dim": 0,
        "w_dim": w_dim,
        "img_resolution": int(kw.get("resolution", 1024)),
        "img_channels": int(kw.get("num_channels", 3)),
        "mapping_kwargs": mapping_kwargs,
        "synthesis_kwargs": synthesis_kwargs,
    }
    return kwargs, _convert(variables, _GENERATOR_RULES, where)


# -- discriminator ------------------------------------------------------------------------

_DISCRIMINATOR_RULES: list[tuple[str, Callable]] = [
    (r"(\d+)x\1/FromRGB/weight", lambda m: (f"b{m[1]}.fromrgb.weight", _conv())),
    (r"(\d+)x\1/FromRGB/bias", lambda m: (f"b{m[1]}.fromrgb.bias", _same)),
    (r"4x4/Conv/weight", lambda m: ("b4.conv.weight", _conv())),
    (r"4x4/Conv/bias", lambda m: ("b4.conv.bias", _same)),
    (r"(\d+)x\1/Conv0/weight", lambda m: (f"b{m[1]}.conv0.weight", _conv())),
    (r"(\d+)x\1/Conv0/bias", lambda m: (f"b{m[1]}.conv0.bias", _same)),
    (r"(\d+)x\1/Conv1_down/weight", lambda m: (f"b{m[1]}.conv1.weight", _conv())),
    (r"(\d+)x\1/Conv1_down/bias", lambda m: (f"b{m[1]}.conv1.bias", _same)),
    (r"(\d+)x\1/Skip/weight", lambda m: (f"b{m[1]}.skip.weight", _conv())),
    (r"4x4/Dense0/weight", lambda m: ("b4.fc.weight", _dense)),
    (r"4x4/Dense0/bias", lambda m: ("b4.fc.bias", _same)),
    (r"Output/weight", lambda m: ("b4.out.weight", _dense)),
    (r"Output/bias", lambda m: ("b4.out.bias", _same)),
]


def _discriminator(record: TFNetworkRecord, where: str) -> tuple[dict, dict[str, torch.Tensor]]:
    kw = _kwargs(record)
    _check_supported(kw, where)
    resolution = int(kw.get("resolution", 1024))
    if resolution < 4 or 2 ** round(math.log2(resolution)) != resolution:
        raise CheckpointError(f"{where}: resolution {resolution} is not a power of two")
    kwargs = {
        "c_dim": 0,
        "img_resolution": resolution,
        "img_channels": int(kw.get("num_channels", 3)),
        "architecture": kw.get("architecture", "resnet"),
        "channel_base": int(kw.get("fmap_base", 16384)) * 2,
        "channel_max": int(kw.get("fmap_max", 512)),
        "block_kwargs": {
            "activation": kw.get("nonlinearity", "lrelu"),
            "resample_filter": list(kw.get("resample_kernel", [1, 3, 3, 1])),
        },
        "epilogue_kwargs": {
            "mbstd_group_size": kw.get("mbstd_group_size", 4),
            "mbstd_num_channels": int(kw.get("mbstd_num_features", 1)),
            "activation": kw.get("nonlinearity", "lrelu"),
        },
    }
    return kwargs, _convert(_variables(record, where), _DISCRIMINATOR_RULES, where)
