"""Artwork page (``?page=artwork&id=...``): one artwork, how it was found, what it was labelled."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from gallery.app import charts, common
from gallery.store import queries


def _missing(message: str) -> None:
    st.title("Artwork")
    st.error(message)
    if st.button("Back to the gallery"):
        common.goto("gallery")


def _facts(artwork) -> None:
    prompt = common.prompt_label(artwork["kind"], artwork["prompt"])
    st.markdown(f"### {common.escape(prompt, None)}")  # stored text: shown, never interpreted
    if isinstance(artwork["full_prompt"], str) and artwork["full_prompt"] != artwork["prompt"]:
        st.markdown(f"CLIP saw: *{common.escape(artwork['full_prompt'], None)}*")
    facts = {
        "generator": artwork["generator"],
        "seed": artwork["seed"],
        "algorithm": artwork["algorithm"],
        "role": f"{artwork['role']} (rank {artwork['rank']})",
        "CLIP similarity": common.fmt(artwork["similarity"]),
        "realism": common.fmt(artwork["realism"]),
        "CLIP model": artwork["clip"] or "–",
        "evaluations": artwork["evaluations"],
        "run time": f"{common.fmt(artwork['duration_s'], 1)} s",
    }
    st.table({"": list(facts), "value": [str(v) for v in facts.values()]})


def render(gallery: Path, fingerprint: tuple) -> None:
    artwork_id = st.query_params.get("id")
    if not artwork_id:
        _missing(
            "No artwork chosen: open one from the gallery (the address needs `?page=artwork&id=...`)."
        )
        return
    artwork = queries.artwork(gallery, artwork_id)
    if artwork is None:
        _missing(
            f"There is no artwork “{common.escape(artwork_id, 80)}” in this gallery. It may be from another gallery, or the link is mistyped."
        )
        return

    st.title("Artwork")
    left, right = st.columns([3, 2])
    with left:
        common.show_image(gallery, artwork["image_path"])
    with right:
        _facts(artwork)
        st.markdown("**Permalink**")
        st.code(common.permalink("artwork", id=artwork_id), language=None, wrap_lines=True)

    labels = queries.labels_of(gallery, artwork_id)
    run_siblings = queries.siblings(gallery, artwork["run_id"])
    history = queries.history_frame(artwork["history_json"])

    first, second = st.columns(2)
    with first:
        if labels.empty:
            st.info("This artwork has no labels yet.")
        else:
            st.altair_chart(
                charts.probabilities_chart(queries.probabilities_frame(labels)), width="stretch"
            )
            st.dataframe(
                labels[["labeller", "predicted", "confidence"]], hide_index=True, width="stretch"
            )
    with second:
        if len(history):
            st.altair_chart(charts.history_chart(history), width="stretch")
        else:
            st.caption("No search history: an unguided baseline sample.")

    others = run_siblings[run_siblings["artwork_id"] != artwork_id]
    if len(others) and artwork["kind"] != "baseline":  # baseline samples are not siblings
        st.subheader(f"Siblings from the same search ({len(others)})")
        if run_siblings["realism"].notna().any() and run_siblings["similarity"].notna().any():
            st.altair_chart(charts.front_chart(run_siblings, artwork_id), width="stretch")
        pareto_first = others.sort_values(
            by=["role", "rank"], key=lambda c: c != "pareto" if c.name == "role" else c
        )
        for column, row in zip(st.columns(6), pareto_first.head(6).itertuples(), strict=False):
            with column:
                common.show_image(gallery, row.image_path)
                st.caption(
                    f"{common.escape(row.role)} · similarity {common.fmt(row.similarity)} · realism {common.fmt(row.realism)}"
                )
                if st.button("Open", key=f"sib_{row.artwork_id}"):
                    common.goto("artwork", id=row.artwork_id)

    with st.expander("Search settings and generator"):
        for name in ("settings_json", "generator_identity_json"):
            try:
                st.json(json.loads(artwork[name]) if isinstance(artwork[name], str) else {})
            except json.JSONDecodeError:
                st.code(str(artwork[name]))
