"""The researcher's workbench and the student's summary: state in the URL, click-through, the
new filters, previous / next, downloads, Cramér's V with its test and interval, the plain
sentences, the column legend and warnings said once."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sample_gallery import SampleSpec, build_sample_gallery
from scipy import stats
from scipy.stats.contingency import association
from statsmodels.stats.proportion import proportion_confint

from gallery import statistics as S
from gallery.app import bias_page, charts
from gallery.bias import (
    TABLE_LEGEND,
    format_table,
    gallery_bias,
    plain_sentences,
    to_json,
    warning_groups,
)
from gallery.store import Store, queries
from gallery.store.records import (
    ArtworkRecord,
    CampaignRecord,
    LabellerRecord,
    LabelRecord,
    RunRecord,
)
from gallery.store.writes import insert_rows

CLASSES = ["buildings", "forest", "glacier", "mountain", "sea", "street"]
FIRST, SECOND = "classifier-world", "classifier-world-b"
PROMPT, CONTROL = "a beautiful landscape", "a landscape"
# generator -> prompt (None: unguided baseline) -> the first labeller's classes, in order
KNOWN = {
    "gen-x": {
        PROMPT: ["mountain"] * 9 + ["forest"] * 5 + ["sea"] * 3 + ["glacier"] * 3,
        CONTROL: ["forest"] * 5 + ["mountain"] * 5,
        None: ["mountain"] * 12 + ["forest"] * 10 + ["sea"] * 8 + ["glacier"] * 10,
    },
    "gen-y": {
        PROMPT: ["mountain"] * 2 + ["sea"] * 12 + ["forest"] * 6,
        None: ["mountain"] * 10 + ["sea"] * 10 + ["forest"] * 10 + ["glacier"] * 10,
    },
}
# Where the second labeller says otherwise: gen-x's prompt runs 0-3 (chosen artworks and run 0's
# sibling) and its baseline samples 0-2.
DISAGREE_CHOSEN, DISAGREE_ALL = 4, 4 + 1 + 3
LOW_CONFIDENCE_RUNS, MIDDLE_CONFIDENCE_RUNS = range(0, 5), range(5, 10)  # gen-x's prompt runs


def _other(name: str) -> str:
    return CLASSES[(CLASSES.index(name) + 1) % len(CLASSES)]


def build_known_gallery(root) -> Store:
    """A gallery whose every label is set by hand: the counts above, one 'top' sibling per
    search run, a control prompt and two scene labellers that disagree where stated."""
    from PIL import Image

    store = Store(root)
    store.migrate()
    image = root / "images" / "ab" / "one.png"
    image.parent.mkdir(parents=True)
    Image.new("RGB", (8, 8), (40, 110, 50)).save(image)
    start = datetime(2025, 1, 1)
    runs, artworks, labels = [], [], []

    def add(run_id, index, role, label, confidence, disagree, when, similarity):
        artwork_id = f"{run_id}:{index}"
        artworks.append(ArtworkRecord(artwork_id, run_id, role, index, "sha", "images/ab/one.png", similarity,
                                      None, [], when))
        labels.append(LabelRecord(artwork_id, FIRST, label, confidence, {label: confidence}))
        second = _other(label) if disagree else label
        labels.append(LabelRecord(artwork_id, SECOND, second, 0.9, {second: 0.9}))

    minute = 0
    for generator, prompts in KNOWN.items():
        for prompt, classes in prompts.items():
            when = start + timedelta(minutes=minute)
            minute += 1
            if prompt is None:
                run_id = f"{generator}-baseline"
                runs.append(RunRecord(run_id, "known", "baseline", generator, None, "", None, 0, "prior", {},
                                      None, "done", when, when, 1.0))
                for i, label in enumerate(classes):
                    add(run_id, i, "baseline", label, 0.9, generator == "gen-x" and i < 3, when, None)
                continue
            for seed, label in enumerate(classes):
                run_id = f"{generator}-{prompt.replace(' ', '-')}-{seed}"
                when = start + timedelta(minutes=minute)
                minute += 1
                runs.append(RunRecord(run_id, "known", "search", generator, prompt, "", prompt, seed, "ga", {},
                                      "clip-world", "done", when, when, 1.0))
                mine = generator == "gen-x" and prompt == PROMPT
                confidence = (0.3 if mine and seed in LOW_CONFIDENCE_RUNS else
                              0.6 if mine and seed in MIDDLE_CONFIDENCE_RUNS else 0.95)
                add(run_id, 0, "chosen", label, confidence, mine and seed < 4, when, 0.3 + seed / 100)
                add(run_id, 1, "top", label, confidence, mine and seed == 0, when, 0.29 + seed / 100)
    insert_rows(
        store,
        campaigns=[CampaignRecord("known", "known", {"prompts": [{"text": PROMPT, "controls": [CONTROL]}]},
                                  start)],
        runs=runs, artworks=artworks, labels=labels,
        labellers=[LabellerRecord(FIRST, CLASSES, None, {}), LabellerRecord(SECOND, CLASSES, None, {})],
    )
    return store


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    return build_known_gallery(tmp_path_factory.mktemp("known")).root


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return build_sample_gallery(tmp_path_factory.mktemp("sample"),
                                SampleSpec(runs_per_prompt=8, baseline_samples=20, image_size=8))


def _match_count(app) -> int:
    caption = next(c.value for c in app.caption if "artworks match" in c.value)
    return int(re.match(r"(\d+) of", caption).group(1))


def _sidebar(app, kind: str, label: str):
    return next(w for w in getattr(app.sidebar, kind) if w.label == label)


def _grid_ids(app) -> list[str]:
    return [b.key.removeprefix("open_") for b in app.button if b.key and b.key.startswith("open_")]


def _plain(text: str) -> str:
    return text.replace("\\", "")


# -- state in the URL -----------------------------------------------------------------------------
def test_a_gallery_url_restores_its_filters_and_writes_changes_back(sample, open_app):
    app = open_app(sample, page="gallery", generator="gen-b", role=["chosen", "top", "pareto"], sort="similarity-asc",
                   per="24", p="2", **{"class": ["sea", "street"]})
    assert _sidebar(app, "multiselect", "Generator").value == ["gen-b"]
    assert _sidebar(app, "multiselect", "Predicted class").value == ["sea", "street"]
    assert _sidebar(app, "multiselect", "Role").value == ["chosen", "top", "pareto"]
    assert _sidebar(app, "selectbox", "Sort").value == "lowest CLIP similarity first"
    assert _sidebar(app, "selectbox", "Per page").value == 24
    expected = Store(sample).read(
        "SELECT count(*) AS n FROM artworks a JOIN runs r USING (run_id) JOIN labels l USING (artwork_id)"
        " WHERE r.status = 'done' AND r.generator = 'gen-b' AND a.role IN ('chosen', 'top', 'pareto')"
        " AND l.labeller = 'classifier-world' AND l.predicted IN ('sea', 'street')")["n"].iloc[0]
    assert _match_count(app) == expected > 24  # the URL's filters, and a second page to be on
    assert f"page 2 of {-(-expected // 24)}" in next(c.value for c in app.caption if "artworks match" in c.value)

    _sidebar(app, "multiselect", "Prompt").select("a calm sea").run()
    assert app.query_params["prompt"] == "a calm sea" and app.query_params["generator"] == "gen-b"
    assert "p" not in app.query_params  # a new filter starts at page 1, which the URL leaves out
    _sidebar(app, "multiselect", "Role").unselect("top").unselect("chosen").unselect("pareto").run()
    assert app.query_params["role"] == ""  # no role at all: written, since the default is 'chosen'
    assert _match_count(app) > expected // 2

    stale = open_app(sample, page="gallery", generator="no-such-generator", sort="sideways", p="x")
    assert _sidebar(stale, "multiselect", "Generator").value == []
    assert _match_count(stale) == 2 * 2 * 8  # the default view: every chosen artwork
    assert {"generator", "sort", "p"}.isdisjoint(stale.query_params)  # the bad values left the URL


def test_the_bias_url_restores_prompt_tab_and_labeller(known, open_app):
    app = open_app(known, page="bias", prompt=CONTROL, tab="between", labeller=SECOND)
    assert app.selectbox(key="bias_prompt").value == CONTROL
    assert app.session_state["bias_tab"] == bias_page.TABS["between"]
    assert app.selectbox(key="bias_labeller").value == SECOND
    assert "gen-x · a landscape" in [s.value for s in app.subheader]
    app.selectbox(key="bias_prompt").set_value(queries.BASELINE_LABEL).run()
    assert app.query_params["prompt"] == queries.BASELINE_LABEL and app.query_params["tab"] == "between"
    app.selectbox(key="bias_prompt").set_value(PROMPT).run()
    assert "prompt" not in app.query_params  # the first prompt is the default
    app.session_state["bias_tab"] = bias_page.TABS["overview"]  # as a click on the tab does
    app.run()
    assert app.query_params["tab"] == "overview"
    plain = open_app(known, page="bias")
    assert set(plain.query_params) == {"page"}  # defaults stay out of the URL
    assert plain.session_state["bias_tab"] == bias_page.TABS["prompt"]


def test_the_compare_url_restores_its_selections(known, open_app):
    app = open_app(known, page="compare", mode="prompts", generator="gen-x", prompt_a=CONTROL,
                   prompt_b=queries.BASELINE_LABEL)
    assert app.radio(key="cmp_mode").value == "two prompts, one generator"
    assert app.selectbox(key="cmp_generator").value == "gen-x"
    assert app.selectbox(key="cmp_prompt_a").value == CONTROL
    assert app.selectbox(key="cmp_prompt_b").value == queries.BASELINE_LABEL
    assert "gen-x · a landscape" in [m.value for m in app.markdown if m.value.startswith("####")][0]
    app.radio(key="cmp_mode").set_value("two generators, one prompt").run()
    app.selectbox(key="cmp_gen_a").set_value("gen-y").run()
    assert "mode" not in app.query_params and app.query_params["gen_a"] == "gen-y"  # generators: the default
    again = open_app(known, page="compare", **{k: v for k, v in app.query_params.items() if k != "page"})
    assert again.selectbox(key="cmp_gen_a").value == "gen-y"


# -- the new filters ------------------------------------------------------------------------------
def test_disagreement_confidence_and_kind_filter_to_known_counts(known, open_app):
    def count(**query) -> int:
        return _match_count(open_app(known, page="gallery", **query))

    assert count() == 20 + 10 + 20  # chosen artworks of every search
    assert count(disagree=SECOND) == DISAGREE_CHOSEN
    assert count(disagree=SECOND, role="") == DISAGREE_ALL
    assert count(confidence="0,0.4") == len(LOW_CONFIDENCE_RUNS)
    assert count(confidence="0.5,0.7") == len(MIDDLE_CONFIDENCE_RUNS)
    assert count(confidence="0.5,0.7", role=["chosen", "top"]) == 2 * len(MIDDLE_CONFIDENCE_RUNS)
    assert count(kind="searched") == 40
    assert count(kind="control") == 10
    assert count(kind="baseline", role="baseline") == 80
    assert count(kind=["control", "baseline"], role=["chosen", "baseline"]) == 90
    # the same filter through the store, as the artwork page uses it
    filters = queries.WorkbenchFilter(labeller=FIRST, disagree_with=SECOND, roles=(), kinds=("baseline",))
    assert queries.count_artworks(known, filters) == 3
    app = open_app(known, page="gallery", kind="baseline")
    assert "role 'baseline'" in app.info[0].value  # an empty result says why


# -- previous / next ----------------------------------------------------------------------------
def test_previous_and_next_walk_the_gallery_grid_in_its_order(sample, open_app):
    query = {"generator": "gen-a", "prompt": "a calm sea", "sort": "similarity-asc", "role": ["chosen", "pareto"]}
    grid = open_app(sample, page="gallery", **query)
    order = _grid_ids(grid)
    grid.number_input(key="f_page").set_value(2).run()
    order += _grid_ids(grid)
    assert len(order) == _match_count(grid) == 2 * 8  # every artwork of the grid, in page order

    app = open_app(sample, page="gallery", **query)
    app.button(key=f"open_{order[0]}").click().run()
    assert app.query_params["page"] == "artwork" and app.query_params["generator"] == "gen-a"
    assert app.button(key="walk_previous").disabled
    walked = [app.query_params["id"]]
    for _ in range(len(order) - 1):
        app.button(key="walk_next").click().run()
        walked.append(app.query_params["id"])
    assert walked == order
    assert app.button(key="walk_next").disabled
    assert f"{len(order)} of {len(order)}" in " ".join(c.value for c in app.caption)
    app.button(key="walk_previous").click().run()
    assert app.query_params["id"] == order[-2]
    app.button(key="walk_back").click().run()
    assert app.query_params["page"] == "gallery" and app.query_params["p"] == "2"
    assert app.query_params["sort"] == "similarity-asc"
    assert order[-2] in _grid_ids(app)  # back on the grid page that holds it
    artwork = open_app(sample, page="artwork", id=order[0])
    assert [b.proto.label for b in artwork.get("download_button")] == ["Download the image (PNG)"]


# -- click-through from a bar -----------------------------------------------------------------
def test_a_class_of_a_bias_chart_opens_exactly_its_artworks(known, open_app):
    bias = gallery_bias(known, n_resamples=200)
    report = next(r for r in bias.reports if r.generator == "gen-x" and r.prompt == PROMPT)
    app = open_app(known, page="bias", prompt=PROMPT)
    pills = next(p for p in app.pills if p.key == f"open_{bias.reports.index(report)}")
    pills.set_value("mountain").run()
    assert app.query_params["page"] == "gallery"
    assert (app.query_params["generator"], app.query_params["prompt"], app.query_params["class"]) == (
        "gen-x", PROMPT, "mountain")
    assert _match_count(app) == report.rows[CLASSES.index("mountain")].count == 9

    baseline = open_app(known, page="bias", prompt=queries.BASELINE_LABEL)
    index = next(i for i, r in enumerate(bias.reports) if r.generator == "gen-y" and r.is_baseline)
    next(p for p in baseline.pills if p.key == f"open_{index}").set_value("sea").run()
    assert baseline.query_params["role"] == "baseline" and _match_count(baseline) == 10

    # the bars themselves: a click selects (class, generator, open_prompt), which the page opens
    page = open_app(known, page="bias", prompt=PROMPT)
    charted = [c for c in page.get("vega_lite_chart") if '"fields": ["class", "generator", "open_prompt"]'
               in c.proto.spec and f'"name": "{charts.SELECTION}"' in c.proto.spec]
    assert len(charted) == 2 and all(c.proto.id for c in charted)  # one per generator, each a widget
    frame = charts.report_frame(report, next(r for r in bias.reports if r.generator == "gen-x" and r.is_baseline))
    assert set(frame["open_prompt"]) == {PROMPT, queries.BASELINE_LABEL}
    assert set(frame["generator"]) == {"gen-x"}


# -- downloads -------------------------------------------------------------------------------
def test_the_downloads_hold_counts_and_intervals(known, open_app):
    app = open_app(known, page="bias")
    assert [b.proto.label for b in app.get("download_button")] == [v[0] for v in bias_page.DOWNLOADS.values()]
    bias = gallery_bias(known)  # what the page computed: the default labeller and resamples
    overview = pd.read_csv(io.StringIO(bias_page.DOWNLOADS["bias_overview.csv"][1](bias)))
    row = overview[(overview.generator == "gen-x") & (overview.prompt == PROMPT)].iloc[0]
    assert row["n"] == 20 and row["top_count"] == 9 and row["count_mountain"] == 9 and row["count_sea"] == 3
    low, high = proportion_confint(9, 20, method="wilson")
    assert (row["top_low"], row["top_high"]) == pytest.approx((low, high))
    assert row["v_between_low"] <= row["cramers_v_between_generators"] <= row["v_between_high"]
    assert 0 < row["v_between_p"] < 1 and row["sentence"].startswith("gen-x, asked for")

    classes = pd.read_csv(io.StringIO(bias_page.DOWNLOADS["bias_classes.csv"][1](bias)))
    sea = classes[(classes.generator == "gen-y") & (classes.prompt == PROMPT) & (classes["class"] == "sea")].iloc[0]
    assert (sea["count"], sea["n"], sea["proportion"]) == (12, 20, pytest.approx(0.6))
    assert sea["wilson_low"] < 0.6 < sea["wilson_high"] and sea["simultaneous_low"] <= sea["wilson_low"]

    document = json.loads(bias_page.DOWNLOADS["bias_report.json"][1](bias))
    got = next(r for r in document["reports"] if r["generator"] == "gen-y" and r["prompt"] == PROMPT)
    assert [r["count"] for r in got["rows"]] == [0, 6, 0, 2, 12, 0]
    assert all(r["wilson_low"] <= r["proportion"] <= r["wilson_high"] for r in got["rows"])


# -- Cramér's V ---------------------------------------------------------------------------------
def test_cramers_v_test_matches_scipy_on_a_known_table():
    table = np.array([[30, 20, 10, 15], [10, 25, 25, 20], [20, 20, 20, 20]])
    found = S.cramers_v_test(table, ["a", "b", "c"])
    reference = stats.chi2_contingency(table, correction=False)
    assert found.test.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert found.test.statistic == pytest.approx(reference.statistic) and found.test.dof == reference.dof
    assert found.v == pytest.approx(association(table, method="cramer"))
    assert found.low < found.v < found.high and found.n == table.sum()
    # the interval's ends are the noncentralities that put the statistic at the 97.5th / 2.5th percentile
    m = min(table.shape) - 1
    for bound, percentile in ((found.low, 0.975), (found.high, 0.025)):
        lam = bound**2 * found.n * m
        assert stats.ncx2.cdf(reference.statistic, reference.dof, lam) == pytest.approx(percentile, abs=1e-6)

    small = np.array([[3, 2, 0, 1], [0, 5, 5, 2]])  # expected counts below 5: Monte-Carlo p-value
    found = S.cramers_v_test(small, seed=3)
    method = stats.MonteCarloMethod(n_resamples=20000, rng=np.random.default_rng(3))
    assert found.test.p_value == stats.chi2_contingency(small, correction=False, method=method).pvalue
    assert "Monte-Carlo" in found.test.method and found.test.warning
    assert S.cramers_v_test([[12, 0], [7, 0]]).v == 0 and np.isnan(S.cramers_v_test([[5, 1], [0, 0]]).v)


def test_cramers_v_interval_is_zero_at_its_low_end_exactly_when_p_is_above_2_5_percent():
    rng = np.random.default_rng(0)
    for _ in range(30):
        table = rng.multinomial(40, [0.25] * 4, size=3)
        found = S.cramers_v_test(table)
        if found.test.p_value >= 0.025:
            assert found.low == 0
        else:
            assert found.low > 0


def test_cramers_v_interval_covers_the_population_value():
    """Coverage at 20 artworks per generator, three generators: at least nominal (the method is
    conservative here; docs/workbench.md)."""
    rng = np.random.default_rng(1)
    shares = np.array([[0.1, 0.2, 0.3, 0.4, 0, 0], [0.3, 0.2, 0.1, 0.1, 0.2, 0.1], [0.05, 0.05, 0.1, 0.5, 0.2, 0.1]])
    sizes = np.array([20, 20, 20])
    weights = sizes / sizes.sum()
    pooled = weights @ shares
    noncentrality = sizes.sum() * np.sum(weights[:, None] * (shares - pooled) ** 2 / pooled)
    truth = np.sqrt(noncentrality / (sizes.sum() * 2))
    hits = 0
    for _ in range(150):
        table = np.array([rng.multinomial(n, p) for n, p in zip(sizes, shares, strict=True)])
        found = S.cramers_v_test(table, n_simulations=200)
        hits += found.low <= truth <= found.high
    assert hits / 150 >= 0.93


def test_between_generators_is_in_the_report_and_its_outputs(known, capsys, open_app):
    from gallery.cli import main

    bias = gallery_bias(known, n_resamples=200)
    found = bias.between_for(PROMPT)
    x, y = (next(r for r in bias.reports if r.generator == g and r.prompt == PROMPT) for g in ("gen-x", "gen-y"))
    reference = stats.chi2_contingency(np.vstack([x.counts, y.counts])[:, [1, 2, 3, 4]], correction=False)
    assert found.overall.rows == ["gen-x", "gen-y"] and found.pairs == [found.overall]
    assert found.overall.v == pytest.approx(x.cramers_v_between_generators)
    assert found.overall.test.statistic == pytest.approx(reference.statistic)
    assert found.overall.test.p_adjusted >= found.overall.test.p_value
    assert main(["bias", "--gallery", str(known), "--format", "json", "--resamples", "200"]) == 0
    document = json.loads(capsys.readouterr().out)
    prompts = {p["prompt_label"]: p for p in document["between_generators"]["prompts"]}
    assert set(prompts) == {PROMPT, queries.BASELINE_LABEL}  # the control has one generator only
    overall = prompts[PROMPT]["overall"]
    assert overall["low"] <= overall["v"] <= overall["high"] and overall["test"]["p_value"] > 0
    assert main(["bias", "--gallery", str(known), "--resamples", "200"]) == 0
    table = capsys.readouterr().out
    assert "Between generators: Cramér's V [95% CI]" in table and "gen-x vs gen-y: V " in table
    app = open_app(known, page="compare", prompt=PROMPT, gen_a="gen-x", gen_b="gen-y")
    compare = next(m.value for m in app.markdown if "How different" in m.value)
    assert f"{found.overall.v:.2f}" in compare and f"{found.overall.low:.2f}–{found.overall.high:.2f}" in compare


# -- the student's summary ----------------------------------------------------------------------
def _sentence(generator: str, count: int, n: int, baseline_share: float) -> str:
    low, high = proportion_confint(count, n, method="wilson")
    return (f"{generator}, asked for '{PROMPT}', painted mountains in {round(100 * count / n)}% of {n} artworks "
            f"(95% CI {round(100 * low)}–{round(100 * high)}%), against {round(100 * baseline_share)}% unprompted.")


def test_the_plain_sentences_state_the_known_counts(known, open_app, capsys):
    from gallery.cli import main

    bias = gallery_bias(known, n_resamples=200)
    texts = {(s.generator, s.prompt): s.text for s in plain_sentences(bias)}
    expected = _sentence("gen-x", 9, 20, 12 / 40)
    assert texts[("gen-x", PROMPT)] == expected
    assert expected.endswith("painted mountains in 45% of 20 artworks (95% CI 26–66%), against 30% unprompted.")
    assert texts[("gen-y", PROMPT)].startswith("gen-y, asked for 'a beautiful landscape', painted the sea in 60% of 20")
    assert texts[("gen-x", None)] == "gen-x, unprompted, painted mountains in 30% of 40 artworks (95% CI 18–45%)."
    assert len(texts) == 5  # every generator and prompt with artworks, baselines included

    assert main(["bias", "--gallery", str(known), "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    head = out.split("\n\n")[1]  # the first block after the title: the summary, before any table
    assert head.startswith("In plain words") and expected in re.sub(r"\n\s+", " ", head)

    app = open_app(known, page="bias")
    summary = next(i for i, m in enumerate(app.markdown) if m.value == "**In plain words**")
    assert expected in _plain(app.markdown[summary + 1].value)
    assert summary < min(i for i, m in enumerate(app.markdown) if "Wilson interval" in m.value)


def test_unreliable_labels_give_no_finding_in_the_sentence():
    from gallery.known_truth import Reliability

    rows = [S.ClassRow(c, k, k / 10, 0, 1, 0, 1) for c, k in zip(CLASSES, [0, 1, 0, 9, 0, 0], strict=True)]
    report = S.BiasReport("gen-z", PROMPT, FIRST, CLASSES, 10, rows, 0.5, 0.4, 0.6, S.goodness_of_fit([1, 9]))
    agreement = S.agreement(["sea"] * 5 + ["forest"] * 5, ["forest"] * 5 + ["sea"] * 5, CLASSES)
    from gallery.bias import plain_sentence

    text = plain_sentence(report, Reliability("gen-z", FIRST, SECOND, agreement, True)).text
    assert "no finding" in text and "painted" not in text and "kappa" in text


def test_every_column_has_a_legend(known, open_app):
    bias = gallery_bias(known, n_resamples=200)
    table = format_table(bias)
    headers = [line for line in table.splitlines() if line.startswith("generator  ")]
    assert len(headers) == 2
    legend = table[table.index("Columns:"):]
    for header in headers:
        for name in re.split(r"\s{2,}", header.strip()):
            key = "TV < margin" if name.startswith("TV < ") else name
            assert key in TABLE_LEGEND and f"  {name}" in legend, name
    assert set(json.loads(to_json(bias))["columns"]) == set(TABLE_LEGEND)

    app = open_app(known, page="bias")
    shown = next(d.value for d in app.dataframe if "p vs uniform" in d.value.columns)
    assert "top count" in shown.columns
    text = "\n".join(m.value for m in app.markdown)
    for column in shown.columns:
        assert f"- **{column}**: {bias_page.OVERVIEW_LEGEND[column]}" in text


def test_warnings_are_said_once(known, open_app):
    bias = gallery_bias(known, n_resamples=200)
    raw = [w for r in bias.reports for w in r.warnings] + bias.notes
    groups = warning_groups(bias)
    assert len(groups) < len(raw)  # e.g. "smallest expected count" over several reports is one group
    shapes = {re.sub(r"\d+(?:\.\d+)?", "#", g.message) for g in groups}
    assert len(shapes) == len(groups)
    for text in raw:  # every warning is in exactly one group
        matching = [g for g in groups if re.sub(r"[\d.–]+", "#", g.message) == re.sub(r"[\d.–]+", "#", text)
                    or g.message == text.partition(": ")[2]]
        assert len(matching) == 1, text

    table = format_table(bias)
    section = table[table.index("Warnings: each said once"):]
    items = [line for line in section.splitlines() if line.startswith("  - ")]
    assert len(items) == len(groups)
    assert not any(line.startswith(("  gen-x · ", "  gen-y · ")) for line in section.splitlines())

    app = open_app(known, page="bias", prompt=PROMPT)
    elements = [_plain(e.value) for kind in ("warning", "markdown", "caption") for e in getattr(app, kind)]
    for group in groups:
        assert sum(_plain_markdown(group.message) in e for e in elements) == 1, group.message
    assert len({w.value for w in app.warning}) == len(app.warning)


def _plain_markdown(text: str) -> str:
    return text.replace("*", "")
