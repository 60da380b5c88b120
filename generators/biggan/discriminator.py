"""A small class-conditional BigGAN-style discriminator (no published BigGAN-deep one exists).

Spectral-normalised residual blocks halve the image down to 4x4; the features are summed
over space (``h`` [B, C]) and scored by a projection discriminator (Miyato & Koyama 2018):

    logit = linear(h) + <embed(class_vector), h>

``embed`` is a spectral-normalised linear map of the class vector, so a soft class vector
gives the class-weighted average of the one-hot projections.

Realism without a class: the generator protocol scores images alone, and a searched image's
class is only implicit. Then the projection term is the *largest* over ``known_classes``
(the classes of the training data): "how real does this look as the class it looks most like".
Classes the discriminator never saw are left out, because their embeddings stay untrained.

The layers are those of ``generators.biggan.layers`` (orthogonal initialisation; power
iteration in train mode only), so a saved discriminator reloads and scores exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from data.errors import ConfigError
from data.validation import check_known_keys
from generators.biggan.layers import SNConv2d, SNLinear


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Architecture: one down-sampling block per ``multipliers`` entry, widths ``channel_width * m``.

    ``input_dim`` must be ``4 * 2 ** len(multipliers)`` (the last block ends at 4x4).
    ``known_classes``: class indices realism takes its maximum over (None: all classes).
    """

    input_dim: int
    num_classes: int
    channel_width: int = 32
    multipliers: tuple[int, ...] = (1, 2, 4, 4)
    known_classes: tuple[int, ...] | None = None
    eps: float = 1e-4

    def __post_init__(self):
        object.__setattr__(self, "multipliers", tuple(int(m) for m in self.multipliers))
        if self.known_classes is not None:
            object.__setattr__(self, "known_classes", tuple(int(c) for c in self.known_classes))
        for name in ("input_dim", "num_classes", "channel_width"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"BigGAN discriminator: {name} must be positive, got {getattr(self, name)}")
        if not self.multipliers or min(self.multipliers) <= 0:
            raise ConfigError(f"BigGAN discriminator: multipliers must be positive, got {list(self.multipliers)}")
        if self.input_dim != 4 * 2 ** len(self.multipliers):
            raise ConfigError(
                f"BigGAN discriminator: {len(self.multipliers)} blocks halve {self.input_dim}px "
                f"to {self.input_dim / 2 ** len(self.multipliers):g}px, not 4px; give "
                f"{int(math.log2(max(self.input_dim, 8))) - 2} multipliers"
            )
        if self.known_classes is not None and (
            not self.known_classes or not all(0 <= c < self.num_classes for c in self.known_classes)
        ):
            raise ConfigError(
                f"BigGAN discriminator: known_classes must be indices in 0..{self.num_classes - 1}, "
                f"got {list(self.known_classes)}"
            )

    @classmethod
    def from_dict(cls, raw: dict) -> DiscriminatorConfig:
        if not isinstance(raw, dict):
            raise ConfigError(f"BigGAN discriminator config must be a dict, got {type(raw).__name__}")
        check_known_keys(raw, cls.__dataclass_fields__, "BigGAN discriminator config")
        try:
            return cls(**raw)
        except TypeError as error:
            raise ConfigError(f"BigGAN discriminator config: {error}") from error

    def to_dict(self) -> dict:
        document = asdict(self)
        document["multipliers"] = list(self.multipliers)
        document["known_classes"] = None if self.known_classes is None else list(self.known_classes)
        return document


class DownBlock(nn.Module):
    """relu-conv3x3-relu-conv3x3, average-pooled by 2, plus a 1x1-conv shortcut (BigGAN's D block).

    The first block skips the leading ReLU: its input is the image, not features.
    """

    def __init__(self, in_channels: int, out_channels: int, eps: float, first: bool):
        super().__init__()
        self.first = first
        self.conv_1 = SNConv2d(in_channels, out_channels, 3, eps=eps)
        self.conv_2 = SNConv2d(out_channels, out_channels, 3, eps=eps)
        self.shortcut = SNConv2d(in_channels, out_channels, 1, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv_2(F.relu(self.conv_1(h)))
        h = F.avg_pool2d(h, 2)
        # The first block pools before its shortcut conv (cheaper, same function up to order).
        shortcut = self.shortcut(F.avg_pool2d(x, 2)) if self.first else F.avg_pool2d(self.shortcut(x), 2)
        return h + shortcut


class BigGANDiscriminator(nn.Module):
    """``forward(images [B, 3, S, S] in [-1, 1], class_vector [B, C] | None) -> logits [B]``."""

    def __init__(self, config: DiscriminatorConfig | dict):
        super().__init__()
        self.config = config if isinstance(config, DiscriminatorConfig) else DiscriminatorConfig.from_dict(config)
        widths = [self.config.channel_width * m for m in self.config.multipliers]
        eps = self.config.eps
        self.blocks = nn.ModuleList(
            DownBlock(c_in, c_out, eps, first=index == 0)
            for index, (c_in, c_out) in enumerate(zip([3] + widths[:-1], widths, strict=True))
        )
        self.linear = SNLinear(widths[-1], 1, eps=eps)
        self.embed = SNLinear(self.config.num_classes, widths[-1], bias=False, eps=eps)
        known = self.config.known_classes or range(self.config.num_classes)
        self.register_buffer("known_classes", torch.tensor(list(known), dtype=torch.long), persistent=False)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        size = self.config.input_dim
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (size, size):
            raise ConfigError(f"BigGAN discriminator takes images [B, 3, {size}, {size}], got {list(images.shape)}")
        x = images
        for block in self.blocks:
            x = block(x)
        return F.relu(x).sum(dim=(2, 3))

    def forward(self, images: torch.Tensor, class_vector: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(images)
        unconditional = self.linear(h).reshape(-1)
        if class_vector is not None:
            if class_vector.shape != (h.shape[0], self.config.num_classes):
                raise ConfigError(
                    f"class_vector must be [{h.shape[0]}, {self.config.num_classes}], got {list(class_vector.shape)}"
                )
            return unconditional + (self.embed(class_vector.to(h.dtype)) * h).sum(dim=1)
        # Projection onto every class: embed(one-hot_k) is column k of the normalised matrix.
        per_class = h @ self.embed.normalized_weight()  # [B, num_classes]
        return unconditional + per_class[:, self.known_classes].max(dim=1).values
