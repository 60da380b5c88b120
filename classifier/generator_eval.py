"""What a generator draws when nobody asks: the class mix of its unguided samples.

Compared with its training composition, this is the check that a starter GAN learned its
world (and the baseline every prompt's effect is measured against). It lives here because
the measurement needs both a generator and a labeller; ``artbias eval generator`` runs it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from classifier.fidelity import composition_dict, world_fidelity
from classifier.labellers import load_labeller
from data.errors import ConfigError
from data.files import write_atomically
from generators.registry import load_generator
from generators.training_record import training_composition

CARD_SECTION = "## Unguided samples (measured)"
SECOND_LABELLER = "classifier-world-b"  # held out: another architecture, world seed and training seed


@dataclass
class UnguidedComposition:
    generator: str
    labeller: str
    classes: list[str]
    counts: list[int]
    n: int
    seed: int
    training: list[float] | None  # the training composition, when the generator records it
    options: dict | None = None  # loader options given over the catalogue defaults
    agreement: dict | None = None  # with a second labeller on the same samples (``labeller_agreement``)
    fidelity: dict | None = None  # the world Fréchet distance (``classifier.fidelity``)
    realism: dict | None = None  # precision, density, coverage against renders (``classifier.fidelity``)
    asked: dict | None = None  # a class-conditional generator: how often the label is the class asked for

    @property
    def proportions(self) -> list[float]:
        return [c / self.n for c in self.counts]

    @property
    def total_variation(self) -> float | None:
        """Half the L1 distance to the training composition (0: identical, 1: disjoint)."""
        if self.training is None:
            return None
        return 0.5 * float(np.abs(np.array(self.proportions) - np.array(self.training)).sum())

    def to_dict(self) -> dict:
        return {
            "generator": self.generator, "labeller": self.labeller, "n": self.n, "seed": self.seed,
            "classes": self.classes, "counts": self.counts, "proportions": self.proportions,
            "training_composition": self.training, "total_variation": self.total_variation,
            "options": self.options or {}, "agreement": self.agreement, "world_frechet_distance": self.fidelity,
            "world_realism": self.realism, "asked_class": self.asked,
        }


def unguided_composition(generator_spec: str, labeller_spec: str = "classifier-world", *, n: int = 1000,
                         seed: int = 0, batch_size: int = 100, progress: bool = True,
                         device: str = "cpu", options: dict | None = None,
                         second_labeller: str | None = SECOND_LABELLER,
                         fidelity: bool = True) -> UnguidedComposition:
    """Label ``n`` samples drawn from the generator's latent prior (seeded); the generator
    runs on ``device`` with loader ``options`` over its catalogue defaults, the labeller on
    the CPU. With ``second_labeller`` the same samples are labelled again, independently,
    and the two labellers' agreement is reported; with ``fidelity`` their world Fréchet
    distance to fresh renders of the training composition, and their realism (precision,
    density, coverage) against renders of it."""
    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    generator = load_generator(generator_spec, device=device, **(options or {}))
    labeller = load_labeller(labeller_spec)
    classes = list(labeller.classes)
    latents = generator.latent_space.seeded(n, seed)
    batches = []
    with torch.no_grad():
        for start in tqdm(range(0, n, batch_size), desc="unguided", disable=not progress, leave=False):
            batches.append(generator.generate(latents[start : start + batch_size], batch_size=batch_size).float().cpu())
    images = torch.cat(batches)
    predicted = _labels(labeller, images, batch_size)
    training = training_composition(generator_spec, classes)
    found = UnguidedComposition(
        generator=generator_spec, labeller=labeller_spec, classes=classes,
        counts=np.bincount(predicted, minlength=len(classes)).tolist(),
        n=n, seed=seed, training=training, options=options,
    )
    intended = generator.intended_classes(latents)
    if intended is not None:
        found.asked = asked_class_agreement(predicted, classes, intended, generator.intended_note)
    if second_labeller is not None:
        found.agreement = labeller_agreement(predicted, classes, second_labeller, images, batch_size)
    if fidelity:
        frechet, realism = world_fidelity(images, composition_dict(classes, training))
        found.fidelity = frechet.to_dict()
        found.realism = None if realism is None else realism.to_dict()  # None: too few images for it
    return found


def asked_class_agreement(predicted: np.ndarray, classes: list[str], intended: list[str], rule: str) -> dict:
    """The share of samples labelled as the class their latent asked for, with its Wilson 95%
    interval (statsmodels): how strongly a class-conditional generator follows its class."""
    from statsmodels.stats.proportion import proportion_confint

    hits = int(sum(classes[label] == asked for label, asked in zip(predicted.tolist(), intended, strict=True)))
    low, high = proportion_confint(hits, len(intended), alpha=0.05, method="wilson")
    return {"share": hits / len(intended), "ci": [float(low), float(high)], "n": len(intended), "rule": rule}


def _labels(labeller, images: torch.Tensor, batch_size: int) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([labeller.predict(images[i : i + batch_size]).argmax(1).cpu().numpy()
                               for i in range(0, len(images), batch_size)])


def labeller_agreement(predicted: np.ndarray, classes: list[str], other_spec: str, images: torch.Tensor,
                       batch_size: int = 100) -> dict:
    """Cohen's kappa (statsmodels) between ``predicted`` and ``other_spec``'s labels of ``images``.

    The second labeller must know the same classes (in any order): its labels are mapped by name.
    """
    from statsmodels.stats.inter_rater import cohens_kappa

    other = load_labeller(other_spec)
    if sorted(other.classes) != sorted(classes):
        raise ConfigError(f"labeller {other_spec} knows classes {list(other.classes)}, not {classes}")
    order = [classes.index(name) for name in other.classes]
    theirs = np.array(order)[_labels(other, images, batch_size)]
    table = np.zeros((len(classes), len(classes)))
    np.add.at(table, (predicted, theirs), 1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):  # one class only: kappa undefined, said below
        warnings.simplefilter("ignore", RuntimeWarning)
        result = cohens_kappa(table, return_results=True)

    def finite(value) -> float | None:
        return float(value) if np.isfinite(value) else None

    return {"labeller": other_spec, "kappa": finite(result.kappa),
            "kappa_ci": [finite(result.kappa_low), finite(result.kappa_upp)],
            "raw_agreement": float(np.trace(table) / table.sum()), "n": int(table.sum())}


def write_card_section(found: UnguidedComposition, card: str | Path) -> Path:
    """Put ``found`` into a model card as its measured section, replacing an earlier one
    (the rest of the card stays as it was); the card is rewritten atomically."""
    card = Path(card)
    if not card.is_file():
        raise ConfigError(f"model card {card} does not exist")
    text = card.read_text()
    before, marker, after = text.partition(CARD_SECTION)
    rest = after[after.find("\n## ") + 1:] if marker and "\n## " in after else ""
    options = "".join(f" --option {k}={v}" for k, v in (found.options or {}).items())
    lines = [
        CARD_SECTION,
        f"{found.n:,} samples from the latent prior (seed {found.seed}), labelled by `{found.labeller}`",
        f"(`artbias eval generator --generator {found.generator}{options}`), next to the training composition:",
        "",
        "| class | samples | training |",
        "|---|---|---|",
    ]
    for i, name in enumerate(found.classes):
        training = f"{found.training[i]:.3f}" if found.training else "?"
        lines.append(f"| {name} | {found.proportions[i]:.3f} | {training} |")
    if found.total_variation is not None:
        lines += ["", f"Total variation distance: **{found.total_variation:.3f}**."]
    if found.agreement is not None:
        a = found.agreement
        lines += ["", f"Agreement with `{a['labeller']}` on the same samples: Cohen's kappa **{describe_kappa(a)}**, "
                  f"raw agreement {a['raw_agreement']:.3f}."]
    if found.asked is not None:
        lines += ["", f"Labelled as the class the latent asked for: **{describe_asked(found.asked)}** "
                  f"(asked: {found.asked['rule']})."]
    if found.fidelity is not None:
        f = found.fidelity
        lines += ["", f"World Fréchet distance to {f['n']:,} fresh renders of the training composition "
                  f"(features of `{f['features']}`, docs/fidelity.md): **{f['value']:.2f}** "
                  f"(renders against renders: {f['floor']:.2f})."]
    if found.realism is not None:
        r = found.realism
        lines += ["", f"Against {r['reference_n']:,} renders in the same features: precision **{r['precision']:.3f}** "
                  f"(the share of samples on the world's manifold), density {r['density']:.3f}, "
                  f"coverage {r['coverage']:.3f}."]
    section = "\n".join(lines) + "\n"
    document = before.rstrip() + "\n\n" + section + ("\n" + rest if rest else "")
    write_atomically(card, lambda path: path.write_text(document))
    return card


def describe_asked(asked: dict) -> str:
    """"0.912 [0.893, 0.928] of 1,000"."""
    low, high = asked["ci"]
    return f"{asked['share']:.3f} [{low:.3f}, {high:.3f}] of {asked['n']:,}"


def describe_kappa(agreement: dict) -> str:
    """"0.812 [0.781, 0.843]", or why there is none."""
    if agreement["kappa"] is None:
        return "undefined (one labeller saw a single class)"
    low, high = agreement["kappa_ci"]
    return f"{agreement['kappa']:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None else "")
