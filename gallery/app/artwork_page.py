"""Artwork page (``?page=artwork&id=...``): one artwork, how it was found, what it was labelled.

The gallery's parameters ride along in the URL (``?page=artwork&id=...&generator=gen-a&sort=newest``),
so previous / next walk the grid the visitor came from, in its order, and "Back to the gallery"
returns to the page of the grid that holds the artwork.
"""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from gallery.app import charts, common, gallery_page, url_state
from gallery.app.similar import more_like_this
from gallery.store import queries


def _missing(message: str) -> None:
    st.title("Artwork")
    st.error(message)
    if st.button("Back to the gallery"):
        common.goto("gallery", **gallery_page.carried())


def _walk(gallery: Path, fingerprint: tuple, artwork_id: str) -> None:
    """Previous / next within the gallery's current filter and order, and the way back."""
    view = gallery_page.view_from_url(gallery, fingerprint)
    found = queries.artwork_neighbours(gallery, view.filters, sort=view.sort, artwork_id=artwork_id)
    carried = gallery_page.carried()
    back = {name: values for name, values in carried.items() if name != gallery_page.PARAMETERS["f_page"]}
    if found is not None and found.position > view.page_size:
        back[gallery_page.PARAMETERS["f_page"]] = [str((found.position - 1) // view.page_size + 1)]
    before, where, after, home = st.columns([1, 3, 1, 1.4])
    if before.button("← Previous", key="walk_previous", disabled=found is None or found.previous is None):
        common.goto("artwork", id=found.previous, **carried)
    if after.button("Next →", key="walk_next", disabled=found is None or found.next is None):
        common.goto("artwork", id=found.next, **carried)
    if home.button("Back to the gallery", key="walk_back"):
        common.goto("gallery", **back)
    where.caption(
        f"{found.position} of {found.total} in the gallery's current selection ({common.escape(view.sort)})"
        if found is not None
        else "Not in the gallery's current selection (its filters leave it out): no previous or next."
    )


def _download(gallery: Path, artwork) -> None:
    """The image file as stored, for download (read only when asked for, and only from inside
    the gallery's images)."""
    from gallery.images import resolve_image

    path = resolve_image(gallery, artwork["image_path"])
    if path is None or not path.is_file():
        return
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(artwork["artwork_id"]))
    st.download_button(
        "Download the image (PNG)", path.read_bytes, file_name=f"{name}.png", mime="image/png",
        on_click="ignore", key="download_image",
    )


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
    _walk(gallery, fingerprint, artwork_id)
    left, right = st.columns([3, 2])
    with left:
        common.show_image(gallery, artwork["image_path"])
        _download(gallery, artwork)
    with right:
        _facts(artwork)
        st.markdown("**Permalink**")
        st.code(url_state.permalink("artwork", {"id": artwork_id, **gallery_page.carried()}),
                language=None, wrap_lines=True)

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
                    common.goto("artwork", id=row.artwork_id, **gallery_page.carried())

    more_like_this(gallery, artwork)
    with st.expander("Search settings and generator"):
        for name in ("settings_json", "generator_identity_json"):
            try:
                st.json(json.loads(artwork[name]) if isinstance(artwork[name], str) else {})
            except json.JSONDecodeError:
                st.code(str(artwork[name]))
