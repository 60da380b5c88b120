"""What every result records so that it can be reproduced: versions of the code and stack."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

# Distributions whose versions change results; recorded with every run.
TRACKED_DISTRIBUTIONS = (
    "artbias",
    "torch",
    "torchvision",
    "numpy",
    "open_clip_torch",
    "diffusers",
    "pymoo",
    "duckdb",
    "scipy",
    "statsmodels",
    "prdc",
    "scikit-learn",
)


def package_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Versions of Python, the platform and the tracked distributions (None if absent)."""
    found: dict[str, str | None] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    for name in TRACKED_DISTRIBUTIONS:
        found[name] = package_version(name)
    return found
