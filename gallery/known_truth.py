"""Labels whose truth is known, and what they say about the model labellers on generated images.

Two sources of known truth exist: people (``human:NAME``, imported with ``artbias annotate
import``) and, for class-conditional generators, the class each latent asked for
(``intended``). Against them this module measures, per generator:

- the model labeller's **confusion matrix on generated images** (rows = the known label,
  columns = the model's label), which BBSE then uses for that generator instead of the matrix
  measured on world renders, once at least ``MIN_KNOWN`` artworks carry a known label;
- **agreement** (Cohen's kappa, raw agreement, PABAK) of every truth source with the model
  labellers, and of annotators with each other;
- the **reliability** of a generator's labels: the agreement of two model labellers that did
  not steer the search; below ``MIN_KAPPA`` the report calls its labels unreliable instead of
  stating a finding.

Pure functions of label tables (pandas), no store access: ``gallery.bias`` reads the gallery.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from classifier.labellers import INTENDED, parse_labeller
from gallery.statistics import Agreement, agreement

MIN_KNOWN = 60  # artworks of one generator with a known label before their matrix is used (docs/statistics.md)
MIN_KAPPA = 0.4  # below this agreement of two independent labellers, labels are unreliable
RENDERS_SOURCE = "world renders (assumes renders-like errors)"


def confusion_counts(truth: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Counts [K, K]: rows = the known label, columns = the model's label (pairs outside
    ``classes`` are left out)."""
    index = {name: i for i, name in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)))
    for known, said in zip(truth, predicted, strict=True):
        if known in index and said in index:
            matrix[index[known], index[said]] += 1
    return matrix


def complete_rows(counts: np.ndarray, fallback: np.ndarray | None) -> tuple[np.ndarray, list[int]]:
    """A usable matrix from ``counts``: a class no known label names has no row to estimate,
    so its row is taken from ``fallback`` (the matrix measured on renders) or, without one,
    is the identity (the labeller assumed right on that class). Returns the matrix and the
    indices of the rows filled in."""
    matrix = np.array(counts, dtype=float)
    filled = [i for i in range(len(matrix)) if matrix[i].sum() == 0]
    for i in filled:
        if fallback is not None and np.asarray(fallback)[i].sum() > 0:
            matrix[i] = np.asarray(fallback, dtype=float)[i]
        else:
            matrix[i, i] = 1.0
    return matrix, filled


@dataclass
class GeneratedConfusion:
    """A labeller's confusion matrix measured on one generator's artworks against known labels."""

    generator: str
    labeller: str  # the model labeller whose errors are measured
    truth: str  # the truth source: human:NAME or intended
    n: int  # artworks with both a known label and the labeller's label
    matrix: list[list[float]]  # counts, rows = known label, columns = the labeller's; rows filled in
    filled_classes: list[str] = field(default_factory=list)  # rows taken from the renders matrix
    used: bool = False  # n >= MIN_KNOWN: BBSE uses it for this generator

    @property
    def source(self) -> str:
        """What the report says about the matrix BBSE used."""
        what = "intended class" if self.truth == INTENDED else self.truth
        text = f"{what} on {self.n} {self.generator} artworks"
        if self.filled_classes:
            text += f" (rows {', '.join(self.filled_classes)} from world renders: no known label)"
        return text

    def to_dict(self) -> dict:
        return asdict(self) | {"source": self.source}


def _truth_rank(spec: str, n: int) -> tuple:
    """People before intended classes, then the most labels, then the name."""
    return (parse_labeller(spec).kind != "human", -n, spec)


def generated_confusions(
    labelled: pd.DataFrame,
    truths: Mapping[str, pd.DataFrame],
    classes: Sequence[str],
    *,
    labeller: str,
    fallback: np.ndarray | None = None,
    min_known: int = MIN_KNOWN,
) -> dict[str, GeneratedConfusion]:
    """Per generator, the confusion matrix of ``labeller`` on its artworks against the best
    truth source there (a person before the intended class; the one with most labels).

    ``labelled``: the labeller's labels (artwork_id, generator, predicted); ``truths``: truth
    spec -> its labels (artwork_id, predicted), on the same counted artworks.
    """
    found: dict[str, GeneratedConfusion] = {}
    model = labelled.set_index("artwork_id")
    for generator, rows in labelled.groupby("generator"):
        candidates = []
        for spec, frame in truths.items():
            known = frame[frame["artwork_id"].isin(rows["artwork_id"])]
            if known.empty:
                continue
            said = model.loc[known["artwork_id"], "predicted"].tolist()
            counts = confusion_counts(known["predicted"].tolist(), said, classes)
            candidates.append((spec, int(counts.sum()), counts))
        if not candidates:
            continue
        spec, n, counts = min(candidates, key=lambda c: _truth_rank(c[0], c[1]))
        if n == 0:
            continue
        matrix, filled = complete_rows(counts, fallback)
        found[generator] = GeneratedConfusion(
            generator, labeller, spec, n, matrix.tolist(), [classes[i] for i in filled], n >= min_known
        )
    return found


# -- agreement --------------------------------------------------------------------------------
@dataclass
class PairAgreement:
    """Agreement of two labellers on the counted artworks of one generator (or all of them)."""

    generator: str  # or "all"
    labeller: str
    other: str
    agreement: Agreement

    def to_dict(self) -> dict:
        return {"generator": self.generator, "labeller": self.labeller, "other": self.other,
                **asdict(self.agreement)}


def pair_agreement(
    first: pd.DataFrame, second: pd.DataFrame, classes: Sequence[str], *, generator: str,
    labeller: str, other: str,
) -> PairAgreement:
    """Agreement on the artworks both labelled (frames with artwork_id and predicted)."""
    both = first[["artwork_id", "predicted"]].merge(
        second[["artwork_id", "predicted"]], on="artwork_id", suffixes=("_a", "_b"))
    return PairAgreement(generator, labeller, other,
                         agreement(both["predicted_a"].tolist(), both["predicted_b"].tolist(), classes))


def truth_agreements(
    models: Mapping[str, pd.DataFrame], truths: Mapping[str, pd.DataFrame], classes: Sequence[str],
) -> list[PairAgreement]:
    """Per generator: every truth source against every model labeller, and annotators with
    each other (where they labelled the same artworks). Frames: artwork_id, generator, predicted."""
    found = []
    truth_specs = sorted(truths)
    for spec in truth_specs:
        truth = truths[spec]
        for generator in sorted(truth["generator"].unique()):
            mine = truth[truth["generator"] == generator]
            for name, model in models.items():
                pair = pair_agreement(mine, model, classes, generator=generator, labeller=spec, other=name)
                if pair.agreement.n:
                    found.append(pair)
            for other in truth_specs:
                if other <= spec:
                    continue
                pair = pair_agreement(mine, truths[other], classes, generator=generator, labeller=spec,
                                      other=other)
                if pair.agreement.n:
                    found.append(pair)
    return found


@dataclass
class Reliability:
    """Whether a generator's labels can carry a finding: two independent labellers agree."""

    generator: str
    labeller: str
    other: str | None
    agreement: Agreement | None
    independent: bool  # neither labeller is a CLIP that steered the searches
    threshold: float = MIN_KAPPA

    @property
    def statistic(self) -> tuple[str, float] | None:
        """("kappa", value), or ("PABAK", value) where kappa is undefined (one class only)."""
        if self.agreement is None or self.agreement.n == 0:
            return None
        if math.isfinite(self.agreement.kappa):
            return "kappa", self.agreement.kappa
        return "PABAK", self.agreement.pabak

    @property
    def reliable(self) -> bool | None:
        """False below the threshold (judged only for two independent labellers)."""
        found = self.statistic
        if found is None or not self.independent:
            return None
        return found[1] >= self.threshold

    def sentence(self) -> str | None:
        """What a report says instead of a finding, where the labels are unreliable."""
        if self.reliable is not False:
            return None
        name, value = self.statistic
        return f"labels unreliable for {self.generator} ({name} {value:.2f} < {self.threshold:g})"

    def to_dict(self) -> dict:
        found = self.statistic
        return {
            "generator": self.generator, "labeller": self.labeller, "other": self.other,
            "independent": self.independent, "threshold": self.threshold,
            "statistic": None if found is None else found[0],
            "value": None if found is None else found[1],
            "reliable": self.reliable, "sentence": self.sentence(),
            "agreement": None if self.agreement is None else asdict(self.agreement),
        }


def reliabilities(
    labelled: pd.DataFrame, other: pd.DataFrame | None, classes: Sequence[str], *, labeller: str,
    other_labeller: str | None, independent: bool,
) -> list[Reliability]:
    """Per generator: agreement of the report's labeller with the second one over all of the
    generator's counted artworks (every prompt and the baseline together)."""
    found = []
    for generator, rows in labelled.groupby("generator"):
        if other is None:
            found.append(Reliability(generator, labeller, None, None, independent))
            continue
        pair = pair_agreement(rows, other, classes, generator=generator, labeller=labeller,
                              other=other_labeller)
        found.append(Reliability(generator, labeller, other_labeller, pair.agreement, independent))
    return found
