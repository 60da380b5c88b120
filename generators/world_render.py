"""``world-render``: the scenery world's own renderer behind the generator protocol.

A glass box. Its latent is the scene-parameter vector of ``data.world.params`` in a
continuous relaxation, so a search over it probes the CLIP alone: the renderer can draw every
scene of the world (full support) and never an artefact, and every artwork it makes carries
its true class, time of day, weather and aesthetic value (``scenes`` / ``truth``).

The search space (20 numbers, every block uniform on its bounds):

| block | size | decoded as |
|---|---|---|
| ``class_u`` | 6 | class = argmax(log share + Gumbel(u)): the Gumbel-max trick, so the prior draws classes in the composition's shares (default: balanced) |
| ``time_u`` | 4 | time of day, by Gumbel-max over the world's time weights |
| ``weather_u`` | 4 | weather, by Gumbel-max over the class's weather weights (impossible weathers never drawn) |
| ``scene_u`` | 6 | palette, sky colour, horizon (within the class's range), depth layers, lateral view, density |

plus ``noise_u`` (1): the seed of the finer details (``floor(u * 2**32)``). Drawing latents
from the prior and decoding them gives exactly the world's scene distribution. Rendering is
not differentiable, so searches over it use no gradient refinement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from data.errors import ConfigError
from data.world.aesthetic import AestheticRule
from data.world.params import (
    CLASSES,
    HORIZON_RANGES,
    MAX_LAYERS,
    MIN_LAYERS,
    PALETTES,
    TIME_WEIGHTS,
    TIMES,
    WEATHER_WEIGHTS,
    WEATHERS,
    SceneBatch,
)
from data.world.render import MIN_SIZE, render_scenes
from generators.latents import LatentBlock, LatentSpace
from generators.protocol import Generator

_EPS = 1e-6  # keeps Gumbel draws finite at the bounds
MAX_SIZE = 1024


def _gumbel(u: np.ndarray) -> np.ndarray:
    return -np.log(-np.log(np.clip(u, _EPS, 1 - _EPS)))


def _categorical(u: np.ndarray, weights) -> np.ndarray:
    """Gumbel-max: index of max(log w + G(u)) per row; zero weights are never chosen."""
    with np.errstate(divide="ignore"):
        log_w = np.log(np.asarray(weights, dtype=np.float64))
    return np.argmax(log_w + _gumbel(u), axis=-1)


@dataclass(frozen=True)
class SceneTruth:
    """What a world-render artwork is, exactly."""

    classes: list[str]
    times: list[str]
    weathers: list[str]
    aesthetic: np.ndarray  # the world's aesthetic value of each scene, under ``rule``


class WorldRenderGenerator(Generator):
    family = "world-render"
    differentiable = False
    class_names = CLASSES  # what ``intended_classes`` names
    intended_note = "exact: the class, time and weather of the scene the renderer drew"

    def __init__(self, *, size: int = 64, composition: dict[str, float] | None = None,
                 rule: AestheticRule | None = None, name: str = "world-render",
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        super().__init__(device, dtype)
        if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
            raise ConfigError(f"world-render size must be an integer from {MIN_SIZE} to {MAX_SIZE}, got {size!r}")
        self.name = name
        self.image_size = size
        shares = composition or {c: 1.0 for c in CLASSES}
        unknown = sorted(set(shares) - set(CLASSES))
        values = [shares.get(c, 0.0) for c in CLASSES]
        if unknown or any(not np.isfinite(v) or v < 0 for v in values) or sum(values) <= 0:
            raise ConfigError(f"world-render composition must give non-negative shares of {list(CLASSES)}, got {shares}")
        self.composition = {c: v / sum(values) for c, v in zip(CLASSES, values, strict=True)}
        self.rule = rule or AestheticRule.load()
        uniform = {"prior": "uniform", "low": 0.0, "high": 1.0}
        self.latent_space = LatentSpace((
            LatentBlock("class_u", (len(CLASSES),), **uniform, conditioning=True),
            LatentBlock("time_u", (len(TIMES),), **uniform),
            LatentBlock("weather_u", (len(WEATHERS),), **uniform),
            LatentBlock("scene_u", (6,), **uniform),
            LatentBlock("noise_u", (1,), **uniform),
        ))

    # -- decoding ---------------------------------------------------------------------------
    def scenes(self, latents: torch.Tensor) -> SceneBatch:
        """The scenes flat latents [B, n_var] stand for."""
        parts = {k: v.detach().cpu().double().numpy() for k, v in self.latent_space.split(latents).items()}
        n = len(latents)
        cls = _categorical(parts["class_u"], [self.composition[c] for c in CLASSES])
        time = _categorical(parts["time_u"], TIME_WEIGHTS)
        weather = np.array([_categorical(parts["weather_u"][i], WEATHER_WEIGHTS[CLASSES[k]]) for i, k in enumerate(cls)],
                           dtype=np.int64).reshape(n)
        u = np.clip(parts["scene_u"], 0.0, 1 - _EPS)
        palette = np.array([int(u[i, 0] * len(PALETTES[CLASSES[k]])) for i, k in enumerate(cls)], dtype=np.int64)
        low = np.array([HORIZON_RANGES[CLASSES[k]][0] for k in cls])
        high = np.array([HORIZON_RANGES[CLASSES[k]][1] for k in cls])
        return SceneBatch(
            class_index=cls.astype(np.int64),
            time_index=time.astype(np.int64),
            weather_index=weather,
            palette_index=palette.reshape(n),
            sky_index=(u[:, 1] * 3).astype(np.int64),
            horizon=(low + (high - low) * u[:, 2]).astype(np.float32),
            layers=(MIN_LAYERS + u[:, 3] * (MAX_LAYERS - MIN_LAYERS + 1)).astype(np.int64),
            view=(u[:, 4] * 2 - 1).astype(np.float32),
            density=u[:, 5].astype(np.float32),
            noise_seed=(np.clip(parts["noise_u"][:, 0], 0.0, 1 - _EPS) * 2**32).astype(np.uint64).astype(np.uint32),
        )

    def truth(self, latents: torch.Tensor) -> SceneTruth:
        """The true class, time, weather and aesthetic value of each latent's artwork."""
        scenes = self.scenes(latents)
        return SceneTruth(
            [CLASSES[i] for i in scenes.class_index], [TIMES[i] for i in scenes.time_index],
            [WEATHERS[i] for i in scenes.weather_index], self.rule.values(scenes),
        )

    # -- the protocol -------------------------------------------------------------------------
    def intended_classes(self, latents: torch.Tensor) -> list[str]:
        """The true class of each latent's artwork (exact: the renderer draws what it is asked)."""
        return [CLASSES[i] for i in self.scenes(latents).class_index]

    def intended_attributes(self, latents: torch.Tensor) -> dict[str, list[str]]:
        """The true time of day and weather of each latent's artwork."""
        truth = self.truth(latents)
        return {"time": truth.times, "weather": truth.weathers}

    def synthesize(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        latents = self.latent_space.join(parts)
        pixels = render_scenes(self.scenes(latents), self.image_size)
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2).to(self.device, self.dtype)
        return images / 127.5 - 1

    def modules(self) -> dict[str, torch.nn.Module]:
        return {}

    def settings(self) -> dict:
        return {"composition": self.composition, "aesthetic_rule": self.rule.to_dict(),
                "latent": self.latent_space.describe()}


def load(path=None, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
         size: int = 64, composition: dict[str, float] | None = None, rule: str | None = None,
         **options) -> WorldRenderGenerator:
    """The family loader. ``world-render`` needs no weights; ``path`` (from ``world-render:PATH``)
    may name an aesthetic rule JSON, as may the ``rule`` option."""
    if options:
        raise ConfigError(f"world-render takes the options size, composition and rule, got {sorted(options)}")
    rule_path = rule or path
    return WorldRenderGenerator(size=int(size) if isinstance(size, str) and size.isdigit() else size,
                                composition=composition,
                                rule=AestheticRule.load(rule_path) if rule_path else None,
                                device=device, dtype=dtype)
