"""The artbias gallery (Streamlit entry point): ``artbias gallery --gallery DIR``.

``streamlit run gallery/app/app.py -- --gallery DIR``. The view lives in the URL's query
parameters (``?page=artwork&id=...``), so every view has a permalink. The app only reads the
store and the image files; while a campaign writes the same gallery, reads wait out its
lock and new artworks appear on the next refresh.
"""

from __future__ import annotations

import traceback

import streamlit as st

from gallery.app import (
    annotate_page,
    artwork_page,
    bias_page,
    common,
    compare_page,
    exhibition_page,
    gallery_page,
    map_page,
)
from gallery.store import GalleryError, queries

RENDERERS = {
    "gallery": gallery_page.render,
    "artwork": artwork_page.render,
    "bias": bias_page.render,
    "compare": compare_page.render,
    "exhibition": exhibition_page.render,
    "annotate": annotate_page.render,
    "map": map_page.render,
}


def _navigate() -> None:
    title = st.session_state["nav"]
    page = next(p for p, t in common.PAGE_TITLES.items() if t == title)
    st.query_params.clear()
    st.query_params["page"] = page


def main() -> None:
    # A kiosk (`artbias gallery --kiosk`) shows the exhibition whatever the address says.
    requested = "exhibition" if common.kiosk_settings()[0] else st.query_params.get("page", "gallery")
    exhibition = requested == "exhibition"
    st.set_page_config(
        page_title="artbias gallery",
        layout="wide",
        initial_sidebar_state="collapsed" if exhibition else "auto",
    )
    gallery = common.gallery_path()

    if requested not in RENDERERS:
        st.title("artbias gallery")
        st.error(
            f"There is no page called “{common.escape(requested, 80)}”. "
            f"The pages are: {', '.join(common.PAGE_TITLES[p] for p in common.PAGES)}."
        )
        if st.button("Go to the gallery"):
            common.goto("gallery")
        return

    if not exhibition:
        with st.sidebar:
            st.markdown("### artbias")
            # The URL decides the page; the radio mirrors it and, when clicked, rewrites it.
            st.session_state["nav"] = common.PAGE_TITLES[requested]
            st.radio(
                "Page",
                [common.PAGE_TITLES[p] for p in common.PAGES],
                key="nav",
                on_change=_navigate,
                label_visibility="collapsed",
            )
            st.caption(f"gallery: {common.escape(gallery)}")
            st.divider()

    try:
        fingerprint = queries.fingerprint(gallery)
    except GalleryError as error:
        st.title("artbias gallery")
        st.error(f"This gallery cannot be shown yet: {common.escape(error, 400)}")
        st.caption(
            "Start a campaign (`artbias demo` or `artbias campaign run`) and refresh this page."
        )
        return

    try:
        RENDERERS[requested](gallery, fingerprint)
    except GalleryError as error:
        # A read that waited too long for a busy writer, or a gallery mid-creation.
        st.warning(
            f"This page cannot be shown right now: {common.escape(error, 400)}. If a campaign is writing to the gallery, refresh in a moment."
        )
    except Exception:  # visitors never see a traceback; the console that serves the app does
        traceback.print_exc()
        st.error("This page could not be shown because of an error in the gallery app; it has been logged.")


main()
