"""The GAN training loop: each family learns, resumes bit for bit, saves a loadable model.

Tiny 32 px networks on a tiny world set built here; a few dozen steps each.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from data.errors import ArtbiasError, ConfigError, DatasetError
from data.world.builder import WorldConfig, build_world
from data.world.params import CLASSES
from gallery.cli import main
from generators.biggan import BigGANDiscriminator, DiscriminatorConfig
from generators.registry import load_generator
from generators.training import TrainConfig, load_train_config, train_gan
from generators.training.data import load_training_images, rendered_world

STEPS, RESUME_AT = 24, 10

TINY = {
    "dcgan": {"model": {"nz": 16, "ngf": 8, "ndf": 8}, "batch_size": 8, "lr_g": 2e-3, "lr_d": 2e-3},
    "stylegan2": {
        "model": {"z_dim": 16, "w_dim": 16, "mapping_layers": 1, "channel_base": 128,
                  "channel_max": 16, "mbstd_group_size": 4},
        "batch_size": 8, "r1_every": 4, "ema_half_life_images": 100,
    },
    "biggan": {
        "model": {
            "generator": {"z_dim": 8, "class_embed_dim": 8, "channel_width": 8,
                          "layers": [[True, 2, 2], [True, 2, 1], [True, 1, 1]],
                          "attention_layer_position": 1, "n_stats": 3},
            "discriminator": {"channel_width": 8, "multipliers": [1, 2, 2]},
        },
        "batch_size": 8, "lr_g": 4e-4, "lr_d": 1e-3, "ema_half_life_images": 100,
    },
}
FAMILY_SPEC = {"dcgan": "dcgan", "stylegan2": "stylegan2", "biggan": "biggan"}


def tiny_config(arch: str, **overrides) -> TrainConfig:
    config = load_train_config(arch, image_size=32, steps=STEPS, sample_every=12, checkpoint_every=6)
    return replace(config, **TINY[arch], **overrides)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    composition = {"forest": 0.5, "sea": 0.25, "street": 0.25}
    root = tmp_path_factory.mktemp("gan-world") / "world"
    return build_world(root, WorldConfig(n=48, composition=composition, size=32, seed=3, test_fraction=0),
                       progress=False)


def read_losses(run: Path) -> list[dict[str, float]]:
    with (run / "losses.csv").open(newline="") as handle:
        return [{k: float(v) if v else float("nan") for k, v in row.items()} for row in csv.DictReader(handle)]


def grid(run: Path, step: int) -> np.ndarray:
    return np.asarray(Image.open(run / "samples" / f"step_{step:06d}.png"), dtype=np.int16)


@pytest.mark.parametrize("arch", ["dcgan", "stylegan2", "biggan"])
def test_training_learns_resumes_exactly_and_saves_a_loadable_model(arch, world, tmp_path):
    config = tiny_config(arch)
    straight = train_gan(config, world, tmp_path / "straight", progress=False, threads=1)

    # A working GAN: losses finite, the discriminator tells reals from fakes early on.
    rows = read_losses(straight)
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1))
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows)
    gaps = [r["real_logit"] - r["fake_logit"] for r in rows[2:12]]
    assert np.mean(gaps) > 0, f"real logits should rise above fake logits, gaps {gaps}"
    assert np.abs(grid(straight, STEPS) - grid(straight, 0)).mean() > 0.25  # the samples changed
    if arch == "stylegan2":
        assert sum(np.isfinite(r["r1"]) for r in rows) == STEPS // 4  # lazy R1 every 4 steps

    # Interrupted after RESUME_AT steps, resumed to STEPS: the same run, bit for bit.
    resumed = tmp_path / "resumed"
    train_gan(replace(config, steps=RESUME_AT), world, resumed, progress=False, threads=1)
    assert json.loads((resumed / "training.json").read_text())["steps"] == RESUME_AT
    train_gan(config, world, resumed, progress=False, threads=1)
    for name in ("checkpoint/state.safetensors", *(p.name for p in straight.glob("*.safetensors"))):
        expected, got = load_file(str(straight / name)), load_file(str(resumed / name))
        assert expected.keys() == got.keys()
        assert all(torch.equal(expected[k], got[k]) for k in expected), f"{name} differs after resuming"
    as_array = lambda table: np.array([list(r.values()) for r in table])  # noqa: E731
    assert np.array_equal(as_array(read_losses(resumed)), as_array(rows), equal_nan=True)
    assert not (tmp_path / "resumed.partial").exists()

    # The folder loads through the registry, generates in [-1, 1] and judges realism.
    generator = load_generator(f"{FAMILY_SPEC[arch]}:{straight}")
    latents = generator.latent_space.sample(4, torch.Generator().manual_seed(0))
    images = generator.generate(latents)
    assert images.shape == (4, 3, 32, 32)
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0.002  # not constant (24 tiny steps)
    assert generator.has_realism
    realism = generator.realism(images)
    assert realism.shape == (4,) and torch.isfinite(realism).all()

    record = json.loads((straight / "training.json").read_text())
    assert record["data"]["class_counts"] == {"buildings": 0, "forest": 24, "glacier": 0, "mountain": 0,
                                              "sea": 12, "street": 12}
    assert record["steps"] == STEPS and record["config"]["seed"] == config.seed
    assert record["command"].startswith(f"artbias train gan --arch {arch}")
    assert "versions" in record and (straight / "card.md").is_file()


def test_rerunning_a_finished_run_changes_nothing_and_other_configs_are_refused(world, tmp_path):
    config = replace(tiny_config("dcgan"), steps=5)
    out = train_gan(config, world, tmp_path / "run", progress=False, threads=1)
    before = (out / "model.safetensors").read_bytes()
    assert train_gan(config, world, out, progress=False, threads=1) == out
    assert (out / "model.safetensors").read_bytes() == before
    with pytest.raises(ConfigError, match="different config.*lr_d"):
        train_gan(replace(config, steps=8, lr_d=1e-3), world, out, progress=False, threads=1)
    with pytest.raises(ConfigError, match="beyond --steps"):
        train_gan(replace(config, steps=3), world, out, progress=False, threads=1)
    with pytest.raises(ConfigError, match="other data"):
        train_gan(replace(config, steps=8), world, out, classes="forest", progress=False, threads=1)
    assert (out / "model.safetensors").read_bytes() == before


def test_class_selection_keeps_only_those_classes(world, tmp_path):
    config = replace(tiny_config("biggan"), steps=3)
    out = train_gan(config, world, tmp_path / "two", classes="sea,street", progress=False, threads=1)
    record = json.loads((out / "training.json").read_text())
    assert {k for k, v in record["data"]["class_counts"].items() if v} == {"sea", "street"}
    assert json.loads((out / "discriminator.json").read_text())["known_classes"] == [
        CLASSES.index("sea"), CLASSES.index("street")]


@pytest.mark.parametrize(
    ("overrides", "data", "error", "message"),
    [
        ({"steps": 0}, None, ConfigError, "steps must be"),
        ({"image_size": 48}, None, ConfigError, "power of two"),
        ({"image_size": 16}, None, ConfigError, "power of two"),
        ({"batch_size": 1}, None, ConfigError, "batch size"),
        ({"precision": "float8"}, None, ConfigError, "unknown precision 'float8'"),
        ({"channels_last": "yes"}, None, ConfigError, "channels_last must be true or false"),
        ({"ema_start_step": 5, "ema_half_life_images": None}, None, ConfigError,
         "ema_start_step needs ema_half_life_images"),
        ({"ema_start_step": -1, "ema_half_life_images": 100}, None, ConfigError, "ema_start_step must be"),
        ({}, "missing", DatasetError, "does not exist"),
        ({}, "empty", DatasetError, "fresh renders need a world dataset.*no world.json"),  # dcgan's config renders
        ({"fresh_renders": False}, "missing", DatasetError, "does not exist"),
        ({"fresh_renders": False}, "empty", DatasetError, "no images"),
    ],
)
def test_bad_arguments_are_clear_errors_and_write_nothing(world, tmp_path, overrides, data, error, message):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    with pytest.raises(error, match=message):
        train_gan(replace(tiny_config("dcgan"), **overrides), tmp_path / data if data else world, out,
                  progress=False, threads=1)
    assert not out.exists() and not (tmp_path / "out.partial").exists()
    with pytest.raises(ConfigError, match="unknown GAN architecture"):
        load_train_config("vae")


def test_unwritable_or_occupied_out_and_bad_classes_are_refused(world, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = replace(tiny_config("dcgan"), steps=2)
    with pytest.raises(ConfigError, match="cannot write"):
        train_gan(config, world, blocker / "out", progress=False, threads=1)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds no training run"):
        train_gan(config, world, occupied, progress=False, threads=1)
    assert [p.name for p in occupied.iterdir()] == ["notes.txt"]
    with pytest.raises(ConfigError, match="unknown class names"):
        train_gan(config, world, tmp_path / "new", classes="lakes", progress=False, threads=1)
    assert not (tmp_path / "new").exists()


def test_command_line_trains_and_reports_errors_in_one_line(world, tmp_path, capsys):
    config_file = tmp_path / "tiny.json"
    config_file.write_text(json.dumps(tiny_config("dcgan").to_dict()))
    out = tmp_path / "cli"
    code = main(["train", "gan", "--arch", "dcgan", "--data", str(world), "--out", str(out), "--config",
                 str(config_file), "--steps", "4", "--sample-every", "2", "--quiet", "--threads", "1"])
    assert code == 0
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "step_000000.png", "step_000002.png", "step_000004.png"]
    record = json.loads((out / "training.json").read_text())
    assert f"--config {config_file}" in record["command"] and "--steps 4" in record["command"]
    assert load_generator(f"dcgan:{out}").image_size == 32
    capsys.readouterr()
    assert main(["train", "gan", "--arch", "gan", "--data", str(world), "--out", str(tmp_path / "x")]) == 2
    assert "unknown GAN architecture" in capsys.readouterr().err
    assert main(["train", "gan", "--arch", "dcgan", "--data", str(world), "--out", str(tmp_path / "x"),
                 "--size", "100"]) == 2
    assert "power of two" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_command_line_switches_between_fresh_renders_and_the_folders_own_images(world, tmp_path, capsys):
    own = tmp_path / "own-images"  # the world's images without its world.json: a plain image folder
    shutil.copytree(world, own)
    (own / "world.json").unlink()
    config_file = tmp_path / "tiny.json"
    config_file.write_text(json.dumps(tiny_config("dcgan", fresh_renders=True).to_dict()))
    command = ["train", "gan", "--arch", "dcgan", "--config", str(config_file), "--steps", "2", "--quiet",
               "--threads", "1"]
    assert main(command + ["--data", str(own), "--out", str(tmp_path / "refused")]) == 2
    assert "--no-fresh-renders" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists() and not (tmp_path / "refused.partial").exists()
    out = tmp_path / "fixed"
    assert main(command + ["--data", str(own), "--out", str(out), "--no-fresh-renders"]) == 0
    record = json.loads((out / "training.json").read_text())
    assert record["config"]["fresh_renders"] is False and "source" not in record["data"]
    assert "--no-fresh-renders" in record["command"]
    assert "fresh renders" not in (out / "card.md").read_text()


def test_projection_discriminator_scores_by_class():
    torch.manual_seed(0)
    config = DiscriminatorConfig(input_dim=32, num_classes=4, channel_width=4, multipliers=(1, 2, 2),
                                 known_classes=(0, 2))
    critic = BigGANDiscriminator(config).eval()
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    per_class = torch.stack([critic(images, torch.eye(4)[[k] * 3]) for k in range(4)], dim=1)
    soft = torch.tensor([[0.5, 0.0, 0.5, 0.0]]).repeat(3, 1)
    torch.testing.assert_close(critic(images, soft), per_class[:, [0, 2]].mean(dim=1))
    torch.testing.assert_close(critic(images), per_class[:, [0, 2]].max(dim=1).values)
    assert (per_class[:, 0] != per_class[:, 1]).all()  # the class matters
    with pytest.raises(ConfigError, match="not 4px"):
        DiscriminatorConfig(input_dim=64, num_classes=4, multipliers=(1, 2))
    with pytest.raises(ArtbiasError, match="known_classes"):
        DiscriminatorConfig(input_dim=32, num_classes=4, multipliers=(1, 2, 2), known_classes=(5,))


def test_precision_and_layout_change_the_arithmetic_not_the_model(world, tmp_path):
    # float32/NCHW against the zoo's bfloat16/channels-last: both learn and save the same
    # loadable NCHW format, and the choice really reaches the convolutions.
    runs = {}
    for precision, channels_last in [("float32", False), ("bfloat16", True)]:
        config = tiny_config("stylegan2", precision=precision, channels_last=channels_last, steps=8)
        runs[precision] = train_gan(config, world, tmp_path / precision, progress=False, threads=1)
        rows = read_losses(runs[precision])
        assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows)
        for weights in runs[precision].glob("*.safetensors"):
            assert all(t.is_contiguous() for t in load_file(str(weights)).values())
    assert "bfloat16 mixed precision, channels-last" in (runs["bfloat16"] / "card.md").read_text()
    assert "float32" in (runs["float32"] / "card.md").read_text()
    single, mixed = (load_file(str(runs[p] / "checkpoint" / "state.safetensors")) for p in ("float32", "bfloat16"))
    assert any(not torch.equal(single[k], mixed[k]) for k in single)


def test_a_late_starting_average_copies_the_generator_then_averages_without_changing_training(world, tmp_path):
    # BigGAN's ema_start: until step 6 G_ema is G exactly; after it, an average that lags G.
    # The average never feeds back, so G itself is the same as in a run without one.
    def tensors(run):
        return load_file(str(run / "checkpoint" / "state.safetensors"))

    start = tiny_config("dcgan", steps=6, ema_half_life_images=100, ema_start_step=6)
    at_start = tensors(train_gan(start, world, tmp_path / "start", progress=False, threads=1))
    later = tensors(train_gan(replace(start, steps=12), world, tmp_path / "later", progress=False, threads=1))
    plain = tensors(train_gan(tiny_config("dcgan", steps=12, ema_half_life_images=None, ema_start_step=0), world,
                              tmp_path / "plain", progress=False, threads=1))
    generator = [k[len("G."):] for k in at_start if k.startswith("G.")]
    assert all(torch.equal(at_start[f"G_ema.{k}"], at_start[f"G.{k}"]) for k in generator)
    assert any(not torch.equal(later[f"G_ema.{k}"], later[f"G.{k}"]) for k in generator)
    assert all(torch.equal(later[f"G.{k}"], plain[f"G.{k}"]) for k in generator)


def test_fresh_renders_are_new_scenes_of_the_world_drawn_reproducibly(world):
    source = rendered_world(world, 32)
    assert source.class_counts() == {"buildings": 0, "forest": 24, "glacier": 0, "mountain": 0, "sea": 12,
                                     "street": 12}
    first, labels = source.batch(64, torch.Generator().manual_seed(5))
    again, labels_again = source.batch(64, torch.Generator().manual_seed(5))
    assert torch.equal(first, again) and torch.equal(labels, labels_again)
    assert first.shape == (64, 3, 32, 32) and -1 <= first.min() and first.max() <= 1
    assert set(labels.tolist()) <= {CLASSES.index(c) for c in ("forest", "sea", "street")}
    stored_all = load_training_images(world, 32).images.float() / 127.5 - 1.0
    assert stored_all.shape[1:] == first.shape[1:]
    # No fresh image is one of the 48 stored ones, in either orientation.
    for image in first:
        assert not any(torch.equal(image, s) or torch.equal(image.flip(-1), s) for s in stored_all)
    only_sea = rendered_world(world, 32, classes=("sea",))
    assert set(only_sea.batch(16, torch.Generator().manual_seed(0))[1].tolist()) == {CLASSES.index("sea")}


def test_training_on_fresh_renders_resumes_exactly_and_records_its_source(world, tmp_path):
    config = replace(tiny_config("dcgan"), steps=6, checkpoint_every=3, fresh_renders=True)
    straight = train_gan(config, world, tmp_path / "straight", progress=False, threads=1)
    parted = train_gan(replace(config, steps=3), world, tmp_path / "parted", progress=False, threads=1)
    train_gan(config, world, parted, progress=False, threads=1)
    assert load_file(straight / "model.safetensors").keys() == load_file(parted / "model.safetensors").keys()
    for name, tensor in load_file(straight / "model.safetensors").items():
        assert torch.equal(tensor, load_file(parted / "model.safetensors")[name]), name
    data = json.loads((straight / "training.json").read_text())["data"]
    assert data["source"] == "fresh renders of the world" and data["class_counts"]["forest"] == 24
    card = (straight / "card.md").read_text()
    assert "fresh renders of the world in every batch" in card and "forest 24" in card
    fixed = train_gan(replace(config, fresh_renders=False), world, tmp_path / "fixed", progress=False, threads=1)
    assert not torch.equal(load_file(fixed / "model.safetensors")[name], tensor)
    with pytest.raises(ConfigError, match="different config.*fresh_renders"):
        train_gan(replace(config, steps=8, fresh_renders=False), world, straight, progress=False, threads=1)


def test_fresh_renders_need_a_world_record_and_a_true_or_false_flag(world, tmp_path):
    not_a_world = tmp_path / "copied"
    for path in (world / "train").rglob("*.png"):
        (not_a_world / path.relative_to(world)).parent.mkdir(parents=True, exist_ok=True)
        (not_a_world / path.relative_to(world)).write_bytes(path.read_bytes())
    with pytest.raises(DatasetError, match="fresh renders need a world dataset.*world.json"):
        train_gan(replace(tiny_config("dcgan"), fresh_renders=True), not_a_world, tmp_path / "out",
                  progress=False, threads=1)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    (not_a_world / "world.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not a readable world record"):
        rendered_world(not_a_world, 32)
    with pytest.raises(ConfigError, match="fresh_renders must be true or false"):
        replace(tiny_config("dcgan"), fresh_renders="yes")
    with pytest.raises(DatasetError, match="plans no training images"):
        rendered_world(world, 32, classes=("glacier",))
