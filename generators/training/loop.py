"""One GAN training loop for every family the project trains (DCGAN, StyleGAN2, BigGAN-deep).

Read ``train_gan`` top to bottom: load the images into memory, find where the run stands
(new, interrupted, or finished and asked for more steps), build the networks through the
architecture's recipe, then per step one discriminator update and one generator update,
the EMA, logging, sample grids and checkpoints; at the end finish and save the generator in
its family's format and swap the finished folder into place.

While it trains, a run lives in ``<out>.partial/`` (samples, ``losses.csv``, checkpoint);
``<out>`` only ever appears complete. Rerunning the same command resumes from the
checkpoint and continues the same run: the RNG states are part of it, so on the CPU ``N``
steps at once and ``k`` steps then a resume to ``N`` give the same weights bit for bit.
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from data.errors import ArtbiasError
from data.files import replace_folder
from data.world.params import CLASSES
from generators.training.augment import augment
from generators.training.checkpoint import (
    TrainingState,
    find_checkpoint,
    load_checkpoint,
    read_state,
    save_checkpoint,
)
from generators.training.config import TrainConfig, default_config_path
from generators.training.data import grid_labels, parse_classes
from generators.training.losses import (
    discriminator_loss,
    ema_beta,
    generator_loss,
    r1_penalty,
    update_ema,
)
from generators.training.outputs import (
    LossLog,
    data_arguments,
    run_arguments,
    save_grid,
    write_card,
    write_training_record,
)
from generators.training.precision import autocast, set_memory_format
from generators.training.recipes import make_recipe
from generators.training.runs import check_device, open_run, torch_threads

# Separate random streams, all derived from the run's seed: batches and latents (saved with
# the checkpoint), the fixed latents of the sample grids, and the post-training statistics.
SAMPLER_STREAM, GRID_STREAM, FINISH_STREAM = 1_000_003, 2_000_003, 3_000_017
GRID_SIZE = 64  # 8 x 8 samples


class TrainingDiverged(ArtbiasError):
    """A loss became NaN or infinite."""


def train_gan(
    config: TrainConfig,
    data: str | Path,
    out: str | Path,
    *,
    classes: str | Sequence[str] | None = None,
    progress: bool = True,
    threads: int | None = None,
    config_path: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> Path:
    """Train (or resume, or extend) a GAN on the images under ``data``; returns ``out``.

    ``out`` ends as the generator folder in its family's format (``load_generator(
    "<family>:out")``) with the discriminator, ``card.md``, ``training.json``, ``losses.csv``,
    ``samples/`` and ``checkpoint/``. Nothing is written before the arguments and data check out.

    ``device`` holds the networks, batches and latents; the RNG that draws batches and latents
    stays a CPU generator (draws are made on the CPU, then moved), so a CPU run is the same
    bit for bit whatever device code there is. Only CPU runs promise bit-identical resumes:
    on an accelerator StyleGAN2's training noise comes from the device's own RNG, which the
    checkpoint does not hold, and its kernels need not be deterministic.
    """
    out = Path(out)
    run_dir = out.with_name(out.name + ".partial")
    classes = parse_classes(classes)
    make_recipe(config, list(range(len(CLASSES))))  # a bad architecture fails before any work
    device = check_device(device)
    with torch_threads(threads):
        return _train(config, data, out, run_dir, classes, progress, config_path, device)


def _train(config, data, out, run_dir, classes, progress, config_path, device) -> Path:
    # -- the data, decoded once, and where the run stands -------------------------------------
    images, data_record, checkpoint = open_run(config, data, out, run_dir, classes)
    if checkpoint == "finished":
        _say(progress, f"{out} is already trained for {config.steps} steps; nothing to do")
        return out

    # -- networks, optimisers, RNGs (a resumed run overwrites them all from the checkpoint) --
    torch.manual_seed(config.seed)
    rng = torch.Generator().manual_seed(config.seed + SAMPLER_STREAM)
    recipe = make_recipe(config, images.present_classes())
    networks = {name: net.to(device) for name, net in recipe.build_networks().items()}
    set_memory_format(networks, config.channels_last)
    G, D = networks["G"], networks["D"]
    G.train()
    D.train()
    # Lazy R1 (StyleGAN2): the discriminator's Adam is adjusted for a penalty that comes
    # once every r1_every steps, with r1_every times the weight.
    lazy = config.r1_every / (config.r1_every + 1) if config.r1_gamma > 0 else 1.0
    optimizers = {
        "G": torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=config.betas),
        "D": torch.optim.Adam(D.parameters(), lr=config.lr_d * lazy, betas=tuple(b**lazy for b in config.betas)),
    }
    state = TrainingState(step=0, images_seen=0, config=config, data=data_record, wall_time_s=0.0)
    if checkpoint is not None:
        load_checkpoint(checkpoint, networks, optimizers, rng)
        previous = read_state(checkpoint)
        state.step, state.images_seen, state.wall_time_s = previous.step, previous.images_seen, previous.wall_time_s

    composition = images.composition().float()
    grid_rng = torch.Generator().manual_seed(config.seed + GRID_STREAM)
    grid_z = torch.randn(GRID_SIZE, recipe.z_dim, generator=grid_rng).to(device)
    grid_classes = grid_labels(images, GRID_SIZE).to(device) if recipe.conditional else None
    log = LossLog(run_dir / "losses.csv", state.step)
    if state.step == 0:
        save_grid(recipe.sample(recipe.final_generator(networks), grid_z, grid_classes), run_dir / "samples" / "step_000000.png")

    # -- the loop ---------------------------------------------------------------------------
    from tqdm import tqdm

    def seen(images: torch.Tensor) -> torch.Tensor:  # what D sees: augmented, when asked for
        return augment(images, config.augment, rng) if config.augment else images

    batch = config.batch_size
    mixed = autocast(config.precision, device)  # forward passes only; losses in float32
    first_step = state.step
    started = loop_started = time.perf_counter()
    bar = tqdm(total=config.steps, initial=state.step, desc=f"train {config.arch}", unit="step",
               disable=not progress, dynamic_ncols=True)
    try:
        for step in range(state.step + 1, config.steps + 1):
            # Drawn on the CPU from the run's generator, then moved: the same draws on any device.
            reals, real_labels = (t.to(device) for t in images.batch(batch, rng))
            z = torch.randn(batch, recipe.z_dim, generator=rng).to(device)
            fake_labels = torch.multinomial(composition, batch, True, generator=rng).to(device) if recipe.conditional else None
            with mixed:
                fakes = recipe.generate(G, z, fake_labels)

            # Discriminator: reals up, fakes down; every r1_every steps also R1 on the reals.
            D.requires_grad_(True)
            regularise = config.r1_gamma > 0 and step % config.r1_every == 0
            reals.requires_grad_(regularise)
            with mixed:
                real_logits = recipe.discriminate(D, seen(reals), real_labels).float()
                fake_logits = recipe.discriminate(D, seen(fakes.detach()), fake_labels).float()
            d_loss = discriminator_loss(config.loss, real_logits, fake_logits)
            d_total = d_loss
            r1 = None
            if regularise:
                r1 = r1_penalty(real_logits, reals)
                d_total = d_loss + r1 * (config.r1_gamma / 2) * config.r1_every
            optimizers["D"].zero_grad(set_to_none=True)
            d_total.backward()
            optimizers["D"].step()

            # Generator: the same fakes, judged by the updated discriminator.
            D.requires_grad_(False)
            with mixed:
                g_logits = recipe.discriminate(D, seen(fakes), fake_labels).float()
            g_loss = generator_loss(config.loss, g_logits)
            optimizers["G"].zero_grad(set_to_none=True)
            g_loss.backward()
            optimizers["G"].step()

            state.step, state.images_seen = step, state.images_seen + batch
            if "G_ema" in networks:
                # beta 0 copies G exactly (lerp with weight 1), until the average's start step
                beta = (0.0 if step <= config.ema_start_step
                        else ema_beta(config.ema_half_life_images, batch, state.images_seen, config.ema_rampup))
                update_ema(networks["G_ema"], G, beta)

            # One transfer (one device sync) for the whole row.
            values = torch.stack([d_loss.detach(), g_loss.detach(), real_logits.detach().mean(),
                                  fake_logits.detach().mean(), (r1 if r1 is not None else d_loss).detach()]).tolist()
            row = {"step": step, "d_loss": values[0], "g_loss": values[1], "real_logit": values[2],
                   "fake_logit": values[3], "r1": values[4] if r1 is not None else math.nan}
            if not (math.isfinite(row["d_loss"]) and math.isfinite(row["g_loss"])):
                raise TrainingDiverged(
                    f"training diverged at step {step} (d_loss {row['d_loss']}, g_loss {row['g_loss']}); "
                    "lower the learning rates in the config, or resume from the last checkpoint"
                )
            log.append(row)
            bar.update(1)
            if step % 10 == 0 or step == config.steps:
                bar.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row['g_loss']:.3f}", refresh=False)
            if step % config.sample_every == 0 or step == config.steps:
                samples = recipe.sample(recipe.final_generator(networks), grid_z, grid_classes)
                save_grid(samples, run_dir / "samples" / f"step_{step:06d}.png")
            if step % config.checkpoint_every == 0 or step == config.steps:
                log.flush()
                state.wall_time_s += time.perf_counter() - started
                started = time.perf_counter()
                save_checkpoint(run_dir, networks, optimizers, rng, state)
    except KeyboardInterrupt:
        found = find_checkpoint(run_dir)
        resume = f"step {read_state(found).step}" if found else "the start"
        print(f"\ninterrupted at step {state.step}; rerun the same command to resume from {resume}",
              file=sys.stderr)
        raise
    finally:
        bar.close()
        log.close()
    steps_run, loop_s = config.steps - first_step, time.perf_counter() - loop_started

    # -- finish, save in the family's format, swap into place --------------------------------
    set_memory_format(networks, False)  # safetensors stores NCHW
    recipe.finish(networks, composition, torch.Generator().manual_seed(config.seed + FINISH_STREAM))
    recipe.save(networks, run_dir)
    saved = recipe.final_generator(networks)
    record = {
        "arch": config.arch,
        "family": recipe.family,
        "data": data_record,
        "steps": config.steps,
        "images_seen": state.images_seen,
        "config": config.to_dict(),
        "parameters": {
            "generator": _count(saved),
            "discriminator": _count(D),
            "megabytes_fp32": sum(p.stat().st_size for p in run_dir.glob("*.safetensors")) / 1e6,
        },
        "final_losses": log.recent_means(100),
        "wall_time_s": round(state.wall_time_s, 1),  # all sessions of the run, training only
        "steps_per_s": round(steps_run / loop_s, 3),  # this session, grids and checkpoints included
        "threads": torch.get_num_threads(),
        "device": str(device),  # this session's
        "versions": _versions(),
        "command": reproduce_command(config, images.root, out, classes, config_path),
    }
    write_training_record(run_dir, record)
    write_card(run_dir, record)
    replace_folder(run_dir, out)
    return out


# -- helpers ----------------------------------------------------------------------------------


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _versions() -> dict:
    from data.provenance import versions

    return versions()


def reproduce_command(config: TrainConfig, data: Path, out: Path, classes, config_path) -> str:
    """The ``artbias train gan`` command line that makes this run."""
    parts = ["artbias", "train", "gan", "--arch", config.arch, "--data", str(data), "--out", str(out)]
    if config_path is not None and Path(config_path).resolve() != default_config_path(config.arch):
        parts += ["--config", str(config_path)]
    return shlex.join(parts + run_arguments(config) + data_arguments(config, classes))


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr)
