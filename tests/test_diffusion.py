"""The diffusion family on a tiny random UNet: DDIM eta=0 makes noise a deterministic latent."""

import math

import pytest
import torch

from data.errors import CheckpointError, ConfigError, WeightsNotFoundError
from generators import diffusion

STEPS = 3


def _tiny_unet():
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=16,
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    """A DDPMPipeline-style folder: unet/ + scheduler/."""
    from diffusers import DDPMScheduler

    folder = tmp_path_factory.mktemp("ddpm-tiny")
    _tiny_unet().save_pretrained(folder / "unet")
    DDPMScheduler(num_train_timesteps=1000).save_pretrained(folder / "scheduler")
    return folder


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("ARTBIAS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_same_noise_same_image_and_different_noise_different_image(pipeline_dir):
    gen = diffusion.load(pipeline_dir, num_inference_steps=STEPS)
    assert type(gen.scheduler).__name__ == "DDIMScheduler" and len(gen.scheduler.timesteps) == STEPS
    assert gen.latent_space.n_var == 3 * 16 * 16 and gen.image_size == 16
    noise = gen.latent_space.sample(2, torch.Generator().manual_seed(0))
    images = gen.generate(noise)
    assert images.shape == (2, 3, 16, 16)
    assert images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, gen.generate(noise))
    assert (images[0] - images[1]).abs().mean() > 1e-3


def test_basis_space_has_the_priors_norm_and_is_batch_consistent(pipeline_dir):
    gen = diffusion.load(pipeline_dir, num_inference_steps=STEPS, space="basis", n_basis=6)
    assert gen.latent_space.n_var == 6
    weights = gen.latent_space.sample(8, torch.Generator().manual_seed(2))
    noise = gen.initial_noise(gen.latent_space.split(weights))
    assert noise.shape == (8, 3, 16, 16)
    norms = noise.flatten(1).norm(dim=1)
    assert torch.allclose(norms, torch.full_like(norms, math.sqrt(3 * 16 * 16)), rtol=1e-4)

    images = gen.generate(weights)
    assert images.min() >= -1 and images.max() <= 1
    assert torch.allclose(gen.generate(weights[5:6]), images[5:6], atol=1e-5)
    assert (images[0] - images[1]).abs().mean() > 1e-3
    # the bases come from a fixed seed: a second load maps weights to the same images
    again = diffusion.load(pipeline_dir, num_inference_steps=STEPS, space="basis", n_basis=6)
    assert torch.allclose(again.generate(weights[:2]), images[:2], atol=1e-5)


def test_gradients_reach_the_latents(pipeline_dir):
    gen = diffusion.load(pipeline_dir, num_inference_steps=2, space="basis", n_basis=4)
    weights = gen.latent_space.sample(2).requires_grad_(True)
    gen.generate(weights, grad=True).mean().backward()
    assert weights.grad is not None and weights.grad.abs().sum() > 0
    assert not gen.has_realism


def test_a_bare_unet_folder_loads_with_default_schedule(tmp_path, pipeline_dir):
    _tiny_unet().save_pretrained(tmp_path)
    bare = diffusion.load(tmp_path, num_inference_steps=STEPS)
    full = diffusion.load(pipeline_dir, num_inference_steps=STEPS)
    noise = full.latent_space.sample(1, torch.Generator().manual_seed(4))
    assert torch.allclose(bare.generate(noise), full.generate(noise), atol=1e-5)


@pytest.mark.filterwarnings("ignore:The `local_dir_use_symlinks` argument")  # inside diffusers
def test_bad_inputs_are_clear_errors(tmp_path, pipeline_dir):
    with pytest.raises(ConfigError, match="space"):
        diffusion.load(pipeline_dir, space="pixels")
    with pytest.raises(CheckpointError, match="UNet2DModel"):
        diffusion.load(tmp_path)  # an empty folder
    with pytest.raises(WeightsNotFoundError):
        diffusion.load("no-such-org/no-such-model")
    with pytest.raises(WeightsNotFoundError, match="no such folder"):
        diffusion.load(tmp_path / "missing" / "deeper")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="folder"):
        diffusion.load(tmp_path / "weights.bin")
