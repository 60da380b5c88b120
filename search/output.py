"""Writing a search result to a folder: the chosen PNG, the top-k / Pareto PNGs, result.json.

The folder is written beside its destination and renamed into place at the end, so an
interrupted or failed write leaves nothing half-written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from data.files import check_output_folder, staged_folder
from data.validation import finite_json
from search.engine import SearchResult


def to_pil(image: torch.Tensor) -> Image.Image:
    """An image [3, H, W] in [-1, 1] as an 8-bit RGB PIL image."""
    array = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).numpy(), "RGB")


def result_record(result: SearchResult, image_name: str) -> dict:
    """The JSON-ready record of a search: settings, scores, latents, timings, versions."""
    config = result.config
    record = {
        "prompt": result.prompt.text,
        "templates": list(result.prompt.templates),
        "negatives": list(result.prompt.negatives),
        "negative_weight": result.prompt.negative_weight,
        "generator": result.generator,
        "clip": result.clip,
        "algorithm": config.algorithm,
        "settings": config.to_dict(),
        "seed": result.seed,
        "evaluations": result.evaluations,
        "best_similarity": result.similarity,
        "realism": result.realism,
        "history": result.history,
        "refine_history": result.refine_history,
        "latent": result.latent.tolist(),
        "top": [
            {"similarity": float(s), "latent": np.asarray(x).tolist(), "image": f"top_{i:02d}.png"}
            for i, (s, x) in enumerate(zip(result.top_similarities, result.top_latents, strict=True))
        ],
        "image": image_name,
        "anchor": None if result.anchor is None else np.asarray(result.anchor).tolist(),
        "timings": result.timings,
        "versions": result.versions,
    }
    if result.front is not None:
        record["pareto"] = {
            "rule": config.pareto_rule,
            "realism_threshold": config.realism_threshold,
            "rule_satisfied": result.rule_satisfied,
            "chosen": int(result.front["chosen"]),
            "members": [
                {"similarity": float(s), "realism": float(r), "latent": np.asarray(x).tolist(), "image": f"pareto_{i:02d}.png"}
                for i, (s, r, x) in enumerate(
                    zip(result.front["similarity"], result.front["realism"], result.front["latents"], strict=True)
                )
            ],
        }
    return record


RESULT_NAME = "result.json"


def is_search_result(folder: Path) -> bool:
    """Whether ``folder`` holds a result ``write_result`` made (its ``result.json``): the
    only kind of folder ``--force`` replaces."""
    try:
        record = json.loads((Path(folder) / RESULT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and {"prompt", "best_similarity", "latent", "settings"} <= set(record)


def check_output(out: str | Path, *, force: bool = False) -> Path:
    """The result folder, checked before a search starts: new or empty, or (with ``force``) an
    earlier result; never a file, a folder of other files or a read-only place."""
    return check_output_folder(out, force=force, earlier=is_search_result, what="output folder")


def write_result(result: SearchResult, out: str | Path, *, force: bool = False) -> Path:
    """Write the result folder atomically; a non-empty folder is replaced only with ``force``
    and only when it holds an earlier result."""
    out = check_output(out, force=force)  # again: something may have appeared there meanwhile
    record = json.dumps(finite_json(result_record(result, "image.png")), indent=2, allow_nan=False)
    with staged_folder(out, "search result") as staging:
        to_pil(result.image).save(staging / "image.png")
        for i, image in enumerate(result.top_images):
            to_pil(image).save(staging / f"top_{i:02d}.png")
        for i, image in enumerate(result.front["images"] if result.front is not None else []):
            to_pil(image).save(staging / f"pareto_{i:02d}.png")
        (staging / RESULT_NAME).write_text(record, encoding="utf-8")
    return out
