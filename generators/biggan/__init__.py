"""BigGAN-deep: the published architecture in plain PyTorch, its checkpoints and its search space.

- ``BigGANDeep(config)``: the network (state dict laid out like biggan-deep-128/256/512).
- ``load_biggan`` / ``save_biggan``: ``config.json`` + weights folders (optionally with a
  trained ``BigGANDiscriminator``, read back by ``load_biggan_discriminator``).
- ``compute_truncation_statistics``: per-truncation batch-norm statistics after training.
- ``BigGANGenerator`` / ``load``: the network behind the generator protocol.
"""

from generators.biggan.checkpoint import load_biggan, load_biggan_discriminator, save_biggan
from generators.biggan.config import BigGANConfig, published_config, published_configs
from generators.biggan.discriminator import BigGANDiscriminator, DiscriminatorConfig
from generators.biggan.family import BigGANGenerator, load
from generators.biggan.model import BigGANDeep
from generators.biggan.statistics import compute_truncation_statistics, truncated_normal

__all__ = [
    "BigGANConfig",
    "BigGANDeep",
    "BigGANDiscriminator",
    "BigGANGenerator",
    "DiscriminatorConfig",
    "compute_truncation_statistics",
    "load",
    "load_biggan",
    "load_biggan_discriminator",
    "published_config",
    "published_configs",
    "save_biggan",
    "truncated_normal",
]
