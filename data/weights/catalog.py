"""The model catalogue: every published or starter model artbias knows, as data.

``catalog.json`` holds one entry per model; this module reads and checks it. To add a
model, add an entry there. Fields of an entry:

- ``name``: what users type (``artbias models pull NAME``, ``load_generator(NAME)``).
- ``kind``: ``generator``, ``clip`` or ``classifier``; ``family``: the loader family
  (``dcgan``, ``stylegan2``, ``biggan``, ``diffusion``, ``open_clip``, ``resnet``).
- ``source``: where the weights come from, one of
  ``{"files": [{name, url, sha256, size}]}`` (plain downloads),
  ``{"hf_repo": ID, "revision": REV, "files": [{name, sha256, size}]}`` (Hugging Face hub),
  ``{"zoo": DIR}`` (the starter zoo shipped under ``data/zoo/DIR``).
  ``sha256``/``size`` are null where unknown; ``sha256_prefix`` (torchvision's habit of
  naming files by a hash prefix) is checked when given.
- ``licence`` and ``non_commercial`` (true for licences that forbid commercial use),
  ``training_data``, ``latent`` (sizes of the latent inputs), ``image_size``,
  ``output_range``, ``preprocessing`` (CLIP/classifier input: mean, std, size,
  interpolation), ``options`` (keyword options passed to the family's loader).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from data.errors import ConfigError

CATALOG_PATH = Path(__file__).with_name("catalog.json")
KINDS = ("generator", "clip", "classifier")
REQUIRED_FIELDS = (
    "name", "kind", "family", "description", "source", "licence", "non_commercial",
    "training_data", "latent", "image_size", "output_range", "preprocessing", "options",
)


@dataclass(frozen=True)
class ModelFile:
    """One file of a model, as it is named on disk inside the model's folder."""

    name: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    sha256_prefix: str | None = None


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str
    family: str
    description: str
    licence: str
    non_commercial: bool
    training_data: str
    files: tuple[ModelFile, ...]
    zoo: str | None = None
    hf_repo: str | None = None
    hf_revision: str | None = None
    latent: dict | None = None
    image_size: int | None = None
    output_range: list | None = None
    preprocessing: dict | None = None
    options: dict = field(default_factory=dict)
    notes: str | None = None

    @property
    def source_kind(self) -> str:
        """``zoo``, ``hf`` or ``url``."""
        if self.zoo is not None:
            return "zoo"
        return "hf" if self.hf_repo is not None else "url"

    @property
    def size(self) -> int | None:
        """Total size in bytes when every file's size is known."""
        sizes = [f.size for f in self.files]
        return sum(sizes) if sizes and all(s is not None for s in sizes) else None

    @property
    def where_from(self) -> str:
        """A human-readable origin: the zoo folder, the hub id or the first URL."""
        if self.zoo is not None:
            return f"data/zoo/{self.zoo}"
        if self.hf_repo is not None:
            return f"https://huggingface.co/{self.hf_repo}"
        return self.files[0].url or "?"


def _entry_from_json(raw: dict[str, Any]) -> ModelEntry:
    name = raw.get("name", "?")
    missing = [key for key in REQUIRED_FIELDS if key not in raw]
    if missing:
        raise ConfigError(f"model catalogue entry {name!r} lacks fields {missing}")
    if raw["kind"] not in KINDS:
        raise ConfigError(f"model catalogue entry {name!r}: kind {raw['kind']!r} is not one of {KINDS}")
    source = raw["source"]
    if "zoo" in source:
        files: tuple[ModelFile, ...] = ()
    elif "files" in source and source["files"]:
        files = tuple(ModelFile(**f) for f in source["files"])
        if "hf_repo" not in source and any(f.url is None for f in files):
            raise ConfigError(f"model catalogue entry {name!r}: every downloadable file needs a url")
    else:
        raise ConfigError(f"model catalogue entry {name!r}: source needs 'zoo' or a non-empty 'files' list")
    return ModelEntry(
        name=name,
        kind=raw["kind"],
        family=raw["family"],
        description=raw["description"],
        licence=raw["licence"],
        non_commercial=bool(raw["non_commercial"]),
        training_data=raw["training_data"],
        files=files,
        zoo=source.get("zoo"),
        hf_repo=source.get("hf_repo"),
        hf_revision=source.get("revision"),
        latent=raw["latent"],
        image_size=raw["image_size"],
        output_range=raw["output_range"],
        preprocessing=raw["preprocessing"],
        options=dict(raw["options"]),
        notes=raw.get("notes"),
    )


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, ModelEntry]:
    try:
        raw = json.loads(CATALOG_PATH.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read the model catalogue {CATALOG_PATH}: {error}") from error
    entries: dict[str, ModelEntry] = {}
    for item in raw["models"]:
        entry = _entry_from_json(item)
        if entry.name in entries:
            raise ConfigError(f"model catalogue lists {entry.name!r} twice")
        entries[entry.name] = entry
    return entries


def list_models(kind: str | None = None) -> list[ModelEntry]:
    """Catalogue entries, optionally only those of one kind, in catalogue order."""
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; use one of {KINDS}")
    return [e for e in _catalogue().values() if kind is None or e.kind == kind]


def get_entry(name: str) -> ModelEntry:
    """The entry called ``name``; an unknown name is a ``ConfigError`` with close matches."""
    entries = _catalogue()
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown model {name!r}{hint} ('artbias models list' shows them all)")
