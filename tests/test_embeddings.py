"""CLIP image embeddings in the gallery: the migration, the write API, ``artbias gallery embed``,
nearest neighbours, the embedding map page and "more like this" on the artwork page."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from browser import capture, colour_share, needs_chromium, serve
from sample_gallery import CLASSIFIER, SampleSpec, build_sample_gallery, gallery_at_version

from data.world.params import CLASSES
from gallery.cli import main
from gallery.embeddings import embed_gallery, pca, project
from gallery.store import GalleryError, Store, queries
from gallery.store.schema import SCHEMA_VERSION
from gallery.store.writes import prune_embeddings, record_embeddings

SPEC = SampleSpec(runs_per_prompt=4, baseline_samples=10, image_size=16)
DIM = 16


def artworks_of(gallery) -> pd.DataFrame:
    return Store(gallery).read(
        "SELECT a.artwork_id, a.run_id, a.image_sha256, a.role, r.generator, l.predicted FROM artworks a"
        " JOIN runs r ON r.run_id = a.run_id LEFT JOIN labels l ON l.artwork_id = a.artwork_id AND"
        f" l.labeller = '{CLASSIFIER}' ORDER BY a.artwork_id")


def made_up_vectors(artworks: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """Embeddings that cluster by predicted class (and a little by generator), unit norm."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(0, 0.15, size=(len(artworks), DIM))
    for i, row in enumerate(artworks.itertuples()):
        vectors[i, CLASSES.index(row.predicted)] += 1.0
        vectors[i, len(CLASSES) + (row.generator == "gen-b")] += 0.5
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def gallery(tmp_path):
    return build_sample_gallery(tmp_path / "gallery", SPEC)


@pytest.fixture
def embedded(gallery):
    """The sample gallery with made-up embeddings of every artwork by CLIP 'made-up'."""
    artworks = artworks_of(gallery)
    record_embeddings(Store(gallery), "made-up", {"name": "made-up"}, artworks["artwork_id"].tolist(),
                      artworks["image_sha256"].tolist(), made_up_vectors(artworks))
    return gallery


# -- the migration and the write API ---------------------------------------------------------------
def test_a_version_2_gallery_gains_the_embedding_tables(tmp_path):
    path = gallery_at_version(tmp_path / "old", 2)
    store = Store(path)
    assert store.schema_version() == 2 and SCHEMA_VERSION >= 3
    with pytest.raises(GalleryError, match="older"):
        queries.embedding_models(path)  # readers refuse it until a writer migrates it
    assert store.migrate() == SCHEMA_VERSION
    assert queries.embedding_models(path).empty
    columns = store.read("SELECT column_name, data_type FROM information_schema.columns "
                         "WHERE table_name = 'embeddings'").set_index("column_name")["data_type"]
    assert columns["vector"] == "FLOAT[]" and "image_sha256" in columns


def test_embeddings_round_trip_with_the_clip_that_made_them(gallery):
    artworks = artworks_of(gallery).head(5)
    vectors = np.random.default_rng(1).normal(size=(5, 7))
    identity = {"name": "c", "weights_sha256": {"w.safetensors": "ab" * 32}}
    store = Store(gallery)
    assert record_embeddings(store, "c", identity, artworks["artwork_id"].tolist(),
                             artworks["image_sha256"].tolist(), vectors) == 5
    stored = store.read("SELECT artwork_id, vector FROM embeddings WHERE clip = 'c' ORDER BY artwork_id")
    assert stored["artwork_id"].tolist() == sorted(artworks["artwork_id"])
    order = np.argsort(artworks["artwork_id"].to_numpy())
    np.testing.assert_array_equal(np.stack(stored["vector"].to_numpy()), vectors[order].astype(np.float32))
    model = queries.embedding_models(gallery).iloc[0]
    assert (model["clip"], model["dim"], model["n"]) == ("c", 7, 5)
    assert json.loads(model["identity_json"]) == identity

    # Writing again replaces (no duplicates); another size or other weights under the name are refused.
    record_embeddings(store, "c", identity, artworks["artwork_id"].tolist()[:2],
                      artworks["image_sha256"].tolist()[:2], np.ones((2, 7)))
    assert store.read("SELECT count(*) AS n FROM embeddings")["n"].iloc[0] == 5
    with pytest.raises(GalleryError, match="7-dimensional"):
        record_embeddings(store, "c", identity, ["x"], [None], np.ones((1, 8)))
    with pytest.raises(GalleryError, match="other weights"):
        record_embeddings(store, "c", {"weights_sha256": {"w.safetensors": "cd" * 32}}, ["x"], [None], np.ones((1, 7)))
    with pytest.raises(GalleryError, match="finite"):
        record_embeddings(store, "d", {}, ["x"], [None], [[np.nan, 1.0]])
    with pytest.raises(GalleryError, match="one id and image hash per row"):
        record_embeddings(store, "d", {}, ["x", "y"], [None], np.ones((1, 3)))
    assert store.read("SELECT count(*) AS n FROM embeddings")["n"].iloc[0] == 5  # refused batches left nothing


def test_an_embedding_of_a_replaced_image_no_longer_counts_and_is_pruned(embedded):
    store = Store(embedded)
    artwork = artworks_of(embedded).iloc[0]
    assert queries.artworks_to_embed(embedded, "made-up").empty
    with store.write() as con:  # the run was replaced: same artwork id, another image
        con.execute("UPDATE artworks SET image_sha256 = 'f' || image_sha256 WHERE artwork_id = ?", [artwork.artwork_id])
    assert queries.artworks_to_embed(embedded, "made-up")["artwork_id"].tolist() == [artwork.artwork_id]
    assert artwork.artwork_id not in queries.embedding_points(embedded, "made-up", None, ())["artwork_id"].tolist()
    assert prune_embeddings(store) == 1
    assert prune_embeddings(store) == 0


# -- artbias gallery embed -------------------------------------------------------------------------
def test_gallery_embed_resumes_and_fills_only_the_missing(gallery, tiny_clip_dir, monkeypatch, capsys):
    import gallery.embeddings as embeddings

    clip = str(tiny_clip_dir)
    total = len(artworks_of(gallery))
    real = embeddings.record_embeddings
    calls = []

    def failing_second_batch(*args, **kwargs):
        calls.append(len(args[3]))
        if len(calls) == 2:
            raise GalleryError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(embeddings, "record_embeddings", failing_second_batch)
    with pytest.raises(GalleryError, match="disk full"):
        embed_gallery(gallery, clip, batch_size=16)
    monkeypatch.setattr(embeddings, "record_embeddings", real)
    first = Store(gallery).read("SELECT artwork_id, created_at FROM embeddings")
    assert len(first) == 16  # the first batch whole, nothing of the second

    assert main(["gallery", "embed", "--gallery", str(gallery), "--clip", clip, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"embedded {total - 16} artworks" in out and "16 already had an embedding" in out
    after = Store(gallery).read("SELECT artwork_id, created_at FROM embeddings")
    assert len(after) == total and after["artwork_id"].is_unique
    kept = after.merge(first, on="artwork_id", suffixes=("", "_first"))
    assert len(kept) == 16 and (kept["created_at"] == kept["created_at_first"]).all()  # not recomputed

    assert main(["gallery", "embed", "--gallery", str(gallery), "--clip", clip, "--quiet"]) == 0
    assert "embedded 0 artworks" in capsys.readouterr().out
    model = queries.embedding_models(gallery).iloc[0]
    identity = json.loads(model["identity_json"])
    assert model["clip"] == clip and model["n"] == total and model["dim"] == identity["embedding_dim"] == 32
    assert set(identity["weights_sha256"]) == {"open_clip_model.safetensors"}


def test_stored_embeddings_are_the_clips_image_features(gallery, tiny_clip_dir):
    import torch

    from search.clip import load_clip
    from search.scorer import ClipScorer

    clip = load_clip(str(tiny_clip_dir))
    embed_gallery(gallery, clip_model=clip, batch_size=8)
    row = Store(gallery).read("SELECT e.vector, a.image_path FROM embeddings e JOIN artworks a "
                              "USING (artwork_id) ORDER BY artwork_id LIMIT 1").iloc[0]
    from PIL import Image

    pixels = np.asarray(Image.open(gallery / row["image_path"]).convert("RGB"), dtype=np.float32)
    image = torch.from_numpy(pixels.transpose(2, 0, 1) / 127.5 - 1)[None]
    with torch.no_grad():
        expected = ClipScorer(clip).image_features(image)[0].numpy()
    np.testing.assert_allclose(np.asarray(row["vector"]), expected, atol=1e-5)
    assert abs(np.linalg.norm(row["vector"]) - 1) < 1e-5


def test_gallery_embed_reports_unreadable_images_and_bad_input(gallery, tiny_clip_dir, capsys):
    victim = artworks_of(gallery).iloc[0]
    path = Store(gallery).read("SELECT image_path FROM artworks WHERE artwork_id = ?", [victim.artwork_id]).iloc[0, 0]
    (gallery / path).write_bytes(b"not a png")
    args = ["gallery", "embed", "--gallery", str(gallery), "--clip", str(tiny_clip_dir), "--quiet"]
    assert main(args) == 1
    assert "1 images could not be read" in capsys.readouterr().out
    assert queries.artworks_to_embed(gallery, str(tiny_clip_dir))["artwork_id"].tolist() == [victim.artwork_id]
    assert main([*args[:-1], "--batch-size", "0"]) == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err
    assert main(["gallery", "embed", "--gallery", str(gallery), "--clip", "no-such-clip"]) == 2
    assert "no-such-clip" in capsys.readouterr().err
    assert main(["gallery", "embed", "--gallery", str(gallery / "missing")]) == 2
    assert "no gallery at" in capsys.readouterr().err


# -- nearest neighbours and the projection ---------------------------------------------------------
def test_nearest_neighbours_follow_cosine_similarity_on_hand_made_vectors(gallery):
    artworks = artworks_of(gallery).head(6)
    ids = artworks["artwork_id"].tolist()
    angles = np.radians([0, 10, 30, 95, 180, -20])  # on a circle: the neighbours of 0° are known
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1) * np.array([[1], [3], [0.5], [2], [1], [1]])
    record_embeddings(Store(gallery), "hand", {}, ids, artworks["image_sha256"].tolist(), vectors)
    found = queries.similar_artworks(gallery, ids[0], "hand", k=4)
    assert found["artwork_id"].tolist() == [ids[1], ids[5], ids[2], ids[3]]  # 10°, -20°, 30°, 95° away
    np.testing.assert_allclose(found["cosine"], np.cos(np.radians([10, 20, 30, 95])), atol=1e-6)
    assert ids[0] not in queries.similar_artworks(gallery, ids[0], "hand", k=10)["artwork_id"].tolist()
    same_run = artworks["run_id"].iloc[0]
    kept = queries.similar_artworks(gallery, ids[0], "hand", k=10, exclude_run=same_run)
    assert same_run not in kept["run_id"].tolist()
    unembedded = artworks_of(gallery)["artwork_id"].iloc[-1]
    assert queries.similar_artworks(gallery, unembedded, "hand").empty
    assert queries.artwork_embedding_clips(gallery, unembedded) == []
    assert queries.artwork_embedding_clips(gallery, ids[0]) == ["hand"]


def test_pca_is_exact_deterministic_and_signed():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) * np.array([5, 2, 1, 0.5, 0.1])
    found = pca(x)
    centred = x - x.mean(0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    for j in range(2):
        assert abs(abs(found.points[:, j] @ (centred @ vt[j])) - np.linalg.norm(centred @ vt[j]) ** 2) < 1e-6
    shares = singular ** 2 / (singular ** 2).sum()
    np.testing.assert_allclose(found.explained, shares[:2])
    np.testing.assert_array_equal(pca(x).points, found.points)
    flipped = pca(-x)  # the sign rule: the same picture whatever the eigensolver's signs
    np.testing.assert_allclose(np.abs(flipped.points), np.abs(found.points), atol=1e-9)
    assert pca(x[:3]).points.shape == (3, 2)  # fewer rows than dimensions: the SVD route

    # Above EXACT_PCA_DIM dimensions: the block power iteration agrees with the exact answer.
    wide = rng.normal(size=(2000, 256)) * np.exp(-np.arange(256) / 8)
    fast = pca(wide)
    centred = wide - wide.mean(0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    for j in range(2):
        exact = centred @ vt[j]
        cosine = fast.points[:, j] @ exact / np.linalg.norm(fast.points[:, j]) / np.linalg.norm(exact)
        assert abs(cosine) > 1 - 1e-6
    np.testing.assert_allclose(fast.explained, (singular ** 2 / (singular ** 2).sum())[:2], rtol=1e-6)
    assert project(np.zeros((1, 4))).points.shape == (1, 2)
    with pytest.raises(Exception, match="unknown projection"):
        project(x, "tsne")


# -- the embedding map page ------------------------------------------------------------------------
def _vega_spec(app) -> dict:
    charts = app.get("vega_lite_chart")
    assert charts, "no chart on the page"
    return json.loads(charts[0].proto.spec)


def _colour_field(app) -> str:
    return _vega_spec(app)["encoding"]["color"]["condition"]["field"]


def test_map_page_renders_and_colouring_follows_the_url(embedded, open_app):
    app = open_app(embedded, page="map")
    assert app.title[0].value == "Embedding map" and not app.error and not app.warning
    assert _colour_field(app) == "label"
    counted = artworks_of(embedded).query("role in ('chosen', 'baseline')")
    assert any(f"{len(counted)} artworks · PCA" in c.value for c in app.caption)
    for colour in ("generator", "prompt"):
        assert _colour_field(open_app(embedded, page="map", color=colour)) == colour
    # The widget rewrites the URL, so the view is a permalink.
    next(s for s in app.selectbox if s.label == "Colour by").set_value("generator").run()
    assert app.query_params["color"] == "generator" and _colour_field(app) == "generator"
    bad = open_app(embedded, page="map", color="shoe size")
    assert any("shoe size" in w.value for w in bad.warning) and _colour_field(bad) == "label"


def test_a_selection_shows_its_artworks_and_class_mix(embedded, open_app):
    everything = "-100,100,-100,100"
    app = open_app(embedded, page="map", box=everything, roles="all")
    total = len(artworks_of(embedded))
    assert f"Selection: {total} of {total} artworks" in [s.value for s in app.subheader]
    spec = _vega_spec(app)
    assert spec["params"][0]["value"] == {"x": [-100.0, 100.0], "y": [-100.0, 100.0]}  # the box is drawn
    mix = app.dataframe[0].value
    expected = artworks_of(embedded)["predicted"].value_counts()
    assert dict(zip(mix["class"], mix["count"], strict=True)) == expected.to_dict()
    assert len(app.get("image")) == 12  # a spread of thumbnails
    app.button(key=next(b.key for b in app.button if b.key.startswith("map_open_"))).click().run()
    assert app.query_params["page"] == "artwork"

    # A box around one class's points (the made-up vectors cluster by class) counts all of them.
    from gallery.app.map_page import format_box, map_frame

    frame, _ = map_frame(str(embedded), "made-up", CLASSIFIER, (), "pca", ("test",))
    sea = frame[frame["label"] == "sea"]
    around = (sea["x"].min() - 1e-2, sea["x"].max() + 1e-2, sea["y"].min() - 1e-2, sea["y"].max() + 1e-2)
    mix = open_app(embedded, page="map", roles="all", box=format_box(around)).dataframe[0].value
    counts = dict(zip(mix["class"], mix["count"], strict=True))
    assert counts["sea"] == len(sea) and max(counts, key=counts.get) == "sea"
    empty = open_app(embedded, page="map", box="500,600,500,600")
    assert any("No artwork lies inside" in i.value for i in empty.info)
    cleared = open_app(embedded, page="map", box=everything)
    cleared.button(key="map_clear").click().run()
    assert "box" not in cleared.query_params
    broken = open_app(embedded, page="map", box="1,2,three")
    assert any("Ignoring the address's box" in w.value for w in broken.warning)


def test_map_page_without_embeddings_says_how_to_make_them(gallery, open_app):
    app = open_app(gallery, page="map")
    assert any("artbias gallery embed" in i.value for i in app.info)


# -- more like this --------------------------------------------------------------------------------
def test_artwork_page_shows_more_like_this(embedded, open_app):
    artworks = artworks_of(embedded)
    chosen = artworks[artworks["role"] == "chosen"].iloc[0]
    app = open_app(embedded, page="artwork", id=chosen.artwork_id)
    assert "More like this" in [s.value for s in app.subheader]
    expected = queries.similar_artworks(embedded, chosen.artwork_id, "made-up", 6, exclude_run=chosen.run_id)
    buttons = [b for b in app.button if b.key and b.key.startswith("similar_")]
    assert [b.key.removeprefix("similar_") for b in buttons] == expected["artwork_id"].tolist()
    assert chosen.run_id not in expected["run_id"].tolist()  # its siblings are shown above, not here
    buttons[0].click().run()
    assert app.query_params["id"] == expected["artwork_id"].iloc[0]


def test_artwork_page_without_an_embedding_says_so(gallery, open_app):
    artwork_id = artworks_of(gallery)["artwork_id"].iloc[0]
    app = open_app(gallery, page="artwork", id=artwork_id)
    assert any("no CLIP embedding yet" in c.value for c in app.caption)


# -- the map in a real browser ---------------------------------------------------------------------
# tableau10's first two colours (generators gen-a and gen-b), drawn at opacity 0.75 over white.
GEN_A_BLUE = tuple(round(0.75 * c + 0.25 * 255) for c in (76, 120, 168))
GEN_B_ORANGE = tuple(round(0.75 * c + 0.25 * 255) for c in (245, 133, 24))


@pytest.fixture(scope="module")
def served_map(tmp_path_factory):
    gallery = build_sample_gallery(tmp_path_factory.mktemp("gallery"), SampleSpec(runs_per_prompt=10,
                                                                                    baseline_samples=30))
    artworks = artworks_of(gallery)
    record_embeddings(Store(gallery), "made-up", {}, artworks["artwork_id"].tolist(),
                      artworks["image_sha256"].tolist(), made_up_vectors(artworks))
    with serve(gallery, tmp_path_factory.mktemp("log")) as url:
        yield url


@needs_chromium
def test_map_page_screenshot_shows_the_points_coloured_by_generator(served_map, tmp_path):
    def drawn(pixels) -> bool:
        return colour_share(pixels, GEN_A_BLUE, 25) > 0 and colour_share(pixels, GEN_B_ORANGE, 25) > 0

    pixels = capture(f"{served_map}/?page=map&color=generator&roles=all", "map", tmp_path, drawn)
    assert pixels.shape[:2] == (900, 1280)
    assert colour_share(pixels, GEN_A_BLUE, 25) > 2e-4  # gen-a's points
    assert colour_share(pixels, GEN_B_ORANGE, 25) > 2e-4  # gen-b's points
