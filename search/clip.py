"""Loading a CLIP model through open_clip, with the preprocessing its weights were trained with.

Names a user can give:
- a catalogue name such as ``clip-world`` (the starter zoo) or ``ViT-B-32/openai``;
- ``local-dir:PATH`` or a directory holding ``open_clip_config.json`` + weights (the layout
  open_clip itself reads, the one the zoo ships);
- ``ARCH/TAG`` for any open_clip pretrained tag, ``ARCH:FILE`` for local weights.

A catalogue name always means the catalogue model, even beside a folder of that name in the
working directory; write ``./NAME`` or ``local-dir:NAME`` for the folder
(``data.weights.catalog.local_folder``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from data.errors import CheckpointError, ConfigError, WeightsNotFoundError
from data.saved_model import is_refused_pickle, load_error_reason
from data.validation import check_finite_tensors


@dataclass
class ClipModel:
    """An open_clip model in eval mode with its tokenizer and preprocessing."""

    name: str
    model: torch.nn.Module
    tokenizer: object
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"
    identity: dict = field(default_factory=dict)

    @property
    def context_length(self) -> int:
        return int(getattr(self.tokenizer, "context_length", 77))


def _from_open_clip(name: str, model_name: str, pretrained: str | None, device, preprocessing: dict | None = None) -> ClipModel:
    """An open_clip model; its input preprocessing is ``preprocessing`` (a catalogue entry's)
    when given, else what open_clip read with the weights (``preprocess_cfg``)."""
    import open_clip

    from data.weights.resolve import hub_offline_when_offline

    try:
        with hub_offline_when_offline():
            model = open_clip.create_model(model_name, pretrained=pretrained, device=device)
    except Exception as error:  # noqa: BLE001 - torch, safetensors and open_clip share no error base class
        message = load_error_reason(error)  # one line, never torch's advice to unpickle anyway
        if not is_refused_pickle(error) and (
                "download" in message.lower() or "not a known tag" in message or "not found" in message):
            raise WeightsNotFoundError(
                f"CLIP {name!r}: weights could not be loaded ({message}). "
                "On a machine with network access open_clip downloads published tags into its "
                "cache; offline, pass a local file as ARCH:FILE or a directory (local-dir:PATH)."
            ) from None
        raise CheckpointError(f"CLIP {name!r}: {message}") from None
    check_finite_tensors(model.state_dict(), f"of CLIP {name!r}")  # NaN/inf weights: refused
    model.eval().requires_grad_(False)
    cfg = preprocessing or model.visual.preprocess_cfg
    size = cfg["size"] if isinstance(cfg["size"], int) else int(cfg["size"][0])
    takes = getattr(model.visual, "image_size", size)
    takes = takes if isinstance(takes, int) else int(takes[0])
    if size != takes:
        raise CheckpointError(f"CLIP {name!r}: preprocessing size {size} but the network takes {takes} px images")
    return ClipModel(
        name=name,
        model=model,
        tokenizer=open_clip.get_tokenizer(model_name),
        image_size=size,
        mean=tuple(float(v) for v in cfg["mean"]),
        std=tuple(float(v) for v in cfg["std"]),
        interpolation=cfg.get("interpolation", "bicubic"),
        resize_mode=cfg.get("resize_mode", "shortest"),
        identity={"name": name, "open_clip_model": model_name, "pretrained": pretrained},
    )


def load_clip(name: str, *, device: torch.device | str = "cpu") -> ClipModel:
    """Resolve a CLIP name (see module docstring) into a ready ``ClipModel``."""
    if not name or not name.strip():
        raise ConfigError("CLIP name is empty")
    logging.getLogger("root").setLevel(logging.WARNING)  # open_clip logs at INFO on the root
    if name.startswith("local-dir:"):
        return _from_open_clip(name, name, None, device)
    path = _folder(name)
    if path is not None:
        if not (path / "open_clip_config.json").is_file():
            raise CheckpointError(f"CLIP directory {path} has no open_clip_config.json")
        return _from_open_clip(name, f"local-dir:{path}", None, device)
    if ":" in name:
        arch, file = name.split(":", 1)
        if not Path(file).is_file():
            raise WeightsNotFoundError(f"CLIP {name!r}: weights file {file} does not exist")
        return _from_open_clip(name, arch, file, device)
    if "/" in name:
        arch, tag = name.split("/", 1)
        return _from_open_clip(name, arch, tag, device)
    return _from_catalog(name, device)


def clip_problem(name: str) -> str | None:
    """Why ``name`` names no CLIP model (the forms ``load_clip`` accepts), or None; nothing is loaded."""
    from data.weights.catalog import find_entry, suggest

    if not name or not name.strip():
        return "CLIP name is empty"
    path = _folder(name)
    if path is not None:
        return None if (path / "open_clip_config.json").is_file() else f"CLIP folder {path} has no open_clip_config.json"
    if ":" in name:
        file = name.split(":", 1)[1]
        return None if Path(file).expanduser().is_file() else f"CLIP {name!r}: weights file {file} does not exist"
    if "/" in name:
        return None  # ARCH/TAG: an open_clip pretrained tag, resolved when loaded
    entry = find_entry(name)
    if entry is None:
        return f"unknown CLIP {name!r}{suggest(name, 'clip')}"
    return None if entry.kind == "clip" else f"CLIP {name!r} is a {entry.kind} model, not a CLIP model"


def weights_needed(name: str) -> list[str]:
    """Catalogue names whose weights loading ``name`` needs (none for folders, files, tags)."""
    if ":" in name or "/" in name or _folder(name) is not None:
        return []
    return [name]


def _folder(name: str) -> Path | None:
    """The folder ``name`` reads: a ``local-dir:PATH`` (existing or not), or what
    ``local_folder`` says (never for a catalogue name); None for every other form."""
    from data.weights.catalog import local_folder

    if name.startswith("local-dir:"):
        return Path(name.removeprefix("local-dir:")).expanduser()
    return local_folder(name)


def clip_folder(clip: ClipModel) -> Path | None:
    """The local folder a loaded CLIP came from (a catalogue model's or a ``local-dir``), where
    a CLIP trained by artbias keeps its ``training.json``; None for files and published tags."""
    if clip.identity.get("path"):
        return Path(clip.identity["path"])
    path = _folder(clip.name)
    return path if path is not None and path.is_dir() else None


def _from_catalog(name: str, device) -> ClipModel:
    """Catalogue CLIPs (starter or published) resolve to an open_clip local-dir folder; their
    preprocessing is the catalogue entry's (it travels with the weights)."""
    from data.weights.catalog import get_entry
    from data.weights.resolve import resolve_weights

    entry = get_entry(name)  # unknown names: a ConfigError with close matches
    if entry.kind != "clip":
        raise ConfigError(f"{name!r} is a {entry.kind} model, not a CLIP model")
    folder = resolve_weights(entry)
    clip = _from_open_clip(name, f"local-dir:{folder}", None, device, preprocessing=entry.preprocessing)
    clip.identity |= {"path": str(folder), "catalogue": name}
    return clip
