"""What the app and the bias report read from a gallery: parameterised SQL, no Streamlit.

Every function opens read-only connections through ``read`` (``Store.read``, which waits out
a campaign's write lock), so readers never hold the file and never write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gallery.store.database import GalleryError, Store


def read(gallery: str | Path, sql: str, params: Sequence | None = None) -> pd.DataFrame:
    """One read-only query against the gallery; ``Store.read`` waits out a writer's lock.

    A gallery whose tables do not exist yet (a campaign is just starting) is a
    ``GalleryError`` with a plain message rather than a DuckDB catalog error.
    """
    import duckdb

    try:
        return Store(gallery).read(sql, list(params or []))
    except duckdb.CatalogException as error:
        raise GalleryError(f"{gallery} is not a complete artbias gallery yet ({error})") from error


_LABELLERS_SQL = """
    SELECT lb.labeller, lb.classes_json, lb.confusion_json, lb.identity_json,
           count(l.artwork_id) AS labelled
    FROM labellers lb LEFT JOIN labels l ON l.labeller = lb.labeller
    GROUP BY ALL ORDER BY labelled DESC, lb.labeller
"""


def labellers(gallery: str | Path) -> pd.DataFrame:
    """Labellers that labelled something in the gallery, with classes and confusion matrix."""
    return read(gallery, _LABELLERS_SQL)


# The artworks the statistics count: one chosen artwork per finished search run (its 'top' and
# 'pareto' siblings come from the same run and are not independent), and every unguided
# baseline sample. Baseline rows get prompt NULL.
_LABELLED_COLUMNS = """
    a.artwork_id, r.generator,
    CASE WHEN r.kind = 'baseline' THEN NULL ELSE r.prompt END AS prompt,
    r.kind, a.role, l.predicted, l.confidence, r.seed, r.modifier, r.algorithm,
    coalesce(r.replicate, 0) AS replicate, r.clip
"""
_LABELLED_FROM = """
    FROM artworks a
    JOIN runs r ON r.run_id = a.run_id
    JOIN labels l ON l.artwork_id = a.artwork_id
    WHERE r.status = 'done'
      AND ((r.kind = 'search' AND a.role = 'chosen') OR (r.kind = 'baseline' AND a.role = 'baseline'))
"""
_LABELLED_SQL = f"""
    SELECT {_LABELLED_COLUMNS} {_LABELLED_FROM} AND l.labeller = ?
    ORDER BY r.generator, prompt, a.artwork_id
"""
# Every labeller's: the same rows, labeller by labeller, each in ``_LABELLED_SQL``'s order.
_EVERY_LABELLED_SQL = f"""
    SELECT l.labeller AS _labeller, {_LABELLED_COLUMNS} {_LABELLED_FROM}
    ORDER BY _labeller, r.generator, prompt, a.artwork_id
"""
_CAMPAIGN_CONFIGS_SQL = "SELECT config_json FROM campaigns ORDER BY created_at"
_SEARCH_CLIPS_SQL = "SELECT DISTINCT clip FROM runs WHERE kind = 'search' AND clip IS NOT NULL"


def _controls_of(configs: pd.Series) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for text in configs:
        config = json.loads(text) if isinstance(text, str) and text else {}
        for prompt in config.get("prompts", []):
            if isinstance(prompt, dict) and prompt.get("controls"):
                known = found.setdefault(prompt["text"], [])
                known += [c for c in prompt["controls"] if c not in known]
    return found


def prompt_controls(gallery: str | Path) -> dict[str, list[str]]:
    """Prompt -> its control prompts, from every campaign's recorded configuration."""
    return _controls_of(read(gallery, _CAMPAIGN_CONFIGS_SQL)["config_json"])


def search_clips(gallery: str | Path) -> set[str]:
    """The CLIP models that steered the gallery's searches."""
    return set(read(gallery, _SEARCH_CLIPS_SQL)["clip"])


def search_outcomes(gallery: str | Path, generator: str) -> pd.DataFrame:
    """Status and error of every search run of a generator, oldest first."""
    return read(gallery, "SELECT status, error FROM runs WHERE kind = 'search' AND generator = ? "
                         "ORDER BY started_at, run_id", [generator])


def labelled_artworks(gallery: str | Path, labeller: str) -> pd.DataFrame:
    """The artworks the statistics count, with ``labeller``'s label."""
    return read(gallery, _LABELLED_SQL, [labeller])


@dataclass(frozen=True)
class ReportReads:
    """What the bias report reads, all from one state of the gallery: ``labellers``,
    ``search_clips`` and ``prompt_controls`` as those functions give them, and ``labelled``:
    labeller -> ``labelled_artworks(gallery, labeller)`` (the same columns, types, order and a
    fresh index) for every labeller with a counted artwork."""

    labellers: pd.DataFrame
    search_clips: set[str]
    prompt_controls: dict[str, list[str]]
    labelled: dict[str, pd.DataFrame]


def report_reads(gallery: str | Path) -> ReportReads:
    """``ReportReads`` in one read transaction on one connection (``Store.snapshot``): no
    campaign commits between its parts, and one connection instead of one per query."""
    import duckdb

    try:
        found = Store(gallery).snapshot({"labellers": _LABELLERS_SQL, "clips": _SEARCH_CLIPS_SQL,
                                         "campaigns": _CAMPAIGN_CONFIGS_SQL, "labelled": _EVERY_LABELLED_SQL})
    except duckdb.CatalogException as error:
        raise GalleryError(f"{gallery} is not a complete artbias gallery yet ({error})") from error
    labelled = {name: rows.drop(columns="_labeller").reset_index(drop=True)
                for name, rows in found["labelled"].groupby("_labeller", sort=False)}
    return ReportReads(found["labellers"], set(found["clips"]["clip"]),
                       _controls_of(found["campaigns"]["config_json"]), labelled)


def counted_artworks(gallery: str | Path) -> pd.DataFrame:
    """The artworks the statistics count (no labels): id, generator, prompt (NULL for
    baselines), kind, seed and image path, for drawing annotation samples."""
    return read(
        gallery,
        """
        SELECT a.artwork_id, r.generator,
               CASE WHEN r.kind = 'baseline' THEN NULL ELSE r.prompt END AS prompt,
               r.kind, r.seed, a.image_path
        FROM artworks a JOIN runs r ON r.run_id = a.run_id
        WHERE r.status = 'done'
          AND ((r.kind = 'search' AND a.role = 'chosen') OR (r.kind = 'baseline' AND a.role = 'baseline'))
        ORDER BY r.generator, prompt, a.artwork_id
        """,
    )


def artwork_generators(gallery: str | Path, artwork_ids: Sequence[str]) -> pd.DataFrame:
    """artwork_id and generator of those of ``artwork_ids`` the gallery holds."""
    if not artwork_ids:
        return pd.DataFrame(columns=["artwork_id", "generator"])
    return read(
        gallery,
        "SELECT a.artwork_id, r.generator FROM artworks a JOIN runs r ON r.run_id = a.run_id"
        " WHERE a.artwork_id IN (SELECT unnest(?::VARCHAR[]))",
        [list(artwork_ids)],
    )

BASELINE_LABEL = "(unguided baseline)"

# Sort choices shown to visitors -> ORDER BY clauses (fixed strings: never built from input).
SORTS: dict[str, str] = {
    "best CLIP similarity first": "a.similarity DESC NULLS LAST, a.artwork_id",
    "lowest CLIP similarity first": "a.similarity ASC NULLS LAST, a.artwork_id",
    "most realistic first": "a.realism DESC NULLS LAST, a.artwork_id",
    "newest first": "a.created_at DESC, a.artwork_id",
    "generator, prompt, seed": "r.generator, r.prompt NULLS LAST, r.seed, a.rank",
}
ROLES = ("chosen", "top", "pareto", "baseline")


@dataclass(frozen=True)
class ArtworkFilter:
    """A visitor's filters on the gallery grid; empty tuples mean "any"."""

    generators: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()  # BASELINE_LABEL selects the unguided samples
    classes: tuple[str, ...] = ()  # predicted by ``labeller``
    roles: tuple[str, ...] = ("chosen",)
    similarity: tuple[float, float] | None = None  # inclusive; excludes artworks without one
    labeller: str | None = None

    def where(self) -> tuple[str, list]:
        clauses, params = ["r.status = 'done'"], []
        if self.generators:
            clauses.append(f"r.generator IN ({', '.join('?' * len(self.generators))})")
            params += list(self.generators)
        if self.prompts:
            named = [p for p in self.prompts if p != BASELINE_LABEL]
            options = []
            if named:
                options.append(
                    f"(r.kind = 'search' AND r.prompt IN ({', '.join('?' * len(named))}))"
                )
                params += named
            if BASELINE_LABEL in self.prompts:
                options.append("r.kind = 'baseline'")
            clauses.append("(" + " OR ".join(options) + ")")
        if self.roles:
            clauses.append(f"a.role IN ({', '.join('?' * len(self.roles))})")
            params += list(self.roles)
        if self.classes:
            clauses.append(f"l.predicted IN ({', '.join('?' * len(self.classes))})")
            params += list(self.classes)
        if self.similarity is not None:
            clauses.append("a.similarity BETWEEN ? AND ?")
            params += [float(self.similarity[0]), float(self.similarity[1])]
        return "WHERE " + " AND ".join(clauses), params


def fingerprint(gallery: str | Path) -> tuple:
    """Changes whenever a campaign adds something: the app's cache key for derived results."""
    row = read(
        gallery,
        "SELECT (SELECT count(*) FROM runs) AS runs, (SELECT count(*) FROM artworks) AS artworks,"
        " (SELECT count(*) FROM labels) AS labels, (SELECT max(finished_at) FROM runs) AS last",
    ).iloc[0]
    return (int(row["runs"]), int(row["artworks"]), int(row["labels"]), str(row["last"]))


@dataclass(frozen=True)
class Options:
    """Values the filters offer, read from the gallery."""

    generators: list[str]
    prompts: list[str]  # base prompts, then BASELINE_LABEL when there are baselines
    labellers: list[str]
    classes: list[str]
    similarity: tuple[float, float] | None
    counts: dict[str, int] = field(default_factory=dict)


def options(gallery: str | Path) -> Options:
    """The filters' values, from one read transaction (one connection, one gallery state)."""
    import duckdb

    try:
        found = Store(gallery).snapshot({
            "runs": "SELECT r.generator, r.kind, r.prompt, count(a.artwork_id) AS n,"
                    " min(a.similarity) AS lo, max(a.similarity) AS hi"
                    " FROM runs r JOIN artworks a ON a.run_id = r.run_id WHERE r.status = 'done' GROUP BY ALL",
            "labellers": "SELECT labeller, classes_json FROM labellers ORDER BY labeller",
        })
    except duckdb.CatalogException as error:
        raise GalleryError(f"{gallery} is not a complete artbias gallery yet ({error})") from error
    runs, labellers = found["runs"], found["labellers"]
    classes = json.loads(labellers["classes_json"].iloc[0]) if len(labellers) else []
    prompts = sorted(runs.loc[runs["kind"] == "search", "prompt"].dropna().unique())
    if (runs["kind"] == "baseline").any():
        prompts.append(BASELINE_LABEL)
    lo, hi = runs["lo"].min(), runs["hi"].max()
    similarity = None if pd.isna(lo) else (float(lo), float(hi))
    return Options(
        generators=sorted(runs["generator"].unique()),
        prompts=prompts,
        labellers=labellers["labeller"].tolist(),
        classes=classes,
        similarity=similarity,
        counts={"artworks": int(runs["n"].sum()), "runs": len(runs)},
    )


_GRID_COLUMNS = (
    "a.artwork_id, a.run_id, a.role, a.rank, a.image_path, a.similarity, a.realism, a.created_at,"
    " r.kind, r.generator, r.prompt, r.modifier, r.full_prompt, r.seed, r.algorithm,"
    " l.predicted, l.confidence"
)


_SOURCE = (
    "FROM artworks a JOIN runs r ON r.run_id = a.run_id"
    " LEFT JOIN labels l ON l.artwork_id = a.artwork_id AND l.labeller = ?"
)


def count_artworks(gallery: str | Path, filters: ArtworkFilter) -> int:
    where, params = filters.where()
    found = read(gallery, f"SELECT count(*) AS n {_SOURCE} {where}", [filters.labeller, *params])
    return int(found["n"].iloc[0])


def find_artworks(
    gallery: str | Path, filters: ArtworkFilter, *, sort: str, limit: int, offset: int = 0
) -> pd.DataFrame:
    """One page of the artworks matching ``filters``, in the ``sort`` order."""
    where, params = filters.where()
    order = SORTS.get(sort, next(iter(SORTS.values())))
    return read(
        gallery,
        f"SELECT {_GRID_COLUMNS} {_SOURCE} {where} ORDER BY {order} LIMIT ? OFFSET ?",
        [filters.labeller, *params, int(limit), int(offset)],
    )


def artwork(gallery: str | Path, artwork_id: str) -> pd.Series | None:
    """One artwork with everything about its run, or None when there is no such artwork."""
    found = read(
        gallery,
        "SELECT a.*, r.kind, r.generator, r.prompt, r.modifier, r.full_prompt, r.seed,"
        " r.algorithm, r.settings_json, r.clip, r.generator_identity_json, r.evaluations,"
        " r.history_json, r.duration_s, r.finished_at, r.status"
        " FROM artworks a JOIN runs r ON r.run_id = a.run_id WHERE a.artwork_id = ?",
        [artwork_id],
    )
    return None if found.empty else found.iloc[0]


def _rows_of(gallery: str | Path, table: str, columns: str, key: str, value: str, order: str) -> pd.DataFrame:
    # table, columns, key and order are this module's own constants, never user input
    return read(gallery, f"SELECT {columns} FROM {table} WHERE {key} = ? ORDER BY {order}", [value])


def labels_of(gallery: str | Path, artwork_id: str) -> pd.DataFrame:
    """Every label of one artwork, one row per labeller."""
    return _rows_of(gallery, "labels", "labeller, predicted, confidence, probabilities_json", "artwork_id",
                    artwork_id, "labeller")


def siblings(gallery: str | Path, run_id: str) -> pd.DataFrame:
    """Every artwork of a run (the chosen one, runners-up, Pareto-front members)."""
    return _rows_of(gallery, "artworks", "artwork_id, role, rank, image_path, similarity, realism", "run_id",
                    run_id, "rank")


def probabilities_frame(labels: pd.DataFrame) -> pd.DataFrame:
    """Long frame (labeller, class, probability) from the labels' JSON probabilities."""
    records = []
    for row in labels.itertuples():
        for name, p in json.loads(row.probabilities_json or "{}").items():
            records.append({"labeller": row.labeller, "class": name, "probability": float(p)})
    return pd.DataFrame.from_records(records, columns=["labeller", "class", "probability"])


def history_frame(history_json: str | None) -> pd.DataFrame:
    """The search's best similarity per generation as (generation, best similarity)."""
    values = json.loads(history_json) if isinstance(history_json, str) and history_json else []
    if values and isinstance(values[0], dict):  # tolerate [{"generation":..., "best":...}, ...]
        values = [v.get("best", v.get("similarity")) for v in values]
    return pd.DataFrame({"generation": range(1, len(values) + 1), "best similarity": values})


def slideshow(
    gallery: str | Path, generators: tuple[str, ...] = (), prompts: tuple[str, ...] = ()
) -> pd.DataFrame:
    """The chosen artworks for the exhibition, best similarity first."""
    return find_artworks(
        gallery,
        ArtworkFilter(generators=generators, prompts=prompts, roles=("chosen",)),
        sort="best CLIP similarity first",
        limit=500,
    )


# -- CLIP image embeddings: the embedding map and "more like this" ---------------------------------
# An embedding counts while it matches its artwork's current image (a replaced run's new image
# is embedded again; ``artbias gallery embed`` prunes the rest).
_CURRENT_EMBEDDING = (
    "JOIN artworks a ON a.artwork_id = e.artwork_id AND a.image_sha256 IS NOT DISTINCT FROM e.image_sha256"
)
# The artworks the statistics count: each search's chosen one and every baseline sample.
COUNTED_ROLES = ("chosen", "baseline")


def embedding_models(gallery: str | Path) -> pd.DataFrame:
    """Each CLIP that embedded artworks here: clip, dim, identity_json, n (current embeddings of
    finished runs' artworks) and last (the newest write), the CLIP with most embeddings first."""
    return read(
        gallery,
        f"""
        SELECT m.clip, m.dim, m.identity_json, count(r.run_id) AS n, max(e.created_at) AS last
        FROM embedding_models m
        LEFT JOIN (embeddings e {_CURRENT_EMBEDDING} JOIN runs r ON r.run_id = a.run_id AND r.status = 'done')
               ON e.clip = m.clip
        GROUP BY ALL ORDER BY n DESC, m.clip
        """,
    )


def finished_artwork_count(gallery: str | Path) -> int:
    """How many artworks the gallery's finished runs hold (every one can be embedded)."""
    found = read(gallery, "SELECT count(*) AS n FROM artworks a JOIN runs r ON r.run_id = a.run_id"
                          " WHERE r.status = 'done'")
    return int(found["n"].iloc[0])


def artworks_to_embed(gallery: str | Path, clip: str) -> pd.DataFrame:
    """Artworks of finished runs without a current embedding by ``clip``: artwork_id,
    image_sha256, image_path (``artbias gallery embed`` fills exactly these)."""
    return read(
        gallery,
        "SELECT a.artwork_id, a.image_sha256, a.image_path FROM artworks a JOIN runs r ON r.run_id = a.run_id"
        " WHERE r.status = 'done' AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.artwork_id = a.artwork_id"
        " AND e.clip = ? AND e.image_sha256 IS NOT DISTINCT FROM a.image_sha256)"
        " ORDER BY a.artwork_id",
        [clip],
    )


def embedding_points(
    gallery: str | Path, clip: str, labeller: str | None, roles: Sequence[str] = COUNTED_ROLES
) -> pd.DataFrame:
    """Every finished run's artwork (of ``roles``; all when empty) that ``clip`` embedded, with
    its generator, kind, prompt, role, image, ``labeller``'s predicted class and the vector."""
    role_clause = f" AND a.role IN ({', '.join('?' * len(roles))})" if roles else ""
    # Two reads, merged here: a join that carries the vectors costs twice their plain scan.
    described = read(
        gallery,
        "SELECT a.artwork_id, a.image_sha256, a.run_id, a.role, a.image_path, r.generator, r.kind, r.prompt,"
        " l.predicted FROM artworks a JOIN runs r ON r.run_id = a.run_id"
        " LEFT JOIN labels l ON l.artwork_id = a.artwork_id AND l.labeller = ?"
        f" WHERE r.status = 'done'{role_clause}",
        [labeller, *roles],
    )
    vectors = read(gallery, "SELECT artwork_id, image_sha256, vector FROM embeddings WHERE clip = ?", [clip])
    merged = described.merge(vectors, on="artwork_id", suffixes=("", "_embedded"))
    current = merged["image_sha256"].fillna("") == merged["image_sha256_embedded"].fillna("")
    return (merged[current].drop(columns=["image_sha256", "image_sha256_embedded"])
            .sort_values("artwork_id").reset_index(drop=True))


def artwork_embedding_clips(gallery: str | Path, artwork_id: str) -> list[str]:
    """The CLIPs holding a current embedding of one artwork, the one with most embeddings first."""
    found = read(
        gallery,
        f"SELECT e.clip FROM embeddings e {_CURRENT_EMBEDDING}"
        " LEFT JOIN (SELECT clip, count(*) AS n FROM embeddings GROUP BY clip) c ON c.clip = e.clip"
        " WHERE e.artwork_id = ? ORDER BY c.n DESC, e.clip",
        [artwork_id],
    )
    return found["clip"].tolist()


def similar_artworks(
    gallery: str | Path, artwork_id: str, clip: str, k: int = 6, *, exclude_run: str | None = None
) -> pd.DataFrame:
    """The ``k`` artworks of finished runs nearest to one artwork by cosine similarity of their
    ``clip`` embeddings (itself, and ``exclude_run``'s artworks, left out): artwork_id, run_id,
    role, image_path, generator, kind, prompt, seed, cosine; nearest first. Empty when the
    artwork has no current embedding by ``clip``."""
    return read(
        gallery,
        f"""
        WITH query AS (SELECT e.vector FROM embeddings e {_CURRENT_EMBEDDING}
                       WHERE e.artwork_id = ? AND e.clip = ?),
        -- scored before the joins, so they never carry the vectors (3x faster at 10,000)
        scored AS (SELECT e.artwork_id, e.image_sha256, list_cosine_similarity(e.vector, q.vector) AS cosine
                   FROM embeddings e CROSS JOIN query q WHERE e.clip = ? AND e.artwork_id <> ?)
        SELECT a.artwork_id, a.run_id, a.role, a.image_path, r.generator, r.kind, r.prompt, r.seed, s.cosine
        FROM scored s
        JOIN artworks a ON a.artwork_id = s.artwork_id AND a.image_sha256 IS NOT DISTINCT FROM s.image_sha256
        JOIN runs r ON r.run_id = a.run_id
        WHERE r.status = 'done' AND a.run_id IS DISTINCT FROM ?
        ORDER BY s.cosine DESC, a.artwork_id LIMIT ?
        """,
        [artwork_id, clip, clip, artwork_id, exclude_run, int(k)],
    )


# -- the researcher's workbench: more filters, the grid in a stable order, neighbours ---------------
# What a run was for: a prompt searched for itself, one of its controls, or unguided samples.
KINDS = ("searched", "control", "baseline")


@dataclass(frozen=True)
class WorkbenchFilter(ArtworkFilter):
    """``ArtworkFilter`` and three more: labeller disagreement, confidence and the run's kind.

    ``disagree_with``: only artworks that ``labeller`` and this labeller both labelled, with
    different classes. ``confidence``: ``labeller``'s top-class probability, inclusive.
    ``kinds``: of ``KINDS``; a search run is a "control" when its prompt is one of
    ``control_prompts`` (``prompt_controls``), else "searched".
    """

    disagree_with: str | None = None
    confidence: tuple[float, float] | None = None
    kinds: tuple[str, ...] = ()
    control_prompts: tuple[str, ...] = ()

    def where(self) -> tuple[str, list]:
        where, params = super().where()
        clauses = []
        if self.disagree_with is not None:
            clauses.append(
                "l.predicted IS NOT NULL AND EXISTS (SELECT 1 FROM labels d WHERE d.artwork_id = a.artwork_id"
                " AND d.labeller = ? AND d.predicted IS DISTINCT FROM l.predicted)"
            )
            params.append(self.disagree_with)
        if self.confidence is not None:
            clauses.append("l.confidence BETWEEN ? AND ?")
            params += [float(self.confidence[0]), float(self.confidence[1])]
        if self.kinds:
            controls = list(self.control_prompts)
            marks = ", ".join("?" * len(controls))
            options = []
            if "searched" in self.kinds:
                options.append(f"(r.kind = 'search' AND r.prompt NOT IN ({marks}))" if controls
                               else "r.kind = 'search'")
                params += controls
            if "control" in self.kinds and controls:
                options.append(f"(r.kind = 'search' AND r.prompt IN ({marks}))")
                params += controls
            if "baseline" in self.kinds:
                options.append("r.kind = 'baseline'")
            clauses.append("(" + (" OR ".join(options) or "FALSE") + ")")
        return where + "".join(f" AND {c}" for c in clauses), params


def _stable_order(sort: str) -> str:
    # a fixed SORTS clause, then the id: ties never reorder between the grid and prev / next
    return SORTS.get(sort, next(iter(SORTS.values()))) + ", a.artwork_id"


def grid_page(
    gallery: str | Path, filters: ArtworkFilter, *, sort: str, limit: int, offset: int = 0
) -> pd.DataFrame:
    """One page of the grid (``find_artworks``' columns) in the order ``artwork_neighbours`` walks."""
    where, params = filters.where()
    return read(
        gallery,
        f"SELECT {_GRID_COLUMNS} {_SOURCE} {where} ORDER BY {_stable_order(sort)} LIMIT ? OFFSET ?",
        [filters.labeller, *params, int(limit), int(offset)],
    )


@dataclass(frozen=True)
class Neighbours:
    """Where one artwork sits in a filtered, sorted grid: 1-based position of total."""

    position: int
    total: int
    previous: str | None
    next: str | None


def artwork_neighbours(
    gallery: str | Path, filters: ArtworkFilter, *, sort: str, artwork_id: str
) -> Neighbours | None:
    """The artworks before and after ``artwork_id`` in the grid ``filters`` and ``sort`` make,
    or None when the artwork is not among them."""
    where, params = filters.where()
    order = _stable_order(sort)
    found = read(
        gallery,
        f"""
        SELECT position, total, previous, next FROM (
            SELECT a.artwork_id, row_number() OVER w AS position, count(*) OVER () AS total,
                   lag(a.artwork_id) OVER w AS previous, lead(a.artwork_id) OVER w AS next
            {_SOURCE} {where} WINDOW w AS (ORDER BY {order})
        ) WHERE artwork_id = ?
        """,
        [filters.labeller, *params, artwork_id],
    )
    if found.empty:
        return None
    row = found.iloc[0]
    return Neighbours(int(row["position"]), int(row["total"]),
                      None if pd.isna(row["previous"]) else str(row["previous"]),
                      None if pd.isna(row["next"]) else str(row["next"]))


def label_classes(gallery: str | Path) -> dict[str, list[str]]:
    """Labeller -> its classes, in its own order."""
    table = read(gallery, "SELECT labeller, classes_json FROM labellers ORDER BY labeller")
    return {row.labeller: json.loads(row.classes_json) for row in table.itertuples()}


def exhibition_artworks(gallery: str | Path, filters: ArtworkFilter, per_group: int) -> pd.DataFrame:
    """The artworks ``filters`` match for the exhibition kiosk: at most ``per_group`` of each
    (generator, prompt), so a large gallery cannot crowd out a generator; the best CLIP
    similarity first within each group. Columns as ``find_artworks``, plus ``place`` (1, 2, ...)
    in the group."""
    where, params = filters.where()
    return read(
        gallery,
        f"""
        SELECT * FROM (
            SELECT {_GRID_COLUMNS}, row_number() OVER (
                PARTITION BY r.generator, r.kind, r.prompt
                ORDER BY a.similarity DESC NULLS LAST, a.artwork_id) AS place
            {_SOURCE} {where}
        ) WHERE place <= ? ORDER BY generator, kind, prompt NULLS LAST, place
        """,
        [filters.labeller, *params, int(per_group)],
    )
