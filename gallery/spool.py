"""Job results on shared storage, for campaigns too large to pass every image through the driver.

A worker that spools a result writes its PNGs content-named under ``SPOOL/images/`` (the
gallery's own layout) and then one Parquet shard, ``SPOOL/shards/<campaign>/<run_id>.parquet``:
one row per artwork (the PNG's name, scores, latent, labels as JSON) and the run itself (job,
status, times, versions, labellers) as JSON in the file's metadata. Both are written under a
temporary name and renamed into place, so a shard that exists is whole and its PNGs are there.
The worker hands back only a ``Ticket``.

The campaign's single writer ingests a shard (``read_result``), records it and only then
removes it, so ingestion is idempotent: a shard left by a killed driver is ingested by the
next run without recomputing its job, and a shard whose run is already recorded is dropped.
PNGs no shard refers to any more go at the end of each campaign run (``sweep``). One spool
folder serves one gallery at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path

from gallery.images import EncodedImage, image_files, write_png
from gallery.jobs import Artwork, CampaignJob, JobResult
from gallery.store.records import LabellerRecord

SHARDS = "shards"
METADATA_KEY = b"artbias.job_result"


@dataclass(frozen=True)
class Ticket:
    """What a spooling worker hands back instead of the result itself."""

    campaign_id: str
    run_id: str
    status: str
    worker: str


def shard_path(spool: str | Path, campaign_id: str, run_id: str) -> Path:
    return Path(spool) / SHARDS / campaign_id / f"{run_id}.parquet"


def write_result(spool: str | Path, result: JobResult) -> Ticket:
    """PNGs first (content-named), then the shard, each renamed into place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    spool = Path(spool)
    for artwork in result.artworks:
        write_png(spool, EncodedImage(artwork.png, artwork.sha256))
    rows = [{key: value for key, value in asdict(artwork).items() if key not in ("png", "labels")}
            | {"labels_json": json.dumps(artwork.labels, default=str)} for artwork in result.artworks]
    schema = pa.schema([("index", pa.int64()), ("role", pa.string()), ("rank", pa.int64()),
                        ("sha256", pa.string()), ("image_path", pa.string()), ("similarity", pa.float64()),
                        ("realism", pa.float64()), ("latent", pa.list_(pa.float64())),
                        ("labels_json", pa.string())])
    run = {
        "job": asdict(result.job), "status": result.status, "started_at": result.started_at.isoformat(),
        "finished_at": result.finished_at.isoformat(), "duration_s": result.duration_s, "error": result.error,
        "evaluations": result.evaluations, "history": result.history,
        "generator_identity": result.generator_identity, "versions": result.versions,
        "labellers": [asdict(labeller) for labeller in result.labellers], "worker": result.worker,
    }
    table = pa.Table.from_pylist(rows, schema=schema.with_metadata({METADATA_KEY: json.dumps(run, default=str)}))
    target = shard_path(spool, result.job.campaign_id, result.job.run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".partial-{uuid.uuid4().hex}.parquet")
    try:
        pq.write_table(table, partial)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return Ticket(result.job.campaign_id, result.job.run_id, result.status, result.worker)


def read_result(spool: str | Path, campaign_id: str, run_id: str) -> JobResult:
    """The result a shard holds, PNG bytes included (each checked against its name).

    Raises ``OSError`` or ``ValueError`` when the shard or one of its PNGs is missing or wrong.
    """
    import pyarrow.parquet as pq

    spool = Path(spool)
    table = pq.read_table(shard_path(spool, campaign_id, run_id))
    run = json.loads(table.schema.metadata[METADATA_KEY])
    job = _job(run["job"])
    if job.run_id != run_id:
        raise ValueError(f"shard {run_id} holds job {job.run_id}")
    artworks = []
    for row in table.to_pylist():
        png = (spool / row["image_path"]).read_bytes()
        if hashlib.sha256(png).hexdigest() != row["sha256"]:
            raise ValueError(f"spooled image {row['image_path']} does not match its name")
        artworks.append(Artwork(row["index"], row["role"], row["rank"], png, row["sha256"], row["image_path"],
                                row["similarity"], row["realism"], row["latent"], json.loads(row["labels_json"])))
    return JobResult(
        job, run["status"], datetime.fromisoformat(run["started_at"]), datetime.fromisoformat(run["finished_at"]),
        run["duration_s"], error=run["error"], evaluations=run["evaluations"], history=run["history"],
        generator_identity=run["generator_identity"], versions=run["versions"], artworks=artworks,
        labellers=[LabellerRecord(**labeller) for labeller in run["labellers"]], worker=run["worker"],
    )


def _job(raw: dict) -> CampaignJob:
    """A job from its JSON form (tuples came back as lists)."""
    values = {}
    for spec in fields(CampaignJob):
        if spec.name in raw:
            value = raw[spec.name]
            values[spec.name] = tuple(value) if str(spec.type).startswith("tuple") and value is not None else value
    return CampaignJob(**values)


def spooled_run_ids(spool: str | Path, campaign_id: str) -> set[str]:
    """Run ids of the campaign's shards now in the spool."""
    folder = Path(spool) / SHARDS / campaign_id
    return {path.stem for path in folder.glob("*.parquet") if not path.name.startswith(".")} if folder.is_dir() else set()


def remove(spool: str | Path, campaign_id: str, run_id: str) -> None:
    shard_path(spool, campaign_id, run_id).unlink(missing_ok=True)


def sweep(spool: str | Path) -> int:
    """Remove spooled PNGs no shard refers to, and temporary files; returns how many went.
    Only while no worker writes to this spool."""
    import pyarrow.parquet as pq

    spool = Path(spool)
    referenced: set[str] = set()
    removed = 0
    for path in sorted((spool / SHARDS).rglob("*.parquet")) if (spool / SHARDS).is_dir() else []:
        if path.name.startswith("."):
            path.unlink(missing_ok=True)
            removed += 1
            continue
        try:
            referenced |= set(pq.read_table(path, columns=["image_path"]).column("image_path").to_pylist())
        except Exception:  # an unreadable shard is dropped; its job runs again
            path.unlink(missing_ok=True)
    for relative in image_files(spool):
        if relative not in referenced:
            (spool / relative).unlink(missing_ok=True)
            removed += 1
    return removed
