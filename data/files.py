"""Writing files and folders so that a crash or a kill never leaves one half-written."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path


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
