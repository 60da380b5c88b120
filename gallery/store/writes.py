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


def record_labels(store: Store, labels: Sequence[LabelRecord], labellers: Sequence[LabellerRecord],
                  withdrawn: Sequence[tuple[str, str]] = ()) -> None:
    """Add or replace labels (by artwork and labeller) and their labellers, in one transaction
    (imported annotations: a re-import of the same artwork by the same annotator replaces it);
    the labels of the ``withdrawn`` (artwork_id, labeller) pairs go in the same transaction
    (annotations a person took back)."""
    with store.write() as con:
        con.execute("CREATE OR REPLACE TEMP TABLE replaced_labels (artwork_id VARCHAR, labeller VARCHAR)")
        pairs = [[label.artwork_id, label.labeller] for label in labels] + [list(p) for p in withdrawn]
        if pairs:
            con.executemany("INSERT INTO replaced_labels VALUES (?, ?)", pairs)
        con.execute("DELETE FROM labels USING replaced_labels r "
                    "WHERE labels.artwork_id = r.artwork_id AND labels.labeller = r.labeller")
        con.execute("DROP TABLE replaced_labels")
        _insert(con, "labels", [_label_row(label) for label in labels])
        _insert(con, "labellers", [_labeller_row(labeller) for labeller in labellers],
                upsert_key="labeller")


# -- CLIP image embeddings (``artbias gallery embed``) ---------------------------------------------
def record_embeddings(
    store: Store,
    clip: str,
    identity: dict,
    artwork_ids: Sequence[str],
    image_sha256: Sequence[str | None],
    vectors,
) -> int:
    """Add or replace ``clip``'s image embeddings of these artworks (``vectors``: one row per
    artwork, [n, dim]) and record the CLIP's identity, in ONE transaction: a batch lands whole
    or not at all. A CLIP keeps one dimension and one set of weights per gallery (compared by
    ``identity["weights_sha256"]`` where both sides record it). Returns the rows written."""
    import numpy as np
    import pandas as pd

    from gallery.store.database import GalleryError, utc_now

    if not isinstance(clip, str) or not clip.strip():
        raise GalleryError("an embedding needs the name of the CLIP that made it")
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(artwork_ids) or len(image_sha256) != len(artwork_ids):
        raise GalleryError(f"embeddings must be [artworks, dim] with one id and image hash per row; got "
                           f"{list(matrix.shape)} for {len(artwork_ids)} ids and {len(image_sha256)} hashes")
    if matrix.shape[1] == 0 or not np.isfinite(matrix).all():
        raise GalleryError(f"CLIP {clip!r}: embeddings must be non-empty vectors of finite numbers")
    if len(set(artwork_ids)) != len(artwork_ids):
        raise GalleryError(f"CLIP {clip!r}: an artwork appears twice in one batch of embeddings")
    dim = int(matrix.shape[1])
    now = utc_now()
    with store.write() as con:
        found = con.execute("SELECT dim, identity_json FROM embedding_models WHERE clip = ?", [clip]).fetchall()
        if found:
            known = found[0]
            if int(known[0]) != dim:
                raise GalleryError(f"CLIP {clip!r} already holds {known[0]}-dimensional embeddings in this gallery, "
                                   f"not {dim}; embed under another --clip name")
            before = json.loads(known[1] or "{}").get("weights_sha256")
            if before and identity.get("weights_sha256") and before != identity["weights_sha256"]:
                raise GalleryError(f"CLIP {clip!r} has other weights than the ones that embedded this gallery; "
                                   "embed under another --clip name (a folder path, say)")
        else:
            con.execute("INSERT INTO embedding_models (clip, dim, identity_json, created_at) VALUES (?, ?, ?, ?)",
                        [clip, dim, _json(identity), now])
        if not len(artwork_ids):
            return 0
        fresh = pd.DataFrame({"artwork_id": list(artwork_ids), "image_sha256": list(image_sha256),
                              "vector": list(matrix)})
        con.register("fresh_embeddings", fresh)
        try:
            con.execute("DELETE FROM embeddings USING fresh_embeddings f "
                        "WHERE embeddings.artwork_id = f.artwork_id AND embeddings.clip = ?", [clip])
            con.execute("INSERT INTO embeddings (artwork_id, clip, image_sha256, vector, created_at) "
                        "SELECT artwork_id, ?, image_sha256, vector::FLOAT[], ? FROM fresh_embeddings",
                        [clip, now])
        finally:
            con.unregister("fresh_embeddings")
    return len(artwork_ids)


def prune_embeddings(store: Store) -> int:
    """Delete embeddings whose artwork is gone (a pruned run) or whose image changed (a
    replaced run), in one transaction; returns how many."""
    with store.write() as con:
        found = con.execute(
            "DELETE FROM embeddings e WHERE NOT EXISTS (SELECT 1 FROM artworks a WHERE a.artwork_id = e.artwork_id"
            " AND a.image_sha256 IS NOT DISTINCT FROM e.image_sha256)").fetchall()
    return int(found[0][0]) if found else 0
