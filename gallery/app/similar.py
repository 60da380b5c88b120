""""More like this" on the artwork page: the nearest artworks by CLIP image embedding.

The k nearest artworks by cosine similarity of their embeddings (``artbias gallery embed``),
found in DuckDB (``gallery.store.queries.similar_artworks``); a search's own siblings are left
out (the page shows them already). Each is a thumbnail that opens its artwork page.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from gallery.app import common
from gallery.store import queries

K = 6


def more_like_this(gallery: Path, artwork: pd.Series, k: int = K) -> None:
    """The "More like this" section for one artwork (a row of ``queries.artwork``)."""
    st.subheader("More like this")
    clips = queries.artwork_embedding_clips(gallery, artwork["artwork_id"])
    if not clips:
        st.caption("This artwork has no CLIP embedding yet: `artbias gallery embed` computes them, "
                   "then similar artworks appear here.")
        return
    # A search's siblings are near-copies shown above; baseline samples share a run but not a search.
    exclude = artwork["run_id"] if artwork["kind"] == "search" else None
    found = queries.similar_artworks(gallery, artwork["artwork_id"], clips[0], k, exclude_run=exclude)
    if found.empty:
        st.caption("No other embedded artwork to compare with yet.")
        return
    st.caption(f"The {len(found)} nearest artworks by cosine similarity of their CLIP image embeddings "
               f"({common.escape(clips[0], 120)}).")
    for column, row in zip(st.columns(k), found.itertuples(), strict=False):
        with column:
            common.show_image(gallery, row.image_path)
            prompt = common.prompt_label(row.kind, row.prompt)
            st.caption(f"{common.escape(row.generator)} · *{common.escape(prompt, 60)}* · cosine {row.cosine:.3f}")
            if st.button("Open", key=f"similar_{row.artwork_id}"):
                common.goto("artwork", id=row.artwork_id)
