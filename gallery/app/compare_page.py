"""Compare page: two generators for one prompt, or two prompts for one generator, side by side."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from gallery.app import charts, common
from gallery.statistics import BiasReport, cramers_v, homogeneity_test
from gallery.store import queries

MODES = ("two generators, one prompt", "two prompts, one generator")
SAMPLES = 4


def _side(gallery: Path, report: BiasReport | None, title: str) -> None:
    st.markdown(f"#### {common.escape(title, None)}")
    if report is None or report.n == 0:
        st.info("No labelled artworks here yet.")
        return
    frame = charts.report_frame(report)
    st.altair_chart(
        charts.composition_chart(
            frame[frame["series"].str.contains(r"\(n=")], [title, f"n = {report.n} artworks"]
        ),
        width="stretch",
    )
    st.markdown(
        f"top class **{common.escape(report.top.name)}** {report.top.proportion:.2f} "
        f"({report.top.wilson_low:.2f}–{report.top.wilson_high:.2f}) · "
        f"normalised entropy {common.fmt(report.entropy, 2)} · n = {report.n}"
    )
    prompts = (queries.BASELINE_LABEL,) if report.is_baseline else (report.prompt,)
    samples = queries.find_artworks(
        gallery,
        queries.ArtworkFilter(
            generators=(report.generator,),
            prompts=prompts,
            roles=("baseline",) if report.is_baseline else ("chosen",),
        ),
        sort="best CLIP similarity first",
        limit=SAMPLES,
    )
    for column, row in zip(st.columns(SAMPLES), samples.itertuples(), strict=False):
        with column:
            common.show_image(gallery, row.image_path)


def render(gallery: Path, fingerprint: tuple) -> None:
    options = common.options(str(gallery), fingerprint)
    st.title("Compare")
    bias = common.bias(str(gallery), common.default_labeller(options), fingerprint)
    by_key = {(r.generator, r.prompt_label): r for r in bias.reports}
    mode = st.radio("Compare", MODES, horizontal=True, key="cmp_mode")
    if mode == MODES[0]:
        if len(options.generators) < 2:
            st.info("The gallery holds a single generator: nothing to compare yet.")
            return
        prompt = st.selectbox("Prompt", options.prompts, key="cmp_prompt")
        a_col, b_col = st.columns(2)
        a = a_col.selectbox("Generator A", options.generators, index=0, key="cmp_gen_a")
        b = b_col.selectbox("Generator B", options.generators, index=1, key="cmp_gen_b")
        left, right = by_key.get((a, prompt)), by_key.get((b, prompt))
        titles = (f"{a} · {prompt}", f"{b} · {prompt}")
    else:
        generator = st.selectbox("Generator", options.generators, key="cmp_generator")
        a_col, b_col = st.columns(2)
        a = a_col.selectbox("Prompt A", options.prompts, index=0, key="cmp_prompt_a")
        b = b_col.selectbox(
            "Prompt B", options.prompts, index=min(1, len(options.prompts) - 1), key="cmp_prompt_b"
        )
        left, right = by_key.get((generator, a)), by_key.get((generator, b))
        titles = (f"{generator} · {a}", f"{generator} · {b}")

    if left is not None and right is not None and left.n and right.n:
        test = homogeneity_test(left.counts, right.counts)
        v = cramers_v([left.counts, right.counts])
        st.markdown(
            f"**Same composition?** {test.method}: statistic {test.statistic:.2f}, df {test.dof}, "
            f"**p = {test.p_value:.4g}**; Cramér's V {common.fmt(v, 2)} (n = {left.n} vs {right.n})"
        )
        if test.warning:
            st.warning(test.warning)
    first, second = st.columns(2)
    with first:
        _side(gallery, left, titles[0])
    with second:
        _side(gallery, right, titles[1])
