"""The annotation panel (``?page=annotate``): a blind, stratified sample labelled by name, each label
appended to the annotator's own file (never the DuckDB file), resumable, and ingested as the
labeller ``human:NAME`` that the bias statistics read."""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil

import pytest
from browser import (
    STREAMLIT_IDLE,
    capture,
    chromium,
    colour_share,
    dump_dom,
    needs_chromium,
    needs_devtools,
    serve,
)
from sample_gallery import CLASSIFIER, ZERO_SHOT, SampleSpec, build_sample_gallery

from data.errors import ConfigError
from data.world.params import CLASSES
from gallery import annotations
from gallery.app import annotate_page
from gallery.app.annotate_page import UNDO_BUTTON, class_button
from gallery.bias import gallery_bias
from gallery.cli import main
from gallery.store import Store
from gallery.store.queries import counted_artworks, labelled_artworks

# 2 generators x (2 prompts of 6 chosen artworks + 1 baseline stratum of 14 samples): 6 strata.
SPEC = SampleSpec(runs_per_prompt=6, baseline_samples=14, image_size=16)
# The default sample: PER_STRATUM (10) of each stratum, so all 6 of a prompt and 10 of 14 baselines.
DEFAULT_N = 2 * (6 + 6 + 10)
CLASS_KEYS = [str(i) for i in range(1, len(CLASSES) + 1)]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_sample_gallery(tmp_path_factory.mktemp("built") / "g", SPEC)


@pytest.fixture()
def gallery(built, tmp_path):
    """A fresh copy of the sample gallery per test (annotation files are per gallery)."""
    return shutil.copytree(built, tmp_path / "g")


def _order(gallery, per=annotate_page.PER_STRATUM, seed=annotate_page.SEED) -> list[str]:
    return annotations.annotation_sample(counted_artworks(gallery), per, seed)["artwork_id"].tolist()


def _events(gallery, name) -> list[dict]:
    path = annotations.annotation_file(gallery, name)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _progress(app) -> str:
    return app.get("progress")[0].proto.text


def _texts(app) -> list[str]:
    """Every text the page shows except the buttons' labels."""
    kinds = ("title", "markdown", "caption", "text", "error", "warning", "info", "success", "subheader",
             "header", "code", "table", "dataframe", "metric", "json")
    found = [str(getattr(e, "value", e)) for kind in kinds for e in getattr(app.main, kind, [])]
    return found + [_progress(app)] if app.get("progress") else found


def _press(app, key: str):
    """Press the button a shortcut key maps to (the browser script does the same click)."""
    return app.button(key=annotate_page.shortcuts(CLASSES)[key]).click().run()


def test_a_label_click_appends_one_fsynced_line_to_the_annotators_file(gallery, open_app, monkeypatch):
    app = open_app(gallery, page="annotate", annotator="alice")
    assert _progress(app) == f"0 of {DEFAULT_N} labelled"
    assert len(app.get("image")) == 1
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    app.button(key=class_button(3)).click().run()
    events = _events(gallery, "alice")
    assert len(events) == 1 and synced  # durable before the page moved on
    assert events[0]["event"] == "label" and events[0]["label"] == CLASSES[2]
    assert events[0]["artwork_id"] == _order(gallery)[0]
    assert annotations.annotation_file(gallery, "alice") == gallery / "annotations" / "alice.jsonl"
    assert _progress(app) == f"1 of {DEFAULT_N} labelled"


def test_keys_and_buttons_map_to_the_classes(gallery, open_app):
    keys = annotate_page.shortcuts(CLASSES)
    assert {k: keys[k] for k in CLASS_KEYS} == {str(i): class_button(i) for i in range(1, 7)}
    assert keys["0"] == keys["u"] == class_button(0) and keys["z"] == UNDO_BUTTON
    assert json.dumps(keys) in annotate_page.keyboard_script(CLASSES)  # what the browser script reads

    app = open_app(gallery, page="annotate", annotator="alice")
    labels = {b.key: b.label for b in app.button}
    for i, name in enumerate(CLASSES, 1):
        assert labels[keys[str(i)]] == f"{i} · {name}"
    assert labels[keys["0"]] == "0 · unsure"
    for key in [*CLASS_KEYS, "u", "0"]:
        app = _press(app, key)
    assert [e["label"] for e in _events(gallery, "alice")] == [*CLASSES, "unsure", "unsure"]
    assert [e["artwork_id"] for e in _events(gallery, "alice")] == _order(gallery)[:8]
    assert _progress(app) == f"8 of {DEFAULT_N} labelled (2 unsure)"


def test_a_click_that_names_a_picture_already_labelled_is_ignored(gallery):
    """A key pressed again before the next picture shows reaches the button of the picture just
    labelled: it must not relabel that picture (nor label one the annotator has not seen)."""
    first, second = _order(gallery)[:2]
    annotate_page._save_label(gallery, "alice", first, "sea")
    annotate_page._save_label(gallery, "alice", first, "forest")  # the stale second press
    annotate_page._save_label(gallery, "alice", second, "forest")
    assert [(e["artwork_id"], e["label"]) for e in _events(gallery, "alice")] == [(first, "sea"), (second, "forest")]
    annotate_page._undo(gallery, "alice")
    annotate_page._undo(gallery, "alice")
    annotate_page._undo(gallery, "alice")  # nothing left to undo: no event
    assert [e["event"] for e in _events(gallery, "alice")] == ["label", "label", "undo", "undo"]
    assert annotations.read_log(annotations.annotation_file(gallery, "alice")).labels == {}


def test_a_name_that_differs_only_in_case_from_an_annotator_here_is_refused(gallery):
    first = _order(gallery)[0]
    annotations.append_label(gallery, "Alice", first, "sea")
    with pytest.raises(ConfigError, match="'Alice' already labels this gallery"):
        annotations.append_label(gallery, "alice", first, "forest")
    annotations.append_label(gallery, "Alice", first, "forest")  # the same person carries on
    annotations.append_label(gallery, "bob", first, "sea")  # another name is fine
    assert sorted(p.stem for p in annotations.annotations_folder(gallery).glob("*.jsonl")) == ["Alice", "bob"]


def test_the_sample_is_stratified_seeded_and_the_same_for_everyone(gallery, open_app):
    counted = counted_artworks(gallery)
    strata = counted.groupby(["generator", counted["prompt"].fillna("-")]).size()
    assert len(strata) == 6
    for per, seed in ((annotate_page.PER_STRATUM, annotate_page.SEED), (4, 7), (20, 1)):
        drawn = annotations.annotation_sample(counted, per, seed)
        sizes = drawn.groupby(["generator", drawn["prompt"].fillna("-")]).size()
        assert sizes.to_dict() == strata.clip(upper=per).to_dict()  # every stratum, min(per, its size)
        again = annotations.annotation_sample(counted.sample(frac=1, random_state=3), per, seed)
        assert again["artwork_id"].tolist() == drawn["artwork_id"].tolist()  # seeded, not row order
    assert _order(gallery, 4, 7) != _order(gallery, 4, 8)
    # a stratum that grows changes that stratum only
    baseline = counted[counted["prompt"].isna() & (counted["generator"] == "gen-a")]
    smaller = annotations.annotation_sample(counted.drop(baseline.index[:3]), 4, 7)
    kept = [a for a in _order(gallery, 4, 7) if not a.startswith("gen-a-baseline")]
    assert [a for a in smaller["artwork_id"] if not a.startswith("gen-a-baseline")] == kept

    # the page: the documented size, the same artwork first for every annotator, the export's sample
    alice = open_app(gallery, page="annotate", annotator="alice", sample="4", seed="7")
    assert _progress(alice) == "0 of 24 labelled"
    bob = open_app(gallery, page="annotate", annotator="bob", sample="4", seed="7")
    alice.button(key=class_button(1)).click().run()
    bob.button(key=class_button(2)).click().run()
    assert _events(gallery, "alice")[0]["artwork_id"] == _events(gallery, "bob")[0]["artwork_id"] \
        == _order(gallery, 4, 7)[0]
    sheet, _, _ = annotations.export_sheet(gallery, gallery.parent / "sheet.csv", per_stratum=4, seed=7)
    with open(sheet, newline="") as handle:
        assert [row["artwork_id"] for row in csv.DictReader(handle)] == _order(gallery, 4, 7)
    bad = open_app(gallery, page="annotate", annotator="carol", sample="many")
    assert "sample must be a whole number" in bad.warning[0].value
    assert _progress(bad) == f"0 of {DEFAULT_N} labelled"


def test_reopening_skips_what_the_annotator_already_labelled(gallery, open_app):
    order = _order(gallery)
    app = open_app(gallery, page="annotate", annotator="alice")
    for key in ("1", "5", "0"):
        app = _press(app, key)
    again = open_app(gallery, page="annotate", annotator="alice")  # a new session: a reload
    assert _progress(again) == f"3 of {DEFAULT_N} labelled (1 unsure)"
    _press(again, "2")
    assert [e["artwork_id"] for e in _events(gallery, "alice")] == order[:4]
    other = open_app(gallery, page="annotate", annotator="bob")  # several annotators, each their own
    assert _progress(other) == f"0 of {DEFAULT_N} labelled"
    chooser = open_app(gallery, page="annotate")
    assert {b.label for b in chooser.button} >= {"alice (4 labelled)"}
    for artwork in order[4:]:
        annotations.append_label(gallery, "alice", artwork, "forest")
    finished = open_app(gallery, page="annotate", annotator="alice")
    assert _progress(finished) == f"{DEFAULT_N} of {DEFAULT_N} labelled (1 unsure)"
    assert f"All {DEFAULT_N} pictures are labelled" in finished.success[0].value
    assert not finished.get("image") and not [b for b in finished.button if b.key == class_button(1)]
    assert not finished.button(key=UNDO_BUTTON).disabled


def test_undo_takes_back_the_last_label(gallery, open_app):
    order = _order(gallery)
    app = open_app(gallery, page="annotate", annotator="alice")
    assert app.button(key=UNDO_BUTTON).disabled
    app = _press(_press(app, "1"), "2")
    app = _press(app, "z")
    assert _progress(app) == f"1 of {DEFAULT_N} labelled"
    assert _events(gallery, "alice")[-1] == {**_events(gallery, "alice")[-1], "event": "undo",
                                             "artwork_id": order[1]}
    _press(app, "3")  # the undone artwork comes back first
    log = annotations.read_log(annotations.annotation_file(gallery, "alice"))
    assert log.labels == {order[0]: CLASSES[0], order[1]: CLASSES[2]}


def test_the_page_is_blind_to_models_generators_and_prompts(gallery, open_app):
    counted = counted_artworks(gallery)
    forbidden = [*counted["generator"].unique(), *counted["prompt"].dropna().unique(), CLASSIFIER, ZERO_SHOT,
                 "similarity", "confidence", "classifier", *counted["artwork_id"]]
    app = open_app(gallery, page="annotate", annotator="alice")
    for _ in range(3):
        shown = "\n".join(_texts(app)).lower()
        assert not [word for word in forbidden if word.lower() in shown]
        assert not [name for name in CLASSES if name in shown]  # class names only on the buttons
        assert {b.label for b in app.button} == {*annotate_page.button_labels(CLASSES).values(),
                                                  "Undo the last label", "Change annotator"}
        assert sorted(app.query_params) == ["annotator", "page"]  # nothing about the artwork in the URL
        app = _press(app, "4")


def test_the_page_never_writes_the_database(gallery, open_app, monkeypatch):
    """Labels go to the annotator's file only: a campaign's writer is never waited for or blocked."""
    def refuse(self):
        raise AssertionError("the annotation page opened a write transaction")

    app = open_app(gallery, page="annotate", annotator="alice")
    monkeypatch.setattr(Store, "write", refuse)
    app = _press(_press(_press(app, "1"), "z"), "6")
    assert not app.exception and len(_events(gallery, "alice")) == 3


def test_a_label_that_cannot_be_saved_says_so(gallery, open_app, monkeypatch):
    app = open_app(gallery, page="annotate", annotator="alice")

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    app = _press(app, "1")
    assert len(app.error) == 1 and "cannot save the annotation" in app.error[0].value
    assert "No space left" in app.error[0].value and _progress(app).startswith("0 of")
    monkeypatch.undo()
    (gallery / "annotations" / "alice.jsonl").unlink()
    (gallery / "annotations" / "alice.jsonl").mkdir()  # a folder where the file should be
    again = open_app(gallery, page="annotate", annotator="alice")
    assert len(again.error) == 1 and "cannot read annotation file" in again.error[0].value


def test_annotations_round_trip_to_human_labels_the_statistics_read(built, gallery, open_app, capsys):
    model = labelled_artworks(gallery, CLASSIFIER).set_index("artwork_id")["predicted"]
    order = _order(gallery)
    app = open_app(gallery, page="annotate", annotator="alice")
    for artwork in order[:3]:  # alice, on the page, agrees with the classifier
        app = _press(app, str(CLASSES.index(model[artwork]) + 1))
    for artwork in order[3:]:  # ... and on the rest through the same append the page uses
        annotations.append_label(gallery, "alice", artwork, model[artwork])
    for i, artwork in enumerate(order):  # bob says "sea" for every third artwork
        annotations.append_label(gallery, "bob", artwork, "sea" if i % 3 == 0 else model[artwork])
    annotations.append_label(gallery, "carol", order[0], "unsure")

    assert main(["annotate", "ingest", "--gallery", str(gallery)]) == 0
    out = capsys.readouterr().out
    assert f"ingested {2 * DEFAULT_N} labels (human:alice {DEFAULT_N}, human:bob {DEFAULT_N}, human:carol 0)" in out
    assert "1 unsure and 0 undone" in out
    assert f"human:alice vs {CLASSIFIER} on gen-a: kappa 1.00" in out
    stored = labelled_artworks(gallery, "human:alice").set_index("artwork_id")["predicted"]
    assert stored.sort_index().to_dict() == model[order].sort_index().to_dict()
    assert labelled_artworks(gallery, "human:carol").empty  # unsure is no class

    agreements = {(a.labeller, a.other, a.generator): a.agreement for a in gallery_bias(gallery).annotations}
    for generator in ("gen-a", "gen-b"):
        assert agreements[("human:alice", CLASSIFIER, generator)].kappa == pytest.approx(1.0)
        bob = agreements[("human:bob", CLASSIFIER, generator)]
        assert bob.n == DEFAULT_N // 2 and bob.kappa < 0.95

    # idempotent; an undo after ingesting withdraws that label at the next ingest
    assert main(["annotate", "ingest", "--gallery", str(gallery)]) == 0
    assert len(labelled_artworks(gallery, "human:alice")) == DEFAULT_N
    capsys.readouterr()
    annotations.append_undo(gallery, "alice", order[-1])
    assert main(["annotate", "ingest", "--gallery", str(gallery)]) == 0
    assert "1 unsure and 1 undone" in capsys.readouterr().out
    assert set(labelled_artworks(gallery, "human:alice")["artwork_id"]) == set(order[:-1])

    # out as CSV and into another copy of the gallery: the same human:NAME labels
    out_csv = gallery.parent / "human.csv"
    assert main(["annotate", "export", "--labels", "--gallery", str(gallery), "--out", str(out_csv)]) == 0
    other = shutil.copytree(built, gallery.parent / "other")  # no human labels yet
    assert labelled_artworks(other, "human:alice").empty
    assert main(["annotate", "import", str(out_csv), "--gallery", str(other)]) == 0
    for name in ("human:alice", "human:bob"):
        assert labelled_artworks(other, name).equals(labelled_artworks(gallery, name))


BAD_NAMES = [
    ("", "empty"),
    ("   ", "empty"),
    ("al\x07ice", "control character"),
    ("../alice", "path separator"),
    ("team\\alice", "path separator"),
    ("a" * 65, "at most 64"),
    ("alice smith!", "not a simple name"),
]


@pytest.mark.parametrize("name, words", BAD_NAMES)
def test_a_bad_annotator_name_is_one_clear_line(gallery, open_app, name, words):
    with pytest.raises(ConfigError, match=words):
        annotations.check_annotator(name)
    with pytest.raises(ConfigError):
        annotations.append_label(gallery, name, "x", "sea")
    app = open_app(gallery, page="annotate", annotator=name)
    assert len(app.error) == 1 and words in app.error[0].value and "\n" not in app.error[0].value
    assert not [b for b in app.button if b.key == class_button(1)]  # no labelling under a bad name
    assert not (gallery / "annotations").exists() and not (gallery.parent / "alice.jsonl").exists()


def _start(app):
    return next(b for b in app.button if b.label == "Start labelling")  # the form's submit button


def test_the_name_form_checks_the_name_and_keeps_a_good_one_in_the_url(gallery, open_app):
    app = open_app(gallery, page="annotate")
    app.text_input(key="annotate-name").input("../bob")
    _start(app).click().run()
    assert len(app.error) == 1 and "path separator" in app.error[0].value
    assert "annotator" not in app.query_params
    app.text_input(key="annotate-name").input("  bob ")
    _start(app).click().run()
    assert app.query_params["annotator"] in ("bob", ["bob"])
    assert _progress(app) == f"0 of {DEFAULT_N} labelled"


def test_a_torn_last_line_loses_only_itself(gallery):
    order = _order(gallery)
    annotations.append_label(gallery, "alice", order[0], "sea")
    path = annotations.annotation_file(gallery, "alice")
    with open(path, "a") as handle:  # a crash in the middle of writing a line
        handle.write('{"event":"label","artwork_id":"' + order[1])
    annotations.append_label(gallery, "alice", order[2], "forest")
    log = annotations.read_log(path)
    assert log.labels == {order[0]: "sea", order[2]: "forest"} and log.skipped == 1
    assert annotations.ingest_annotations(gallery).notes == [
        "alice.jsonl: 1 unreadable line(s) (a torn write) skipped"]


# -- in a real browser ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    """The app served by ``streamlit run`` on a sample gallery: (url, gallery)."""
    gallery = build_sample_gallery(tmp_path_factory.mktemp("panel") / "g", SampleSpec(runs_per_prompt=6))
    with serve(gallery, tmp_path_factory.mktemp("log")) as url:
        yield url, gallery


@needs_chromium
def test_annotation_page_screenshot_shows_the_picture_and_the_class_buttons(panel, tmp_path):
    url, gallery = panel
    page = f"{url}/?page=annotate&annotator=screenshot"
    pixels = capture(page, "annotate", tmp_path,
                     lambda p: colour_share(p, (150, 190, 230), tolerance=45) > 0.03)
    assert pixels.shape[:2] == (900, 1280)
    assert colour_share(pixels, (150, 190, 230), tolerance=45) > 0.03  # the enlarged scene's sky
    dom = dump_dom(page, tmp_path, until=lambda d: "st-key-annotate-label-1" in d)
    assert "<img" in dom
    for key, label in annotate_page.button_labels(CLASSES).items():
        assert f"st-key-{key}" in dom and label in dom
    assert not [word for word in ("gen-a", "gen-b", CLASSIFIER, "a calm sea", "similarity") if word in dom]
    assert not (gallery / "annotations").exists()  # looking labels nothing


@needs_devtools
def test_keyboard_shortcuts_click_the_buttons_in_a_real_browser(panel, tmp_path):
    """Key presses through the Chrome DevTools protocol: 3, U, Z, 5 label, mark unsure, undo, label."""
    url, gallery = panel
    progress = "document.querySelector('[data-testid=stProgress]').innerText"
    with chromium(tmp_path / "profile") as page:

        def until(expression, seconds=60):
            assert page.wait(expression, seconds), (expression, page.evaluate(progress), _events(gallery, "keys"))

        page.open(f"{url}/?page=annotate&annotator=keys")
        until("!!document.querySelector('.st-key-annotate-label-1 button') && !!window.artbiasAnnotateKeys")
        for key, after in (("3", "1 of"), ("u", "2 of"), ("z", "1 of"), ("5", "2 of")):
            # the script has finished its run (so the buttons carry the picture now shown)
            until(STREAMLIT_IDLE, seconds=30)
            page.press(key)
            until(f"{progress}.startsWith({after!r}) && {STREAMLIT_IDLE}", seconds=30)
    events = _events(gallery, "keys")
    assert [(e["event"], e.get("label")) for e in events] == [
        ("label", CLASSES[2]), ("label", "unsure"), ("undo", None), ("label", CLASSES[4])]
