"""How well a CLIP knows the scenery world: zero-shot class accuracy and its notion of beauty.

Both are measured on freshly rendered scenes (a seed never used for training), against the
world's ground truth: the scene's class, and its aesthetic value from the documented rule.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr

from data.world.aesthetic import AestheticRule
from data.world.params import CLASSES, sample_scenes
from data.world.render import render_scenes
from search.scorer import ClipScorer

CLASS_PROMPTS = {
    "buildings": ("buildings", "a city skyline", "tall buildings"),
    "forest": ("a forest", "trees in a forest", "woods"),
    "glacier": ("a glacier", "an ice field", "a glacier with ice"),
    "mountain": ("mountains", "a mountain range", "mountain peaks"),
    "sea": ("the sea", "the ocean", "a seascape with waves"),
    "street": ("a street", "a road between buildings", "a city street"),
}
TEMPLATES = ("{}", "a picture of {}", "a view of {}")


def fresh_world(n: int, seed: int, size: int, rule: AestheticRule | None = None
                ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """``n`` balanced scenes: images [n,3,H,W] in [-1,1], class indices, aesthetic values."""
    rng = np.random.default_rng(seed)
    classes = [CLASSES[i % len(CLASSES)] for i in range(n)]
    scenes = sample_scenes(classes, rng)
    pixels = torch.from_numpy(render_scenes(scenes, size)).permute(0, 3, 1, 2).float()
    return pixels / 127.5 - 1, scenes.class_index.copy(), (rule or AestheticRule.load()).values(scenes)


def class_text_features(scorer: ClipScorer) -> torch.Tensor:
    """[6, D] prompt-ensembled class features, in ``CLASSES`` order."""
    return torch.stack(
        [scorer.text_features([t.format(p) for p in CLASS_PROMPTS[c] for t in TEMPLATES]) for c in CLASSES]
    )


BEAUTY_PROMPT, NEUTRAL_PROMPT, NEGATED_PROMPT = "a beautiful landscape", "a landscape", "a dull landscape"


@torch.no_grad()
def evaluate_world_clip(scorer: ClipScorer, n: int = 1200, seed: int = 12345,
                        rule: AestheticRule | None = None) -> dict:
    """Zero-shot accuracy on the six classes, and how well the CLIP's notion of beauty ranks
    fresh scenes by their aesthetic value under ``rule`` (default: the world's rule): Spearman
    correlation of the value with the similarity to "a beautiful landscape" minus that to its
    neutral control "a landscape" (the contrast a search with controls measures), with the raw
    similarity, and with the contrast to "a dull landscape"."""
    images, labels, aesthetic = fresh_world(n, seed, scorer.clip.image_size, rule)
    features = torch.cat([scorer.image_features(images[i : i + 256]) for i in range(0, n, 256)])
    predicted = (features @ class_text_features(scorer).T).argmax(1).cpu().numpy()
    beauty = features @ scorer.text_features([BEAUTY_PROMPT])
    neutral = features @ scorer.text_features([NEUTRAL_PROMPT])
    dullness = features @ scorer.text_features([NEGATED_PROMPT])

    def rho(score):
        return float(spearmanr(score.cpu().numpy(), aesthetic).statistic)

    per_class = {c: float((predicted[labels == k] == k).mean()) for k, c in enumerate(CLASSES)}
    return {
        "n": n,
        "seed": seed,
        "zero_shot_accuracy": float((predicted == labels).mean()),
        "zero_shot_per_class": per_class,
        "beautiful_minus_neutral_spearman": rho(beauty - neutral),
        "beautiful_spearman": rho(beauty),
        "beautiful_minus_dull_spearman": rho(beauty - dullness),
    }
