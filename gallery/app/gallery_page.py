"""Gallery page: a filterable, sortable, paginated grid of artworks, its whole view in the URL.

``?page=gallery&generator=gen-a&class=sea&p=2`` opens that view; every filter, the sort, the
page size and the page number are query parameters (``PARAMETERS``), read by the widgets when
the page opens and written back when they change. The artwork page reads the same parameters to
walk the same grid (previous / next).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from gallery.app import common, url_state
from gallery.store import queries

COLUMNS = 4
PAGE_SIZES = (12, 24, 48)
NOBODY = "(nobody)"  # the disagreement filter switched off
# Sorts in the URL by a short name (queries.SORTS' keys are for people).
SORT_NAMES = {
    "similarity": "best CLIP similarity first",
    "similarity-asc": "lowest CLIP similarity first",
    "realism": "most realistic first",
    "newest": "newest first",
    "generator": "generator, prompt, seed",
}
# widget key -> its query parameter (docs/workbench.md lists them)
PARAMETERS = {
    "f_generators": "generator",
    "f_prompts": "prompt",
    "f_labeller": "labeller",
    "f_classes": "class",
    "f_disagree": "disagree",
    "f_confidence": "confidence",
    "f_roles": "role",
    "f_kinds": "kind",
    "f_similarity": "similarity",
    "f_sort": "sort",
    "f_page_size": "per",
    "f_page": "p",
}


@st.cache_data(show_spinner=False, max_entries=16)
def label_classes(gallery: str, fingerprint: tuple) -> dict[str, list[str]]:
    return queries.label_classes(gallery)


@st.cache_data(show_spinner=False, max_entries=16)
def control_prompts(gallery: str, fingerprint: tuple) -> tuple[str, ...]:
    return tuple(sorted({c for controls in queries.prompt_controls(gallery).values() for c in controls}))


def _sort_names() -> dict[str, str]:
    """``SORT_NAMES`` and a made-up short name for any sort it does not know."""
    names = {k: v for k, v in SORT_NAMES.items() if v in queries.SORTS}
    known = set(names.values())
    for sort in queries.SORTS:
        if sort not in known:
            names["-".join(sort.replace(",", " ").split())] = sort
    return names


@dataclass(frozen=True)
class Context:
    """What the parameters are checked against: the gallery's options and labellers' classes."""

    options: queries.Options
    classes_of: dict[str, list[str]]
    controls: tuple[str, ...]

    @classmethod
    def of(cls, gallery: Path, fingerprint: tuple) -> Context:
        return cls(common.options(str(gallery), fingerprint), label_classes(str(gallery), fingerprint),
                   control_prompts(str(gallery), fingerprint))

    def classes(self, labeller: str | None) -> list[str]:
        return self.classes_of.get(labeller, self.options.classes) if labeller else self.options.classes

    def rivals(self, labeller: str | None) -> list[str]:
        """Labellers that could disagree with ``labeller``: the others with the same classes."""
        classes = self.classes(labeller)
        return [n for n in self.options.labellers if n != labeller and self.classes_of.get(n) == classes]

    def similarity_range(self) -> tuple[float, float] | None:
        found = self.options.similarity
        return found if found is not None and found[1] > found[0] else None

    def params(self, labeller: str | None = None) -> dict[str, url_state.Param]:
        """Every parameter of the page; those that depend on the labeller for ``labeller``."""
        options, names = self.options, PARAMETERS
        default_labeller = common.default_labeller(options) if options.labellers else None
        sorts = _sort_names()
        params = {
            "f_generators": url_state.choices(names["f_generators"], options.generators),
            "f_prompts": url_state.choices(names["f_prompts"], options.prompts),
            "f_labeller": url_state.choice(names["f_labeller"], options.labellers, default_labeller),
            "f_classes": url_state.choices(names["f_classes"], self.classes(labeller)),
            "f_disagree": url_state.choice(names["f_disagree"], [NOBODY, *self.rivals(labeller)], NOBODY),
            "f_confidence": url_state.number_range(names["f_confidence"], 0.0, 1.0),
            "f_roles": url_state.choices(names["f_roles"], queries.ROLES, default=["chosen"]),
            "f_kinds": url_state.choices(names["f_kinds"], queries.KINDS),
            "f_sort": url_state.labelled_choice(names["f_sort"], sorts, next(iter(queries.SORTS))),
            "f_page_size": url_state.choice(names["f_page_size"], PAGE_SIZES, PAGE_SIZES[0]),
            "f_page": url_state.integer(names["f_page"], 1),
        }
        if self.similarity_range() is not None:
            params["f_similarity"] = url_state.number_range(names["f_similarity"], *self.similarity_range())
        return params


@dataclass(frozen=True)
class View:
    """The grid a URL asks for: filter, sort, page size and page number."""

    filters: queries.WorkbenchFilter
    sort: str
    page_size: int
    page: int


def _view(context: Context, values: dict) -> View:
    params = context.params(values.get("f_labeller"))
    similarity = values.get("f_similarity")
    confidence = values["f_confidence"]
    filters = queries.WorkbenchFilter(
        generators=tuple(values["f_generators"]),
        prompts=tuple(values["f_prompts"]),
        classes=tuple(values["f_classes"]),
        roles=tuple(values["f_roles"]),
        # narrowed only: at the full range, artworks without a similarity (baselines) stay
        similarity=None if similarity is None or similarity == params["f_similarity"].default else similarity,
        labeller=values["f_labeller"],
        disagree_with=None if values["f_disagree"] == NOBODY else values["f_disagree"],
        confidence=None if confidence == (0.0, 1.0) else confidence,
        kinds=tuple(values["f_kinds"]),
        control_prompts=context.controls,
    )
    return View(filters, values["f_sort"], int(values["f_page_size"]), int(values["f_page"]))


def view_from_url(gallery: Path, fingerprint: tuple) -> View:
    """The grid the current URL's parameters describe (what the artwork page walks)."""
    context = Context.of(gallery, fingerprint)
    labeller = context.params()["f_labeller"].read()
    return _view(context, {key: param.read() for key, param in context.params(labeller).items()})


def carried() -> dict[str, list[str]]:
    """The grid's parameters now in the URL: what an artwork link carries along."""
    return url_state.current(skip=("page", "id"))


def _filters(context: Context) -> dict:
    """The sidebar's widgets, each bound to its URL parameter -> their values."""
    options = context.options
    values = {}
    with st.sidebar:
        st.markdown("**Filters**")
        params = context.params()
        values["f_generators"] = url_state.widget(
            "f_generators", params["f_generators"], st.multiselect, "Generator", options.generators)
        values["f_prompts"] = url_state.widget(
            "f_prompts", params["f_prompts"], st.multiselect, "Prompt", options.prompts)
        values["f_labeller"] = None
        if options.labellers:
            values["f_labeller"] = url_state.widget(
                "f_labeller", params["f_labeller"], st.selectbox, "Labeller", options.labellers)
        params = context.params(values["f_labeller"])
        values["f_classes"] = url_state.widget(
            "f_classes", params["f_classes"], st.multiselect, "Predicted class", context.classes(values["f_labeller"]))
        values["f_disagree"] = url_state.widget(
            "f_disagree", params["f_disagree"], st.selectbox, "Labellers disagree",
            [NOBODY, *context.rivals(values["f_labeller"])],
            help="Only artworks this second labeller put in another class than the labeller above did",
        )
        values["f_confidence"] = url_state.widget(
            "f_confidence", params["f_confidence"], st.slider, "Labeller confidence",
            min_value=0.0, max_value=1.0, step=0.01, format="%.2f",
            help="The labeller's probability for the class it chose; narrowing it leaves out unlabelled artworks",
        )
        values["f_roles"] = url_state.widget(
            "f_roles", params["f_roles"], st.multiselect, "Role", queries.ROLES,
            help="chosen: each search's answer; top/pareto: its runners-up and Pareto-front "
            "members; baseline: unguided samples",
        )
        values["f_kinds"] = url_state.widget(
            "f_kinds", params["f_kinds"], st.multiselect, "Kind of run", queries.KINDS,
            help="searched: a prompt searched for itself; control: a prompt run as another prompt's "
            "control (same seeds); baseline: unguided samples (their role is 'baseline')",
        )
        if "f_similarity" in params:
            lo, hi = context.similarity_range()
            values["f_similarity"] = url_state.widget(
                "f_similarity", params["f_similarity"], st.slider, "CLIP similarity",
                min_value=float(lo), max_value=float(hi), step=max((hi - lo) / 100, 1e-4), format="%.3f",
            )
        sorts = list(queries.SORTS)
        values["f_sort"] = url_state.widget("f_sort", params["f_sort"], st.selectbox, "Sort", sorts)
        values["f_page_size"] = url_state.widget(
            "f_page_size", params["f_page_size"], st.selectbox, "Per page", PAGE_SIZES)
    url_state.bind("f_page", params["f_page"])  # drawn under the grid, read now
    values["f_page"] = st.session_state["f_page"]
    return values


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
        common.goto("artwork", id=row.artwork_id, **carried())


def render(gallery: Path, fingerprint: tuple) -> None:
    context = Context.of(gallery, fingerprint)
    options = context.options
    st.title("Gallery")
    values = _filters(context)
    view = _view(context, values)
    # a changed filter, sort or page size starts again at page 1
    signature = (view.filters, view.sort, view.page_size)
    previous = st.session_state.get("_gallery_view")
    st.session_state["_gallery_view"] = signature
    total = queries.count_artworks(gallery, view.filters)
    pages = max(1, math.ceil(total / view.page_size))
    page_number = 1 if previous is not None and previous != signature else min(view.page, pages)
    st.session_state["f_page"] = page_number
    st.caption(
        f"{total} of {options.counts.get('artworks', 0)} artworks match · page {page_number} of {pages}"
    )
    if total == 0:
        empty = not options.counts.get("artworks")
        hint = ""
        if "baseline" in view.filters.kinds and "baseline" not in view.filters.roles and view.filters.roles:
            hint = " Unguided samples have the role 'baseline': add it to Role."
        st.info("The gallery has no artworks yet." if empty else "No artwork matches these filters." + hint)
        url_state.write("f_page", context.params()["f_page"], page_number)
        return
    artworks = queries.grid_page(
        gallery, view.filters, sort=view.sort, limit=view.page_size, offset=(page_number - 1) * view.page_size
    )
    for start in range(0, len(artworks), COLUMNS):
        for column, row in zip(
            st.columns(COLUMNS), artworks.iloc[start : start + COLUMNS].itertuples(), strict=False
        ):
            with column:
                _card(gallery, row, view.filters.labeller is not None)
    page_number = st.number_input("Page", min_value=1, max_value=pages, step=1, key="f_page")
    url_state.write("f_page", context.params()["f_page"], page_number)
