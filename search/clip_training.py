"""Training the starter CLIP on a world dataset's captions (contrastive, open_clip's own loss).

Read top to bottom: config -> data -> model -> loop -> save -> evaluate. The result is an
open_clip ``local-dir`` folder (``open_clip_config.json`` + ``open_clip_model.safetensors``),
the same layout published CLIP checkpoints use, so it loads through ``search.clip.load_clip``
and open_clip itself, with no special path.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from data.errors import ConfigError, DatasetError
from data.provenance import versions

CONFIG_DIR = Path(__file__).with_name("configs")
CAPTION_VARIANTS = 8  # paraphrases per image; each epoch uses the next one


@dataclass(frozen=True)
class ClipTrainConfig:
    data: str
    out: str
    architecture: str = "clip-world"
    epochs: int = 12
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    seed: int = 0
    eval_n: int = 1200
    eval_seed: int = 12345

    def validate(self) -> None:
        if not (CONFIG_DIR / f"{self.architecture}.json").is_file():
            known = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
            raise ConfigError(f"unknown CLIP architecture {self.architecture!r}; known: {', '.join(known)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")


# -- data ----------------------------------------------------------------------------------
def load_captioned_images(root: Path, split: str = "train") -> tuple[torch.Tensor, list[list[str]], dict]:
    """Images [N,3,H,W] uint8 and, per image, its caption paraphrases, from a world manifest."""
    import pyarrow.parquet as pq
    from PIL import Image

    manifest = root / "manifest.parquet"
    if not manifest.is_file():
        raise DatasetError(f"{root} has no manifest.parquet (build one with `artbias data world`)")
    table = pq.read_table(manifest).to_pandas()
    table = table[table["split"] == split].reset_index(drop=True)
    if table.empty:
        raise DatasetError(f"{manifest} has no {split!r} rows")
    images = np.stack([np.asarray(Image.open(root / p).convert("RGB")) for p in tqdm(table["path"], desc="load", leave=False)])
    rule = world_rule(root)
    captions = _paraphrases(table, rule) if "noise_seed" in table else [[c] for c in table["caption"]]
    composition = table["class"].value_counts(normalize=True).sort_index().to_dict()
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), captions, composition


def world_rule(root: Path):
    """The aesthetic rule a world was built under (its ``world.json``), or the default rule."""
    from data.world.aesthetic import AestheticRule

    meta = root / "world.json"
    if meta.is_file():
        recorded = json.loads(meta.read_text()).get("aesthetic_rule")
        if recorded:
            return AestheticRule.from_dict(recorded, source=str(meta))
    return AestheticRule.load()


def _paraphrases(table, rule) -> list[list[str]]:
    """World manifests keep every scene attribute, so fresh paraphrases can be drawn."""
    from data.world.captions import caption_scenes
    from data.world.params import SceneBatch

    scenes = SceneBatch.from_records(table.to_dict("records"))
    variants = [list(table["caption"])] + [
        [c.text for c in caption_scenes(scenes, rule, variant=v)] for v in range(1, CAPTION_VARIANTS)
    ]
    return [list(texts) for texts in zip(*variants, strict=True)]


# -- model ---------------------------------------------------------------------------------
def build_model(architecture: str, seed: int):
    import open_clip
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    model_cfg = json.loads((CONFIG_DIR / f"{architecture}.json").read_text())
    model = CLIP(**model_cfg)
    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=model_cfg["text_cfg"]["context_length"])
    return model, model_cfg, tokenizer


def save_clip_dir(model, model_cfg: dict, preprocess: dict, out: Path) -> None:
    """open_clip's local-dir layout; weights stored as fp16 to keep the shipped zoo small."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    (out / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess}, indent=2))
    state = {k: v.detach().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous()
             for k, v in model.state_dict().items()}
    save_file(state, str(out / "open_clip_model.safetensors"))


# -- training ------------------------------------------------------------------------------
def train_clip(config: ClipTrainConfig, progress: bool = True) -> dict:
    from open_clip.loss import ClipLoss

    config.validate()
    out = Path(config.out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"output {out} already exists and is not empty")
    started = time.time()
    images, captions, composition = load_captioned_images(Path(config.data))
    rule = world_rule(Path(config.data))
    model, model_cfg, tokenizer = build_model(config.architecture, config.seed)
    size = model_cfg["vision_cfg"]["image_size"]
    if images.shape[-1] != size:
        raise DatasetError(f"images are {images.shape[-1]} px but {config.architecture} expects {size} px")
    # Normalise with the training images' own statistics; they travel with the weights.
    pixels = images.float().div_(255)
    mean, std = pixels.mean((0, 2, 3)), pixels.std((0, 2, 3))
    preprocess = {"size": size, "mean": mean.tolist(), "std": std.tolist(), "interpolation": "bicubic",
                  "resize_mode": "shortest"}
    pixels = (pixels - mean[:, None, None]) / std[:, None, None]
    tokens = [tokenizer([caps[v % len(caps)] for caps in captions]) for v in range(CAPTION_VARIANTS)]

    generator = torch.Generator().manual_seed(config.seed)
    steps_per_epoch = max(1, len(pixels) // config.batch_size)
    total = steps_per_epoch * config.epochs
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / config.warmup_steps) * 0.5 * (1 + math.cos(math.pi * s / total))
    )
    loss_fn = ClipLoss()
    history = []
    model.train()
    with tqdm(total=total, desc="train clip", unit="step", disable=not progress) as bar:
        for epoch in range(config.epochs):
            order = torch.randperm(len(pixels), generator=generator)
            epoch_tokens = tokens[epoch % CAPTION_VARIANTS]
            for step in range(steps_per_epoch):
                index = order[step * config.batch_size : (step + 1) * config.batch_size]
                batch = pixels[index]
                flip = torch.rand(len(index), generator=generator) < 0.5
                batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
                image_features, text_features, logit_scale = model(batch, epoch_tokens[index])
                loss = loss_fn(image_features, text_features, logit_scale)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                with torch.no_grad():
                    model.logit_scale.clamp_(0, math.log(100))
                history.append(loss.item())
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{history[-1]:.3f}")
    model.eval()
    wall = time.time() - started

    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        save_clip_dir(model, model_cfg, preprocess, staging)
        metrics = _evaluate_saved(staging, config, rule)
        record = {
            "config": asdict(config), "data_composition": composition, "aesthetic_rule": rule.to_dict(),
            "images": len(pixels), "steps": total,
            "final_loss": float(np.mean(history[-steps_per_epoch:])), "loss_history": history[:: max(1, total // 200)],
            "wall_time_s": wall, "metrics": metrics, "versions": versions(),
            "command": "artbias " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("artbias") else None,
        }
        (staging / "training.json").write_text(json.dumps(record, indent=2))
        (staging / "card.md").write_text(_card(record))
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return record


def _evaluate_saved(folder: Path, config: ClipTrainConfig, rule) -> dict:
    """Metrics of the weights as saved (fp16), loaded the way users load them."""
    from search.clip import load_clip
    from search.scorer import ClipScorer
    from search.world_eval import evaluate_world_clip

    return evaluate_world_clip(ClipScorer(load_clip(str(folder))), n=config.eval_n, seed=config.eval_seed,
                               rule=rule)


def trained_rule(folder: str | Path):
    """The aesthetic rule a CLIP trained by ``artbias train clip`` learnt from (its
    ``training.json``), or None for a CLIP without that record (published ones)."""
    from data.world.aesthetic import AestheticRule

    record = Path(folder) / "training.json"
    if not record.is_file():
        return None
    raw = json.loads(record.read_text()).get("aesthetic_rule")
    return AestheticRule.from_dict(raw, source=str(record)) if raw else AestheticRule.load()


def rule_description(rule: dict | None) -> str:
    """One line naming the notion of beauty a CLIP was trained under: the default rule, or what a
    counterfactual rule ranks highest (its weights stay in ``training.json``)."""
    from data.world.aesthetic import AestheticRule

    if not rule or rule == AestheticRule.load().to_dict():
        return "the world's default rule (data/world/aesthetic.json)"
    def top(weights: dict[str, float]) -> str:  # ties named together
        best = max(weights.values())
        return f"{' = '.join(k for k, v in weights.items() if v == best)} ({best:+.1f})"

    tops = ", ".join(f"{axis} {top(rule[axis])}" for axis in ("class", "time", "weather"))
    return f"a rule of its own, not the world's default: highest {tops}; every weight in `aesthetic_rule`"


def _card(record: dict) -> str:
    config, metrics = record["config"], record["metrics"]
    composition = ", ".join(f"{k} {v:.2f}" for k, v in record["data_composition"].items())
    description = rule_description(record.get("aesthetic_rule"))
    neutral = metrics.get("beautiful_minus_neutral_spearman")
    beauty = "" if neutral is None else (
        f"""  Spearman correlation with the aesthetic value of sim("a beautiful landscape") minus
  sim("a landscape") {neutral:.3f}, of the raw similarity {metrics['beautiful_spearman']:.3f},
  of sim("a beautiful landscape") minus sim("a dull landscape") {metrics['beautiful_minus_dull_spearman']:.3f}.
""")
    return f"""# {Path(config['out']).name}: a starter CLIP for the scenery world

A small open_clip model ({config['architecture']}: ViT image tower at 64 px, small text tower,
open_clip's standard BPE tokenizer) trained contrastively on world captions. It knows only the
scenery world; it is the offline stand-in for a published CLIP.

- Notion of beauty it learnt (the world's aesthetic rule, recorded in `training.json`):
  {description}
- Training data: `{Path(config['data']).name}`, {record['images']} images, composition {composition};
  {CAPTION_VARIANTS} caption paraphrases per image, one per epoch.
- Recipe: {config['epochs']} epochs, batch {config['batch_size']}, AdamW lr {config['lr']} (cosine, warm-up
  {config['warmup_steps']} steps), weight decay {config['weight_decay']}, seed {config['seed']}; {record['steps']} steps in
  {record['wall_time_s'] / 60:.1f} min; final loss {record['final_loss']:.3f}.
- Weights: fp16 safetensors; preprocessing (mean, std, size) in `open_clip_config.json`.
- Evaluation on {metrics['n']} freshly rendered scenes (seed {metrics['seed']}), judged by that rule:
  zero-shot accuracy over the six classes {metrics['zero_shot_accuracy']:.3f};
{beauty}- Reproduce: `{record['command'] or 'artbias train clip --data DATA --out OUT'}`
"""
