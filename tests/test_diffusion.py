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


class GaussianDataNoise(torch.nn.Module):
    """The exact noise predictor for data ~ N(0, sigma^2 I): eps(x, t) = sqrt(1-a) x / (a sigma^2 + 1 - a).
    Its probability-flow ODE is solved in closed form, so a sampler's error can be measured."""

    def __init__(self, alphas_cumprod: torch.Tensor, sigma: float = 0.5, size: int = 8):
        super().__init__()
        from types import SimpleNamespace

        self.config = SimpleNamespace(sample_size=size, in_channels=3)
        self.register_buffer("alphas", alphas_cumprod.float())
        self.sigma = sigma

    def forward(self, x, t):
        from types import SimpleNamespace

        a = self.alphas[int(t)]
        return SimpleNamespace(sample=(1 - a).sqrt() * x / (a * self.sigma**2 + 1 - a))

    def exact(self, noise: torch.Tensor, t: int) -> torch.Tensor:
        """x_0 from x_t = noise along the ODE: the marginal std sqrt(a sigma^2 + 1 - a) becomes sigma."""
        a = self.alphas[int(t)]
        return noise * self.sigma / (a * self.sigma**2 + 1 - a).sqrt()


def test_dpm_solver_is_a_deterministic_latent_and_closer_to_the_exact_image_in_few_steps():
    from diffusers import DDIMScheduler

    schedule = DDIMScheduler(num_train_timesteps=1000, clip_sample=False)
    model = GaussianDataNoise(schedule.alphas_cumprod)

    def error(sampler: str, steps: int, latents: torch.Tensor) -> float:
        gen = diffusion.DiffusionGenerator(model, DDIMScheduler.from_config(schedule.config),
                                           num_inference_steps=steps, sampler=sampler)
        exact = model.exact(latents.view(-1, 3, 8, 8), gen.scheduler.timesteps[0]).clamp(-1, 1)
        return float((gen.generate(latents) - exact).abs().mean())

    gen = diffusion.DiffusionGenerator(model, DDIMScheduler.from_config(schedule.config), num_inference_steps=6,
                                       sampler="dpm-solver")
    assert gen.settings()["sampler"] == "dpm-solver" and type(gen.scheduler).__name__ == "DPMSolverMultistepScheduler"
    latents = gen.latent_space.sample(4, torch.Generator().manual_seed(1))
    first = gen.generate(latents)
    assert torch.equal(first, gen.generate(latents))  # the multistep history starts afresh every call
    assert torch.allclose(gen.generate(latents[2:3]), first[2:3], atol=1e-5)

    # Both solve the ODE (DDIM, first order, more slowly); with the default 20 UNet calls
    # DPM-Solver++ is far nearer the exact solution than DDIM (0.016 against 0.048).
    assert error("ddim", 500, latents) < 5e-3 and error("dpm-solver", 200, latents) < 1e-3
    ddim, dpm = error("ddim", diffusion.DEFAULT_STEPS, latents), error("dpm-solver", diffusion.DEFAULT_STEPS, latents)
    assert dpm < 0.5 * ddim, (dpm, ddim)


def test_dpm_solver_passes_gradients_and_bad_sampler_options_are_refused(pipeline_dir):
    gen = diffusion.load(pipeline_dir, num_inference_steps=2, space="basis", n_basis=4, sampler="dpm-solver")
    weights = gen.latent_space.sample(2).requires_grad_(True)
    gen.generate(weights, grad=True).mean().backward()
    assert weights.grad is not None and weights.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="sampler must be one of"):
        diffusion.load(pipeline_dir, sampler="euler")
    with pytest.raises(ConfigError, match="unknown diffusion options"):
        diffusion.load(pipeline_dir, steps=4)
