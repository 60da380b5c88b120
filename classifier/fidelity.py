"""How close a set of images is to the scenery world: the world Fréchet distance.

FID (Heusel et al. 2017) compares Gaussian fits of Inception features; Inception weights
are not available offline, and it never saw this world anyway. Here the features are the
penultimate layer of a world scene classifier (``classifier-world``), and the reference is a
fresh set of world renders drawn with the generator's own training composition, so a
generator that draws scenes as the world does scores near the floor (two independent render
sets), and blur, noise or adversarial patterns score high. Like FID it is biased upward at
small n: compare figures only at the same n, and read them against the floor.

The Fréchet distance mixes two faults: images off the world's manifold, and a set narrower
than the world (one good picture repeated scores badly too). ``world_realism`` separates
them, per image, in the same features: precision (Kynkäänniemi et al. 2019: the share of
images inside the renders' k-nearest-neighbour manifold), density and coverage (Naeem et al.
2020), computed by the ``prdc`` package against a larger fixed set of fresh renders.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.linalg
import torch

from data.errors import ConfigError
from data.world.builder import class_counts
from data.world.params import CLASSES, sample_scenes
from data.world.render import render_scenes

FEATURES = "classifier-world"  # the classifier whose features define the distance
REFERENCE_SEED = 7_000_001  # fresh renders: no world dataset of the zoo uses this seed


@dataclass(frozen=True)
class WorldFrechet:
    value: float  # the images against fresh renders
    floor: float  # fresh renders against other fresh renders, at the same n
    n: int
    features: str
    reference_composition: dict[str, float]

    def to_dict(self) -> dict:
        return asdict(self)


def shares_or_uniform(composition: dict[str, float] | None) -> dict[str, float]:
    """The class shares asked for, as floats; every class alike when None."""
    return {k: float(v) for k, v in (composition or {name: 1 / len(CLASSES) for name in CLASSES}).items()}


def world_renders(n: int, composition: dict[str, float] | None, seed: int, size: int = 64) -> torch.Tensor:
    """``n`` fresh world renders [n, 3, size, size] in [-1, 1] with the given class shares."""
    counts = class_counts(n, shares_or_uniform(composition))
    names = [name for name in CLASSES for _ in range(counts[name])]
    images = render_scenes(sample_scenes(names, np.random.default_rng(seed)), size)
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature rows ``a`` [N, D] and ``b`` [M, D]."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ConfigError(f"Fréchet distance needs two sets of >= 2 feature rows of one width, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # a singular product is expected at small n; handled next
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():  # nudge both diagonals, as FID does
            eps = np.eye(len(cov_a)) * 1e-6
            root = scipy.linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    root = np.real(root)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))


class WorldFeatures:
    """A world classifier's features of images, and of fresh renders, each render set computed
    once: the Fréchet distance and the realism of one image set share them."""

    def __init__(self, features: str = FEATURES):
        from classifier.model import load_classifier

        self.name = features
        self.classifier = load_classifier(features)
        self._renders: dict[tuple, np.ndarray] = {}

    def of(self, images: torch.Tensor) -> np.ndarray:
        return self.classifier.features(images).numpy()

    def of_renders(self, n: int, composition: dict[str, float] | None, seed: int) -> np.ndarray:
        key = (n, tuple(sorted(shares_or_uniform(composition).items())), seed)
        if key not in self._renders:
            self._renders[key] = self.of(world_renders(n, composition, seed))
        return self._renders[key]


def world_frechet_distance(images: torch.Tensor, composition: dict[str, float] | None, *,
                           features: str = FEATURES, seed: int = REFERENCE_SEED) -> WorldFrechet:
    """The world Fréchet distance of ``images`` [N,3,H,W] in [-1, 1] to fresh renders of
    ``composition`` (uniform when None), with the floor of renders against renders."""
    _check_frechet_size(len(images))
    world = WorldFeatures(features)
    return _frechet(world.of(images), world, composition, seed)


def _check_frechet_size(n: int) -> None:
    if n < 2:
        raise ConfigError(f"the world Fréchet distance needs at least 2 images, got {n}")


def _frechet(mine: np.ndarray, world: WorldFeatures, composition, seed: int) -> WorldFrechet:
    n = len(mine)
    reference = world.of_renders(n, composition, seed)
    other = world.of_renders(n, composition, seed + 1)
    return WorldFrechet(value=frechet_distance(mine, reference), floor=frechet_distance(other, reference), n=n,
                        features=world.name, reference_composition=shares_or_uniform(composition))


@dataclass(frozen=True)
class WorldRealism:
    precision: float  # share of the images inside the renders' manifold: realism, per image
    density: float  # about 1 for images spread as renders are; < 1 off-manifold or on its fringe
    coverage: float  # share of renders with an image nearby: how much of the world is drawn
    n: int
    reference_n: int
    nearest_k: int
    features: str
    reference_composition: dict[str, float]

    def to_dict(self) -> dict:
        return asdict(self)


def world_realism(images: torch.Tensor, composition: dict[str, float] | None, *, nearest_k: int = 5,
                  reference_n: int = 1000, features: str = FEATURES,
                  seed: int = REFERENCE_SEED) -> WorldRealism:
    """Precision, density and coverage of ``images`` [N,3,H,W] in [-1, 1] against ``reference_n``
    fresh renders of ``composition`` (uniform when None), in the world classifier's features."""
    _check_realism_size(len(images), nearest_k, reference_n)
    world = WorldFeatures(features)
    return _realism(world.of(images), world, composition, nearest_k, reference_n, seed)


def _check_realism_size(n: int, nearest_k: int, reference_n: int) -> None:
    if n <= nearest_k or reference_n <= nearest_k:
        raise ConfigError(f"world realism with {nearest_k} nearest neighbours needs more than {nearest_k} "
                          f"images and renders, got {n} and {reference_n}")


def _realism(mine: np.ndarray, world: WorldFeatures, composition, nearest_k: int, reference_n: int,
             seed: int) -> WorldRealism:
    import contextlib
    import io

    from prdc import compute_prdc

    reference = world.of_renders(reference_n, composition, seed)
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        found = compute_prdc(real_features=reference, fake_features=mine, nearest_k=nearest_k)
    return WorldRealism(precision=float(found["precision"]), density=float(found["density"]),
                        coverage=float(found["coverage"]), n=len(mine), reference_n=reference_n,
                        nearest_k=nearest_k, features=world.name, reference_composition=shares_or_uniform(composition))


def world_fidelity(images: torch.Tensor, composition: dict[str, float] | None, *, nearest_k: int = 5,
                   reference_n: int = 1000, features: str = FEATURES,
                   seed: int = REFERENCE_SEED) -> tuple[WorldFrechet, WorldRealism | None]:
    """Both measures of one image set, from one pass of features (and, at n = ``reference_n``,
    one set of renders); the realism is None when there are too few images for it."""
    _check_frechet_size(len(images))
    world = WorldFeatures(features)
    mine = world.of(images)
    realism = None
    if len(images) > nearest_k:
        _check_realism_size(len(images), nearest_k, reference_n)
        realism = _realism(mine, world, composition, nearest_k, reference_n, seed)
    return _frechet(mine, world, composition, seed), realism


def composition_dict(classes: Sequence[str], shares: Sequence[float] | None) -> dict[str, float] | None:
    return None if shares is None else dict(zip(classes, (float(s) for s in shares), strict=True))
