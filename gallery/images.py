"""Artwork images as content-addressed PNG files: ``images/<sha256[:2]>/<sha256>.png``.

The name is the sha256 of the PNG bytes, so the same image is stored once and a file's name
proves its content. A file is written under a temporary name in its final folder and renamed
into place, so a killed writer leaves at most a temporary or unreferenced file, never a
truncated PNG under a real name; ``sweep_orphans`` removes those at the next campaign start.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

TEMP_PREFIX = ".partial-"


@dataclass(frozen=True)
class EncodedImage:
    """PNG bytes with their hash and their path relative to the gallery folder."""

    png: bytes
    sha256: str

    @property
    def relative_path(self) -> str:
        return f"images/{self.sha256[:2]}/{self.sha256}.png"


def encode_png(image) -> EncodedImage:
    """An image [3, H, W] in [-1, 1] (torch tensor or numpy array) as PNG bytes.

    PNG encoding of the same pixels gives the same bytes (no timestamps are written), so
    identical artworks get identical names.
    """
    from PIL import Image

    array = image.detach().float().cpu().numpy() if hasattr(image, "detach") else np.asarray(image, dtype=np.float32)
    if array.ndim != 3 or array.shape[0] != 3:
        raise ValueError(f"expected an image [3, H, W], got shape {list(array.shape)}")
    pixels = np.round((np.clip(array, -1, 1) + 1) * 127.5).astype(np.uint8).transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), "RGB").save(buffer, format="PNG")
    png = buffer.getvalue()
    return EncodedImage(png, hashlib.sha256(png).hexdigest())


def write_png(gallery_dir: str | Path, encoded: EncodedImage) -> Path:
    """Store the PNG under its content name (nothing to do when it is already there)."""
    target = Path(gallery_dir) / encoded.relative_path
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}.png")
    try:
        with open(partial, "wb") as handle:
            handle.write(encoded.png)
            handle.flush()
            os.fsync(handle.fileno())  # the bytes are on disk before any row can point at them
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def save_image(gallery_dir: str | Path, image) -> EncodedImage:
    """Encode and store an image [3, H, W] in [-1, 1]; returns its hash and relative path."""
    encoded = encode_png(image)
    write_png(gallery_dir, encoded)
    return encoded


def resolve_image(gallery_dir: str | Path, relative_path) -> Path | None:
    """Where a stored ``image_path`` points, confined to ``<gallery>/images/``: the file's
    path, or None for anything else (not text, absolute, with ``..``, outside ``images/``,
    or a link that leads out of it). Nothing outside the gallery's images is ever opened
    through a row; whether the file exists is the caller's question."""
    if not isinstance(relative_path, str) or not relative_path or "\\" in relative_path or "\x00" in relative_path:
        return None
    parts = PurePosixPath(relative_path).parts
    if PurePosixPath(relative_path).is_absolute() or ".." in parts or parts[:1] != ("images",) or len(parts) < 2:
        return None
    images = (Path(gallery_dir) / "images").resolve()
    path = (Path(gallery_dir) / relative_path).resolve()  # follows links: one leading out is refused
    return path if path.is_relative_to(images) and path != images else None


def image_files(gallery_dir: str | Path) -> list[str]:
    """Every file under ``images/`` as a path relative to the gallery folder (sorted)."""
    root = Path(gallery_dir)
    images = root / "images"
    if not images.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in images.rglob("*") if p.is_file())


def sweep_orphans(gallery_dir: str | Path, referenced: set[str]) -> list[str]:
    """Remove every image file no row refers to (and leftover temporary files); returns them.

    Only call this while no other process writes to the gallery (the campaign lock).
    """
    root = Path(gallery_dir)
    removed = []
    for relative in image_files(root):
        if relative not in referenced:
            (root / relative).unlink(missing_ok=True)
            removed.append(relative)
    for folder in sorted((root / "images").glob("*"), reverse=True) if (root / "images").is_dir() else []:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed
