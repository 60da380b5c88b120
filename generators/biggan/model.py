"""BigGAN-deep generator, laid out like the published PyTorch checkpoints.

``BigGANDeep.state_dict()`` has the keys and shapes of biggan-deep-128/256/512
(``embeddings.weight``, ``generator.gen_z...``, ``generator.layers.N...``, ...), so those
checkpoints load with ``strict=True``. The same class trains: in train mode spectral norm
runs power iteration and batch norm uses batch statistics; afterwards
``statistics.compute_truncation_statistics`` fills the per-truncation statistics that eval
mode uses.
"""

from __future__ import annotations

import torch
from torch import nn

from data.errors import ConfigError
from generators.biggan.config import BigGANConfig
from generators.biggan.layers import (
    AffineBatchNorm,
    GenBlock,
    SelfAttention,
    SNConv2d,
    SNLinear,
    Truncation,
)


class GeneratorTrunk(nn.Module):
    """Condition vector -> image: a linear stem at 4x4, residual blocks, BN-ReLU-conv to RGB."""

    def __init__(self, config: BigGANConfig):
        super().__init__()
        self.config = config
        width = config.channel_width
        self.stem_channels = width * config.layers[0][1]
        self.gen_z = SNLinear(config.condition_dim, 4 * 4 * self.stem_channels, eps=config.eps)
        layers: list[nn.Module] = []
        for position, (up_sample, multiplier_in, multiplier_out) in enumerate(config.layers):
            if position == config.attention_layer_position:
                layers.append(SelfAttention(width * multiplier_in, eps=config.eps))
            layers.append(
                GenBlock(
                    width * multiplier_in,
                    width * multiplier_out,
                    config.condition_dim,
                    up_sample,
                    n_stats=config.n_stats,
                    eps=config.eps,
                )
            )
        self.layers = nn.ModuleList(layers)
        self.bn = AffineBatchNorm(width * config.layers[-1][2], config.n_stats, config.eps)
        # Published weights have as many RGB-conv outputs as channels; only 3 are used.
        self.conv_to_rgb = SNConv2d(width * config.layers[-1][2], width, 3, eps=config.eps)

    def forward(self, condition: torch.Tensor, truncation: Truncation) -> torch.Tensor:
        # The stem output is laid out channels-last (the weights came from TensorFlow).
        x = (
            self.gen_z(condition)
            .view(-1, 4, 4, self.stem_channels)
            .permute(0, 3, 1, 2)
            .contiguous()
        )
        for layer in self.layers:
            x = layer(x, condition, truncation) if isinstance(layer, GenBlock) else layer(x)
        x = self.conv_to_rgb(torch.relu(self.bn(x, truncation)))
        return torch.tanh(x[:, :3])


class BigGANDeep(nn.Module):
    """``forward(z, class_vector, truncation) -> images [B, 3, output_dim, output_dim]`` in [-1, 1].

    z: [B, z_dim], already scaled by the truncation (the caller draws it from a truncated
    normal). class_vector: [B, num_classes], one-hot or any mixture. truncation: a float in
    (0, 1] or a tensor [B] of them; in eval mode it picks the batch-norm statistics.
    """

    def __init__(self, config: dict | BigGANConfig):
        super().__init__()
        self.config = BigGANConfig.from_dict(config)
        self.embeddings = nn.Linear(
            self.config.num_classes, self.config.class_embed_dim, bias=False
        )
        self.generator = GeneratorTrunk(self.config)

    def condition(self, z: torch.Tensor, class_vector: torch.Tensor) -> torch.Tensor:
        """The vector every layer is conditioned on: ``cat(z, embeddings(class_vector))``."""
        if z.ndim != 2 or z.shape[1] != self.config.z_dim:
            raise ConfigError(
                f"z must have shape [batch, {self.config.z_dim}], got {list(z.shape)}"
            )
        if class_vector.shape != (z.shape[0], self.config.num_classes):
            raise ConfigError(
                f"class_vector must have shape [{z.shape[0]}, {self.config.num_classes}], "
                f"got {list(class_vector.shape)}"
            )
        return torch.cat([z, self.embeddings(class_vector)], dim=1)

    def forward(
        self, z: torch.Tensor, class_vector: torch.Tensor, truncation: Truncation
    ) -> torch.Tensor:
        _check_truncation(truncation, z.shape[0])
        return self.generator(self.condition(z, class_vector), truncation)


def _check_truncation(truncation: Truncation, batch: int) -> None:
    if isinstance(truncation, torch.Tensor) and truncation.ndim > 0:
        if truncation.numel() != batch:
            raise ConfigError(
                f"truncation needs one value per sample ({batch}), got {truncation.numel()}"
            )
        low, high = float(truncation.min()), float(truncation.max())
    else:
        if truncation is None:
            raise ConfigError("truncation is required (a float in (0, 1])")
        low = high = float(truncation)
    if not (0.0 < low and high <= 1.0):
        raise ConfigError(f"truncation must lie in (0, 1], got {low if low <= 0 else high}")
