"""The model catalogue: every published or starter model artbias knows, as data.

``catalog.json`` holds one entry per model; this module reads and checks it. To add a
model, add an entry there. Fields of an entry:

- ``name``: what users type (``artbias models pull NAME``, ``load_generator(NAME)``).
- ``kind``: ``generator``, ``clip`` or ``classifier``; ``family``: the loader family
  (``dcgan``, ``stylegan2``, ``biggan``, ``diffusion``, ``open_clip``, ``resnet``).
- ``source``: where the weights come from, one of
  ``{"files": [{name, url, sha256, size}]}`` (plain downloads),
  ``{"hf_repo": ID, "revision": REV, "files": [{name, sha256, size}]}`` (Hugging Face hub),
  ``{"zoo": DIR, "files": [{name, sha256}]}`` (the starter zoo shipped under
  ``data/zoo/DIR``; its files are the ones loading reads, config and weights), or
  ``{"builtin": true}`` (a model that is code, with no weights: the world renderer).
  Every file carries its full ``sha256``, or ``"sha256": null`` and ``sha256_unknown``
  saying why none is recorded (never a guessed value); ``size`` and ``sha256_prefix`` (a
  prefix a URL carries, torchvision style) are checked too when given. Downloads and
  ``artbias models verify`` check whatever is recorded.
- ``licence`` and ``non_commercial`` (true for licences that forbid commercial use),
  ``training_data``, ``options`` (keyword options passed to the family's loader).
- ``preprocessing`` (CLIP and classifier entries, required): mean, std, size, interpolation
  (and ``resize_size`` / ``resize_mode``). The CLIP loader (``search.clip``) and the
  classifier (``classifier.pretrained``, ``classifier.model``) take their input
  preprocessing from here: it travels with the weights.
- optional: ``image_size`` (a published generator's output size, shown by ``models list``),
  ``notes``.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from data.errors import ConfigError

CATALOG_PATH = Path(__file__).with_name("catalog.json")
KINDS = ("generator", "clip", "classifier")
REQUIRED_FIELDS = (
    "name", "kind", "family", "description", "source", "licence", "non_commercial",
    "training_data", "options",
)
OPTIONAL_FIELDS = ("image_size", "preprocessing", "notes")
PREPROCESSED_KINDS = ("clip", "classifier")  # kinds whose entries must carry preprocessing
PREPROCESSING_KEYS = ("mean", "std", "size", "interpolation")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ModelFile:
    """One file of a model, as it is named on disk inside the model's folder."""

    name: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    sha256_prefix: str | None = None
    sha256_unknown: str | None = None  # why no sha256 is recorded (when ``sha256`` is None)


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
    image_size: int | None = None
    preprocessing: dict | None = None
    options: dict = field(default_factory=dict)
    notes: str | None = None
    builtin: bool = False  # code, no weights to find or download

    @property
    def source_kind(self) -> str:
        """``builtin``, ``zoo``, ``hf`` or ``url``."""
        if self.builtin:
            return "builtin"
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
        if self.builtin:
            return "built into artbias (no weights)"
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
    unknown = sorted(set(raw) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise ConfigError(f"model catalogue entry {name!r} has fields nothing reads: {unknown}")
    if raw["kind"] not in KINDS:
        raise ConfigError(f"model catalogue entry {name!r}: kind {raw['kind']!r} is not one of {KINDS}")
    preprocessing = raw.get("preprocessing")
    if raw["kind"] in PREPROCESSED_KINDS:
        absent = [key for key in PREPROCESSING_KEYS if key not in (preprocessing or {})]
        if absent:
            raise ConfigError(f"model catalogue entry {name!r}: a {raw['kind']} entry needs preprocessing with {absent}")
    elif preprocessing is not None:
        raise ConfigError(f"model catalogue entry {name!r}: a {raw['kind']} takes no preprocessing")
    source = raw["source"]
    if source.get("builtin") is True:
        if set(source) != {"builtin"}:
            raise ConfigError(f"model catalogue entry {name!r}: a builtin source has no files or other keys")
        return ModelEntry(name=name, kind=raw["kind"], family=raw["family"], description=raw["description"],
                          licence=raw["licence"], non_commercial=bool(raw["non_commercial"]),
                          training_data=raw["training_data"], files=(), options=dict(raw["options"]),
                          image_size=raw.get("image_size"), notes=raw.get("notes"), builtin=True)
    if not source.get("files"):
        raise ConfigError(f"model catalogue entry {name!r}: source needs a non-empty 'files' list")
    try:
        files = tuple(ModelFile(**f) for f in source["files"])
    except TypeError as error:
        raise ConfigError(f"model catalogue entry {name!r}: a file entry is malformed ({error})") from None
    downloadable = "zoo" not in source and "hf_repo" not in source
    if downloadable and any(f.url is None for f in files):
        raise ConfigError(f"model catalogue entry {name!r}: every downloadable file needs a url")
    for spec in files:
        if spec.sha256 is not None and not _SHA256.fullmatch(spec.sha256):
            raise ConfigError(f"model catalogue entry {name!r}: {spec.name} sha256 is not 64 hex digits")
        if spec.sha256 is None and not (spec.sha256_unknown or "").strip():
            raise ConfigError(f"model catalogue entry {name!r}: {spec.name} needs a sha256 or sha256_unknown saying why")
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
        image_size=raw.get("image_size"),
        preprocessing=preprocessing,
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


def find_entry(name: str) -> ModelEntry | None:
    """The entry called ``name``, or None."""
    return _catalogue().get(name)


def local_folder(name: str) -> Path | None:
    """The existing folder a user-given model name reads, or None (a catalogue name, a tag, a
    file or nothing). The one rule for every kind of model: a name the catalogue knows always
    means the catalogue model, even where a folder of that name exists in the working directory
    (an output folder named after its model); any other name reads the folder it names. To read
    such a folder, write it as a path: ``./clip-world``, an absolute or a ``~`` path."""
    if not isinstance(name, str) or not name.strip() or find_entry(name) is not None:
        return None
    path = Path(name).expanduser()
    return path if path.is_dir() else None


def suggest(name: str, kind: str) -> str:
    """A hint for a mistyped ``kind`` name: close catalogue names, else all of that kind."""
    names = [entry.name for entry in list_models(kind)]
    close = difflib.get_close_matches(name, names, n=2, cutoff=0.5)
    return f"; did you mean {' or '.join(close)}?" if close else f" (catalogue {kind}s: {', '.join(names)})"


def get_entry(name: str) -> ModelEntry:
    """The entry called ``name``; an unknown name is a ``ConfigError`` with close matches."""
    entries = _catalogue()
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown model {name!r}{hint} ('artbias models list' shows them all)")
