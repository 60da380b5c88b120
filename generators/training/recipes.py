"""What differs between the GAN families the project trains, and nothing else.

A recipe builds G and D from a config's ``model`` dict, runs them the way its family trains
(StyleGAN2 with random noise and a tracked w_avg; BigGAN conditioned on one-hot classes),
draws sample grids the way its family is used afterwards, finishes the generator after the
last step (BigGAN's per-truncation batch-norm statistics) and saves it in the family's own
format, so ``load_generator("<family>:DIR")`` reads it. Losses, R1, EMA, optimisers and the
loop itself are shared (``loop.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from data.validation import check_known_keys
from data.world.params import CLASSES
from generators.training.config import TrainConfig

Networks = dict[str, nn.Module]  # "G", "D" and, with an EMA, "G_ema"


def _take(model: dict, defaults: dict, arch: str) -> dict:
    check_known_keys(model, defaults, f"{arch} model config")
    return defaults | model


class Recipe:
    """The per-architecture part of GAN training (subclasses fill it in)."""

    family: str  # the registry family whose loader reads the saved folder
    conditional = False  # whether G and D take class labels
    z_dim: int

    def __init__(self, config: TrainConfig, known_classes: list[int]):
        self.config = config
        self.known_classes = known_classes  # classes present in the training data

    def build(self) -> Networks:
        """Freshly initialised ``G`` and ``D`` (from the global torch RNG)."""
        raise NotImplementedError

    def build_networks(self) -> Networks:
        """``build()``, plus ``G_ema`` (a frozen copy of ``G``) when the config averages the generator:
        every network a run's checkpoint holds."""
        networks = self.build()
        if self.config.uses_ema:
            networks["G_ema"] = copy.deepcopy(networks["G"]).eval().requires_grad_(False)
        return networks

    def generate(self, G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Training-time images in [-1, 1] (differentiable)."""
        raise NotImplementedError

    def discriminate(self, D: nn.Module, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Logits [B], higher = more real."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Images as the finished generator will make them; touches no RNG and no weights."""
        raise NotImplementedError

    def finish(self, networks: Networks, composition: torch.Tensor, rng: torch.Generator) -> None:
        """Anything the generator needs after the last step (nothing by default)."""

    def save(self, networks: Networks, directory: Path) -> None:
        raise NotImplementedError

    @staticmethod
    def final_generator(networks: Networks) -> nn.Module:
        return networks.get("G_ema", networks["G"])


class DCGANRecipe(Recipe):
    family = "dcgan"
    DEFAULTS = {"nz": 100, "ngf": 32, "ndf": 32}

    def __init__(self, config: TrainConfig, known_classes: list[int]):
        from generators.dcgan import DCGANConfig

        super().__init__(config, known_classes)
        self.architecture = DCGANConfig(image_size=config.image_size, nc=3, **_take(config.model, self.DEFAULTS, "dcgan"))
        self.z_dim = self.architecture.nz

    def build(self) -> Networks:
        from generators.dcgan import build_dcgan

        G, D = build_dcgan(self.architecture)
        return {"G": G, "D": D}

    def generate(self, G, z, labels):
        return G(z)

    def discriminate(self, D, images, labels):
        return D(images)

    @torch.no_grad()
    def sample(self, G, z, labels):
        was_training = G.training
        G.eval()  # running batch-norm statistics, as the saved model uses
        try:
            return G(z)
        finally:
            G.train(was_training)

    def save(self, networks, directory):
        from generators.dcgan import save_dcgan

        save_dcgan(self.final_generator(networks), networks["D"], self.architecture, directory)


class StyleGAN2Recipe(Recipe):
    """NVIDIA's StyleGAN2 networks, unconditional; random noise while training, the stored
    constant noise in samples (as the adapter uses). Style mixing and path-length
    regularisation are left out: they cost time and matter little at this size."""

    family = "stylegan2"
    DEFAULTS = {"z_dim": 128, "w_dim": 128, "mapping_layers": 2, "channel_base": 1024,
                "channel_max": 64, "mbstd_group_size": 4}

    def __init__(self, config: TrainConfig, known_classes: list[int]):
        super().__init__(config, known_classes)
        self.options = _take(config.model, self.DEFAULTS, "stylegan2")
        self.z_dim = int(self.options["z_dim"])

    def build(self) -> Networks:
        from generators.stylegan2.networks import Discriminator, Generator

        o, size = self.options, self.config.image_size
        channels = {"channel_base": o["channel_base"], "channel_max": o["channel_max"]}
        G = Generator(z_dim=o["z_dim"], c_dim=0, w_dim=o["w_dim"], img_resolution=size, img_channels=3,
                      mapping_kwargs={"num_layers": o["mapping_layers"]}, synthesis_kwargs=channels)
        D = Discriminator(c_dim=0, img_resolution=size, img_channels=3, **channels,
                          epilogue_kwargs={"mbstd_group_size": o["mbstd_group_size"]})
        return {"G": G, "D": D}

    def generate(self, G, z, labels):
        ws = G.mapping(z, None, update_w_avg=True)
        return G.synthesis(ws, noise_mode="random")

    def discriminate(self, D, images, labels):
        return D(images, None).reshape(-1)

    @torch.no_grad()
    def sample(self, G, z, labels):
        return G(z, None, noise_mode="const").clamp(-1, 1)

    def save(self, networks, directory):
        from generators.stylegan2 import save_stylegan2

        # The adapter uses G_ema and D; the raw G stays in the training checkpoint.
        save_stylegan2({"G_ema": self.final_generator(networks), "D": networks["D"]}, directory)


class BigGANRecipe(Recipe):
    """BigGAN-deep (spectral norm, conditional batch norm) with a projection discriminator,
    conditioned on one-hot classes in the fixed ``CLASSES`` order."""

    family = "biggan"
    conditional = True
    GENERATOR_DEFAULTS = {"z_dim": 64, "class_embed_dim": 64, "channel_width": 16,
                          "layers": [[True, 16, 16], [True, 16, 8], [False, 8, 8], [True, 8, 4], [True, 4, 1]],
                          "attention_layer_position": 3, "n_stats": 11, "eps": 1e-4}
    DISCRIMINATOR_DEFAULTS = {"channel_width": 16, "multipliers": [1, 2, 4, 8], "eps": 1e-4}
    STATISTICS_BATCH, STATISTICS_BATCHES = 64, 2

    def __init__(self, config: TrainConfig, known_classes: list[int]):
        from generators.biggan import BigGANConfig, DiscriminatorConfig

        super().__init__(config, known_classes)
        model = _take(config.model, {"generator": {}, "discriminator": {}}, "biggan")
        generator = _take(model["generator"], self.GENERATOR_DEFAULTS, "biggan generator")
        discriminator = _take(model["discriminator"], self.DISCRIMINATOR_DEFAULTS, "biggan discriminator")
        size, classes = config.image_size, len(CLASSES)
        self.architecture = BigGANConfig.from_dict(generator | {"output_dim": size, "num_classes": classes})
        self.discriminator_config = DiscriminatorConfig.from_dict(
            discriminator | {"input_dim": size, "num_classes": classes, "known_classes": list(known_classes)}
        )
        self.z_dim = self.architecture.z_dim

    def build(self) -> Networks:
        from generators.biggan import BigGANDeep, BigGANDiscriminator

        return {"G": BigGANDeep(self.architecture), "D": BigGANDiscriminator(self.discriminator_config)}

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels, len(CLASSES)).float()

    def generate(self, G, z, labels):
        return G(z, self.one_hot(labels), 1.0)  # train mode: batch statistics, truncation unused

    def discriminate(self, D, images, labels):
        return D(images, self.one_hot(labels))

    @torch.no_grad()
    def sample(self, G, z, labels):
        from generators.biggan.statistics import collecting_statistics

        # Statistics of this batch, no power iteration: the weights are left untouched.
        with collecting_statistics(G):
            return G(z, self.one_hot(labels), 1.0)

    def finish(self, networks, composition, rng):
        from generators.biggan import compute_truncation_statistics, truncated_normal

        G = self.final_generator(networks)
        if "G_ema" in networks:
            # The averaged weights need their own singular vectors: a few no-grad train-mode
            # passes run power iteration on them (batch norm uses batch statistics there).
            # Drawn on the CPU, like every draw of the run, then moved to G's device.
            device = next(G.parameters()).device
            G.train()
            with torch.no_grad():
                for _ in range(10):
                    z = torch.randn(8, self.z_dim, generator=rng).to(device)
                    labels = torch.multinomial(composition, 8, True, generator=rng).to(device)
                    G(z, self.one_hot(labels), 1.0)
            G.eval()

        def sampler(truncation: float, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
            z = truncated_normal((batch, self.z_dim), generator=rng) * truncation
            return z, self.one_hot(torch.multinomial(composition, batch, True, generator=rng))

        compute_truncation_statistics(G, batch_size=self.STATISTICS_BATCH, batches=self.STATISTICS_BATCHES,
                                      sampler=sampler)

    def save(self, networks, directory):
        from generators.biggan import save_biggan

        save_biggan(self.final_generator(networks), directory, discriminator=networks["D"])


RECIPES: dict[str, Callable[[TrainConfig, list[int]], Recipe]] = {
    "dcgan": DCGANRecipe,
    "stylegan2": StyleGAN2Recipe,
    "biggan": BigGANRecipe,
}


def make_recipe(config: TrainConfig, known_classes: list[int]) -> Recipe:
    """The recipe of ``config.arch``; its architecture config is checked here, before any work."""
    return RECIPES[config.arch](config, known_classes)
