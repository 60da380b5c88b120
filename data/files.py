"""Writing files and folders so that a crash or a kill never leaves one half-written, and
checking, before any work, that an output can be made where the user asked."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from data.errors import ConfigError


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(temp)`` on a temporary sibling of ``path``, then rename it onto ``path``."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def replace_folder(staging: Path, out: Path) -> None:
    """Put a finished ``staging`` folder at ``out`` by renames; an old ``out`` is removed last."""
    staging, out = Path(staging), Path(out)
    if not out.exists():
        os.replace(staging, out)
        return
    trash = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.old")
    os.replace(out, trash)
    os.replace(staging, out)
    shutil.rmtree(trash, ignore_errors=True)


@contextmanager
def staged_folder(out: str | Path, what: str = "output") -> Iterator[Path]:
    """A fresh staging folder beside ``out``; when the block ends, it replaces ``out``
    (``replace_folder``). On any error it is removed and ``out`` is left as it was; an
    ``OSError`` (disk full, read-only place) becomes one ``ConfigError`` naming ``what``."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as error:
        raise ConfigError(f"cannot write {what} {out}: {error.strerror or error}") from None
    try:
        yield staging
        replace_folder(staging, out)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConfigError(f"cannot write {what} {out}: {error.strerror or error}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def check_can_create(path: str | Path, what: str = "output") -> Path:
    """``path``, a folder to make or fill, when it can be: an existing folder or a new path
    whose nearest existing ancestor is a writable folder. A file there or on the way, or a
    read-only place, is a one-line ``ConfigError``, said before any work."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} exists and is a file, not a folder")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"cannot write into {what} {path}: it is read-only")
        return path
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"cannot write {what} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {what} {path}: {ancestor} is read-only")
    return path


def check_output_folder(out: str | Path, *, force: bool = False,
                        earlier: Callable[[Path], bool] | None = None, what: str = "output folder") -> Path:
    """An output folder a command will make (or replace), checked before any work: it must be
    new or empty, or, with ``force``, hold an earlier output of the same command
    (``earlier(out)``); never a file, never a folder of other files, never a read-only place."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{what} {out} exists and is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ConfigError(f"{what} {out} is not empty; choose a new folder, or pass --force to "
                              "replace an earlier result there")
        if earlier is not None and not earlier(out):
            raise ConfigError(f"{what} {out} holds files that are not an earlier result of this command; "
                              "refusing to replace it, even with --force")
        if not os.access(out.absolute().parent, os.W_OK | os.X_OK):
            raise ConfigError(f"cannot replace {what} {out}: {out.absolute().parent} is read-only")
        return out
    return check_can_create(out, what)
