"""The store's write API: the only module that writes SQL into a gallery.

Each function is one short write transaction (``Store.write``), so a run's rows land all or
none, and readers only ever wait milliseconds. Rows are inserted by column name from the
typed records in ``gallery.store.records``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict

from gallery.store.database import Store
from gallery.store.records import (
    ArtworkRecord,
    CampaignRecord,
    LabellerRecord,
    LabelRecord,
    RunRecord,
)


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _run_row(run: RunRecord) -> dict:
    row = asdict(run)
    for key in ("settings", "generator_identity", "versions", "history"):
        row[f"{key}_json"] = _json(row.pop(key))
    return row


def _artwork_row(artwork: ArtworkRecord) -> dict:
    row = asdict(artwork)
    row["latent_json"] = _json(row.pop("latent"))
    return row


def _label_row(label: LabelRecord) -> dict:
    row = asdict(label)
    row["probabilities_json"] = _json(row.pop("probabilities"))
    return row


def _labeller_row(labeller: LabellerRecord) -> dict:
    return {
        "labeller": labeller.labeller,
        "classes_json": _json(list(labeller.classes)),
        "confusion_json": _json(labeller.confusion),
        "identity_json": _json(labeller.identity),
    }


def _insert(con, table: str, rows: Sequence[dict], *, upsert_key: str | None = None) -> None:
    if not rows:
        return
    columns = list(rows[0])
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    if upsert_key is not None:
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != upsert_key)
        sql += f" ON CONFLICT ({upsert_key}) DO UPDATE SET {updates}"
    con.executemany(sql, [[row[c] for c in columns] for row in rows])


def _delete_runs(con, run_ids: Sequence[str]) -> None:
    """Runs with their artworks and labels (caller holds the transaction)."""
    con.execute("CREATE OR REPLACE TEMP TABLE doomed_runs (run_id VARCHAR)")
    con.executemany("INSERT INTO doomed_runs VALUES (?)", [[r] for r in run_ids])
    con.execute("DELETE FROM labels WHERE artwork_id IN (SELECT artwork_id FROM artworks "
                "WHERE run_id IN (SELECT run_id FROM doomed_runs))")
    con.execute("DELETE FROM artworks WHERE run_id IN (SELECT run_id FROM doomed_runs)")
    con.execute("DELETE FROM runs WHERE run_id IN (SELECT run_id FROM doomed_runs)")
    con.execute("DROP TABLE doomed_runs")


def record_run(
    store: Store,
    run: RunRecord,
    artworks: Iterable[ArtworkRecord] = (),
    labels: Iterable[LabelRecord] = (),
    labellers: Iterable[LabellerRecord] = (),
) -> None:
    """Replace a run (by ``run_id``) with these rows, in one transaction.

    Image files must already be in place: a kill before the commit then leaves at most
    unreferenced PNGs, never a row pointing at a missing file.
    """
    with store.write() as con:
        _delete_runs(con, [run.run_id])
        _insert(con, "runs", [_run_row(run)])
        _insert(con, "artworks", [_artwork_row(a) for a in artworks])
        _insert(con, "labels", [_label_row(label) for label in labels])
        _insert(con, "labellers", [_labeller_row(labeller) for labeller in labellers],
                upsert_key="labeller")


def upsert_campaign(store: Store, campaign: CampaignRecord, *, delete_runs: Sequence[str] = ()) -> None:
    """Create or rename a campaign (its first ``created_at`` is kept), deleting runs it no
    longer plans with their artworks and labels, in one transaction."""
    with store.write() as con:
        con.execute(
            "INSERT INTO campaigns (campaign_id, name, config_json, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (campaign_id) DO UPDATE SET name = excluded.name, config_json = excluded.config_json",
            [campaign.campaign_id, campaign.name, _json(campaign.config), campaign.created_at],
        )
        if delete_runs:
            _delete_runs(con, list(delete_runs))


def insert_rows(
    store: Store,
    *,
    campaigns: Sequence[CampaignRecord] = (),
    runs: Sequence[RunRecord] = (),
    artworks: Sequence[ArtworkRecord] = (),
    labels: Sequence[LabelRecord] = (),
    labellers: Sequence[LabellerRecord] = (),
) -> None:
    """Bulk insert of fresh rows in one transaction (building galleries for tests and tools)."""
    with store.write() as con:
        _insert(con, "campaigns", [
            {"campaign_id": c.campaign_id, "name": c.name, "config_json": _json(c.config),
             "created_at": c.created_at} for c in campaigns])
        _insert(con, "runs", [_run_row(r) for r in runs])
        _insert(con, "artworks", [_artwork_row(a) for a in artworks])
        _insert(con, "labels", [_label_row(label) for label in labels])
        _insert(con, "labellers", [_labeller_row(labeller) for labeller in labellers],
                upsert_key="labeller")


def record_labels(store: Store, labels: Sequence[LabelRecord], labellers: Sequence[LabellerRecord]) -> None:
    """Add or replace labels (by artwork and labeller) and their labellers, in one transaction
    (imported annotations: a re-import of the same artwork by the same annotator replaces it)."""
    with store.write() as con:
        con.execute("CREATE OR REPLACE TEMP TABLE replaced_labels (artwork_id VARCHAR, labeller VARCHAR)")
        con.executemany("INSERT INTO replaced_labels VALUES (?, ?)",
                        [[label.artwork_id, label.labeller] for label in labels])
        con.execute("DELETE FROM labels USING replaced_labels r "
                    "WHERE labels.artwork_id = r.artwork_id AND labels.labeller = r.labeller")
        con.execute("DROP TABLE replaced_labels")
        _insert(con, "labels", [_label_row(label) for label in labels])
        _insert(con, "labellers", [_labeller_row(labeller) for labeller in labellers],
                upsert_key="labeller")
