"""Classifier architectures as data (``configs/*.json``) and one generic ResNet built from them.

Every architecture is a torchvision-style ResNet: a stem, four stages of torchvision's own
``BasicBlock`` or ``Bottleneck`` blocks, global average pooling and a linear head. The module
names match ``torchvision.models.ResNet`` (``conv1``, ``bn1``, ``layer1``..``layer4``, ``fc``),
so torchvision's published ImageNet state dicts load into the ImageNet-sized configs as they
are. The ``small`` stem (one 3x3 convolution of stride ``stem_stride``, 2 by default, no
max-pool) suits 64 px scenes: it halves the resolution once where the ImageNet stem quarters
it, keeping detail while keeping CPU training cheap.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from data.errors import ConfigError

CONFIG_DIR = Path(__file__).with_name("configs")
BLOCKS: dict[str, type[nn.Module]] = {"basic": BasicBlock, "bottleneck": Bottleneck}
STEMS = ("imagenet", "small")
_RETIRED_FIELDS = ("input_size",)  # in classifier folders saved before it became preprocessing["size"]


@dataclass(frozen=True)
class ArchConfig:
    """One architecture: block type, blocks per stage, stage widths, stem, and where its
    input preprocessing comes from: the catalogue entry of its published weights
    (``imagenet_weights``), else its own ``preprocessing`` (architectures trained from scratch).
    """

    arch: str
    block: str
    layers: tuple[int, ...]
    widths: tuple[int, ...]
    stem: str
    strides: tuple[int, ...] = (1, 2, 2, 2)  # first block's stride in each stage
    stem_stride: int = 2  # the small stem's 3x3 conv (the ImageNet stem is always 7x7/2 + max-pool)
    imagenet_weights: str | None = None  # catalogue name of published ImageNet weights
    preprocessing: dict | None = None  # input preprocessing for training from scratch
    description: str = ""
    training: dict = field(default_factory=dict)  # default recipe (epochs, lr, ...)

    def __post_init__(self):
        if self.block not in BLOCKS:
            raise ConfigError(f"architecture {self.arch!r}: block {self.block!r} is not one of {list(BLOCKS)}")
        if self.stem not in STEMS:
            raise ConfigError(f"architecture {self.arch!r}: stem {self.stem!r} is not one of {STEMS}")
        if not len(self.layers) == len(self.widths) == len(self.strides) == 4:
            raise ConfigError(
                f"architecture {self.arch!r}: needs 4 stages, got layers={self.layers} "
                f"widths={self.widths} strides={self.strides}"
            )
        if any(n < 1 for n in self.layers) or any(w < 1 for w in self.widths):
            raise ConfigError(f"architecture {self.arch!r}: block counts and widths must be positive")
        if self.preprocessing is None and self.imagenet_weights is None:
            raise ConfigError(f"architecture {self.arch!r}: needs preprocessing or imagenet_weights (whose entry has one)")
        for key in ("mean", "std", "size"):
            if self.preprocessing is not None and key not in self.preprocessing:
                raise ConfigError(f"architecture {self.arch!r}: preprocessing lacks {key!r}")

    @classmethod
    def from_dict(cls, raw: dict) -> ArchConfig:
        known = {f for f in cls.__dataclass_fields__}
        raw = {k: v for k, v in raw.items() if k not in _RETIRED_FIELDS}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"architecture config has unknown fields {unknown}")
        try:
            values = dict(raw)
            values["layers"] = tuple(int(n) for n in raw["layers"])
            values["widths"] = tuple(int(w) for w in raw["widths"])
            values["strides"] = tuple(int(s) for s in raw.get("strides", (1, 2, 2, 2)))
            return cls(**values)
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"architecture config {raw.get('arch', '?')!r} is malformed: {error}") from error

    def to_dict(self) -> dict:
        out = asdict(self)
        out["layers"], out["widths"] = list(self.layers), list(self.widths)
        out["strides"] = list(self.strides)
        return out


@lru_cache(maxsize=1)
def _configs() -> dict[str, ArchConfig]:
    found = {}
    for path in sorted(CONFIG_DIR.glob("*.json")):
        config = ArchConfig.from_dict(json.loads(path.read_text()))
        if config.arch != path.stem:
            raise ConfigError(f"{path}: arch {config.arch!r} differs from the file name")
        found[config.arch] = config
    return found


def list_archs() -> list[str]:
    return list(_configs())


def get_arch_config(arch: str) -> ArchConfig:
    configs = _configs()
    if arch not in configs:
        raise ConfigError(f"unknown classifier architecture {arch!r}; choose from {', '.join(configs)}")
    return configs[arch]


class SceneResNet(nn.Module):
    """A ResNet with configurable stem, block type, stage depths and widths."""

    def __init__(self, config: ArchConfig, num_classes: int):
        super().__init__()
        if num_classes < 2:
            raise ConfigError(f"a classifier needs at least 2 classes, got {num_classes}")
        block = BLOCKS[config.block]
        stem_width = config.widths[0]
        if config.stem == "imagenet":
            self.conv1 = nn.Conv2d(3, stem_width, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:  # one 3x3 conv (stride 2: 64 px -> 32 px features), no max-pool
            self.conv1 = nn.Conv2d(3, stem_width, kernel_size=3, stride=config.stem_stride, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self._channels = stem_width
        stages = []
        for blocks, width, stride in zip(config.layers, config.widths, config.strides, strict=True):
            stages.append(self._stage(block, width, blocks, stride))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self._channels, num_classes)
        self._init_weights()

    def _stage(self, block, width: int, blocks: int, stride: int) -> nn.Sequential:
        out_channels = width * block.expansion
        downsample = None
        if stride != 1 or self._channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(self._channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        layers = [block(self._channels, width, stride, downsample)]
        self._channels = out_channels
        layers += [block(out_channels, width) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def _init_weights(self):
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        # Residual branches start as identity: the last BN of each block at zero (trains faster).
        for module in self.modules():
            if isinstance(module, Bottleneck):
                nn.init.zeros_(module.bn3.weight)
            elif isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    @property
    def head(self) -> nn.Linear:
        return self.fc

    def backbone_parameters(self):
        return [p for name, p in self.named_parameters() if not name.startswith("fc.")]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled penultimate features [B, D] the head classifies."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def build_network(config: ArchConfig, num_classes: int) -> SceneResNet:
    return SceneResNet(config, num_classes)
