"""Streamlit helpers shared by the pages: where the gallery is, cached reads, navigation, images."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import streamlit as st

from gallery.bias import (
    GalleryBias,
    fill_between,
    fill_intervals,
    gallery_bias,
    gallery_compositions,
)
from gallery.statistics import BetweenGenerators, Composition, between_generators
from gallery.store import queries

GALLERY_ENV = "ARTBIAS_GALLERY"
PAGES = ("gallery", "artwork", "bias", "compare", "exhibition", "annotate", "map")
PAGE_TITLES = {
    "gallery": "Gallery",
    "artwork": "Artwork",
    "bias": "Bias",
    "compare": "Compare",
    "exhibition": "Exhibition",
    "annotate": "Annotate",
    "map": "Embedding map",
}


def gallery_path() -> Path:
    """``--gallery DIR`` after ``streamlit run app.py --``, else ``$ARTBIAS_GALLERY``, else cwd."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--gallery")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return Path(known.gallery or os.environ.get(GALLERY_ENV) or ".").expanduser()


def kiosk_settings() -> tuple[bool, str | None]:
    """``--kiosk`` and ``--interval S`` after ``streamlit run app.py --`` (what ``artbias
    gallery --kiosk [--interval S]`` passes): kiosk mode, and the interval as given."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--kiosk", action="store_true")
    parser.add_argument("--interval")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return known.kiosk, known.interval


# Derived results are cached per gallery *fingerprint* (counts and the last finish time), so a
# refresh after a campaign adds artworks recomputes, and nothing stale is shown.
@st.cache_data(show_spinner=False, max_entries=16)
def options(gallery: str, fingerprint: tuple) -> queries.Options:
    return queries.options(gallery)


@st.cache_data(show_spinner="Computing the statistics…", max_entries=4)
def _bias_core(gallery: str, labeller: str | None, fingerprint: tuple) -> GalleryBias:
    return gallery_bias(gallery, labeller=labeller, defer=True)


@st.cache_data(show_spinner=False, max_entries=16)
def bias(gallery: str, labeller: str | None, fingerprint: tuple, prompts: tuple = (),
         between: bool = False) -> GalleryBias:
    """The bias report as a page shows it: every test, adjusted p-value, sentence and Wilson or
    Goodman interval; the resampled intervals (bootstrap, corrected proportions) only of the
    scene reports for ``prompts`` (None for the baselines), and the between-generator tests only
    with ``between``. ``gallery.bias.complete`` draws the rest with the same numbers (a
    download does). The shared part is computed once per gallery state and labeller."""
    found = _bias_core(gallery, labeller, fingerprint)
    fill_intervals(found, prompts, attributes=False)
    return fill_between(found) if between else found


@st.cache_data(show_spinner=False, max_entries=8)
def compositions(gallery: str, fingerprint: tuple) -> tuple[str, list[Composition]]:
    """The bias report's labeller (its default choice) and the class counts behind each of its
    reports, nothing computed from them: a comparison of two needs no more."""
    return gallery_compositions(gallery)


@st.cache_data(show_spinner="Computing the statistics…", max_entries=8)
def between(gallery: str, fingerprint: tuple) -> list[BetweenGenerators]:
    """The bias report's between-generator tests (its labeller and defaults: the same numbers),
    from the compositions alone."""
    return between_generators(compositions(gallery, fingerprint)[1])


def default_labeller(options: queries.Options) -> str | None:
    """The labeller the bias pages are about by default (see ``classifier.labellers``)."""
    from classifier.labellers import default_labeller as choose

    return choose(options.labellers)


def goto(page: str, **params: str) -> None:
    """Navigate inside the app: the URL's query parameters are the view's permalink."""
    st.query_params.clear()
    st.query_params.update({"page": page, **params})
    st.rerun()


def permalink(page: str, **params: str) -> str:
    from urllib.parse import urlencode

    return "?" + urlencode({"page": page, **params})


PLACEHOLDER = "image unavailable"


def load_image(gallery: Path, relative_path):
    """The artwork's pixels as a PIL image, or None when the stored path leads outside the
    gallery's ``images/`` (``gallery.images.resolve_image``), the file is missing, or it is
    no readable image within the size limits (``data.validation.open_image``)."""
    from data.errors import ArtbiasError
    from data.validation import open_image
    from gallery.images import resolve_image

    path = resolve_image(gallery, relative_path)
    if path is None or not path.is_file():
        return None
    try:
        with open_image(path) as image:
            image.load()
            return image.convert("RGB")
    except (ArtbiasError, OSError, ValueError, SyntaxError):  # Pillow's errors for broken files
        return None


def show_image(
    gallery: Path, relative_path: str | None, *, caption: str | None = None, width="stretch"
) -> None:
    """An artwork image, or a placeholder when it cannot be shown (never a traceback, never
    a file outside the gallery's images)."""
    image = load_image(gallery, relative_path)
    if image is None:
        st.caption(PLACEHOLDER)
        return
    st.image(image, caption=caption, width=width)


# Every ASCII punctuation character markdown may give a meaning to: a backslash before each
# shows it as itself (CommonMark), so stored or typed text can make no link, image or markup.
_MARKDOWN_SPECIAL = set("\\`*_{}[]()<>#+!|~$:@.&=\"'^%")


def escape(text, limit: int | None = 200) -> str:
    """Text from the gallery or the address bar, safe inside ``st.markdown`` and friends:
    control characters escaped (``data.validation.printable``), markdown punctuation
    backslash-escaped, cut to ``limit`` characters."""
    from data.validation import printable

    return "".join(f"\\{c}" if c in _MARKDOWN_SPECIAL else c for c in printable(str(text), limit))


def escape_html(text, limit: int | None = 200) -> str:
    """Text for an HTML block (``unsafe_allow_html``): HTML-escaped, and markdown punctuation
    written as character references, so it is neither markup nor a link."""
    import html

    from data.validation import printable

    escaped = html.escape(printable(str(text), limit))
    return "".join(f"&#{ord(c)};" if c in _MARKDOWN_SPECIAL and c not in "&#;" else c for c in escaped)


def fmt(value, digits: int = 3) -> str:
    try:
        if value is None or value != value:  # None or NaN
            return "–"
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def prompt_label(kind: str, prompt: str | None) -> str:
    return queries.BASELINE_LABEL if kind == "baseline" or prompt is None else prompt
