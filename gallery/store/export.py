"""Export a gallery as a self-contained dataset folder: its tables, its images, a dataset card.

Layout of an export::

    README.md                           the dataset card: every column, how it was made, counts, loading
    export.json                         what made it (also the marker that ``force`` looks for)
    campaigns.parquet, runs.parquet...  one file per table (``.csv`` with ``fmt="csv"``)
    images/<sha256[:2]>/<sha256>.png    every artwork's image; ``artworks.image_path`` is relative
                                        to the export folder

Every table comes from ONE read transaction (``Store.snapshot``), so the files agree with
each other even while a campaign writes: each artwork's run and each label's artwork are
there. The folder is built beside its target under a temporary name and renamed into place,
so a failed export leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from data.files import replace_folder
from data.provenance import package_version
from data.validation import printable
from gallery.store.database import IMAGES_DIR, GalleryError, Store, utc_now
from gallery.store.schema import COLUMN_DOCS, TABLES

EXPORT_FORMATS = ("parquet", "csv")
MARKER = "export.json"  # written into every export; only a folder holding it may be replaced
COLUMNS = "information_schema.columns"  # read with the tables: their SQL types, for the card


@dataclass(frozen=True)
class ExportSummary:
    out: Path
    fmt: str
    rows: dict[str, int]  # per table
    images: int

    def lines(self) -> list[str]:
        return [f"exported {self.rows.get('runs', 0)} runs, {self.rows.get('artworks', 0)} artworks, "
                f"{self.rows.get('labels', 0)} labels and {self.images} images to {self.out}",
                f"tables as {self.fmt}; the dataset card is {self.out / 'README.md'}"]


def export_gallery(gallery: str | Path, out_dir: str | Path, fmt: str = "parquet", *,
                   force: bool = False) -> ExportSummary:
    """Export ``gallery`` into the folder ``out_dir`` (new or empty; with ``force``, an earlier
    export there is replaced, never a folder of other files)."""
    if fmt not in EXPORT_FORMATS:
        raise GalleryError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    store = Store(gallery)
    if not store.exists:
        raise GalleryError(f"no gallery at {store.root} (expected {store.db_path})")
    out = Path(out_dir).expanduser().absolute()
    check_target(out, force=force)
    frames = store.snapshot({**{table: f"SELECT * FROM {table}" for table in TABLES},
                             COLUMNS: "SELECT table_name, column_name, data_type FROM information_schema.columns"})
    types = {(row.table_name, row.column_name): row.data_type for row in frames.pop(COLUMNS).itertuples()}
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.partial")
    staging.mkdir()
    try:
        frames["artworks"], images = _copy_images(store.root, staging, frames["artworks"])
        for table, frame in frames.items():
            target = staging / f"{table}.{fmt}"
            if fmt == "parquet":
                frame.to_parquet(target, index=False)
            else:
                frame.to_csv(target, index=False)
        summary = ExportSummary(out, fmt, {table: len(frame) for table, frame in frames.items()}, images)
        made = {"artbias_export": 1, "artbias": package_version("artbias"), "format": fmt,
                "created_at": f"{utc_now():%Y-%m-%dT%H:%M:%S}Z", "gallery": str(store.root.absolute()),
                "schema_version": _schema_version(frames), "rows": summary.rows, "images": images}
        (staging / MARKER).write_text(json.dumps(made, indent=2) + "\n")
        (staging / "README.md").write_text(dataset_card(frames, types, made))
        check_target(out, force=force)  # again: something may have appeared there meanwhile
        replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary


def check_target(out: Path, *, force: bool) -> None:
    """The export folder must be new or empty; ``force`` replaces only an earlier export."""
    if out.exists() and not out.is_dir():
        raise GalleryError(f"export target {out} exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise GalleryError(f"export target {out} is not empty; choose a new folder, or pass --force "
                           "to replace an earlier export there")
    if not is_export(out):
        raise GalleryError(f"export target {out} holds files that are not an artbias export (no "
                           f"{MARKER}); refusing to replace it, even with --force")


def is_export(folder: Path) -> bool:
    """Whether ``folder`` holds an export made by ``export_gallery`` (its marker file)."""
    try:
        return json.loads((folder / MARKER).read_text()).get("artbias_export") == 1
    except (OSError, ValueError, AttributeError):
        return False


def _copy_images(gallery_root: Path, staging: Path, artworks: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Copy every artwork's image into ``staging`` and point ``image_path`` at the copy."""
    from gallery.images import resolve_image

    exported: dict[str, str] = {}
    missing = []
    for path in artworks["image_path"].dropna().unique():
        target = _export_path(path)
        source = resolve_image(gallery_root, path)  # never a file outside the gallery's images/
        if source is None or not source.is_file():
            missing.append(path)
            continue
        (staging / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, staging / target)
        exported[path] = target
    if missing:
        raise GalleryError(f"{len(missing)} artwork images are missing from the gallery's images/ folder "
                           f"{gallery_root / IMAGES_DIR} (e.g. {', '.join(printable(p, 80) for p in missing[:3])}); "
                           "nothing was exported")
    return artworks.assign(image_path=artworks["image_path"].map(exported)), len(exported)


def _export_path(path: str) -> str:
    """Where an image goes in the export: its place in the gallery (``images/xx/sha.png``), or
    ``images/NAME`` for a path that is not a plain relative one under ``images/``."""
    pure = PurePosixPath(str(path).replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or pure.parts[:1] != (IMAGES_DIR,):
        return f"{IMAGES_DIR}/{pure.name}"
    return str(pure)


def _schema_version(frames: dict[str, pd.DataFrame]) -> int:
    versions = frames["schema_version"]["version"]
    return int(versions.max()) if len(versions) else 0


def dataset_card(frames: dict[str, pd.DataFrame], types: dict[tuple[str, str], str], made: dict) -> str:
    """The export's README.md: what it holds, how it was made, how to load it, every column."""
    fmt = made["format"]
    read = "pd.read_parquet" if fmt == "parquet" else "pd.read_csv"
    lines = [
        "# artbias gallery export", "",
        "Artworks that generators made when a CLIP-guided search asked them for a prompt (and "
        "unguided baseline samples), each labelled with a scene class by one or more labellers: "
        f"{made['rows']['runs']} runs, {made['rows']['artworks']} artworks, "
        f"{made['rows']['labels']} labels and {made['images']} image files.", "",
        "## How it was made", "",
        f"`artbias gallery export --format {fmt}` (artbias {made['artbias']}) on {made['created_at']} from "
        f"the gallery `{made['gallery']}` (schema version {made['schema_version']}). Every table was read "
        "in one read transaction, so the tables agree with each other even if a campaign was writing: "
        "each artwork's run and each label's artwork are here. The images were copied from the "
        "gallery; `artworks.image_path` is relative to this folder. `export.json` records the same.", "",
        "## Files", "",
        "| file | rows | what |", "|---|---|---|",
    ]
    what = {"campaigns": "one row per campaign", "runs": "one row per search or baseline chunk",
            "artworks": "one row per image a run kept", "labels": "one row per (artwork, labeller)",
            "labellers": "one row per labeller", "schema_version": "the store migrations applied"}
    lines += [f"| `{table}.{fmt}` | {len(frame)} | {what.get(table, '')} |" for table, frame in frames.items()]
    lines += [f"| `{IMAGES_DIR}/` | {made['images']} files | the PNGs, named by the sha256 of their bytes |", "",
              "## Loading", "",
              "```python",
              "import pandas as pd, PIL.Image",
              f'artworks = {read}("artworks.{fmt}").merge({read}("runs.{fmt}"), on="run_id")',
              "image = PIL.Image.open(artworks.image_path[0])  # paths are relative to this folder",
              "```", "",
              f"Labels join on `artwork_id` ({read}(\"labels.{fmt}\")); columns ending in `_json` hold "
              "JSON text (`json.loads`). Times are UTC."
              + (" `pyarrow.parquet.read_table(\"runs.parquet\")` reads a table without pandas."
                 if fmt == "parquet" else ""), "",
              "## Columns", ""]
    for table, frame in frames.items():
        docs = COLUMN_DOCS.get(table, {})
        lines += [f"### {table} ({len(frame)} rows)", "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| {column} | {types.get((table, column), frame[column].dtype)} | {docs.get(column, '')} |"
                  for column in frame.columns]
        lines.append("")
    return "\n".join(lines)
