"""``load_generator(spec)``: catalogue names and ``family:PATH`` specs -> a ``Generator``.

A spec is either a catalogue name (``biggan-deep-256``, ``stylegan2-church``,
``ddpm-ema-church-256``, ``dcgan-world``...; weights found by ``data.weights``) or
``FAMILY:PATH`` for a model on disk (``dcgan:runs/dcgan``, ``stylegan2:net.pkl``,
``biggan:DIR``, ``diffusion:DIR``). Every family module exposes
``load(path, *, device, dtype, **options) -> Generator``; modules are imported only
when used, so one family's heavy or missing dependencies never block another.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable

import torch

from data.errors import ConfigError
from data.weights.catalog import get_entry, list_models
from data.weights.resolve import resolve_weights
from generators.protocol import Generator

FAMILY_MODULES: dict[str, str] = {
    "dcgan": "generators.dcgan",
    "stylegan2": "generators.stylegan2",
    "biggan": "generators.biggan",
    "diffusion": "generators.diffusion",
    "world-render": "generators.world_render",
}


def family_loader(family: str) -> Callable[..., Generator]:
    """The ``load`` function of a generator family."""
    if family not in FAMILY_MODULES:
        close = difflib.get_close_matches(family, list(FAMILY_MODULES), n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ConfigError(f"unknown generator family {family!r}{hint} (families: {', '.join(FAMILY_MODULES)})")
    try:
        return importlib.import_module(FAMILY_MODULES[family]).load
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"generator family {family!r} is unavailable: {error}") from error


def load_generator(spec: str, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, **options) -> Generator:
    """A catalogue name or ``FAMILY:PATH`` -> a ready ``Generator`` (eval mode, on ``device``)."""
    family, colon, path = spec.partition(":")
    if colon:
        if not path:
            raise ConfigError(f"generator spec {spec!r} names no path after '{family}:'")
        return family_loader(family)(path, device=device, dtype=dtype, **options)
    entry = get_entry(spec)
    if entry.kind != "generator":
        raise ConfigError(f"model {spec!r} is a {entry.kind}, not a generator")
    # first: a missing model says how to get it, whatever the family (built-in models have no weights)
    path = None if entry.builtin else resolve_weights(entry)
    generator = family_loader(entry.family)(path, device=device, dtype=dtype, **(entry.options | options))
    generator.name = entry.name
    return generator


def generator_problem(spec: str) -> str | None:
    """Why ``spec`` names no generator (unknown catalogue name or family, missing path), or
    None when it does; nothing is loaded."""
    from pathlib import Path

    from data.weights.catalog import find_entry, suggest

    family, colon, path = spec.partition(":")
    if colon:
        if family not in FAMILY_MODULES:
            return f"generator {spec!r}: unknown family {family!r} (families: {', '.join(FAMILY_MODULES)})"
        if not path or not Path(path).expanduser().exists():
            return f"generator {spec!r}: path {path!r} does not exist"
        return None
    entry = find_entry(spec)
    if entry is None:
        return f"unknown generator {spec!r}{suggest(spec, 'generator')}"
    if entry.kind != "generator":
        return f"generator {spec!r} is a {entry.kind} model, not a generator"
    return None


def weights_needed(spec: str) -> list[str]:
    """Catalogue names whose weights loading ``spec`` needs (none for ``FAMILY:PATH`` or a
    built-in generator)."""
    if ":" in spec:
        return []
    from data.weights.catalog import find_entry

    entry = find_entry(spec)
    return [] if entry is not None and entry.builtin else [spec]


def list_generators() -> list[str]:
    """Catalogue names of every generator (present on this machine or not)."""
    return [entry.name for entry in list_models("generator")]


def parse_loader_options(pairs: list[str]) -> dict:
    """``["space=basis", "num_inference_steps=50"]`` (command-line ``--option``) as loader
    options: values read as JSON where they parse, else kept as strings."""
    import json

    options = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise ConfigError(f"--option needs KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value  # a bare word such as space=basis
    return options
