"""Vectorised numpy renderer of small landscapes, one class at a time over a whole batch.

Every image is painted back to front on a [B, H, W, 3] float canvas: a sky (time of day,
clouds, sun or moon and stars), then the class's layers (ridges, trees, facades, water...),
each a soft mask with a colour and a depth, then weather (fog by depth, rain streaks,
snowflakes). Per-scene variation comes from per-row parameter arrays ([B, 1, 1] scalars,
[B, 1, W] column profiles); every fine detail is a hash of the scene's ``noise_seed``, so a
scene renders identically alone or in any batch. Coordinates are fractions of the image, so
any size >= 32 works; thin features keep a minimum width of about one pixel.
"""

from __future__ import annotations

import numpy as np

from data.errors import ConfigError
from data.world.params import BEACH_DENSITY, CLASSES, SceneBatch

MIN_SIZE = 32
F32 = np.float32


def _rgb(*colours: tuple[int, int, int]) -> np.ndarray:
    return np.array(colours, dtype=F32)


# --- hashing: per-scene deterministic randomness without random generators -----------------
def _mix32(h: np.ndarray) -> np.ndarray:
    # "lowbias32" integer finaliser: good avalanche for consecutive keys, all in uint32.
    h = h ^ (h >> np.uint32(16))
    h *= np.uint32(0x7FEB352D)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x846CA68B)
    return h ^ (h >> np.uint32(16))


def _as_u32(key) -> np.ndarray:
    key = np.asarray(key)
    if key.dtype == np.uint32:
        return key
    return key.astype(np.int64).astype(np.uint32)


def hash_uniform(seed: np.ndarray, *keys) -> np.ndarray:
    """Uniform float32 in [0, 1) from a uint32 seed array and integer keys (all broadcast)."""
    h = _as_u32(seed)
    for key in keys:  # cheap multiplicative combine, one strong finaliser at the end
        h = (h ^ _as_u32(key)) * np.uint32(0x9E3779B1) + np.uint32(0x7F4A7C15)
    return (_mix32(h) >> np.uint32(8)).astype(F32) * F32(1.0 / (1 << 24))


# --- per-time lighting tables (index: time, then sky variant) --------------------------------
SKY_TOP = _rgb(
    (62, 120, 205), (105, 160, 220), (30, 80, 190),  # day
    (78, 62, 140), (40, 60, 125), (52, 28, 96),  # golden: pink, orange, purple
    (8, 14, 40), (3, 4, 10), (22, 10, 44),  # night
    (140, 145, 152), (192, 195, 200), (96, 100, 108),  # overcast
).reshape(4, 3, 3)
SKY_HORIZON = _rgb(
    (175, 208, 236), (212, 230, 242), (130, 180, 235),
    (250, 150, 150), (255, 168, 80), (235, 110, 95),
    (30, 42, 82), (16, 20, 36), (58, 36, 88),
    (182, 185, 188), (224, 226, 228), (138, 141, 146),
).reshape(4, 3, 3)
SUN_COLOUR = _rgb((255, 250, 228), (255, 205, 130), (235, 238, 250), (255, 255, 255))
LIGHT = _rgb((1.0, 1.0, 1.0), (1.08, 0.80, 0.62), (0.20, 0.24, 0.38), (0.80, 0.82, 0.85))
DESATURATE = np.array([0.0, 0.0, 0.3, 0.4], dtype=F32)
CLOUD_COLOUR = _rgb((250, 250, 252), (255, 190, 170), (48, 52, 70), (165, 168, 174))
FOG_COLOUR = _rgb((208, 212, 218), (228, 196, 184), (46, 52, 68), (182, 184, 188))
WINDOW_LIGHT = _rgb((255, 214, 130))
# Weather: cloud cover, light multiplier, extra desaturation, fog density (per depth unit).
CLOUD_COVER = np.array([0.25, 0.55, 0.95, 0.85], dtype=F32)
WEATHER_LIGHT = np.array([1.0, 0.95, 0.78, 0.95], dtype=F32)
WEATHER_DESAT = np.array([0.0, 0.15, 0.3, 0.2], dtype=F32)
FOG_DENSITY = np.array([0.3, 1.7, 1.0, 0.9], dtype=F32)

# Tags keep the hash streams of different features apart.
(T_CLOUD, T_CLOUD2, T_STAR, T_SUN, T_RIDGE, T_ROCK, T_SNOWLINE, T_TREE, T_LEAF, T_BUILD,
 T_WIN, T_WAVE, T_GLITTER, T_SHORE, T_ICE, T_FLOE, T_RAIN, T_SNOW, T_GROUND, T_STREET) = range(20)


class Frame:
    """The coordinate grids and per-scene attributes of one batch, plus painting helpers."""

    def __init__(self, scenes: SceneBatch, size: int):
        self.n, self.size = len(scenes), size
        self.px = F32(1.0 / size)
        grid = (np.arange(size, dtype=F32) + F32(0.5)) / F32(size)
        self.y = grid[None, :, None]
        self.x = grid[None, None, :]
        self.iy = np.arange(size)[None, :, None]
        self.ix = np.arange(size)[None, None, :]
        col = (slice(None), None, None)
        self.seed = scenes.noise_seed.astype(np.uint32)[col]
        self.time = scenes.time_index
        self.weather = scenes.weather_index
        self.palette = scenes.palette_index
        self.horizon = scenes.horizon.astype(F32)[col]
        self.layers = scenes.layers[col]
        self.view = scenes.view.astype(F32)[col]
        self.density = scenes.density.astype(F32)[col]
        self.night = (self.time == 2)[col]
        self.snowy = (self.weather == 3)[col]
        self.rainy = (self.weather == 2)[col]
        self.sky_top = SKY_TOP[self.time, scenes.sky_index][:, None, None, :]
        self.sky_horizon = SKY_HORIZON[self.time, scenes.sky_index][:, None, None, :]
        light = LIGHT[self.time] * WEATHER_LIGHT[self.weather][:, None]
        self.light = light[:, None, None, :]
        self.desat = np.clip(DESATURATE[self.time] + WEATHER_DESAT[self.weather], 0, 1)[
            :, None, None, None
        ]
        # The sun sits on the side the viewer faces; low at golden hour.
        self.sun_x = F32(0.5) + F32(0.32) * self.view + F32(0.1) * (self.rand(T_SUN, 0) - 0.5)
        golden = (self.time == 1)[col]
        self.sun_y = np.where(golden, self.horizon - 0.06, 0.12 + 0.12 * self.rand(T_SUN, 1))

    # randomness --------------------------------------------------------------------------
    def rand(self, *keys) -> np.ndarray:
        return hash_uniform(self.seed, *keys)

    def noise(self, tag: int, cells_y: int, cells_x: int) -> np.ndarray:
        """Smooth value noise in [0, 1) on a cells_y x cells_x lattice, shape [B, H, W]."""
        lattice = self.rand(tag, np.arange(cells_y + 1)[None, :, None],
                            np.arange(cells_x + 1)[None, None, :])
        # Separable interpolation: along x on the few lattice rows, then along y at full size.
        rows = _lerp_axis(lattice, self.x[0, 0, :] * cells_x, axis=2)  # [B, cells_y + 1, W]
        return _lerp_axis(rows, self.y[0, :, 0] * cells_y, axis=1)

    def noise1(self, tag: int, cells: int) -> np.ndarray:
        """Smooth 1-D value noise along x in [0, 1), shape [B, 1, W] (ridges, shorelines)."""
        lattice = self.rand(tag, 7777, np.arange(cells + 1)[None, None, :])
        return _lerp_axis(lattice, self.x[0, 0, :] * cells, axis=2)

    # colour --------------------------------------------------------------------------------
    def lit(self, colour: np.ndarray) -> np.ndarray:
        """A surface colour under this scene's light (night dark and blue, overcast grey)."""
        grey = colour.mean(axis=-1, keepdims=True)
        return (colour + (grey - colour) * self.desat) * self.light

    def soft(self, distance: np.ndarray) -> np.ndarray:
        """Coverage in [0, 1] of a pixel whose centre lies ``distance`` inside an edge."""
        return np.clip(distance * F32(self.size) + F32(0.5), 0, 1)


def _smooth(t):
    return t * t * (F32(3) - F32(2) * t)


def _lerp_axis(values: np.ndarray, position: np.ndarray, axis: int) -> np.ndarray:
    """Smoothly interpolate lattice ``values`` along ``axis`` at fractional ``position``s."""
    low = np.floor(position)
    weight = _smooth(position - low)
    low = low.astype(int)
    shape = [1] * values.ndim
    shape[axis] = len(position)
    a = np.take(values, low, axis=axis)
    b = np.take(values, low + 1, axis=axis)
    return a + (b - a) * weight.reshape(shape)


def _pick(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    return table[index][:, None, None, :]


def _paint(canvas, depth, mask, colour, distance):
    """Layer ``colour`` over the canvas with coverage ``mask``; the depth follows it."""
    m = mask[..., None]
    canvas += (colour - canvas) * m
    depth += (distance - depth) * mask


def _haze(f: Frame, colour: np.ndarray, amount) -> np.ndarray:
    """Aerial perspective: far things take the colour of the sky at the horizon."""
    amount = np.asarray(amount, dtype=F32)
    if amount.ndim == 3:
        amount = amount[..., None]
    return colour + (f.sky_horizon - colour) * amount


# --- sky -------------------------------------------------------------------------------------
def paint_sky(f: Frame) -> np.ndarray:
    t = np.clip(f.y / np.maximum(f.horizon, F32(0.25)), 0, 1) ** F32(0.8)  # [B, H, 1]
    sky = f.sky_top + (f.sky_horizon - f.sky_top) * t[..., None]
    overcast = f.time[:, None, None] == 3
    cover = np.where(overcast, F32(0.97), CLOUD_COVER[f.weather][:, None, None])
    # Sun (or moon): a disc with a glow, strongest low in the sky at golden hour.
    dist = np.sqrt((f.x - f.sun_x) ** 2 + (f.y - f.sun_y) ** 2)
    visible = (cover < 0.7) & ~overcast
    glow = np.where(f.night, F32(0.12), np.where(f.time[:, None, None] == 1, F32(0.7), F32(0.3)))
    glow = glow * visible * np.exp(-(dist * F32(1 / 0.16)) ** 2)
    disc = f.soft(np.where(f.night, F32(0.035), F32(0.05)) - dist) * visible
    sun = glow + (1 - glow) * disc
    sky = sky + (_pick(SUN_COLOUR, f.time) - sky) * sun[..., None]
    # Clouds: stretched value noise (few cells across, more down), thresholded by cover.
    detail = f.noise(T_CLOUD2, 12, 6)
    clouds = F32(0.65) * f.noise(T_CLOUD, 6, 3) + F32(0.35) * detail
    amount = np.clip((clouds - (F32(0.95) - cover)) * F32(4), 0, 1) * F32(0.9)
    cloud_colour = _pick(CLOUD_COLOUR, f.time)
    cloud_colour = cloud_colour * np.where((f.rainy | overcast)[..., None], F32(0.8), F32(1))
    shaded = cloud_colour * (F32(1.1) - F32(0.3) * detail)[..., None]
    sky += (shaded - sky) * amount[..., None]
    starry = np.flatnonzero((f.night & (cover < 0.5))[:, 0, 0])
    if len(starry):
        stars = (f.rand(T_STAR, f.iy, f.ix)[starry] < 0.015) & (amount[starry] < 0.3)
        sky[starry] = np.where(stars[..., None], F32(215), sky[starry])
    return sky


# --- shared shapes -----------------------------------------------------------------------------
def ridge(f: Frame, tag: int, base, height, peaks: int, width: float, jag: float) -> np.ndarray:
    """Top edge (y per column, [B, 1, W]) of a mountain ridge: jittered peaks plus roughness."""
    i = np.arange(peaks, dtype=F32)[None, :, None]
    centre = (i + f.rand(tag, 1, i)) * F32(1.3 / peaks) - F32(0.15)
    tall = height * (F32(0.45) + F32(0.55) * f.rand(tag, 2, i))
    wide = width * (F32(0.6) + F32(0.8) * f.rand(tag, 3, i))
    slope = np.maximum(0, 1 - np.abs(f.x - centre) / wide) ** F32(1.4)
    profile = np.max(tall * slope, axis=1, keepdims=True)
    rough = jag * (f.noise1(tag, 24) - F32(0.5)) + F32(0.4 * jag) * (f.noise1(tag + 100, 60) - F32(0.5))
    return base - profile - rough


def face_shade(f: Frame, top: np.ndarray, strength: float) -> np.ndarray:
    """Lit and shaded mountain faces from the ridge's slope and the sun's side, [B, 1, W]."""
    slope = np.gradient(top, axis=-1) * F32(f.size)
    sun_side = np.sign(f.sun_x - F32(0.5) + F32(1e-3))
    return 1 + F32(strength) * np.clip(-slope * sun_side * 2, -1, 1)


def _snowed(f: Frame, colour: np.ndarray, snow_colour=None) -> np.ndarray:
    """Per-scene base colour [B, 1, 1, 3], replaced by snow in snowy scenes."""
    snow = SNOW if snow_colour is None else snow_colour
    return np.where(f.snowy[..., None], snow, colour)


# --- classes -----------------------------------------------------------------------------------
ROCK = _rgb((118, 114, 112), (150, 92, 66), (86, 92, 104), (112, 108, 96))
FOOTHILL = _rgb((58, 82, 52), (128, 98, 64), (60, 72, 62), (70, 110, 58))
MEADOW = _rgb((96, 136, 64), (176, 150, 96), (104, 116, 90), (110, 160, 70))
SNOW = _rgb((240, 244, 250))


def render_mountain(f: Frame, canvas, depth):
    ground, layers = f.horizon, f.layers
    snow = f.lit(SNOW)
    for layer in range(4):
        present = layer < layers
        frac = np.clip(layer / np.maximum(layers - 1, 1), 0, 1).astype(F32)
        base = ground + F32(0.03) + F32(0.12) * frac
        height = F32(0.42) * (1 - F32(0.6) * frac) * (F32(0.8) + F32(0.35) * f.density)
        top = ridge(f, T_RIDGE + 10 * layer, base, height, 3 + layer, 0.28 - 0.04 * layer,
                    0.035 * (1 - 0.5 * frac))
        shade = face_shade(f, top, 0.22)
        grain = f.noise(T_ROCK + layer, 10, 28)
        near = (frac > 0.75)[..., None]
        haze = F32(0.55) * (1 - frac) * (layers > 1)
        rock = _haze(f, f.lit(np.where(near, _pick(FOOTHILL, f.palette), _pick(ROCK, f.palette))),
                     haze)
        # Snow above a ragged snow line, lower in snowy weather; near hills stay bare.
        peak = top.min(axis=-1, keepdims=True)
        line = peak + (base - peak) * np.where(f.snowy, F32(0.75), F32(0.38))
        line = line + F32(0.06) * (f.noise1(T_SNOWLINE + layer, 16) - F32(0.5))
        capped = (f.y < line + F32(0.08) * grain) & ((frac < 0.75) | f.snowy)
        colour = np.where(capped[..., None], _haze(f, snow, haze), rock)
        colour = colour * (shade * (F32(0.85) + F32(0.3) * grain * ~capped))[..., None]
        _paint(canvas, depth, f.soft(f.y - top) * present, colour, F32(0.9) - F32(0.55) * frac)
    # Valley floor in front.
    floor_top = ground + F32(0.2) + F32(0.05) * (f.noise1(T_GROUND, 5) - F32(0.5))
    grass = f.lit(_snowed(f, _pick(MEADOW, f.palette), SNOW * F32(0.93)))
    grass = grass * (F32(0.8) + F32(0.35) * f.noise(T_GROUND, 6, 12))[..., None]
    _paint(canvas, depth, f.soft(f.y - floor_top), grass, F32(0.15))


ICE = _rgb((238, 245, 250), (206, 230, 246), (220, 242, 244))
ICE_DEEP = _rgb((120, 175, 215), (70, 140, 205), (70, 170, 185))
GLACIER_WATER = _rgb((50, 86, 110), (30, 64, 100), (40, 124, 132))
CREVASSE = _rgb((36, 86, 140))


def render_glacier(f: Frame, canvas, depth):
    h = f.horizon
    ice, deep = f.lit(_pick(ICE, f.palette)), f.lit(_pick(ICE_DEEP, f.palette))
    # Low, ice-covered ranges behind: white with a few rock outcrops.
    for layer in range(2):
        top = ridge(f, T_RIDGE + 10 * layer, h + F32(0.02 * layer), F32(0.2 - 0.07 * layer), 4,
                    0.3, 0.03)
        shade = face_shade(f, top, 0.18)[..., None]
        outcrop = (f.noise(T_ROCK + layer, 8, 16) > 0.72)[..., None]
        colour = np.where(outcrop, f.lit(_rgb((110, 114, 124))), ice * F32(0.97))
        colour = _haze(f, colour, F32(0.35 - 0.2 * layer)) * shade
        _paint(canvas, depth, f.soft(f.y - top), colour, F32(0.85 - 0.1 * layer))
    # The glacier body: a crevassed ice field, or (cliff views) a striated ice wall.
    water = h + (1 - h) * (F32(0.45) + F32(0.4) * f.rand(T_ICE, 1))
    water = water + F32(0.02) * (f.noise1(T_ICE, 8) - F32(0.5))
    body_top = h + F32(0.03) + F32(0.02) * (f.noise1(T_ICE + 1, 20) - F32(0.5))
    cliff = (f.density > 0.55)[..., None]
    blend = f.noise(T_ICE, 6, 8)
    below = np.maximum(f.y - h, F32(0.004))
    # Crevasses: broken dark-blue lines crossing the ice, closer together with distance.
    lines = np.log(below) * (F32(2.0) + F32(1.5) * f.density) + F32(1.2) * f.noise(T_ICE + 2, 3, 4)
    width = F32(0.06) + F32(0.5) * f.px / below
    crack = f.soft((width - np.abs(lines - np.round(lines))) * F32(0.3))
    crack *= (blend > 0.35) & (f.y > h + 0.06)
    field = ice + (deep - ice) * (F32(0.4) * blend)[..., None]
    field += (f.lit(CREVASSE) - field) * (F32(0.9) * crack)[..., None]
    striae = F32(0.25) + F32(0.75) * f.noise(T_ICE + 3, 3, 40)
    wall = (ice + (deep - ice) * striae[..., None]) * (F32(0.9) + F32(0.15) * blend)[..., None]
    colour = np.where(cliff, wall, field)
    _paint(canvas, depth, f.soft(f.y - body_top), colour, F32(0.5))
    # Icy water reflecting the sky, with floating floes in front.
    water_colour = f.lit(_pick(GLACIER_WATER, f.palette))
    water_colour = water_colour + (f.sky_horizon * F32(0.85) - water_colour) * F32(0.5)
    floes = f.soft((f.noise(T_FLOE, 14, 8) - F32(0.7)) * F32(0.3))[..., None]
    water_colour = water_colour + (ice - water_colour) * floes
    _paint(canvas, depth, f.soft(f.y - water), water_colour, F32(0.2))


SEA_FAR = _rgb((70, 170, 190), (40, 80, 140), (100, 116, 124), (50, 140, 120))
SEA_NEAR = _rgb((30, 150, 165), (18, 50, 100), (62, 78, 86), (24, 100, 86))
SAND = _rgb((228, 208, 162), (214, 196, 160), (170, 164, 150), (222, 204, 170))
FOAM = _rgb((235, 242, 245))


def render_sea(f: Frame, canvas, depth):
    h = f.horizon
    # A headland on one side for some scenes.
    side = np.where(f.view > 0, F32(-0.05), F32(1.05))
    bump = np.maximum(0, 1 - np.abs(f.x - side) * F32(1 / 0.3)) ** F32(1.5)
    cape = h - F32(0.12) * (f.rand(T_SHORE, 5) > 0.45) * bump - F32(0.02) * f.noise1(T_SHORE, 20)
    cape_colour = _haze(f, f.lit(_rgb((70, 88, 64))), F32(0.35))
    cape_colour = cape_colour * (F32(0.8) + F32(0.4) * f.noise(T_ROCK, 8, 8))[..., None]
    _paint(canvas, depth, f.soft(f.y - cape) * (cape < h - f.px), cape_colour, F32(0.7))
    # Water: lighter and bluer with distance, waves whose spacing shrinks toward the horizon.
    below = np.maximum(f.y - h, F32(0.0))
    t = np.clip(below / (1 - h), 0, 1)
    far, near = f.lit(_pick(SEA_FAR, f.palette)), f.lit(_pick(SEA_NEAR, f.palette))
    far = far + (f.sky_horizon - far) * F32(0.35)
    water = far + (near - far) * t[..., None]  # [B, H, 1, 3]: a vertical gradient
    phase = F32(1.6) / (below + F32(0.02)) + F32(5) * f.noise(T_WAVE, 4, 6)
    swell = np.sin(phase * (F32(0.8) + F32(0.6) * f.density))
    crest = (swell > 0.82) & (f.noise(T_WAVE + 1, 8, 10) > 0.5 - 0.25 * f.density)
    water = water * (F32(0.92) + F32(0.1) * swell)[..., None]
    water += (f.lit(FOAM) - water) * (F32(0.7) * crest * np.clip(below * 6, 0, 1))[..., None]
    # Glitter of the sun or moon on the water.
    spread = F32(0.03) + F32(0.2) * below
    shines = (CLOUD_COVER[f.weather][:, None, None] < 0.7) & (f.time[:, None, None] != 3)
    glitter = (np.abs(f.x - f.sun_x) < spread) & shines & (swell > 0.2)
    glitter &= f.rand(T_GLITTER, f.iy, f.ix) < 0.45
    water += (_pick(SUN_COLOUR, f.time) - water) * (F32(0.75) * glitter)[..., None]
    _paint(canvas, depth, f.soft(f.y - h), water, F32(1) - F32(0.9) * t)
    # A beach with a foam line in front for denser compositions.
    beach = f.density > BEACH_DENSITY
    shore = h + (1 - h) * (F32(0.62) + F32(0.25) * f.rand(T_SHORE, 1))
    wobble = F32(6.28) * (f.x * (1 + f.rand(T_SHORE, 2)) + f.rand(T_SHORE, 3))
    shore = shore + F32(0.03) * np.sin(wobble)
    sand = f.lit(_snowed(f, _pick(SAND, f.palette)))
    sand = sand * (F32(0.9) + F32(0.15) * f.noise(T_SHORE, 12, 12))[..., None]
    foam_line = f.soft(F32(1.5) * f.px - np.abs(f.y - shore))
    sand += (f.lit(FOAM) - sand) * (foam_line * (f.y < shore + 3 * f.px))[..., None]
    _paint(canvas, depth, np.maximum(f.soft(f.y - shore), foam_line) * beach, sand, F32(0.1))


LEAVES = {
    "summer": _rgb((60, 120, 48), (84, 138, 52), (46, 100, 50)),
    "autumn": _rgb((214, 110, 34), (190, 58, 36), (226, 172, 52)),
    "pine": _rgb((32, 78, 52), (40, 90, 60), (28, 66, 48)),
    "birch": _rgb((140, 176, 70), (110, 160, 60), (170, 186, 80)),
}
LEAF_TABLE = np.stack([LEAVES[k] for k in ("summer", "autumn", "pine", "birch")])
CONIFER_SHARE = np.array([0.35, 0.15, 0.95, 0.1], dtype=F32)
TRUNK = _rgb((78, 58, 42), (84, 62, 44), (66, 50, 38), (220, 220, 214))
FOREST_FLOOR = _rgb((70, 110, 46), (150, 96, 44), (62, 80, 46), (110, 140, 60))


def render_forest(f: Frame, canvas, depth):
    ground = f.horizon
    # Distant tree line: a ragged band just above the ground.
    line = ground - F32(0.12) - F32(0.1) * f.noise1(T_TREE, 6) - F32(0.04) * np.abs(
        np.sin(f.x * F32(90) + F32(6.28) * f.noise1(T_TREE + 1, 10)))
    far = _haze(f, f.lit(LEAF_TABLE[f.palette, 2][:, None, None, :] * F32(0.85)), F32(0.45))
    _paint(canvas, depth, f.soft(f.y - line), far, F32(0.8))
    floor = f.lit(_snowed(f, _pick(FOREST_FLOOR, f.palette), SNOW * F32(0.95)))
    floor = floor * (F32(0.8) + F32(0.35) * f.noise(T_GROUND, 8, 16))[..., None]
    _paint(canvas, depth, f.soft(f.y - ground), floor, F32(0.3))
    leaf_texture = F32(0.75) + F32(0.45) * f.noise(T_LEAF, 18, 18)
    conifer_share = CONIFER_SHARE[f.palette][:, None, None]
    sun_side = np.sign(f.sun_x - F32(0.5))
    snow = f.lit(SNOW * F32(0.95))
    any_snow = bool(f.snowy.any())
    for row in range(4):
        present = row < f.layers
        frac = np.clip(row / np.maximum(f.layers - 1, 1), 0, 1).astype(F32)
        count = np.round(F32(14) - F32(9) * frac + F32(5) * f.density)  # trees across, [B,1,1]
        foot = ground + (1 - ground) * F32(0.85) * frac
        tall = (F32(0.25) + F32(0.75) * frac) * (F32(0.55) + F32(0.4) * f.density)
        # One tree per column cell: every per-tree number is a [B, 1, W] column profile.
        cell = np.floor(f.x * count + F32(0.37 * row))
        r = [f.rand(T_TREE + 10 * row, cell, k) for k in range(6)]
        centre = (cell + F32(0.3) + F32(0.4) * r[0] - F32(0.37 * row)) / count
        height = tall * (F32(0.65) + F32(0.5) * r[1])
        base = foot + F32(0.04) * (r[2] - F32(0.5)) * frac
        top = base - height
        half = F32(0.5) / count * (F32(0.85) + F32(0.4) * r[3])
        offset = f.x - centre
        dx = np.abs(offset)
        conifer = r[4] < conifer_share
        # Conifers: tiered triangles; broadleaves: bumpy ellipses on a trunk.
        t = (f.y - top) / (height * F32(0.85))
        tiers = (t * F32(4)) % F32(1)
        cone = f.soft(np.minimum(half * t * (F32(0.7) + F32(0.3) * tiers) - dx,
                                 np.minimum(t, 1 - t) * height))
        crown_y = top + F32(0.38) * height
        ellipse = (offset / half) ** 2 + ((f.y - crown_y) / (F32(0.4) * height)) ** 2
        blob = f.soft((F32(1.25) - ellipse - F32(0.35) * leaf_texture) * half)
        crown = np.where(conifer, cone, blob) * present
        trunk_w = np.maximum(half * F32(0.14), f.px * F32(0.6))
        trunk = f.soft(trunk_w - dx) * (f.y > top + F32(0.3) * height) * f.soft(base - f.y)
        haze = F32(0.4) * (1 - frac) * (f.layers > 1)
        leaves = f.lit(LEAF_TABLE[f.palette[:, None, None], (r[5] * 3).astype(int)])
        leaves = _haze(f, leaves, haze[..., None])  # [B, 1, W, 3]
        lighting = F32(1) - F32(0.25) * np.clip(offset / half * sun_side, -1, 1)
        leaves = leaves * (leaf_texture * lighting)[..., None]
        if any_snow:
            cap = (f.y - crown_y) / (F32(0.4) * height) < F32(0.1) * leaf_texture - F32(0.5)
            on_top = np.where(conifer, tiers < 0.35, cap)
            snowed = (f.snowy & on_top)[..., None]
            leaves = np.where(snowed, snow, leaves)
        trunk_colour = _haze(f, f.lit(_pick(TRUNK, f.palette)), haze)
        _paint(canvas, depth, trunk * present, trunk_colour, F32(0.7) - F32(0.5) * frac)
        _paint(canvas, depth, crown, leaves, F32(0.7) - F32(0.5) * frac)


FACADE = {
    "brick": _rgb((150, 72, 52), (128, 60, 46), (170, 96, 70)),
    "concrete": _rgb((160, 160, 156), (130, 132, 134), (186, 182, 174)),
    "glass": _rgb((70, 110, 140), (90, 130, 150), (60, 90, 120)),
    "sandstone": _rgb((206, 178, 130), (190, 160, 116), (220, 196, 150)),
    "pastel": _rgb((220, 170, 170), (170, 200, 210), (230, 214, 150)),
}
FACADE_TABLE = np.stack([FACADE[k] for k in ("brick", "concrete", "glass", "sandstone", "pastel")])
GLASS = _rgb((52, 62, 78))


def _facade(f: Frame, left, right, top, bottom, r, tag, palette_rows, glassy, haze):
    """Colour and coverage of rectangular facades with a window grid (per column params)."""
    width = np.maximum(right - left, f.px)
    inside = f.soft(np.minimum(np.minimum(f.x - left, right - f.x),
                               np.minimum(f.y - top, bottom - f.y)))
    facade = palette_rows[np.arange(f.n)[:, None, None], (r[3] * 3).astype(int)]  # [B, 1, W, 3]
    facade = _haze(f, f.lit(facade), haze)
    columns = np.floor(F32(3) + F32(6) * r[4])
    storey = F32(0.045) + F32(0.04) * r[5]
    u = (f.x - left) / width * columns
    v = (f.y - top - F32(0.02)) / storey
    pane = np.where(glassy, F32(0.42), F32(0.3))
    window = (np.abs(u % 1 - F32(0.5)) < pane) & (np.abs(v % 1 - F32(0.55)) < pane) & (v > 0.3)
    window &= f.y < bottom - F32(0.03)
    glass = _haze(f, f.lit(f.sky_horizon * F32(0.5) + GLASS * F32(0.5)), haze)
    colour = np.where(window[..., None], glass, facade)
    nights = np.flatnonzero(f.night[:, 0, 0])
    if len(nights):  # lit windows at night, about half of them
        lit = f.rand(tag, np.floor(u), np.floor(v), r[0] * 1000)[nights] < F32(0.55)
        colour[nights] = np.where((window[nights] & lit)[..., None], WINDOW_LIGHT, colour[nights])
    shade = np.where((f.x - left) < width * F32(0.12), F32(0.72), F32(1))  # return wall
    shade = shade * np.where((f.y - top) < F32(0.018), F32(0.8), F32(1))  # roof ledge
    return colour * shade[..., None], inside


def render_buildings(f: Frame, canvas, depth):
    ground = f.horizon
    palette_rows = FACADE_TABLE[f.palette]
    glassy = (f.palette == 2)[:, None, None]
    for row in range(2):
        # Back row: many tall towers in the haze; front row: a few big facades filling the view.
        count = np.round(np.where(row == 0, F32(5) + F32(4) * f.density,
                                  F32(1.5) + F32(3.5) * f.density))
        cell = np.floor(f.x * count + F32(0.5 * row))
        r = [f.rand(T_BUILD + 10 * row, cell, k) for k in range(6)]
        left = (cell + F32(0.08) * r[1] - F32(0.5 * row)) / count
        right = (cell + 1 - F32(0.1) * r[2] * (row == 0) - F32(0.5 * row)) / count
        top = np.where(row == 0, F32(0.05) + F32(0.3) * r[0], F32(0.12) + F32(0.4) * r[0])
        bottom = ground + F32(0.02 * row)
        haze = F32(0.35 * (1 - row))
        colour, inside = _facade(f, left, right, top, bottom, r, T_WIN + row, palette_rows,
                                 glassy, haze)
        _paint(canvas, depth, inside, colour, F32(0.6 - 0.3 * row))
    pavement = f.lit(_snowed(f, _rgb((150, 148, 144)), SNOW * F32(0.92)))
    pavement = pavement * (F32(0.85) + F32(0.2) * f.noise(T_GROUND, 4, 16))[..., None]
    _paint(canvas, depth, f.soft(f.y - ground - F32(0.02)), pavement, F32(0.1))


ROAD = _rgb((70, 70, 74), (92, 92, 94), (110, 100, 92), (76, 76, 80))
MARKING = _rgb((232, 228, 205))
KERB, PAVEMENT = _rgb((186, 184, 178)), _rgb((150, 146, 140))


def render_street(f: Frame, canvas, depth):
    vx = F32(0.5) + F32(0.18) * f.view
    vy = f.horizon
    dx = f.x - vx
    below = np.maximum(f.y - vy, F32(1e-4))
    spread = np.abs(dx) / below  # lateral distance on the ground plane (constant along a line)
    road_half = F32(0.9) + F32(0.5) * f.density
    kerb = road_half * F32(1.08)
    walk = road_half * F32(1.7)
    # Ground: road (asphalt, cobbles, snow, wet), markings, kerbs, pavements.
    cobbled = (f.palette == 2)[:, None, None]
    road = _pick(ROAD, f.palette)
    road = np.where(f.rainy[..., None], road * F32(0.7) + f.sky_horizon * F32(0.25), road)
    road = f.lit(_snowed(f, road, SNOW * F32(0.9)))
    grain = F32(0.9) + F32(0.15) * f.noise(T_STREET, 10, 10)
    setts = cobbled & (((F32(6) / below) % 1 < 0.15) | ((spread * 6) % 1 < 0.1))
    ruts = f.snowy & (np.abs(spread - road_half * F32(0.45)) < 0.08)
    grain = grain * np.where(setts, F32(0.7), F32(1)) * np.where(ruts, F32(0.8), F32(1))
    dash = (spread < F32(0.035) + F32(0.6) * f.px / below) & ((F32(0.9) / below) % 1 < 0.5)
    edge = np.abs(spread - road_half * F32(0.93)) < F32(0.025) + F32(0.4) * f.px / below
    marking = (dash | edge) & ~cobbled & (f.y > vy + 2 * f.px)
    side = np.where((spread < kerb)[..., None], KERB, PAVEMENT)
    side = f.lit(np.where(f.snowy[..., None], SNOW * F32(0.95), side))
    ground = np.where((spread < road_half)[..., None], road * grain[..., None], side)
    ground = np.where(marking[..., None], f.lit(MARKING), ground)
    ground_mask = f.soft(f.y - vy) * (spread < walk)
    _paint(canvas, depth, ground_mask, ground, np.clip(F32(0.03) / below, 0, 1))
    # Side walls: vertical planes at the pavement's outer edge, in perspective; building height
    # and facade colour change along the street (block index from inverse distance).
    ax = np.maximum(np.abs(dx), F32(1e-4))
    rise = (vy - f.y) / ax  # height on the wall per unit of lateral distance
    along = F32(0.25) / ax  # grows with distance down the street
    block = np.floor(along * (F32(0.6) + F32(0.8) * f.density))
    right_side = dx > 0
    r = [f.rand(T_STREET + 1, block, right_side, k) for k in range(2)]
    wall_top = (F32(0.8) + F32(1.6) * r[0]) / walk
    on_wall = (spread >= walk) | (f.y < vy)
    wall = f.soft((wall_top - rise) * ax) * on_wall
    facade = f.lit(FACADE_TABLE[f.palette[:, None, None], (r[1] * 3).astype(int)])
    u = along * F32(6)
    v = rise * walk * F32(3.5)
    window = (np.abs(u % 1 - 0.5) < 0.28) & (np.abs(v % 1 - 0.5) < 0.25) & (v > 0.6)
    colour = np.where(window[..., None], f.lit(GLASS + f.sky_horizon * F32(0.2)), facade)
    nights = np.flatnonzero(f.night[:, 0, 0])
    if len(nights):
        lit = f.rand(T_WIN + 5, np.floor(u), np.floor(v), right_side)[nights] < 0.5
        colour[nights] = np.where((window[nights] & lit)[..., None], WINDOW_LIGHT, colour[nights])
    shade = np.where(right_side == (f.sun_x > 0.5), F32(0.75), F32(1.0))
    wall_depth = np.clip(F32(0.04) / ax, 0, 1)
    _paint(canvas, depth, wall, colour * shade[..., None], wall_depth)
    # Lamp posts along the kerbs.
    lamp_at = (along * F32(1.2)) % 1
    post = (np.abs(spread - kerb * F32(1.05)) < F32(0.03) + f.px / below) & (lamp_at < 0.12)
    _paint(canvas, depth, (post & (f.y > vy)).astype(F32), f.lit(_rgb((50, 52, 56))), wall_depth)


RENDERERS = {
    "buildings": render_buildings,
    "forest": render_forest,
    "glacier": render_glacier,
    "mountain": render_mountain,
    "sea": render_sea,
    "street": render_street,
}


# --- weather -----------------------------------------------------------------------------------
def apply_weather(f: Frame, canvas: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Fog and haze by depth, then rain streaks or snowflakes (only where it rains or snows)."""
    density = FOG_DENSITY[f.weather][:, None, None]
    fog = 1 - np.exp(-density * depth * depth)  # squared: near things stay clear
    canvas += (_pick(FOG_COLOUR, f.time) - canvas) * fog[..., None]
    rainy = np.flatnonzero(f.rainy[:, 0, 0])
    if len(rainy):  # short slanted streaks along lines x + 0.3 y
        seed = f.seed[rainy]
        slant = np.floor(f.ix + f.iy * F32(0.3))
        run = hash_uniform(seed, T_RAIN, slant)
        streak = hash_uniform(seed, T_RAIN + 1, slant, np.floor(f.iy / 5 + run * 5)) < 0.07
        canvas[rainy] += (F32(200) - canvas[rainy]) * (F32(0.35) * streak)[..., None]
    snowy = np.flatnonzero(f.snowy[:, 0, 0])
    if len(snowy):  # scattered flakes, some twice as big
        seed = f.seed[snowy]
        flake = (hash_uniform(seed, T_SNOW, f.iy, f.ix) < 0.03) | (
            hash_uniform(seed, T_SNOW + 1, f.iy // 2, f.ix // 2) < 0.012)
        canvas[snowy] += (F32(248) - canvas[snowy]) * (F32(0.85) * flake)[..., None]
    return canvas


def render_scenes(scenes: SceneBatch, size: int = 64) -> np.ndarray:
    """Render scenes to uint8 RGB images, shape [B, size, size, 3]."""
    if isinstance(size, bool) or int(size) != size or size < MIN_SIZE:
        raise ConfigError(f"image size must be an integer >= {MIN_SIZE}, got {size}")
    size = int(size)
    images = np.empty((len(scenes), size, size, 3), dtype=np.uint8)
    for k, name in enumerate(CLASSES):
        rows = np.flatnonzero(scenes.class_index == k)
        if len(rows) == 0:
            continue
        f = Frame(scenes.select(rows), size)
        canvas = paint_sky(f)
        depth = np.ones(canvas.shape[:3], dtype=F32)
        RENDERERS[name](f, canvas, depth)
        canvas = apply_weather(f, canvas, depth)
        images[rows] = np.clip(canvas + F32(0.5), 0, 255).astype(np.uint8)
    return images


def keep_freed_memory(megabytes: int = 256) -> bool:
    """Ask glibc malloc to keep freed memory instead of returning it to the system at once.

    Rendering allocates many short-lived arrays of a few megabytes; by default glibc maps and
    unmaps each one, and the page faults cost about a third of the render time. This is a
    process-wide setting, so only entry points (the CLI, benchmarks) call it. Returns whether
    it took effect (False off glibc).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    size = megabytes << 20
    return bool(mallopt(m_mmap_threshold, 32 << 20) and mallopt(m_trim_threshold, size)
                and mallopt(m_top_pad, 64 << 20))
