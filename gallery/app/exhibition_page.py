"""Exhibition page: a full-screen slideshow of the chosen artworks that advances by itself.

``?page=exhibition&interval=8&generator=NAME&prompt=TEXT`` (all optional). The slideshow is
a Streamlit fragment re-run every ``interval`` seconds; it re-reads the gallery each time, so
artworks a running campaign adds join the show.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import streamlit as st

from gallery.app import common
from gallery.store import queries

DEFAULT_INTERVAL_S = 8.0
INTERVAL_RANGE_S = (2.0, 300.0)

# Full screen: no sidebar, header or toolbar; a dark room for the pictures.
_CSS = """
<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header, footer,
[data-testid="stToolbar"] {display: none !important;}
.stApp {background: #111;}
.block-container {padding-top: 1.5rem; max-width: 100%;}
.exhibit-caption {color: #eee; text-align: center; font-size: 1.4rem; margin-top: 0.6rem;}
.exhibit-meta {color: #999; text-align: center; font-size: 0.95rem;}
</style>
"""


def _interval() -> tuple[float, str | None]:
    raw = st.query_params.get("interval")
    if raw is None:
        return DEFAULT_INTERVAL_S, None
    try:
        value = float(raw)
    except ValueError:
        return (
            DEFAULT_INTERVAL_S,
            f"interval “{common.escape(raw, 40)}” is not a number of seconds; using {DEFAULT_INTERVAL_S:g}",
        )
    low, high = INTERVAL_RANGE_S
    if not low <= value <= high:
        return (
            DEFAULT_INTERVAL_S,
            f"interval must be {low:g}–{high:g} seconds; using {DEFAULT_INTERVAL_S:g}",
        )
    return value, None


def _caption(row) -> str:
    # Stored text is escaped for HTML and for markdown: shown as written, never as markup.
    prompt = common.escape_html(common.prompt_label(row.kind, row.prompt), None)
    label = (
        f" · seen as <b>{common.escape_html(row.predicted)}</b>" if isinstance(row.predicted, str) else ""
    )
    return (
        f'<div class="exhibit-caption">“{prompt}”</div>'
        f'<div class="exhibit-meta">{common.escape_html(row.generator)} · seed {row.seed} · CLIP similarity '
        f"{common.fmt(row.similarity)}{label}</div>"
    )


def render(gallery: Path, fingerprint: tuple) -> None:
    st.markdown(_CSS, unsafe_allow_html=True)
    interval, problem = _interval()
    if problem:
        st.warning(problem)
    generators = tuple(st.query_params.get_all("generator"))
    prompts = tuple(st.query_params.get_all("prompt"))
    labeller = common.default_labeller(common.options(str(gallery), fingerprint))

    @st.fragment(run_every=timedelta(seconds=interval))
    def slide() -> None:
        shown = queries.find_artworks(
            gallery,
            queries.ArtworkFilter(
                generators=generators, prompts=prompts, roles=("chosen",), labeller=labeller
            ),
            sort="best CLIP similarity first",
            limit=500,
        )
        if shown.empty:
            st.info(
                "No artworks to show yet"
                + (" for these filters." if generators or prompts else ".")
            )
            return
        index = st.session_state.get("exhibit_index", -1) + 1
        st.session_state["exhibit_index"] = index
        row = list(shown.itertuples())[index % len(shown)]
        _, middle, _ = st.columns([1, 2, 1])
        with middle:
            common.show_image(gallery, row.image_path)
            st.markdown(_caption(row), unsafe_allow_html=True)
            st.markdown(
                f'<div class="exhibit-meta">{index % len(shown) + 1} / {len(shown)} · next in {interval:g} s</div>',
                unsafe_allow_html=True,
            )

    slide()
    if st.button("Leave the exhibition"):
        common.goto("gallery")
