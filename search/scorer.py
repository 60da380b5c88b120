"""CLIP similarity between generated images and a prompt, for whole populations at once.

Fixes over the reference CLIP-glass scoring: images are normalised exactly as the CLIP
weights expect (antialiased resize, centre crop, the model's own mean/std); text features
are computed once per prompt and cached; a population is scored in one batch (chunked for
memory); everything is differentiable so the best latents can be refined by gradient.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from data.errors import ConfigError
from data.validation import check_number, check_text
from search.clip import ClipModel


@dataclass(frozen=True)
class Prompt:
    """What the search steers toward: a text, its template ensemble, and what to avoid."""

    text: str
    templates: tuple[str, ...] = ("{}",)
    negatives: tuple[str, ...] = ()
    negative_weight: float = 0.5

    def __post_init__(self):
        # Printable one-line text within the length limit, NFC-normalised (data.validation).
        object.__setattr__(self, "text", check_text(self.text, "the prompt"))
        object.__setattr__(self, "templates", tuple(check_text(t, "a prompt template") for t in self.templates))
        object.__setattr__(self, "negatives", tuple(check_text(n, "a negative prompt") for n in self.negatives))
        if not self.templates or any("{}" not in t for t in self.templates):
            raise ConfigError(f"every prompt template needs a '{{}}' placeholder, got {self.templates}")
        check_number(self.negative_weight, "negative_weight", minimum=0)


@dataclass(frozen=True)
class Views:
    """Fixed augmentation views (crop box as fractions, flip), drawn once so scores stay deterministic."""

    boxes: tuple[tuple[float, float, float], ...]  # (top, left, side) as fractions of the image
    flips: tuple[bool, ...]

    @classmethod
    def draw(cls, n: int, seed: int = 0, min_side: float = 0.8) -> Views:
        g = torch.Generator().manual_seed(seed)
        boxes, flips = [], []
        for _ in range(n):
            side = float(min_side + (1 - min_side) * torch.rand((), generator=g))
            top, left = (float(v) * (1 - side) for v in torch.rand(2, generator=g))
            boxes.append((top, left, side))
            flips.append(bool(torch.rand((), generator=g) < 0.5))
        return cls(tuple(boxes), tuple(flips))


class ClipScorer:
    """Cosine similarity (in [-1, 1]) between images in [-1, 1] and a prompt."""

    def __init__(self, clip: ClipModel, *, augmentations: int = 0, augment_seed: int = 0, chunk_size: int = 128):
        if augmentations < 0:
            raise ConfigError(f"augmentations must be >= 0, got {augmentations}")
        if chunk_size <= 0:
            raise ConfigError(f"chunk_size must be positive, got {chunk_size}")
        self.clip = clip
        self.views = Views.draw(augmentations, augment_seed) if augmentations else None
        self.chunk_size = chunk_size
        self._text_cache: dict[tuple[str, ...], torch.Tensor] = {}
        self._interpolation = InterpolationMode(clip.interpolation)

    @property
    def device(self) -> torch.device:
        return next(self.clip.model.parameters()).device

    # -- text -------------------------------------------------------------------------
    def _tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        limit = self.clip.context_length - 2  # start and end tokens
        encode = getattr(self.clip.tokenizer, "encode", None)
        for text in texts:
            if encode is not None and len(encode(text)) > limit:
                warnings.warn(
                    f"prompt {text[:40]!r}... is longer than CLIP's {limit} tokens and is truncated",
                    stacklevel=3,
                )
        return self.clip.tokenizer(list(texts)).to(self.device)

    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit-norm mean feature of ``texts`` (an ensemble), computed once and cached."""
        key = tuple(texts)
        if key not in self._text_cache:
            with torch.no_grad():
                features = self.clip.model.encode_text(self._tokenize(texts)).float()
            mean = F.normalize(features, dim=-1).mean(0)
            self._text_cache[key] = F.normalize(mean, dim=-1)
        return self._text_cache[key]

    def prompt_features(self, prompt: Prompt) -> tuple[torch.Tensor, torch.Tensor | None]:
        positive = self.text_features([t.format(prompt.text) for t in prompt.templates])
        negative = (
            torch.stack([self.text_features([t.format(n) for t in prompt.templates]) for n in prompt.negatives])
            if prompt.negatives
            else None
        )
        return positive, negative

    # -- images -----------------------------------------------------------------------
    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B,3,H,W] in [-1,1] -> CLIP input: [0,1], resized, centre-cropped, normalised."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ConfigError(f"images must be [batch, 3, H, W], got {list(images.shape)}")
        x = (images.float() + 1) / 2
        size = self.clip.image_size
        x = TF.resize(x, size, interpolation=self._interpolation, antialias=True)
        x = TF.center_crop(x, [size, size])
        return TF.normalize(x, self.clip.mean, self.clip.std)

    def _views(self, images: torch.Tensor) -> list[torch.Tensor]:
        if self.views is None:
            return [images]
        h, w = images.shape[-2:]
        out = []
        for (top, left, side), flip in zip(self.views.boxes, self.views.flips, strict=True):
            crop = TF.crop(images, int(top * h), int(left * w), max(1, round(side * h)), max(1, round(side * w)))
            out.append(TF.horizontal_flip(crop) if flip else crop)
        return out

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-norm image features [B, D], averaged over the augmentation views."""
        images = images.to(self.device)
        feats = [F.normalize(self.clip.model.encode_image(self.preprocess(v)).float(), dim=-1) for v in self._views(images)]
        return F.normalize(torch.stack(feats).mean(0), dim=-1)

    def similarity(self, images: torch.Tensor, prompt: Prompt | str) -> torch.Tensor:
        """Similarity [B] of each image to the prompt, minus the weighted best negative match."""
        prompt = Prompt(prompt) if isinstance(prompt, str) else prompt
        positive, negative = self.prompt_features(prompt)
        scores = []
        for start in range(0, images.shape[0], self.chunk_size):
            feats = self.image_features(images[start : start + self.chunk_size])
            score = feats @ positive
            if negative is not None:
                score = score - prompt.negative_weight * (feats @ negative.T).max(dim=1).values
            scores.append(score)
        return torch.cat(scores)
