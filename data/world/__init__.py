"""The procedural scenery world: scene parameters, renderer, captions, aesthetic prior, builder."""

from data.world.params import CLASSES, PALETTES, SKIES, TIMES, WEATHERS, SceneBatch

__all__ = ["CLASSES", "PALETTES", "SKIES", "TIMES", "WEATHERS", "SceneBatch"]
