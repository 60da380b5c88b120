"""The gallery store: one DuckDB file of campaigns, runs, artworks and labels, beside its images.

Layout of a gallery folder::

    gallery.duckdb                      the tables below (schema version in schema_version)
    images/<sha256[:2]>/<sha256>.png    every artwork, named by the hash of its PNG bytes

DuckDB lets one process write a file or many processes read it, never both at once. So the
campaign writer opens a connection only for each short transaction (``Store.write()``) and
closes it right after, and readers (the Streamlit app, ``artbias bias``) open a read-only
connection per query (``Store.read()``) and retry for a few seconds when the writer holds the
lock. A visitor never sees a lock error, and new artworks appear on the next refresh.

Migrations are numbered SQL scripts applied in order, each in its own transaction together
with its row in ``schema_version``; a file made by an older artbias is brought up to date by
the writer, and a file made by a newer one is refused rather than misread.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from data.errors import ArtbiasError
from data.files import write_atomically

DB_NAME = "gallery.duckdb"
IMAGES_DIR = "images"

# Lock conflicts worth waiting out: another process holds the file, or (same process) a
# connection with the other read/write mode is still open for a moment.
_RETRYABLE = ("could not set lock", "conflicting lock", "different configuration")
READ_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 60.0


class GalleryError(ArtbiasError):
    """A gallery that is missing, locked for too long, or written by a newer artbias."""


# -- schema ------------------------------------------------------------------------------------
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE campaigns (
        campaign_id VARCHAR PRIMARY KEY, name VARCHAR, config_json VARCHAR, created_at TIMESTAMP
    );
    CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY, campaign_id VARCHAR, kind VARCHAR, generator VARCHAR,
        prompt VARCHAR, modifier VARCHAR, full_prompt VARCHAR, seed INTEGER, algorithm VARCHAR,
        settings_json VARCHAR, clip VARCHAR, generator_identity_json VARCHAR,
        versions_json VARCHAR, status VARCHAR, error VARCHAR, evaluations INTEGER,
        history_json VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, duration_s DOUBLE
    );
    CREATE TABLE artworks (
        artwork_id VARCHAR PRIMARY KEY, run_id VARCHAR, role VARCHAR, rank INTEGER,
        image_sha256 VARCHAR, image_path VARCHAR, similarity DOUBLE, realism DOUBLE,
        latent_json VARCHAR, created_at TIMESTAMP
    );
    CREATE TABLE labels (
        artwork_id VARCHAR, labeller VARCHAR, predicted VARCHAR, confidence DOUBLE,
        probabilities_json VARCHAR, PRIMARY KEY (artwork_id, labeller)
    );
    CREATE TABLE labellers (
        labeller VARCHAR PRIMARY KEY, classes_json VARCHAR, confusion_json VARCHAR,
        identity_json VARCHAR
    );
    """,
}
SCHEMA_VERSION = max(MIGRATIONS)
TABLES = ("campaigns", "runs", "artworks", "labels", "labellers", "schema_version")

# What each column means: shown in exports' README and available to the app.
COLUMN_DOCS: dict[str, dict[str, str]] = {
    "campaigns": {
        "campaign_id": "the campaign's id (derived from its name)",
        "name": "the name given in the campaign TOML",
        "config_json": "the validated campaign configuration as JSON",
        "created_at": "when the campaign was first run (UTC)",
    },
    "runs": {
        "run_id": "hash of the job key (campaign, kind, generator, prompt, modifier, seed, algorithm)",
        "campaign_id": "the campaign the run belongs to",
        "kind": "'search' (CLIP-guided) or 'baseline' (unguided samples from the prior)",
        "generator": "generator spec as given (catalogue name or FAMILY:PATH)",
        "prompt": "the base prompt; NULL for baseline runs",
        "modifier": "the style modifier applied to the prompt, '' for none",
        "full_prompt": "the text CLIP saw (prompt with its modifier); NULL for baselines",
        "seed": "search seed, or the sampling seed of a baseline chunk",
        "algorithm": "search algorithm (ga, nsga2, cmaes, random) or 'prior' for baselines",
        "settings_json": "the full search settings (SearchConfig) or baseline settings",
        "clip": "the CLIP model name the search was scored with",
        "generator_identity_json": "the generator's identity (family, config, weights hash)",
        "versions_json": "versions of python, torch and the other tracked packages",
        "status": "'done' or 'failed'",
        "error": "the error of a failed run, NULL otherwise",
        "evaluations": "generator+CLIP evaluations the search used",
        "history_json": "best CLIP similarity after each generation",
        "started_at": "when the job started (UTC)",
        "finished_at": "when the job finished (UTC)",
        "duration_s": "the job's wall-clock seconds",
    },
    "artworks": {
        "artwork_id": "run_id || ':' || index within the run",
        "run_id": "the run that made the artwork",
        "role": "'chosen' (the run's answer), 'top' (runners-up), 'pareto' (front members) or 'baseline'",
        "rank": "0 for the chosen artwork, then runners-up in order; sample index for baselines",
        "image_sha256": "sha256 of the PNG bytes",
        "image_path": "the PNG's path relative to the gallery folder",
        "similarity": "CLIP cosine similarity to full_prompt; NULL for baselines",
        "realism": "the discriminator's realism score, NULL where the generator has none",
        "latent_json": "the latent vector (flat search vector) as a JSON list",
        "created_at": "when the row was written (UTC)",
    },
    "labels": {
        "artwork_id": "the labelled artwork",
        "labeller": "labeller spec, e.g. 'classifier-world' or 'clip:clip-world'",
        "predicted": "the most probable class",
        "confidence": "its probability",
        "probabilities_json": "every class's probability as {class: p}",
    },
    "labellers": {
        "labeller": "labeller spec as in labels.labeller",
        "classes_json": "class names in the labeller's order",
        "confusion_json": "confusion matrix counts (rows = true class, columns = predicted); NULL for zero-shot labellers",
        "identity_json": "the labeller's identity (architecture, weights path, CLIP, templates)",
    },
    "schema_version": {
        "version": "a migration applied to the file",
        "applied_at": "when it was applied (UTC)",
    },
}


def utc_now() -> datetime:
    """Naive UTC timestamps: DuckDB's TIMESTAMP carries no zone."""
    return datetime.now(UTC).replace(tzinfo=None)


def _is_retryable(error: Exception) -> bool:
    import duckdb

    return isinstance(error, duckdb.Error) and any(m in str(error).lower() for m in _RETRYABLE)


def _connect_with_retries(path: Path, *, read_only: bool, timeout_s: float):
    """A DuckDB connection, waiting out another process's lock with jittered backoff."""
    import duckdb

    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as error:
            if not _is_retryable(error) or time.monotonic() >= deadline:
                if _is_retryable(error):
                    mode = "read" if read_only else "write"
                    raise GalleryError(f"gallery {path} stayed locked for {timeout_s:.0f} s; could not {mode} it") from None
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.25)


class Store:
    """A gallery folder: ``Store(dir)`` (or the path of its ``gallery.duckdb``)."""

    def __init__(self, path: str | Path, *, read_timeout_s: float = READ_TIMEOUT_S,
                 write_timeout_s: float = WRITE_TIMEOUT_S):
        path = Path(path).expanduser()
        self.root = path.parent if path.suffix == ".duckdb" else path
        self.db_path = self.root / DB_NAME
        self.images_dir = self.root / IMAGES_DIR
        self.read_timeout_s = read_timeout_s
        self.write_timeout_s = write_timeout_s

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @property
    def exists(self) -> bool:
        return self.db_path.is_file()

    # -- writing ---------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator:
        """One short write transaction: connect, BEGIN, yield the connection, COMMIT, close.

        An exception rolls the whole transaction back, so a run's rows land all or not at all.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        connection = _connect_with_retries(self.db_path, read_only=False, timeout_s=self.write_timeout_s)
        try:
            connection.execute("BEGIN TRANSACTION")
            try:
                yield connection
            except BaseException:
                with suppress(Exception):  # keep the original error if the rollback fails too
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    def schema_version(self) -> int:
        """The highest migration applied (0 for a missing or empty file)."""
        if not self.exists:
            return 0
        tables = self.read("SELECT table_name FROM information_schema.tables WHERE table_name = 'schema_version'")
        if tables.empty:
            return 0
        found = self.read("SELECT max(version) AS v FROM schema_version")["v"].iloc[0]
        return 0 if pd.isna(found) else int(found)

    def migrate(self) -> int:
        """Apply every migration the file lacks, in one transaction; returns the schema version.

        A new gallery is built under a temporary name and renamed into place, so a reader
        never finds a file without its tables.
        """
        import duckdb

        self.root.mkdir(parents=True, exist_ok=True)
        if self.exists:
            with self.write() as con:
                _apply_migrations(con, self.db_path)
            return SCHEMA_VERSION
        partial = self.root / f".{DB_NAME}.{uuid.uuid4().hex[:8]}.partial"
        try:
            con = duckdb.connect(str(partial))
            try:
                con.execute("BEGIN TRANSACTION")
                _apply_migrations(con, self.db_path)
                con.execute("COMMIT")
            finally:
                con.close()
            os.replace(partial, self.db_path)
        finally:
            partial.unlink(missing_ok=True)
            partial.with_name(partial.name + ".wal").unlink(missing_ok=True)
        return SCHEMA_VERSION

    # -- reading ---------------------------------------------------------------------------
    def read(self, sql: str, params: Sequence | dict | None = None) -> pd.DataFrame:
        """Run a read-only query, retrying while a writer holds the file; a DataFrame."""
        if not self.exists:
            raise GalleryError(f"no gallery at {self.root} (expected {self.db_path}); run a campaign first")
        deadline = time.monotonic() + self.read_timeout_s
        delay = 0.01
        while True:
            connection = None
            try:
                connection = _connect_with_retries(
                    self.db_path, read_only=True, timeout_s=max(0.0, deadline - time.monotonic()))
                return connection.execute(sql, params).df()
            except Exception as error:
                # The writer may take the lock between connecting and querying; retry that too.
                if not _is_retryable(error) or time.monotonic() >= deadline:
                    raise
            finally:
                if connection is not None:
                    connection.close()
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)

    # -- typed helpers ---------------------------------------------------------------------
    def done_run_ids(self, campaign_id: str | None = None) -> set[str]:
        sql = "SELECT run_id FROM runs WHERE status = 'done'"
        params: list = []
        if campaign_id is not None:
            sql += " AND campaign_id = ?"
            params.append(campaign_id)
        return set(self.read(sql, params)["run_id"])

    def image_paths(self) -> set[str]:
        """Every image path an artwork row refers to (relative to the gallery folder)."""
        return set(self.read("SELECT DISTINCT image_path FROM artworks")["image_path"])

    def campaigns(self) -> pd.DataFrame:
        return self.read("SELECT * FROM campaigns ORDER BY created_at")

    def runs(self, *, campaign_id: str | None = None, status: str | None = None) -> pd.DataFrame:
        where, params = _where({"campaign_id": campaign_id, "status": status})
        return self.read(f"SELECT * FROM runs {where} ORDER BY started_at, run_id", params)

    def artworks(
        self,
        *,
        campaign_id: str | None = None,
        generator: str | None = None,
        prompt: str | None = None,
        role: str | None = None,
        kind: str | None = None,
        labeller: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Artworks joined with their run (generator, prompt, seed...) and, when a labeller is
        named, its label (``predicted``, ``confidence``, ``probabilities_json``)."""
        where, params = _where({
            "r.campaign_id": campaign_id, "r.generator": generator, "r.prompt": prompt,
            "a.role": role, "r.kind": kind,
        })
        label_join, label_cols = "", ""
        if labeller is not None:
            label_join = "LEFT JOIN labels l ON l.artwork_id = a.artwork_id AND l.labeller = ?"
            label_cols = ", l.labeller, l.predicted, l.confidence, l.probabilities_json"
            params = [labeller, *params]
        sql = (
            "SELECT a.*, r.campaign_id, r.kind, r.generator, r.prompt, r.modifier, r.full_prompt,"
            f" r.seed, r.algorithm, r.clip{label_cols}"
            f" FROM artworks a JOIN runs r ON r.run_id = a.run_id {label_join} {where}"
            " ORDER BY r.generator, r.prompt, r.seed, a.rank"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.read(sql, params)

    def label_counts(
        self,
        labeller: str,
        *,
        role: str | None = "chosen",
        campaign_id: str | None = None,
        kind: str | None = None,
    ) -> pd.DataFrame:
        """Counts of predicted classes per (generator, kind, prompt): columns generator, kind,
        prompt, predicted, n. Baseline runs have prompt NULL (and role 'baseline')."""
        where, params = _where({"l.labeller": labeller, "a.role": role, "r.campaign_id": campaign_id,
                                "r.kind": kind})
        sql = (
            "SELECT r.generator, r.kind, r.prompt, l.predicted, count(*) AS n"
            " FROM labels l JOIN artworks a ON a.artwork_id = l.artwork_id"
            f" JOIN runs r ON r.run_id = a.run_id {where}"
            " GROUP BY ALL ORDER BY r.generator, r.kind, r.prompt, l.predicted"
        )
        return self.read(sql, params)

    def labellers(self) -> dict[str, dict]:
        """Each labeller's classes, confusion matrix (or None) and identity."""
        frame = self.read("SELECT * FROM labellers ORDER BY labeller")
        return {
            row.labeller: {
                "classes": json.loads(row.classes_json),
                "confusion": json.loads(row.confusion_json) if isinstance(row.confusion_json, str) else None,
                "identity": json.loads(row.identity_json) if isinstance(row.identity_json, str) else {},
            }
            for row in frame.itertuples()
        }


def _apply_migrations(con, db_path: Path) -> None:
    """Bring an open connection's database up to ``SCHEMA_VERSION`` (caller holds a transaction)."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMP)")
    current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise GalleryError(
            f"gallery {db_path} has schema version {current}, newer than this artbias understands "
            f"({SCHEMA_VERSION}); upgrade artbias to use it"
        )
    for version in sorted(v for v in MIGRATIONS if v > current):
        con.execute(MIGRATIONS[version])
        con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, utc_now()])


def _where(filters: dict[str, object]) -> tuple[str, list]:
    """A parameterised WHERE clause over the filters that are not None (column names are ours)."""
    used = {column: value for column, value in filters.items() if value is not None}
    if not used:
        return "", []
    return "WHERE " + " AND ".join(f"{column} = ?" for column in used), list(used.values())


# -- export ------------------------------------------------------------------------------------
EXPORT_FORMATS = ("parquet", "csv")


def export_gallery(gallery: str | Path, out_dir: str | Path, fmt: str = "parquet") -> list[Path]:
    """One file per table (``runs.parquet``...) plus ``README.md`` describing the columns.

    Each file is written under a temporary name and renamed, so the folder never holds a
    half-written table.
    """
    if fmt not in EXPORT_FORMATS:
        raise GalleryError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    store = Store(gallery)
    if not store.exists:
        raise GalleryError(f"no gallery at {store.root} (expected {store.db_path})")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise GalleryError(f"export target {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)

    def publish(target: Path, write) -> Path:
        write_atomically(target, write)
        return target

    written: list[Path] = []
    readme = [f"# Gallery export ({fmt})", "", f"Exported from `{store.db_path}` (schema version "
              f"{store.schema_version()}) on {utc_now():%Y-%m-%d %H:%M} UTC. Images are in "
              f"`{store.images_dir}`; `artworks.image_path` is relative to `{store.root}`.", ""]
    for table in TABLES:
        frame = store.read(f"SELECT * FROM {table}")
        target = out / f"{table}.{fmt}"
        if fmt == "parquet":
            written.append(publish(target, lambda p, f=frame: f.to_parquet(p, index=False)))
        else:
            written.append(publish(target, lambda p, f=frame: f.to_csv(p, index=False)))
        readme += [f"## {table}.{fmt} ({len(frame)} rows)", "", "| column | type | meaning |",
                   "|---|---|---|"]
        docs = COLUMN_DOCS.get(table, {})
        readme += [f"| {column} | {frame[column].dtype} | {docs.get(column, '')} |" for column in frame.columns]
        readme.append("")
    written.append(publish(out / "README.md", lambda p: p.write_text("\n".join(readme))))
    return written
