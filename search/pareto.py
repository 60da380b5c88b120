"""Choosing one artwork from a (similarity, realism) Pareto front by an explicit rule.

The reference code took a hard-coded end of the front (the most realistic point, usually
the least like the prompt). Here the rule is a setting, recorded with the result.
"""

from __future__ import annotations

import numpy as np

from data.errors import ConfigError


def choose(similarity: np.ndarray, realism: np.ndarray, rule: str = "knee", threshold: float = 0.0) -> tuple[int, bool]:
    """Index of the chosen front member, and whether the rule was satisfied.

    knee: the point farthest from the line joining the front's two extremes, after scaling
        both objectives to [0, 1] (where trading one objective for the other stops paying).
    threshold: the best similarity among points with realism >= threshold; when none
        reaches it, the most realistic point (rule not satisfied).
    similarity: the best similarity, ignoring realism.
    """
    similarity = np.asarray(similarity, dtype=float)
    realism = np.asarray(realism, dtype=float)
    if similarity.shape != realism.shape or similarity.ndim != 1 or len(similarity) == 0:
        raise ConfigError("a Pareto front needs matching, non-empty similarity and realism arrays")
    if rule == "similarity":
        return int(np.argmax(similarity)), True
    if rule == "threshold":
        passing = np.flatnonzero(realism >= threshold)
        if len(passing) == 0:
            return int(np.argmax(realism)), False
        return int(passing[np.argmax(similarity[passing])]), True
    if rule != "knee":
        raise ConfigError(f"unknown Pareto rule {rule!r}")
    if len(similarity) <= 2:
        return int(np.argmax(similarity)), True
    points = np.column_stack([_unit(similarity), _unit(realism)])
    a, b = points[np.argmax(similarity)], points[np.argmax(realism)]
    direction = b - a
    length = np.linalg.norm(direction)
    if length == 0:
        return int(np.argmax(similarity)), True
    offsets = points - a
    distance = np.abs(offsets[:, 0] * direction[1] - offsets[:, 1] * direction[0]) / length
    return int(np.argmax(distance)), True


def _unit(x: np.ndarray) -> np.ndarray:
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)
