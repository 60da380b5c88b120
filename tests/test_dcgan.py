"""DCGAN: architecture at several sizes, folder save/load, clear checkpoint errors, adapter."""

import json

import pytest
import torch
from torch import nn

from data.errors import CheckpointError, ConfigError
from generators import dcgan
from generators.dcgan import DCGANConfig, build_dcgan, load_dcgan, save_dcgan
from generators.protocol import RealismUnavailable

TINY = dict(nz=8, ngf=4, ndf=4)


def _trained_a_little(config):
    """Networks whose BatchNorm statistics are no longer the defaults, as after training."""
    torch.manual_seed(0)
    generator, discriminator = build_dcgan(config)
    with torch.no_grad():
        discriminator(generator(torch.randn(4, config.nz)))
    return generator, discriminator


@pytest.fixture
def saved(tmp_path):
    config = DCGANConfig(image_size=32, **TINY)
    generator, discriminator = _trained_a_little(config)
    save_dcgan(generator, discriminator, config, tmp_path / "dcgan-run", metadata={"epochs": 1})
    return tmp_path / "dcgan-run", generator, discriminator


@pytest.mark.parametrize("size", [32, 64, 128])
def test_sizes_give_the_right_shapes_and_block_counts(size):
    config = DCGANConfig(image_size=size, **TINY)
    generator, discriminator = build_dcgan(config)
    images = generator(torch.randn(2, config.nz))
    assert images.shape == (2, 3, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert discriminator(images).shape == (2,)
    upsamplers = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(upsamplers) == config.n_doublings + 1  # 5 for 64x64, as in the paper


def test_the_64_pixel_network_has_the_papers_widths():
    generator, discriminator = build_dcgan(DCGANConfig(image_size=64, nz=100, ngf=64, ndf=64))
    widths = [m.out_channels for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert widths == [512, 256, 128, 64, 3]
    widths = [m.out_channels for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [64, 128, 256, 512, 1]


@pytest.mark.parametrize("size", [16, 48, 100])
def test_bad_sizes_are_refused(size):
    with pytest.raises(ConfigError, match="power of two"):
        DCGANConfig(image_size=size)


def test_standard_initialisation():
    generator, _ = build_dcgan(DCGANConfig(image_size=64, nz=100, ngf=64, ndf=64))
    first = generator.main[0].weight
    assert abs(first.std().item() - 0.02) < 0.002 and abs(first.mean().item()) < 0.002
    assert all(p.requires_grad for p in generator.parameters())


def test_save_load_roundtrip_gives_identical_images(saved):
    folder, generator, discriminator = saved
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded_g, loaded_d, config = load_dcgan(folder)
    z = torch.randn(3, config.nz)
    for module in (generator, discriminator, loaded_g, loaded_d):
        module.eval()
    with torch.no_grad():
        assert torch.equal(generator(z), loaded_g(z))
        assert torch.equal(discriminator(generator(z)), loaded_d(loaded_g(z)))
    assert dcgan.read_config(folder)[1] == {"epochs": 1}


def test_a_generator_saved_alone_loads_without_discriminator(tmp_path):
    config = DCGANConfig(image_size=32, **TINY)
    generator, _ = build_dcgan(config)
    save_dcgan(generator, None, config, tmp_path)
    assert load_dcgan(tmp_path)[1] is None
    adapter = dcgan.load(tmp_path)
    assert not adapter.has_realism
    with pytest.raises(RealismUnavailable):
        adapter.realism(torch.zeros(1, 3, 32, 32))


def test_corrupt_missing_and_misshapen_files_are_checkpoint_errors(saved, tmp_path):
    folder, _, _ = saved
    weights = folder / "model.safetensors"
    good = weights.read_bytes()

    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="safetensors"):
        load_dcgan(folder)

    weights.write_bytes(good)
    document = json.loads((folder / "config.json").read_text())
    document["architecture"]["ngf"] = 8
    (folder / "config.json").write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_dcgan(folder)

    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config"):
        load_dcgan(folder)

    (folder / "config.json").unlink()
    with pytest.raises(CheckpointError, match="lacks config.json"):
        load_dcgan(folder)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_dcgan(tmp_path / "nowhere")


def test_adapter_is_deterministic_batch_consistent_and_differentiable(saved):
    folder, _, _ = saved
    gen = dcgan.load(folder)
    assert gen.name == "dcgan-run" and gen.family == "dcgan" and gen.image_size == 32
    assert gen.latent_space.n_var == TINY["nz"]
    z = gen.latent_space.sample(8, torch.Generator().manual_seed(1))
    images = gen.generate(z)
    assert images.shape == (8, 3, 32, 32)
    assert torch.equal(images, gen.generate(z))
    assert not torch.allclose(images[0], images[1])
    assert torch.allclose(gen.generate(z[3:4]), images[3:4], atol=1e-6)

    z.requires_grad_(True)
    gen.generate(z, grad=True).square().mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0

    scores = gen.realism(images)
    assert scores.shape == (8,) and torch.isfinite(scores).all()
    assert gen.identity()["config"]["nz"] == TINY["nz"]
    assert gen.identity()["weights"]["path"] == str(folder / "model.safetensors")
    assert len(gen.identity()["weights"]["sha256"]) == 64


def test_family_loader_refuses_unknown_options(saved):
    with pytest.raises(ConfigError, match="options"):
        dcgan.load(saved[0], truncation=0.5)
