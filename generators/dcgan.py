"""DCGAN (Radford, Metz & Chintala 2015) at any power-of-two image size, and its adapter.

The generator grows a 1x1 latent to 4x4 with one transposed convolution, then doubles the
size with stride-2 transposed convolutions (BatchNorm + ReLU) until the image size,
ending in Tanh; channels halve at each doubling down to ``ngf``. The discriminator mirrors
it: stride-2 convolutions (BatchNorm + LeakyReLU 0.2, none on the first) down to 4x4, then
a 4x4 convolution to one logit. So 64x64 gives exactly the paper's network, and the number
of blocks follows from the size.

A trained DCGAN is a folder: ``config.json`` (architecture + free-form metadata) and
``model.safetensors`` (``generator.*`` and ``discriminator.*`` tensors).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn

from data import saved_model
from data.errors import CheckpointError, ConfigError
from data.saved_model import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    load_state,
    save_model,
    weights_record,
)
from generators.latents import LatentBlock, LatentSpace
from generators.protocol import Generator


@dataclass(frozen=True)
class DCGANConfig:
    """Architecture: latent size ``nz``, generator/discriminator widths, image channels and size."""

    image_size: int = 64
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    nc: int = 3

    def __post_init__(self):
        size = self.image_size
        if size < 32 or size & (size - 1):
            raise ConfigError(f"DCGAN image_size must be a power of two >= 32, got {size}")
        for name in ("nz", "ngf", "ndf", "nc"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"DCGAN {name} must be positive, got {getattr(self, name)}")

    @property
    def n_doublings(self) -> int:
        """Stride-2 blocks between 4x4 and the image size (4 for 64x64, as in the paper)."""
        return int(math.log2(self.image_size)) - 2


def init_weights(module: nn.Module) -> None:
    """The paper's initialisation: N(0, 0.02) convolutions, BatchNorm scale N(1, 0.02)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class GeneratorNet(nn.Module):
    """z [B, nz] -> images [B, nc, S, S] in [-1, 1]."""

    def __init__(self, config: DCGANConfig):
        super().__init__()
        n = config.n_doublings
        widths = [config.ngf * 2 ** (n - 1 - i) for i in range(n)]  # e.g. 8, 4, 2, 1 x ngf
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(config.nz, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for wide, narrow in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.ConvTranspose2d(wide, narrow, 4, 2, 1, bias=False), nn.BatchNorm2d(narrow), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], config.nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.reshape(z.shape[0], -1, 1, 1))


class DiscriminatorNet(nn.Module):
    """images [B, nc, S, S] in [-1, 1] -> logits [B] (higher = more real)."""

    def __init__(self, config: DCGANConfig):
        super().__init__()
        n = config.n_doublings
        widths = [config.ndf * 2**i for i in range(n)]  # e.g. 1, 2, 4, 8 x ndf
        layers: list[nn.Module] = [nn.Conv2d(config.nc, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for narrow, wide in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Conv2d(narrow, wide, 4, 2, 1, bias=False), nn.BatchNorm2d(wide), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.main(images).reshape(-1)


def build_dcgan(config: DCGANConfig) -> tuple[GeneratorNet, DiscriminatorNet]:
    """A freshly initialised generator and discriminator (for training)."""
    return GeneratorNet(config), DiscriminatorNet(config)


# -- saving and loading ----------------------------------------------------------------
def save_dcgan(
    generator: GeneratorNet,
    discriminator: DiscriminatorNet | None,
    config: DCGANConfig,
    directory: str | Path,
    *,
    metadata: dict | None = None,
) -> Path:
    """Write ``config.json`` + ``model.safetensors`` into ``directory`` (``data.saved_model``)."""
    tensors = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    if discriminator is not None:
        tensors |= {f"discriminator.{k}": v for k, v in discriminator.state_dict().items()}
    document = {"family": "dcgan", "architecture": asdict(config), "metadata": metadata or {}}
    return save_model(directory, document, tensors)


def read_config(directory: str | Path) -> tuple[DCGANConfig, dict]:
    """The architecture and metadata recorded in a DCGAN folder."""
    document = saved_model.read_config(directory, "DCGAN")
    try:
        names = {f.name for f in fields(DCGANConfig)}
        config = DCGANConfig(**{k: v for k, v in document["architecture"].items() if k in names})
    except (KeyError, TypeError, AttributeError, ConfigError) as error:
        raise CheckpointError(f"DCGAN config {Path(directory) / CONFIG_NAME} is unreadable: {error}") from error
    return config, document.get("metadata", {})


def load_dcgan(directory: str | Path) -> tuple[GeneratorNet, DiscriminatorNet | None, DCGANConfig]:
    """Networks from a DCGAN folder; the discriminator is None when none was saved."""
    directory = saved_model.require_folder(directory, "DCGAN")
    config, _ = read_config(directory)
    weights = directory / WEIGHTS_NAME
    tensors = saved_model.read_weights(directory, "DCGAN")
    target = "the DCGAN in its config.json"
    generator = load_state(GeneratorNet(config), tensors, str(weights), target=target, prefix="generator.")
    discriminator = None
    if any(k.startswith("discriminator.") for k in tensors):
        discriminator = DiscriminatorNet(config)
        load_state(discriminator, tensors, str(weights), target=target, prefix="discriminator.")
    return generator, discriminator, config


# -- the protocol adapter ----------------------------------------------------------------
class DCGANGenerator(Generator):
    """A DCGAN seen through the Generator protocol: one latent block ``z`` ~ N(0, I)."""

    family = "dcgan"

    def __init__(
        self,
        generator: GeneratorNet,
        discriminator: DiscriminatorNet | None,
        config: DCGANConfig,
        *,
        name: str = "dcgan",
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__(device, dtype)
        self.name = name
        self.config = config
        self.image_size = config.image_size
        self.latent_space = LatentSpace((LatentBlock("z", (config.nz,), low=-4.0, high=4.0),))
        self.generator = generator
        self.discriminator = discriminator
        self.to(self.device, self.dtype)

    def synthesize(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        images = self.generator(parts["z"])
        return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images

    def modules(self) -> dict[str, nn.Module]:
        found: dict[str, nn.Module] = {"generator": self.generator}
        if self.discriminator is not None:
            found["discriminator"] = self.discriminator
        return found

    def discriminate(self, images: torch.Tensor) -> torch.Tensor:
        if self.discriminator is None:
            return super().discriminate(images)  # raises RealismUnavailable
        if self.config.nc == 1:  # a grey-scale model judges the luminance of RGB input
            images = images.mean(dim=1, keepdim=True)
        return self.discriminator(images)

    def settings(self) -> dict:
        return {"config": asdict(self.config)}


def load(path: str | Path, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, **options) -> DCGANGenerator:
    """The family loader: a DCGAN folder -> ``DCGANGenerator``."""
    if options:
        raise ConfigError(f"DCGAN takes no loader options, got {sorted(options)}")
    generator, discriminator, config = load_dcgan(path)
    adapter = DCGANGenerator(generator, discriminator, config, name=Path(path).resolve().name, device=device, dtype=dtype)
    adapter.weights = weights_record(Path(path) / WEIGHTS_NAME)
    return adapter
