"""The world's aesthetic value of each artwork, from its predicted class, time of day and weather.

The scenery world defines beauty by a documented rule (``data/world/aesthetic.py``,
``AestheticRule``): ``value = sigmoid(bias + class + time + weather + matching pairs)``. The
rule reads exactly those three attributes, so an artwork labelled with a class (the report's
scene labeller), a time of day and a weather (the attribute labellers) has a value, and no
other scene parameter needs averaging out. A report then gives, per generator:

- the mean value of each prompt's chosen artworks, of each control prompt's and of the
  unguided baseline samples, with 95% t intervals;
- prompt minus baseline (Welch's t interval for a difference of means) and prompt minus
  control, paired by seed (paired t interval over the seeds searched with both).

Pure functions of label tables; ``gallery.bias`` reads the gallery.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from gallery.controls import PAIR_KEYS
from gallery.statistics import CONFIDENCE

MEAN_METHOD = "t interval (95%)"
WELCH_METHOD = "Welch t interval for a difference of means (95%)"
PAIRED_METHOD = "paired t interval over seeds searched with both prompts (95%)"


def artwork_values(
    scene: pd.DataFrame, time: pd.DataFrame, weather: pd.DataFrame, rule
) -> pd.DataFrame:
    """``scene`` (the counted artworks with the scene labeller's ``predicted``) joined with the
    time and weather labellers' labels, plus ``aesthetic``: ``rule.value(class, time, weather)``.
    Artworks some labeller did not label are left out; classes the rule does not know give NaN."""
    frame = scene.merge(time[["artwork_id", "predicted"]].rename(columns={"predicted": "time"}),
                        on="artwork_id")
    frame = frame.merge(weather[["artwork_id", "predicted"]].rename(columns={"predicted": "weather"}),
                        on="artwork_id")
    table = {}
    for key in set(zip(frame["predicted"], frame["time"], frame["weather"], strict=True)):
        try:
            table[key] = rule.value(*key)
        except KeyError:
            table[key] = math.nan
    frame["aesthetic"] = [table[key] for key in zip(frame["predicted"], frame["time"], frame["weather"],
                                                    strict=True)]
    return frame


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean and its t interval (NaN interval below two values)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE):
    """Mean(a) - mean(b) and its Welch t interval."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan, math.nan
    difference = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return difference, difference, difference
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, dof) * se)
    return difference, difference - half, difference + half


@dataclass
class AestheticGroup:
    """The mean aesthetic value of one generator's artworks for one prompt (or its baseline)."""

    generator: str
    prompt: str | None  # None: the unguided baseline
    role: str  # "searched", "control" or "baseline"
    n: int
    mean: float
    low: float
    high: float
    method: str = MEAN_METHOD

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AestheticDifference:
    """A prompt's mean aesthetic value minus a control's or the baseline's."""

    generator: str
    prompt: str
    versus: str  # a control prompt, or "(unguided baseline)"
    n: int  # seed pairs (control) or the prompt's artworks (baseline)
    difference: float
    low: float
    high: float
    method: str

    def to_dict(self) -> dict:
        return asdict(self)


def aesthetic_groups(values: pd.DataFrame, controls: Mapping[str, Sequence[str]]) -> list[AestheticGroup]:
    """Per generator and prompt: the mean value with its interval; roles say which prompts
    are controls (searched only as another prompt's control) and which the baseline."""
    control_texts = {c for its in controls.values() for c in its} - set(controls)
    found = []
    frame = values.assign(prompt=values["prompt"].where(values["prompt"].notna(), None))
    for (generator, prompt), rows in frame.groupby(["generator", "prompt"], dropna=False, sort=False):
        prompt = None if prompt is None or (isinstance(prompt, float) and math.isnan(prompt)) else prompt
        role = "baseline" if prompt is None else "control" if prompt in control_texts else "searched"
        mean, low, high = mean_interval(rows["aesthetic"])
        found.append(AestheticGroup(generator, prompt, role, int(rows["aesthetic"].notna().sum()),
                                    mean, low, high))
    return sorted(found, key=lambda g: (g.generator, g.prompt is None, str(g.prompt)))


def aesthetic_differences(
    values: pd.DataFrame, controls: Mapping[str, Sequence[str]]
) -> list[AestheticDifference]:
    """Per generator, each prompt against the baseline and against each of its controls."""
    found = []
    baseline_label = "(unguided baseline)"
    for generator, rows in values.groupby("generator"):
        baseline = rows[rows["prompt"].isna()]["aesthetic"]
        searched = rows[rows["prompt"].notna()]
        for prompt in sorted(searched["prompt"].unique()):
            mine = searched[searched["prompt"] == prompt]
            if len(baseline):
                difference, low, high = welch_interval(mine["aesthetic"], baseline)
                found.append(AestheticDifference(generator, prompt, baseline_label, len(mine),
                                                 difference, low, high, WELCH_METHOD))
            for control in controls.get(prompt, ()):
                keys = [k for k in PAIR_KEYS if k in searched.columns]
                pairs = mine[[*keys, "aesthetic"]].merge(
                    searched[searched["prompt"] == control][[*keys, "aesthetic"]], on=keys,
                    suffixes=("_p", "_c"))
                delta = (pairs["aesthetic_p"] - pairs["aesthetic_c"]).to_numpy(dtype=float)
                mean, low, high = mean_interval(delta)
                found.append(AestheticDifference(generator, prompt, control, len(delta), mean, low, high,
                                                 PAIRED_METHOD))
    return found
