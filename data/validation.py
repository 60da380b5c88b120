"""What artbias refuses, decided in one place: text, numbers, seeds, devices and sizes.

Every command checks what it is given here, before it loads a model or writes a file, and
says what is wrong in one line (a ``ConfigError``):

- :func:`check_text`: prompts and other free text: printable Unicode on one line (no
  control characters such as ESC or BEL, no undecodable bytes), NFC-normalised, at most
  ``MAX_PROMPT_CHARS`` characters;
- :func:`check_number` and :func:`check_finite_values`: NaN and infinities are refused
  wherever a number is an option (command line, campaign TOML, loader options);
  :func:`check_finite_tensors` does the same for weights;
- :func:`check_seed`: seeds are whole numbers in ``[0, 2**31)``;
- :func:`check_device`: ``cpu``, ``cuda[:N]`` (only where a GPU is present) or ``mps``;
- :class:`Limits`: how large one command may go (images, pixels, population, jobs...).
  The defaults keep every command within a few GB of memory; ``--allow-large`` (or
  ``ARTBIAS_ALLOW_LARGE=1`` in the environment) lifts them all.
"""

from __future__ import annotations

import math
import os
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from data.errors import CheckpointError, ConfigError, DatasetError

if TYPE_CHECKING:
    import torch

MAX_PROMPT_CHARS = 1000
SEED_LIMIT = 2**31  # seeds are in [0, SEED_LIMIT): they fit every RNG artbias uses
ALLOW_LARGE_ENV = "ARTBIAS_ALLOW_LARGE"
ALLOW_LARGE_HINT = f"--allow-large (or {ALLOW_LARGE_ENV}=1) lifts the limit"
# Zero-width (non-)joiners are format characters that scripts and emoji sequences need.
_JOINERS = frozenset("\u200c\u200d")
_SHOWN_CHARS = 60  # how much of a refused text an error quotes


# -- text --------------------------------------------------------------------------------------
def printable(text: str, limit: int | None = None) -> str:
    """``text`` safe to print or show: every non-printable character (ESC, BEL, newlines,
    lone surrogates...) written as an escape such as ``\\x1b``; cut to ``limit`` characters."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return "".join(c if c.isprintable() or c in _JOINERS else c.encode("unicode_escape", "backslashreplace")
                   .decode("ascii") for c in text)


def check_text(text, what: str = "prompt", *, max_chars: int = MAX_PROMPT_CHARS) -> str:
    """Free text a user gives (a prompt, a negative prompt, a template, a modifier): printable
    Unicode on one line, NFC-normalised and stripped, non-empty, at most ``max_chars`` long."""
    if not isinstance(text, str):
        raise ConfigError(f"{what} must be text, got {type(text).__name__}")
    if any("\ud800" <= c <= "\udfff" for c in text):  # bytes the command line could not decode
        raise ConfigError(f"{what} '{printable(text, _SHOWN_CHARS)}' is not valid UTF-8 text")
    text = unicodedata.normalize("NFC", text).strip()
    bad = next((c for c in text if not (c.isprintable() or c in _JOINERS)), None)
    if bad is not None:
        name = unicodedata.name(bad, "a control character")
        raise ConfigError(f"{what} '{printable(text, _SHOWN_CHARS)}' holds U+{ord(bad):04X} ({name}); "
                          "use printable text on one line")
    if not text:
        raise ConfigError(f"{what} is empty")
    if len(text) > max_chars:
        raise ConfigError(f"{what} has {len(text):,} characters; the limit is {max_chars:,}")
    return text


# -- numbers -------------------------------------------------------------------------------------
def check_number(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
                 above: float | None = None, below: float | None = None) -> float:
    """A finite real number within the given bounds (``minimum``/``maximum`` inclusive,
    ``above``/``below`` exclusive); NaN and infinities are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum:g}, got {value:g}")
    if above is not None and not value > above:
        raise ConfigError(f"{name} must be > {above:g}, got {value:g}")
    if below is not None and not value < below:
        raise ConfigError(f"{name} must be < {below:g}, got {value:g}")
    return value


def check_known_keys(raw: Mapping, known, source: str) -> None:
    """A config's keys must all be ``known`` (a misspelt key would otherwise be ignored)."""
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{source}: unknown keys {unknown}; expected some of {sorted(known)}")


def check_finite_values(value, name: str):
    """Refuse NaN and infinities anywhere in a (nested) option value; returns it unchanged."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value}")
    if isinstance(value, Mapping):
        for key, item in value.items():
            check_finite_values(item, f"{name} {key}" if name else str(key))
    elif isinstance(value, list | tuple):
        for item in value:
            check_finite_values(item, name)
    return value


def finite_json(value):
    """``value`` for ``json.dumps(..., allow_nan=False)``: every NaN or infinite float becomes
    None (JSON's null), so a record never holds the non-standard ``NaN`` / ``Infinity``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    return value


def check_seed(seed, name: str = "--seed") -> int:
    """A seed: a whole number in [0, 2**31)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"{name} must be a whole number from 0 to {SEED_LIMIT - 1}, got {seed!r}")
    return seed


def check_finite_tensors(tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """Weights must hold finite numbers: NaN or inf in any floating-point tensor is a
    ``CheckpointError`` naming the file and the tensors."""
    import torch

    bad = [name for name, tensor in tensors.items()
           if tensor.is_floating_point() and not tensor.is_meta and not bool(torch.isfinite(tensor).all())]
    if bad:
        shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise CheckpointError(f"weights {source} hold NaN/inf values in [{shown}]")


# -- devices -------------------------------------------------------------------------------------
def check_device(device: str, name: str = "--device", *, allow_auto: bool = False) -> str:
    """``cpu``, ``cuda`` / ``cuda:N`` where such a GPU is present, or ``mps`` where available
    (``auto`` too when ``allow_auto``); anything else is a one-line ``ConfigError``."""
    import torch

    if allow_auto and device == "auto":
        return device
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"{name} '{printable(str(device), _SHOWN_CHARS)}' is not a device; use cpu, cuda, "
                          "cuda:N or mps") from None
    if parsed.type == "cpu":
        return device
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{name} {device}: no CUDA GPU is available on this machine; use --device cpu")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ConfigError(f"{name} {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        return device
    if parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"{name} {device}: Apple's MPS is not available on this machine; use --device cpu")
        return device
    raise ConfigError(f"{name} '{printable(str(device), _SHOWN_CHARS)}': artbias runs on cpu, cuda or mps")


# -- size limits -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """How large one command may go. The defaults keep each command within a few GB of
    memory and a day of work on a laptop; ``--allow-large`` (or ``ARTBIAS_ALLOW_LARGE=1``)
    lifts them all. The README's "Bad input" section lists them."""

    images: int = 10_000  # images one command renders, generates or labels (per generator in a campaign)
    image_side: int = 1024  # pixels per side of an image artbias renders or trains on
    input_pixels: int = 50_000_000  # pixels of one image file artbias reads (classify, datasets)
    population: int = 4096  # a search's population
    evaluations: int = 1_000_000  # images one search generates and scores (population x generations)
    augmentations: int = 64  # augmented views per CLIP score
    refine_steps: int = 10_000  # Adam steps of a refinement
    top_k: int = 256  # best images a search keeps
    batch_size: int = 4096  # images processed at once
    baseline_chunk: int = 1024  # unguided samples per campaign job
    jobs: int = 20_000  # jobs one campaign plans
    resamples: int = 100_000  # bootstrap resamples of the bias report
    workers: int = 64  # worker processes of a campaign

    def check(self, limit: str, value: int, option: str) -> int:
        """``value`` of ``option`` against the limit named ``limit`` (unless lifted)."""
        bound = getattr(self, limit)
        if value > bound and not large_allowed():
            raise ConfigError(f"{option} {value:,} is over the limit of {bound:,}; {ALLOW_LARGE_HINT}")
        return value


LIMITS = Limits()


def large_allowed() -> bool:
    """Whether the size limits are lifted (``--allow-large`` or ``ARTBIAS_ALLOW_LARGE``)."""
    return os.environ.get(ALLOW_LARGE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def check_limit(limit: str, value: int, option: str) -> int:
    """``LIMITS.check``: ``value`` of ``option`` against the default limit named ``limit``."""
    return LIMITS.check(limit, value, option)


def check_count(value: int, option: str, limit: str, minimum: int = 1) -> int:
    """A count option: at least ``minimum`` (else one clear error) and within the limit named
    ``limit`` (``check_limit``)."""
    if value < minimum:
        raise ConfigError(f"{option} must be at least {minimum}, got {value}")
    return check_limit(limit, value, option)


@contextmanager
def lifted_limits(lift: bool) -> Iterator[None]:
    """Within the block, the size limits are lifted when ``lift`` (also for worker processes
    started meanwhile: the setting travels in the environment)."""
    if not lift:
        yield
        return
    previous = os.environ.get(ALLOW_LARGE_ENV)
    os.environ[ALLOW_LARGE_ENV] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ALLOW_LARGE_ENV, None)
        else:
            os.environ[ALLOW_LARGE_ENV] = previous


def add_allow_large(parser) -> None:
    """The ``--allow-large`` option of a command that has size limits."""
    parser.add_argument("--allow-large", action="store_true",
                        help=f"lift artbias's size limits (also {ALLOW_LARGE_ENV}=1; see the README's 'Bad input')")


# -- image files ----------------------------------------------------------------------------------
@contextmanager
def open_image(path: str | Path) -> Iterator:
    """An image file opened with Pillow (header read, pixels not yet decoded), refused when it
    holds more than ``Limits.input_pixels`` pixels; unreadable files are a ``DatasetError``."""
    from PIL import Image, UnidentifiedImageError

    if large_allowed():
        Image.MAX_IMAGE_PIXELS = None  # the user asked for it: Pillow's own guard goes too
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as error:  # beyond Pillow's own guard: many times our limit
        import re

        found = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise DatasetError(f"image {path} has {size}; the limit is {LIMITS.input_pixels:,}; "
                           f"{ALLOW_LARGE_HINT}") from None
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise DatasetError(f"cannot read image {path}: {error}") from None
    with image:
        width, height = image.size
        if width * height > LIMITS.input_pixels and not large_allowed():
            raise DatasetError(f"image {path} has {width * height:,} pixels ({width} x {height}); the limit is "
                               f"{LIMITS.input_pixels:,}; {ALLOW_LARGE_HINT}")
        yield image
