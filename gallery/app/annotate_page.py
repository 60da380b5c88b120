"""Annotation page: a person labels a blind, stratified sample of the gallery by hand.

``?page=annotate&annotator=NAME`` (``&sample=N&seed=S`` choose another sample: N artworks per
generator and prompt, default ``PER_STRATUM``, and the seed, default ``SEED``). Without
``annotator`` the page asks for a name. Everyone gets the same sample in the same order
(``gallery.annotations.annotation_sample``, the one ``artbias annotate export --sample N --seed
S`` writes), so annotators overlap and their agreement can be measured.

*Blind*: the page shows the picture and nothing about it: no model label, similarity or
confidence, and no generator, prompt or artwork id either (they hint at the label).

Each label is one line appended to ``GALLERY/annotations/NAME.jsonl`` and fsynced before the
next picture shows (``gallery.annotations``); the page never writes the DuckDB file, so it never
waits for a campaign's writer. Reopening the page skips what that annotator already labelled.
``artbias annotate ingest`` stores the labels as ``human:NAME`` for the statistics.

Keys: Streamlit has no key bindings, so a tiny script (in an iframe of the same origin:
``st.iframe``, or ``st.components.v1.html`` on Streamlit versions without it) listens for key presses on the app's document and clicks the button whose
widget key the pressed key maps to (``shortcuts``): 1-6 the classes in the gallery's order,
0 or U "unsure", Z undo. It ignores keys typed into a text field and keys with Ctrl, Alt or Cmd.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from data.errors import ConfigError
from gallery import annotations
from gallery.app import common
from gallery.store import Store, queries

PER_STRATUM = 10  # artworks per generator and prompt (a generator's baselines are one stratum)
SEED = 0
PER_STRATUM_MAX = 10_000
IMAGE_PX = 448  # the picture is enlarged to at most this many pixels across
UNSURE_KEYS = ("0", "u")
UNDO_KEY = "z"
UNDO_BUTTON = "annotate-undo"
ERROR = "annotate-error"  # session state: a label that could not be saved


def class_button(index: int) -> str:
    """The widget key of the button of the ``index``-th class (from 1); ``0`` is "unsure"."""
    return f"annotate-label-{index}"


def shortcuts(classes: list[str]) -> dict[str, str]:
    """Key (``KeyboardEvent.key``, lower case) -> widget key of the button it presses."""
    keys = {str(i): class_button(i) for i in range(1, min(len(classes), 9) + 1)}
    keys |= {key: class_button(0) for key in UNSURE_KEYS}
    return keys | {UNDO_KEY: UNDO_BUTTON}


def button_labels(classes: list[str]) -> dict[str, str]:
    """Widget key -> the button's text (its shortcut first)."""
    labels = {class_button(i): (f"{i} · {name}" if i <= 9 else name) for i, name in enumerate(classes, 1)}
    return labels | {class_button(0): f"0 · {annotations.UNSURE}"}


def keyboard_script(classes: list[str]) -> str:
    """The script that turns key presses into clicks (see the module docstring). It replaces
    the listener an earlier rerun installed, so one key press is one click."""
    keys = json.dumps(shortcuts(classes))
    return f"""<script>
const doc = window.parent.document;
const keys = {keys};
if (window.parent.artbiasAnnotateKeys) doc.removeEventListener("keydown", window.parent.artbiasAnnotateKeys);
window.parent.artbiasAnnotateKeys = (event) => {{
  if (event.ctrlKey || event.altKey || event.metaKey || event.repeat) return;
  const target = event.target;
  if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
  const widget = keys[event.key.toLowerCase()];
  const button = widget && doc.querySelector(".st-key-" + widget + " button");
  if (button && !button.disabled) {{ event.preventDefault(); button.click(); }}
}};
doc.addEventListener("keydown", window.parent.artbiasAnnotateKeys);
</script>"""


@st.cache_data(show_spinner=False, max_entries=8)
def sample(gallery: str, per_stratum: int, seed: int, fingerprint: tuple) -> pd.DataFrame:
    """The sample to label, in its order: artwork_id and image_path only (blind)."""
    drawn = annotations.annotation_sample(queries.counted_artworks(gallery), per_stratum, seed)
    return drawn[["artwork_id", "image_path"]]


@st.cache_data(show_spinner=False, max_entries=8)
def classes(gallery: str, fingerprint: tuple) -> list[str]:
    return annotations.scene_classes(Store(gallery))


def _number(name: str, default: int, low: int, high: int) -> int:
    raw = st.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        st.warning(f"{name} must be a whole number from {low} to {high}; using {default}")
        return default
    return value


def _sample_params() -> dict[str, str]:
    """The URL's sample choice, kept when the page navigates."""
    return {name: st.query_params[name] for name in ("sample", "seed") if name in st.query_params}


def _sign_in(gallery: Path, problem: str | None) -> None:
    st.markdown(
        "Label pictures from this gallery by the scene they show. You see only the picture: "
        "no model's label, no generator, no prompt. Your labels are saved as you go, under your name; "
        "come back any time to continue."
    )
    if problem:
        st.error(problem)
    with st.form("annotate-sign-in"):
        typed = st.text_input("Your name", key="annotate-name", max_chars=200,
                              help="letters, digits, '_', '.' or '-'; starting with a letter")
        started = st.form_submit_button("Start labelling")
    if started:
        try:
            name = annotations.check_annotator(typed)
        except ConfigError as error:
            st.error(str(error))
            return
        common.goto("annotate", annotator=name, **_sample_params())
    known = annotations.annotators(gallery)
    if known:
        st.caption("Continue as:")
        for name, n in list(known.items())[:20]:
            if st.button(f"{name} ({n} labelled)", key=f"annotate-as-{name}"):
                common.goto("annotate", annotator=name, **_sample_params())


def _save_label(gallery: Path, name: str, artwork_id: str, label: str) -> None:
    """Label the artwork whose picture the button was shown with. A click that arrives before
    the next picture shows (a key pressed twice quickly) names an artwork already labelled and
    is ignored: a label never goes to a picture the annotator has not seen."""
    try:
        if artwork_id in annotations.read_log(annotations.annotation_file(gallery, name)).labels:
            return
        annotations.append_label(gallery, name, artwork_id, label)
    except ConfigError as error:
        st.session_state[ERROR] = str(error)


def _undo(gallery: Path, name: str) -> None:
    """Take back the annotator's latest standing label (each press one more)."""
    try:
        last = annotations.read_log(annotations.annotation_file(gallery, name)).last
        if last is not None:
            annotations.append_undo(gallery, name, last)
    except ConfigError as error:
        st.session_state[ERROR] = str(error)


def _enlarged(gallery: Path, image_path: str):
    """The picture enlarged by a whole factor with nearest-neighbour (each pixel a crisp square:
    nothing smoothed or invented), or None when it cannot be shown."""
    from PIL import Image

    image = common.load_image(gallery, image_path)
    if image is None:
        return None
    factor = max(1, IMAGE_PX // max(image.size))
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def render(gallery: Path, fingerprint: tuple) -> None:
    st.title("Annotate")
    raw = st.query_params.get("annotator")
    if raw is None:
        _sign_in(gallery, None)
        return
    try:
        name = annotations.check_annotator(raw)
    except ConfigError as error:
        _sign_in(gallery, str(error))
        return
    if name != raw:
        st.query_params["annotator"] = name
    per_stratum = _number("sample", PER_STRATUM, 1, PER_STRATUM_MAX)
    seed = _number("seed", SEED, 0, 2**32 - 1)
    drawn = sample(str(gallery), per_stratum, seed, fingerprint)
    names = classes(str(gallery), fingerprint)
    if drawn.empty:
        st.info("This gallery has no finished artworks to label yet.")
        return

    if ERROR in st.session_state:
        st.error(st.session_state.pop(ERROR))
    try:
        log = annotations.read_log(annotations.annotation_file(gallery, name))
    except ConfigError as error:
        st.error(str(error))
        return
    done = drawn["artwork_id"].isin(log.labels.keys())
    unsure = sum(log.labels.get(a) == annotations.UNSURE for a in drawn["artwork_id"])
    st.markdown(f"Annotator **{common.escape(name)}** · "
                f"{len(drawn)} pictures in this sample, the same for every annotator")
    st.progress(float(done.mean()), text=f"{int(done.sum())} of {len(drawn)} labelled"
                + (f" ({unsure} unsure)" if unsure else ""))

    remaining = drawn[~done]
    if remaining.empty:
        st.success(f"All {len(drawn)} pictures are labelled. Thank you!")
        st.caption("`artbias annotate ingest` adds your labels to the statistics.")
        _controls(gallery, name, log, names, None)
        return
    current = remaining.iloc[0]
    left, right = st.columns([3, 2])
    with left:
        image = _enlarged(gallery, current["image_path"])
        if image is None:
            st.caption(f"{common.PLACEHOLDER}: label it unsure")
        else:
            st.image(image)
    with right:
        st.markdown("**Which scene is this?**")
        st.caption(f"Keys: 1–{min(len(names), 9)} the scene, 0 or U unsure, Z undo.")
        _controls(gallery, name, log, names, current["artwork_id"])
    if st.button("Change annotator", key="annotate-change"):
        common.goto("annotate", **_sample_params())


def _controls(gallery: Path, name: str, log: annotations.AnnotationLog, names: list[str],
              artwork_id: str | None) -> None:
    """The class buttons (for ``artwork_id``; none when all are done), "unsure" and undo, and
    the key bindings."""
    if artwork_id is not None:
        labels = button_labels(names)
        for index, label in enumerate([*names, annotations.UNSURE], 1):
            key = class_button(index if index <= len(names) else 0)
            st.button(labels[key], key=key, on_click=_save_label, args=(gallery, name, artwork_id, label),
                      width="stretch")
    st.button("Undo the last label", key=UNDO_BUTTON, disabled=log.last is None,
              on_click=_undo, args=(gallery, name))
    script = keyboard_script(names)
    if hasattr(st, "iframe"):  # newer Streamlit, where components.v1.html is deprecated
        st.iframe(script, height="content")
    else:
        components.html(script, height=0)
