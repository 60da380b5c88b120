"""Numeric precision and memory layout of a training run, chosen in its config.

``precision: "bfloat16"`` runs the networks' forward passes under autocast, so convolutions
and matrix products compute in bfloat16 while the weights, Adam's state, the losses and the
EMA stay float32. On CPUs with native bfloat16 (AVX512-BF16, AMX) and on recent GPUs this is
what makes the starter zoo fit its retraining budget: measured per training step on one core
of this project's machine (``python -m bench.training``), 1.4x to 2x faster. On a CPU
without native bfloat16 it is emulated and slower: keep ``"float32"`` there.

``channels_last: true`` stores activations and convolution weights NHWC, which oneDNN and
cuDNN run faster for most of the GANs; measured slower for the small diffusion UNet.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from data.errors import ConfigError

PRECISIONS = ("float32", "bfloat16")


def check_precision(precision: object, channels_last: object) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if not isinstance(channels_last, bool):
        raise ConfigError(f"channels_last must be true or false, got {channels_last!r}")


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context the forward passes run in: autocast to bfloat16, or nothing."""
    if precision == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def set_memory_format(networks: dict[str, nn.Module], channels_last: bool) -> None:
    """Puts every network's 4-d weights in NHWC (``channels_last``) or back in NCHW, in place."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    for network in networks.values():
        network.to(memory_format=layout)


def describe_precision(config: dict) -> str:
    """For model cards: e.g. "bfloat16 mixed precision, channels-last"."""
    words = ["bfloat16 mixed precision" if config.get("precision") == "bfloat16" else "float32"]
    if config.get("channels_last"):
        words.append("channels-last")
    return ", ".join(words)
