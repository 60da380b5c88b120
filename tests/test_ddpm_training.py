"""The DDPM trainer: it learns, resumes bit for bit, and saves a folder the registry loads.

A tiny UNet at 16 px on a tiny world set built here; a few dozen steps.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from data.errors import CheckpointError, ConfigError
from data.world.builder import WorldConfig, build_world
from gallery.cli import main
from generators.registry import load_generator
from generators.training.ddpm import DiffusionTrainConfig, load_ddpm_config, train_ddpm

STEPS, RESUME_AT = 30, 12
TINY_UNET = {
    "layers_per_block": 1,
    "block_out_channels": [8, 16],
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
    "norm_num_groups": 4,
}


def tiny_config(**overrides) -> DiffusionTrainConfig:
    config = load_ddpm_config(image_size=16, steps=STEPS, batch_size=8, sample_every=15)
    return replace(config, model=TINY_UNET, checkpoint_every=6, warmup_steps=5, lr=3e-3,
                   ema_half_life_images=50, sample_inference_steps=4, **overrides)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddpm-world") / "world"
    return build_world(root, WorldConfig(n=32, composition={"sea": 0.5, "glacier": 0.5}, size=32, seed=4,
                                         test_fraction=0), progress=False)


def read_losses(run: Path) -> list[float]:
    with (run / "losses.csv").open(newline="") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def test_ddpm_learns_resumes_exactly_and_loads_as_a_diffusion_generator(world, tmp_path):
    config = tiny_config()
    straight = train_ddpm(config, world, tmp_path / "straight", progress=False, threads=1)

    # Learning: the noise-prediction error falls from ~1 (predicting nothing) well below it.
    losses = read_losses(straight)
    assert len(losses) == STEPS and all(np.isfinite(losses))
    assert np.mean(losses[-8:]) < 0.6 * np.mean(losses[:4]), losses
    first, last = (np.asarray(Image.open(straight / "samples" / f"step_{s:06d}.png"), dtype=np.int16)
                   for s in (15, STEPS))
    assert np.abs(last - first).mean() > 1.0  # the EMA model's samples moved

    # Interrupted after RESUME_AT steps and resumed: the same run, bit for bit.
    resumed = tmp_path / "resumed"
    train_ddpm(replace(config, steps=RESUME_AT), world, resumed, progress=False, threads=1)
    train_ddpm(config, world, resumed, progress=False, threads=1)
    for name in ("checkpoint/state.safetensors", "unet/diffusion_pytorch_model.safetensors"):
        expected, got = load_file(str(straight / name)), load_file(str(resumed / name))
        assert expected.keys() == got.keys()
        assert all(torch.equal(expected[k], got[k]) for k in expected), f"{name} differs after resuming"
    assert read_losses(resumed) == losses

    # The diffusers layout loads through the registry like a published DDPM.
    generator = load_generator(f"diffusion:{straight}", num_inference_steps=4)
    images = generator.generate(generator.latent_space.sample(3, torch.Generator().manual_seed(0)))
    assert images.shape == (3, 3, 16, 16) and images.min() >= -1 and images.max() <= 1
    record = json.loads((straight / "training.json").read_text())
    assert record["data"]["class_counts"]["sea"] == 16 and record["data"]["class_counts"]["forest"] == 0
    assert record["command"].startswith("artbias train ddpm --data")
    assert record["config"]["seed"] == config.seed and "versions" in record
    assert "DDPM" in (straight / "card.md").read_text()


def test_finished_runs_are_kept_and_mismatched_resumes_refused(world, tmp_path):
    config = tiny_config(steps=4)
    out = train_ddpm(config, world, tmp_path / "run", progress=False, threads=1)
    weights = out / "unet" / "diffusion_pytorch_model.safetensors"
    before = weights.read_bytes()
    assert train_ddpm(config, world, out, progress=False, threads=1) == out
    with pytest.raises(ConfigError, match="different config.*lr"):
        train_ddpm(replace(config, steps=6, lr=1e-4), world, out, progress=False, threads=1)
    with pytest.raises(ConfigError, match="beyond --steps"):
        train_ddpm(replace(config, steps=2), world, out, progress=False, threads=1)
    assert weights.read_bytes() == before


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image_size": 24}, "power of two"),
        ({"beta_schedule": "cubic"}, "beta_schedule"),
        ({"steps": 0}, "steps must be an integer"),
        ({"model": {"block_out_channels": [8, 16], "no_such_option": 1}}, "ddpm model config"),
        ({"class_dropout": 1.0}, "class_dropout"),
        ({"class_conditional": "yes"}, "class_conditional"),
        ({"class_lr_scale": 0}, "class_lr_scale"),
        ({"model": {**TINY_UNET, "num_class_embeds": 7}}, "class_conditional: true instead"),
        ({"init_from": "no/such/model"}, "init_from no/such/model: no such model folder"),
    ],
)
def test_bad_configs_are_refused_before_anything_is_written(world, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        train_ddpm(replace(tiny_config(), **overrides), world, tmp_path / "out", progress=False, threads=1)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_a_gan_run_folder_is_not_resumed_as_a_ddpm(world, tmp_path):
    from generators.training import load_train_config, train_gan

    gan = replace(load_train_config("dcgan", image_size=32, steps=2, batch_size=4),
                  model={"nz": 8, "ngf": 8, "ndf": 8})
    out = train_gan(gan, world, tmp_path / "gan", progress=False, threads=1)
    with pytest.raises(CheckpointError, match="unreadable"):
        train_ddpm(tiny_config(steps=4), world, out, progress=False, threads=1)


def test_command_line_trains_and_reports_bad_config_files_in_one_line(world, tmp_path, capsys):
    config_file = tmp_path / "tiny.json"
    config_file.write_text(json.dumps(tiny_config(steps=3).to_dict()))
    out = tmp_path / "cli"
    assert main(["train", "ddpm", "--data", str(world), "--out", str(out), "--config", str(config_file),
                 "--threads", "1", "--quiet"]) == 0
    assert (out / "unet" / "config.json").is_file() and (out / "scheduler" / "scheduler_config.json").is_file()
    assert "--no-fresh-renders" in json.loads((out / "training.json").read_text())["command"]
    fresh = tmp_path / "fresh"
    assert main(["train", "ddpm", "--data", str(world), "--out", str(fresh), "--config", str(config_file),
                 "--fresh-renders", "--size", "32", "--threads", "1", "--quiet"]) == 0  # renders are >= 32 px
    record = json.loads((fresh / "training.json").read_text())
    assert record["config"]["fresh_renders"] is True and record["data"]["source"] == "fresh renders of the world"
    assert "--fresh-renders" in record["command"]
    (tmp_path / "broken.json").write_text("{not json")
    assert main(["train", "ddpm", "--data", str(world), "--out", str(tmp_path / "x"),
                 "--config", str(tmp_path / "broken.json"), "--quiet"]) == 2
    assert "not readable JSON" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["nonsense", "cuda"])
def test_unknown_or_absent_devices_are_refused_for_both_trainers(world, tmp_path, device):
    from generators.training import load_train_config, train_gan

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="device"):
        train_ddpm(tiny_config(), world, tmp_path / "ddpm", progress=False, device=device)
    with pytest.raises(ConfigError, match="device"):
        train_gan(load_train_config("dcgan", image_size=32, steps=2), world, tmp_path / "gan", progress=False,
                  device=device)
    assert list(tmp_path.iterdir()) == []


def test_the_64_px_recipe_config_loads_and_builds_its_unet():
    from generators.training.ddpm import CONFIG_DIR, build_unet

    config = load_ddpm_config(CONFIG_DIR / "ddpm-world-64.json")
    unet = build_unet(config)
    assert config.image_size == unet.config.sample_size == 64 and config.steps == 12000
    assert 3.0e6 < sum(p.numel() for p in unet.parameters()) < 3.3e6  # the size docs/fidelity.md states
    with torch.no_grad():
        out = unet(torch.zeros(1, 3, 64, 64), 10).sample
    assert out.shape == (1, 3, 64, 64)


# -- the class-conditional DDPM ---------------------------------------------------------------
@pytest.fixture(scope="module")
def conditional_runs(world, tmp_path_factory) -> tuple[Path, Path]:
    """An unconditional tiny DDPM, and a conditional one fine-tuned from it (as the zoo's)."""
    root = tmp_path_factory.mktemp("conditional")
    unconditional = train_ddpm(tiny_config(steps=6), world, root / "unconditional", progress=False, threads=1)
    config = tiny_config(steps=12, class_conditional=True, class_dropout=0.3, init_from=str(unconditional))
    return unconditional, train_ddpm(config, world, root / "conditional", progress=False, threads=1)


def test_a_conditional_run_starts_as_its_unconditional_model_and_learns_the_classes_it_is_shown(
        conditional_runs, world, tmp_path):
    from data.world.params import CLASSES
    from generators.diffusion import load_unet_and_scheduler
    from generators.training.ddpm import NULL_CLASS, build_unet, start_from

    unconditional, conditional = conditional_runs
    config = tiny_config(class_conditional=True, init_from=str(unconditional))
    unet, (source, _) = build_unet(config), load_unet_and_scheduler(unconditional)
    started = start_from(unet, unconditional)
    noisy = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # step 0 draws every class, and "no class", as the unconditional model
        expected = source(noisy, 500).sample
        for label in range(NULL_CLASS + 1):
            assert torch.allclose(unet(noisy, 500, class_labels=torch.full((2,), label)).sample, expected, atol=1e-6)

    # The world shows sea and glacier only: those embeddings learn, and "no class" (the
    # dropped labels); the classes never shown keep their zero start.
    embeddings = load_file(str(conditional / "unet" / "diffusion_pytorch_model.safetensors"))["class_embedding.weight"]
    assert embeddings.shape[0] == len(CLASSES) + 1
    assert (embeddings.abs().sum(dim=1) > 0).tolist() == [name in ("sea", "glacier") for name in CLASSES] + [True]
    record = json.loads((conditional / "training.json").read_text())
    weights_file = unconditional / "unet" / "diffusion_pytorch_model.safetensors"
    assert record["init_from"] == started and started["sha256"] == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert f"--init-from {unconditional}" in record["command"]

    # A starting model that does not fit the config is refused before anything is written.
    wider = replace(config, model={**TINY_UNET, "block_out_channels": [8, 32]})
    with pytest.raises(ConfigError, match="does not fit the config's model"):
        train_ddpm(wider, world, tmp_path / "wider", progress=False, threads=1)
    assert list(tmp_path.iterdir()) == []


def test_a_conditional_ddpm_generator_draws_the_class_its_logits_pick(conditional_runs):
    from data.world.params import CLASSES

    unconditional, conditional = conditional_runs
    generator = load_generator(f"diffusion:{conditional}", num_inference_steps=3)
    block = generator.latent_space.blocks[-1]
    assert block.name == "class_logits" and block.shape == (len(CLASSES),) and block.conditioning
    assert generator.class_names == tuple(CLASSES) and generator.settings()["guidance_scale"] == 1.0

    logits = torch.full((2, len(CLASSES)), -5.0)
    logits[0, CLASSES.index("sea")] = logits[1, CLASSES.index("glacier")] = 5.0
    weights = generator.class_weights(logits)
    assert torch.allclose(weights.sum(dim=1), torch.ones(2)) and weights[:, -1].eq(0).all()
    labels = torch.tensor([CLASSES.index("sea"), CLASSES.index("glacier")])
    noisy = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    none = torch.full((2,), len(CLASSES))
    with torch.no_grad():  # near one-hot class weights are the class's own embedding
        by_class = generator.unet(noisy, 300, class_labels=labels).sample
        unguided = generator.unet(noisy, 300, class_labels=none).sample
        assert torch.allclose(generator.predict_noise(noisy, 300, weights), by_class, atol=1e-6)
        guided = load_generator(f"diffusion:{conditional}", num_inference_steps=3, guidance_scale=3.0)
        assert torch.allclose(guided.predict_noise(noisy, 300, weights), unguided + 3.0 * (by_class - unguided),
                              atol=1e-5)

    latents = generator.latent_space.sample(4, torch.Generator().manual_seed(2))
    latents[:, -len(CLASSES):] = torch.eye(len(CLASSES))[[4, 2, 0, 5]] * 3.0
    assert generator.intended_classes(latents) == ["sea", "glacier", "buildings", "street"]
    latents.requires_grad_(True)
    images = generator.synthesize(generator.latent_space.split(latents))
    images.square().mean().backward()  # the search's gradients reach the class logits
    assert latents.grad[:, -len(CLASSES):].abs().sum() > 0

    with pytest.raises(ConfigError, match="guidance_scale needs a class-conditional UNet"):
        load_generator(f"diffusion:{unconditional}", guidance_scale=2.0)
    with pytest.raises(ConfigError, match="temperature"):
        load_generator(f"diffusion:{conditional}", temperature=0.0)


def test_the_class_embeddings_learn_at_their_own_rate(world, tmp_path):
    """``class_lr_scale`` speeds the class embeddings alone: the rest of the UNet trains as at
    scale 1 for the first step (Adam's first step is lr times the gradient's sign)."""
    moved = {}
    for scale in (1, 30):
        config = tiny_config(steps=3, class_conditional=True, class_dropout=0.0, class_lr_scale=scale)
        out = train_ddpm(config, world, tmp_path / f"scale{scale}", progress=False, threads=1)
        weights = load_file(str(out / "checkpoint" / "state.safetensors"))
        moved[scale] = weights["unet.class_embedding.weight"].abs().max().item()
    assert moved[30] > 10 * moved[1] > 0
