"""The gallery store: schema and migrations, transactions, lock retries, images, export."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet
import pytest
import torch
from PIL import Image
from sample_gallery import gallery_at_version

from gallery.images import encode_png, image_files, save_image, sweep_orphans
from gallery.store import (
    SCHEMA_VERSION,
    TABLES,
    GalleryError,
    Store,
    export_gallery,
    utc_now,
)


def tables_of(store: Store) -> set[str]:
    return set(store.read("SELECT table_name FROM information_schema.tables")["table_name"])


def add_run(store: Store, run_id: str, *, generator="gen-a", prompt="a calm sea", kind="search",
            artworks=2, labels=("sea", "forest")) -> None:
    """Rows for one run, written the way a campaign writes them (images first, then one
    transaction)."""
    now = utc_now()
    for i in range(artworks):
        image = store.root / f"images/{run_id}{i}.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(f"png of {run_id}:{i}".encode())
    with store.write() as con:
        con.execute("INSERT INTO runs (run_id, campaign_id, kind, generator, prompt, modifier, seed,"
                    " algorithm, status) VALUES (?, 'c', ?, ?, ?, '', 0, 'ga', 'done')",
                    [run_id, kind, generator, prompt])
        for i in range(artworks):
            role = "baseline" if kind == "baseline" else ("chosen" if i == 0 else "top")
            con.execute("INSERT INTO artworks (artwork_id, run_id, role, rank, image_path, created_at)"
                        " VALUES (?, ?, ?, ?, ?, ?)", [f"{run_id}:{i}", run_id, role, i, f"images/{run_id}{i}.png", now])
            predicted = labels[i % len(labels)]
            con.execute("INSERT INTO labels VALUES (?, 'clf', ?, 0.9, ?)",
                        [f"{run_id}:{i}", predicted, json.dumps({predicted: 0.9})])
        con.execute("INSERT INTO labellers VALUES ('clf', ?, NULL, '{}') ON CONFLICT DO NOTHING",
                    [json.dumps(["forest", "sea"])])


@pytest.fixture()
def store(tmp_path) -> Store:
    store = Store(tmp_path / "gallery")
    store.migrate()
    return store


# -- schema -------------------------------------------------------------------------------------
def test_an_empty_v0_file_migrates_and_records_its_version(tmp_path):
    (tmp_path / "g").mkdir()
    duckdb.connect(str(tmp_path / "g" / "gallery.duckdb")).close()  # a file with no tables
    store = Store(tmp_path / "g")
    assert store.schema_version() == 0
    assert store.migrate() == SCHEMA_VERSION
    assert set(TABLES) <= tables_of(store)
    store.migrate()  # a second start applies nothing twice
    versions = store.read("SELECT version FROM schema_version")["version"].tolist()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def _version_2_gallery(path: Path) -> Store:
    """A gallery as artbias wrote it at schema version 2 (before the embedding tables), with a run."""
    store = Store(gallery_at_version(path, 2))
    add_run(store, "r1")
    return store


def test_serving_an_older_gallery_brings_it_up_to_date_first(tmp_path, monkeypatch, capsys):
    import socket

    import gallery.report_commands as report_commands

    store = _version_2_gallery(tmp_path / "old")
    assert store.schema_version() == 2 < SCHEMA_VERSION
    with pytest.raises(GalleryError, match="older"):
        Store(store.root).read("SELECT 1")  # the app's readers refuse it as it is
    started = []

    class Child:  # Streamlit, as far as serve() can tell: it ran and exited
        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(report_commands.subprocess, "Popen",
                        lambda command, **kwargs: started.append(command) or Child())
    monkeypatch.setattr(report_commands, "stop_process_group", lambda child: None)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert report_commands.serve(store.root, port, "127.0.0.1") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"artbias gallery: brought {store.root} up to date (schema version 2 -> {SCHEMA_VERSION})"
    assert len(out) == 2 and "serving" in out[1] and len(started) == 1
    fresh = Store(store.root)
    assert fresh.schema_version() == SCHEMA_VERSION
    assert fresh.read("SELECT version FROM schema_version ORDER BY version")["version"].tolist() == list(
        range(1, SCHEMA_VERSION + 1))
    assert fresh.read("SELECT run_id FROM runs")["run_id"].tolist() == ["r1"]  # nothing lost
    assert {"embedding_models", "embeddings"} <= tables_of(fresh)

    assert report_commands.serve(store.root, port, "127.0.0.1") == 0  # up to date: nothing to say
    assert "brought" not in capsys.readouterr().out and len(started) == 2


def test_serving_a_newer_or_foreign_gallery_is_still_refused(tmp_path, monkeypatch, capsys):
    import gallery.report_commands as report_commands

    monkeypatch.setattr(report_commands.subprocess, "Popen", lambda *args, **kwargs: pytest.fail("served"))
    newer = Store(tmp_path / "newer")
    newer.migrate()
    with newer.write() as con:
        con.execute("INSERT INTO schema_version VALUES (?, ?)", [SCHEMA_VERSION + 1, utc_now()])
    (tmp_path / "foreign").mkdir()
    con = duckdb.connect(str(tmp_path / "foreign" / "gallery.duckdb"))
    con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMP)")
    con.execute("INSERT INTO schema_version VALUES (1, now())")
    con.execute("CREATE TABLE notes (text VARCHAR)")
    con.close()
    for where, message in ((newer.root, "newer"), (tmp_path / "foreign", "not an artbias gallery")):
        with pytest.raises(GalleryError, match=message) as refused:
            report_commands.serve(where, 8501)
        assert "\n" not in str(refused.value)
    found = duckdb.connect(str(tmp_path / "foreign" / "gallery.duckdb"), read_only=True)
    assert {row[0] for row in found.execute("SELECT table_name FROM information_schema.tables").fetchall()} == {
        "schema_version", "notes"}  # nothing was written into the foreign file
    found.close()
    assert capsys.readouterr().out == ""


def test_a_new_gallery_appears_complete(tmp_path):
    store = Store(tmp_path / "fresh")
    store.migrate()
    assert set(TABLES) <= tables_of(store)
    assert [p.name for p in store.root.iterdir()] == ["gallery.duckdb"]  # no temporary left over


def test_a_gallery_from_a_newer_artbias_is_refused(store):
    with store.write() as con:
        con.execute("INSERT INTO schema_version VALUES (?, ?)", [SCHEMA_VERSION + 1, utc_now()])
    with pytest.raises(GalleryError, match="newer"):
        store.migrate()


def test_a_failed_write_leaves_no_rows(store):
    with pytest.raises(RuntimeError):
        with store.write() as con:
            con.execute("INSERT INTO runs (run_id, status) VALUES ('r1', 'done')")
            raise RuntimeError("killed half-way")
    assert store.read("SELECT count(*) AS n FROM runs")["n"].iloc[0] == 0


def test_reading_a_missing_gallery_is_a_clear_error(tmp_path):
    with pytest.raises(GalleryError, match="no gallery"):
        Store(tmp_path / "nowhere").read("SELECT 1")


# -- concurrency --------------------------------------------------------------------------------
def test_reader_waits_out_a_writer_in_another_process(store):
    add_run(store, "r1")
    holder = textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(store.db_path)!r})
        con.execute("INSERT INTO runs (run_id, status) VALUES ('r2', 'done')")
        print("locked", flush=True)
        time.sleep(1.5)
        con.close()
    """)
    process = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        impatient = Store(store.root, read_timeout_s=0.1)
        with pytest.raises(GalleryError, match="locked"):
            impatient.read("SELECT count(*) AS n FROM runs")
        # The default reader retries until the writer lets go, then sees its rows.
        assert store.read("SELECT count(*) AS n FROM runs")["n"].iloc[0] == 2
    finally:
        process.wait(timeout=30)
    assert process.returncode == 0


# -- helpers ------------------------------------------------------------------------------------
def test_helpers_filter_and_count(store):
    add_run(store, "r1", generator="gen-a", labels=("sea",))
    add_run(store, "r2", generator="gen-b", labels=("forest", "sea"))
    add_run(store, "b1", generator="gen-a", kind="baseline", prompt=None, artworks=3, labels=("forest",))
    assert store.done_run_ids() == {"r1", "r2", "b1"}
    chosen = store.artworks(role="chosen", labeller="clf")
    assert sorted(chosen["generator"]) == ["gen-a", "gen-b"] and set(chosen["rank"]) == {0}
    assert chosen.set_index("generator").loc["gen-b", "predicted"] == "forest"
    counts = store.label_counts("clf", role=None)
    per = {(r.generator, r.kind, r.predicted): r.n for r in counts.itertuples()}
    assert per == {("gen-a", "search", "sea"): 2, ("gen-b", "search", "forest"): 1,
                   ("gen-b", "search", "sea"): 1, ("gen-a", "baseline", "forest"): 3}
    assert store.labellers()["clf"] == {"classes": ["forest", "sea"], "confusion": None, "identity": {}}


# -- images -------------------------------------------------------------------------------------
def test_images_are_named_by_the_hash_of_their_png(tmp_path):
    image = torch.rand(3, 8, 8) * 2 - 1
    first = save_image(tmp_path, image)
    again = save_image(tmp_path, image.clone())
    other = save_image(tmp_path, -image)
    assert first == again and other.sha256 != first.sha256
    path = tmp_path / first.relative_path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == first.sha256
    assert first.relative_path == f"images/{first.sha256[:2]}/{first.sha256}.png"
    assert image_files(tmp_path) == sorted([first.relative_path, other.relative_path])
    pixels = np.asarray(Image.open(path)).astype(np.float32) / 127.5 - 1
    assert np.abs(pixels.transpose(2, 0, 1) - image.numpy()).max() <= 1 / 127.5 + 1e-6


def test_sweep_removes_only_unreferenced_files(tmp_path):
    keep = save_image(tmp_path, torch.zeros(3, 4, 4))
    drop = save_image(tmp_path, torch.ones(3, 4, 4))
    leftover = tmp_path / "images" / "ab" / ".partial-123.png"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"half a png")
    removed = sweep_orphans(tmp_path, {keep.relative_path})
    assert sorted(removed) == sorted([drop.relative_path, "images/ab/.partial-123.png"])
    assert image_files(tmp_path) == [keep.relative_path]
    assert not (tmp_path / "images" / "ab").exists()


def test_encode_refuses_a_wrong_shape():
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        encode_png(torch.zeros(1, 3, 4, 4))


# -- export -------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_writes_every_table_with_its_rows(store, tmp_path, fmt):
    add_run(store, "r1")
    add_run(store, "b1", kind="baseline", prompt=None, artworks=3)
    out = tmp_path / "export"
    summary = export_gallery(store.root, out, fmt)
    assert summary.rows["artworks"] == 5 and summary.images == 5
    files = {p.name for p in out.iterdir()}
    assert files == {f"{t}.{fmt}" for t in TABLES} | {"README.md", "export.json", "images"}
    for table in TABLES:
        expected = store.read(f"SELECT count(*) AS n FROM {table}")["n"].iloc[0]
        frame = pd.read_parquet(out / f"{table}.{fmt}") if fmt == "parquet" else pd.read_csv(out / f"{table}.{fmt}")
        assert len(frame) == expected
        assert list(frame.columns) == list(store.read(f"SELECT * FROM {table} LIMIT 0").columns)
    readme = (out / "README.md").read_text()
    assert "### artworks (5 rows)" in readme and "image_sha256" in readme
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_export_is_self_contained_with_a_dataset_card(store, tmp_path):
    from gallery.store import COLUMN_DOCS

    add_run(store, "r1")
    add_run(store, "b1", kind="baseline", prompt=None, artworks=3)
    out = export_gallery(store.root, tmp_path / "export").out
    shutil.move(out, tmp_path / "moved")  # relative paths: the folder works wherever it goes
    moved = tmp_path / "moved"
    artworks = pd.read_parquet(moved / "artworks.parquet")
    originals = store.read("SELECT artwork_id, image_path FROM artworks").set_index("artwork_id")["image_path"]
    for row in artworks.itertuples():
        assert not Path(row.image_path).is_absolute() and row.image_path.startswith("images/")
        copy = moved / row.image_path
        assert copy.is_file() and copy.read_bytes() == (store.root / originals[row.artwork_id]).read_bytes()
    assert pyarrow.parquet.read_table(moved / "runs.parquet").num_rows == 2
    card = (moved / "README.md").read_text()
    for table, columns in COLUMN_DOCS.items():
        assert f"### {table} (" in card
        for column, meaning in columns.items():
            assert f"| {column} | " in card and meaning in card, (table, column)
    assert "How it was made" in card and "one read transaction" in card and 'pd.read_parquet("artworks.parquet")' in card
    made = json.loads((moved / "export.json").read_text())
    assert made["rows"]["artworks"] == 5 and made["images"] == 5 and made["format"] == "parquet"


def test_export_is_one_snapshot_while_a_campaign_writes(store, tmp_path):
    """Another process appends runs (images, then one transaction each) while we export:
    every export is consistent, where reading table by table would not be."""
    writer = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from gallery.store import Store, utc_now
        store = Store({str(store.root)!r})
        stop = Path({str(tmp_path / "stop")!r})
        i = 0
        while not stop.exists() and i < 5000:
            run_id = f"w{{i}}"
            for k in range(2):
                (store.root / "images" / f"{{run_id}}{{k}}.png").write_bytes(b"png")
            with store.write() as con:
                con.execute("INSERT INTO runs (run_id, campaign_id, kind, status) VALUES (?, 'c', 'search', 'done')", [run_id])
                for k in range(2):
                    con.execute("INSERT INTO artworks (artwork_id, run_id, role, rank, image_path) VALUES (?, ?, 'top', ?, ?)",
                                [f"{{run_id}}:{{k}}", run_id, k, f"images/{{run_id}}{{k}}.png"])
                    con.execute("INSERT INTO labels VALUES (?, 'clf', 'sea', 0.9, '{{}}')", [f"{{run_id}}:{{k}}"])
            if i == 0:
                print("writing", flush=True)
            i += 1
            time.sleep(0.002)
    """)
    add_run(store, "r0")
    process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    counts = []
    try:
        assert process.stdout.readline().strip() == "writing"
        for attempt in range(4):
            if counts:  # let the writer add runs between exports (however slow this machine is)
                deadline = time.monotonic() + 20
                while len(store.runs()) <= counts[-1] and time.monotonic() < deadline:
                    time.sleep(0.05)
            out = export_gallery(store.root, tmp_path / f"export{attempt}").out
            runs = pd.read_parquet(out / "runs.parquet")
            artworks = pd.read_parquet(out / "artworks.parquet")
            labels = pd.read_parquet(out / "labels.parquet")
            assert set(artworks["run_id"]) <= set(runs["run_id"])
            assert set(labels["artwork_id"]) <= set(artworks["artwork_id"])
            assert (artworks.groupby("run_id").size() == 2).all()  # every run whole
            assert set(runs["run_id"]) == set(artworks["run_id"])
            assert all((out / path).is_file() for path in artworks["image_path"])
            counts.append(len(runs))
    finally:
        (tmp_path / "stop").touch()
        process.wait(timeout=30)
    assert process.returncode == 0
    assert counts[-1] > counts[0], "the writer wrote nothing while we exported: the test proved nothing"


def test_a_failed_export_leaves_nothing_and_keeps_an_earlier_one(store, tmp_path, monkeypatch):
    import gallery.store.export as export

    add_run(store, "r1")
    out = tmp_path / "export"

    def broken(*args):
        raise RuntimeError("disk full half-way")

    with monkeypatch.context() as patch:
        patch.setattr(export, "dataset_card", broken)  # after the tables and images are written
        with pytest.raises(RuntimeError, match="half-way"):
            export_gallery(store.root, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery"]  # no folder, no staging

    export_gallery(store.root, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    add_run(store, "r2")
    with monkeypatch.context() as patch:
        patch.setattr(export, "dataset_card", broken)
        with pytest.raises(RuntimeError):
            export_gallery(store.root, out, force=True)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "gallery"]


def test_export_replaces_only_an_earlier_export_and_only_with_force(store, tmp_path):
    add_run(store, "r1")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    for force in (False, True):
        with pytest.raises(GalleryError, match="not empty" if not force else "not an artbias export"):
            export_gallery(store.root, mine, force=force)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(GalleryError, match="not a folder"):
        export_gallery(store.root, tmp_path / "a-file", force=True)

    empty = tmp_path / "empty"
    empty.mkdir()
    export_gallery(store.root, empty)  # an empty folder is fine
    with pytest.raises(GalleryError, match="--force"):
        export_gallery(store.root, empty)
    add_run(store, "r2")
    (empty / "stale.txt").write_text("from the earlier export")
    assert export_gallery(store.root, empty, force=True).rows["runs"] == 2
    assert not (empty / "stale.txt").exists() and len(pd.read_parquet(empty / "runs.parquet")) == 2


def test_a_gallery_from_a_newer_artbias_is_not_exported(store, tmp_path):
    add_run(store, "r1")
    with store.write() as con:
        con.execute("INSERT INTO schema_version VALUES (?, ?)", [SCHEMA_VERSION + 1, utc_now()])
    with pytest.raises(GalleryError, match="newer"):
        export_gallery(store.root, tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_an_artwork_without_its_image_is_not_exported(store, tmp_path):
    add_run(store, "r1")
    (store.root / "images" / "r11.png").unlink()
    with pytest.raises(GalleryError, match="missing"):
        export_gallery(store.root, tmp_path / "export")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery"]


def test_export_of_a_missing_gallery_or_bad_format_is_an_error(store, tmp_path):
    with pytest.raises(GalleryError, match="no gallery"):
        export_gallery(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(GalleryError, match="format"):
        export_gallery(store.root, tmp_path / "out", "xlsx")


# -- the write API ------------------------------------------------------------------------------
def _records(run_id: str, *, status="done", artworks=2):
    from gallery.store.records import ArtworkRecord, LabellerRecord, LabelRecord, RunRecord

    now = utc_now()
    run = RunRecord(run_id, "c", "search", "gen-a", "a calm sea", "", "a calm sea", 3, "ga",
                    {"pop_size": 4}, "clip-world", status, now, now, 1.5,
                    generator_identity={"name": "gen-a", "weights": {"sha256": "ab"}},
                    versions={"torch": "x"}, evaluations=12, history=[0.1, 0.2])
    arts = [ArtworkRecord(f"{run_id}:{i}", run_id, "chosen" if i == 0 else "top", i, f"{i}" * 64,
                          f"images/{i}.png", 0.2 - i / 100, None, [0.5, -1.0], now) for i in range(artworks)]
    labels = [LabelRecord(a.artwork_id, "clf", "sea", 0.75, {"sea": 0.75, "forest": 0.25}) for a in arts]
    labellers = [LabellerRecord("clf", ["forest", "sea"], [[3, 1], [0, 4]], {"kind": "classifier"})]
    return run, arts, labels, labellers


def test_record_run_writes_every_field_by_name(store):
    from gallery.store.writes import record_run

    run, arts, labels, labellers = _records("r1")
    record_run(store, run, arts, labels, labellers)
    row = store.runs().iloc[0]
    assert (row["run_id"], row["kind"], row["seed"], row["clip"], row["evaluations"]) == ("r1", "search", 3, "clip-world", 12)
    assert json.loads(row.settings_json) == {"pop_size": 4}
    assert json.loads(row.generator_identity_json)["weights"] == {"sha256": "ab"}
    assert json.loads(row.history_json) == [0.1, 0.2]
    assert row.duration_s == 1.5
    found = store.artworks(labeller="clf")
    assert found["artwork_id"].tolist() == ["r1:0", "r1:1"]
    assert json.loads(found["latent_json"].iloc[0]) == [0.5, -1.0]
    assert found["realism"].isna().all() and found["predicted"].tolist() == ["sea", "sea"]
    assert store.labellers()["clf"] == {"classes": ["forest", "sea"], "confusion": [[3, 1], [0, 4]],
                                        "identity": {"kind": "classifier"}}


def test_record_run_replaces_a_run_whole(store):
    from gallery.store.writes import record_run

    record_run(store, *_records("r1", status="failed", artworks=3))
    record_run(store, *_records("r1", artworks=1))
    assert store.runs()["status"].tolist() == ["done"]
    assert store.artworks()["artwork_id"].tolist() == ["r1:0"]
    assert len(store.read("SELECT * FROM labels")) == 1


def test_upsert_campaign_keeps_its_start_and_deletes_unplanned_runs(store):
    from gallery.store.records import CampaignRecord
    from gallery.store.writes import record_run, upsert_campaign

    first = utc_now()
    upsert_campaign(store, CampaignRecord("c", "one", {"a": 1}, first))
    for run_id in ("keep", "drop"):
        record_run(store, *_records(run_id))
    upsert_campaign(store, CampaignRecord("c", "renamed", {"a": 2}, utc_now()), delete_runs=["drop"])
    campaign = store.campaigns().iloc[0]
    assert campaign["name"] == "renamed" and json.loads(campaign["config_json"]) == {"a": 2}
    assert campaign["created_at"] == pd.Timestamp(first)
    assert store.runs()["run_id"].tolist() == ["keep"]
    assert set(store.artworks()["run_id"]) == {"keep"}
    assert set(store.read("SELECT artwork_id FROM labels")["artwork_id"]) == {"keep:0", "keep:1"}
