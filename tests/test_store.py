"""The gallery store: schema and migrations, transactions, lock retries, images, export."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import duckdb
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from gallery.images import encode_png, image_files, save_image, sweep_orphans
from gallery.store import SCHEMA_VERSION, TABLES, GalleryError, Store, export_gallery, utc_now


def tables_of(store: Store) -> set[str]:
    return set(store.read("SELECT table_name FROM information_schema.tables")["table_name"])


def add_run(store: Store, run_id: str, *, generator="gen-a", prompt="a calm sea", kind="search",
            artworks=2, labels=("sea", "forest")) -> None:
    """Rows for one run, written the way a campaign writes them (one transaction)."""
    now = utc_now()
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
    written = export_gallery(store.root, out, fmt)
    assert sorted(p.name for p in written) == sorted([f"{t}.{fmt}" for t in TABLES] + ["README.md"])
    for table in TABLES:
        expected = store.read(f"SELECT count(*) AS n FROM {table}")["n"].iloc[0]
        frame = pd.read_parquet(out / f"{table}.{fmt}") if fmt == "parquet" else pd.read_csv(out / f"{table}.{fmt}")
        assert len(frame) == expected
        assert list(frame.columns) == list(store.read(f"SELECT * FROM {table} LIMIT 0").columns)
    readme = (out / "README.md").read_text()
    assert "## artworks" in readme and "image_sha256" in readme and "(5 rows)" in readme
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_export_of_a_missing_gallery_or_bad_format_is_an_error(store, tmp_path):
    with pytest.raises(GalleryError, match="no gallery"):
        export_gallery(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(GalleryError, match="format"):
        export_gallery(store.root, tmp_path / "out", "xlsx")
