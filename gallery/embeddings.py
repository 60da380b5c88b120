"""CLIP image embeddings of a gallery's artworks, and their 2-D projection for the embedding map.

``artbias gallery embed [--gallery G] [--clip NAME]`` computes the unit-norm CLIP image
embedding of every artwork that lacks one (resumable: only missing ones; each batch is one
transaction, so an error or a kill leaves whole batches, never half of one) and records which
CLIP made them (``embedding_models``: name, dimension, identity with the sha256 of its
weights). The app reads them for the embedding map (``project``: PCA, or UMAP when
``umap-learn`` is installed) and the artwork page's "more like this" (cosine similarity in
DuckDB, ``gallery.store.queries.similar_artworks``).

Nothing here imports Streamlit; torch and open_clip load only when embeddings are computed.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data.errors import ConfigError
from gallery.store import GalleryError, Store, queries
from gallery.store.writes import prune_embeddings, record_embeddings

DEFAULT_BATCH = 64
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


# -- which CLIP ------------------------------------------------------------------------------------
def default_clip(gallery: str | Path) -> str:
    """The CLIP that steered the gallery's searches when there is exactly one, else the
    campaigns' default CLIP (``clip-world``)."""
    from gallery.config import DEFAULT_CLIP

    steering = queries.search_clips(gallery)
    return next(iter(steering)) if len(steering) == 1 else DEFAULT_CLIP


def clip_identity(clip, dim: int) -> dict:
    """What the gallery records about the CLIP that embedded it: its identity (architecture,
    folder or tag), the embedding size and the sha256 of each weights file it was read from."""
    from data.saved_model import sha256_file
    from search.clip import clip_folder

    folder = clip_folder(clip)
    files: list[Path] = []
    if folder is not None:
        files = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    elif ":" in clip.name and Path(clip.name.split(":", 1)[1]).is_file():
        files = [Path(clip.name.split(":", 1)[1])]
    identity = dict(clip.identity) or {"name": clip.name}
    identity |= {"embedding_dim": int(dim), "image_size": clip.image_size}
    if files:
        identity["weights_sha256"] = {p.name: sha256_file(p) for p in files}
    return identity


# -- images -> vectors -----------------------------------------------------------------------------
def read_images(gallery: str | Path, paths: Sequence[str]) -> list[np.ndarray | None]:
    """Each stored image as a float array [3, H, W] in [-1, 1], or None when it cannot be read
    (outside the gallery's images/, missing, not an image)."""
    from data.errors import ArtbiasError
    from data.validation import open_image
    from gallery.images import resolve_image

    found: list[np.ndarray | None] = []
    for relative in paths:
        path = resolve_image(gallery, relative)
        if path is None or not path.is_file():
            found.append(None)
            continue
        try:
            with open_image(path) as image:
                pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
        except (ArtbiasError, OSError, ValueError, SyntaxError):
            found.append(None)
            continue
        found.append(pixels.transpose(2, 0, 1) / 127.5 - 1.0)
    return found


def embed_images(scorer, images: Sequence[np.ndarray]) -> np.ndarray:
    """Unit-norm CLIP image embeddings [n, dim] of images [3, H, W] in [-1, 1] of any sizes
    (``ClipScorer.image_features`` with the CLIP's own preprocessing, one batch per size)."""
    import torch

    if not len(images):
        raise ConfigError("no images to embed")
    out: list[np.ndarray | None] = [None] * len(images)
    by_size: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        by_size.setdefault(tuple(image.shape), []).append(i)
    with torch.no_grad():
        for indices in by_size.values():
            batch = torch.from_numpy(np.stack([images[i] for i in indices]))
            features = scorer.image_features(batch).cpu().numpy().astype(np.float32)
            for i, vector in zip(indices, features, strict=True):
                out[i] = vector
    return np.stack(out)


@dataclass(frozen=True)
class EmbedSummary:
    gallery: Path
    clip: str
    embedded: int  # written by this call
    already: int  # current before it
    pruned: int  # stale embeddings removed (artworks gone or images replaced)
    unreadable: list[str] = field(default_factory=list)  # image paths that could not be read

    def lines(self) -> list[str]:
        lines = [f"embedded {self.embedded} artworks with CLIP {self.clip} into {self.gallery} "
                 f"({self.already} already had an embedding"
                 + (f"; {self.pruned} stale ones removed" if self.pruned else "") + ")"]
        if self.unreadable:
            examples = ", ".join(self.unreadable[:3])
            lines.append(f"{len(self.unreadable)} images could not be read and were left without an "
                         f"embedding (e.g. {examples}); fix them and run the command again")
        return lines


def embed_gallery(
    gallery: str | Path,
    clip: str | None = None,
    *,
    batch_size: int = DEFAULT_BATCH,
    device: str = "cpu",
    progress: bool = False,
    clip_model=None,
) -> EmbedSummary:
    """Embed every artwork of ``gallery``'s finished runs that has no current embedding by
    ``clip`` (default: ``default_clip``). Each batch of ``batch_size`` artworks is written in one
    transaction, so a rerun after an error or a kill continues where it stopped.
    ``clip_model`` (a loaded ``ClipModel``) skips loading ``clip`` by name."""
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    store = Store(gallery)
    if not store.exists:
        raise GalleryError(f"no gallery at {store.root} (expected {store.db_path}); run a campaign first")
    if clip_model is None and clip is not None:
        _check_clip(clip)  # said before anything is written
    store.migrate()  # the embeddings tables (and any other migration this file lacks)
    name = clip or (clip_model.name if clip_model is not None else default_clip(gallery))
    if clip_model is None:
        _check_clip(name)
    pruned = prune_embeddings(store)
    todo = queries.artworks_to_embed(gallery, name)
    total = queries.finished_artwork_count(gallery)
    already = total - len(todo)
    if todo.empty:
        return EmbedSummary(store.root, name, 0, already, pruned)
    if clip_model is None:
        from search.clip import load_clip

        clip_model = load_clip(name, device=device)
    from search.scorer import ClipScorer

    scorer = ClipScorer(clip_model, chunk_size=batch_size)
    identity: dict | None = None
    embedded, unreadable = 0, []
    bar = tqdm(total=total, initial=already, desc=f"embedding with {name}", unit="artwork", disable=not progress)
    try:
        for start in range(0, len(todo), batch_size):
            batch = todo.iloc[start:start + batch_size]
            images = read_images(store.root, batch["image_path"].tolist())
            readable = [i for i, image in enumerate(images) if image is not None]
            unreadable += [str(batch["image_path"].iloc[i]) for i, image in enumerate(images) if image is None]
            if readable:
                vectors = embed_images(scorer, [images[i] for i in readable])
                identity = identity or clip_identity(clip_model, vectors.shape[1])
                rows = batch.iloc[readable]
                embedded += record_embeddings(store, name, identity, rows["artwork_id"].tolist(),
                                              [None if _missing(s) else s for s in rows["image_sha256"]], vectors)
            bar.update(len(batch))
    finally:
        bar.close()
    return EmbedSummary(store.root, name, embedded, already, pruned, unreadable)


def _check_clip(name: str) -> None:
    from search.clip import clip_problem

    if problem := clip_problem(name):
        raise ConfigError(problem)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# -- the map's projection --------------------------------------------------------------------------
PROJECTIONS = ("pca", "umap")


def umap_available() -> bool:
    """Whether ``umap-learn`` is installed (it is optional: ``pip install umap-learn``)."""
    return importlib.util.find_spec("umap") is not None


@dataclass(frozen=True)
class Projection:
    points: np.ndarray  # [n, 2]
    method: str  # "pca" or "umap"
    explained: tuple[float, float] | None  # PCA: each component's share of the variance


EXACT_PCA_DIM = 32  # up to this many dimensions the covariance is solved directly
BLOCK = 16  # subspace size of the block power iteration (2 components + oversampling)
POWER_ITERATIONS = 6


def pca(vectors: np.ndarray) -> Projection:
    """PCA to 2-D, deterministic, each component's sign fixed so that its largest loading is
    positive: the same embeddings always give the same map.

    Up to ``EXACT_PCA_DIM`` dimensions (or with fewer rows than dimensions) the covariance is
    solved exactly; above, a block power iteration from a fixed start finds the top two
    components (cost O(n * dim * BLOCK) instead of O(n * dim^2 + dim^3): 512-dimensional
    embeddings of 10,000 artworks in tens of milliseconds), converging as
    (lambda_17 / lambda_2)^12."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ConfigError(f"vectors must be [n, dim], got shape {list(x.shape)}")
    n, dim = x.shape
    if n == 0:
        return Projection(np.zeros((0, 2)), "pca", None)
    centred = x - x.mean(axis=0)
    if dim <= EXACT_PCA_DIM or n <= dim:
        if n > dim:
            values, vecs = np.linalg.eigh(centred.T @ centred)
            vecs = vecs[:, np.argsort(values)[::-1]]
        else:
            vecs = np.linalg.svd(centred, full_matrices=False)[2].T
    else:
        basis = np.random.default_rng(0).normal(size=(dim, BLOCK))
        for _ in range(POWER_ITERATIONS):
            basis = np.linalg.qr(centred.T @ (centred @ basis))[0]
        projected = centred @ basis
        values, small = np.linalg.eigh(projected.T @ projected)
        vecs = basis @ small[:, np.argsort(values)[::-1]]
    components = np.zeros((dim, 2))
    take = min(2, vecs.shape[1])
    components[:, :take] = vecs[:, :take]
    for j in range(take):
        if components[np.argmax(np.abs(components[:, j])), j] < 0:
            components[:, j] *= -1
    points = centred @ components
    total = float((centred ** 2).sum())
    explained = tuple(float((points[:, j] ** 2).sum()) / total if total > 0 else 0.0 for j in range(2))
    return Projection(points, "pca", explained)


def project(vectors: np.ndarray, method: str = "pca", *, seed: int = 0) -> Projection:
    """The embeddings in 2-D: ``pca``, or ``umap`` (cosine metric, fixed seed) when umap-learn
    is installed and there are enough points for it."""
    if method not in PROJECTIONS:
        raise ConfigError(f"unknown projection {method!r}; use one of {', '.join(PROJECTIONS)}")
    x = np.asarray(vectors, dtype=np.float32)
    if method == "pca" or not umap_available() or len(x) < 5:
        return pca(x)
    import umap

    reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed, n_neighbors=min(15, len(x) - 1))
    return Projection(np.asarray(reducer.fit_transform(x), dtype=np.float64), "umap", None)
