"""Training the project's own diffusion model: a small diffusers ``UNet2DModel`` (DDPM).

The objective is the DDPM one (Ho et al. 2020): pick a timestep t and noise e, noise the image
with the scheduler's ``add_noise``, and regress the UNet's prediction on e (mean squared
error). An exponential moving average of the weights is what gets saved, as for the GANs.
The finished folder is a diffusers pipeline layout (``unet/`` + ``scheduler/``), so
``load_generator("diffusion:OUT")`` reads it exactly as it reads a published DDPM, and
samples it with DDIM at eta = 0.

Runs live in ``OUT.partial/`` and resume from their checkpoint like the GAN runs
(``runs.py``, ``checkpoint.py``): rerunning the same command continues the same run.
"""

from __future__ import annotations

import copy
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from data.errors import ArtbiasError, ConfigError
from data.files import replace_folder, write_atomically
from data.validation import check_number
from data.world.params import CLASSES
from generators.training.checkpoint import (
    TrainingState,
    load_checkpoint,
    read_state,
    save_checkpoint,
)
from generators.training.config import (
    CONFIG_DIR,
    changed_keys,
    check_flag,
    config_from_dict,
    read_config_file,
)
from generators.training.data import grid_labels, parse_classes
from generators.training.losses import ema_beta, update_ema
from generators.training.outputs import (
    LossLog,
    data_arguments,
    run_arguments,
    save_grid,
    write_training_record,
)
from generators.training.precision import (
    autocast,
    check_precision,
    describe_precision,
    set_memory_format,
)
from generators.training.runs import check_device, open_run, torch_threads

DEFAULT_CONFIG = CONFIG_DIR / "ddpm-world.json"
SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
LOSS_COLUMNS = ("step", "loss", "lr")
SAMPLER_STREAM, GRID_STREAM = 1_000_003, 2_000_003
GRID_SIZE = 64
NULL_CLASS = len(CLASSES)  # a conditional UNet's "no class" embedding, after the world's classes


class TrainingDiverged(ArtbiasError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class DiffusionTrainConfig:
    """One DDPM training run.

    model: keyword arguments of diffusers' ``UNet2DModel`` (sample size and channels are
        set from ``image_size``).
    num_train_timesteps / beta_schedule: the forward process the UNet learns to invert.
    lr / warmup_steps / grad_clip: Adam, linearly warmed up, gradients clipped by norm.
    ema_half_life_images: the saved weights are this moving average of the trained ones.
    sample_inference_steps: DDIM steps of the sample grids drawn during training.
    precision / channels_last: as for the GANs (``precision.py``).
    fresh_renders: as for the GANs: new renders of the data folder's world each batch.
    class_conditional: the UNet also takes the scene class: ``num_class_embeds`` is the
        number of world classes plus one, the last embedding meaning "no class". Each label
        becomes "no class" with chance ``class_dropout``, so the one network also learns the
        unconditional prediction that classifier-free guidance needs. The class embeddings
        start at zero: step 0 is the unconditional model it may start from (``init_from``).
    class_lr_scale: the class embeddings learn at this multiple of ``lr``: started at zero
        beside a trained time embedding (norm 2-17), at the body's rate they stay too small to
        steer it for thousands of steps (norm 0.1 after 500 steps at lr 5e-4).
    init_from: a diffusers folder whose UNet weights start the run (e.g. the unconditional
        model a conditional one is fine-tuned from); weights it lacks (the class embedding)
        start at zero. Its weights' digest is recorded with the run.
    """

    arch: str = "ddpm"
    model: dict = field(default_factory=dict)
    image_size: int = 32
    steps: int = 2000
    batch_size: int = 64
    seed: int = 0
    sample_every: int = 500
    checkpoint_every: int = 500
    lr: float = 1e-3
    warmup_steps: int = 100
    grad_clip: float = 1.0
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    ema_half_life_images: float = 10_000.0
    ema_rampup: float | None = 0.1
    sample_inference_steps: int = 20
    precision: str = "float32"
    channels_last: bool = False
    fresh_renders: bool = False
    class_conditional: bool = False
    class_dropout: float = 0.1
    class_lr_scale: float = 1.0
    init_from: str | None = None

    def __post_init__(self):
        check_flag("fresh_renders", self.fresh_renders)
        check_flag("class_conditional", self.class_conditional)
        check_number(self.class_dropout, "class_dropout", minimum=0, below=1)
        check_number(self.class_lr_scale, "class_lr_scale", above=0, maximum=1000)
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from.strip()):
            raise ConfigError(f"init_from must be a folder path or null, got {self.init_from!r}")
        if self.arch != "ddpm":
            raise ConfigError(f"a diffusion training config has arch 'ddpm', got {self.arch!r}")
        size = self.image_size
        if not isinstance(size, int) or size < 8 or size & (size - 1):
            raise ConfigError(f"image size must be a power of two >= 8, got {size!r}")
        for name in ("steps", "batch_size", "sample_every", "checkpoint_every", "num_train_timesteps",
                     "sample_inference_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not self.lr > 0 or not self.grad_clip > 0 or not self.ema_half_life_images > 0:
            raise ConfigError("lr, grad_clip and ema_half_life_images must be positive")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")
        if self.ema_rampup is not None and not self.ema_rampup > 0:
            raise ConfigError(f"ema_rampup must be positive or null, got {self.ema_rampup}")
        if self.beta_schedule not in SCHEDULES:
            raise ConfigError(f"unknown beta_schedule {self.beta_schedule!r}; choose from {', '.join(SCHEDULES)}")
        if not isinstance(self.model, dict):
            raise ConfigError(f"model must be a JSON object, got {type(self.model).__name__}")
        if {"num_class_embeds", "class_embed_type"} & set(self.model):
            raise ConfigError("set class_conditional: true instead of the model's num_class_embeds / class_embed_type")
        if self.sample_inference_steps > self.num_train_timesteps:
            raise ConfigError("sample_inference_steps cannot exceed num_train_timesteps")
        check_precision(self.precision, self.channels_last)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> DiffusionTrainConfig:
        return config_from_dict(cls, raw, source)

    def differences(self, other: DiffusionTrainConfig) -> list[str]:
        return changed_keys(self.to_dict(), other.to_dict())


def load_ddpm_config(path: str | Path | None = None, **overrides) -> DiffusionTrainConfig:
    """``configs/ddpm-world.json`` (or ``path``) with the non-None ``overrides`` applied."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    config = DiffusionTrainConfig.from_dict(read_config_file(path), source=str(path))
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def build_unet(config: DiffusionTrainConfig):
    from diffusers import UNet2DModel

    arguments = {"sample_size": config.image_size, "in_channels": 3, "out_channels": 3} | config.model
    if config.class_conditional:
        arguments["num_class_embeds"] = NULL_CLASS + 1
    try:
        unet = UNet2DModel(**arguments)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"ddpm model config {config.model}: {error}") from error
    if unet.class_embedding is not None:
        torch.nn.init.zeros_(unet.class_embedding.weight)  # step 0 draws as the unconditional model
    return unet


def start_from(unet, folder: str | Path) -> dict:
    """Copy the UNet weights of the diffusers folder ``folder`` into ``unet``; only the class
    embedding may be missing there. Returns the weights' record (path and digest)."""
    from generators.diffusion import load_unet_and_scheduler, unet_weights

    if not Path(folder).is_dir():
        raise ConfigError(f"init_from {folder}: no such model folder")
    source, _ = load_unet_and_scheduler(folder)
    try:
        missing, unexpected = unet.load_state_dict(source.state_dict(), strict=False)
    except RuntimeError as error:  # a tensor of another shape
        raise ConfigError(f"init_from {folder}: its UNet does not fit the config's model ({str(error).splitlines()[-1].strip()})") from None
    missing = [key for key in missing if not key.startswith("class_embedding.")]
    if missing or unexpected:
        raise ConfigError(f"init_from {folder}: its UNet does not fit the config's model "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return unet_weights(folder)


def build_scheduler(config: DiffusionTrainConfig):
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=config.num_train_timesteps, beta_schedule=config.beta_schedule,
                         prediction_type="epsilon", clip_sample=True)


def save_diffusers(unet, config: DiffusionTrainConfig, directory: Path) -> None:
    """The diffusers layout ``load_generator("diffusion:DIR")`` reads: the (EMA) UNet and the
    training scheduler's config."""
    unet.save_pretrained(directory / "unet", safe_serialization=True)
    build_scheduler(config).save_pretrained(directory / "scheduler")


@torch.no_grad()
def sample_ddim(unet, train_scheduler, noise: torch.Tensor, steps: int,
                class_labels: torch.Tensor | None = None) -> torch.Tensor:
    """Images in [-1, 1] from ``noise`` by DDIM at eta = 0, as the registry's loader samples
    (of the classes ``class_labels`` [B] for a conditional UNet, without guidance)."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(train_scheduler.config)
    scheduler.set_timesteps(steps)
    sample = noise
    for t in scheduler.timesteps:
        sample = scheduler.step(unet(sample, t, class_labels=class_labels).sample, t, sample, eta=0.0).prev_sample
    return sample.clamp(-1, 1)


def train_ddpm(
    config: DiffusionTrainConfig,
    data: str | Path,
    out: str | Path,
    *,
    classes=None,
    progress: bool = True,
    threads: int | None = None,
    device: str | torch.device = "cpu",
    config_path: str | Path | None = None,
) -> Path:
    """Train (or resume, or extend) a DDPM on the images under ``data``; returns ``out``."""
    out = Path(out)
    run_dir = out.with_name(out.name + ".partial")
    classes = parse_classes(classes)
    # A bad model config, or a starting model that does not fit it, fails before any data is
    # read. (On a resume the checkpoint then replaces the starting weights; the record names them.)
    torch.manual_seed(config.seed)  # the UNet's initial weights
    unet = build_unet(config)
    started_from = start_from(unet, config.init_from) if config.init_from else None
    device = check_device(device)
    with torch_threads(threads):
        return _train(config, unet, started_from, data, out, run_dir, classes, progress, device, config_path)


def _train(config, unet, started_from, data, out, run_dir, classes, progress, device, config_path) -> Path:
    images, data_record, checkpoint = open_run(config, data, out, run_dir, classes)
    if checkpoint == "finished":
        if progress:
            print(f"{out} is already trained for {config.steps} steps; nothing to do", file=sys.stderr)
        return out

    rng = torch.Generator().manual_seed(config.seed + SAMPLER_STREAM)  # batches, timesteps, noise
    unet = unet.to(device).train()
    set_memory_format({"unet": unet}, config.channels_last)
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    networks = {"unet": unet, "unet_ema": ema}
    mixed = autocast(config.precision, device)
    optimizers = {"unet": torch.optim.Adam(_parameter_groups(unet, config), lr=config.lr)}
    scheduler = build_scheduler(config)
    state = TrainingState(step=0, images_seen=0, config=config, data=data_record, wall_time_s=0.0)
    if checkpoint is not None:
        load_checkpoint(checkpoint, networks, optimizers, rng)
        previous = read_state(checkpoint, DiffusionTrainConfig)
        state.step, state.images_seen, state.wall_time_s = previous.step, previous.images_seen, previous.wall_time_s

    grid_noise = torch.randn(GRID_SIZE, 3, config.image_size, config.image_size,
                             generator=torch.Generator().manual_seed(config.seed + GRID_STREAM)).to(device)
    log = LossLog(run_dir / "losses.csv", state.step, LOSS_COLUMNS)
    alphas = scheduler.alphas_cumprod.to(device)
    grid_classes = grid_labels(images, GRID_SIZE).to(device) if config.class_conditional else None

    from tqdm import tqdm

    first_step = state.step
    started = loop_started = time.perf_counter()
    bar = tqdm(total=config.steps, initial=state.step, desc="train ddpm", unit="step",
               disable=not progress, dynamic_ncols=True)
    try:
        for step in range(state.step + 1, config.steps + 1):
            reals, labels = images.batch(config.batch_size, rng)
            t = torch.randint(config.num_train_timesteps, (config.batch_size,), generator=rng)
            noise = torch.randn(reals.shape, generator=rng)
            if config.class_conditional:
                dropped = torch.rand(config.batch_size, generator=rng) < config.class_dropout
                labels = torch.where(dropped, NULL_CLASS, labels).to(device)
            else:
                labels = None
            reals, t, noise = reals.to(device), t.to(device), noise.to(device)
            a = alphas[t].view(-1, 1, 1, 1)
            noisy = a.sqrt() * reals + (1 - a).sqrt() * noise  # the scheduler's add_noise
            with mixed:
                prediction = unet(noisy, t, class_labels=labels).sample
            loss = F.mse_loss(prediction.float(), noise)
            lr = config.lr * min(1.0, step / max(config.warmup_steps, 1))
            for group in optimizers["unet"].param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            optimizers["unet"].zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), config.grad_clip)
            optimizers["unet"].step()
            state.step, state.images_seen = step, state.images_seen + config.batch_size
            update_ema(ema, unet, ema_beta(config.ema_half_life_images, config.batch_size, state.images_seen,
                                           config.ema_rampup))

            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDiverged(f"training diverged at step {step} (loss {value}); lower lr in the config, "
                                       "or resume from the last checkpoint")
            log.append({"step": step, "loss": value, "lr": lr})
            bar.update(1)
            if step % 10 == 0 or step == config.steps:
                bar.set_postfix(loss=f"{value:.4f}", refresh=False)
            if step % config.sample_every == 0 or step == config.steps:
                grid = sample_ddim(ema, scheduler, grid_noise, config.sample_inference_steps, grid_classes)
                save_grid(grid, run_dir / "samples" / f"step_{step:06d}.png")
            if step % config.checkpoint_every == 0 or step == config.steps:
                log.flush()
                state.wall_time_s += time.perf_counter() - started
                started = time.perf_counter()
                save_checkpoint(run_dir, networks, optimizers, rng, state)
    except KeyboardInterrupt:
        print(f"\ninterrupted at step {state.step}; rerun the same command to resume", file=sys.stderr)
        raise
    finally:
        bar.close()
        log.close()
    steps_run, loop_s = config.steps - first_step, time.perf_counter() - loop_started

    # The diffusers layout: the EMA UNet and the training scheduler's config.
    set_memory_format(networks, False)  # safetensors stores NCHW
    save_diffusers(ema.to("cpu"), config, run_dir)
    from data.provenance import versions

    record = {
        "arch": "ddpm",
        "family": "diffusion",
        "data": data_record,
        "steps": config.steps,
        "images_seen": state.images_seen,
        "config": config.to_dict(),
        "parameters": {"unet": sum(p.numel() for p in ema.parameters()),
                       "megabytes_fp32": (run_dir / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size / 1e6},
        "final_losses": log.recent_means(100),
        "wall_time_s": round(state.wall_time_s, 1),
        "steps_per_s": round(steps_run / loop_s, 3),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "versions": versions(),
        "command": reproduce_command(config, images.root, out, classes, config_path),
    }
    if started_from is not None:
        record["init_from"] = started_from
    write_training_record(run_dir, record)
    _write_card(run_dir, record)
    replace_folder(run_dir, out)
    return out


def _parameter_groups(unet, config: DiffusionTrainConfig) -> list[dict]:
    """Adam's parameter groups: the class embeddings (at ``class_lr_scale`` times the rate), the rest."""
    classes = [p for name, p in unet.named_parameters() if name.startswith("class_embedding.")]
    rest = [p for name, p in unet.named_parameters() if not name.startswith("class_embedding.")]
    groups = [{"params": rest, "lr_scale": 1.0}]
    if classes:
        groups.append({"params": classes, "lr_scale": float(config.class_lr_scale)})
    return groups


def reproduce_command(config, data: Path, out: Path, classes, config_path) -> str:
    parts = ["artbias", "train", "ddpm", "--data", str(data), "--out", str(out)]
    if config_path is not None and Path(config_path).resolve() != DEFAULT_CONFIG:
        parts += ["--config", str(config_path)]
    start = ["--init-from", config.init_from] if config.init_from else []
    return shlex.join(parts + run_arguments(config) + start + data_arguments(config, classes))


def _write_card(directory: Path, record: dict) -> None:
    data, config = record["data"], record["config"]
    composition = ", ".join(f"{name} {count}" for name, count in data["class_counts"].items() if count)
    lines = [
        "# DDPM trained on the scenery world",
        "",
        "- **Load**: `load_generator(\"diffusion:<this folder>\")` (diffusers layout: `unet/` + `scheduler/`), "
        "sampled with DDIM at eta = 0",
        f"- **Architecture**: diffusers UNet2DModel, {config['image_size']} px, "
        f"{record['parameters']['unet']:,} parameters ({record['parameters']['megabytes_fp32']:.1f} MB fp32)",
        *([f"- **Class-conditional**: one embedding per world class and one for \"no class\" (labels dropped "
            f"with chance {config['class_dropout']}, for classifier-free guidance; the embeddings learn at "
            f"{config['class_lr_scale']:g}x the rate)"] if config["class_conditional"] else []),
        *([f"- **Started from**: `{record['init_from']['path']}` (sha256 {record['init_from']['sha256']})"]
          if "init_from" in record else []),
        f"- **Training data**: `{data['path']}`, {data['n_images']} images: {composition}",
        f"- **Training**: {record['steps']} steps of batch {config['batch_size']}, seed {config['seed']}, "
        f"{config['num_train_timesteps']} timesteps ({config['beta_schedule']}), Adam lr {config['lr']}, "
        f"EMA half-life {config['ema_half_life_images']:,.0f} images, {describe_precision(config)}",
        f"- **Final loss** (mean of the last 100 steps): {record['final_losses'].get('loss', float('nan')):.4f}",
        f"- **Wall time**: {record['wall_time_s'] / 60:.1f} min on {record['threads']} threads ({record['device']})",
        f"- **Reproduce**: `{record['command']}`",
        "",
        "Samples during training are in `samples/`, per-step losses in `losses.csv`. A toy model of",
        "a procedural world, for studying generator bias; not a model of real photographs.",
        "",
    ]
    write_atomically(directory / "card.md", lambda p: p.write_text("\n".join(lines)))
