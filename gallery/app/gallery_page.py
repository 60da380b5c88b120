"""Gallery page: a filterable, sortable, paginated grid of artworks."""

from __future__ import annotations

import math
from pathlib import Path

import streamlit as st

from gallery.app import common
from gallery.store import queries

COLUMNS = 4
PAGE_SIZES = (12, 24, 48)


def _filters(options: queries.Options) -> tuple[queries.ArtworkFilter, str, int]:
    """The sidebar filters -> (filter, sort, page size)."""
    with st.sidebar:
        st.markdown("**Filters**")
        generators = st.multiselect("Generator", options.generators, key="f_generators")
        prompts = st.multiselect("Prompt", options.prompts, key="f_prompts")
        labeller = None
        if options.labellers:
            default = options.labellers.index(common.default_labeller(options))
            labeller = st.selectbox("Labeller", options.labellers, index=default, key="f_labeller")
        classes = st.multiselect("Predicted class", options.classes, key="f_classes")
        roles = st.multiselect(
            "Role",
            queries.ROLES,
            default=["chosen"],
            key="f_roles",
            help="chosen: each search's answer; top/pareto: its runners-up and Pareto-front "
            "members; baseline: unguided samples",
        )
        similarity = None
        if options.similarity is not None and options.similarity[1] > options.similarity[0]:
            lo, hi = options.similarity
            chosen = st.slider(
                "CLIP similarity",
                min_value=float(lo),
                max_value=float(hi),
                value=(float(lo), float(hi)),
                step=max((hi - lo) / 100, 1e-4),
                format="%.3f",
                key="f_similarity",
            )
            if chosen[0] > lo or chosen[1] < hi:  # narrowed: artworks without a similarity drop out
                similarity = (chosen[0], chosen[1])
        sort = st.selectbox("Sort", list(queries.SORTS), key="f_sort")
        page_size = st.selectbox("Per page", PAGE_SIZES, key="f_page_size")
    filters = queries.ArtworkFilter(
        generators=tuple(generators),
        prompts=tuple(prompts),
        classes=tuple(classes),
        roles=tuple(roles),
        similarity=similarity,
        labeller=labeller,
    )
    return filters, sort, page_size


def _card(gallery: Path, row, labelled: bool) -> None:
    common.show_image(gallery, row.image_path)
    prompt = common.prompt_label(row.kind, row.prompt)
    label = (
        f" · **{common.escape(row.predicted)}** ({common.fmt(row.confidence, 2)})"
        if labelled and isinstance(row.predicted, str)
        else ""
    )
    # Stored text is escaped: a prompt shows as written, never as a link, image or markup.
    st.markdown(f"{common.escape(row.generator)} · *{common.escape(prompt)}*{label}")
    st.caption(f"seed {row.seed} · {common.escape(row.role)} · similarity {common.fmt(row.similarity)}")
    if st.button("Open", key=f"open_{row.artwork_id}"):
        common.goto("artwork", id=row.artwork_id)


def render(gallery: Path, fingerprint: tuple) -> None:
    options = common.options(str(gallery), fingerprint)
    st.title("Gallery")
    filters, sort, page_size = _filters(options)
    total = queries.count_artworks(gallery, filters)
    pages = max(1, math.ceil(total / page_size))
    if st.session_state.get("f_page", 1) > pages:  # fewer pages after a filter change
        st.session_state["f_page"] = pages
    page_number = int(st.session_state.get("f_page", 1))
    st.caption(
        f"{total} of {options.counts.get('artworks', 0)} artworks match · page {page_number} of {pages}"
    )
    if total == 0:
        empty = not options.counts.get("artworks")
        st.info(
            "The gallery has no artworks yet." if empty else "No artwork matches these filters."
        )
        return
    artworks = queries.find_artworks(
        gallery, filters, sort=sort, limit=page_size, offset=(page_number - 1) * page_size
    )
    for start in range(0, len(artworks), COLUMNS):
        for column, row in zip(
            st.columns(COLUMNS), artworks.iloc[start : start + COLUMNS].itertuples(), strict=False
        ):
            with column:
                _card(gallery, row, filters.labeller is not None)
    st.number_input("Page", min_value=1, max_value=pages, step=1, key="f_page")
