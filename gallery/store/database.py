"""The gallery store's database: one DuckDB file of campaigns, runs, artworks and labels.

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
from gallery.store.schema import MIGRATIONS, SCHEMA_VERSION, TABLES

DB_NAME = "gallery.duckdb"
IMAGES_DIR = "images"

# Lock conflicts worth waiting out: another process holds the file, or (same process) a
# connection with the other read/write mode is still open for a moment.
_RETRYABLE = ("could not set lock", "conflicting lock", "different configuration")
READ_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 60.0


class GalleryError(ArtbiasError):
    """A gallery that is missing, damaged, locked for too long, not an artbias gallery, or
    written by another artbias version."""


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
                raise _unusable(path, error) from None
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.25)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _unusable(path: Path, error: Exception) -> GalleryError:
    """A one-line ``GalleryError`` for a file DuckDB cannot open or read (not a database,
    truncated, corrupt, unreadable), instead of DuckDB's own exception."""
    message = _first_line(error)
    if "not a valid duckdb database" in message.lower():
        return GalleryError(f"gallery file {path} is not a DuckDB database (corrupt, truncated or another "
                            "kind of file); restore it from a backup or choose another --gallery")
    return GalleryError(f"gallery file {path} cannot be used: {message}")


def _is_damage(error: Exception) -> bool:
    """DuckDB errors that mean the file itself is damaged or unreadable (not a bad query)."""
    import duckdb

    damage = (duckdb.IOException, duckdb.InternalException, duckdb.SerializationException, duckdb.FatalException)
    return isinstance(error, damage) and not _is_retryable(error)


def _make_folder(root: Path) -> None:
    """Create the gallery folder; a path that is a file or cannot be written is a ``GalleryError``."""
    if root.exists() and not root.is_dir():
        raise GalleryError(f"gallery path {root} is a file, not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GalleryError(f"cannot create gallery folder {root}: {error.strerror or error}") from None


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
        self._schema_checked = False  # every read checks the schema once per Store

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
        import duckdb

        _make_folder(self.root)
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
        except duckdb.Error as error:
            if not _is_damage(error):
                raise
            # A full disk, a read-only or damaged file: nothing of this transaction was kept.
            raise GalleryError(f"could not write to gallery {self.db_path}: {_first_line(error)}") from None
        finally:
            connection.close()

    def schema_version(self) -> int:
        """The highest migration applied (0 for a missing or empty file)."""
        if not self.exists:
            return 0
        return self._reading(_schema_version)

    def migrate(self) -> int:
        """Apply every migration the file lacks, in one transaction; returns the schema version.

        A new gallery is built under a temporary name and renamed into place, so a reader
        never finds a file without its tables.
        """
        import duckdb

        _make_folder(self.root)
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
        except (duckdb.Error, OSError) as error:
            raise GalleryError(f"cannot create gallery {self.db_path}: {_first_line(error)}") from None
        finally:
            partial.unlink(missing_ok=True)
            partial.with_name(partial.name + ".wal").unlink(missing_ok=True)
        return SCHEMA_VERSION

    # -- reading ---------------------------------------------------------------------------
    def read(self, sql: str, params: Sequence | dict | None = None) -> pd.DataFrame:
        """Run a read-only query, retrying while a writer holds the file; a DataFrame.

        The first read of a ``Store`` also checks the file's schema (``check_schema``): a
        file that is no artbias gallery, or one written by another artbias version, is a
        ``GalleryError`` rather than a misread."""
        def work(connection) -> pd.DataFrame:
            if not self._schema_checked:
                self.check_schema(connection)
                self._schema_checked = True
            return connection.execute(sql, params).df()

        return self._reading(work)

    def check_schema(self, connection, *, older: bool = False) -> int:
        """The schema version of the file behind an open ``connection``, after refusing a file
        that is not an artbias gallery (its tables missing), one from a newer artbias and,
        unless ``older``, one from an older artbias that a campaign has not yet migrated (with
        ``older``, a file without any table is version 0)."""
        found = {row[0] for row in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
        if not found and older:
            return 0
        if not found:
            raise GalleryError(f"gallery {self.db_path} has no tables yet: it is not a complete artbias "
                               "gallery (a campaign creates them)")
        missing = [table for table in TABLES if table not in found]
        if missing:
            raise GalleryError(f"{self.db_path} is not an artbias gallery: it lacks the tables "
                               f"{', '.join(missing)}")
        version = _schema_version(connection)
        _refuse_newer(version, self.db_path)
        if version < SCHEMA_VERSION and not older:
            raise GalleryError(f"gallery {self.db_path} has schema version {version}, older than this "
                               f"artbias's ({SCHEMA_VERSION}); run a campaign on it to bring it up to date")
        return version

    def verify(self) -> None:
        """Read every row of every table once: a truncated or corrupt file is a ``GalleryError``
        here, before a campaign writes anything into it (DuckDB opens such a file happily and
        fails only when it reaches the missing blocks)."""
        def work(connection) -> None:
            if not self.check_schema(connection, older=True):
                return  # no tables yet: nothing to read
            for table in TABLES:
                connection.execute(f"SELECT count(*), max(COLUMNS(*)) FROM {table}").fetchall()

        self._reading(work)

    def snapshot(self, queries: dict[str, str]) -> dict[str, pd.DataFrame]:
        """Several read-only queries (name -> SQL) answered in ONE read transaction on one
        read-only connection: one state of the gallery, so no writer commits between them (an
        artwork never points at a run the other frames lack). A gallery written by a newer
        artbias is refused, as ``migrate`` refuses it."""
        def work(connection) -> dict[str, pd.DataFrame]:
            connection.execute("BEGIN TRANSACTION")
            try:
                self.check_schema(connection)
                return {name: connection.execute(sql).df() for name, sql in queries.items()}
            finally:
                with suppress(Exception):  # nothing was written: ending it is all there is to do
                    connection.execute("ROLLBACK")

        return self._reading(work)

    def _reading(self, work):
        """``work(connection)`` on a fresh read-only connection, retried while a writer holds
        the file (for up to ``read_timeout_s``)."""
        if not self.exists:
            raise GalleryError(f"no gallery at {self.root} (expected {self.db_path}); run a campaign first")
        deadline = time.monotonic() + self.read_timeout_s
        delay = 0.01
        while True:
            connection = None
            try:
                connection = _connect_with_retries(
                    self.db_path, read_only=True, timeout_s=max(0.0, deadline - time.monotonic()))
                return work(connection)
            except Exception as error:
                if _is_damage(error):  # a truncated or corrupt file
                    raise GalleryError(f"gallery {self.db_path} is damaged (corrupt or truncated): "
                                       f"{_first_line(error)}") from None
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
    current = _schema_version(con)
    _refuse_newer(current, db_path)
    for version in sorted(v for v in MIGRATIONS if v > current):
        con.execute(MIGRATIONS[version])
        con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, utc_now()])


def _schema_version(con) -> int:
    """The highest migration applied on an open connection (0 when there is none)."""
    found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'")
    if not found.fetchone()[0]:
        return 0
    return int(con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])


def _refuse_newer(current: int, db_path: Path) -> None:
    if current > SCHEMA_VERSION:
        raise GalleryError(
            f"gallery {db_path} has schema version {current}, newer than this artbias understands "
            f"({SCHEMA_VERSION}); upgrade artbias to use it"
        )


def _where(filters: dict[str, object]) -> tuple[str, list]:
    """A parameterised WHERE clause over the filters that are not None (column names are ours)."""
    used = {column: value for column, value in filters.items() if value is not None}
    if not used:
        return "", []
    return "WHERE " + " AND ".join(f"{column} = ?" for column in used), list(used.values())


