"""BigGAN-deep seen through the generator protocol: z, class logits and (optionally) truncation.

Search space, and why:
- ``z`` [z_dim]: the unscaled latent of the truncation trick. BigGAN samples z from a
  standard normal truncated to |z| <= 2 and feeds ``z * truncation``; searching the unscaled
  z keeps one prior (a standard normal truncated to [-2, 2]) whatever the truncation, and the
  network gets ``clamp(z, -2, 2) * truncation``.
- ``class_logits`` [num_classes]: continuous logits (normal prior, bounds [-5, 5]) mapped to
  a class distribution by ``softmax(logits / temperature)``, or, with ``class_mode="topk"``,
  by a softmax over the ``top_k`` largest logits only (the rest get 0). The default low
  temperature makes random logits give a few dominant classes rather than the near-uniform
  mixture of 1000 classes that a plain softmax (or one over 0/1 bits) gives.
- ``truncation`` [1] (only with ``search_truncation=True``): uniform in [0.02, 1]; otherwise
  the fixed ``truncation`` option is used.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from data.errors import ConfigError
from data.saved_model import weights_record
from data.validation import check_number
from generators.biggan.checkpoint import find_weights, load_biggan, load_biggan_discriminator
from generators.biggan.model import BigGANDeep
from generators.biggan.statistics import TRUNCATION_BOUND
from generators.latents import LatentBlock, LatentSpace, classes_asked
from generators.protocol import Generator, RealismUnavailable
from generators.training_record import world_class_names

CLASS_MODES = ("softmax", "topk")
LOGIT_BOUND = 5.0
TRUNCATION_RANGE = (0.02, 1.0)


class BigGANGenerator(Generator):
    family = "biggan"

    def __init__(
        self,
        model: BigGANDeep,
        *,
        name: str = "biggan-deep",
        truncation: float = 0.4,
        class_mode: str = "softmax",
        temperature: float = 0.1,
        top_k: int = 3,
        search_truncation: bool = False,
        discriminator: nn.Module | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__(device, dtype)
        config = model.config
        check_number(truncation, "truncation", minimum=TRUNCATION_RANGE[0], maximum=TRUNCATION_RANGE[1])
        if class_mode not in CLASS_MODES:
            raise ConfigError(f"class_mode must be one of {CLASS_MODES}, got {class_mode!r}")
        check_number(temperature, "temperature", above=0)  # finite: NaN or inf would give NaN images
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= config.num_classes:
            raise ConfigError(f"top_k must lie in [1, {config.num_classes}], got {top_k}")
        self.model, self.discriminator = model, discriminator
        self.name, self.image_size = name, config.output_dim
        self.truncation, self.class_mode = float(truncation), class_mode
        self.temperature, self.top_k = float(temperature), int(top_k)
        self.search_truncation = search_truncation
        blocks = [
            LatentBlock(
                "z", (config.z_dim,), "truncnormal", low=-TRUNCATION_BOUND, high=TRUNCATION_BOUND
            ),
            LatentBlock(
                "class_logits", (config.num_classes,), "normal", low=-LOGIT_BOUND, high=LOGIT_BOUND,
                conditioning=True,
            ),
        ]
        if search_truncation:
            blocks.append(
                LatentBlock(
                    "truncation", (1,), "uniform", low=TRUNCATION_RANGE[0], high=TRUNCATION_RANGE[1],
                    conditioning=True,
                )
            )
        self.latent_space = LatentSpace(tuple(blocks))
        self.to(self.device, self.dtype)

    # -- the protocol ---------------------------------------------------------------------
    def class_vector(self, logits: torch.Tensor) -> torch.Tensor:
        """Class logits [B, C] -> class distributions [B, C] (rows sum to 1)."""
        if self.class_mode == "softmax":
            return torch.softmax(logits / self.temperature, dim=-1)
        values, indices = logits.topk(self.top_k, dim=-1)
        weights = torch.softmax(values / self.temperature, dim=-1)
        return torch.zeros_like(logits).scatter(-1, indices, weights)

    def synthesize(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        z = parts["z"].clamp(-TRUNCATION_BOUND, TRUNCATION_BOUND)
        if "truncation" in parts:
            truncation = parts["truncation"].reshape(-1).clamp(*TRUNCATION_RANGE)
            z = z * truncation[:, None]
        else:
            truncation = self.truncation
            z = z * truncation
        return self.model(z, self.class_vector(parts["class_logits"]), truncation)

    def modules(self) -> dict[str, nn.Module]:
        found: dict[str, nn.Module] = {"generator": self.model}
        if self.discriminator is not None:
            found["discriminator"] = self.discriminator
        return found

    def discriminate(self, images: torch.Tensor) -> torch.Tensor:
        """Logits [B] of the optional discriminator (no published BigGAN-deep one exists).

        A project-trained ``BigGANDiscriminator`` given images alone scores each one under
        the class it finds most plausible (see ``generators.biggan.discriminator``).
        """
        if self.discriminator is None:
            raise RealismUnavailable(
                f"generator {self.name!r} has no discriminator (none is published for BigGAN-deep)"
            )
        return self.discriminator(images).reshape(-1)

    def settings(self) -> dict:
        return {
            "config": self.model.config.to_dict(),
            "truncation": None if self.search_truncation else self.truncation,
            "class_mode": self.class_mode,
            "temperature": self.temperature,
            "top_k": self.top_k if self.class_mode == "topk" else None,
            "has_discriminator": self.discriminator is not None,
        }

    # -- extras ---------------------------------------------------------------------------
    class_names: tuple[str, ...] | None = None  # in class-index order, when known (world models)
    intended_note = ("the class of the largest weight in the class distribution the latent feeds the "
                     "generator (known truth of what was asked, not of what was drawn)")

    def intended_classes(self, latents: torch.Tensor) -> list[str] | None:
        """The class of the largest weight in each latent's class distribution."""
        return classes_asked(self.latent_space, latents, self.class_names, self.class_vector)


_LOAD_OPTIONS = {
    "name",
    "truncation",
    "class_mode",
    "temperature",
    "top_k",
    "search_truncation",
    "discriminator",
    "config",
}


def load(
    path: str | Path,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    **options,
) -> BigGANGenerator:
    """The family loader the model registry calls: a checkpoint folder or weights file -> generator.

    options: ``name`` (default: the folder or file name), ``config`` (for a bare weights file
    without a ``config.json`` beside it), and the ``BigGANGenerator`` options. A folder that
    also holds ``discriminator.json`` + ``discriminator.safetensors`` (a model the project
    trained) brings its discriminator, unless ``discriminator=`` is given.
    """
    unknown = sorted(set(options) - _LOAD_OPTIONS)
    if unknown:
        raise ConfigError(f"unknown BigGAN options {unknown}; known: {sorted(_LOAD_OPTIONS)}")
    path = Path(path)
    model = load_biggan(path, options.pop("config", None))
    weights = find_weights(path) if path.is_dir() else path
    if path.is_dir() and "discriminator" not in options:
        options["discriminator"] = load_biggan_discriminator(path)
    name = options.pop("name", None) or (path.name if path.is_dir() else path.stem)
    generator = BigGANGenerator(model, name=name, device=device, dtype=dtype, **options)
    generator.weights = weights_record(weights)
    generator.class_names = world_class_names(path if path.is_dir() else path.parent, model.config.num_classes)
    return generator

