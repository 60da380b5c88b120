"""``artbias train snapshot``: a run's generator at its last checkpoint, in the finished format.

The check that matters: a snapshot of a run's last checkpoint is the very model the run saves
when it ends (bit for bit, for every family), so what is measured part-way is what would ship.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_ddpm_training import tiny_config as tiny_ddpm_config
from test_ddpm_training import world as ddpm_world  # noqa: F401  (a fixture)
from test_gan_training import tiny_config as tiny_gan_config
from test_gan_training import world  # noqa: F401  (a fixture)

from data.errors import CheckpointError, ConfigError
from gallery.cli import main
from generators.registry import load_generator
from generators.training import train_gan
from generators.training.ddpm import train_ddpm
from generators.training.snapshot import snapshot_run

STEPS = 6


def weight_files(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Every safetensors file of a saved model (not its training checkpoint)."""
    return {str(p.relative_to(folder)): load_file(str(p)) for p in sorted(folder.rglob("*.safetensors"))
            if "checkpoint" not in p.parts}


def assert_same_weights(expected: Path, got: Path) -> None:
    want, have = weight_files(expected), weight_files(got)
    assert want and want.keys() == have.keys()
    for name in want:
        assert want[name].keys() == have[name].keys()
        assert all(torch.equal(want[name][k], have[name][k]) for k in want[name]), f"{name} differs"


@pytest.mark.parametrize("arch", ["dcgan", "stylegan2", "biggan"])
def test_a_gan_snapshot_of_the_last_checkpoint_is_the_model_the_run_saves(arch, world, tmp_path):  # noqa: F811
    config = replace(tiny_gan_config(arch), steps=STEPS, checkpoint_every=3, sample_every=STEPS)
    run = train_gan(config, world, tmp_path / "run", progress=False, threads=1)
    snapshot = snapshot_run(run, tmp_path / "snapshot")
    assert_same_weights(run, snapshot)  # BigGAN's finishing statistics included
    record = json.loads((snapshot / "training.json").read_text())
    assert record["snapshot"] == {"run": str(run), "step": STEPS, "of_steps": STEPS}
    assert record["data"]["class_counts"]["forest"] == 24 and record["config"]["arch"] == arch
    generator = load_generator(f"{arch}:{snapshot}")
    images = generator.generate(generator.latent_space.sample(2, torch.Generator().manual_seed(0)))
    assert images.shape == (2, 3, 32, 32) and torch.isfinite(images).all()


def test_a_ddpm_run_is_snapshotted_part_way_and_then_trains_on_undisturbed(ddpm_world, tmp_path):  # noqa: F811
    config = replace(tiny_ddpm_config(), steps=2 * STEPS, checkpoint_every=STEPS)
    whole = train_ddpm(config, ddpm_world, tmp_path / "whole", progress=False, threads=1)
    # A run stopped at step STEPS: its folder is OUT.partial, as an interrupted run leaves it.
    run = tmp_path / "run"
    train_ddpm(replace(config, steps=STEPS), ddpm_world, run, progress=False, threads=1)
    run.rename(tmp_path / "run.partial")
    checkpoint = (tmp_path / "run.partial" / "checkpoint" / "state.safetensors").read_bytes()

    snapshot = snapshot_run(run, tmp_path / "snapshot")
    assert json.loads((snapshot / "training.json").read_text())["snapshot"]["step"] == STEPS
    generator = load_generator(f"diffusion:{snapshot}", num_inference_steps=2)
    images = generator.generate(generator.latent_space.sample(2, torch.Generator().manual_seed(0)))
    assert images.shape == (2, 3, 16, 16) and images.min() >= -1 and images.max() <= 1
    assert (tmp_path / "run.partial" / "checkpoint" / "state.safetensors").read_bytes() == checkpoint

    # The run resumes as if nothing had read it, and its end is what a snapshot of its end is.
    train_ddpm(config, ddpm_world, run, progress=False, threads=1)
    assert_same_weights(whole, run)
    again = snapshot_run(run, tmp_path / "snapshot")  # an earlier snapshot may be replaced
    assert_same_weights(run, again)
    assert json.loads((again / "training.json").read_text())["snapshot"]["step"] == 2 * STEPS


def test_no_checkpoint_an_occupied_out_or_a_corrupt_checkpoint_are_one_line_errors(ddpm_world, tmp_path):  # noqa: F811
    with pytest.raises(ConfigError, match="no training checkpoint"):
        snapshot_run(tmp_path / "nothing", tmp_path / "snapshot")
    run = train_ddpm(replace(tiny_ddpm_config(), steps=2), ddpm_world, tmp_path / "run", progress=False,
                     threads=1)
    with pytest.raises(ConfigError, match="the run's own folder"):
        snapshot_run(run, run)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="holds no snapshot"):
        snapshot_run(run, occupied)
    assert (occupied / "notes.txt").read_text() == "keep me"

    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "checkpoint" / "state.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="unreadable"):
        snapshot_run(broken, tmp_path / "from-broken")
    assert not (tmp_path / "from-broken").exists()


def test_the_command_line_prints_the_snapshot_and_says_what_is_wrong(ddpm_world, tmp_path, capsys):  # noqa: F811
    run = train_ddpm(replace(tiny_ddpm_config(), steps=2), ddpm_world, tmp_path / "run", progress=False,
                     threads=1)
    assert main(["train", "snapshot", "--run", str(run), "--out", str(tmp_path / "snap")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "snap")
    assert load_generator(f"diffusion:{tmp_path / 'snap'}").image_size == 16
    assert main(["train", "snapshot", "--run", str(tmp_path / "absent"), "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert "no training checkpoint" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "x").exists()
