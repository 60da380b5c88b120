"""BigGAN-deep: the published architecture in plain PyTorch, its checkpoints and its search space.

- ``BigGANDeep(config)``: the network (state dict laid out like biggan-deep-128/256/512).
- ``load_biggan`` / ``save_biggan``: ``config.json`` + weights folders.
- ``compute_truncation_statistics``: per-truncation batch-norm statistics after training.
- ``BigGANGenerator`` / ``load``: the network behind the generator protocol.
"""

from generators.biggan.checkpoint import load_biggan, save_biggan
from generators.biggan.config import BigGANConfig, published_config, published_configs
from generators.biggan.family import BigGANGenerator, load
from generators.biggan.model import BigGANDeep
from generators.biggan.statistics import compute_truncation_statistics, truncated_normal

__all__ = [
    "BigGANConfig",
    "BigGANDeep",
    "BigGANGenerator",
    "compute_truncation_statistics",
    "load",
    "load_biggan",
    "published_config",
    "published_configs",
    "save_biggan",
    "truncated_normal",
]
