"""Training the project's own GANs: one loop (``loop.train_gan``) for DCGAN, StyleGAN2 and
BigGAN-deep, configured by ``TrainConfig`` (``configs/<arch>-world.json``), with the
per-architecture parts in ``recipes.py``. The command is ``artbias train gan``.
"""

from generators.training.config import ARCHITECTURES, TrainConfig, load_train_config
from generators.training.loop import train_gan

__all__ = ["ARCHITECTURES", "TrainConfig", "load_train_config", "train_gan"]
