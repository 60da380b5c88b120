"""Search spaces: how a flat search vector maps onto a generator's inputs.

A pymoo individual is one flat float vector. A ``LatentSpace`` names its blocks (``z``,
``class_logits``, ``truncation``, ``w``...), gives each a prior and search bounds, and
converts between the flat matrix [population, n_var] and the named tensors a network
takes. It knows nothing about networks (as diffusers keeps schedulers apart from models).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.stats import truncnorm

from data.errors import ConfigError

PRIORS = ("normal", "truncnormal", "uniform")


@dataclass(frozen=True)
class LatentBlock:
    """One named group of search variables.

    shape: the per-sample shape the network takes (e.g. (128,) for z, (8, 512) for w+).
    prior: "normal" (mean ``loc``, std ``scale``; samples clipped to the bounds),
        "truncnormal" (that normal truncated to [low, high], e.g. BigGAN's truncation trick)
        or "uniform" over [low, high].
    low/high: search bounds.
    conditioning: the block chooses what to draw (a class, a truncation), not how: an
        anchored search (``LatentSpace.within``) leaves it free, so the prompt can pick the
        class while the seed's own draw keeps the rest.
    """

    name: str
    shape: tuple[int, ...]
    prior: str = "normal"
    loc: float = 0.0
    scale: float = 1.0
    low: float = -4.0
    high: float = 4.0
    conditioning: bool = False

    def __post_init__(self):
        if self.prior not in PRIORS:
            raise ConfigError(f"latent block {self.name!r}: unknown prior {self.prior!r}; use one of {PRIORS}")
        if not self.shape or any(int(d) <= 0 for d in self.shape):
            raise ConfigError(f"latent block {self.name!r}: shape must be positive, got {self.shape}")
        if not self.low < self.high:
            raise ConfigError(f"latent block {self.name!r}: bounds need low < high, got [{self.low}, {self.high}]")
        if self.scale <= 0:
            raise ConfigError(f"latent block {self.name!r}: scale must be > 0, got {self.scale}")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def spread(self) -> float:
        """The prior's standard deviation: the natural unit for mutation steps."""
        if self.prior == "normal":
            return self.scale
        if self.prior == "truncnormal":
            return float(truncnorm.std(*self._standard_bounds)) * self.scale
        return (self.high - self.low) / np.sqrt(12.0)

    @property
    def typical_radius(self) -> float | None:
        """Where a Gaussian block's prior mass lies: its draws' distance from ``loc`` is close to
        sqrt(size * E[(x - loc)^2]) (the typical set). None for a uniform block, which has none."""
        if self.prior == "uniform":
            return None
        second_moment = 1.0 if self.prior == "normal" else float(truncnorm.moment(2, *self._standard_bounds))
        return float(np.sqrt(self.size * second_moment)) * self.scale

    @property
    def _standard_bounds(self) -> tuple[float, float]:
        return (self.low - self.loc) / self.scale, (self.high - self.loc) / self.scale


@dataclass(frozen=True)
class LatentSpace:
    blocks: tuple[LatentBlock, ...]

    def __post_init__(self):
        names = [b.name for b in self.blocks]
        if not names:
            raise ConfigError("a latent space needs at least one block")
        if len(set(names)) != len(names):
            raise ConfigError(f"latent block names must be unique, got {names}")

    @property
    def n_var(self) -> int:
        return sum(b.size for b in self.blocks)

    def block(self, name: str) -> LatentBlock:
        for b in self.blocks:
            if b.name == name:
                return b
        raise KeyError(name)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds per variable, as pymoo's ``xl`` / ``xu``."""
        low = np.concatenate([np.full(b.size, b.low) for b in self.blocks])
        high = np.concatenate([np.full(b.size, b.high) for b in self.blocks])
        return low, high

    def spreads(self) -> np.ndarray:
        """Per-variable prior standard deviation (for mutation scaled to the prior)."""
        return np.concatenate([np.full(b.size, b.spread) for b in self.blocks])

    def centre(self) -> np.ndarray:
        """The prior's centre per variable: the normal's mean, or the uniform's midpoint."""
        return np.concatenate(
            [np.full(b.size, (b.low + b.high) / 2 if b.prior == "uniform" else b.loc) for b in self.blocks]
        )

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` flat vectors [n, n_var] drawn from the priors and clipped to the bounds."""
        return torch.from_numpy(
            self._draw(
                lambda size: torch.randn(n, size, generator=generator, dtype=torch.float64).numpy(),
                lambda size: torch.rand(n, size, generator=generator, dtype=torch.float64).numpy(),
            )
        ).float()

    def seeded(self, n: int, seed: int) -> torch.Tensor:
        """The first ``n`` draws [n, n_var] under ``seed``: the latents ``artbias generate --seed``
        paints, and the ones an unguided evaluation or an anchored search starts from."""
        return self.sample(n, torch.Generator().manual_seed(seed))

    def sample_numpy(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """As ``sample``, driven by a numpy generator (pymoo operators hand one in)."""
        return self._draw(lambda size: rng.standard_normal((n, size)), lambda size: rng.random((n, size)))

    def _draw(self, standard_normal, standard_uniform) -> np.ndarray:
        parts = []
        for b in self.blocks:
            if b.prior == "normal":
                x = standard_normal(b.size) * b.scale + b.loc
            elif b.prior == "truncnormal":  # inverse CDF: exact, and driven by uniform draws
                x = truncnorm.ppf(standard_uniform(b.size), *b._standard_bounds) * b.scale + b.loc
            else:
                x = standard_uniform(b.size) * (b.high - b.low) + b.low
            parts.append(np.clip(x, b.low, b.high))
        return np.concatenate(parts, axis=1)

    def to_typical_set(self, x: np.ndarray) -> np.ndarray:
        """Flat vectors [n, n_var] with each Gaussian block moved radially onto its typical
        radius (direction kept, then clipped to the bounds); uniform blocks unchanged.

        Selection on a score drifts latents off the shell where the prior puts its mass, to
        inputs the generator rarely saw in training; this keeps a search where it did."""
        x = np.array(x, dtype=float, copy=True)
        start = 0
        for b in self.blocks:
            part = x[:, start : start + b.size]
            if b.typical_radius is not None:
                offset = part - b.loc
                length = np.linalg.norm(offset, axis=1, keepdims=True)
                # A vector at the centre has no direction; it stays (a prior draw never is).
                factor = np.divide(b.typical_radius, length, out=np.ones_like(length), where=length > 0)
                part[:] = np.clip(b.loc + offset * factor, b.low, b.high)
            start += b.size
        return x

    def anchored(self) -> np.ndarray:
        """Per variable, whether an anchored search holds it near its anchor (every variable
        but those of ``conditioning`` blocks)."""
        return np.concatenate([np.full(b.size, not b.conditioning) for b in self.blocks])

    def distance(self, x: np.ndarray, anchor: np.ndarray) -> np.ndarray:
        """Per row of x [n, n_var], its distance from ``anchor`` [n_var] over the ``anchored``
        variables, in prior standard deviations, root-mean-square: about 1.41 between two prior
        draws (0 when every block is conditioning)."""
        held = self.anchored()
        if not held.any():
            return np.zeros(len(x))
        offset = (np.asarray(x, dtype=float) - anchor)[:, held] / self.spreads()[held]
        return np.sqrt(np.mean(offset**2, axis=1))

    def within(self, x: np.ndarray, anchor: np.ndarray, radius: float) -> np.ndarray:
        """Flat vectors [n, n_var] whose ``anchored`` variables are moved straight toward
        ``anchor`` until their ``distance`` is at most ``radius`` (those already inside
        unchanged), then clipped to the bounds; conditioning blocks only clipped.

        One ball over all held blocks, so a search can spend its radius where it needs it.
        The anchor lies inside the bounds, so clipping only brings a vector closer to it."""
        x = np.array(x, dtype=float, copy=True)
        anchor = np.asarray(anchor, dtype=float)
        length = self.distance(x, anchor)[:, None]
        factor = np.divide(radius, length, out=np.ones_like(length), where=length > radius)
        held = self.anchored()
        x[:, held] = (anchor + (x - anchor) * factor)[:, held]
        low, high = self.bounds()
        return np.clip(x, low, high)

    def split(self, latents: torch.Tensor) -> dict[str, torch.Tensor]:
        """Flat [B, n_var] -> {name: [B, *shape]} (views, so gradients flow)."""
        if latents.ndim != 2 or latents.shape[1] != self.n_var:
            raise ConfigError(f"latents must have shape [batch, {self.n_var}], got {list(latents.shape)}")
        parts, start = {}, 0
        for b in self.blocks:
            parts[b.name] = latents[:, start : start + b.size].reshape(-1, *b.shape)
            start += b.size
        return parts

    def join(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """{name: [B, *shape]} -> flat [B, n_var]; the inverse of ``split``."""
        missing = [b.name for b in self.blocks if b.name not in parts]
        if missing:
            raise ConfigError(f"missing latent blocks {missing}")
        return torch.cat([parts[b.name].reshape(parts[b.name].shape[0], -1) for b in self.blocks], dim=1)

    def describe(self) -> list[dict]:
        """A JSON-ready description, recorded with every result."""
        return [asdict(b) | {"shape": list(b.shape)} for b in self.blocks]


def classes_asked(space: LatentSpace, latents: torch.Tensor, class_names: tuple[str, ...] | None,
                  weigh=None) -> list[str] | None:
    """The class each flat latent's ``class_logits`` block asks for most: the largest of its
    logits, or of ``weigh(logits)`` (a family's own class mix); None without class names."""
    if class_names is None:
        return None
    logits = space.split(latents.float())["class_logits"]
    weights = weigh(logits) if weigh is not None else logits
    return [class_names[i] for i in weights.argmax(dim=-1).tolist()]
