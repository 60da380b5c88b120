"""The Streamlit gallery app, page by page, through ``AppTest`` on a small gallery in tmp."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime

import pandas as pd
import pytest
from conftest import write_lock_held
from sample_gallery import SampleSpec, build_sample_gallery
from streamlit.testing.v1 import AppTest

from gallery.app.bias_page import overview_frame
from gallery.bias import gallery_bias
from gallery.store import Store

SPEC = SampleSpec(runs_per_prompt=8, baseline_samples=20, image_size=16)
PAGE_SIZE = 12  # artworks on one page of the grid


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    return build_sample_gallery(tmp_path_factory.mktemp("gallery"), SPEC)



def _match_count(app: AppTest) -> int:
    caption = next(c.value for c in app.caption if "artworks match" in c.value)
    return int(re.match(r"(\d+) of", caption).group(1))


def _cards(app: AppTest) -> list[str]:
    return [m.value for m in app.markdown if " · *" in m.value]


def _shown_cards(app: AppTest) -> list[str]:
    """The cards on the page: one per artwork shown, so never none while artworks match."""
    cards = _cards(app)
    assert cards and len(cards) == min(_match_count(app), PAGE_SIZE), (len(cards), _match_count(app))
    return cards


def _widget(app: AppTest, kind: str, label: str):
    return next(w for w in getattr(app.sidebar, kind) if w.label == label)


def _texts(app: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "error", "warning", "info", "title", "subheader")
        for e in getattr(app, kind)
    ]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", ["gallery", "bias", "compare", "exhibition"])
def test_every_page_renders(gallery, open_app, page):
    app = open_app(gallery, page=page)
    assert not app.error, [e.value for e in app.error]
    if page != "exhibition":
        assert app.title[0].value.lower() == page


def test_gallery_filters_change_the_result_set(gallery, open_app):
    app = open_app(gallery)
    total = _match_count(app)
    assert total == 2 * 2 * SPEC.runs_per_prompt  # chosen artworks only, by default
    assert len(app.get("image")) == PAGE_SIZE  # the first page of the grid

    _widget(app, "multiselect", "Generator").select("gen-a").run()
    assert _match_count(app) == total // 2
    assert all(card.startswith("gen-a") for card in _shown_cards(app))

    _widget(app, "multiselect", "Prompt").select("a calm sea").run()
    assert _match_count(app) == SPEC.runs_per_prompt
    assert all("*a calm sea*" in card for card in _shown_cards(app))

    _widget(app, "multiselect", "Predicted class").select("sea").run()
    sea_only = _match_count(app)
    assert 0 < sea_only < SPEC.runs_per_prompt
    assert all("**sea**" in card for card in _shown_cards(app))

    _widget(app, "multiselect", "Role").select("top").select("pareto").run()
    assert _match_count(app) > sea_only


def test_similarity_range_and_sorting(gallery, open_app):
    app = open_app(gallery)
    slider = _widget(app, "slider", "CLIP similarity")
    low, high = slider.value
    total = _match_count(app)
    middle = (low + high) / 2
    slider.set_range(middle, high).run()
    narrowed = _match_count(app)
    assert 0 < narrowed < total

    def similarities():
        return [float(c.value.rsplit(" ", 1)[-1]) for c in app.caption if "similarity" in c.value]

    assert similarities() == sorted(similarities(), reverse=True)
    assert min(similarities()) >= middle - 1e-3
    _widget(app, "selectbox", "Sort").set_value("lowest CLIP similarity first").run()
    assert similarities() == sorted(similarities())


def test_pagination_shows_the_next_artworks(gallery, open_app):
    app = open_app(gallery)
    first = _cards(app), [c.value for c in app.caption if c.value.startswith("seed")]
    app.number_input(key="f_page").set_value(2).run()
    second = _cards(app), [c.value for c in app.caption if c.value.startswith("seed")]
    assert "page 2 of" in _texts(app)
    assert second[1] and second != first


def test_open_button_and_permalink_restore_the_artwork_view(gallery, open_app):
    app = open_app(gallery)
    app.button[0].click().run()
    assert app.query_params["page"] == "artwork"
    artwork_id = app.query_params["id"]
    first_view = _texts(app)

    restored = open_app(gallery, page="artwork", id=artwork_id)  # a fresh visitor with the link
    assert _texts(restored) == first_view
    row = (
        Store(gallery)
        .read(
            "SELECT r.prompt, r.seed, r.generator FROM artworks a JOIN runs r USING (run_id) WHERE artwork_id = ?",
            [artwork_id],
        )
        .iloc[0]
    )
    assert row["prompt"] in _texts(restored)
    table = restored.table[0].value
    assert str(row["seed"]) in table.to_string() and row["generator"] in table.to_string()
    assert f"?page=artwork&id={artwork_id.replace(':', '%3A')}" in restored.code[0].value
    charts = [c.proto.spec for c in restored.get("vega_lite_chart")]
    assert any("class probabilities" in spec for spec in charts)
    assert any("search history" in spec for spec in charts)


def test_bias_page_shows_the_statistics_modules_numbers(gallery, open_app):
    app = open_app(gallery, page="bias")
    shown = next(d.value for d in app.dataframe if "p vs uniform" in d.value.columns).reset_index(
        drop=True
    )
    expected = overview_frame(gallery_bias(gallery)).reset_index(drop=True)
    pd.testing.assert_frame_equal(shown, expected, check_dtype=False)
    text = _texts(app)
    for name in (
        "Wilson interval",
        "Cramér's V",
        "normalised entropy",
        "corrected proportion",
        "Cohen's kappa",
    ):
        assert f"**{name}**" in text  # the definitions are on the page
    labels = [b.proto.label for b in app.get("download_button")]
    assert any("CSV" in label for label in labels)
    for spec in (json.loads(c.proto.spec) for c in app.get("vega_lite_chart")):
        title = json.dumps(spec.get("title", ""))
        assert re.search(r"n = \d+", title), title  # every figure states its sample size


def test_compare_page_tests_the_two_sides(gallery, open_app):
    app = open_app(gallery, page="compare")
    text = _texts(app)
    assert "Same composition?" in text and "p = " in text
    assert "gen-a" in text and "gen-b" in text
    app.radio(key="cmp_mode").set_value("two prompts, one generator").run()
    assert "Prompt A" in [s.label for s in app.selectbox]


def test_exhibition_rejects_a_bad_interval(gallery, open_app):
    # The slideshow itself (slides, order, captions, keys) is tested in test_kiosk.py.
    bad = open_app(gallery, page="exhibition", interval="soon")
    assert "not a number of seconds" in bad.warning[0].value


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"page": "nowhere"}, "no page called"),
        ({"page": "artwork", "id": "no-such-artwork"}, "no artwork “no-such-artwork”"),
        ({"page": "artwork"}, "No artwork chosen"),
    ],
)
def test_bad_query_parameters_give_a_clear_message(gallery, open_app, query, message):
    app = open_app(gallery, **query)
    assert any(message.lower() in e.value.lower() for e in app.error)


def test_missing_gallery_is_a_message_not_a_traceback(tmp_path, open_app):
    app = open_app(tmp_path / "nothing-here")
    assert "cannot be shown yet" in app.error[0].value


def test_pages_render_while_a_writer_holds_the_lock(gallery, open_app):
    with write_lock_held(gallery / "gallery.duckdb"):
        app = open_app(gallery)
    assert not app.error and not app.warning
    assert _match_count(app) > 0


def test_new_artworks_appear_on_refresh(tmp_path, open_app):
    gallery = build_sample_gallery(
        tmp_path / "growing", SampleSpec(runs_per_prompt=2, baseline_samples=4, image_size=8)
    )
    app = open_app(gallery)
    before = _match_count(app)
    existing = Store(gallery).read("SELECT image_sha256, image_path FROM artworks LIMIT 1").iloc[0]
    now = datetime(2025, 6, 1)
    with Store(gallery).write() as con:  # what a campaign's transaction adds
        con.execute(
            "INSERT INTO runs (run_id, campaign_id, kind, generator, prompt, modifier, full_prompt, seed,"
            " algorithm, status, history_json, finished_at) VALUES ('new-run', 'sample', 'search', 'gen-a',"
            " 'a calm sea', '', 'a calm sea', 77, 'ga', 'done', '[0.1, 0.2]', ?)",
            [now],
        )
        con.execute(
            "INSERT INTO artworks VALUES ('new-run:0', 'new-run', 'chosen', 0, ?, ?, 0.5, NULL, '[]', ?)",
            [existing["image_sha256"], existing["image_path"], now],
        )
        probabilities = json.dumps({"sea": 0.9, "forest": 0.1})
        con.execute(
            "INSERT INTO labels VALUES ('new-run:0', 'classifier-world', 'sea', 0.9, ?)",
            [probabilities],
        )
    app.run()
    assert _match_count(app) == before + 1
    assert any("seed 77" in c.value for c in app.caption)


@pytest.mark.parametrize("page", ["gallery", "bias", "compare", "exhibition"])
def test_an_empty_gallery_gets_messages_not_tracebacks(tmp_path, open_app, page):
    Store(tmp_path / "empty").migrate()  # a campaign has just created the file
    app = open_app(tmp_path / "empty", page=page)
    messages = [e.value for kind in ("info", "warning", "error") for e in getattr(app, kind)]
    assert messages, "the visitor should be told why there is nothing to see"


# -- bad data in the gallery: paths that lead out, broken images, text that is markup -------------
INJECTED = "[click me](http://evil.example) ![pixel](http://evil.example/p.png) <b>bold</b>"


@pytest.fixture(scope="module")
def tampered(tmp_path_factory):
    """A gallery whose rows point outside it (absolute, ``..``, a link out of ``images/``),
    at a corrupt PNG, and whose prompt is markdown: the best-scored artworks, so every page
    shows them first. Beside it, ``secret.png``: an image the app must never open."""
    root = tmp_path_factory.mktemp("tampered")
    gallery = build_sample_gallery(root / "gallery", SampleSpec(runs_per_prompt=4, baseline_samples=4, image_size=8))
    secret = root / "secret.png"
    shutil.copy(next((gallery / "images").rglob("*.png")), secret)
    link = gallery / "images" / "00" / "link.png"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    store = Store(gallery)
    chosen = store.read("SELECT artwork_id, image_path, run_id FROM artworks WHERE role = 'chosen' ORDER BY artwork_id")
    bad = {
        chosen.artwork_id[0]: str(secret),  # absolute
        chosen.artwork_id[1]: "images/../../secret.png",  # climbs out
        chosen.artwork_id[2]: "images/00/link.png",  # a link that leads out
        chosen.artwork_id[3]: chosen.image_path[3],  # its file is overwritten with junk below
        chosen.artwork_id[4]: "images/00/missing.png",
    }
    (gallery / chosen.image_path[3]).write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with store.write() as con:
        for artwork_id, path in bad.items():
            con.execute("UPDATE artworks SET image_path = ?, similarity = 0.99 WHERE artwork_id = ?", [path, artwork_id])
        con.execute("UPDATE runs SET prompt = ?, full_prompt = ? WHERE run_id = ?",
                    [INJECTED, INJECTED, chosen.run_id[0]])
    return gallery, secret, list(bad)


@pytest.fixture
def opened_files(monkeypatch):
    """Every path the app opens (Python's open and Pillow's), recorded."""
    import builtins

    import PIL.Image

    seen: list[str] = []
    real_open, real_image_open = builtins.open, PIL.Image.open

    def recording_open(file, *args, **kwargs):
        if isinstance(file, str | os.PathLike):
            seen.append(os.path.realpath(file))
        return real_open(file, *args, **kwargs)

    def recording_image_open(fp, *args, **kwargs):
        if isinstance(fp, str | os.PathLike):
            seen.append(os.path.realpath(fp))
        return real_image_open(fp, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    monkeypatch.setattr(PIL.Image, "open", recording_image_open)
    return seen


@pytest.mark.parametrize("page", ["gallery", "artwork", "bias", "compare", "exhibition"])
def test_outside_paths_and_corrupt_images_show_placeholders(tampered, open_app, opened_files, page):
    gallery, secret, bad_ids = tampered
    apps = ([open_app(gallery, page="artwork", id=artwork_id) for artwork_id in bad_ids] if page == "artwork"
            else [open_app(gallery, page=page)])
    for app in apps:  # open_app has checked: no exception
        assert not app.error, [e.value for e in app.error]
        if page in ("gallery", "artwork"):  # the exhibition opens on its introduction: test_kiosk.py
            assert any(c.value == "image unavailable" for c in app.caption)
        for markdown in app.markdown:
            assert "](http" not in markdown.value and "<b>bold" not in markdown.value, markdown.value
    assert str(secret.resolve()) not in opened_files
    if page in ("gallery", "artwork"):  # the recorder saw the good images (grid, siblings) opened
        assert any(path.startswith(str(gallery.resolve() / "images")) for path in opened_files)


def test_query_parameters_are_shown_not_interpreted(gallery, open_app):
    app = open_app(gallery, page="[click me](http://evil.example)")
    message = app.error[0].value
    assert "](http" not in message and "click me" in message
    artwork = open_app(gallery, page="artwork", id="![x](http://evil.example/x.png)")
    assert all("](http" not in e.value for e in artwork.error)


def test_the_served_app_hides_error_details_from_visitors():
    from gallery.report_commands import streamlit_command

    command = streamlit_command("g", 8501)
    assert command[command.index("--client.showErrorDetails") + 1] == "none"
    assert command[command.index("--client.toolbarMode") + 1] == "viewer"


def test_image_paths_are_confined_to_the_gallery_images(tmp_path):
    from gallery.images import resolve_image

    (tmp_path / "images" / "ab").mkdir(parents=True)
    (tmp_path / "images" / "ab" / "x.png").write_bytes(b"")
    (tmp_path / "outside.png").write_bytes(b"")
    (tmp_path / "images" / "ab" / "out.png").symlink_to(tmp_path / "outside.png")
    assert resolve_image(tmp_path, "images/ab/x.png") == (tmp_path / "images" / "ab" / "x.png").resolve()
    for path in (str(tmp_path / "outside.png"), "images/../outside.png", "images/ab/out.png", "outside.png",
                 "images", "images\\ab\\x.png", None, 3, ""):
        assert resolve_image(tmp_path, path) is None, path
