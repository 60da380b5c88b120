"""The exhibition kiosk (``artbias gallery --kiosk``, ``?page=exhibition``): its slides through
``AppTest``, its sentences and order directly, and the served kiosk in headless Chromium."""

from __future__ import annotations

import hashlib
import html
import io
import random
import re
import shutil
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from browser import SCREEN, chromium, keep_screenshot, needs_devtools, serve
from PIL import Image
from sample_gallery import SampleSpec, build_sample_gallery, draw_scene
from streamlit.testing.v1 import AppTest

from data.world.params import CLASSES
from gallery.app import exhibition_page, kiosk
from gallery.cli import main
from gallery.report_commands import streamlit_command
from gallery.store import Store, queries
from gallery.store.records import (
    ArtworkRecord,
    CampaignRecord,
    LabellerRecord,
    LabelRecord,
    RunRecord,
)
from gallery.store.writes import insert_rows

APP = Path(__file__).resolve().parents[1] / "gallery" / "app" / "app.py"
SPEC = SampleSpec(runs_per_prompt=8, baseline_samples=20, image_size=16)
STILL = "300"  # seconds per slide: the show stands still while a test looks at it
JARGON = ("seed", "clip", "similarity", "labeller", "classifier", "p =", "p-value", "wilson", "baseline")

# A gallery whose labels are known exactly: (generator, prompt) -> the class of each artwork;
# prompt None holds the generator's unguided baseline samples. BigGAN paints the sea in 3 of
# 5 pictures when asked (60%) and in 4 of 20 unprompted (20%): three times as often.
KNOWN = {
    ("biggan-world", None): ["sea"] * 4 + ["forest"] * 16,
    ("biggan-world", "a beautiful landscape"): ["sea"] * 3 + ["forest"] * 2,
    ("biggan-world", "a cold place"): ["glacier"] * 5,
    ("dcgan-world", "a beautiful landscape"): ["sea"] * 5,  # no baseline: nothing to compare with
}
KNOWN_CAPTIONS = {
    "Asked for “a beautiful landscape”, BigGAN painted the sea — it does so 3× more often than unprompted.",
    "Asked for “a beautiful landscape”, BigGAN painted a forest — it does so 2× less often than unprompted.",
    "Asked for “a cold place”, BigGAN painted a glacier — something it never painted in 20 pictures made unprompted.",
    "Asked for “a beautiful landscape”, DCGAN painted the sea.",
}
INJECTED = "[click me](http://evil.example) <b>bold</b>"


def _write_png(root: Path, pixels: np.ndarray) -> tuple[str, str]:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    relative = f"images/{digest[:2]}/{digest}.png"
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_bytes(buffer.getvalue())
    return digest, relative


def build_known_gallery(root: Path, picks: dict = KNOWN, prompt_text: dict | None = None) -> Path:
    """A gallery whose only labeller, ``classifier-world``, says exactly ``picks``; one chosen
    artwork per search run. ``prompt_text`` renames prompts as stored (for tampered text)."""
    store = Store(root)
    store.migrate()
    rng = np.random.default_rng(0)
    when = datetime(2025, 1, 1)
    runs, artworks, labels = [], [], []
    for (generator, prompt), classes in picks.items():
        stored = (prompt_text or {}).get(prompt, prompt)
        baseline_run = f"{generator}-baseline"
        if prompt is None:
            runs.append(RunRecord(baseline_run, "known", "baseline", generator, None, "", None, 0, "prior", {},
                                  None, "done", when, when, 1.0, evaluations=len(classes)))
        for i, name in enumerate(classes):
            run_id = baseline_run if prompt is None else f"{generator}-{prompt}-{i}"
            if prompt is not None:
                runs.append(RunRecord(run_id, "known", "search", generator, stored, "", stored, i, "ga", {},
                                      "clip-world", "done", when, when, 1.0, evaluations=8, history=[0.2, 0.3]))
            sha, path = _write_png(root, draw_scene(name, rng, 8))
            artwork_id = f"{run_id}:{i if prompt is None else 0}"
            role = "baseline" if prompt is None else "chosen"
            artworks.append(ArtworkRecord(artwork_id, run_id, role, 0, sha, path, 0.3, 0.0, [0.0], when))
            probabilities = {c: (0.9 if c == name else 0.02) for c in CLASSES}
            labels.append(LabelRecord(artwork_id, "classifier-world", name, 0.9, probabilities))
    insert_rows(store, campaigns=[CampaignRecord("known", "known", {}, when)], runs=runs, artworks=artworks,
                labels=labels, labellers=[LabellerRecord("classifier-world", list(CLASSES), None, {})])
    return root


# -- reading the kiosk in AppTest -------------------------------------------------------------
_BLOCK = re.compile(r'<div class="(kiosk-[a-z]+)">(.*)</div>', re.S)


def _blocks(app: AppTest) -> list[tuple[str, str]]:
    found = [_BLOCK.fullmatch(m.value) for m in app.markdown]
    return [(m.group(1), html.unescape(m.group(2))) for m in found if m]


def _counter(app: AppTest) -> tuple[int, int, str]:
    """(this slide, slides, status) from the line under the show: "3 / 35 · next in 8 s"."""
    line = next(text for kind, text in _blocks(app) if kind == "kiosk-meta" and " / " in text)
    found = re.match(r"(\d+) / (\d+) · (.*)", line)
    return int(found.group(1)), int(found.group(2)), found.group(3)


def _slide(app: AppTest) -> dict:
    blocks = _blocks(app)
    titles = [text for kind, text in blocks if kind == "kiosk-title"]
    captions = [text for kind, text in blocks if kind == "kiosk-caption"]
    kind = "artwork" if captions else ("intro" if "machine" in (titles or [""])[0] else "finding")
    asked = re.match(r"Asked for “(.+?)”, (.+?) painted", captions[0]) if captions else None
    return {
        "position": _counter(app)[0],
        "kind": kind,
        "title": (titles or captions or [""])[0],
        "texts": [text for _, text in blocks] + [c.value for c in app.caption],
        "images": len(app.get("image")),
        "group": (asked.group(2), asked.group(1)) if asked else None,
    }


def _open(gallery: Path, **query: str) -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=60)
    for name, value in query.items():
        app.query_params[name] = value
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _press(app: AppTest, key: str) -> AppTest:
    app.button(key=key).click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _walk(gallery: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every slide of the show once, from the introduction, by the Next button."""
    monkeypatch.setenv("ARTBIAS_GALLERY", str(gallery))
    app = _open(gallery, page="exhibition", interval=STILL)
    total = _counter(app)[1]
    slides = []
    for _ in range(total):
        slides.append(_slide(app))
        _press(app, "kiosk_next")
    assert _counter(app)[0] == 1  # round again: back to the introduction
    return slides


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    return build_sample_gallery(tmp_path_factory.mktemp("gallery"), SPEC)


@pytest.fixture(scope="module")
def walked(gallery):
    with pytest.MonkeyPatch.context() as patch:
        return _walk(gallery, patch)


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    gallery = build_known_gallery(tmp_path_factory.mktemp("known"))
    with pytest.MonkeyPatch.context() as patch:
        return _walk(gallery, patch)


# -- the show ---------------------------------------------------------------------------------
def test_the_show_opens_on_a_plain_introduction(gallery, open_app):
    app = open_app(gallery, page="exhibition", interval=STILL)
    first = _slide(app)
    assert first["kind"] == "intro" and first["position"] == 1
    assert first["title"] == "What does a machine find beautiful?"
    assert first["images"] == 0
    text = " ".join(first["texts"])
    assert "two computer programs" in text and "“a beautiful landscape”" in text
    assert kiosk.UPSCALE_FILTER_NAME in text  # the enlarging is stated
    assert not any(word in text.lower() for word in JARGON)


def test_next_previous_and_pause_change_the_slide(gallery, open_app):
    app = open_app(gallery, page="exhibition", interval=STILL)
    total = _counter(app)[1]
    _press(app, "kiosk_next")
    second = _slide(app)
    assert second["position"] == 2 and second["kind"] == "artwork" and second["images"] == 1
    _press(app, "kiosk_next")
    third = _slide(app)
    assert third["position"] == 3 and third != second
    _press(app, "kiosk_prev")
    assert _slide(app) == second
    _press(app, "kiosk_prev")
    _press(app, "kiosk_prev")
    assert _counter(app)[0] == total  # before the first slide: the last one
    assert app.button(key="kiosk_pause").label == "Pause"
    _press(app, "kiosk_pause")
    assert _counter(app)[2] == "paused" and app.button(key="kiosk_pause").label == "Play"
    _press(app, "kiosk_pause")
    assert _counter(app)[2] == f"next in {STILL} s"


def test_the_show_advances_by_itself_until_paused(gallery, open_app):
    low = kiosk.INTERVAL_RANGE_S[0]
    app = open_app(gallery, page="exhibition", interval=f"{low:g}")
    assert _counter(app)[0] == 1
    app.run()
    assert _counter(app)[0] == 1  # a re-run before the interval is up moves nothing
    time.sleep(low + 0.1)
    app.run()  # what the fragment's timer does
    assert _counter(app)[0] == 2
    _press(app, "kiosk_pause")
    time.sleep(low + 0.1)
    app.run()
    assert _counter(app)[0] == 2 and _counter(app)[2] == "paused"
    _press(app, "kiosk_pause")
    time.sleep(low + 0.1)
    app.run()
    assert _counter(app)[0] == 3


def test_the_buttons_have_keys():
    if not exhibition_page._SHORTCUTS:
        pytest.skip("this Streamlit has no button shortcuts")
    assert {key: shortcut for key, _, _, shortcut in exhibition_page.CONTROLS} == {
        "kiosk_prev": "Left", "kiosk_pause": "Space", "kiosk_next": "Right"}


def test_the_keys_reach_the_buttons(gallery, open_app):
    if not exhibition_page._SHORTCUTS:
        pytest.skip("this Streamlit has no button shortcuts")
    app = open_app(gallery, page="exhibition", interval=STILL)
    shortcuts = {b.proto.label: b.proto.shortcut.lower() for b in app.button}
    assert shortcuts["Previous"] == "left" and shortcuts["Pause"] == "space" and shortcuts["Next"] == "right"


def test_every_artwork_and_finding_is_shown_once_per_round(walked):
    kinds = Counter(s["kind"] for s in walked)
    assert kinds == {"intro": 1, "artwork": 2 * 2 * SPEC.runs_per_prompt, "finding": 2}
    assert [s["position"] for s in walked] == list(range(1, len(walked) + 1))
    assert all(s["images"] == 1 for s in walked if s["kind"] == "artwork")
    findings = [s["title"] for s in walked if s["kind"] == "finding"]
    assert findings == ["What we found: gen-a", "What we found: gen-b"]
    # a finding comes after every FINDING_EVERY pictures, not all at the end
    first_finding = next(i for i, s in enumerate(walked) if s["kind"] == "finding")
    assert first_finding == 1 + kiosk.FINDING_EVERY


def test_the_order_never_repeats_a_generator_and_prompt(walked):
    groups = [s["group"] for s in walked if s["kind"] == "artwork"]
    assert all(groups)
    assert all(a != b for a, b in zip(groups, groups[1:], strict=False)), groups
    assert len(set(groups[:4])) == 4  # the first four pictures come from the four groups
    assert Counter(groups) == {(g, p): SPEC.runs_per_prompt for g in ("gen-a", "gen-b")
                               for p in ("a beautiful landscape", "a calm sea")}


def test_captions_are_plain_words(walked):
    for slide in walked:
        for text in slide["texts"]:
            assert not any(word in text.lower() for word in JARGON), text
    artworks = [s for s in walked if s["kind"] == "artwork"]
    assert all(re.fullmatch(r"Asked for “.+”, gen-[ab] painted .+\.", s["title"]) for s in artworks)
    assert any("× more often than unprompted" in s["title"] for s in artworks)


def test_the_ratio_sentences_on_known_counts(known):
    captions = {s["title"] for s in known if s["kind"] == "artwork"}
    assert KNOWN_CAPTIONS <= captions
    assert len(captions) == 4  # every picture of a group shares its class here
    findings = {s["title"]: s["texts"] for s in known if s["kind"] == "finding"}
    biggan = " ".join(findings["What we found: BigGAN"])
    assert "Asked for “a beautiful landscape”, it painted the sea most often: 3 of 5 pictures (60%" in biggan
    assert "On its own, 20% of its pictures show the sea." in biggan
    dcgan = " ".join(findings["What we found: DCGAN"])
    assert "5 of 5 pictures (100%" in dcgan and "On its own" not in dcgan  # no baseline: said less


def test_comparison_says_less_on_few_pictures():
    counts = {("g", "p"): Counter(sea=3, forest=2), ("g", None): Counter(sea=4, forest=16)}
    assert kiosk.comparison(counts, "g", "p", "sea") == "it does so 3× more often than unprompted"
    few = {("g", "p"): Counter(sea=3), ("g", None): Counter(sea=4, forest=16)}
    assert kiosk.comparison(few, "g", "p", "sea") is None  # 3 < MIN_PROMPT_PICTURES
    small_baseline = {("g", "p"): Counter(sea=3, forest=2), ("g", None): Counter(sea=1, forest=4)}
    assert kiosk.comparison(small_baseline, "g", "p", "sea") is None
    same = {("g", "p"): Counter(sea=1, forest=4), ("g", None): Counter(sea=4, forest=16)}
    assert kiosk.comparison(same, "g", "p", "sea") == "about as often as it does unprompted"
    assert kiosk.comparison(counts, "g", "p", "glacier") is None  # it did not paint one


@pytest.mark.parametrize("seed", range(40))
def test_spread_order_avoids_every_avoidable_repeat(seed):
    rng = random.Random(seed)
    sizes = {(f"g{g}", f"p{p}"): rng.randint(1, 12) for g in range(rng.randint(1, 3)) for p in range(rng.randint(1, 3))}
    groups = [group for group, n in sizes.items() for _ in range(n)]
    rng.shuffle(groups)
    order = kiosk.spread_order(groups, seed)
    assert sorted(order) == list(range(len(groups)))
    shown = [groups[i] for i in order]
    repeats = sum(a == b for a, b in zip(shown, shown[1:], strict=False))
    # the fewest repeats any order can have: the largest group's excess over all the others
    assert repeats == max(0, 2 * max(sizes.values()) - len(groups) - 1), (sizes, shown)


def test_spread_order_is_seeded():
    groups = [("a", "x")] * 5 + [("b", "x")] * 5 + [("a", "y")] * 5
    assert kiosk.spread_order(groups, 1) == kiosk.spread_order(groups, 1)
    assert kiosk.spread_order(groups, 1) != kiosk.spread_order(groups, 2)


def test_a_large_gallery_shares_the_round_fairly(gallery):
    groups = ["big"] * 100 + ["small"] * 10 + ["tiny"] * 4
    kept = kiosk.fair_selection(groups, 30)
    assert Counter(groups[i] for i in kept) == {"big": 16, "small": 10, "tiny": 4}
    assert [i for i in kept if groups[i] == "big"] == list(range(16))  # the first (best) of each group
    assert kiosk.fair_selection(groups, 500) == list(range(len(groups)))
    rows = queries.exhibition_artworks(gallery, queries.ArtworkFilter(roles=("chosen",)), per_group=3)
    assert Counter(zip(rows["generator"], rows["prompt"], strict=True)) == {
        (g, p): 3 for g in ("gen-a", "gen-b") for p in ("a beautiful landscape", "a calm sea")}
    for _, group in rows.groupby(["generator", "prompt"]):
        assert list(group["similarity"]) == sorted(group["similarity"], reverse=True)
    slides = kiosk.build_slides(rows, {}, {}, limit=8)
    assert Counter(s.group for s in slides if s.kind == "artwork") == {
        (g, p): 2 for g in ("gen-a", "gen-b") for p in ("a beautiful landscape", "a calm sea")}


def test_pictures_are_enlarged_into_sharp_blocks():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    enlarged, factor = kiosk.upscale(Image.fromarray(pixels))
    assert factor == 48 and enlarged.size == (768, 768)
    blocks = np.asarray(enlarged).reshape(16, factor, 16, factor, 3)
    assert (blocks == pixels[:, None, :, None, :]).all()  # every block is its pixel, unblended
    large = Image.fromarray(rng.integers(0, 256, size=(800, 900, 3), dtype=np.uint8))
    assert kiosk.upscale(large) == (large, 1)


def test_generator_and_scene_names_for_visitors():
    assert kiosk.generator_name("biggan-world") == "BigGAN"
    assert kiosk.generator_name("stylegan2-ffhq") == "StyleGAN2 (ffhq)"
    assert kiosk.generator_name("my-model") == "my-model"
    assert kiosk.scene("sea") == "the sea" and kiosk.scene("buildings") == "buildings"


# -- kiosk mode, bad input, stored text --------------------------------------------------------
def test_kiosk_mode_shows_only_the_exhibition(gallery, open_app, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["app.py", "--gallery", str(gallery), "--kiosk", "--interval", "42"])
    app = open_app(gallery, page="bias")
    assert _slide(app)["kind"] == "intro"
    assert _counter(app)[2] == "next in 42 s"
    assert "Leave the exhibition" not in [b.label for b in app.button]
    monkeypatch.setattr(sys, "argv", ["app.py"])
    plain = open_app(gallery, page="exhibition", interval=STILL)
    assert "Leave the exhibition" in [b.label for b in plain.button]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"interval": "soon"}, "is not a number of seconds"),
        ({"interval": "0.5"}, "interval must be 2–300 seconds"),
        ({"slide": "first"}, "is not a slide number"),
        ({"slide": "0"}, "is not a slide number"),
    ],
)
def test_bad_parameters_give_a_clear_message(gallery, open_app, query, message):
    app = open_app(gallery, page="exhibition", **query)
    assert len(app.warning) == 1 and message in app.warning[0].value
    assert _counter(app)[0] == 1  # and the show still runs


def test_the_slide_parameter_opens_that_slide(gallery, open_app):
    app = open_app(gallery, page="exhibition", interval=STILL, slide="3")
    assert _counter(app)[0] == 3 and _slide(app)["kind"] == "artwork"


def test_stored_text_and_paths_stay_harmless(tmp_path, monkeypatch):
    picks = {("gen-x", None): ["sea"] * 12, ("gen-x", "p"): ["sea"] * 6}
    gallery = build_known_gallery(tmp_path / "g", picks, prompt_text={"p": INJECTED})
    secret = tmp_path / "secret.png"
    first = Store(gallery).read("SELECT artwork_id, image_path FROM artworks WHERE role = 'chosen' ORDER BY 1")
    shutil.copy(gallery / first.image_path[0], secret)
    with Store(gallery).write() as con:
        con.execute("UPDATE artworks SET image_path = ? WHERE artwork_id = ?", [str(secret), first.artwork_id[0]])
    slides = _walk(gallery, monkeypatch)
    artworks = [s for s in slides if s["kind"] == "artwork"]
    assert sum(s["images"] for s in artworks) == len(artworks) - 1
    assert any("image unavailable" in s["texts"] for s in artworks)
    assert any(INJECTED in s["title"] for s in artworks)  # shown as written ...
    app = _open(gallery, page="exhibition", interval=STILL, slide="2")
    for markdown in app.markdown:  # ... never as a link or markup
        assert "](http" not in markdown.value and "<b>bold" not in markdown.value


def test_an_empty_gallery_is_a_message(tmp_path, open_app):
    Store(tmp_path / "empty").migrate()
    app = open_app(tmp_path / "empty", page="exhibition")
    assert any("No artworks to show yet" in i.value for i in app.info)


# -- the command ------------------------------------------------------------------------------
def test_the_kiosk_command_turns_streamlit_chrome_off():
    command = streamlit_command("g", 8501, kiosk=True, interval=10)
    assert command[command.index("--client.toolbarMode") + 1] == "minimal"
    assert command[command.index("--client.showSidebarNavigation") + 1] == "false"
    assert command[command.index("--client.showErrorDetails") + 1] == "none"
    assert command[command.index("--") + 1:][2:] == ["--kiosk", "--interval", "10"]
    plain = streamlit_command("g", 8501)
    assert "--kiosk" not in plain and plain[plain.index("--client.toolbarMode") + 1] == "viewer"


def test_artbias_gallery_kiosk_passes_its_options(tmp_path, monkeypatch, capsys):
    import gallery.report_commands as report_commands

    served = []
    monkeypatch.setattr(report_commands, "serve", lambda *args, **kwargs: served.append((args, kwargs)) or 0)
    assert main(["gallery", "--gallery", str(tmp_path), "--kiosk", "--interval", "12"]) == 0
    assert served[0][1] == {"kiosk": True, "interval": 12.0}
    for argv, message in ((["--interval", "12"], "give --kiosk too"),
                          (["--kiosk", "--interval", "1"], "--interval must be 2-300 seconds, got 1")):
        assert main(["gallery", "--gallery", str(tmp_path), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err
    assert len(served) == 1


# -- the served kiosk in headless Chromium -----------------------------------------------------
KIOSK_BACKGROUND = (17, 17, 17)  # #111 in exhibition_page's CSS
SKY = (150, 190, 230)  # the sample scenes' skies (tests/sample_gallery.py)


@pytest.fixture(scope="module")
def served_kiosk(tmp_path_factory):
    """``artbias gallery --kiosk``'s Streamlit command on a sample gallery, on a free port."""
    gallery = build_sample_gallery(tmp_path_factory.mktemp("served"), SampleSpec(runs_per_prompt=6, baseline_samples=20,
                                                                                  image_size=32))
    with serve(gallery, tmp_path_factory.mktemp("log"), kiosk=True, interval=300) as url:
        yield url


_COUNTER_JS = "[...document.querySelectorAll('.kiosk-meta')].map(e => e.textContent).find(t => t.includes(' / ')) || ''"
_PICTURE_JS = ("(() => { const i = document.querySelector('.st-key-kiosk_picture img');"
               " if (!i || !i.complete || !i.naturalWidth) return null;"
               " const r = i.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })()")
_CHROME_JS = ("[...document.querySelectorAll('header, [data-testid=stToolbar], [data-testid=stMainMenu], #MainMenu,"
              " .stAppDeployButton, [data-testid=stAppDeployButton], [data-testid=stSidebar], footer')]"
              ".filter(e => e.getBoundingClientRect().height > 0 && getComputedStyle(e).display !== 'none')"
              ".map(e => e.tagName + ' ' + (e.getAttribute('data-testid') || e.className))")


@needs_devtools
def test_kiosk_screenshot_shows_a_sharp_picture_and_no_streamlit_chrome(served_kiosk, tmp_path):
    with chromium(tmp_path / "profile") as page:
        page.open(f"{served_kiosk}/?slide=2")
        box = page.wait(_PICTURE_JS)
        assert box, "the kiosk showed no picture"
        time.sleep(1)  # let the fonts and the last deltas settle
        pixels = page.screenshot()
        chrome = page.evaluate(_CHROME_JS)
        text = page.evaluate("document.body.innerText")
    keep_screenshot("kiosk", pixels)
    assert pixels.shape[:2] == (SCREEN[1], SCREEN[0])
    assert chrome == [] and "Deploy" not in text  # no header, toolbar, menu, Deploy button or sidebar
    left, upper, right, lower = (int(round(v)) for v in box)
    # Where Streamlit's header, toolbar and Deploy button would be (the top 60 px, the picture
    # aside): the dark room only.
    top = pixels[:60].astype(int)
    background = np.abs(top - KIOSK_BACKGROUND).max(axis=-1) <= 6
    background[upper - 1:, left - 1:right + 1] = True
    assert background.all()
    picture = pixels[upper + 2:lower - 2, left + 2:right - 2].astype(int)
    assert min(picture.shape[:2]) > 300  # enlarged to fill the screen
    sky = np.abs(picture - SKY).max(axis=-1) <= 45
    assert sky.mean() > 0.05  # a painted scene, not a placeholder
    same = (picture[:, 1:] == picture[:, :-1]).all(axis=-1)
    assert same.mean() > 0.8  # square blocks of one colour: not smoothed
    assert "Asked for “" in text and "painted" in text


@needs_devtools
def test_kiosk_keys_move_and_pause_the_show(served_kiosk, tmp_path):
    with chromium(tmp_path / "profile") as page:
        page.open(f"{served_kiosk}/?slide=2")
        assert page.wait(f"({_COUNTER_JS}).startsWith('2 / ')")
        # each key once the script has finished its run (and bound the buttons' keys)
        assert page.press_until("ArrowRight", f"({_COUNTER_JS}).startsWith('3 / ')", timeout=60)
        assert page.press_until(" ", f"({_COUNTER_JS}).endsWith('paused')", timeout=60)
        assert page.press_until("ArrowLeft", f"({_COUNTER_JS}).startsWith('2 / ')", timeout=60)
        assert page.evaluate(_COUNTER_JS).endswith("paused")
        assert page.evaluate(_COUNTER_JS).startswith("2 / ")  # no press was counted twice
