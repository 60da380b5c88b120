"""BigGAN-deep architecture configs: the published ``config.json`` keys, as data.

The published checkpoints (biggan-deep-128/256/512) ship a ``config.json`` with exactly the
fields of ``BigGANConfig``; their copies live in ``configs/*.json`` next to this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from data.errors import ConfigError
from data.validation import check_known_keys

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass(frozen=True)
class BigGANConfig:
    """One BigGAN-deep architecture.

    layers: one ``(up_sample, in_multiplier, out_multiplier)`` per residual block; block
    channels are ``channel_width * multiplier``. The self-attention layer is inserted just
    before the block at ``attention_layer_position``. ``n_stats`` batch-norm statistics are
    kept per layer, one for each truncation on the grid ``i / (n_stats - 1)``.
    """

    output_dim: int
    z_dim: int
    class_embed_dim: int
    channel_width: int
    num_classes: int
    layers: tuple[tuple[bool, int, int], ...]
    attention_layer_position: int
    eps: float = 1e-4
    n_stats: int = 51

    def __post_init__(self):
        for name in ("output_dim", "z_dim", "class_embed_dim", "channel_width", "num_classes"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(
                    f"BigGAN config: {name} must be positive, got {getattr(self, name)}"
                )
        if self.channel_width < 3:
            # The RGB convolution has channel_width outputs, of which the first 3 are the image.
            raise ConfigError(
                f"BigGAN config: channel_width must be at least 3, got {self.channel_width}"
            )
        if self.n_stats < 2:
            raise ConfigError(f"BigGAN config: n_stats must be at least 2, got {self.n_stats}")
        if not self.layers:
            raise ConfigError("BigGAN config: layers is empty")
        for index, (_, multiplier_in, multiplier_out) in enumerate(self.layers):
            if multiplier_in <= 0 or multiplier_out <= 0 or multiplier_out > multiplier_in:
                # The residual path keeps the first out channels, so a block cannot widen.
                raise ConfigError(
                    f"BigGAN config: layer {index} needs 0 < out <= in multipliers, got "
                    f"{multiplier_in} -> {multiplier_out}"
                )
            if (self.channel_width * multiplier_in) % 4:
                raise ConfigError(f"BigGAN config: layer {index} channels must be divisible by 4")
        if not 0 <= self.attention_layer_position < len(self.layers):
            raise ConfigError(
                f"BigGAN config: attention_layer_position {self.attention_layer_position} is "
                f"outside the {len(self.layers)} layers"
            )
        if self.attention_channels % 8:
            raise ConfigError(
                f"BigGAN config: attention channels ({self.attention_channels}) must be divisible by 8"
            )
        resolution = 4 * 2 ** sum(1 for up, _, _ in self.layers if up)
        if resolution != self.output_dim:
            raise ConfigError(
                f"BigGAN config: layers upsample 4x4 to {resolution}x{resolution}, "
                f"but output_dim is {self.output_dim}"
            )

    @property
    def condition_dim(self) -> int:
        """Size of the condition vector ``cat(z, class embedding)``."""
        return self.z_dim + self.class_embed_dim

    @property
    def attention_channels(self) -> int:
        return self.channel_width * self.layers[self.attention_layer_position][1]

    @classmethod
    def from_dict(cls, raw: dict) -> BigGANConfig:
        if isinstance(raw, BigGANConfig):
            return raw
        if not isinstance(raw, dict):
            raise ConfigError(f"BigGAN config must be a dict, got {type(raw).__name__}")
        known = {f.name for f in fields(cls)}
        check_known_keys(raw, known, "BigGAN config")
        required = {f.name for f in fields(cls) if f.name not in ("eps", "n_stats")}
        missing = sorted(required - set(raw))
        if missing:
            raise ConfigError(f"BigGAN config: missing keys {missing}")
        try:
            layers = tuple((bool(up), int(a), int(b)) for up, a, b in raw["layers"])
            values = {k: raw[k] for k in known if k in raw and k != "layers"}
            ints = {k: int(v) for k, v in values.items() if k != "eps"}
            eps = float(values.get("eps", 1e-4))
        except (TypeError, ValueError) as error:
            raise ConfigError(f"BigGAN config: malformed value ({error})") from error
        return cls(layers=layers, eps=eps, **ints)

    def to_dict(self) -> dict:
        """The published ``config.json`` form (JSON-ready)."""
        return {
            "output_dim": self.output_dim,
            "z_dim": self.z_dim,
            "class_embed_dim": self.class_embed_dim,
            "channel_width": self.channel_width,
            "num_classes": self.num_classes,
            "layers": [list(layer) for layer in self.layers],
            "attention_layer_position": self.attention_layer_position,
            "eps": self.eps,
            "n_stats": self.n_stats,
        }


def read_config(path: str | Path) -> BigGANConfig:
    """A ``config.json`` file -> ``BigGANConfig`` (ConfigError if unreadable or invalid)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ConfigError(f"BigGAN config file not found: {path}") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"BigGAN config file {path} is not readable JSON: {error}") from error
    return BigGANConfig.from_dict(raw)


def published_configs() -> list[str]:
    """Names of the published architectures shipped as JSON (``biggan-deep-128``, ...)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def published_config(name: str) -> BigGANConfig:
    """The architecture of a published checkpoint, by name."""
    path = CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        raise ConfigError(f"unknown BigGAN architecture {name!r}; known: {published_configs()}")
    return read_config(path)
