"""Model catalogue and weights resolution: which models exist and where their files are."""

from data.weights.catalog import ModelEntry, ModelFile, get_entry, list_models
from data.weights.resolve import (
    cache_dir,
    download,
    locate,
    offline,
    resolve_weights,
    sha256_file,
    verify_model,
)

__all__ = [
    "ModelEntry",
    "ModelFile",
    "cache_dir",
    "download",
    "get_entry",
    "list_models",
    "locate",
    "offline",
    "resolve_weights",
    "sha256_file",
    "verify_model",
]
