"""Finding a model's weights on disk, or fetching them: one mechanism for every model.

Order: an explicit path the caller gives -> the artbias cache (``$ARTBIAS_CACHE``, else the
platform's user cache folder + ``artbias``) -> the starter zoo shipped in ``data/zoo`` ->
(Hugging Face models) the Hugging Face cache -> a download into the artbias cache when
downloads are allowed. Anything else is a ``WeightsNotFoundError`` that says which file
is expected where and how to get it. Never random weights in place of missing ones.

Downloads go to a temporary file beside the target and are renamed into place only after
the size and sha256 (where the catalogue knows them) check out, so the cache never holds a
half-written or wrong file. ``ARTBIAS_OFFLINE=1`` turns downloads off (tests set it).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from data.errors import CheckpointError, ConfigError, WeightsNotFoundError
from data.saved_model import sha256_file
from data.weights.catalog import ModelEntry, ModelFile, get_entry

ZOO_DIR = Path(__file__).resolve().parents[1] / "zoo"
_CHUNK = 1 << 20


# -- places ----------------------------------------------------------------------------
def cache_dir() -> Path:
    """The artbias weights cache: ``$ARTBIAS_CACHE`` or the platform's user cache folder."""
    if os.environ.get("ARTBIAS_CACHE"):
        return Path(os.environ["ARTBIAS_CACHE"]).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / "artbias" / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "artbias"
    return Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "artbias"


def model_cache_dir(entry: ModelEntry) -> Path:
    return cache_dir() / entry.name


def offline() -> bool:
    """True when downloads are off (``ARTBIAS_OFFLINE`` set to 1/true/yes)."""
    return os.environ.get("ARTBIAS_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@contextmanager
def hub_offline_when_offline() -> Iterator[None]:
    """With downloads off, libraries that fetch through huggingface_hub (open_clip's published
    tags) fail at once on a cache miss, instead of retrying the network for about a minute."""
    if not offline():
        yield
        return
    import huggingface_hub.constants as hub

    previous = hub.HF_HUB_OFFLINE
    hub.HF_HUB_OFFLINE = True  # what HF_HUB_OFFLINE=1 sets when the library is imported
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = previous


# -- where a model is now ----------------------------------------------------------------
@dataclass(frozen=True)
class Location:
    path: Path  # what a loader gets: the file for one-file models, else the folder
    place: str  # "path", "cache", "zoo" or "hf-cache"


def _complete_folder(folder: Path, entry: ModelEntry) -> Path | None:
    """The model's load path inside ``folder`` when all its files are there (sizes match):
    the file of a one-file download, else the folder (always the folder for starter models)."""
    for spec in entry.files:
        target = folder / spec.name
        if not target.is_file() or (spec.size is not None and target.stat().st_size != spec.size):
            return None
    return folder / entry.files[0].name if len(entry.files) == 1 and entry.zoo is None else folder


def _hf_cache_folder(entry: ModelEntry) -> Path | None:
    """The Hugging Face cache snapshot of the model, when it is complete there."""
    if entry.hf_repo is None:
        return None
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        folder = snapshot_download(
            entry.hf_repo,
            revision=entry.hf_revision,
            allow_patterns=[f.name for f in entry.files],
            local_files_only=True,
        )
    except Exception:  # any miss or a broken cache: the hub cache just does not have it
        return None
    return _complete_folder(Path(folder), entry)


def locate(entry: ModelEntry) -> Location | None:
    """Where the model is on this machine (cache, zoo, Hugging Face cache), without fetching."""
    if entry.builtin:
        return None
    candidates = [(model_cache_dir(entry), "cache"), (ZOO_DIR / (entry.zoo or entry.name), "zoo")]
    for folder, place in candidates:
        found = _complete_folder(folder, entry)
        if found is not None:
            return Location(found, place)
    found = _hf_cache_folder(entry)
    return Location(found, "hf-cache") if found is not None else None


# -- fetching ----------------------------------------------------------------------------
def fetch(url: str, destination: Path) -> None:
    """Write the bytes at ``url`` to ``destination``, with a progress bar (tests replace this)."""
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "artbias"})
    with urllib.request.urlopen(request, timeout=60) as response, open(destination, "wb") as out:
        total = response.headers.get("Content-Length")
        with tqdm(total=int(total) if total else None, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1]) as bar:
            while block := response.read(_CHUNK):
                out.write(block)
                bar.update(len(block))


def fetch_hf(repo: str, filename: str, revision: str | None, destination: Path) -> None:
    """Write one file of a Hugging Face repository to ``destination``."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        fetch(f"https://huggingface.co/{repo}/resolve/{revision or 'main'}/{filename}", destination)
        return
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".hf-") as staging:
        downloaded = hf_hub_download(repo, filename, revision=revision, local_dir=staging)
        shutil.move(downloaded, destination)


def check_file(path: Path, spec: ModelFile) -> None:
    """Raise ``CheckpointError`` unless ``path`` has the size and hash the catalogue records."""
    if spec.size is not None and path.stat().st_size != spec.size:
        raise CheckpointError(f"{spec.name}: expected {spec.size} bytes, got {path.stat().st_size}")
    if spec.sha256 is None and spec.sha256_prefix is None:
        return
    digest = sha256_file(path)
    if spec.sha256 is not None and digest != spec.sha256:
        raise CheckpointError(f"{spec.name}: sha256 {digest} does not match the catalogue's {spec.sha256}")
    if spec.sha256_prefix is not None and not digest.startswith(spec.sha256_prefix):
        raise CheckpointError(f"{spec.name}: sha256 {digest} does not start with the catalogue's {spec.sha256_prefix}")


def _download_file(entry: ModelEntry, spec: ModelFile, target: Path) -> None:
    """Fetch one file to a temporary name beside ``target``, check it, then rename it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        if entry.hf_repo is not None:
            fetch_hf(entry.hf_repo, spec.name, entry.hf_revision, partial)
        else:
            fetch(spec.url, partial)
        check_file(partial, spec)
        os.replace(partial, target)
    except CheckpointError as error:
        raise CheckpointError(f"download of model {entry.name!r} rejected: {error}") from error
    except (OSError, urllib.error.URLError, ValueError) as error:
        raise WeightsNotFoundError(_missing_message(entry, f"the download failed ({error})")) from error
    except Exception as error:  # hub client errors have their own hierarchy
        raise WeightsNotFoundError(_missing_message(entry, f"the download failed ({type(error).__name__}: {error})")) from error
    finally:
        partial.unlink(missing_ok=True)


def download(entry: ModelEntry) -> Path:
    """Fetch the model's missing files into the artbias cache; returns its load path."""
    if entry.zoo is not None:
        raise WeightsNotFoundError(_missing_message(entry, "starter models are not downloaded"))
    if offline():
        raise WeightsNotFoundError(_missing_message(entry, "downloads are off (ARTBIAS_OFFLINE is set)"))
    folder = model_cache_dir(entry)
    for spec in entry.files:
        target = folder / spec.name
        if not (target.is_file() and (spec.size is None or target.stat().st_size == spec.size)):
            _download_file(entry, spec, target)
    found = _complete_folder(folder, entry)
    assert found is not None  # every file was just put in place
    return found


# -- checking what is on disk ------------------------------------------------------------
@dataclass(frozen=True)
class FileCheck:
    path: Path
    status: str  # "ok", "mismatch", "missing" or "unchecked" (no recorded hash)
    detail: str = ""


def verify_model(entry: ModelEntry) -> list[FileCheck]:
    """Check each file of a model (where it was found, else in the cache) against the catalogue."""
    found = locate(entry)
    if found is None:
        folder = model_cache_dir(entry) if entry.zoo is None else ZOO_DIR / entry.zoo
    else:
        folder = found.path if found.path.is_dir() else found.path.parent
    checks = []
    for spec in entry.files:
        path = folder / spec.name
        if not path.is_file():
            checks.append(FileCheck(path, "missing"))
            continue
        try:
            check_file(path, spec)
        except CheckpointError as error:
            checks.append(FileCheck(path, "mismatch", str(error)))
            continue
        known = spec.sha256 is not None or spec.sha256_prefix is not None
        unknown = f"the catalogue records no sha256: {spec.sha256_unknown}" if spec.sha256_unknown else "the catalogue records no sha256"
        checks.append(FileCheck(path, "ok" if known else "unchecked", "" if known else unknown))
    return checks


# -- the one entry point -------------------------------------------------------------------
def resolve_weights(model: str | ModelEntry, path: str | Path | None = None) -> Path:
    """The path a family loader should open for ``model``; fetches it when allowed."""
    entry = model if isinstance(model, ModelEntry) else get_entry(model)
    if entry.builtin:
        raise ConfigError(f"model {entry.name!r} is built into artbias and has no weights to resolve")
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.exists():
            raise WeightsNotFoundError(f"weights for model {entry.name!r}: the given path {explicit} does not exist")
        return explicit
    found = locate(entry)
    if found is not None:
        return found.path
    return download(entry)


def _missing_message(entry: ModelEntry, reason: str) -> str:
    cache = model_cache_dir(entry)
    if entry.zoo is not None:
        return (
            f"starter model {entry.name!r} is not on this machine ({reason}): expected the folder "
            f"{ZOO_DIR / entry.zoo} (shipped with artbias once trained) or {cache}; "
            "see data/zoo/README.md for how the zoo is built"
        )
    names = ", ".join(f.name for f in entry.files)
    urls = " ".join(f.url for f in entry.files if f.url) or entry.where_from
    return (
        f"weights for model {entry.name!r} are not on this machine ({reason}): expected {names} "
        f"in {cache}; run 'artbias models pull {entry.name}' on a networked machine and copy "
        f"that folder here, or download {urls} into it yourself"
    )
