"""Scene parameter vectors: what a scene is, before it is rendered or captioned.

A scene is a small vector of named attributes (class, time of day, weather, palette, sky colour,
composition numbers) plus a ``noise_seed`` from which the renderer derives every finer detail
(peak positions, tree heights, window lights) by hashing. So a scene's picture is a pure
function of its vector: the same vector always renders the same image, whatever batch it is in.

``SceneBatch`` holds many scenes as parallel numpy arrays (one entry per scene), the form the
vectorised renderer wants; ``records()`` turns it into one dict per scene for manifests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from data.errors import ConfigError

# The six Intel Image Classification classes, in the fixed (alphabetical) order that every
# dataset, classifier and statistic in artbias uses for class indices.
CLASSES: tuple[str, ...] = ("buildings", "forest", "glacier", "mountain", "sea", "street")
TIMES: tuple[str, ...] = ("day", "golden", "night", "overcast")
WEATHERS: tuple[str, ...] = ("clear", "fog", "rain", "snow")

# Per-class material palettes (the renderer maps each name to colours).
PALETTES: dict[str, tuple[str, ...]] = {
    "buildings": ("brick", "concrete", "glass", "sandstone", "pastel"),
    "forest": ("summer", "autumn", "pine", "birch"),
    "glacier": ("white", "blue", "turquoise"),
    "mountain": ("granite", "redrock", "slate", "alpine"),
    "sea": ("tropical", "deep", "grey", "emerald"),
    "street": ("brick", "concrete", "cobble", "pastel"),
}

# Sky colour variants per time of day (index = ``sky`` attribute); captions name these colours.
SKIES: dict[str, tuple[str, ...]] = {
    "day": ("blue", "pale blue", "deep blue"),
    "golden": ("pink", "orange", "purple"),
    "night": ("dark blue", "black", "violet"),
    "overcast": ("grey", "white", "dark grey"),
}

# How often each time of day occurs, and which weathers make sense for each class (snow never
# falls on the sea here, rain never on glaciers: they would not be recognisable).
TIME_WEIGHTS: tuple[float, ...] = (0.40, 0.25, 0.15, 0.20)
WEATHER_WEIGHTS: dict[str, tuple[float, ...]] = {
    "buildings": (0.55, 0.15, 0.20, 0.10),
    "forest": (0.50, 0.25, 0.10, 0.15),
    "glacier": (0.60, 0.25, 0.00, 0.15),
    "mountain": (0.60, 0.20, 0.05, 0.15),
    "sea": (0.60, 0.20, 0.20, 0.00),
    "street": (0.45, 0.15, 0.25, 0.15),
}

# Horizon height (fraction of the image from the top) per class: where land meets sky, or the
# street's vanishing point. Mountains sit low so peaks have room; the sea's horizon is central.
HORIZON_RANGES: dict[str, tuple[float, float]] = {
    "buildings": (0.80, 0.95),
    "forest": (0.72, 0.88),
    "glacier": (0.32, 0.50),
    "mountain": (0.55, 0.72),
    "sea": (0.35, 0.58),
    "street": (0.38, 0.55),
}
MIN_LAYERS, MAX_LAYERS = 2, 4
# Sea scenes denser than this have a beach in front (the renderer draws it, captions may say so).
BEACH_DENSITY = 0.4


@dataclass(frozen=True)
class SceneBatch:
    """Scenes as parallel arrays; index ``i`` of every field is scene ``i``.

    Categorical fields hold indices: ``class_index`` into ``CLASSES``, ``time_index`` into
    ``TIMES``, ``weather_index`` into ``WEATHERS``, ``palette_index`` into
    ``PALETTES[class]``, ``sky_index`` into ``SKIES[time]``. Composition: ``horizon`` (0..1 from
    the top), ``layers`` (depth layers: ridges, tree rows, building rows), ``view`` (-1..1,
    lateral viewpoint: sun side, vanishing point), ``density`` (0..1: trees, buildings,
    crevasses, waves; also selects close-up vs wide views). ``noise_seed`` drives the details.
    """

    class_index: np.ndarray
    time_index: np.ndarray
    weather_index: np.ndarray
    palette_index: np.ndarray
    sky_index: np.ndarray
    horizon: np.ndarray
    layers: np.ndarray
    view: np.ndarray
    density: np.ndarray
    noise_seed: np.ndarray

    def __post_init__(self):
        sizes = {len(getattr(self, field.name)) for field in fields(self)}
        if len(sizes) != 1:
            raise ConfigError(f"scene batch fields have different lengths: {sorted(sizes)}")

    def __len__(self) -> int:
        return len(self.class_index)

    def select(self, index: np.ndarray | slice | Sequence[int]) -> SceneBatch:
        """The scenes at ``index`` (a slice, integer array or boolean mask)."""
        return SceneBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concat(batches: Sequence[SceneBatch]) -> SceneBatch:
        return SceneBatch(
            **{
                f.name: np.concatenate([getattr(b, f.name) for b in batches])
                for f in fields(SceneBatch)
            }
        )

    @staticmethod
    def from_records(rows: Sequence[dict]) -> SceneBatch:
        """The inverse of ``records()``: a manifest's attribute rows back into a batch."""

        def column(value, dtype):
            return np.array([value(r) for r in rows], dtype=dtype)

        return SceneBatch(
            class_index=column(lambda r: CLASSES.index(r["class"]), np.int64),
            time_index=column(lambda r: TIMES.index(r["time"]), np.int64),
            weather_index=column(lambda r: WEATHERS.index(r["weather"]), np.int64),
            palette_index=column(lambda r: PALETTES[r["class"]].index(r["palette"]), np.int64),
            sky_index=column(lambda r: SKIES[r["time"]].index(r["sky"]), np.int64),
            horizon=column(lambda r: r["horizon"], np.float32),
            layers=column(lambda r: r["layers"], np.int64),
            view=column(lambda r: r["view"], np.float32),
            density=column(lambda r: r["density"], np.float32),
            noise_seed=column(lambda r: r["noise_seed"], np.uint32),
        )

    def records(self) -> list[dict]:
        """One dict per scene with names instead of indices (the manifest's attribute columns)."""
        rows = []
        for i in range(len(self)):
            cls = CLASSES[self.class_index[i]]
            time = TIMES[self.time_index[i]]
            rows.append(
                {
                    "class": cls,
                    "time": time,
                    "weather": WEATHERS[self.weather_index[i]],
                    "palette": PALETTES[cls][self.palette_index[i]],
                    "sky": SKIES[time][self.sky_index[i]],
                    "horizon": float(self.horizon[i]),
                    "layers": int(self.layers[i]),
                    "view": float(self.view[i]),
                    "density": float(self.density[i]),
                    "noise_seed": int(self.noise_seed[i]),
                }
            )
        return rows


def class_index(name: str) -> int:
    if name not in CLASSES:
        raise ConfigError(f"unknown scene class {name!r}; choose from {', '.join(CLASSES)}")
    return CLASSES.index(name)


def sample_scenes(classes: Sequence[str], rng: np.random.Generator) -> SceneBatch:
    """Draw one random scene for each entry of ``classes`` (class names, any order)."""
    cls = np.array([class_index(c) for c in classes], dtype=np.int64)
    n = len(cls)
    time = rng.choice(len(TIMES), size=n, p=TIME_WEIGHTS)
    weather = np.empty(n, dtype=np.int64)
    palette = np.empty(n, dtype=np.int64)
    horizon = np.empty(n, dtype=np.float32)
    uniform = rng.random((n, 3))
    for k, name in enumerate(CLASSES):
        rows = np.flatnonzero(cls == k)
        weather[rows] = rng.choice(len(WEATHERS), size=len(rows), p=WEATHER_WEIGHTS[name])
        palette[rows] = rng.integers(len(PALETTES[name]), size=len(rows))
        low, high = HORIZON_RANGES[name]
        horizon[rows] = low + (high - low) * uniform[rows, 0]
    return SceneBatch(
        class_index=cls,
        time_index=time.astype(np.int64),
        weather_index=weather,
        palette_index=palette,
        sky_index=rng.integers(3, size=n),
        horizon=horizon,
        layers=rng.integers(MIN_LAYERS, MAX_LAYERS + 1, size=n),
        view=(uniform[:, 1] * 2 - 1).astype(np.float32),
        density=uniform[:, 2].astype(np.float32),
        noise_seed=rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32),
    )


def make_scenes(
    scene_class: str,
    time: str,
    weather: str,
    palette: str | None = None,
    sky: int = 0,
    horizon: float | None = None,
    layers: int = 3,
    view: float = 0.0,
    density: float = 0.5,
    noise_seed: int = 0,
) -> SceneBatch:
    """One scene with chosen attributes (contact sheets, tests); unknown names raise."""
    k = class_index(scene_class)
    for value, allowed, what in ((time, TIMES, "time"), (weather, WEATHERS, "weather")):
        if value not in allowed:
            raise ConfigError(f"unknown {what} {value!r}; choose from {', '.join(allowed)}")
    palettes = PALETTES[scene_class]
    palette = palettes[0] if palette is None else palette
    if palette not in palettes:
        raise ConfigError(f"unknown {scene_class} palette {palette!r}; choose from {palettes}")
    if horizon is None:
        horizon = sum(HORIZON_RANGES[scene_class]) / 2
    return SceneBatch(
        class_index=np.array([k]),
        time_index=np.array([TIMES.index(time)]),
        weather_index=np.array([WEATHERS.index(weather)]),
        palette_index=np.array([palettes.index(palette)]),
        sky_index=np.array([sky % 3]),
        horizon=np.array([horizon], dtype=np.float32),
        layers=np.array([layers]),
        view=np.array([view], dtype=np.float32),
        density=np.array([density], dtype=np.float32),
        noise_seed=np.array([noise_seed], dtype=np.uint32),
    )
