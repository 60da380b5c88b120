"""Bias page: each generator's class composition with intervals, tests and corrected estimates."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from gallery.app import charts, common
from gallery.bias import GalleryBias
from gallery.statistics import METRIC_DEFINITIONS, BiasReport, TestResult, pairwise_cramers_v
from gallery.store import queries

OVERVIEW_COLUMNS = {
    "generator": "generator",
    "prompt": "prompt",
    "n": "n",
    "top_class": "top class",
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


def overview_frame(bias: GalleryBias) -> pd.DataFrame:
    """The overview table the page shows: ``summary_frame`` columns, renamed for readers."""
    summary = bias.summary()
    return summary[[c for c in OVERVIEW_COLUMNS if c in summary.columns]].rename(
        columns=OVERVIEW_COLUMNS
    )


def _test_line(name: str, test: TestResult | None) -> str:
    if test is None:
        return f"- {name}: not available"
    if test.p_value != test.p_value:
        return f"- {name}: no test ({test.warning})"
    return f"- {name}: statistic {test.statistic:.2f}, df {test.dof}, **p = {test.p_value:.4g}** ({test.method})"


def _report_section(report: BiasReport, baseline: BiasReport | None) -> None:
    st.subheader(f"{common.escape(report.generator)} · {common.escape(report.prompt_label, None)}")
    left, right = st.columns(2)
    title = [f"{report.generator} · {report.prompt_label}", f"n = {report.n} artworks"]
    if baseline is not None and baseline is not report:
        title[1] += f"; baseline n = {baseline.n}"
    with left:
        st.altair_chart(
            charts.composition_chart(charts.report_frame(report, baseline), title), width="stretch"
        )
    with right:
        if report.corrected_available:
            corrected = charts.report_frame(report, None, corrected=True)
            corrected = corrected[~corrected["series"].str.endswith("(reference)")]
            st.altair_chart(
                charts.composition_chart(
                    corrected, ["raw vs corrected for classifier error", f"n = {report.n} artworks"]
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
    for warning in report.warnings:
        st.warning(common.escape(warning, None))
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


def _between_generators(bias: GalleryBias, prompt: str) -> None:
    reports = [r for r in bias.reports if r.prompt_label == prompt]
    if len(reports) < 2:
        return
    st.markdown(f"##### {common.escape(prompt, None)}")
    overall = reports[0].cramers_v_between_generators
    sizes = ", ".join(f"{common.escape(r.generator)} n = {r.n}" for r in reports)
    if overall is not None:
        st.markdown(f"Cramér's V across all generators: **{common.fmt(overall, 2)}** ({sizes})")
    else:
        st.markdown(f"Unguided baselines ({sizes}): Cramér's V between each pair of generators")
    table = pairwise_cramers_v({r.generator: r.counts for r in reports})
    st.dataframe(table.style.format("{:.2f}"))


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


def _attributes(bias: GalleryBias, prompts: list[str]) -> None:
    """Time-of-day and weather distributions, and the mean aesthetic value per prompt."""
    if not bias.attributes:
        st.info("No time-of-day or weather labeller labelled this gallery (add time-world and "
                "weather-world to the campaign's labellers).")
        return
    prompt = st.selectbox("Prompt", prompts, key="attribute_prompt")
    for found in bias.attributes:
        st.subheader(f"{found.attribute.capitalize()} ({common.escape(found.labeller)})")
        baselines = {r.generator: r for r in found.reports if r.is_baseline}
        for report in found.reports:
            if report.prompt_label != prompt:
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


def render(gallery: Path, fingerprint: tuple) -> None:
    common.options(str(gallery), fingerprint)  # a gallery that cannot be read stops here, plainly
    st.title("Bias")
    labeller = None  # the report's own choice: a scene classifier independent of the search
    choices = scene_labellers(gallery)
    if len(choices) > 1:
        with st.sidebar:
            labeller = st.selectbox(
                "Labeller", choices, index=0, key="bias_labeller"
            )
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
    if bias.notes:
        with st.expander(f"Notes ({len(bias.notes)})"):
            st.markdown("\n".join(f"- {common.escape(note, None)}" for note in bias.notes))

    for found in bias.reliability:
        if found.sentence():
            st.warning(common.escape(found.sentence(), None) + ": no finding is stated for it")

    by_prompt, overview_tab, between_tab, attributes_tab, truth_tab, definitions_tab = st.tabs(
        ["By prompt", "Overview table", "Between generators", "Time, weather, beauty",
         "Labeller checks", "How to read these numbers"]
    )
    prompts = list(dict.fromkeys(r.prompt_label for r in bias.reports if not r.is_baseline))
    if any(r.is_baseline for r in bias.reports):
        prompts.append(queries.BASELINE_LABEL)
    with by_prompt:
        prompt = st.selectbox("Prompt", prompts, key="bias_prompt")
        baselines = {r.generator: r for r in bias.reports if r.is_baseline}
        _controls(bias, prompt)
        for report in bias.reports:
            if report.prompt_label == prompt:
                _report_section(report, baselines.get(report.generator))
    with overview_tab:
        overview = overview_frame(bias)
        st.dataframe(
            overview,
            hide_index=True,
            width="stretch",
            column_config={
                c: st.column_config.NumberColumn(format="%.3g" if c.startswith("p vs") else "%.3f")
                for c in overview.columns[4:]
            },
        )
        first, second = st.columns(2)
        first.download_button(
            "Download the overview (CSV)",
            bias.summary().to_csv(index=False),
            file_name="bias_summary.csv",
            mime="text/csv",
        )
        second.download_button(
            "Download every class (CSV)",
            bias.per_class().to_csv(index=False),
            file_name="bias_classes.csv",
            mime="text/csv",
        )
    with between_tab:
        for name in prompts:
            _between_generators(bias, name)
    with attributes_tab:
        _attributes(bias, prompts)
    with truth_tab:
        _labeller_checks(bias)
    with definitions_tab:
        st.markdown("\n".join(f"- **{name}**: {text}" for name, text in METRIC_DEFINITIONS.items()))
