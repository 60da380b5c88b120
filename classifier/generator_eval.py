"""What a generator draws when nobody asks: the class mix of its unguided samples.

Compared with its training composition, this is the check that a starter GAN learned its
world (and the baseline every prompt's effect is measured against). It lives here because
the measurement needs both a generator and a labeller; ``artbias eval generator`` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from classifier.labellers import load_labeller
from data.errors import ConfigError
from data.files import write_atomically
from generators.registry import load_generator
from generators.training_record import training_composition

CARD_SECTION = "## Unguided samples (measured)"


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
            "options": self.options or {},
        }


def unguided_composition(generator_spec: str, labeller_spec: str = "classifier-world", *, n: int = 1000,
                         seed: int = 0, batch_size: int = 100, progress: bool = True,
                         device: str = "cpu", options: dict | None = None) -> UnguidedComposition:
    """Label ``n`` samples drawn from the generator's latent prior (seeded); the generator
    runs on ``device`` with loader ``options`` over its catalogue defaults, the labeller on
    the CPU."""
    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    generator = load_generator(generator_spec, device=device, **(options or {}))
    labeller = load_labeller(labeller_spec)
    classes = list(labeller.classes)
    latents = generator.latent_space.sample(n, torch.Generator().manual_seed(seed))
    counts = np.zeros(len(classes), dtype=int)
    with torch.no_grad():
        for start in tqdm(range(0, n, batch_size), desc="unguided", disable=not progress, leave=False):
            images = generator.generate(latents[start : start + batch_size], batch_size=batch_size).float().cpu()
            predicted = labeller.predict(images).argmax(1).cpu().numpy()
            counts += np.bincount(predicted, minlength=len(classes))
    return UnguidedComposition(
        generator=generator_spec, labeller=labeller_spec, classes=classes, counts=counts.tolist(),
        n=n, seed=seed, training=training_composition(generator_spec, classes), options=options,
    )


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
    section = "\n".join(lines) + "\n"
    document = before.rstrip() + "\n\n" + section + ("\n" + rest if rest else "")
    write_atomically(card, lambda path: path.write_text(document))
    return card
