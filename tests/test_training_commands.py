"""Every trained model records the command that made it; run again, that command makes the same
model, bit for bit (on the CPU), with the same sample grids. Tiny configs, a few steps."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from test_ddpm_training import tiny_config as tiny_ddpm_config
from test_gan_training import tiny_config as tiny_gan_config
from test_gan_training import world  # noqa: F401  (a fixture)
from test_training_snapshot import assert_same_weights

from gallery.cli import main

STEPS, SAMPLE_EVERY = 4, 2


def reproduced(command: str, out: Path) -> list[str]:
    """The recorded command line with its --out replaced, as arguments of ``artbias``."""
    argv = shlex.split(command)
    assert argv[0] == "artbias"
    argv[argv.index("--out") + 1] = str(out)
    return argv[1:] + ["--quiet", "--threads", "1"]


@pytest.mark.parametrize("trainer", ["gan", "ddpm"])
def test_the_recorded_command_remakes_the_model_bit_for_bit(trainer, world, tmp_path):  # noqa: F811
    config = tiny_gan_config("dcgan") if trainer == "gan" else tiny_ddpm_config()
    config_file = tmp_path / "tiny.json"
    config_file.write_text(json.dumps(config.to_dict()))
    first = tmp_path / "first"
    head = ["train", "gan", "--arch", "dcgan"] if trainer == "gan" else ["train", "ddpm", "--size", "16"]
    assert main(head + ["--data", str(world), "--out", str(first), "--config", str(config_file),
                        "--steps", str(STEPS), "--sample-every", str(SAMPLE_EVERY), "--seed", "5",
                        "--quiet", "--threads", "1"]) == 0
    record = json.loads((first / "training.json").read_text())
    assert f"--sample-every {SAMPLE_EVERY}" in record["command"] and "--seed 5" in record["command"]

    again = tmp_path / "again"
    assert main(reproduced(record["command"], again)) == 0
    assert_same_weights(first, again)
    assert json.loads((again / "training.json").read_text())["config"] == record["config"]
    grids = sorted(p.name for p in (first / "samples").iterdir())
    assert grids == sorted(p.name for p in (again / "samples").iterdir()) and len(grids) >= STEPS // SAMPLE_EVERY
    assert all((first / "samples" / g).read_bytes() == (again / "samples" / g).read_bytes() for g in grids)
