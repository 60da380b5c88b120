"""The one saved-model format: a folder of ``config.json`` + ``*.safetensors`` weights.

Every trained component (DCGAN, StyleGAN2, BigGAN, the scene classifier) saves with
:func:`save_model` and loads its tensors with :func:`load_state`, so they share one
writer, one strict loader and one set of error messages:

- :func:`save_model` writes the weights, then the config, each to a temporary name that is
  renamed into place (``data.files.write_atomically``): a crash never leaves a half-written
  file, and a config on disk means its weights were complete.
- :func:`read_config` / :func:`read_weights` read a folder's JSON and weights, turning every
  problem into a one-line ``CheckpointError`` that names the file. ``read_tensors`` also reads
  published torch state-dict files (``.bin`` / ``.pth``) with ``weights_only=True``: no code
  in a weights file ever runs.
- :func:`load_state` fills a module with ``strict=True`` after checking the tensors itself,
  so a mismatch says which tensors are missing, unexpected, of the wrong shape or kind, or
  not finite, and in which file.
- :func:`sha256_file` / :func:`weights_record` are how models record which weights they hold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from data.errors import CheckpointError
from data.files import write_atomically
from data.validation import check_finite_tensors

if TYPE_CHECKING:  # torch is imported where tensors are read, so hashing stays light
    import torch

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_CHUNK = 1 << 20
_SHOWN = 5  # offending tensor names an error lists


# -- hashing -------------------------------------------------------------------------------
def sha256_file(path: str | Path) -> str:
    """The sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def weights_record(path: str | Path | None, files: list[Path] | None = None) -> dict:
    """``{"path", "sha256"}``: which weights a model holds, as results record it.

    ``path`` is the weights file, or the folder of ``files`` when the weights are several
    files; then ``sha256`` is the digest of ``sha256sum``'s listing of them (one
    ``<sha256>  <name relative to path>`` line per file, sorted by name) and ``files`` maps
    each name to its own digest. ``path`` None: weights of unknown origin.
    """
    if path is None:
        return {"path": None, "sha256": None}
    path = Path(path)
    if not files:
        return {"path": str(path), "sha256": sha256_file(path)}
    digests = {file.relative_to(path).as_posix(): sha256_file(file) for file in files}
    listing = "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))
    return {"path": str(path), "sha256": hashlib.sha256(listing.encode()).hexdigest(), "files": digests}


# -- saving --------------------------------------------------------------------------------
def save_model(
    directory: str | Path,
    config: dict,
    tensors: Mapping[str, torch.Tensor],
    *,
    config_name: str = CONFIG_NAME,
    weights_name: str = WEIGHTS_NAME,
) -> Path:
    """Write ``weights_name`` (safetensors) then ``config_name`` (JSON) into ``directory``."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().to("cpu").contiguous() for name, tensor in tensors.items()}
    text = json.dumps(config, indent=2) + "\n"

    def write_weights(temporary: Path) -> None:
        save_file(state, str(temporary), metadata={"format": "pt"})
        temporary.chmod(0o644)  # safetensors creates files readable by their owner only

    write_atomically(directory / weights_name, write_weights)
    write_atomically(directory / config_name, lambda temporary: temporary.write_text(text))
    return directory


# -- reading -------------------------------------------------------------------------------
def require_folder(folder: str | Path, what: str) -> Path:
    """``folder`` as a path; a ``CheckpointError`` unless it is an existing folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{what} folder {folder} does not exist or is not a folder")
    return folder


def read_config(folder: str | Path, what: str, name: str = CONFIG_NAME) -> dict:
    """The JSON object in ``folder/name``; missing or unreadable is a ``CheckpointError``."""
    path = Path(folder) / name
    if not path.is_file():
        raise CheckpointError(f"{what} folder {folder} lacks {name}")
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{what} config {path} is unreadable: {error}") from None
    if not isinstance(document, dict):
        raise CheckpointError(f"{what} config {path} is not a JSON object")
    return document


def read_weights(folder: str | Path, what: str, name: str = WEIGHTS_NAME) -> dict[str, torch.Tensor]:
    """The tensors of ``folder/name``; a missing file is a ``CheckpointError`` naming the folder."""
    path = Path(folder) / name
    if not path.is_file():
        raise CheckpointError(f"{what} folder {folder} lacks {name}")
    return read_tensors(path)


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The named tensors of a ``.safetensors`` file, or of a torch state-dict file read with
    ``weights_only=True`` (published ``.bin`` / ``.pth``; a ``{"state_dict": ...}`` wrapper is
    unwrapped), on the CPU."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    safetensors = path.suffix == ".safetensors"
    try:
        if safetensors:
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - safetensors and torch share no error base class
        kind = "safetensors" if safetensors else "torch state-dict"
        if is_refused_pickle(error):
            raise CheckpointError(f"weights {path} are refused: {load_error_reason(error)}") from None
        raise CheckpointError(f"weights {path} are corrupt or truncated (not a readable {kind} file: "
                              f"{load_error_reason(error)})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"weights {path} are not a state dict of named tensors")
    return state


def is_refused_pickle(error: BaseException) -> bool:
    """Whether ``torch.load(..., weights_only=True)`` refused a file for the Python objects in it."""
    return "weights only load failed" in str(error).lower() or "unsupported global" in str(error).lower()


def load_error_reason(error: BaseException) -> str:
    """Why a weights file could not be read, in one line, never with the loader's advice:
    PyTorch suggests ``weights_only=False``, which would let the file run code, and that is
    not a step artbias will take or recommend."""
    import re

    from data.validation import printable

    text = str(error)
    if is_refused_pickle(error):
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        named = f" ({found.group(1)})" if found else ""
        return (f"the file holds pickled Python objects{named} besides tensors, and artbias does not "
                "unpickle those (loading them could run code); use a safetensors or plain state-dict file")
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
    return printable(first, 300)


# -- loading into a module -------------------------------------------------------------------
def load_state(module: torch.nn.Module, tensors: Mapping[str, torch.Tensor], source: str, *,
               target: str = "the model", prefix: str = "") -> torch.nn.Module:
    """Load ``tensors`` (those under ``prefix``, prefix removed) into ``module`` with
    ``strict=True``; anything that does not fit is one ``CheckpointError`` naming ``source``.

    A module built on the ``meta`` device (layout only, no memory) takes the tensors
    themselves, cast to the module's dtypes.
    """

    own = {name[len(prefix):]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}
    if not own:
        under = f" under {prefix!r}" if prefix else ""
        raise CheckpointError(f"weights {source} hold no tensors{under} (empty state dict)")
    expected = module.state_dict()
    missing = [prefix + name for name in sorted(set(expected) - set(own))]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys {_few(missing)}")
    unexpected = [prefix + name for name in sorted(set(own) - set(expected))]
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys {_few(unexpected)}")
    common = sorted(set(own) & set(expected))
    wrong_shape = [f"{prefix}{k}: {list(own[k].shape)} != {list(expected[k].shape)}"
                   for k in common if own[k].shape != expected[k].shape]
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} tensors of the wrong shape {_few(wrong_shape)}")
    wrong_kind = [prefix + k for k in common if own[k].is_floating_point() != expected[k].is_floating_point()]
    if wrong_kind:
        problems.append(f"{len(wrong_kind)} tensors of the wrong kind (integer vs floating point) {_few(wrong_kind)}")
    if problems:
        raise CheckpointError(f"weights {source} do not fit {target}: " + "; ".join(problems))
    check_finite_tensors({prefix + k: own[k] for k in common}, source)  # NaN/inf weights: refused
    on_meta = any(tensor.is_meta for tensor in expected.values())
    if on_meta:
        own = {k: v.to(expected[k].dtype) for k, v in own.items()}
    module.load_state_dict(own, strict=True, assign=on_meta)
    return module


def _few(items: list[str]) -> str:
    return "[" + ", ".join(items[:_SHOWN]) + (", ..." if len(items) > _SHOWN else "") + "]"
