"""Embedding map (``?page=map``): the artworks placed by their CLIP image embeddings.

``?page=map&color=label|generator|prompt&projection=pca|umap&clip=NAME&roles=counted|all&box=X0,X1,Y0,Y1``
(all optional). The embeddings (``artbias gallery embed``) are projected to 2-D with PCA, or
UMAP when ``umap-learn`` is installed, once per gallery state (cached); a box drawn on the map
(or given as ``box``) shows the artworks inside it and their class mix with counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from gallery.app import common
from gallery.embeddings import PROJECTIONS, project, umap_available
from gallery.store import queries

COLOURS = {"label": "predicted class", "generator": "generator", "prompt": "prompt"}
ROLE_CHOICES = {
    "counted": "chosen + baseline",  # what the statistics count
    "all": "every artwork",  # with the searches' runners-up
}
THUMBNAILS = 12
COLUMNS = 6
UNLABELLED = "(unlabelled)"
SELECTION = "box"  # the chart's interval selection


# -- URL state -------------------------------------------------------------------------------------
def _from_url(param: str, options: list[str], default: str, what: str) -> str:
    raw = st.query_params.get(param)
    if raw is None or raw in options:
        return default if raw is None else raw
    st.warning(f"{what} “{common.escape(raw, 60)}” is not one of: {common.escape(', '.join(options), 300)}; "
               f"showing {common.escape(default, 60)}")
    return default


def _to_url(param: str, key: str, clears_box: bool) -> None:
    st.query_params[param] = st.session_state[key]
    if clears_box:  # the box's coordinates belong to the old map
        st.query_params.pop("box", None)


def _select(label: str, param: str, options: list[str], default: str, *, clears_box: bool,
            labels: dict[str, str] | None = None, help: str | None = None) -> str:
    """A selectbox that mirrors the URL parameter ``param`` and, when changed, rewrites it."""
    value = _from_url(param, options, default, label)
    key = f"map_{param}"
    st.session_state[key] = value  # the URL decides; the widget shows it
    st.selectbox(label, options, key=key, on_change=_to_url, args=(param, key, clears_box),
                 format_func=(labels or {}).get if labels else str, help=help)
    return value


def parse_box(raw: str | None) -> tuple[float, float, float, float] | None:
    """``X0,X1,Y0,Y1`` -> the box (ordered), or None; a malformed value is a ``ValueError``."""
    if raw is None or raw == "":
        return None
    parts = raw.split(",")
    if len(parts) != 4:
        raise ValueError("box must be four numbers X0,X1,Y0,Y1")
    x0, x1, y0, y1 = (float(p) for p in parts)
    if not all(np.isfinite([x0, x1, y0, y1])):
        raise ValueError("box must be four finite numbers")
    return min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)


def format_box(box: tuple[float, float, float, float]) -> str:
    return ",".join(f"{v:.6g}" for v in box)


def _event_box(event) -> tuple[float, float, float, float] | None:
    """The box a visitor drew on the chart, from Streamlit's selection event."""
    try:
        found = event["selection"][SELECTION]
        (x0, x1), (y0, y1) = found["x"], found["y"]
        return min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
    except (KeyError, TypeError, ValueError):
        return None


# -- data ------------------------------------------------------------------------------------------
@st.cache_data(show_spinner="Projecting the embeddings…", max_entries=8)
def map_frame(gallery: str, clip: str, labeller: str | None, roles: tuple[str, ...], projection: str,
              state: tuple) -> tuple[pd.DataFrame, tuple[float, float] | None]:
    """The map's points (x, y and what they can be coloured by) and PCA's explained shares,
    cached per gallery ``state`` (its fingerprint and the CLIP's embedding count and last write)."""
    points = queries.embedding_points(gallery, clip, labeller, roles)
    vectors = np.stack(points["vector"].to_numpy()) if len(points) else np.zeros((0, 1), np.float32)
    found = project(vectors, projection)
    frame = points.drop(columns=["vector"]).assign(
        x=found.points[:, 0], y=found.points[:, 1],
        label=points["predicted"].fillna(UNLABELLED),
        prompt=[common.prompt_label(k, p) for k, p in zip(points["kind"], points["prompt"], strict=True)],
    )
    return frame, found.explained


def _chart(frame: pd.DataFrame, colour: str, box):
    import altair as alt

    value = {"x": [box[0], box[1]], "y": [box[2], box[3]]} if box else alt.Undefined
    selection = alt.selection_interval(name=SELECTION, encodings=["x", "y"], value=value)
    shown = frame[["artwork_id", "x", "y", "label", "generator", "prompt", "role"]]
    return (
        alt.Chart(shown)
        .mark_circle(size=30, opacity=0.75)
        .encode(
            x=alt.X("x:Q", title="component 1", scale=alt.Scale(zero=False)),
            y=alt.Y("y:Q", title="component 2", scale=alt.Scale(zero=False)),
            color=alt.condition(
                selection,
                alt.Color(f"{colour}:N", title=COLOURS[colour], scale=alt.Scale(scheme="tableau10")),
                alt.value("#d0d0d0"),
            ),
            tooltip=["generator", "prompt", "label", "role", "artwork_id"],
        )
        .add_params(selection)
        .properties(height=520)
    )


# -- the selection ---------------------------------------------------------------------------------
def _mix(inside: pd.DataFrame, column: str, title: str) -> None:
    counts = inside[column].value_counts().rename_axis(title).reset_index(name="count")
    counts["share"] = counts["count"] / counts["count"].sum()
    st.dataframe(counts, hide_index=True, width="stretch",
                 column_config={"share": st.column_config.NumberColumn(format="%.2f")})


def _selection(gallery: Path, frame: pd.DataFrame, box, drawn) -> None:
    x0, x1, y0, y1 = box
    inside = frame[frame["x"].between(x0, x1) & frame["y"].between(y0, y1)]
    st.subheader(f"Selection: {len(inside)} of {len(frame)} artworks")
    if st.button("Clear the selection", key="map_clear"):
        st.query_params.pop("box", None)
        st.session_state["map_dismissed"] = drawn  # the chart may still report the old box
        st.rerun()
    if inside.empty:
        st.info("No artwork lies inside this box: draw another one on the map.")
        return
    by_class, by_generator, by_prompt = st.columns(3)
    with by_class:
        st.markdown("**Class mix**")
        _mix(inside, "label", "class")
    with by_generator:
        st.markdown("**Generators**")
        _mix(inside, "generator", "generator")
    with by_prompt:
        st.markdown("**Prompts**")
        _mix(inside, "prompt", "prompt")
    # A spread over the selection (it is ordered by artwork id), not its first few.
    picks = inside.iloc[np.unique(np.linspace(0, len(inside) - 1, min(THUMBNAILS, len(inside))).astype(int))]
    st.caption(f"{len(picks)} of its {len(inside)} artworks:")
    for start in range(0, len(picks), COLUMNS):
        for column, row in zip(st.columns(COLUMNS), picks.iloc[start:start + COLUMNS].itertuples(), strict=False):
            with column:
                common.show_image(gallery, row.image_path)
                st.caption(f"{common.escape(row.generator)} · {common.escape(row.label)}")
                if st.button("Open", key=f"map_open_{row.artwork_id}"):
                    common.goto("artwork", id=row.artwork_id)


# -- the page --------------------------------------------------------------------------------------
def _clip_caption(model: pd.Series, total: int) -> str:
    identity = json.loads(model["identity_json"]) if isinstance(model["identity_json"], str) else {}
    hashes = identity.get("weights_sha256") or {}
    weights = f", weights sha256 {next(iter(hashes.values()))[:12]}…" if hashes else ""
    return (f"Embeddings by CLIP {common.escape(model['clip'], 120)} ({int(model['dim'])} dimensions{weights}) "
            f"for {int(model['n'])} of the gallery's {total} artworks.")


def render(gallery: Path, fingerprint: tuple) -> None:
    options = common.options(str(gallery), fingerprint)
    st.title("Embedding map")
    models = queries.embedding_models(gallery)
    models = models[models["n"] > 0]
    if models.empty:
        st.info("This gallery has no CLIP embeddings yet. Compute them with "
                f"`artbias gallery embed --gallery {common.escape(gallery, 200)}` and refresh this page.")
        return
    clips = models["clip"].tolist()
    projections = [p for p in PROJECTIONS if p == "pca" or umap_available()]
    left, middle, right, far = st.columns(4)
    with left:
        colour = _select("Colour by", "color", list(COLOURS), "label", clears_box=False, labels=COLOURS)
    with middle:
        wanted = st.query_params.get("projection")
        projection = _select("Projection", "projection", projections, "pca", clears_box=True,
                             labels={"pca": "PCA", "umap": "UMAP"})
    with right:
        roles = _select("Artworks", "roles", list(ROLE_CHOICES), "counted", clears_box=True, labels=ROLE_CHOICES,
                        help="chosen + baseline: each search's answer and the unguided samples, what the "
                             "statistics count; every artwork adds the searches' runners-up")
    with far:
        clip = _select("CLIP", "clip", clips, clips[0], clears_box=True)
    if wanted == "umap" and not umap_available():
        st.info("UMAP needs umap-learn (`pip install umap-learn`); showing PCA.")
    model = models[models["clip"] == clip].iloc[0]
    st.caption(_clip_caption(model, options.counts.get("artworks", 0)))

    labeller = common.default_labeller(options)
    state = (fingerprint, int(model["n"]), str(model["last"]))
    chosen_roles = queries.COUNTED_ROLES if roles == "counted" else ()
    frame, explained = map_frame(str(gallery), clip, labeller, tuple(chosen_roles), projection, state)
    if frame.empty:
        st.info("None of these artworks has an embedding by this CLIP yet; choose “every artwork” or run "
                "`artbias gallery embed` again.")
        return
    how = (f"PCA: the two components explain {100 * explained[0]:.0f}% and {100 * explained[1]:.0f}% of the "
           "variance" if explained else "UMAP (cosine, seed 0): neighbourhoods mean something, distances "
           "between far clusters little")
    label_note = f"; classes by {common.escape(labeller)}" if labeller else ""
    st.caption(f"{len(frame)} artworks · {how}{label_note}. Drag a box on the map to look inside it.")

    try:
        url_box = parse_box(st.query_params.get("box"))
    except ValueError as error:
        st.warning(f"Ignoring the address's box: {common.escape(error, 200)}.")
        url_box = None
    event = st.altair_chart(_chart(frame, colour, url_box), on_select="rerun", selection_mode=SELECTION,
                            key="map_chart", width="stretch")
    drawn = _event_box(event)
    if drawn is not None and drawn == st.session_state.get("map_dismissed"):
        drawn = None
    if drawn is not None and drawn != url_box:
        st.query_params["box"] = format_box(drawn)  # the selection is part of the permalink
    box = drawn or url_box
    if box is None:
        st.caption("No selection yet.")
        return
    _selection(gallery, frame, box, drawn)
