"""Compare page: two generators for one prompt, or two prompts for one generator, side by side.

Its selections are in the URL: ``?page=compare&mode=generators&prompt=a+calm+sea&gen_a=...&gen_b=...``
or ``?page=compare&mode=prompts&generator=...&prompt_a=...&prompt_b=...``.

It needs the bias report's class counts (its labeller), not the report: each side's shares and
intervals come from its counts, and two generators on one prompt are judged by the report's own
between-generator test (``common.between``), so the numbers are the bias page's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from gallery.app import charts, common, url_state
from gallery.statistics import (
    BetweenGenerators,
    Composition,
    CramersV,
    cramers_v_test,
    homogeneity_test,
    normalised_entropy,
    proportions,
    wilson_intervals,
)
from gallery.store import queries

MODES = {"generators": "two generators, one prompt", "prompts": "two prompts, one generator"}
SAMPLES = 4


def side_frame(side: Composition) -> pd.DataFrame:
    """``composition_chart``'s frame for one side: each class's share with its Wilson interval
    (the bars the bias page draws for this report, as ``charts.report_frame`` builds them)."""
    low, high = wilson_intervals(side.counts)
    return pd.DataFrame({
        "class": side.classes, "series": f"{side.prompt_label} (n={side.n})",
        "proportion": proportions(side.counts), "low": low, "high": high,
        "generator": side.generator, "open_prompt": side.prompt_label,
    })


def _side(gallery: Path, report: Composition | None, title: str, labeller: str, key: str) -> None:
    st.markdown(f"#### {common.escape(title, None)}")
    if report is None or report.n == 0:
        st.info("No labelled artworks here yet.")
        return
    frame = side_frame(report)
    st.altair_chart(charts.composition_chart(frame, [title, f"n = {report.n} artworks"]), width="stretch")
    top = frame.iloc[int(np.argmax(report.counts))]  # the first most frequent class, as a report's top
    st.markdown(
        f"top class **{common.escape(top['class'])}** {top['proportion']:.2f} "
        f"({top['low']:.2f}–{top['high']:.2f}) · "
        f"normalised entropy {common.fmt(normalised_entropy(report.counts), 2)} · n = {report.n}"
    )
    prompts = (queries.BASELINE_LABEL,) if report.is_baseline else (report.prompt,)
    roles = ("baseline",) if report.is_baseline else ("chosen",)
    samples = queries.find_artworks(
        gallery,
        queries.ArtworkFilter(generators=(report.generator,), prompts=prompts, roles=roles),
        sort="best CLIP similarity first",
        limit=SAMPLES,
    )
    for column, row in zip(st.columns(SAMPLES), samples.itertuples(), strict=False):
        with column:
            common.show_image(gallery, row.image_path)
    if st.button(f"Open its {report.n} artworks in the gallery", key=f"cmp_open_{key}"):
        common.goto("gallery", generator=report.generator, prompt=prompts[0], labeller=labeller,
                    **({"role": "baseline"} if report.is_baseline else {}))


def pair_association(between: list[BetweenGenerators], left: Composition, right: Composition) -> CramersV:
    """Cramér's V of the two sides with test and interval: the report's own (``between``: its
    between-generator tests, the p-value adjusted over them) when the sides are two generators
    on one prompt, else computed for this pair alone."""
    found = next((b for b in between if b.prompt == left.prompt), None) if left.prompt == right.prompt else None
    if found is not None:
        for candidate in found.pairs:
            if set(candidate.rows) == {left.generator, right.generator} and len(candidate.rows) == 2:
                return candidate
    return cramers_v_test([left.counts, right.counts], [left.prompt_label, right.prompt_label])


def _selections(options: queries.Options) -> tuple[str, str, str, str] | None:
    """The widgets (bound to the URL) -> (mode, left key part, right key part, shared value),
    or None when there is nothing to compare."""
    mode = url_state.widget("cmp_mode", url_state.labelled_choice("mode", MODES, MODES["generators"]),
                            st.radio, "Compare", list(MODES.values()), horizontal=True)
    generators, prompts = options.generators, options.prompts
    if mode == MODES["generators"]:
        if len(generators) < 2:
            st.info("The gallery holds a single generator: nothing to compare yet.")
            return None
        prompt = url_state.widget("cmp_prompt", url_state.choice("prompt", prompts, prompts[0]),
                                  st.selectbox, "Prompt", prompts)
        a, b = _two_choices("gen", "Generator", generators, generators[1])
        return mode, a, b, prompt
    generator = url_state.widget("cmp_generator", url_state.choice("generator", generators, generators[0]),
                                 st.selectbox, "Generator", generators)
    a, b = _two_choices("prompt", "Prompt", prompts, prompts[min(1, len(prompts) - 1)])
    return mode, a, b, generator


def _two_choices(param: str, label: str, values: list, second) -> tuple:
    """"A" and "B" side by side, kept in the URL as ``PARAM_a`` / ``PARAM_b``."""
    chosen = []
    for column, side, default in zip(st.columns(2), ("a", "b"), (values[0], second), strict=True):
        with column:
            chosen.append(url_state.widget(f"cmp_{param}_{side}", url_state.choice(f"{param}_{side}", values, default),
                                           st.selectbox, f"{label} {side.upper()}", values))
    return tuple(chosen)


def render(gallery: Path, fingerprint: tuple) -> None:
    options = common.options(str(gallery), fingerprint)
    st.title("Compare")
    if not options.generators or not options.prompts:
        st.info("No artworks yet: nothing to compare.")
        return
    chosen = _selections(options)
    if chosen is None:
        return
    mode, a, b, shared = chosen
    labeller, counted = common.compositions(str(gallery), fingerprint)
    by_key = {(c.generator, c.prompt_label): c for c in counted}
    if mode == MODES["generators"]:
        left, right = by_key.get((a, shared)), by_key.get((b, shared))
        titles = (f"{a} · {shared}", f"{b} · {shared}")
    else:
        left, right = by_key.get((shared, a)), by_key.get((shared, b))
        titles = (f"{shared} · {a}", f"{shared} · {b}")

    if left is not None and right is not None and left.n and right.n:
        test = homogeneity_test(left.counts, right.counts)
        st.markdown(
            f"**Same composition?** {test.method}: statistic {test.statistic:.2f}, df {test.dof}, "
            f"**p = {test.p_value:.4g}** (n = {left.n} vs {right.n})"
        )
        if test.warning:
            st.warning(test.warning)
        found = pair_association(common.between(str(gallery), fingerprint) if left.prompt == right.prompt else [],
                                 left, right)
        adjusted = "" if found.test.p_adjusted is None else f", adjusted {found.test.p_adjusted:.3g}"
        st.markdown(
            f"**How different?** Cramér's V **{common.fmt(found.v, 2)}** "
            f"(95% CI {common.fmt(found.low, 2)}–{common.fmt(found.high, 2)}; "
            f"Pearson chi-square p = {found.test.p_value:.3g}{adjusted}; n = {found.n}). "
            "V runs from 0 (the same class mix) to 1 (no class in common)."
        )
        st.caption(f"Interval: {found.interval_method}. {found.test.method}"
                   + (f"; p adjusted by {found.test.adjustment}." if found.test.adjustment else "."))
    first, second = st.columns(2)
    with first:
        _side(gallery, left, titles[0], labeller, "a")
    with second:
        _side(gallery, right, titles[1], labeller, "b")
