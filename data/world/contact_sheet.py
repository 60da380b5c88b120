"""Contact sheets of the world: one row per class, columns varied in time and weather.

Regenerate the committed pictures with ``artbias data sheet --out docs/world_contact_sheet.png``
(or ``python -m data.world.contact_sheet --out ...``); ``--per-class DIR`` also writes a larger
sheet per class.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from data.world.params import CLASSES, PALETTES, WEATHER_WEIGHTS, WEATHERS, SceneBatch, make_scenes
from data.world.render import render_scenes

# Columns of the class sheet: (time, preferred weather); a weather the class never has
# (snow at sea, rain on glaciers) falls back to clear.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("day", "clear"),
    ("golden", "clear"),
    ("day", "fog"),
    ("night", "clear"),
    ("overcast", "rain"),
    ("day", "snow"),
    ("golden", "fog"),
    ("overcast", "clear"),
)
LABEL_WIDTH = 72


def sheet_scenes(scene_class: str, columns: int = len(COLUMNS), row: int = 0) -> SceneBatch:
    """``columns`` scenes of one class that walk through times, weathers and palettes."""
    palettes = PALETTES[scene_class]
    allowed = WEATHER_WEIGHTS[scene_class]
    scenes = []
    for j in range(columns):
        time, weather = COLUMNS[(j + 3 * row) % len(COLUMNS)]
        if allowed[WEATHERS.index(weather)] == 0:
            weather = "clear"
        scenes.append(
            make_scenes(
                scene_class,
                time,
                weather,
                palette=palettes[(j + row) % len(palettes)],
                sky=j + row,
                horizon=None,
                layers=2 + (j + row) % 3,
                view=((j * 0.37 + row * 0.21) % 1.0) * 2 - 1,
                density=((j * 0.61 + row * 0.29) % 1.0),
                noise_seed=1000 * (row + 1) + 17 * j + CLASSES.index(scene_class),
            )
        )
    return SceneBatch.concat(scenes)


def _grid(images: np.ndarray, rows: int, columns: int, scale: int, gap: int) -> Image.Image:
    size = images.shape[1] * scale
    sheet = Image.new("RGB", (columns * (size + gap) + gap, rows * (size + gap) + gap), "white")
    for i, image in enumerate(images):
        tile = Image.fromarray(image).resize((size, size), Image.Resampling.NEAREST)
        r, c = divmod(i, columns)
        sheet.paste(tile, (gap + c * (size + gap), gap + r * (size + gap)))
    return sheet


def contact_sheet(size: int = 64, scale: int = 2, columns: int = len(COLUMNS)) -> Image.Image:
    """One labelled row per class."""
    scenes = SceneBatch.concat([sheet_scenes(c, columns) for c in CLASSES])
    grid = _grid(render_scenes(scenes, size), len(CLASSES), columns, scale, gap=4)
    sheet = Image.new("RGB", (grid.width + LABEL_WIDTH, grid.height), "white")
    sheet.paste(grid, (LABEL_WIDTH, 0))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    tile = size * scale + 4
    for r, name in enumerate(CLASSES):
        draw.text((6, 4 + r * tile + tile // 2 - 6), name, fill="black", font=font)
    return sheet


def class_sheet(scene_class: str, size: int = 64, scale: int = 2, rows: int = 4,
                columns: int = len(COLUMNS)) -> Image.Image:
    scenes = SceneBatch.concat([sheet_scenes(scene_class, columns, row) for row in range(rows)])
    return _grid(render_scenes(scenes, size), rows, columns, scale, gap=4)


def write_sheets(out: Path, per_class: Path | None = None, size: int = 64, scale: int = 2) -> list[Path]:
    """Write the main sheet (and optionally one per class); returns the paths written."""
    written = []
    out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(size, scale).save(out)
    written.append(out)
    if per_class is not None:
        per_class.mkdir(parents=True, exist_ok=True)
        for name in CLASSES:
            path = per_class / f"world_{name}.png"
            class_sheet(name, size, scale).save(path)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/world_contact_sheet.png"))
    parser.add_argument("--per-class", type=Path, default=None, help="folder for class sheets")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--scale", type=int, default=2)
    args = parser.parse_args(argv)
    for path in write_sheets(args.out, args.per_class, args.size, args.scale):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
