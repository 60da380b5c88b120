"""Altair charts for the app (plain functions of DataFrames; no Streamlit).

Every chart's title carries its sample size(s), and every estimated proportion its interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from gallery.statistics import BiasReport

SERIES_COLOURS = {
    "prompt": "#d95f02",
    "baseline": "#7570b3",
    "reference": "#1b9e77",
    "corrected": "#e7298a",
}


def _series_scale(series: Sequence[str]) -> alt.Scale:
    palette = ["#d95f02", "#7570b3", "#1b9e77", "#e7298a", "#66a61e", "#e6ab02"]
    return alt.Scale(domain=list(series), range=palette[: len(series)])


SELECTION = "open"  # the bars' click selection: the app opens the clicked bar's artworks


def composition_chart(
    frame: pd.DataFrame, title: str | list[str], *, height: int = 330, selectable: bool = False
) -> alt.Chart:
    """Grouped bars per class with interval error bars.

    ``frame``: columns class, series (legend label, e.g. "prompt (n=30)"), proportion, low,
    high (low/high may be NaN, e.g. for a known reference composition). ``selectable``: a
    click on a bar selects its class, generator and open_prompt (``report_frame``'s columns)
    in the point selection ``SELECTION``.
    """
    series = list(dict.fromkeys(frame["series"]))
    legend = alt.Legend(orient="top", direction="vertical", labelLimit=400)
    colour = alt.Color("series:N", title=None, scale=_series_scale(series), legend=legend)
    base = alt.Chart(frame).encode(
        x=alt.X(
            "class:N",
            title=None,
            sort=list(dict.fromkeys(frame["class"])),
            axis=alt.Axis(labelAngle=0),
        ),
        xOffset=alt.XOffset("series:N", sort=series),
        color=colour,
    )
    bars = base.mark_bar(opacity=0.85, cursor="pointer" if selectable else "default").encode(
        y=alt.Y("proportion:Q", title="proportion", scale=alt.Scale(domain=[0, 1])),
        tooltip=[
            "series:N",
            "class:N",
            alt.Tooltip("proportion:Q", format=".2f"),
            alt.Tooltip("low:Q", format=".2f", title="95% low"),
            alt.Tooltip("high:Q", format=".2f", title="95% high"),
        ],
    )
    if selectable:
        bars = bars.add_params(
            alt.selection_point(name=SELECTION, fields=["class", "generator", "open_prompt"], on="click")
        )
    errors = (
        base.transform_filter("isValid(datum.low)")
        .mark_errorbar(ticks=True, color="black")
        .encode(y=alt.Y("low:Q", title="proportion"), y2="high:Q", color=alt.value("#222222"))
    )
    return (bars + errors).properties(title=title, height=height)


def report_frame(
    report: BiasReport, baseline: BiasReport | None = None, *, corrected: bool = False
) -> pd.DataFrame:
    """Long frame for ``composition_chart``: the report, its baseline and its reference.

    Bars of artworks (the report's and its baseline's) carry their ``generator`` and
    ``open_prompt`` (the gallery's prompt filter: the prompt, or the baseline label); bars of
    estimates (corrected, reference) have none.
    """
    records = []
    label = report.prompt_label
    for row in report.rows:
        records.append(
            {
                "class": row.name,
                "series": f"{label} (n={report.n})",
                "proportion": row.proportion,
                "low": row.wilson_low,
                "high": row.wilson_high,
                "generator": report.generator,
                "open_prompt": label,
            }
        )
    if corrected and report.corrected_available:
        for row in report.rows:
            records.append(
                {
                    "class": row.name,
                    "series": f"corrected for classifier error (n={report.n})",
                    "proportion": row.corrected,
                    "low": row.corrected_low,
                    "high": row.corrected_high,
                }
            )
    if baseline is not None and baseline is not report and baseline.n:
        for row in baseline.rows:
            records.append(
                {
                    "class": row.name,
                    "series": f"unguided baseline (n={baseline.n})",
                    "proportion": row.proportion,
                    "low": row.wilson_low,
                    "high": row.wilson_high,
                    "generator": baseline.generator,
                    "open_prompt": baseline.prompt_label,
                }
            )
    if report.reference_name:
        for row in report.rows:
            records.append(
                {
                    "class": row.name,
                    "series": f"{report.reference_name} (reference)",
                    "proportion": row.reference_proportion,
                    "low": float("nan"),
                    "high": float("nan"),
                }
            )
    frame = pd.DataFrame.from_records(records)
    for column in ("generator", "open_prompt"):  # absent from estimate-only series
        if column not in frame:
            frame[column] = None
    return frame


def probabilities_chart(frame: pd.DataFrame) -> alt.Chart:
    """Class probabilities of one artwork, one bar group per labeller."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("class:N", title=None, axis=alt.Axis(labelAngle=0)),
            xOffset="labeller:N",
            y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("labeller:N", legend=alt.Legend(orient="top", title=None)),
            tooltip=["labeller:N", "class:N", alt.Tooltip("probability:Q", format=".3f")],
        )
        .properties(title="class probabilities (n = 1 artwork)", height=280)
    )


def history_chart(frame: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("generation:Q", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("best similarity:Q", scale=alt.Scale(zero=False)),
        )
        .properties(
            title=f"search history: best CLIP similarity ({len(frame)} generations)", height=240
        )
    )


def front_chart(frame: pd.DataFrame, highlight: str) -> alt.Chart:
    """The run's artworks in (similarity, realism): the chosen one against its siblings."""
    data = frame.assign(
        which=(frame["artwork_id"] == highlight).map({True: "this artwork", False: "sibling"})
    )
    return (
        alt.Chart(data)
        .mark_point(filled=True, size=90)
        .encode(
            x=alt.X("similarity:Q", scale=alt.Scale(zero=False), title="CLIP similarity"),
            y=alt.Y("realism:Q", scale=alt.Scale(zero=False)),
            color=alt.Color("role:N"),
            shape=alt.Shape("which:N", title=None),
            tooltip=[
                "artwork_id",
                "role",
                alt.Tooltip("similarity:Q", format=".3f"),
                alt.Tooltip("realism:Q", format=".3f"),
            ],
        )
        .properties(title=f"the run's artworks (n={len(frame)})", height=240)
    )
