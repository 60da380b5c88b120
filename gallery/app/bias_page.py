"""Bias page: each generator's class composition with intervals, tests and corrected estimates.

It opens with one plain sentence per generator and prompt, and every warning once. Its state is
in the URL (``?page=bias&prompt=a+calm+sea&tab=between&labeller=...``), and a click on a bar
(or on a class beside the chart) opens the gallery on exactly the artworks behind it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from gallery.app import charts, common, url_state
from gallery.bias import (
    GalleryBias,
    PlainSentence,
    WarningGroup,
    class_table,
    overview_table,
    plain_sentences,
    to_json,
    warning_groups,
)
from gallery.statistics import (
    CRAMERS_V_INTERVAL,
    METRIC_DEFINITIONS,
    BiasReport,
    CramersV,
    TestResult,
)
from gallery.store import queries

REPORT_CHART_HEIGHT = 280
# Tabs by their short name in the URL (``tab=overview``).
TABS = {
    "prompt": "By prompt",
    "overview": "Overview table",
    "between": "Between generators",
    "attributes": "Time, weather, beauty",
    "labellers": "Labeller checks",
    "definitions": "How to read these numbers",
}
OVERVIEW_COLUMNS = {
    "generator": "generator",
    "prompt": "prompt",
    "n": "n",
    "top_class": "top class",
    "top_count": "top count",
    "top_proportion": "top share",
    "top_low": "95% low",
    "top_high": "95% high",
    "uniform_p": "p vs uniform",
    "baseline_p": "p vs baseline",
    "reference_p": "p vs reference",
    "cramers_v_between_generators": "V between generators",
    "cramers_v_vs_baseline": "V vs baseline",
    "entropy": "norm. entropy",
    "top_corrected": "top share corrected",
    "kappa": "kappa (vs the second labeller)",
    "low_confidence_share": "low-confidence share",
}


# Every column of the overview table in plain words (shown under it).
OVERVIEW_LEGEND = {
    "generator": "the image generator",
    "prompt": "what the search asked for; (unguided baseline): samples drawn with no prompt",
    "n": "artworks counted: one chosen artwork per search run, or the baseline samples",
    "top class": "the class the labeller gives most often",
    "top count": "how many of the n artworks are in the top class",
    "top share": "top count / n",
    "95% low": "lower end of the top share's 95% Wilson interval",
    "95% high": "upper end of the top share's 95% Wilson interval",
    "p vs uniform": "p-value of the test against every class being equally likely (raw; adjusted in the downloads)",
    "p vs baseline": "p-value of the test against the generator's own unprompted samples",
    "p vs reference": "p-value of the test against the reference (training data) composition",
    "V between generators": "Cramér's V between the generators for this prompt: 0 = same mix, 1 = no class "
                            "shared (interval and p-value in 'Between generators')",
    "V vs baseline": "Cramér's V between this prompt's artworks and the unprompted samples",
    "norm. entropy": "normalised entropy: 1 = all classes equally often, 0 = a single class",
    "top share corrected": "the top share corrected for the labeller's own errors (BBSE)",
    "kappa (vs the second labeller)": "Cohen's kappa: agreement of the two labellers beyond chance",
    "low-confidence share": "share of artworks whose top class probability is below 0.5",
}
# The downloads of the Overview tab: file name -> (button label, producer of the text, MIME type).
DOWNLOADS = {
    "bias_overview.csv": ("Overview with counts and intervals (CSV)",
                          lambda bias: overview_table(bias).to_csv(index=False), "text/csv"),
    "bias_classes.csv": ("Every class: count, share, intervals (CSV)",
                         lambda bias: class_table(bias).to_csv(index=False), "text/csv"),
    "bias_report.json": ("The whole report (JSON)", to_json, "application/json"),
}


def overview_frame(bias: GalleryBias) -> pd.DataFrame:
    """The overview table the page shows: ``overview_table`` columns, renamed for readers (those
    the page shows need neither resampled intervals nor between-generator tests, so they are
    taken from the summary as it is, nothing drawn for them)."""
    summary = bias.summary()
    if not summary.empty:
        summary.insert(summary.columns.get_loc("top_proportion"), "top_count", [r.top.count for r in bias.reports])
    return summary[[c for c in OVERVIEW_COLUMNS if c in summary.columns]].rename(
        columns=OVERVIEW_COLUMNS
    )


def _open_artworks(generator: str, prompt_label: str, name: str, labeller: str) -> None:
    """The gallery on the artworks a bar counts: the generator's chosen artworks for the
    prompt (or its baseline samples) that ``labeller`` put in class ``name``."""
    baseline = prompt_label == queries.BASELINE_LABEL
    common.goto("gallery", generator=generator, prompt=prompt_label, **{"class": name},
                labeller=labeller, **({"role": "baseline"} if baseline else {}))


def _test_line(name: str, test: TestResult | None) -> str:
    if test is None:
        return f"- {name}: not available"
    if test.p_value != test.p_value:
        return f"- {name}: no test ({test.warning})"
    return f"- {name}: statistic {test.statistic:.2f}, df {test.dof}, **p = {test.p_value:.4g}** ({test.method})"


def _report_section(report: BiasReport, baseline: BiasReport | None, index: int, figures: bool = True) -> None:
    """One generator's report for the prompt; its charts only when ``figures`` (the tab is open)."""
    st.subheader(f"{common.escape(report.generator)} · {common.escape(report.prompt_label, None)}")
    left, right = st.columns(2)
    title = [f"{report.generator} · {report.prompt_label}", f"n = {report.n} artworks"]
    if baseline is not None and baseline is not report:
        title[1] += f"; baseline n = {baseline.n}"
    with left:
        if figures:
            event = st.altair_chart(
                charts.composition_chart(charts.report_frame(report, baseline), title, selectable=True,
                                         height=REPORT_CHART_HEIGHT),
                width="stretch", on_select="rerun", selection_mode=charts.SELECTION, key=f"bars_{index}",
            )
            clicked = [p for p in event.selection.get(charts.SELECTION, [])
                       if p.get("generator") and p.get("class")]
            if clicked:
                _open_artworks(clicked[0]["generator"], clicked[0]["open_prompt"], clicked[0]["class"],
                               report.labeller)
        counted = {row.name: row.count for row in report.rows if row.count}
        chosen = st.pills(
            "Open the artworks of a class (or click its bar)", list(counted), key=f"open_{index}",
            format_func=lambda name: f"{name} ({counted[name]})",
        )
        if chosen:
            _open_artworks(report.generator, report.prompt_label, chosen, report.labeller)
    with right:
        if report.corrected_available:
            if figures:
                corrected = charts.report_frame(report, None, corrected=True)
                corrected = corrected[~corrected["series"].str.endswith("(reference)")]
                st.altair_chart(
                    charts.composition_chart(
                        corrected, ["raw vs corrected for classifier error", f"n = {report.n} artworks"],
                        height=REPORT_CHART_HEIGHT,
                    ),
                    width="stretch",
                )
            st.caption(f"Confusion matrix used: {common.escape(report.confusion_source, None)}")
        else:
            st.info("No confusion matrix for this labeller: no corrected proportions.")
    lines = [
        f"- top class: **{common.escape(report.top.name)}** {report.top.proportion:.2f} "
        f"(95% Wilson interval {report.top.wilson_low:.2f}–{report.top.wilson_high:.2f}, n = {report.n})",
        f"- normalised entropy: {common.fmt(report.entropy, 2)} "
        f"(95% interval {common.fmt(report.entropy_low, 2)}–{common.fmt(report.entropy_high, 2)})",
        _test_line("vs uniform", report.vs_uniform),
    ]
    if not report.is_baseline:
        lines.append(
            _test_line(f"vs unguided baseline (n = {report.baseline_n})", report.vs_baseline)
        )
        lines.append(f"- Cramér's V vs baseline: {common.fmt(report.cramers_v_vs_baseline, 2)}")
    if report.reference_name:
        lines.append(_test_line(f"vs reference ({common.escape(report.reference_name)})", report.vs_reference))
    if report.kappa is not None:
        k = report.kappa
        lines.append(
            f"- agreement with {common.escape(report.agreement_labeller)}: kappa {common.fmt(k.kappa, 2)} "
            f"(95% {common.fmt(k.low, 2)}–{common.fmt(k.high, 2)}, n = {k.n}, raw agreement {common.fmt(k.observed_agreement, 2)})"
        )
    if report.low_confidence_share is not None:
        lines.append(
            f"- low-confidence share: {100 * report.low_confidence_share:.0f}% of {report.n}"
        )
    st.markdown("\n".join(lines))
    if report.warnings:
        st.caption(f"{len(report.warnings)} warning(s) apply to these numbers: listed once under "
                   "“Notes and warnings” at the top of the page.")
    if not report.is_baseline and report.baseline_n:
        with st.expander("Lift over the baseline, per class"):
            st.dataframe(
                pd.DataFrame(
                    {
                        "class": [r.name for r in report.rows],
                        "prompt share": [r.proportion for r in report.rows],
                        "baseline share": [r.baseline_proportion for r in report.rows],
                        "lift": [r.lift for r in report.rows],
                        "95% low": [r.lift_low for r in report.rows],
                        "95% high": [r.lift_high for r in report.rows],
                    }
                ),
                hide_index=True,
            )


def _controls(bias: GalleryBias, prompt: str) -> None:
    """The prompt against its controls, seed by seed: one plain sentence per pooled comparison."""
    pooled = [c for c in bias.controls if c.prompt == prompt and c.replicate == "pooled"]
    if not pooled:
        return
    st.subheader("Against its controls (same seeds)")
    for comparison in pooled:
        verdict = f" — {comparison.replicates} ({comparison.replicated_in})" if comparison.replicated_in else ""
        st.markdown("- " + common.escape(comparison.sentence() + verdict, None))
    st.caption("Paired permutation test per generator and control; p adjusted (Holm) over every test of "
               "this report. Each replicate is a disjoint set of seeds; a finding replicates when every "
               "replicate alone points the same way at p < 0.05.")


def p_text(test: TestResult) -> str:
    if test.p_value != test.p_value:
        return f"no test ({test.warning})"
    adjusted = "" if test.p_adjusted is None else f", adjusted {test.p_adjusted:.3g}"
    return f"p = {test.p_value:.3g}{adjusted}"


def v_text(found: CramersV) -> str:
    """"Cramér's V 0.42 (95% CI 0.20–0.61; chi-square p = 0.003, adjusted 0.01; n = 48)"."""
    return (f"Cramér's V **{common.fmt(found.v, 2)}** (95% CI {common.fmt(found.low, 2)}–"
            f"{common.fmt(found.high, 2)}; chi-square {p_text(found.test)}; n = {found.n})")


def between_frame(found: list[CramersV]) -> pd.DataFrame:
    return pd.DataFrame([{
        "generators": " vs ".join(v.rows), "n": v.n, "V": v.v, "95% low": v.low, "95% high": v.high,
        "p": v.test.p_value, "p adjusted": v.test.p_adjusted, "test": v.test.method} for v in found])


def _between_generators(bias: GalleryBias, prompt: str) -> None:
    found = bias.between_for(None if prompt == queries.BASELINE_LABEL else prompt)
    if found is None:
        return
    st.markdown(f"##### {common.escape(prompt, None)}")
    sizes = ", ".join(f"{common.escape(g)} n = {n}" for g, n in zip(found.overall.rows, found.overall.sizes,
                                                                     strict=True))
    st.markdown(f"Across all generators ({sizes}): {v_text(found.overall)}")
    if found.pairs != [found.overall]:
        st.dataframe(between_frame(found.pairs), hide_index=True,
                     column_config={c: st.column_config.NumberColumn(format="%.3g")
                                    for c in ("V", "95% low", "95% high", "p", "p adjusted")})


def scene_labellers(gallery: Path) -> list[str]:
    """The labellers a report can be about: models of scene classes, the report's default first
    (no truth sources, no time or weather labellers)."""
    import json

    from classifier.labellers import attribute_of, default_labeller, is_truth_source

    table = queries.labellers(str(gallery))
    classes = {row.labeller: json.loads(row.classes_json) for row in table.itertuples()}
    names = [n for n in classes if not is_truth_source(n) and attribute_of(classes[n]) is None]
    first = default_labeller(names, classes)
    return sorted(names, key=lambda n: n != first)


@st.cache_data(show_spinner=False, max_entries=16)
def _labeller_choices(gallery: str, fingerprint: tuple) -> list[str]:
    return scene_labellers(Path(gallery))


def _attributes(bias: GalleryBias, prompts: list[str], figures: bool = True) -> None:
    """Time-of-day and weather distributions, and the mean aesthetic value per prompt; the
    distributions' charts only when ``figures`` (the tab is open)."""
    if not bias.attributes:
        st.info("No time-of-day or weather labeller labelled this gallery (add time-world and "
                "weather-world to the campaign's labellers).")
        return
    prompt = url_state.widget("attribute_prompt", url_state.choice("attr_prompt", prompts, prompts[0]),
                              st.selectbox, "Prompt", prompts)
    for found in bias.attributes:
        st.subheader(f"{found.attribute.capitalize()} ({common.escape(found.labeller)})")
        baselines = {r.generator: r for r in found.reports if r.is_baseline}
        for report in found.reports:
            if report.prompt_label != prompt or not figures:
                continue
            title = [f"{found.attribute}: {report.generator} · {report.prompt_label}", f"n = {report.n} artworks"]
            st.altair_chart(charts.composition_chart(charts.report_frame(report, baselines.get(report.generator)),
                                                     title), width="stretch")
    if bias.aesthetic is not None:
        st.subheader("Aesthetic value (the world's rule)")
        st.caption(common.escape(bias.aesthetic.rule, None) + ". Means with 95% t intervals.")
        st.dataframe(pd.DataFrame([{
            "generator": g.generator, "prompt": g.prompt or queries.BASELINE_LABEL, "role": g.role,
            "n": g.n, "mean": g.mean, "95% low": g.low, "95% high": g.high} for g in bias.aesthetic.groups]),
            hide_index=True)
        st.dataframe(pd.DataFrame([{
            "generator": d.generator, "prompt": d.prompt, "minus": d.versus, "n": d.n,
            "difference": d.difference, "95% low": d.low, "95% high": d.high, "interval": d.method}
            for d in bias.aesthetic.differences]), hide_index=True)


def _labeller_checks(bias: GalleryBias) -> None:
    """Agreement of the two labellers per generator, the matrix BBSE used, and known labels."""
    if bias.reliability and bias.agreement_labeller:
        st.markdown(f"Agreement of {common.escape(bias.labeller)} and "
                    f"{common.escape(bias.agreement_labeller)} per generator (all its counted artworks):")
        st.dataframe(pd.DataFrame([{
            "generator": r.generator, "n": None if r.agreement is None else r.agreement.n,
            "kappa": None if r.agreement is None else r.agreement.kappa,
            "raw agreement": None if r.agreement is None else r.agreement.observed_agreement,
            "PABAK": None if r.agreement is None else r.agreement.pabak,
            "verdict": r.sentence() or ("independent labellers agree" if r.reliable else "not judged")}
            for r in bias.reliability]), hide_index=True)
    sources = {r.generator: r.confusion_source for r in bias.reports if r.confusion_source}
    if sources:
        st.markdown("Confusion matrix the corrected proportions use:")
        st.dataframe(pd.DataFrame({"generator": list(sources), "matrix": list(sources.values())}),
                     hide_index=True)
    if bias.annotations:
        st.markdown("Known labels (people, intended classes) against the labellers:")
        st.dataframe(pd.DataFrame([{
            "known labels": a.labeller, "labeller": a.other, "generator": a.generator, "n": a.agreement.n,
            "kappa": a.agreement.kappa, "raw agreement": a.agreement.observed_agreement,
            "PABAK": a.agreement.pabak} for a in bias.annotations]), hide_index=True)
    else:
        st.caption("No human annotations or intended classes in this gallery "
                   "('artbias annotate export' / 'artbias annotate import').")


def _plain_words(bias: GalleryBias, prompt: str) -> list[PlainSentence]:
    """The student's summary: one plain sentence per generator for ``prompt``; returns the
    other prompts' sentences (shown folded away: each sentence is shown once)."""
    sentences = plain_sentences(bias)
    if not sentences:
        return []
    mine = [s for s in sentences if (s.prompt or queries.BASELINE_LABEL) == prompt]
    others = [s for s in sentences if s not in mine]
    st.markdown("**In plain words**", help="The class each generator painted most often, its share with a "
                "95% interval, the number of artworks, and that class's share in the generator's own "
                "unprompted samples.")
    st.markdown("\n".join(f"- {common.escape(s.text, None)}" for s in mine))
    return others


def _warnings(groups: list[WarningGroup], total: int) -> None:
    """Every note and warning once (those said above left out), where each applies."""
    shown = [g for g in groups if not g.stated_up_front]
    if not shown:
        return
    with st.expander(f"Notes and warnings ({len(shown)})"):
        lines = []
        for group in shown:
            where = group.where_text(total)
            lines.append(f"- {common.escape(group.message, None)}"
                         + (f" — *{common.escape(where, None)}*" if where else ""))
        st.markdown("\n".join(lines))


def render(gallery: Path, fingerprint: tuple) -> None:
    common.options(str(gallery), fingerprint)  # a gallery that cannot be read stops here, plainly
    st.title("Bias")
    labeller = None  # the report's own choice: a scene classifier independent of the search
    choices = _labeller_choices(str(gallery), fingerprint)
    if len(choices) > 1:
        with st.sidebar:
            labeller = url_state.widget("bias_labeller", url_state.choice("labeller", choices, choices[0]),
                                        st.selectbox, "Labeller", choices)
    bias = common.bias(str(gallery), labeller, fingerprint)
    if not bias.reports:
        st.info(
            "No labelled artworks yet: the statistics appear once a campaign has labelled some."
        )
        return
    st.caption(
        f"Labeller {common.escape(bias.labeller)}"
        + (
            f"; agreement measured against {common.escape(bias.agreement_labeller)}"
            if bias.agreement_labeller
            else ""
        )
        + ". Counts use each search's chosen artwork (one per run) and the unguided baseline samples. "
        "Intervals are 95%."
    )
    for name in bias.circular:  # said up front, not inside the notes
        st.warning(f"{common.escape(name, None)} is the CLIP that steered the searches: its labels are circular, "
                 "not independent evidence of what the artworks show")
    for found in bias.reliability:
        if found.sentence():
            st.warning(common.escape(found.sentence(), None) + ": no finding is stated for it")
    prompts = list(dict.fromkeys(r.prompt_label for r in bias.reports if not r.is_baseline))
    if any(r.is_baseline for r in bias.reports):
        prompts.append(queries.BASELINE_LABEL)
    summary, controls = st.columns([3, 2])
    with controls:  # the prompt the summary and the "By prompt" tab are about
        prompt = url_state.widget("bias_prompt", url_state.choice("prompt", prompts, prompts[0]),
                                  st.selectbox, "Prompt", prompts)
    with summary:
        others = _plain_words(bias, prompt)
    with controls:
        if others:
            with st.expander(f"In plain words, the other prompts ({len(others)})"):
                st.markdown("\n".join(f"- {common.escape(s.text, None)}" for s in others))
        _warnings(warning_groups(bias), len(bias.reports))

    tab_param = url_state.labelled_choice("tab", TABS, TABS["prompt"])
    url_state.bind("bias_tab", tab_param)
    by_prompt, overview_tab, between_tab, attributes_tab, truth_tab, definitions_tab = st.tabs(
        list(TABS.values()), key="bias_tab", on_change="rerun"
    )
    url_state.write("bias_tab", tab_param, st.session_state["bias_tab"])
    # Only the open tab draws its figures and computes what only they need: the prompt's
    # resampled intervals (its corrected-proportion bars), the between-generator tests. A click
    # on a tab reruns the page (``on_change="rerun"``), so a tab fills itself when opened; the
    # text and tables of every tab are always there.
    shown = {name: st.session_state["bias_tab"] == label for name, label in TABS.items()}
    bias = common.bias(str(gallery), labeller, fingerprint,
                       (None if prompt == queries.BASELINE_LABEL else prompt,) if shown["prompt"] else (),
                       shown["between"])
    with by_prompt:
        baselines = {r.generator: r for r in bias.reports if r.is_baseline}
        _controls(bias, prompt)
        for index, report in enumerate(bias.reports):
            if report.prompt_label == prompt:
                _report_section(report, baselines.get(report.generator), index, shown["prompt"])
    with overview_tab:
        overview = overview_frame(bias)
        st.dataframe(
            overview,
            hide_index=True,
            width="stretch",
            column_config={
                c: st.column_config.NumberColumn(format="%.3g" if c.startswith("p vs") else "%.3f")
                for c in overview.columns[5:]
            },
        )
        with st.expander("What each column means"):
            st.markdown("\n".join(f"- **{name}**: {OVERVIEW_LEGEND[name]}" for name in overview.columns))
        for column, (name, (label, produce, mime)) in zip(st.columns(len(DOWNLOADS)), DOWNLOADS.items(),
                                                           strict=True):
            column.download_button(label, lambda produce=produce: produce(bias), file_name=name, mime=mime,
                                   on_click="ignore", key=f"download_{name}")
        st.caption("The downloads hold every generator and prompt: counts, shares, 95% intervals "
                   "(Wilson, Goodman simultaneous, bootstrap), raw and adjusted p-values.")
    with between_tab:
        st.caption(f"Does the generator decide the class, for the same prompt? Cramér's V from 0 (same mix) to 1; "
                   f"p from Pearson's chi-square test of independence, adjusted (Holm) over every "
                   f"between-generator test; 95% interval by {CRAMERS_V_INTERVAL}.")
        if shown["between"]:
            for name in prompts:
                _between_generators(bias, name)
    with attributes_tab:
        _attributes(bias, prompts, shown["attributes"])
    with truth_tab:
        _labeller_checks(bias)
    with definitions_tab:
        st.markdown("\n".join(f"- **{name}**: {text}" for name, text in METRIC_DEFINITIONS.items()))
