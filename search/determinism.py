"""Deterministic GPU kernels for the length of a search, so a seed fixes the result there too.

On the CPU every kernel the search uses is deterministic already. On CUDA some are not by
default (cuDNN picks the fastest convolution algorithm; atomics in some backward passes add
in a varying order), which made gradient refinement differ in the 4th decimal between reruns.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def deterministic_kernels(device: torch.device | str) -> Iterator[None]:
    """Within the block, CUDA work uses deterministic kernels (a warning where none exists)."""
    if torch.device(device).type != "cuda":
        yield
        return
    # cuBLAS reads this when it first starts; later it is too late, and PyTorch warns then.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    cudnn = torch.backends.cudnn
    previous = (cudnn.deterministic, cudnn.benchmark, torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled())
    cudnn.deterministic, cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = previous[0], previous[1]
        torch.use_deterministic_algorithms(previous[2], warn_only=previous[3])
