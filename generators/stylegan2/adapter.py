"""StyleGAN2 seen through the project's ``Generator`` protocol.

Images always come from ``G_ema`` with the stored constant noise, so a latent always gives
the same image (the reference CLIP-glass code used the non-averaged G with fresh noise).

Search spaces:
- ``"z"``: block ``z`` [z_dim], standard normal prior, bounds +-4; mapped with truncation
  (``truncation_psi`` towards w_avg, optionally only the first ``truncation_cutoff`` ws).
- ``"w"`` / ``"w+"``: blocks ``w`` [w_dim] / ``w_plus`` [num_ws, w_dim] in *standardised*
  coordinates u, with w = w_avg + std * u. ``std`` is the per-dimension root-mean-square
  deviation of mapped samples from w_avg, estimated once at construction from
  ``w_std_samples`` z draws with a fixed seed, so the prior is N(0, 1) per variable and the
  +-4 bounds keep every dimension within four of its own spreads of w_avg. No truncation is
  applied in these spaces (the bounds play that role). ``to_w`` / ``from_w`` convert.
Conditional networks get a fixed class vector ``c``: one-hot ``class_index`` or zeros.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from data.errors import CheckpointError, ConfigError, WeightsNotFoundError
from data.saved_model import weights_record
from generators.latents import LatentBlock, LatentSpace
from generators.protocol import Generator, RealismUnavailable
from generators.stylegan2.checkpoint import WEIGHTS_NAME, load_network_pickle, load_stylegan2_dir
from generators.stylegan2.networks import Discriminator
from generators.stylegan2.networks import Generator as StyleGAN2Network

SPACES = ("z", "w", "w+")
BLOCK_NAMES = {"z": "z", "w": "w", "w+": "w_plus"}
W_STD_SEED = 0


class StyleGAN2Generator(Generator):
    """A StyleGAN2 ``G_ema`` (and optional ``D``) as a searchable image generator."""

    family = "stylegan2"

    def __init__(
        self,
        networks: dict[str, torch.nn.Module],
        *,
        name: str = "stylegan2",
        space: str = "z",
        truncation_psi: float = 0.7,
        truncation_cutoff: int | None = None,
        class_index: int | None = None,
        w_std_samples: int = 2048,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__(device, dtype)
        G = networks.get("G_ema")
        if not isinstance(G, StyleGAN2Network):
            raise CheckpointError(f"StyleGAN2 model {name!r} has no G_ema generator (found {sorted(networks)})")
        D = networks.get("D")
        if D is not None and not isinstance(D, Discriminator):
            raise CheckpointError(f"StyleGAN2 model {name!r}: D is a {type(D).__name__}, not a Discriminator")
        if space not in SPACES:
            raise ConfigError(f"StyleGAN2 space must be one of {SPACES}, got {space!r}")
        if not 0.0 <= float(truncation_psi) <= 1.0:
            raise ConfigError(f"truncation_psi must be in [0, 1], got {truncation_psi}")
        if truncation_cutoff is not None and not 0 < truncation_cutoff <= G.num_ws:
            raise ConfigError(f"truncation_cutoff must be in 1..{G.num_ws}, got {truncation_cutoff}")
        if G.img_channels not in (1, 3):
            raise CheckpointError(f"StyleGAN2 model {name!r} makes {G.img_channels}-channel images; need 1 or 3")
        if w_std_samples < 2:
            raise ConfigError(f"w_std_samples must be at least 2, got {w_std_samples}")

        self.name, self.space = name, space
        self.truncation_psi, self.truncation_cutoff = float(truncation_psi), truncation_cutoff
        self.class_index = class_index
        self.G, self.D = G.eval(), D.eval() if D is not None else None
        self.image_size = G.img_resolution
        self._c = _class_vector(G.c_dim, class_index)
        self.w_centre, self.w_std = _w_statistics(G, self._c, w_std_samples)
        shape = {"z": (G.z_dim,), "w": (G.w_dim,), "w+": (G.num_ws, G.w_dim)}[space]
        self.latent_space = LatentSpace((LatentBlock(BLOCK_NAMES[space], shape),))
        self.to(self.device, self.dtype)

    # -- protocol -----------------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        return {"G_ema": self.G} | ({"discriminator": self.D} if self.D is not None else {})

    def synthesize(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        latent = parts[BLOCK_NAMES[self.space]]
        if self.space == "z":
            ws = self.G.mapping(latent, self._class_batch(latent), truncation_psi=self.truncation_psi,
                                truncation_cutoff=self.truncation_cutoff)
        else:
            w = self.to_w(latent)
            ws = w.unsqueeze(1).repeat(1, self.G.num_ws, 1) if self.space == "w" else w
        images = self.G.synthesis(ws, noise_mode="const")
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        return images.clamp(-1, 1)

    def discriminate(self, images: torch.Tensor) -> torch.Tensor:
        """D's logits [B]. Like NVIDIA's D, each score also depends on the other images of its
        minibatch-std group (``mbstd_group_size`` consecutive images)."""
        if self.D is None:
            raise RealismUnavailable(f"generator {self.name!r} has no discriminator")
        size = self.D.img_resolution
        if images.shape[-1] != size or images.shape[-2] != size:
            images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        if self.D.img_channels == 1 and images.shape[1] == 3:
            images = images.mean(dim=1, keepdim=True)
        return self.D(images, self._class_batch(images, self.D.c_dim)).reshape(-1)

    def settings(self) -> dict:
        return {
            "space": self.space,
            "truncation_psi": self.truncation_psi,
            "truncation_cutoff": self.truncation_cutoff,
            "class_index": self.class_index,
            "noise_mode": "const",
            "config": self.G.init_kwargs,
        }

    # -- w coordinates ------------------------------------------------------------------
    def to_w(self, u: torch.Tensor) -> torch.Tensor:
        """Standardised coordinates -> w (broadcast over a trailing [w_dim] axis)."""
        return self.w_centre.to(u) + self.w_std.to(u) * u

    def from_w(self, w: torch.Tensor) -> torch.Tensor:
        """w -> standardised coordinates (the inverse of ``to_w``)."""
        return (w - self.w_centre.to(w)) / self.w_std.to(w)

    def _class_batch(self, like: torch.Tensor, c_dim: int | None = None) -> torch.Tensor | None:
        c_dim = self.G.c_dim if c_dim is None else c_dim
        if c_dim == 0:
            return None
        c = self._c if c_dim == self.G.c_dim else _class_vector(c_dim, self.class_index)
        return c.to(like).unsqueeze(0).expand(like.shape[0], -1)


def _class_vector(c_dim: int, class_index: int | None) -> torch.Tensor:
    if class_index is None:
        return torch.zeros(c_dim)
    if c_dim == 0:
        raise ConfigError("class_index given, but the network is unconditional (c_dim 0)")
    if not 0 <= int(class_index) < c_dim:
        raise ConfigError(f"class_index must be in 0..{c_dim - 1}, got {class_index}")
    return F.one_hot(torch.tensor(int(class_index)), c_dim).float()


@torch.no_grad()
def _w_statistics(G: StyleGAN2Network, c: torch.Tensor, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(w_avg, per-dimension RMS deviation of mapped w from it), from seeded z draws."""
    parameter = next(G.mapping.parameters())
    rng = torch.Generator().manual_seed(W_STD_SEED)
    z = torch.randn(samples, G.z_dim, generator=rng).to(parameter)
    cs = c.to(parameter).unsqueeze(0).expand(samples, -1) if G.c_dim else None
    w = torch.cat([G.mapping(z[i : i + 512], cs[i : i + 512] if cs is not None else None)[:, 0]
                   for i in range(0, samples, 512)])
    centre = G.mapping.w_avg.detach().clone() if hasattr(G.mapping, "w_avg") else w.mean(dim=0)
    std = (w - centre).square().mean(dim=0).sqrt().clamp_min(1e-8)
    return centre.float().cpu(), std.float().cpu()


def load(path: str | Path, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
         **options) -> StyleGAN2Generator:
    """A StyleGAN2 generator from an NVIDIA ``.pkl`` (either format) or a saved directory.

    ``options`` go to ``StyleGAN2Generator`` (name, space, truncation_psi, class_index, ...).
    """
    path = Path(path)
    if path.is_dir():
        networks, weights = load_stylegan2_dir(path), path / WEIGHTS_NAME
    elif path.is_file():
        networks, weights = load_network_pickle(path), path
    else:
        raise WeightsNotFoundError(
            f"StyleGAN2 model not found: {path} (give an NVIDIA network pickle or a directory "
            "with config.json + model.safetensors)"
        )
    options.setdefault("name", path.stem)
    try:
        generator = StyleGAN2Generator(networks, device=device, dtype=dtype, **options)
    except TypeError as error:  # an option the adapter does not know
        raise ConfigError(f"StyleGAN2 load option error: {error}") from None
    generator.weights = weights_record(weights)
    return generator
