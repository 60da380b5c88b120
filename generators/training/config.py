"""What a GAN training run is: one dataclass, read from JSON, with command-line overrides.

``configs/<arch>-world.json`` are the starter-zoo defaults (small networks for 64 px scenery
images); ``--config FILE`` replaces them with another file of the same keys. ``model`` holds
the architecture, interpreted by the architecture's recipe (``recipes.py``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from data.errors import ConfigError
from data.validation import check_known_keys
from generators.training.augment import check_policy
from generators.training.precision import check_precision

ARCHITECTURES = ("dcgan", "stylegan2", "biggan")
LOSSES = ("logistic", "hinge")
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# Keys that may change between a run and its resumption (they do not change the weights).
RESUMABLE_KEYS = ("steps", "sample_every", "checkpoint_every")


@dataclass(frozen=True)
class TrainConfig:
    """One GAN training run.

    steps: optimisation steps; each is one discriminator update and one generator update.
    loss: "logistic" (non-saturating, DCGAN/StyleGAN2) or "hinge" (BigGAN).
    r1_gamma / r1_every: R1 penalty on real images, applied lazily every ``r1_every`` steps
        (0 disables it).
    ema_half_life_images / ema_rampup: an exponential moving average of the generator
        (``G_ema``) whose weights halve their memory every that many images; with a ramp-up
        the half-life is at most ``ema_rampup`` x images seen so far (None: no EMA).
    ema_start_step: the average only starts after this step (BigGAN's ``ema_start``): until
        then ``G_ema`` is a copy of ``G``, so the average forgets the early, poor generators.
    precision / channels_last: "float32" or "bfloat16" (mixed precision under autocast) and
        the NHWC memory layout (``precision.py``); both change the numbers, not the recipe.
    augment: differentiable augmentations of what the discriminator sees, reals and fakes
        alike (``augment.py``: "color", "translation", "cutout"); empty for none.
    fresh_renders: train on new renders of the data folder's world each batch instead of its
        fixed images (``data.RenderedWorld``; the folder must be a world dataset).
    """

    arch: str
    model: dict = field(default_factory=dict)
    image_size: int = 64
    steps: int = 3000
    batch_size: int = 32
    seed: int = 0
    sample_every: int = 500
    checkpoint_every: int = 500
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    loss: str = "logistic"
    r1_gamma: float = 0.0
    r1_every: int = 16
    ema_half_life_images: float | None = None
    ema_rampup: float | None = None
    ema_start_step: int = 0
    precision: str = "float32"
    channels_last: bool = False
    augment: tuple[str, ...] = ()
    fresh_renders: bool = False

    def __post_init__(self):
        check_flag("fresh_renders", self.fresh_renders)
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "augment", check_policy(self.augment))
        if self.arch not in ARCHITECTURES:
            raise ConfigError(f"unknown GAN architecture {self.arch!r}; choose from {', '.join(ARCHITECTURES)}")
        size = self.image_size
        if not isinstance(size, int) or size < 32 or size & (size - 1):
            raise ConfigError(f"image size must be a power of two >= 32, got {size}")
        for name in ("steps", "sample_every", "checkpoint_every", "r1_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 2:
            raise ConfigError(f"batch size must be an integer >= 2 (batch norm needs two images), got {self.batch_size!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.lr_g <= 0 or self.lr_d <= 0:
            raise ConfigError(f"learning rates must be positive, got lr_g={self.lr_g}, lr_d={self.lr_d}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {list(self.betas)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; choose from {', '.join(LOSSES)}")
        if self.r1_gamma < 0:
            raise ConfigError(f"r1_gamma must be >= 0, got {self.r1_gamma}")
        if self.ema_half_life_images is not None and self.ema_half_life_images <= 0:
            raise ConfigError(f"ema_half_life_images must be positive or null, got {self.ema_half_life_images}")
        if self.ema_rampup is not None and self.ema_rampup <= 0:
            raise ConfigError(f"ema_rampup must be positive or null, got {self.ema_rampup}")
        start = self.ema_start_step
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise ConfigError(f"ema_start_step must be an integer >= 0, got {start!r}")
        if start and self.ema_half_life_images is None:
            raise ConfigError("ema_start_step needs ema_half_life_images (there is no average to start)")
        if not isinstance(self.model, dict):
            raise ConfigError(f"model must be a JSON object, got {type(self.model).__name__}")
        check_precision(self.precision, self.channels_last)

    @property
    def uses_ema(self) -> bool:
        return self.ema_half_life_images is not None

    def to_dict(self) -> dict:
        document = asdict(self)
        document["betas"] = list(self.betas)
        document["augment"] = list(self.augment)
        return document

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> TrainConfig:
        return config_from_dict(cls, raw, source, required=("arch",))

    def differences(self, other: TrainConfig) -> list[str]:
        """Keys (other than the resumable ones) whose values differ from ``other``'s."""
        return changed_keys(self.to_dict(), other.to_dict())


def config_from_dict(cls, raw: dict, source: str, required: tuple[str, ...] = ()):
    """A training config dataclass ``cls`` from JSON ``raw``; anything amiss is a ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a training config must be a JSON object")
    check_known_keys(raw, {f.name for f in fields(cls)}, source)
    for key in required:
        if key not in raw:
            raise ConfigError(f"{source}: names no {key!r}")
    try:
        return cls(**raw)
    except TypeError as error:
        raise ConfigError(f"{source}: {error}") from error


def check_flag(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")


def changed_keys(mine: dict, theirs: dict) -> list[str]:
    """Keys of two configs' dicts whose values differ, leaving out those a resume may change."""
    return sorted(k for k in mine if k not in RESUMABLE_KEYS and mine[k] != theirs.get(k))


def default_config_path(arch: str) -> Path:
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown GAN architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    return CONFIG_DIR / f"{arch}-world.json"


def read_config_file(path: Path) -> dict:
    """A training config file's JSON; a missing or unreadable file is a ConfigError."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ConfigError(f"training config {path} does not exist") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"training config {path} is not readable JSON: {error}") from error


def load_train_config(arch: str, path: str | Path | None = None, **overrides) -> TrainConfig:
    """The config of ``arch`` (its ``-world.json`` default or ``path``), with non-None overrides.

    A file naming another architecture than ``arch`` is an error.
    """
    path = Path(path) if path is not None else default_config_path(arch)
    config = TrainConfig.from_dict(read_config_file(path), source=str(path))
    if config.arch != arch:
        raise ConfigError(f"training config {path} is for {config.arch!r}, not {arch!r}")
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return replace(config, **given)
    except TypeError as error:
        raise ConfigError(f"unknown training option: {error}") from error
