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


def labellers(gallery: str | Path) -> pd.DataFrame:
    """Labellers that labelled something in the gallery, with classes and confusion matrix."""
    return read(
        gallery,
        """
        SELECT lb.labeller, lb.classes_json, lb.confusion_json, lb.identity_json,
               count(l.artwork_id) AS labelled
        FROM labellers lb LEFT JOIN labels l ON l.labeller = lb.labeller
        GROUP BY ALL ORDER BY labelled DESC, lb.labeller
        """,
    )


# The artworks the statistics count: one chosen artwork per finished search run (its 'top' and
# 'pareto' siblings come from the same run and are not independent), and every unguided
# baseline sample. Baseline rows get prompt NULL.
_LABELLED_SQL = """
    SELECT a.artwork_id, r.generator,
           CASE WHEN r.kind = 'baseline' THEN NULL ELSE r.prompt END AS prompt,
           r.kind, a.role, l.predicted, l.confidence, r.seed, r.modifier, r.algorithm,
           coalesce(r.replicate, 0) AS replicate, r.clip
    FROM artworks a
    JOIN runs r ON r.run_id = a.run_id
    JOIN labels l ON l.artwork_id = a.artwork_id
    WHERE l.labeller = ? AND r.status = 'done'
      AND ((r.kind = 'search' AND a.role = 'chosen') OR (r.kind = 'baseline' AND a.role = 'baseline'))
    ORDER BY r.generator, prompt, a.artwork_id
"""


def prompt_controls(gallery: str | Path) -> dict[str, list[str]]:
    """Prompt -> its control prompts, from every campaign's recorded configuration."""
    found: dict[str, list[str]] = {}
    for text in read(gallery, "SELECT config_json FROM campaigns ORDER BY created_at")["config_json"]:
        config = json.loads(text) if isinstance(text, str) and text else {}
        for prompt in config.get("prompts", []):
            if isinstance(prompt, dict) and prompt.get("controls"):
                known = found.setdefault(prompt["text"], [])
                known += [c for c in prompt["controls"] if c not in known]
    return found


def search_clips(gallery: str | Path) -> set[str]:
    """The CLIP models that steered the gallery's searches."""
    return set(read(gallery, "SELECT DISTINCT clip FROM runs WHERE kind = 'search' AND clip IS NOT NULL")["clip"])


def labelled_artworks(gallery: str | Path, labeller: str) -> pd.DataFrame:
    """The artworks the statistics count, with ``labeller``'s label."""
    return read(gallery, _LABELLED_SQL, [labeller])


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
    runs = read(
        gallery,
        "SELECT r.generator, r.kind, r.prompt, count(a.artwork_id) AS n,"
        " min(a.similarity) AS lo, max(a.similarity) AS hi"
        " FROM runs r JOIN artworks a ON a.run_id = r.run_id WHERE r.status = 'done' GROUP BY ALL",
    )
    labellers = read(gallery, "SELECT labeller, classes_json FROM labellers ORDER BY labeller")
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
