"""The one protocol every generator family implements.

A family turns named latent tensors into images in [-1, 1] (``synthesize``); this base
class adds what is the same for all: flat-vector input, batching, device and dtype, and
gradients only on request. Search and gallery code talk to this class and nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch

from data.errors import ArtbiasError, ConfigError
from generators.latents import LatentSpace


class RealismUnavailable(ArtbiasError):
    """The generator has no discriminator to score realism with."""


class Generator(ABC):
    """A pretrained image generator seen through its search space.

    Subclasses set ``name``, ``family`` (the family's key in ``generators.registry``),
    ``image_size`` and ``latent_space``, implement ``synthesize`` and ``modules``, and
    override ``discriminate`` when a discriminator exists and ``settings`` when they have
    settings worth recording. A family's ``load`` sets ``weights`` (see ``identity``).
    """

    name: str
    family: str
    image_size: int
    latent_space: LatentSpace
    differentiable: bool = True  # images carry gradients to the latents (refinement needs it)
    weights: dict | None = None  # {"path", "sha256"} of the weights, from data.saved_model.weights_record

    def __init__(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        self.device = torch.device(device)
        self.dtype = dtype

    # -- what a family implements -------------------------------------------------------
    @abstractmethod
    def synthesize(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """Named latents (on device, in dtype) -> images [B, 3, H, W] in [-1, 1]; differentiable."""

    @abstractmethod
    def modules(self) -> dict[str, torch.nn.Module]:
        """The networks this generator holds (moved by ``to``, put in eval mode); a
        discriminator, when there is one, under the key ``"discriminator"``."""

    def discriminate(self, images: torch.Tensor) -> torch.Tensor:
        """Discriminator logits [B] for images in [-1, 1] (higher = more real)."""
        raise RealismUnavailable(f"generator {self.name!r} has no discriminator")

    def settings(self) -> dict:
        """The family's own settings recorded with results (configuration, sampling options)."""
        return {}

    # What ``intended_classes`` means for this family, recorded with the labels.
    intended_note: str = "the class the latent asks for"

    def intended_classes(self, latents: torch.Tensor) -> list[str] | None:
        """The scene class each flat latent [B, n_var] asks for, where the generator is
        class-conditional and its class names are known; None otherwise."""
        return None

    def intended_attributes(self, latents: torch.Tensor) -> dict[str, list[str]]:
        """World attributes ("time", "weather") each flat latent asks for, where the generator
        knows them; empty otherwise."""
        return {}

    def identity(self) -> dict:
        """The model as results record it: ``name``, ``family``, ``image_size`` and ``weights``
        (``{"path", "sha256"}``, None values for weights of unknown origin) for every
        family, then the family's ``settings``."""
        common = {
            "name": self.name,
            "family": self.family,
            "image_size": self.image_size,
            "weights": dict(self.weights or {"path": None, "sha256": None}),
        }
        return common | {key: value for key, value in self.settings().items() if key not in common}

    # -- shared behaviour ---------------------------------------------------------------
    @property
    def has_realism(self) -> bool:
        return "discriminator" in self.modules()

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Generator:
        self.device = torch.device(device) if device is not None else self.device
        self.dtype = dtype or self.dtype
        for module in self.modules().values():
            module.to(device=self.device, dtype=self.dtype).eval()
            module.requires_grad_(False)
        return self

    def generate(self, latents: torch.Tensor, *, batch_size: int = 64, grad: bool = False) -> torch.Tensor:
        """Flat latents [B, n_var] -> images [B, 3, H, W] in [-1, 1], in batches.

        Without ``grad`` no autograd graph is built; with it the images are differentiable
        with respect to ``latents`` (the search refines latents by gradient).
        """
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        self.latent_space.split(latents)  # validates the shape early, with a clear message
        if not bool(torch.isfinite(latents).all()):  # NaN or inf would only make black images
            raise ConfigError(f"latents for {self.name!r} hold NaN or infinite values")
        with torch.set_grad_enabled(grad):
            chunks = [
                self.synthesize(self.latent_space.split(chunk.to(self.device, self.dtype)))
                for chunk in _chunks(latents, batch_size)
            ]
        return torch.cat(chunks) if len(chunks) > 1 else chunks[0]

    def realism(self, images: torch.Tensor, *, batch_size: int = 64, grad: bool = False) -> torch.Tensor:
        """Discriminator logits [B] for a batch of generated images, in batches."""
        if not self.has_realism:
            raise RealismUnavailable(f"generator {self.name!r} has no discriminator")
        with torch.set_grad_enabled(grad):
            scores = [self.discriminate(chunk.to(self.device, self.dtype)).reshape(-1) for chunk in _chunks(images, batch_size)]
        return torch.cat(scores)


def _chunks(x: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    for start in range(0, x.shape[0], size):
        yield x[start : start + size]
